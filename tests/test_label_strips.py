"""Regions labelled in strips of rows and joined across the seams equal one whole-image labelling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from spex.engine import postprocess as pp


@pytest.mark.parametrize(("seed", "density", "strip"), [(0, 0.45, 7), (1, 0.6, 1), (2, 0.3, 64), (3, 0.55, 13)])
def test_strip_labels_equal_ndimage_labels(monkeypatch, seed: int, density: float, strip: int) -> None:
    rng = np.random.default_rng(seed)
    mask = ndimage.zoom(rng.random((40, 33)) < density, (3, 2), order=0) | (rng.random((120, 66)) < 0.05)
    monkeypatch.setattr(pp, "_LABEL_STRIP_PIXELS", strip * mask.shape[1])
    labels, n = pp._label(mask)
    expected, n_expected = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    assert n == n_expected
    np.testing.assert_array_equal(labels, expected)   # same numbers too: raster order of first pixels
    assert labels.dtype == np.uint16


def test_labels_widen_to_int32_when_uint16_is_too_small(monkeypatch) -> None:
    mask = np.zeros((2, 140_000), dtype=bool)
    mask[0, ::2] = True  # 70,000 one-pixel regions
    monkeypatch.setattr(pp, "_LABEL_STRIP_PIXELS", mask.shape[1])
    labels, n = pp._label(mask)
    assert (n, labels.dtype) == (70_000, np.int32)
    assert labels[0, -2] == 70_000
