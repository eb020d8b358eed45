"""Degenerate scenes get honest answers: no contrast, clipped pixels, out-of-range reflectance."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from helpers import write_geotiff

from spex.engine import extract
from spex.engine.request import ExtractionRequest
from spex.engine.sanity import check_scene
from spex.errors import SpexWarning
from spex.io import open_scene
from spex.spectral import IndexCache

WATER = ExtractionRequest(targets=("water",))
OLINDA = "l7_olinda_crop.tif"


def _open(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpexWarning)
        return open_scene(path, **kw)


def _bgrn(path, data):
    p = write_geotiff(path, data)
    with rasterio.open(p, "r+") as ds:
        ds.descriptions = ("blue", "green", "red", "nir")
    return p


def test_constant_scene_claims_no_water(tmp_path):
    p = _bgrn(tmp_path / "const.tif", np.full((4, 100, 200), 1000, np.uint16))
    with _open(p) as scene:
        ex = extract(scene, WATER)
    assert ex.mask.sum() == 0 and not ex.regions
    assert any("no spectral contrast" in c for c in ex.caveats)


def test_saturated_pixels_are_invalid_and_counted(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(300, 3000, size=(4, 100, 200)).astype(np.uint16)
    sat = np.zeros((100, 200), bool)
    sat.flat[rng.choice(20000, 15734, replace=False)] = True
    data[:, sat] = 65535
    p = _bgrn(tmp_path / "sat.tif", data)
    with _open(p) as scene:
        cache = IndexCache(scene)
        report = check_scene(cache)
        ex = extract(scene, WATER, cache)
    assert report.n_clipped == 15734
    assert not (ex.mask & sat).any()  # no clipped pixel is called water
    assert any("15,734 px" in c and "invalid" in c for c in ex.caveats)


def test_out_of_range_reflectance_flagged_on_calibrated_scene(tmp_path, data_dir):
    name = "s2l1c_virginia_small_10m_B02-B03-B04-B08.tif"
    with rasterio.open(data_dir / name) as ds:
        data, profile = ds.read(), ds.profile
    bad = np.zeros(data.shape[1:], bool)
    bad[:5, :] = True  # five rows of reflectance 2.0-2.9: no surface reflects that
    data[:, bad] = 20000 + np.random.default_rng(2).permutation(bad.sum()) % 9000
    with rasterio.open(tmp_path / name, "w", **profile) as out:
        out.write(data)
    with _open(tmp_path / name) as scene:
        assert scene.calibrated
        ex = extract(scene, WATER)
    assert not ex.mask[:5].any()
    assert any(f"Out-of-range reflectance: {bad.sum():,} px" in c for c in ex.caveats), ex.caveats


def test_normal_scene_is_unaffected(data_dir):
    paths = sorted(data_dir.glob("s2l1c_virginia_small_*.tif"))
    with _open(paths) as scene:
        cache = IndexCache(scene)
        report = check_scene(cache)
        ex = extract(scene, WATER, cache)
    assert report.refusal is None and not report.no_contrast
    assert ex.mask.sum() > 0
