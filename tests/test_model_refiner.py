"""The SPEX refiner: features, engine-preserving init, a seconds-long training on real labels, routing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import HIDDEN, make_tiny_llama

from spex.engine import ExtractionRequest
from spex.engine.rules import RuleContext, evaluate_rule
from spex.errors import ModelError
from spex.io import open_scene
from spex.model.conditioning import HiddenStateCache, refiner_prompt, seg_hidden_states
from spex.model.llm import LLMCache, load_llm, resolve_llm
from spex.model.refined import LoadedRefiner, RefinedBackend, load_refiner, save_refiner
from spex.model.refiner import MARGIN_CHANNEL, N_FEATURES, MaskRefiner, RefinerConfig, refiner_features
from spex.spectral import IndexCache
from spex.train.refiner import build_samples, evaluate, routing_table, split_masks, train_refiner

DATE = "2015-07-11"


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    folder = make_tiny_llama(tmp_path_factory.mktemp("tiny-llama-refiner"))
    return load_llm(resolve_llm(str(folder)), cache=LLMCache(max_models=1))


@pytest.fixture()
def eolearn(data_dir: Path) -> Path:
    return data_dir / f"eolearn_s2l1c_{DATE}_13band.tif"


def test_features_and_untrained_refiner_reproduce_the_engine(eolearn: Path) -> None:
    with open_scene(eolearn) as scene:
        ctx = RuleContext(IndexCache(scene))
        rule = evaluate_rule("forest", ctx)
        x = refiner_features(ctx, rule)
        assert x.shape == (N_FEATURES, scene.height, scene.width) and x.dtype == np.float32
        assert np.isfinite(x).all()
        assert ((x[MARGIN_CHANNEL] > 0) == rule.mask).all()  # the margin channel carries the engine's decision
        tile = refiner_features(ctx, rule, (slice(10, 30), slice(5, 25)))
        assert np.array_equal(tile, x[:, 10:30, 5:25])
        model = MaskRefiner(RefinerConfig(cond_dim=HIDDEN, width=8)).eval()
        with torch.no_grad():
            logits = model(torch.from_numpy(x[None]), torch.randn(1, HIDDEN))[0].numpy()
        assert ((logits > 0) == rule.mask).all()  # zero-initialised head: untrained = engine


@pytest.fixture(scope="module")
def trained(tiny_llm, tmp_path_factory, data_dir: Path):
    samples = build_samples(data_dir, (DATE,), ("forest", "grass"), phrasings=3, seed=0)
    cache = HiddenStateCache(tmp_path_factory.mktemp("hidden"), tiny_llm.name)
    prompts = list(dict.fromkeys(p for s in samples for p in (*s.prompts, s.canonical)))
    hidden = dict(zip(prompts, cache.get(tiny_llm, prompts)))
    assert np.allclose(cache.get(None, prompts[:1]), hidden[prompts[0]])  # read back from disk, no LLM
    state = tmp_path_factory.mktemp("state") / "state.pt"
    model, info = train_refiner(samples, hidden, steps=30, batch=3, seed=0, state_path=state,
                                config=RefinerConfig(cond_dim=HIDDEN, width=8), log_every=10)
    return samples, hidden, model, info, state


def test_training_on_real_labels_lowers_the_loss_and_resumes(trained) -> None:
    samples, hidden, model, info, state = trained
    assert {s.target for s in samples} == {"forest", "grass"} and all(s.labelled.any() for s in samples)
    assert info["steps"] == 30 and info["final_loss"] is not None and state.is_file()
    # resuming a finished run does no extra step and keeps the weights
    again, info2 = train_refiner(samples, hidden, steps=30, batch=3, seed=0, state_path=state, resume=True,
                                 config=RefinerConfig(cond_dim=HIDDEN, width=8))
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    # grass: the engine's "sparse vegetation" misses this lush grassland; the labels teach the model
    scores = evaluate(model, samples, hidden)
    assert set(scores) == {"forest", "grass"}
    g = scores["grass"]["val"]
    assert g["pixels"] > 0 and math.isfinite(g["model"]) and g["model"] > g["engine"]


def test_split_masks_are_disjoint() -> None:
    m = split_masks((101, 100))
    assert not (m["train"] & m["val"]).any() and not (m["train"] & m["test"]).any() and not (m["val"] & m["test"]).any()


def _refiner(model, scores) -> LoadedRefiner:
    return LoadedRefiner(model, Path("."), tuple(scores), routing_table(scores), scores)


def test_routing_follows_the_held_out_table(trained, tiny_llm, eolearn: Path, tmp_path: Path) -> None:
    _, _, model, _, _ = trained
    scores = {"forest": {"val": {"model": 0.80, "engine": 0.90}, "test": {}},
              "grass": {"val": {"model": 0.60, "engine": 0.05}, "test": {}}}
    assert routing_table(scores) == {"forest": "engine", "grass": "model"}
    auto = RefinedBackend("auto", _refiner(model, scores), llm=tiny_llm)
    assert [(r.target, r.backend) for r in auto.routes(ExtractionRequest(targets=("forest", "grass", "water")))] == [
        ("forest", "engine"), ("grass", "model"), ("water", "engine")]
    assert "0.600 vs engine 0.050" in auto.route("grass").why
    assert "no training labels" in auto.route("water").why
    spex = RefinedBackend("spex", _refiner(model, scores), llm=tiny_llm)
    assert spex.route("forest").backend == "model" and spex.route("water").backend == "engine"
    with open_scene(eolearn) as scene:
        ex = auto.extract(scene, ExtractionRequest(targets=("grass",)), IndexCache(scene))
        assert "grass" in ex.backend and "SPEX refiner" in ex.backend
        assert any("Mask of sparse vegetation / grassland from the SPEX refiner" in c for c in ex.caveats)
        assert ex.evidence[0].threshold_method == "model"
        # while the LLM is still loading (chat), the engine answers and says why
        waiting = RefinedBackend("auto", _refiner(model, scores), llm=lambda: None)
        ex2 = waiting.extract(scene, ExtractionRequest(targets=("grass",)), IndexCache(scene))
        assert any("still loading" in c for c in ex2.caveats) and "spectral engine" in ex2.backend
    # save / load round trip
    save_refiner(model, tmp_path / "r", scores=scores, routing=routing_table(scores), info={"steps": 30})
    loaded = load_refiner(tmp_path / "r")
    assert loaded.routing == {"forest": "engine", "grass": "model"} and loaded.trained == ("forest", "grass")
    for a, b in zip(model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ModelError, match="refiner"):
        load_refiner(tmp_path / "missing")
    with pytest.raises(ModelError, match="mode"):
        RefinedBackend("best", loaded)


def test_refiner_refuses_an_llm_of_another_width(trained, tiny_llm, eolearn: Path) -> None:
    _, _, _, _, _ = trained
    wide = MaskRefiner(RefinerConfig(cond_dim=576, width=8)).eval()
    scores = {"forest": {"val": {"model": 0.9, "engine": 0.8}, "test": {}}}
    backend = RefinedBackend("spex", _refiner(wide, scores), llm=tiny_llm)
    with open_scene(eolearn) as scene, pytest.raises(ModelError, match="576"):
        backend.extract(scene, ExtractionRequest(targets=("forest",)), IndexCache(scene))


def test_prompt_carries_words_class_and_spie(eolearn: Path, tiny_llm) -> None:
    from spex.spie import describe_regions

    with open_scene(eolearn) as scene:
        rule = evaluate_rule("forest", RuleContext(IndexCache(scene)))
        regions = describe_regions(rule.mask, pixel_area_m2=scene.pixel_area_m2)
    prompt = refiner_prompt("show me the jungle", "forest", regions)
    assert prompt.startswith("Request: show me the jungle") and "Size of area" in prompt and prompt.endswith("[SEG]")
    assert "No candidate regions" in refiner_prompt("x", "water", [])
    h = seg_hidden_states(tiny_llm, [prompt, "other"])
    assert h.shape == (2, HIDDEN) and not np.allclose(h[0], h[1])
