"""Training: tokenizer, data pipeline, loss decreases, resume reproduces an uninterrupted run."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from spex.spie.builder import BuildOptions, ClassMap, build_scene, load_records
from spex.train.checkpointing import plot_losses, read_log
from spex.train.config import TrainConfig
from spex.train.data import to_model_bands
from spex.train.loop import LoopConfig, batches
from spex.train.pipeline import train
from spex.train.tokenizer import IM_END, IM_START, IMAGE, PAD, train_tokenizer

TINY_MODEL = {
    "band_names": ["blue", "green", "red", "nir", "swir1", "swir2"],
    "encoder_channels": [8, 16, 32, 64], "encoder_depths": [1, 1, 1, 1],
    "aggregator_channels": 32, "aggregator_groups": 8, "aggregator_dropout": 0.0,
    "decoder_hidden_size": 16, "decoder_num_layers": 1, "decoder_num_heads": 2, "decoder_mlp_dim": 32,
    "text_config": {"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                    "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 1024},
}


@pytest.fixture(scope="module")
def spie_dir(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("spie_train")
    build_scene(data_dir / "eolearn_s2l1c_2015-07-11_13band.tif", out, labels=data_dir / "eolearn_lulc.tif",
                classes=ClassMap.parse("2=forest,8=built"), options=BuildOptions(chip=64, stride=36, variants=1))
    # a fixed, small training set: 4 plain-instruction records, so each step sees the same batch
    recs = [r for r in load_records(out) if r["instruction"] == "plain"][:4]
    assert len(recs) == 4
    for f in (out / "records").glob("*.json"):
        f.unlink()
    (out / "records" / "tiny.json").write_text(json.dumps(recs))
    return out


def _cfg(steps_a: int, steps_b: int) -> TrainConfig:
    return TrainConfig(model=TINY_MODEL, vocab_size=400, chip=64, band_dropout=0.0, spie_keep=1.0,
                       labelled_repeat=1, max_length=256,
                       pretrain=LoopConfig(steps=steps_a, batch_size=2, lr=3e-3, log_every=1, checkpoint_every=2),
                       finetune=LoopConfig(steps=steps_b, batch_size=4, lr=1e-2, warmup_ratio=0.0, log_every=1,
                                           checkpoint_every=3),
                       answer_head=LoopConfig(steps=3, batch_size=4, lr=1e-2, log_every=1))


def test_tokenizer_special_tokens_and_round_trip():
    tok = train_tokenizer(["Extract the water bodies. Water: two regions covering about 12% of the image."] * 3,
                          vocab_size=320)
    for t in (IMAGE, IM_START, IM_END, PAD):
        assert len(tok(t, add_special_tokens=False)["input_ids"]) == 1
    text = f"{IM_START}user\n{IMAGE}\nCentroid [0.854, 0.418]{IM_END}"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    digits = tok.convert_ids_to_tokens(tok("0.854", add_special_tokens=False)["input_ids"])
    assert digits == ["0", ".", "8", "5", "4"]
    with pytest.raises(ValueError):
        train_tokenizer([], vocab_size=10)


def test_missing_bands_become_nan():
    chip = np.random.default_rng(0).random((4, 8, 8), dtype=np.float32)
    out = to_model_bands(chip, ["blue", "green", "red", "nir"], ["blue", "green", "red", "nir", "swir1"],
                         drop=["nir"])
    assert out.shape == (5, 8, 8)
    assert np.array_equal(out[0], chip[0]) and np.isnan(out[3]).all() and np.isnan(out[4]).all()


def test_batches_are_deterministic_and_resumable():
    groups = [i % 3 == 0 for i in range(11)]
    full = list(itertools.islice(batches(11, 4, 5, 0, groups), 9))
    assert list(itertools.islice(batches(11, 4, 5, 4, groups), 5)) == full[4:]
    for b in full:  # one group per batch
        assert len({groups[i] for i in b}) == 1


def test_tiny_training_decreases_loss_and_resumes(spie_dir, tmp_path):
    out, work = tmp_path / "model", tmp_path / "state"
    summary = train(_cfg(4, 8), spie_dir, out, work_dir=work)
    log = read_log(work / "finetune_log.jsonl")
    assert [r["step"] for r in log] == list(range(1, 9))
    assert log[-1]["loss"] < log[0]["loss"]
    assert log[-1]["bce"] < log[0]["bce"]
    head = read_log(work / "answer_head_log.jsonl")
    assert len(head) == 3 and head[-1]["lm"] < head[0]["lm"]
    assert read_log(work / "pretrain_log.jsonl")[-1]["step"] == 4
    for name in ("config.json", "model.safetensors", "tokenizer.json", "training/finetune_loss.png"):
        assert (out / name).exists(), name
    assert summary["parameters"]["total"] > 0 and summary["finetune"]["steps"] == 8

    # interrupted run (time budget hit after step 1), then --resume -> same weights as uninterrupted
    work2, out2 = tmp_path / "state2", tmp_path / "model2"
    from dataclasses import replace
    budget = replace(_cfg(4, 8).finetune, max_minutes=0.0)  # stops after the first step
    train(replace(_cfg(4, 8), finetune=budget), spie_dir, out2, work_dir=work2)
    assert read_log(work2 / "finetune_log.jsonl")[-1]["step"] == 1  # stopped by the time budget
    train(_cfg(4, 8), spie_dir, out2, work_dir=work2, resume=True)
    assert [r["step"] for r in read_log(work2 / "finetune_log.jsonl")] == list(range(1, 9))
    from safetensors.torch import load_file
    a, b = load_file(out / "model.safetensors"), load_file(out2 / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_config_rejects_unknown_keys(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"chip": 64, "learning_rate": 1}))
    from spex.errors import SpexError
    with pytest.raises(SpexError, match="learning_rate"):
        TrainConfig.load(path)
    from spex.train.config import DEFAULT_CONFIG_PATH
    shipped = TrainConfig.load(DEFAULT_CONFIG_PATH)
    assert shipped.chip % 32 == 0 and shipped.finetune.steps > 0


def test_loss_plot_without_matplotlib(tmp_path):
    rows = [{"step": i, "loss": 1.0 / i, "lm": 2.0 / i} for i in range(1, 6)]
    path = plot_losses(rows, ["loss", "lm"], tmp_path / "p.png", title="t")
    from PIL import Image
    assert Image.open(path).size[0] > 100


def test_spectral_priors_and_prompt_class_probe_train(spie_dir, tmp_path):
    """The shipped recipe's options: in-model spectral priors, class balance and the prompt-class probe."""
    from dataclasses import replace

    model = TINY_MODEL | {"spectral_priors": [["nir", "red"], ["green", "swir1"]], "band_presence": True,
                          "text_pixel_similarity": True, "text_pixel_spectral": True}
    cfg = replace(_cfg(2, 12), model=model, prompt_class_weight=1.0, class_balance=1.0, text_embedding_std=1.0)
    out = tmp_path / "model"
    train(cfg, spie_dir, out, work_dir=tmp_path / "state")
    log = read_log(tmp_path / "state" / "finetune_log.jsonl")
    assert all("prompt_ce" in r for r in log)
    assert log[-1]["prompt_ce"] < log[0]["prompt_ce"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["spectral_priors"] == model["spectral_priors"] and saved["text_pixel_spectral"]
    # the probe is a training aid only: nothing of it is in the shipped weights
    from safetensors.torch import load_file
    assert not [k for k in load_file(out / "model.safetensors") if k.startswith("probe")]
