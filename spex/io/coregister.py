"""Multi-file co-registration by georeference onto the finest grid.

Files of one scene (e.g. Sentinel-2 10 m, 20 m and 60 m bands) are never stacked by
array index: their grids may be offset (in the Virginia test scene the 20 m grid starts
10 m west of the 10 m grid). Each coarser file is wrapped in a :class:`WarpedVRT` on the
reference grid, so a pixel lands where its map coordinates say. Resampling is bilinear
(smooth, no blockiness for 20 m bands; for the 60 m atmospheric bands bilinear is also
fine since they only serve as context). Areas outside a file's footprint become NaN.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from spex.errors import SceneReadError

__all__ = ["GridSpec", "pixel_size_metres", "reference_index", "same_grid", "check_overlap", "align"]

log = logging.getLogger(__name__)

#: Resampling used when warping coarser bands onto the reference grid.
RESAMPLING = Resampling.bilinear


@dataclass(frozen=True)
class GridSpec:
    """A raster grid: CRS, transform and size."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @classmethod
    def of(cls, ds: rasterio.io.DatasetReader) -> GridSpec:
        return cls(ds.crs, ds.transform, ds.width, ds.height)


def pixel_size_metres(crs: CRS | None, transform: Affine, width: int, height: int) -> tuple[float, float]:
    """(x, y) pixel size in metres; geographic CRSs converted at the grid's centre latitude."""
    sx = math.hypot(transform.a, transform.d)
    sy = math.hypot(transform.b, transform.e)
    if crs is None:
        return sx, sy
    if crs.is_geographic:
        lat = math.radians(transform.f + transform.d * width / 2 + transform.e * height / 2)
        m_lat = 111132.92 - 559.82 * math.cos(2 * lat) + 1.175 * math.cos(4 * lat)
        m_lon = 111412.84 * math.cos(lat) - 93.5 * math.cos(3 * lat)
        return sx * abs(m_lon), sy * m_lat
    try:
        factor = crs.linear_units_factor[1]
    except Exception:  # CRS without linear units: assume metres
        factor = 1.0
    return sx * factor, sy * factor


def reference_index(grids: Sequence[GridSpec]) -> int:
    """Index of the finest grid (smallest pixel area in metres); first one on ties."""
    areas = [pixel_size_metres(g.crs, g.transform, g.width, g.height) for g in grids]
    return min(range(len(grids)), key=lambda i: (round(areas[i][0] * areas[i][1], 6), i))


def same_grid(a: GridSpec, b: GridSpec) -> bool:
    """True when two grids coincide (within 1e-6 of a pixel)."""
    if (a.width, a.height) != (b.width, b.height) or a.crs != b.crs:
        return False
    return a.transform.almost_equals(b.transform, precision=1e-6 * max(abs(a.transform.a), 1e-9))


def _overlap(ref: GridSpec, other: GridSpec) -> bool:
    left, bottom, right, top = transform_bounds(other.crs, ref.crs, *_bounds(other))
    rl, rb, rr, rt = _bounds(ref)
    return min(right, rr) > max(left, rl) and min(top, rt) > max(bottom, rb)


def _bounds(g: GridSpec) -> tuple[float, float, float, float]:
    west, south, east, north = rasterio.transform.array_bounds(g.height, g.width, g.transform)
    return west, south, east, north


def check_overlap(datasets: Sequence[rasterio.io.DatasetReader], ref: int, names: Sequence[Path]) -> None:
    """Raise :class:`SceneReadError` when a georeferenced file does not overlap the reference file."""
    ref_grid = GridSpec.of(datasets[ref])
    for i, ds in enumerate(datasets):
        grid = GridSpec.of(ds)
        if i == ref or grid.crs is None or ref_grid.crs is None:
            continue
        if not _overlap(ref_grid, grid):
            raise SceneReadError(f"{names[i].name} does not overlap {names[ref].name}: the files cover different "
                                 "areas, so they cannot form one scene")


def align(datasets: Sequence[rasterio.io.DatasetReader], ref: int, stack: ExitStack,
          names: Sequence[Path], src_nodata: Sequence[float | None] | None = None,
          ) -> list[tuple[rasterio.io.DatasetReader | WarpedVRT, bool]]:
    """Readers on the reference grid for every dataset: (reader, warped?).

    ``src_nodata`` overrides a file's nodata value for warping (e.g. 0 for Landsat fill), so that
    fill is never interpolated into valid pixels.

    Raises:
        SceneReadError: a file has no georeference, or does not overlap the reference file.
    """
    ref_grid = GridSpec.of(datasets[ref])
    out: list[tuple[rasterio.io.DatasetReader | WarpedVRT, bool]] = []
    for i, ds in enumerate(datasets):
        grid = GridSpec.of(ds)
        if i == ref or same_grid(grid, ref_grid):
            out.append((ds, False))
            continue
        if grid.crs is None or ref_grid.crs is None:
            raise SceneReadError(f"{names[i].name} and {names[ref].name} have different grids and no "
                                 "georeference, so they cannot be combined; give georeferenced files")
        if not _overlap(ref_grid, grid):
            raise SceneReadError(f"{names[i].name} does not overlap {names[ref].name}: the files cover different "
                                 "areas, so they cannot form one scene")
        vrt = stack.enter_context(WarpedVRT(
            ds, crs=ref_grid.crs, transform=ref_grid.transform, width=ref_grid.width, height=ref_grid.height,
            resampling=RESAMPLING, src_nodata=src_nodata[i] if src_nodata else ds.nodata,
            nodata=float("nan"), dtype="float32"))
        log.info("warping %s onto the grid of %s", names[i].name, names[ref].name)
        out.append((vrt, True))
    return out
