"""Adaptive thresholds: Otsu between modes, clamping, fallbacks, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.filters import threshold_otsu

from spex.spectral import ThresholdResult, otsu_threshold


def _bimodal(rng, lo=-0.4, hi=0.3, n=(50_000, 30_000), sd=0.08):
    return np.concatenate([rng.normal(lo, sd, n[0]), rng.normal(hi, sd, n[1])]).astype(np.float32)


def test_bimodal_threshold_between_modes():
    v = _bimodal(np.random.default_rng(1))
    r = otsu_threshold(v, bounds=(-0.3, 0.5), fallback=0.0)
    assert r.method == "otsu"
    assert -0.2 < r.value < 0.1
    assert r.value == r.otsu_raw
    # agrees with skimage on the raw values (histogram binning differs slightly)
    assert r.value == pytest.approx(float(threshold_otsu(v)), abs=0.02)


def test_nan_and_inf_are_ignored():
    v = _bimodal(np.random.default_rng(2))
    with_nan = np.concatenate([v, np.full(40_000, np.nan, np.float32), np.full(10, np.inf, np.float32)])
    a = otsu_threshold(v, bounds=(-1, 1), fallback=0.0)
    b = otsu_threshold(with_nan.reshape(-1, 10), bounds=(-1, 1), fallback=0.0)
    assert a.method == b.method == "otsu"
    assert b.value == pytest.approx(a.value, abs=1e-6)


def test_out_of_bounds_otsu_is_clamped():
    v = _bimodal(np.random.default_rng(3), lo=-0.8, hi=-0.5, sd=0.03)
    r = otsu_threshold(v, bounds=(-0.2, 0.5), fallback=0.0)
    assert r.method == "otsu-clamped"
    assert r.value == -0.2
    assert -0.75 < r.otsu_raw < -0.55
    hi = otsu_threshold(-v, bounds=(-0.5, 0.2), fallback=0.0)
    assert (hi.method, hi.value) == ("otsu-clamped", 0.2)


@pytest.mark.parametrize("kind", ["normal", "uniform", "skewed"])
def test_unimodal_gives_fallback(kind):
    rng = np.random.default_rng(4)
    v = {"normal": rng.normal(0.1, 0.1, 100_000), "uniform": rng.uniform(-1, 1, 100_000),
         "skewed": rng.gamma(2.0, 0.1, 100_000) - 0.5}[kind]
    r = otsu_threshold(v, bounds=(-0.5, 0.5), fallback=0.05)
    assert r.method == "fallback"
    assert r.value == 0.05
    assert r.otsu_raw is not None


def test_too_few_or_constant_values_give_fallback():
    r = otsu_threshold(np.array([0.1, 0.9, np.nan]), bounds=(0, 1), fallback=0.3)
    assert r == ThresholdResult(0.3, "fallback", None)
    r = otsu_threshold(np.full(10_000, 0.2), bounds=(0, 1), fallback=0.3)
    assert (r.method, r.value) == ("fallback", 0.3)


def test_minority_class_detected_when_well_separated():
    rng = np.random.default_rng(5)
    v = _bimodal(rng, lo=-0.3, hi=0.4, n=(190_000, 10_000), sd=0.1)
    r = otsu_threshold(v, bounds=(-0.2, 0.5), fallback=0.0)
    assert r.method == "otsu" and -0.1 < r.value < 0.25


def test_large_input_is_subsampled_deterministically():
    v = _bimodal(np.random.default_rng(6), n=(1_500_000, 1_000_000))
    a = otsu_threshold(v, bounds=(-1, 1), fallback=0.0)
    b = otsu_threshold(v, bounds=(-1, 1), fallback=0.0)
    assert a == b
    assert a.value == pytest.approx(float(threshold_otsu(v)), abs=0.02)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="bounds"):
        otsu_threshold(np.zeros(10), bounds=(1.0, 0.0), fallback=0.5)
    with pytest.raises(ValueError, match="method"):
        ThresholdResult(0.0, "guess", None)
