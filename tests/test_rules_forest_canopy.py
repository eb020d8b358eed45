"""Forest vs cleared land where closed canopy dominates: the green split without a histogram valley."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import extract_each, write_geotiff

#: blue, green, red, nir, swir1, swir2 (TOA-like): closed tropical canopy, Landsat-5 Tucuruí medians.
FOREST = (0.06, 0.065, 0.040, 0.27, 0.106, 0.039)


def _forest(tmp_path: Path, cube: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    path = write_geotiff(tmp_path / "s.tif", cube.astype(np.float32), crs="EPSG:32622", origin=(600000, 9600000),
                         res=30)
    ex = extract_each(path, "forest")["forest"]
    return ex.mask, ex.evidence[0].extra_tests


def test_pasture_tail_of_a_forest_scene_is_not_forest(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    h, w = 60, 100
    cube = np.empty((6, h, w))
    for b, v in enumerate(FOREST):
        cube[b] = v * (1 + 0.02 * rng.standard_normal((h, w)))
    # the last 20 columns: pasture / regrowth grading from shrubby to open, a tail of the green histogram
    # (no second peak), with NDVI > 0.5 and NDMI 0.2-0.3 (above the literature forest threshold)
    t = np.linspace(0.0, 1.0, 20)[None, :] * np.ones((h, 1))
    pasture = {1: 0.075 + 0.03 * t, 2: 0.05 + 0.03 * t, 3: 0.30 + 0.0 * t, 4: 0.15 + 0.04 * t}
    for b, v in pasture.items():
        cube[b, :, 80:] = v * (1 + 0.02 * rng.standard_normal((h, 20)))
    mask, tests = _forest(tmp_path, cube)
    assert any("no histogram valley" in x for x in tests)  # the valley-less branch decided
    assert mask[:, :78].mean() > 0.95
    assert mask[:, 82:].mean() < 0.05


def test_pure_forest_with_sunlit_and_shaded_slopes_stays_forest(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    h, w = 60, 100
    light = np.linspace(0.75, 1.35, w)[None, :] * np.ones((h, 1))  # illumination: every band scales alike
    cube = np.stack([v * light * (1 + 0.02 * rng.standard_normal((h, w))) for v in FOREST])
    mask, tests = _forest(tmp_path, cube)
    assert not any("no histogram valley" in x for x in tests)  # same NDMI on both sides: no cover boundary
    assert mask.mean() > 0.95
