"""The :class:`Scene`: one multispectral scene read lazily as reflectance.

``open_scene`` validates every file up front, identifies the bands, co-registers
several files onto the finest grid and decides the DN -> reflectance scaling; the
Scene then keeps the datasets open (in an ``ExitStack``) and reads windows on demand.

Examples:
    >>> with open_scene("scene.tif") as scene:           # doctest: +SKIP
    ...     red, nir = scene.read(["red", "nir"])
    ...     ok = scene.valid()                             # True = valid data
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.coords import BoundingBox
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from spex.bands import WAVELENGTHS_NM, canonical_band
from spex.errors import BandError, SceneReadError
from spex.io.decimate import decimated_reads
from spex.io.coregister import pixel_size_metres
from spex.io.quality import QualityLayer, read_quality
from spex.io.scaling import BandScaling

__all__ = ["Scene", "SceneInfo", "BandInfo", "open_scene", "ATMOSPHERIC_BANDS"]

log = logging.getLogger(__name__)

#: Bands that do not decide pixel validity (coarse atmospheric / thermal context bands).
ATMOSPHERIC_BANDS: frozenset[str] = frozenset({"coastal", "watervapour", "cirrus", "thermal"})
#: Longest side of the decimated sample used for identification and scaling statistics.
SAMPLE_SIZE = 512
#: Tile side used to build the full-resolution validity memo (bounds the transient band memory).
VALID_TILE = 1024


@dataclass(frozen=True)
class _BandSource:
    """Where one band of the cube comes from and how it is scaled."""

    reader: rasterio.io.DatasetReader | WarpedVRT
    index: int                  # 1-based band index in reader
    scaling: BandScaling
    nodata: float | None        # stored value meaning "no data" (besides NaN)
    zero_fill: bool             # DN 0 is fill (Landsat / Sentinel-2 integer products)
    use_mask: bool              # the file has an internal/alpha mask to honour
    path: Path
    band_id: str
    warped: bool
    file_key: int = 0           # which input file the band comes from
    allzero_fill: bool = False  # integer file without nodata: pixels 0 in every band are padding


@dataclass(frozen=True)
class BandInfo:
    """One band as shown to users."""

    name: str
    wavelength_nm: float
    band_id: str
    file: str
    resampled: bool


@dataclass(frozen=True)
class SceneInfo:
    """Description of a scene for users (``to_text()``) and the chat app."""

    files: tuple[str, ...]
    sensor: str
    width: int
    height: int
    bands: tuple[BandInfo, ...]
    crs: str
    pixel_size_m: tuple[float, float]
    pixel_area_m2: float
    georeferenced: bool
    scaling: str
    calibrated: bool
    valid_fraction: float
    notes: tuple[str, ...]

    def to_text(self) -> str:
        """Multi-line plain-text description."""
        lines = [f"Scene: {', '.join(self.files)}",
                 f"Sensor: {self.sensor}",
                 f"Size: {self.width} x {self.height} pixels, {len(self.bands)} bands"]
        if self.georeferenced:
            lines.append(f"CRS: {self.crs}")
            lines.append(f"Pixel size: {self.pixel_size_m[0]:.2f} x {self.pixel_size_m[1]:.2f} m "
                         f"(pixel area {self.pixel_area_m2:.1f} m2; scene "
                         f"{self.pixel_area_m2 * self.width * self.height / 1e6:.2f} km2)")
        else:
            lines.append("CRS: none (not georeferenced; areas are given in pixels)")
        lines.append("Bands:")
        for i, b in enumerate(self.bands, 1):
            extra = f"{b.band_id} from {b.file}" + (", resampled onto the reference grid" if b.resampled else "")
            wl = f"{b.wavelength_nm:.0f} nm" if b.name != "thermal" else "~11 um"
            lines.append(f"  {i:2d}. {b.name:<12s} {wl:>8s}   ({extra})")
        lines.append(f"Scaling: {self.scaling}")
        lines.append("Calibrated: " + ("yes (reflectance 0..1)" if self.calibrated
                                       else "no (relative values; index thresholds adapt to the scene)"))
        lines.append(f"Valid pixels: {100 * self.valid_fraction:.1f}% (sampled)")
        if self.notes:
            lines.append("Notes:")
            lines.extend(f"  - {n}" for n in self.notes)
        return "\n".join(lines)


@dataclass
class Scene:
    """A multispectral scene on one grid, read lazily as float32 reflectance.

    Holds open datasets: use as a context manager or call :meth:`close`.
    ``valid()`` is True where every non-atmospheric band has data (coastal, water-vapour,
    cirrus and thermal bands are context only and may additionally be NaN at the edges of
    their coarser footprint).

    The full-resolution validity mask is computed once (tile by tile, on the first
    full-resolution ``read`` or ``valid`` call) and memoised: bool H x W, 1 byte per pixel
    (e.g. 120 MB for a 10 980² Sentinel-2 tile). Without it every read would decode (and
    warp) every core band again just to decide validity.
    """

    band_names: tuple[str, ...]
    sensor: str
    crs: CRS | None
    transform: Affine
    width: int
    height: int
    nodata: float | None
    scaling: str
    calibrated: bool
    notes: list[str]
    paths: tuple[Path, ...]
    #: quality rasters supplied with the scene (QA_PIXEL, BQA, SCL...), decoded by :meth:`quality`
    quality_paths: tuple[Path, ...] = ()
    #: (sun azimuth, sun elevation) in degrees from the metadata (Landsat MTL), None when unknown
    sun: tuple[float, float] | None = None
    _sources: tuple[_BandSource, ...] = field(default=(), repr=False)
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)
    _valid_fraction: float = field(default=1.0, repr=False)
    _valid_memo: np.ndarray | None = field(default=None, repr=False, compare=False)
    _valid_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _quality_memo: tuple[QualityLayer | None] | None = field(default=None, repr=False, compare=False)

    # -- context management -------------------------------------------------------------
    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every dataset this scene holds (and drop the validity memo)."""
        self._stack.close()
        self._valid_memo = None

    # -- geometry -----------------------------------------------------------------------
    @property
    def georeferenced(self) -> bool:
        return self.crs is not None

    @property
    def pixel_size_m(self) -> tuple[float, float]:
        """(x, y) pixel size in metres (1, 1 when not georeferenced: areas are in pixels)."""
        if self.crs is None:
            return 1.0, 1.0
        return pixel_size_metres(self.crs, self.transform, self.width, self.height)

    @property
    def pixel_area_m2(self) -> float:
        """Area of one pixel in m2; 1.0 when not georeferenced (areas then in pixels)."""
        sx, sy = self.pixel_size_m
        return float(sx * sy)

    @property
    def bounds(self) -> BoundingBox:
        return BoundingBox(*rasterio.transform.array_bounds(self.height, self.width, self.transform))

    def has(self, *bands: str) -> bool:
        """True when every band (canonical name or alias) is in the scene."""
        return all(canonical_band(b) in self.band_names for b in bands)

    def windows(self, size: int = 1024) -> Iterator[Window]:
        """Tiles of at most ``size`` x ``size`` pixels covering the scene, row by row."""
        return tile_windows(self.width, self.height, size)

    # -- reading ------------------------------------------------------------------------
    def companions(self, bands: Sequence[str]) -> tuple[str, ...]:
        """``bands`` and every band decoded with them: those of the same file unless it is band-interleaved.

        Why: a block of a pixel-interleaved file (or of a warped view of one) holds every band of the file,
        so reading them one at a time decodes it once per band; a tile reads them together instead.
        """
        wanted = {self.band_names[i] for i in self._resolve(bands)}
        files = set()
        for name, src in zip(self.band_names, self._sources, strict=True):
            if name in wanted and str(getattr(src.reader, "interleaving", "") or "").lower().endswith("band"):
                continue
            if name in wanted:
                files.add(src.file_key)
        return tuple(n for n, src in zip(self.band_names, self._sources, strict=True)
                     if n in wanted or src.file_key in files)

    def grid_files(self) -> list[rasterio.io.DatasetReader]:
        """The scene's open files that lie on its grid unwarped, once each, to read stored values from.

        Why these handles and not a new open of :attr:`paths`: they share GDAL's block cache with the
        scene's own reads, so a window read through both is decoded once (the sanity scan's saturation
        test: ~3 CPU-s at 10240²).
        """
        out: dict[int, rasterio.io.DatasetReader] = {}
        for src in self._sources:
            r = src.reader
            if (isinstance(r, rasterio.io.DatasetReader) and (r.width, r.height) == (self.width, self.height)
                    and r.transform == self.transform):
                out.setdefault(id(r), r)
        return list(out.values())

    def _resolve(self, bands: Sequence[str] | str | None) -> list[int]:
        if bands is None:
            return list(range(len(self.band_names)))
        if isinstance(bands, str):
            bands = [bands]
        out = []
        for b in bands:
            name = canonical_band(b)
            if name is None or name not in self.band_names:
                raise BandError(f"band {b!r} is not in this scene; it has: {', '.join(self.band_names)}")
            out.append(self.band_names.index(name))
        return out

    def _check_window(self, window: Window | None) -> Window | None:
        if window is None:
            return None
        w = Window(int(round(window.col_off)), int(round(window.row_off)),
                   int(round(window.width)), int(round(window.height)))
        if (w.col_off < 0 or w.row_off < 0 or w.width <= 0 or w.height <= 0
                or w.col_off + w.width > self.width or w.row_off + w.height > self.height):
            raise ValueError(f"invalid window {window!r}; expected one inside the {self.width} x {self.height} scene")
        return w

    def _raw_band(self, i: int, window: Window | None, out_shape: tuple[int, int] | None,
                  pre: Mapping[int, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(float32 stored values, bool invalid) of band ``i``; ``pre``: decimated values read already."""
        src = self._sources[i]
        kw: dict[str, object] = {"window": window}
        if out_shape is not None:
            kw["out_shape"] = tuple(int(v) for v in out_shape)
        try:
            if pre is not None and i in pre:
                arr = pre[i].astype(np.float32, copy=False)
            else:
                arr = src.reader.read(src.index, **kw).astype(np.float32, copy=False)
            bad = ~np.isfinite(arr)
            if src.nodata is not None and not (isinstance(src.nodata, float) and math.isnan(src.nodata)):
                bad |= arr == np.float32(src.nodata)
            if src.zero_fill:
                bad |= arr == 0
            if src.use_mask:
                bad |= src.reader.read_masks(src.index, **kw) == 0
        except RasterioError as exc:
            raise SceneReadError(f"cannot read band {src.band_id} of {src.path.name} (corrupt or truncated "
                                 f"file?): {exc}") from None
        return arr, bad

    def _core(self) -> list[int]:
        core = [i for i, n in enumerate(self.band_names) if n not in ATMOSPHERIC_BANDS]
        return core or list(range(len(self.band_names)))

    def _prefetch(self, bands: Iterable[int], window: Window | None,
                  out_shape: tuple[int, int]) -> dict[int, np.ndarray]:
        """Decimated values of ``bands``, every plain file decoded once, block by block.

        Why: GDAL's decimated read re-decodes each block for every output row once its cache is
        smaller than a row of blocks, and again per band (a 1024² preview of a 7168² file took
        minutes); same pixels as GDAL's nearest (:mod:`spex.io.decimate`). Masked bands stay GDAL's.
        """
        requests = [(i, self._sources[i].reader, self._sources[i].index) for i in dict.fromkeys(bands)
                    if not self._sources[i].use_mask]
        try:
            return decimated_reads(requests, out_shape, window)
        except RasterioError as exc:
            raise SceneReadError(f"cannot read the scene's files (corrupt or truncated?): {exc}") from None

    def _read_together(self, bands: Sequence[int], window: Window | None) -> dict[int, np.ndarray]:
        """Full-resolution values of ``bands``, one read per file: a pixel-interleaved block is decoded
        once for all the bands asked of it, not once per band."""
        groups: dict[int, list[int]] = {}
        for i in dict.fromkeys(bands):
            if not self._sources[i].use_mask:
                groups.setdefault(id(self._sources[i].reader), []).append(i)
        out: dict[int, np.ndarray] = {}
        try:
            for members in groups.values():
                if len(members) > 1:
                    reader = self._sources[members[0]].reader
                    cube = reader.read([self._sources[i].index for i in members], window=window)
                    out.update(zip(members, cube, strict=True))
        except RasterioError as exc:
            raise SceneReadError(f"cannot read the scene's files (corrupt or truncated?): {exc}") from None
        return out

    def _invalid(self, window: Window | None, out_shape: tuple[int, int] | None, shape: tuple[int, int],
                 have: dict[int, tuple[np.ndarray, np.ndarray | None]],
                 pre: Mapping[int, np.ndarray] | None = None) -> np.ndarray:
        """bool invalid mask from the core bands; ``have`` holds (bad, zero) of bands already read."""
        invalid = np.zeros(shape, dtype=bool)
        zero_all: dict[int, np.ndarray] = {}
        for i in self._core():
            src = self._sources[i]
            if i in have:
                bad, zero = have[i]
            else:
                arr, bad = self._raw_band(i, window, out_shape, pre)
                zero = arr == 0 if src.allzero_fill else None
            invalid |= bad
            if zero is not None:
                zero_all[src.file_key] = zero if src.file_key not in zero_all else zero_all[src.file_key] & zero
        for z in zero_all.values():
            invalid |= z
        return invalid

    def _shape(self, window: Window | None, out_shape: tuple[int, int] | None) -> tuple[int, int]:
        if out_shape is not None:
            return int(out_shape[0]), int(out_shape[1])
        if window is not None:
            return int(window.height), int(window.width)
        return self.height, self.width

    def read(self, bands: Sequence[str] | str | None = None, window: Window | None = None,
             out_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Reflectance cube, float32 (n_bands, h, w); NaN where invalid.

        Args:
            bands: canonical names (or aliases); default all bands in ``band_names`` order.
            window: part of the reference grid to read (pixels); default the whole scene.
            out_shape: (h, w) to decimate to (previews; uses overviews when the files have them).

        Notes:
            Memory: 4 bytes x bands x pixels; read large scenes window by window (``windows()``).
            Validity is decided by the non-atmospheric bands: at full resolution from the memoised
            validity mask (built once, see the class notes); decimated reads read them at ``out_shape``.
        """
        idx = self._resolve(bands)
        window = self._check_window(window)
        shape = self._shape(window, out_shape)
        out = np.empty((len(idx), *shape), dtype=np.float32)
        core = set(self._core())
        have: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        memo_valid = None if out_shape is None else self._valid_decimated(window, shape)
        if out_shape is not None:  # every file decoded once, for the bands and (if needed) validity
            pre = self._prefetch([*idx, *(core if memo_valid is None else ())], window, shape)
        else:
            pre = self._read_together(idx, window)
        for k, i in enumerate(idx):
            arr, bad = self._raw_band(i, window, out_shape, pre)
            if out_shape is not None and i in core:
                have[i] = (bad, arr == 0 if self._sources[i].allzero_fill else None)
            out[k] = self._sources[i].scaling.apply(arr)
            out[k][bad] = np.nan
        if out_shape is None:
            # full resolution: validity of the window comes from the memo (no re-read of the core bands)
            out[:, ~self._valid_full()[_slices(window)]] = np.nan
        else:
            invalid = ~memo_valid if memo_valid is not None else self._invalid(window, out_shape, shape, have, pre)
            out[:, invalid] = np.nan
        return out

    def valid(self, window: Window | None = None, out_shape: tuple[int, int] | None = None) -> np.ndarray:
        """bool (h, w): True = valid data in every non-atmospheric band.

        Full-resolution requests are answered from the memoised mask (a fresh copy, so callers may
        edit it); decimated ones (``out_shape``) read the core bands at that size.
        """
        window = self._check_window(window)
        if out_shape is None:
            return self._valid_full()[_slices(window)].copy()
        shape = self._shape(window, out_shape)
        memo_valid = self._valid_decimated(window, shape)
        if memo_valid is not None:
            return memo_valid
        return ~self._invalid(window, out_shape, shape, {}, self._prefetch(self._core(), window, shape))

    def valid_full(self) -> np.ndarray:
        """The whole scene's validity mask, shared and read-only (no copy: one byte per pixel, held once)."""
        return self._valid_full()

    def valid_known(self) -> np.ndarray | None:
        """:meth:`valid_full` if it was built already (read-only), else None: nothing is read."""
        return self._valid_memo

    def _valid_decimated(self, window: Window | None, shape: tuple[int, int]) -> np.ndarray | None:
        """Nearest-sampled validity at ``shape`` from the memo, or None when it is not built yet.

        Why: a decimated read of warped (coarser) band files makes GDAL warp the whole extent;
        re-deciding validity that way costs ~10 s per band at 8000 x 8000 when the answer is
        already known at full resolution.
        """
        memo = self._valid_memo
        if memo is None:
            return None
        full = memo[_slices(window)]
        rows = ((np.arange(shape[0]) + 0.5) * full.shape[0] / shape[0]).astype(np.intp)
        cols = ((np.arange(shape[1]) + 0.5) * full.shape[1] / shape[1]).astype(np.intp)
        return full[np.ix_(rows, cols)]

    def _valid_full(self) -> np.ndarray:
        """Memoised full-resolution validity (read-only bool H x W), built tile by tile once."""
        memo = self._valid_memo
        if memo is not None:
            return memo
        with self._valid_lock:
            if self._valid_memo is None:
                # each file read once per window for all its core bands: band by band, a warped file is
                # re-warped (and its source re-decoded) per band (~23 of 67 CPU-s at 4096², 13 bands)
                self._valid_memo = _validity(self.height, self.width, (
                    (w, ~self._invalid(w, None, self._shape(w, None), {}, self._read_together(self._core(), w)))
                    for w in self.windows(VALID_TILE)))
                log.debug("validity memo built for %dx%d scene (%s)", self.width, self.height,
                          "all valid" if self._valid_memo.strides == (0, 0) else "one byte per pixel")
            return self._valid_memo

    def quality(self) -> QualityLayer | None:
        """The supplied quality flags on this grid (decoded once), None when no usable file was given."""
        if self._quality_memo is None:
            with self._valid_lock:
                if self._quality_memo is None:
                    layer, _ = read_quality(self.quality_paths, self.crs, self.transform, (self.height, self.width))
                    self._quality_memo = (layer,)
        return self._quality_memo[0]

    def info(self) -> SceneInfo:
        """Frozen description (sensor, bands with roles, CRS, pixel size, scaling, notes)."""
        bands = tuple(BandInfo(n, WAVELENGTHS_NM[n], s.band_id, s.path.name, s.warped)
                      for n, s in zip(self.band_names, self._sources))
        crs = "none"
        if self.crs is not None:
            epsg = self.crs.to_epsg()
            crs = f"EPSG:{epsg}" if epsg else self.crs.to_string()
            try:
                name = self.crs.to_dict(projjson=True).get("name")
            except (RasterioError, ValueError):  # a CRS PROJ cannot express as PROJJSON
                name = None
            if name:
                crs += f" ({name})"
        return SceneInfo(tuple(p.name for p in self.paths), self.sensor, self.width, self.height, bands, crs,
                         self.pixel_size_m, self.pixel_area_m2, self.georeferenced, self.scaling,
                         self.calibrated, self._valid_fraction, tuple(self.notes))


# ---------------------------------------------------------------------------------------
def tile_windows(width: int, height: int, size: int) -> Iterator[Window]:
    """Windows of at most ``size`` x ``size`` pixels covering a ``width`` x ``height`` grid, row by row."""
    if size <= 0:
        raise ValueError(f"invalid tile size: {size!r}; expected a positive integer")
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


def _validity(height: int, width: int, parts: Iterable[tuple[Window, np.ndarray]]) -> np.ndarray:
    """Read-only bool (height, width) from its windows; a zero-stride view of one True when all are valid.

    Why: most scenes (a crop, an aerial tile, a swath interior) have no invalid pixel, and their mask
    would otherwise hold one byte per pixel for the whole run (100 MB at 10240²) to say so.
    """
    out: np.ndarray | None = None
    for w, part in parts:
        if out is None and part.all():
            continue
        if out is None:  # the first window with an invalid pixel: every earlier one was all valid
            out = np.ones((height, width), dtype=bool)
        out[_slices(w)] = part
    if out is None:
        return np.broadcast_to(np.True_, (height, width))  # read-only, like the mask below
    out.flags.writeable = False
    return out


def _slices(window: Window | None) -> tuple[slice, slice]:
    """Array slices of a checked (integer) window; the whole array for None."""
    if window is None:
        return slice(None), slice(None)
    r0, c0 = int(window.row_off), int(window.col_off)
    return slice(r0, r0 + int(window.height)), slice(c0, c0 + int(window.width))


from spex.io.opening import open_scene  # noqa: E402  (re-export; opening imports Scene)
