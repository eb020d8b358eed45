"""The selection mask as a Cloud-Optimized GeoTIFF on the scene's reference grid.

Values: 1 = selected, 0 = valid but not selected, 255 = nodata (invalid scene pixels),
so a GIS shows exactly what was and was not looked at.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.env import Env
from rasterio.windows import Window

from spex.errors import ExportError, NotGeoreferencedWarning

if TYPE_CHECKING:
    from spex.io import Scene

__all__ = ["MASK_NODATA", "MASK_SELECTED", "MASK_UNSELECTED", "write_mask_cog"]

logger = logging.getLogger(__name__)

MASK_SELECTED: Final[int] = 1
MASK_UNSELECTED: Final[int] = 0
MASK_NODATA: Final[int] = 255
_BLOCK: Final[int] = 512
#: Up to this many pixels (a 1024² preview) the validity mask is read in one piece (1 MB of bool).
_WHOLE_PIXELS: Final[int] = 1024 * 1024
_VALUES_TAG: Final[str] = "1=selected 0=not selected 255=nodata (invalid scene pixel)"


def _cog_available() -> bool:
    with Env() as env:
        return "COG" in env.drivers()


def mask_to_uint8(mask: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """uint8 raster: 1 where ``mask`` (and valid), 0 elsewhere on valid pixels, 255 on invalid."""
    out = np.full(mask.shape, MASK_NODATA, dtype=np.uint8)
    out[valid] = MASK_UNSELECTED
    out[valid & mask] = MASK_SELECTED
    return out


def write_mask_cog(mask: np.ndarray, scene: Scene, path: Path) -> Path:
    """Write ``mask`` (bool (H, W), True = selected) as a deflate-compressed COG; returns ``path``.

    Same grid, CRS and transform as the scene's reference grid. Written block by block: a
    tiled GTiff (512 x 512) next to ``path``, its overviews (mode), then GDAL's COG driver
    copies it (streaming from disk) to ``path``; without the COG driver the tiled GTiff with
    overviews is the result. A scene without CRS is written without one (pixel coordinates)
    and a :class:`NotGeoreferencedWarning` is emitted.

    Raises:
        ExportError: when the mask does not match the scene grid or the file cannot be written.

    Notes:
        Memory: one 512-row strip of the mask and of the scene's validity at a time (plus GDAL's
        block cache), never a full-scene copy; up to 1 Mpx the validity is read whole (1 MB), so a
        :class:`~spex.io.MemoScene` serves the same array to the full-resolution preview.
    """
    path = Path(path)
    if np.shape(mask) != (scene.height, scene.width):
        raise ExportError(f"mask shape {np.shape(mask)} does not match the scene grid "
                          f"({scene.height}, {scene.width}); nothing written to {path}")
    if scene.crs is None:
        warnings.warn(f"{path.name}: the scene is not georeferenced; the mask is written in pixel "
                      "coordinates without a CRS", NotGeoreferencedWarning, stacklevel=2)
    profile = {
        "driver": "GTiff", "width": scene.width, "height": scene.height, "count": 1, "dtype": "uint8",
        "crs": scene.crs, "transform": scene.transform, "nodata": MASK_NODATA, "compress": "deflate",
        "tiled": True, "blockxsize": _BLOCK, "blockysize": _BLOCK, "bigtiff": "IF_SAFER",
    }
    cog = _cog_available()
    if not cog:
        logger.warning("GDAL COG driver unavailable; writing a tiled GeoTIFF with overviews instead")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tiled.tif") if cog else path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # already warned above in user terms; rasterio's own warning would repeat it
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            # a small scene's validity is read whole: a MemoScene then serves the full-resolution preview too
            whole = np.asarray(scene.valid(), dtype=bool) if scene.height * scene.width <= _WHOLE_PIXELS else None
            with rasterio.open(tmp, "w", **profile) as dst:
                for row in range(0, scene.height, _BLOCK):
                    h = min(_BLOCK, scene.height - row)
                    window = Window(0, row, scene.width, h)
                    valid = whole[row:row + h] if whole is not None else np.asarray(scene.valid(window=window), dtype=bool)
                    dst.write(mask_to_uint8(np.asarray(mask[row:row + h], dtype=bool), valid), 1, window=window)
                dst.update_tags(1, SPEX_VALUES=_VALUES_TAG)
                dst.set_band_description(1, "spex selection mask")
                if not cog:
                    factors = [f for f in (2, 4, 8, 16, 32)
                               if min(scene.width, scene.height) // f >= _BLOCK // 2]
                    if factors:
                        dst.build_overviews(factors, rasterio.enums.Resampling.mode)
            if cog:
                rasterio.shutil.copy(tmp, path, driver="COG", compress="DEFLATE", blocksize=_BLOCK,
                                     overview_resampling="MODE", bigtiff="IF_SAFER")
    except (rasterio.errors.RasterioError, OSError) as exc:
        raise ExportError(f"cannot write mask GeoTIFF {path}: {exc}") from exc
    finally:
        if cog:
            Path(tmp).unlink(missing_ok=True)
    return path
