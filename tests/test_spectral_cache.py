"""IndexCache: window-by-window evaluation, memoisation, errors; fake scene and real crops."""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from spex.errors import BandError
from spex.spectral import IndexCache, cloud_mask, compute_index


@dataclass
class FakeScene:
    """In-memory scene with the Scene read/valid/windows protocol; records every read."""

    cube: np.ndarray                      # (bands, H, W) float32, NaN = invalid
    band_names: tuple[str, ...]
    sensor: str = "fake"
    reads: list[tuple[tuple[str, ...], tuple[int, int, int, int]]] = field(default_factory=list)

    @property
    def height(self) -> int:
        return self.cube.shape[1]

    @property
    def width(self) -> int:
        return self.cube.shape[2]

    def _sl(self, window: Window | None) -> tuple[slice, slice]:
        if window is None:
            return slice(None), slice(None)
        return window.toslices()

    def read(self, bands: Sequence[str] | None = None, window: Window | None = None,
             out_shape: tuple[int, int] | None = None) -> np.ndarray:
        names = tuple(bands or self.band_names)
        w = window or Window(0, 0, self.width, self.height)
        self.reads.append((names, (int(w.row_off), int(w.col_off), int(w.height), int(w.width))))
        idx = [self.band_names.index(b) for b in names]
        return self.cube[idx][(slice(None), *self._sl(window))].copy()

    def valid(self, window: Window | None = None, out_shape: tuple[int, int] | None = None) -> np.ndarray:
        return np.isfinite(self.cube[(slice(None), *self._sl(window))]).all(axis=0)

    def windows(self, size: int = 1024) -> Iterator[Window]:
        for r in range(0, self.height, size):
            for c in range(0, self.width, size):
                yield Window(c, r, min(size, self.width - c), min(size, self.height - r))


@pytest.fixture()
def scene() -> FakeScene:
    rng = np.random.default_rng(0)
    names = ("blue", "green", "red", "nir", "swir1")
    cube = rng.uniform(0.01, 0.5, size=(len(names), 70, 90)).astype(np.float32)
    cube[:, 5, 7] = np.nan              # invalid pixel
    cube[:, 60:65, 80:90] = 0.55        # a bright white block: cloud
    cube[4, 60:65, 80:90] = 0.40        # swir1 < nir
    return FakeScene(cube, names)


def test_index_equals_full_computation_and_is_memoised(scene: FakeScene):
    cache = IndexCache(scene, window_size=32)
    full = {b: scene.cube[i] for i, b in enumerate(scene.band_names)}
    ndvi = cache.index("ndvi")
    assert ndvi.dtype == np.float32 and ndvi.shape == (70, 90)
    np.testing.assert_array_equal(ndvi, compute_index("NDVI", full))
    assert np.isnan(ndvi[5, 7])
    n_windows = len(list(scene.windows(32)))
    assert len(scene.reads) == n_windows == 9
    assert all(names == ("nir", "red") for names, _ in scene.reads)  # only the needed bands
    assert max(h * w for _, (_, _, h, w) in scene.reads) == 32 * 32
    assert cache.index("NDVI") is ndvi
    assert len(scene.reads) == n_windows  # second call: no read
    with pytest.raises(ValueError):
        ndvi[0, 0] = 1.0  # shared, read-only


def test_cached_bands_are_reused_not_reread(scene: FakeScene):
    cache = IndexCache(scene, window_size=50)
    red = cache.band("red")
    np.testing.assert_array_equal(red, scene.cube[2])
    scene.reads.clear()
    cache.index("NDVI")
    assert {names for names, _ in scene.reads} == {("nir",)}


def test_valid_cloud_and_nbytes(scene: FakeScene):
    cache = IndexCache(scene, window_size=40)
    valid = cache.valid()
    assert valid.dtype == bool and valid.sum() == 70 * 90 - 1 and not valid[5, 7]
    cloud = cache.cloud()
    full = {b: scene.cube[i] for i, b in enumerate(scene.band_names)}
    np.testing.assert_array_equal(cloud, cloud_mask(full))
    assert cloud[60:65, 80:90].all()
    cache.index("MNDWI")
    assert cache.nbytes() == 70 * 90 * (1 + 1 + 4)
    assert set(cache.cached()) == {"valid", "cloud", "index:MNDWI"}
    cache.clear()
    assert cache.nbytes() == 0


def test_errors_name_the_missing_band():
    cube = np.zeros((3, 4, 4), dtype=np.float32)
    cache = IndexCache(FakeScene(cube, ("blue", "green", "red")))
    with pytest.raises(BandError, match="nir"):
        cache.index("NDVI")
    with pytest.raises(BandError, match="swir1"):
        cache.band("swir1")
    with pytest.raises(ValueError, match="supported"):
        cache.index("foo")


def test_real_sentinel2_three_resolutions(data_dir: Path):
    from spex.io import open_scene

    paths = sorted(glob.glob(str(data_dir / "s2l1c_virginia_small_*.tif")))
    assert len(paths) == 3
    with open_scene(paths) as scene:
        cache = IndexCache(scene, window_size=64)
        bands = dict(zip(scene.band_names, scene.read(), strict=True))
        for name in ("NDVI", "MNDWI", "NDBI"):
            np.testing.assert_allclose(cache.index(name), compute_index(name, bands), atol=1e-6, equal_nan=True)
        # lagoon / salt-marsh crop: some open water (MNDWI > 0) and some vegetation (NDVI > 0.3)
        assert 0.01 < np.nanmean(cache.index("MNDWI") > 0) < 0.99
        assert np.nanmean(cache.index("NDVI") > 0.3) > 0.05


def test_memo_computes_once_and_counts_its_arrays(scene: FakeScene):
    cache = IndexCache(scene)
    calls = []

    def compute():  # noqa: ANN202
        calls.append(1)
        return np.ones((scene.height, scene.width), np.float32), ["answer"]

    first = cache.memo("model:water", compute)
    assert cache.memo("model:water", compute) is first and len(calls) == 1
    assert "model:water" in cache.cached() and cache.nbytes() == 4 * scene.height * scene.width
    cache.clear()
    cache.memo("model:water", compute)
    assert len(calls) == 2
