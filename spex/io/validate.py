"""Up-front checks of input files, turning GDAL failures into user-facing errors."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning as RioNotGeoreferencedWarning
from rasterio.errors import RasterioError

from spex.errors import LimitError, SceneReadError

__all__ = ["SUPPORTED_DTYPES", "DEFAULT_MAX_DECODED_BYTES", "expand_paths", "open_raster", "is_georeferenced",
           "check_dtype", "check_size", "decoded_bytes", "max_decoded_bytes", "check_decoded_size"]

#: Default limit on what one scene decodes to (pixels x bands x bytes per sample), 1.5 GiB.
#: A file's size on disk says nothing: a 52 KB sparse deflate GeoTIFF can declare 2 GB of pixels,
#: and the (non-streamed) engine needs a few times the decoded size in working memory.
#: Raised or lowered per deployment with the environment variable ``SPEX_MAX_DECODED_MB``.
DEFAULT_MAX_DECODED_BYTES = 1536 * 2**20

#: Stored data types spex can scale to reflectance.
SUPPORTED_DTYPES: frozenset[str] = frozenset(
    {"uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"})
_RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".img", ".vrt")


def expand_paths(paths: str | Path | Sequence[str | Path]) -> tuple[list[Path], Path | None]:
    """Return (raster paths, MTL path found among them); folders expand to their raster files."""
    if isinstance(paths, (str, Path)):
        items = [Path(paths)]
    else:
        items = [Path(p) for p in paths]
    if not items:
        raise SceneReadError("no scene file given; give one GeoTIFF or the band files of one scene")
    rasters: list[Path] = []
    mtl: Path | None = None
    for p in items:
        if p.is_dir():
            found = sorted((c for c in p.iterdir() if c.suffix.lower() in _RASTER_SUFFIXES
                            and not re.search(r"(?:^|_)(?:B?QA|QA_\w+)", c.stem, re.IGNORECASE)),
                           key=_natural_key)
            if not found:
                raise SceneReadError(f"folder {p} contains no raster files (.tif, .jp2)")
            rasters.extend(found)
            mtls = sorted(p.glob("*_MTL.txt"))
            if mtls and mtl is None:
                mtl = mtls[0]
        elif p.name.upper().endswith("_MTL.TXT"):
            mtl = p
        else:
            rasters.append(p)
    if not rasters:
        raise SceneReadError("only an MTL file was given; give the band files (GeoTIFF) of the scene too")
    return rasters, mtl


def _natural_key(p: Path) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def open_raster(path: Path, stack: ExitStack) -> rasterio.io.DatasetReader:
    """Open ``path`` for reading inside ``stack``; raise :class:`SceneReadError` with the reason."""
    if not path.exists():
        raise SceneReadError(f"file not found: {path.name}")
    if path.is_dir():
        raise SceneReadError(f"{path} is a folder; give the raster files inside it")
    if path.stat().st_size == 0:
        raise SceneReadError(f"{path.name} is empty (0 bytes); upload the GeoTIFF again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RioNotGeoreferencedWarning)
            ds = rasterio.open(path)
        # Not ``stack.enter_context(ds)``: a dataset's __enter__ enters a rasterio.Env in the calling
        # thread's local state, and its exit then fails in any other thread ("No GDAL environment exists")
        # and leaks the Env in the opening one. Sessions open a scene in one worker thread and close it in
        # another, so the dataset is only closed here (rasterio.open sets up GDAL by itself).
        stack.callback(ds.close)
    except RasterioError as exc:
        msg = str(exc)
        if "not recognized" in msg or "not a supported" in msg.lower():
            raise SceneReadError(f"{path.name} is not a raster image GDAL can read; give a GeoTIFF "
                                 "(or JPEG2000) multispectral scene") from None
        raise SceneReadError(f"{path.name} cannot be read: {msg}") from None  # str() words GDAL's text
    if ds.count == 0:
        raise SceneReadError(f"{path.name} contains no raster bands")
    return ds


def is_georeferenced(ds: rasterio.io.DatasetReader) -> bool:
    """True when the file has a CRS and a non-identity transform."""
    return ds.crs is not None and not ds.transform.is_identity


def check_dtype(ds: rasterio.io.DatasetReader) -> None:
    """Reject data types that cannot hold reflectance or DN (complex, unknown)."""
    bad = sorted({d for d in ds.dtypes if d not in SUPPORTED_DTYPES})
    if bad:
        raise SceneReadError(f"{Path(ds.name).name} stores {', '.join(bad)} values, which are not reflectance "
                             f"or digital numbers; supported: {', '.join(sorted(SUPPORTED_DTYPES))}")


def check_size(ds: rasterio.io.DatasetReader, max_pixels: int, max_bytes: int | None = None) -> None:
    """Reject absurd dimensions and decoded sizes before anything is read.

    Args:
        ds: an open dataset (only its header has been read).
        max_pixels: limit on width x height.
        max_bytes: limit on the decoded size (see :func:`check_decoded_size`); None = the
            deployment default (:func:`max_decoded_bytes`).

    Raises:
        SceneReadError: the file has no pixels.
        LimitError: the grid or the decoded size is over its limit (the message says what to do).
    """
    n = int(ds.width) * int(ds.height)
    name = Path(ds.name).name
    if ds.width <= 0 or ds.height <= 0:
        raise SceneReadError(f"{name} has no pixels ({ds.width} x {ds.height})")
    if n > max_pixels:
        raise LimitError(f"{name} is {ds.width} x {ds.height} = {n:,} pixels, more than the limit of "
                         f"{max_pixels:,}; crop the scene (e.g. gdal_translate -srcwin) or raise max_pixels")
    check_decoded_size(name, ds.width, ds.height, [np.dtype(d).itemsize for d in ds.dtypes], max_bytes)


def decoded_bytes(width: int, height: int, itemsizes: Sequence[int]) -> int:
    """Bytes the pixels decode to: width x height x the sum of each band's bytes per sample."""
    return int(width) * int(height) * int(sum(itemsizes))


