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
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.coords import BoundingBox
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from spex.bands import WAVELENGTHS_NM, canonical_band
from spex.errors import BandError, NotGeoreferencedWarning, RelativeScalingWarning, SceneReadError
from spex.io.coregister import GridSpec, align, check_overlap, pixel_size_metres, reference_index
from spex.io.decimate import can_decimate_by_blocks, decimated_read
from spex.io.files import sort_scene_files
from spex.io.identify import FileMeta, Identification, identify_bands
from spex.io.mtl import MtlFile, find_mtl, read_mtl
from spex.io.scaling import BandScaling, BandStats, band_stats, plan_scaling
from spex.io.validate import check_dtype, check_size, expand_paths, is_georeferenced, open_raster

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
    _sources: tuple[_BandSource, ...] = field(default=(), repr=False)
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)
    _valid_fraction: float = field(default=1.0, repr=False)
    _valid_memo: np.ndarray | None = field(default=None, repr=False, compare=False)
    _valid_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

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
        if size <= 0:
            raise ValueError(f"invalid tile size: {size!r}; expected a positive integer")
        for row in range(0, self.height, size):
            for col in range(0, self.width, size):
                yield Window(col, row, min(size, self.width - col), min(size, self.height - row))

    # -- reading ------------------------------------------------------------------------
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

    def _raw_band(self, i: int, window: Window | None,
                  out_shape: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
        """(float32 stored values, bool invalid) of band ``i``."""
        src = self._sources[i]
        kw: dict[str, object] = {"window": window}
        if out_shape is not None:
            kw["out_shape"] = tuple(int(v) for v in out_shape)
        try:
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

    def _invalid(self, window: Window | None, out_shape: tuple[int, int] | None, shape: tuple[int, int],
                 have: dict[int, tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
        """bool invalid mask from the core bands; ``have`` holds (bad, zero) of bands already read."""
        invalid = np.zeros(shape, dtype=bool)
        zero_all: dict[int, np.ndarray] = {}
        for i in self._core():
            src = self._sources[i]
            if i in have:
                bad, zero = have[i]
            else:
                arr, bad = self._raw_band(i, window, out_shape)
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
        for k, i in enumerate(idx):
            arr, bad = self._raw_band(i, window, out_shape)
            if out_shape is not None and i in core:
                have[i] = (bad, arr == 0 if self._sources[i].allzero_fill else None)
            out[k] = self._sources[i].scaling.apply(arr)
            out[k][bad] = np.nan
        if out_shape is None:
            # full resolution: validity of the window comes from the memo (no re-read of the core bands)
            out[:, ~self._valid_full()[_slices(window)]] = np.nan
        else:
            memo_valid = self._valid_decimated(window, shape)
            invalid = ~memo_valid if memo_valid is not None else self._invalid(window, out_shape, shape, have)
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
        return memo_valid if memo_valid is not None else ~self._invalid(window, out_shape, shape, {})

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
                out = np.empty((self.height, self.width), dtype=bool)
                for w in self.windows(VALID_TILE):
                    out[_slices(w)] = ~self._invalid(w, None, (int(w.height), int(w.width)), {})
                out.flags.writeable = False
                self._valid_memo = out
                log.debug("validity memo built for %dx%d scene (%d bytes)", self.width, self.height, out.nbytes)
            return self._valid_memo

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
def _slices(window: Window | None) -> tuple[slice, slice]:
    """Array slices of a checked (integer) window; the whole array for None."""
    if window is None:
        return slice(None), slice(None)
    r0, c0 = int(window.row_off), int(window.col_off)
    return slice(r0, r0 + int(window.height)), slice(c0, c0 + int(window.width))


def _allzero_fill(ds: rasterio.io.DatasetReader) -> bool:
    """Integer files without a nodata value: pixels that are 0 in every band are padding."""
    return ds.nodata is None and ds.count > 1 and np.issubdtype(np.dtype(ds.dtypes[0]), np.integer)


def _sample(ds: rasterio.io.DatasetReader, zero_fill: bool = False) -> np.ndarray:
    """Decimated float32 (count, h, w) copy of ``ds`` with NaN where invalid (native grid)."""
    f = max(1, math.ceil(max(ds.width, ds.height) / SAMPLE_SIZE))
    shape = (ds.count, max(1, ds.height // f), max(1, ds.width // f))
    try:
        if f > 1 and can_decimate_by_blocks(ds):
            arr = decimated_read(ds, list(range(1, ds.count + 1)), shape[1:]).astype(np.float32)
        else:
            arr = ds.read(out_shape=shape).astype(np.float32)
        flags = ds.mask_flag_enums
        if any(MaskFlags.per_dataset in fl or MaskFlags.alpha in fl for fl in flags):
            arr[ds.read_masks(out_shape=shape) == 0] = np.nan
    except RasterioError as exc:
        raise SceneReadError(f"{Path(ds.name).name} cannot be read (corrupt or truncated file?): {exc}") from None
    if ds.nodata is not None and not math.isnan(ds.nodata):
        arr[arr == np.float32(ds.nodata)] = np.nan
    if zero_fill:
        arr[arr == 0] = np.nan
    elif _allzero_fill(ds):
        arr[:, (arr == 0).all(axis=0)] = np.nan
    return arr


def _meta(path: Path, ds: rasterio.io.DatasetReader, sample: np.ndarray) -> FileMeta:
    stats = tuple(band_stats(sample[b]) for b in range(ds.count))
    return FileMeta(path, ds.count, ds.dtypes[0], tuple(ds.descriptions), dict(ds.tags()), stats, sample)


def _zero_fill(ident: Identification, ds: rasterio.io.DatasetReader) -> bool:
    """Landsat L1 (QCALMIN = 1) and Sentinel-2 integer products reserve DN 0 for fill."""
    return (ident.sensor.family in ("landsat", "sentinel2")
            and np.issubdtype(np.dtype(ds.dtypes[0]), np.integer))


def _open_files(rasters: Sequence[Path], stack: ExitStack, max_pixels: int) -> tuple[list, int, list[str]]:
    """Open and validate every file; return (datasets, index of the finest grid, notes)."""
    datasets = [open_raster(p, stack) for p in rasters]
    for ds in datasets:
        check_dtype(ds)
        check_size(ds, max_pixels)
    notes: list[str] = []
    if not all(is_georeferenced(ds) for ds in datasets):
        if len(datasets) > 1:
            raise SceneReadError("several files without georeference cannot be combined (their alignment "
                                 "is unknown); give georeferenced GeoTIFFs or one multi-band file")
        warnings.warn(f"{rasters[0].name} has no georeference: areas will be in pixels and no map can be "
                      "drawn", NotGeoreferencedWarning, stacklevel=3)
        notes.append("The file has no georeference (CRS/transform); areas are in pixels.")
    ref = reference_index([GridSpec.of(ds) for ds in datasets])
    check_overlap(datasets, ref, rasters)
    return datasets, ref, notes


def _resolve_mtl(mtl: str | Path | None, listed: Path | None, rasters: Sequence[Path],
                 notes: list[str]) -> MtlFile | None:
    """The MTL given (argument or among the paths), else one found beside the files."""
    given = Path(mtl) if mtl is not None else listed
    if given is not None:
        return read_mtl(given)
    found = find_mtl(list(rasters))
    if found is None:
        return None
    try:
        mtl_file = read_mtl(found)
    except SceneReadError as exc:
        notes.append(f"Ignored {found.name}: {exc}")
        return None
    notes.append(f"Calibration metadata {found.name} found beside the scene and used.")
    return mtl_file


def _apply_fill_rules(datasets: Sequence, rasters: Sequence[Path], samples: list[np.ndarray],
                      zero: Sequence[bool], notes: list[str]) -> list[np.ndarray]:
    """Re-sample files whose DN 0 is fill; note how much fill/padding was found."""
    out = list(samples)
    for k, ds in enumerate(datasets):
        before = float(np.mean(np.isnan(samples[k])))
        if zero[k]:
            out[k] = samples[k].copy()  # == _sample(ds, True) (all-zero pixels are NaN already) without
            out[k][out[k] == 0] = np.nan  # a second decimated read: a full decode on files without overviews
            extra = float(np.mean(np.isnan(out[k]))) - before
            if extra > 0:
                notes.append(f"{rasters[k].name}: DN 0 is fill in Landsat/Sentinel-2 products; "
                             f"{100 * extra:.2f}% of sampled values were 0 and are treated as no data.")
        elif _allzero_fill(ds):
            frac = float(np.mean(np.isnan(samples[k]).all(axis=0)))
            if frac > 0:
                notes.append(f"{rasters[k].name}: {100 * frac:.1f}% of pixels are 0 in every band; treated as "
                             "no data (padding outside the image), never as dark land or water.")
    return out


def _build_sources(datasets: Sequence, readers: Sequence, rasters: Sequence[Path], ident: Identification,
                   scalings: Sequence[BandScaling], zero: Sequence[bool]) -> tuple[_BandSource, ...]:
    """One :class:`_BandSource` per kept (non-skipped) band, in file order."""
    sources: list[_BandSource] = []
    i = 0
    for k, ds in enumerate(datasets):
        reader, warped = readers[k]
        use_mask = (not warped) and any(MaskFlags.per_dataset in f or MaskFlags.alpha in f
                                        for f in ds.mask_flag_enums)
        for b in range(ds.count):
            if ident.roles[i] is not None:
                sources.append(_BandSource(
                    reader, b + 1, scalings[i], None if warped else ds.nodata, zero[k] and not warped, use_mask,
                    rasters[k], ident.band_ids[i], warped, k, _allzero_fill(ds) and not zero[k]))
            i += 1
    return tuple(sources)


def open_scene(paths: str | Path | Sequence[str | Path], *, bands: Sequence[str] | None = None,
               mtl: str | Path | None = None, sensor: str | None = None,
               max_pixels: int = 400_000_000) -> Scene:
    """Open one scene made of one or several raster files.

    Args:
        paths: a GeoTIFF, several files of one scene (co-registered by georeference onto the
            finest grid, never by array index), or a folder of band files. An ``*_MTL.txt`` among
            them is used as ``mtl``.
        bands: override identification: one canonical name/alias per band in file order,
            concatenated over files; "skip" or "-" ignores a band.
        mtl: Landsat MTL metadata for TOA reflectance (found beside the files when omitted).
        sensor: force a sensor layout ("s2_l1c", "landsat5_tm", "aerial_rgbn"...).
        max_pixels: refuse grids larger than this (width x height).

    Raises:
        SceneReadError: missing, empty, corrupt, non-raster, unsupported, all-nodata,
            oversized or non-overlapping files.
        BandError: bands cannot be identified or ``bands`` does not fit.

    Notes:
        Opening reads only a decimated sample (<= 512 px a side per file) for identification
        and scaling statistics; pixel data are read later, window by window.
    """
    rasters, mtl_listed = expand_paths(paths)
    qa_files = sort_scene_files(rasters).qa
    if qa_files and len(qa_files) < len(rasters):
        # quality bands (QA_PIXEL, BQA, S2 cloud masks) are not reflectance: keep them out of the cube
        rasters = [r for r in rasters if r not in qa_files]
    else:
        qa_files = []
    stack = ExitStack()
    try:
        datasets, ref, notes = _open_files(rasters, stack, max_pixels)
        if qa_files:
            notes.append(f"Quality file(s) {', '.join(q.name for q in qa_files)} kept out of the band stack "
                         "(their cloud/shadow bits are not yet used for the masks).")
        mtl_file = _resolve_mtl(mtl, mtl_listed, rasters, notes)
        samples = [_sample(ds) for ds in datasets]
        ident = identify_bands([_meta(p, ds, s) for p, ds, s in zip(rasters, datasets, samples)],
                               bands=bands, sensor=sensor, mtl=mtl_file)
        if mtl_file is not None and ident.sensor.family != "landsat":
            notes.append(f"{mtl_file.path.name if mtl_file.path else 'MTL'} ignored: the scene is not Landsat.")
            mtl_file = None
        zero = [_zero_fill(ident, ds) for ds in datasets]
        samples = _apply_fill_rules(datasets, rasters, samples, zero, notes)

        stats: list[BandStats] = [band_stats(s[b]) for s in samples for b in range(s.shape[0])]
        dtypes = [ds.dtypes[b] for ds in datasets for b in range(ds.count)]
        kept = [i for i, r in enumerate(ident.roles) if r is not None]
        core = [i for i in kept if ident.roles[i] not in ATMOSPHERIC_BANDS] or kept
        if all(stats[i].count == 0 for i in core):
            raise SceneReadError(f"{', '.join(p.name for p in rasters)} contains no valid pixels (everything is "
                                 "nodata, NaN or masked)")

        surface = any("_SR_B" in p.name.upper() for p in rasters)
        plan = plan_scaling(ident.sensor, ident.band_ids, ident.roles, dtypes, stats, mtl_file, surface)
        if plan.relative:
            warnings.warn(f"{rasters[0].name}: values are not calibrated reflectance; using a relative per-band "
                          "normalisation (index values are relative)", RelativeScalingWarning, stacklevel=2)

        fill = [0.0 if z else ds.nodata for ds, z in zip(datasets, zero)]
        readers = align(datasets, ref, stack, rasters, fill) if len(datasets) > 1 else [(datasets[0], False)]
        sources = _build_sources(datasets, readers, rasters, ident, plan.bands, zero)
        warped_names = [rasters[k].name for k, (_, w) in enumerate(readers) if w]
        if warped_names:
            notes.append(f"Co-registered by georeference onto the grid of {rasters[ref].name} (bilinear "
                         f"resampling of {', '.join(warped_names)}); pixels outside a file's footprint are no data.")
        skipped = [ident.band_ids[i] for i, r in enumerate(ident.roles) if r is None]
        if skipped:
            notes.append(f"Ignored bands: {', '.join(skipped)}.")

        ref_ds = datasets[ref]
        pos = [(k, b) for k, ds in enumerate(datasets) for b in range(ds.count)]
        ref_core = [samples[ref][pos[i][1]] for i in core if pos[i][0] == ref] or list(samples[ref])
        valid_fraction = float(np.mean(np.all(np.isfinite(np.stack(ref_core)), axis=0)))
        nodata = ref_ds.nodata
        scene = Scene(
            band_names=tuple(ident.roles[i] for i in kept),  # type: ignore[misc]
            sensor=ident.sensor.name,
            crs=ref_ds.crs if is_georeferenced(ref_ds) else None,
            transform=ref_ds.transform,
            width=ref_ds.width, height=ref_ds.height,
            nodata=None if nodata is None or math.isnan(nodata) else nodata,
            scaling=plan.description, calibrated=plan.calibrated,
            notes=list(ident.notes) + notes + plan.notes,
            paths=tuple(rasters), _sources=sources, _stack=stack, _valid_fraction=valid_fraction)
    except BaseException:
        stack.close()
        raise
    log.info("opened %s: %s, %d bands, %dx%d", rasters[0].name, scene.sensor, len(scene.band_names),
             scene.width, scene.height)
    return scene
