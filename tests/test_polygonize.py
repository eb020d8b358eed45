"""Outlines traced from scratch files (large label images) equal those traced from memory."""

import numpy as np
import pytest
from affine import Affine
from scipy import ndimage

import spex.export.polygonize as polygonize
from spex.export.vector import region_polygons


@pytest.mark.parametrize("transform", [Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0), Affine.identity()])
def test_file_backed_tracing_equals_in_memory(monkeypatch: pytest.MonkeyPatch, transform: Affine) -> None:
    rng = np.random.default_rng(7)
    mask = ndimage.binary_opening(rng.random((1100, 300)) < 0.6)  # taller than one written block
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    labels = labels.astype(np.uint16)
    subset = mask & (rng.random(mask.shape) < 0.9)  # a mask that is not labels > 0: only its pixels traced
    memory = region_polygons(labels, transform)
    memory_subset = region_polygons(labels, transform, mask=subset)
    monkeypatch.setattr(polygonize, "FILE_BACKED_PIXELS", 0)
    filed = region_polygons(labels, transform)
    filed_subset = region_polygons(labels, transform, mask=subset)
    assert n > 50 and sorted(memory) == sorted(filed) == list(range(1, n + 1))
    assert all(memory[k].equals_exact(filed[k], 0) for k in memory)
    assert sorted(memory_subset) == sorted(filed_subset)
    assert all(memory_subset[k].equals_exact(filed_subset[k], 0) for k in memory_subset)
    assert sum(g.area for g in memory_subset.values()) < sum(g.area for g in memory.values())


def test_tracing_in_passes_gives_the_same_outlines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passes over label residue classes (large images): every label's outline as from one pass."""
    rng = np.random.default_rng(11)
    mask = ndimage.binary_opening(rng.random((700, 260)) < 0.6)  # not a multiple of the written block
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    labels = labels.astype(np.uint16)
    transform = Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0)
    monkeypatch.setattr(polygonize, "FILE_BACKED_PIXELS", 0)
    one = region_polygons(labels, transform, mask=mask)
    monkeypatch.setattr(polygonize, "PASS_PIXELS", labels.size // 3)  # 4 passes
    traced = list(polygonize.traced_shapes(labels, mask, transform))
    several = region_polygons(labels, transform, mask=mask)
    assert n > 50 and sorted(one) == sorted(several) == list(range(1, n + 1))
    assert all(one[k].equals_exact(several[k], 0) for k in one)
    assert len(traced) == sum(len(getattr(g, "geoms", [g])) for g in one.values())
    residues = [int(value) % 4 for _, value in traced]
    assert residues == sorted(residues) and set(residues) == {0, 1, 2, 3}  # one residue class per pass