def max_decoded_bytes(env: dict[str, str] | None = None) -> int:
    """The deployment's decoded-size limit: ``SPEX_MAX_DECODED_MB`` if set, else the default."""
    value = (os.environ if env is None else env).get("SPEX_MAX_DECODED_MB", "").strip()
    if not value:
        return DEFAULT_MAX_DECODED_BYTES
    try:
        mb = float(value)
    except ValueError:
        raise ValueError(f"invalid SPEX_MAX_DECODED_MB: {value!r}; expected a number of megabytes") from None
    return int(mb * 2**20)


def check_decoded_size(name: str, width: int, height: int, itemsizes: Sequence[int],
                       max_bytes: int | None = None, *, hint: str = "") -> None:
    """Refuse a scene whose pixels decode to more than ``max_bytes`` (before any pixel is read).

    Raises:
        LimitError: naming the declared size, the decoded size, the limit and what to do.
    """
    limit = max_decoded_bytes() if max_bytes is None else int(max_bytes)
    need = decoded_bytes(width, height, itemsizes)
    if need <= limit:
        return
    n_bands = len(itemsizes)
    sizes = sorted(set(itemsizes))
    per = f"{sizes[0]} byte{'s' if sizes[0] > 1 else ''}" if len(sizes) == 1 else "mixed sizes"
    side = int((limit / max(sum(itemsizes), 1)) ** 0.5)
    raise LimitError(
        f"{name} declares {width:,} x {height:,} pixels x {n_bands} band{'s' if n_bands != 1 else ''} "
        f"({per} each), which decodes to {need / 2**30:.2f} GB; the limit here is {limit / 2**30:.2f} GB "
        "(whatever the file's size on disk). Crop it to at most about "
        f"{side:,} x {side:,} pixels (e.g. gdal_translate -srcwin), or keep fewer bands (gdal_translate -b 1 "
        f"-b 2 ...){hint}. A server operator can raise the limit with SPEX_MAX_DECODED_MB.")
