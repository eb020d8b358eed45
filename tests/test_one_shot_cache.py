"""A one-shot cache (the extract CLI's) frees maps after the rules and changes nothing in the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import VIRGINIA

from spex.engine import extract, parse_instruction
from spex.io import open_scene
from spex.spectral import IndexCache


@pytest.mark.parametrize("query", ["extract the water bodies", "extract the vegetation",
                                   "extract the built-up areas without the water", "the clouds"])
def test_one_shot_result_is_the_kept_cache_result(data_dir: Path, query: str) -> None:
    with open_scene([data_dir / f for f in VIRGINIA]) as scene:
        request = parse_instruction(query, None, pixel_area_m2=scene.pixel_area_m2).request
        kept = extract(scene, request, IndexCache(scene))
        cache = IndexCache(scene, one_shot=True)
        once = extract(scene, request, cache)
    np.testing.assert_array_equal(once.mask, kept.mask)
    np.testing.assert_array_equal(once.labels, kept.labels)
    assert once.regions == kept.regions
    assert repr(once.evidence) == repr(kept.evidence)   # NaN means (no pixel) compare by text
    assert once.caveats == kept.caveats
    assert not any(k.startswith("band:") for k in cache.cached())   # bands are read again if asked


def test_release_keeps_validity_and_named_indices(data_dir: Path) -> None:
    with open_scene([data_dir / f for f in VIRGINIA]) as scene:
        cache = IndexCache(scene)
        ndvi = cache.index("ndvi").copy()
        cache.index("MNDWI")
        cache.band("nir")
        cache.valid()
        freed = cache.release(keep_indices=("mndwi", "ExG"))   # not a catalogue index: ignored
        assert set(cache.cached()) == {"valid", "index:MNDWI"}
        assert freed == ndvi.nbytes + cache.index("MNDWI").nbytes   # NDVI + nir, both float32 (H, W)
        np.testing.assert_array_equal(cache.index("NDVI"), ndvi)      # recomputed, identical
