"""Spectral priors inside the model: normalised differences, presence flags, config and wiring."""

from __future__ import annotations

import json

import pytest
import torch
from test_model_utils import make_batch, tiny_config, tiny_tokenizer

from spex.model import SpexForConditionalGeneration
from spex.model.spectral_priors import DEFAULT_SPECTRAL_PRIORS, PRIOR_SCALE, SpexSpectralPriors
from spex.train.config import DEFAULT_CONFIG_PATH
from spex.train.pipeline import balance_classes

BANDS = ("blue", "green", "red", "nir")
PRIORS = [["nir", "red"], ["green", "nir"]]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def test_priors_are_normalised_differences_and_gain_invariant() -> None:
    layer = SpexSpectralPriors(BANDS, PRIORS, presence=False)
    x = torch.tensor([0.05, 0.08, 0.04, 0.40]).view(1, 4, 1, 1).expand(1, 4, 2, 2).clone()
    out = layer(x)
    ndvi, ndwi = (0.40 - 0.04) / 0.44, (0.08 - 0.40) / 0.48
    assert torch.allclose(out[0, :, 0, 0], PRIOR_SCALE * torch.tensor([ndvi, ndwi]), atol=1e-6)
    assert torch.allclose(layer(x * 1.7), out, atol=1e-6)  # a common gain (illumination) cancels


def test_missing_bands_give_zero_priors_and_presence_flags() -> None:
    layer = SpexSpectralPriors(BANDS, PRIORS, presence=True)
    x = torch.full((1, 4, 2, 2), 0.2)
    x[:, 3] = float("nan")           # no NIR band (RGB scene)
    x[0, :, 1, 1] = float("nan")     # one invalid pixel
    x[0, 2, 0, 0] = 0.0              # a + b = 0 must not divide by zero
    out = layer(x)
    assert out.shape == (1, 2 + 4, 2, 2) and torch.isfinite(out).all()
    assert (out[:, :2] == 0).all()
    presence = out[0, 2:]
    assert presence[3].sum() == 0 and presence[:3, 0, 0].tolist() == [1, 1, 1]
    assert presence[:, 1, 1].sum() == 0


def test_config_validates_prior_bands(tok) -> None:
    with pytest.raises(ValueError, match="swir1"):
        tiny_config(tok, spectral_priors=[["green", "swir1"]])
    with pytest.raises(ValueError, match="two different"):
        tiny_config(tok, spectral_priors=[["nir", "nir"]])
    with pytest.raises(ValueError, match="text_pixel_similarity"):
        tiny_config(tok, text_pixel_spectral=True)
    cfg = tiny_config(tok, spectral_priors=PRIORS, band_presence=True)
    assert cfg.num_input_channels == 4 + 2 + 4
    # the shipped recipe uses the documented default pairs
    shipped = json.loads(DEFAULT_CONFIG_PATH.read_text())["model"]["spectral_priors"]
    assert shipped == [list(p) for p in DEFAULT_SPECTRAL_PRIORS]


def test_model_with_priors_trains_and_round_trips(tmp_path, tok) -> None:
    torch.manual_seed(0)
    cfg = tiny_config(tok, spectral_priors=PRIORS, band_presence=True, text_pixel_similarity=True,
                      text_pixel_spectral=True)
    model = SpexForConditionalGeneration(cfg)
    assert model.vision_encoder.stem.conv1.in_channels == cfg.num_input_channels
    batch = make_batch(tok, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        opt.zero_grad()
        out = model(**batch)
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss))
    assert losses[-1] < losses[0]
    # the full-resolution spectral term reaches the parameters of its pixel MLP
    assert model.text_pixel_head.spectral[0].weight.grad.abs().sum() > 0
    model.eval().save_pretrained(tmp_path)
    loaded = SpexForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.spectral_priors == PRIORS and loaded.config.band_presence
    with torch.no_grad():
        assert torch.equal(loaded(**batch).pred_masks, model(**batch).pred_masks)


def test_balance_classes_repeats_rare_classes() -> None:
    recs = [{"class": "water"}] * 40 + [{"class": "grass"}] * 10
    assert balance_classes(recs, 0.0) is recs
    full = balance_classes(recs, 1.0)
    assert sum(r["class"] == "grass" for r in full) == 40 and sum(r["class"] == "water" for r in full) == 40
    half = balance_classes(recs, 0.5)
    assert sum(r["class"] == "grass" for r in half) == 20
