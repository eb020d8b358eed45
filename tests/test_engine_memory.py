"""Block-wise helpers that replaced full-size temporaries give exactly the old results."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from spex.engine import postprocess as post_mod
from spex.io import scratch
from spex.spectral import otsu_threshold
from spex.spectral import thresholds as thr_mod
from spex.spectral.thresholds import masked_sample

extract_mod = importlib.import_module("spex.engine.extract")  # the package re-exports a function of that name


def _map(h: int, w: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(h, w)).astype(np.float32)
    v[: h // 3] += 3.0  # bimodal, so Otsu is accepted
    v[rng.random((h, w)) < 0.1] = np.nan
    return v, rng.random((h, w)) < 0.8


def test_masked_sample_small_is_the_plain_selection() -> None:
    v, within = _map(300, 500)
    np.testing.assert_array_equal(masked_sample(v, within), v[within & np.isfinite(v)])


def test_masked_sample_large_is_the_same_subsample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thr_mod, "_BLOCK_PIXELS", 4096)  # many blocks
    v, within = _map(400, 300)
    monkeypatch.setattr(thr_mod, "MAX_SAMPLES", 20_000)
    old_all = v[within & np.isfinite(v)]
    assert old_all.size > 20_000
    old = old_all[np.random.default_rng(0).integers(0, old_all.size, 20_000)]
    new = masked_sample(v, within)
    np.testing.assert_array_equal(np.sort(new), np.sort(old))
    assert otsu_threshold(new, bounds=(-5, 5), fallback=0) == otsu_threshold(old_all, bounds=(-5, 5), fallback=0)


def test_label_counts_equal_bincount(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scratch, "BLOCK_PIXELS", 1000)  # row blocks of the label walks (spex.io.scratch)
    labels = np.random.default_rng(2).integers(0, 50, size=(123, 77)).astype(np.int32)
    np.testing.assert_array_equal(post_mod._label_counts(labels, 49), np.bincount(labels.ravel(), minlength=50))
    np.testing.assert_array_equal(post_mod._label_counts(labels, 60), np.bincount(labels.ravel(), minlength=61))


def test_masked_mean_equals_gather_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_mod, "_BLOCK_PIXELS", 5000)
    v, where = _map(210, 130, seed=3)
    exclude = np.random.default_rng(4).random(v.shape) < 0.3
    sel = v[where & ~exclude]
    expected = float(sel[np.isfinite(sel)].mean(dtype=np.float64))
    mean, pixels = extract_mod._masked_mean(v, where, exclude=exclude)
    assert mean == pytest.approx(expected, rel=1e-12) and pixels == int((where & ~exclude).sum())
    also = np.random.default_rng(5).random(v.shape) < 0.6  # the class mask inside the final selection
    both = v[where & also]
    mean, pixels = extract_mod._masked_mean(v, where, also=also)
    assert mean == pytest.approx(float(both[np.isfinite(both)].mean(dtype=np.float64)), rel=1e-12)
    assert pixels == int((where & also).sum())  # non-finite values count as pixels, not in the mean
    cloud = v > 1.0
    assert extract_mod._masked_mean(cloud, where)[0] == pytest.approx(cloud[where].mean(), rel=1e-12)
    assert math.isnan(extract_mod._masked_mean(v, np.zeros_like(where))[0])
