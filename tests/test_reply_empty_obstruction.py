"""An empty cloud / shadow / haze answer says the scene looks clear, not "try 'looser'"."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import write_geotiff

from spex.engine.extract import extract
from spex.engine.reply import explain
from spex.engine.request import ExtractionRequest
from spex.engine.rules.obstruction import CLOUD_METHOD_ENV
from spex.io import open_scene
from spex.spectral import IndexCache


@pytest.fixture
def clear_scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A cloud-free forest / pasture scene (blue, green, red, nir, swir1, swir2 reflectance, 30 m)."""
    monkeypatch.setenv(CLOUD_METHOD_ENV, "spectral")   # deterministic source, no model needed
    rng = np.random.default_rng(2)
    cube = np.empty((6, 40, 80), dtype=np.float32)
    for b, (f, p) in enumerate(zip((0.03, 0.05, 0.03, 0.35, 0.13, 0.06), (0.04, 0.08, 0.06, 0.32, 0.22, 0.12))):
        cube[b, :, :40], cube[b, :, 40:] = f, p
    cube *= 1 + 0.03 * rng.standard_normal(cube.shape).astype(np.float32)
    path = write_geotiff(tmp_path / "clear.tif", cube, crs="EPSG:32622", origin=(600000, 9600000), res=30,
                         descriptions=("blue", "green", "red", "nir", "swir1", "swir2"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_scene(path) as scene:
            yield scene, IndexCache(scene)


@pytest.mark.parametrize("targets, words", [(("cloud",), "cloud"), (("shadow",), "shadow"), (("haze",), "haze"),
                                            (("cloud", "shadow"), "shadow")])
def test_empty_obstruction_reply_says_clear_with_its_source(clear_scene, targets, words) -> None:
    scene, cache = clear_scene
    ext = extract(scene, ExtractionRequest(targets=targets), cache)
    assert ext.selected_pixels == 0
    text = explain(ext, scene)
    assert "Found no" in text and "looser" not in text
    assert "looks clear of" in text and words in text.split("looks clear of", 1)[1].split(".")[0]
    assert "checked by spectral tests" in text


def test_empty_obstruction_after_a_filter_points_at_the_filter(clear_scene) -> None:
    scene, cache = clear_scene
    ext = extract(scene, ExtractionRequest(targets=("cloud",), min_area_m2=1e6), cache)
    text = explain(ext, scene)
    assert "looser" not in text and "looks clear" not in text and "remove a filter" in text


def test_empty_land_class_still_suggests_looser(clear_scene) -> None:
    scene, cache = clear_scene
    ext = extract(scene, ExtractionRequest(targets=("snow",)), cache)
    assert ext.selected_pixels == 0 and "Try 'looser'" in explain(ext, scene)
