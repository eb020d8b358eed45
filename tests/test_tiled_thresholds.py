"""The scene-wide threshold sample accumulated window by window equals the whole-scene one."""

from __future__ import annotations

import numpy as np
import pytest

from spex.spectral import thresholds
from spex.spectral.thresholds import SceneSample, masked_sample, otsu_threshold


def _bimodal(shape: tuple[int, int], seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = np.where(rng.random(shape) < 0.3, rng.normal(0.4, 0.08, shape), rng.normal(-0.3, 0.1, shape))
    v = v.astype(np.float32)
    v[rng.random(shape) < 0.05] = np.nan
    within = rng.random(shape) < 0.9
    return v, within


def _accumulate(v: np.ndarray, within: np.ndarray, tile: int) -> SceneSample:
    h, w = v.shape
    acc = SceneSample(h, list(range(0, w, tile)))
    # windows added in reverse order: the result must not depend on the order
    for r0 in reversed(range(0, h, tile)):
        for c0 in reversed(range(0, w, tile)):
            acc.add(v[r0:r0 + tile, c0:c0 + tile], within[r0:r0 + tile, c0:c0 + tile], r0, c0)
    return acc


@pytest.mark.parametrize("max_samples", [None, 5000])
def test_windowed_threshold_matches_whole_scene(monkeypatch: pytest.MonkeyPatch, max_samples: int | None) -> None:
    if max_samples is not None:  # forces the seeded subsample path (picks in row-major scene order)
        monkeypatch.setattr(thresholds, "MAX_SAMPLES", max_samples)
    v, within = _bimodal((203, 157))
    whole = masked_sample(v, within)
    acc = _accumulate(v, within, 64)
    assert acc.total == int(np.count_nonzero(within & np.isfinite(v)))
    np.testing.assert_array_equal(np.sort(acc.sample()), np.sort(whole))
    expected = otsu_threshold(whole, bounds=(-0.15, 0.35), fallback=0.0)
    got = acc.threshold(bounds=(-0.15, 0.35), fallback=0.0)
    assert got == expected
    assert got.method in ("otsu", "otsu-clamped")
    acc.close()


def test_windowed_threshold_tile_size_invariant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thresholds, "MAX_SAMPLES", 3000)
    v, within = _bimodal((150, 170), seed=7)
    results = {t: _accumulate(v, within, t).threshold(bounds=(-0.15, 0.35), fallback=0.0) for t in (16, 50, 512)}
    assert len(set(results.values())) == 1
