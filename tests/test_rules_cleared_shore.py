"""Cleared land along shorelines: water/forest mixed pixels are not cleared land, cleared banks are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import extract_each, write_geotiff


#: blue, green, red, nir, swir1, swir2 TOA reflectance of the endmembers (Landsat-5 TM like, Tucurui reservoir)
WATER = np.array((0.08, 0.06, 0.034, 0.03, 0.007, 0.002))
FOREST = np.array((0.08, 0.065, 0.04, 0.27, 0.108, 0.04))
PASTURE = np.array((0.094, 0.083, 0.071, 0.234, 0.193, 0.096))


def _scene(tmp_path: Path) -> Path:
    """Water on the left (cols < 30), forest to the right with a one-pixel 75/25 water/forest shore
    column (col 30), and a pasture rectangle reaching down to the water (rows 40-59, cols 30-49)."""
    rng = np.random.default_rng(1)
    pix = np.empty((60, 90, 6))
    pix[:, :30] = WATER
    pix[:, 30:] = FOREST
    pix[:, 30] = 0.75 * WATER + 0.25 * FOREST
    pix[40:, 30:50] = PASTURE
    pix *= 1 + 0.02 * rng.standard_normal(pix.shape)
    cube = np.moveaxis(pix, 2, 0).astype(np.float32)
    return write_geotiff(tmp_path / "shore.tif", cube, crs="EPSG:32722", origin=(650000, 9590000), res=30,
                         descriptions=("blue", "green", "red", "nir", "swir1", "swir2"))


def test_shore_mixed_pixels_are_not_cleared_but_cleared_banks_are(tmp_path: Path) -> None:
    ex = extract_each(_scene(tmp_path), "cleared", "water")
    cleared, water = ex["cleared"], ex["water"].mask
    assert water[:, :30].mean() > 0.95 and not water[:, 31:].any()
    shore = cleared.mask[:40, 30]
    assert not shore.any(), f"{shore.sum()} shore (water/forest mixed) pixels called cleared land"
    assert cleared.mask[40:, 30:50].mean() > 0.9   # the pasture bank, shore column included, keeps its bright SWIR1
    assert any("mixed pixel" in e for ev in cleared.evidence for e in ev.extra_tests)
