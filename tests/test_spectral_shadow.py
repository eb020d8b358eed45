"""Cloud shadow: found where a cloud's projection lands on a dark basin, never on a lake with no cloud."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from helpers import extract_each, write_geotiff

from spex.spectral.shadow import match_shadows, potential_shadow

#: blue, green, red, nir, swir1, swir2 reflectance
VEG = (0.04, 0.07, 0.05, 0.30, 0.15, 0.07)
CLOUD = (0.50, 0.50, 0.50, 0.52, 0.35, 0.25)
WATER = (0.05, 0.05, 0.03, 0.02, 0.01, 0.01)
SHIFT = (15, -10)   # rows down (south), cols left (west): the sun is in the north-north-east


def _scene(size: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    cube = np.empty((6, size, size), dtype=np.float32)
    for b, v in enumerate(VEG):
        cube[b] = v * (1 + 0.08 * rng.standard_normal((size, size)))
    cloud = np.zeros((size, size), dtype=bool)
    cloud[30:52, 60:84] = True
    shadow = np.roll(np.roll(cloud, SHIFT[0], 0), SHIFT[1], 1) & ~cloud
    lake = np.zeros((size, size), dtype=bool)
    lake[90:110, 90:112] = True
    cube[:, shadow] *= 0.35
    for b in range(6):
        cube[b][cloud] = CLOUD[b]
        cube[b][lake] = WATER[b]
    return cube, shadow, lake


def _bands(cube: np.ndarray) -> dict[str, np.ndarray]:
    return dict(zip(("blue", "green", "red", "nir", "swir1", "swir2"), cube))


def test_shadow_direction_is_estimated_and_lake_is_not_shadow() -> None:
    cube, truth, lake = _scene()
    cloud = np.zeros(truth.shape, dtype=bool)
    cloud[30:52, 60:84] = True
    valid = np.ones(truth.shape, dtype=bool)
    pot = potential_shadow(_bands(cube), valid)
    assert pot[lake].mean() > 0.9            # the lake is dark too: spectrum alone cannot tell it apart
    res = match_shadows(cloud, pot, 30.0)
    expected = math.degrees(math.atan2(-SHIFT[1], SHIFT[0]))   # see spex.spectral.shadow._unit
    assert res.azimuth_deg is not None and abs((res.azimuth_deg - expected + 180) % 360 - 180) <= 5
    iou = (res.mask & truth).sum() / (res.mask | truth).sum()
    assert iou >= 0.8, iou
    assert not (res.mask & lake).any()


def test_known_sun_azimuth_is_used_and_no_cloud_means_no_shadow() -> None:
    cube, truth, _ = _scene()
    cloud = np.zeros(truth.shape, dtype=bool)
    cloud[30:52, 60:84] = True
    pot = potential_shadow(_bands(cube), np.ones(truth.shape, dtype=bool))
    az = math.degrees(math.atan2(-SHIFT[1], SHIFT[0]))
    res = match_shadows(cloud, pot, 30.0, sun_azimuth=az, sun_elevation=60.0)
    assert res.azimuth_source.startswith("sun azimuth") and res.matched == 1
    assert (res.mask & truth).sum() / truth.sum() >= 0.8
    wrong = match_shadows(cloud, pot, 30.0, sun_azimuth=(az + 180) % 360, sun_elevation=60.0)
    assert not wrong.mask.any()              # the shadow cannot lie towards the sun
    none = match_shadows(np.zeros_like(cloud), pot, 30.0)
    assert not none.mask.any()


def test_shadow_class_and_exclusion_through_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the cloud model (SPEX_CLOUD_METHOD=spectral), cloud objects + the geometric match give the shadow."""
    monkeypatch.setenv("SPEX_CLOUD_METHOD", "spectral")
    cube, truth, lake = _scene()
    path = write_geotiff(tmp_path / "tm_reflectance.tif", cube, crs="EPSG:32633", origin=(500000, 5000000), res=30)
    ex = extract_each(path, "shadow", "vegetation", "water")
    shadow, veg, water = ex["shadow"], ex["vegetation"], ex["water"]
    assert (shadow.mask & truth).sum() / truth.sum() >= 0.8
    assert not (shadow.mask & lake).any()
    assert not (veg.mask & shadow.mask).any()          # excluded by default
    assert (water.mask & lake).sum() / lake.sum() > 0.9 and not (water.mask & truth).any()
    assert any("cloud shadow" in c for c in veg.caveats)
    assert shadow.evidence[0].index == "SHADOW" and "matched" in " ".join(shadow.evidence[0].extra_tests)

