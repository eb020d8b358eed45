"""Up-front checks of input files, turning GDAL failures into user-facing errors."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import rasterio
from rasterio.errors import NotGeoreferencedWarning as RioNotGeoreferencedWarning
from rasterio.errors import RasterioError

from spex.errors import SceneReadError

__all__ = ["SUPPORTED_DTYPES", "expand_paths", "open_raster", "is_georeferenced", "check_dtype", "check_size"]

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
        raise SceneReadError(f"file not found: {path}")
    if path.is_dir():
        raise SceneReadError(f"{path} is a folder; give the raster files inside it")
    if path.stat().st_size == 0:
        raise SceneReadError(f"{path.name} is empty (0 bytes); upload the GeoTIFF again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RioNotGeoreferencedWarning)
            ds = stack.enter_context(rasterio.open(path))
    except RasterioError as exc:
        msg = str(exc)
        if "not recognized" in msg or "not a supported" in msg.lower():
            raise SceneReadError(f"{path.name} is not a raster image GDAL can read; give a GeoTIFF "
                                 "(or JPEG2000) multispectral scene") from None
        raise SceneReadError(f"{path.name} cannot be read (corrupt or truncated?): {msg}") from None
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


def check_size(ds: rasterio.io.DatasetReader, max_pixels: int) -> None:
    """Reject absurd dimensions before anything is read."""
    n = int(ds.width) * int(ds.height)
    if ds.width <= 0 or ds.height <= 0:
        raise SceneReadError(f"{Path(ds.name).name} has no pixels ({ds.width} x {ds.height})")
    if n > max_pixels:
        raise SceneReadError(f"{Path(ds.name).name} is {ds.width} x {ds.height} = {n:,} pixels, more than the "
                             f"limit of {max_pixels:,}; crop the scene or raise max_pixels")
