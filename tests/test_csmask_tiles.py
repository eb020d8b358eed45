"""The cloud model in bounded memory gives exactly what ukis-csmask's own CSmask and full-scene maps give."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasterio.windows import Window

from spex.io import open_scene
from spex.spectral import IndexCache
from spex.spectral.csmask import (
    CoarseRows,
    SceneBands,
    _block_mean,
    _spans,
    csmask_available,
    csmask_coarse,
    expand_classes,
)

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.skipif(not csmask_available() and not os.environ.get("CI"),
                                reason="ukis-csmask / onnxruntime not installed")
_SIX = ["blue", "green", "red", "nir", "swir16", "swir22"]
_MODEL_NAMES = ["blue", "green", "red", "nir", "swir1", "swir2"]


def _image(shape: tuple[int, int], bands: int, seed: int = 0) -> np.ndarray:
    """Dark ground with bright, white blobs (cloud-like) and dark patches, reflectance 0..0.6."""
    rng = np.random.default_rng(seed)
    img = (0.05 + 0.1 * rng.random((*shape, bands))).astype(np.float32)
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    for _ in range(6):
        r, c, rad = rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.integers(8, 40)
        blob = (rows - r) ** 2 + (cols - c) ** 2 < rad ** 2
        img[blob] = 0.5 + 0.1 * rng.random((int(blob.sum()), bands))
        img[np.roll(blob, 25, axis=(0, 1))] *= 0.3
    return img


@pytest.mark.parametrize(("shape", "bands", "level"), [((300, 420), 6, "l1c"), ((257, 190), 6, "l2a"),
                                                       ((120, 260), 4, "l1c")])
def test_tile_rows_match_csmask(shape: tuple[int, int], bands: int, level: str) -> None:
    from ukis_csmask.mask import CSmask

    from spex.spectral.csmask_tiles import csmask_classes

    img = _image(shape, bands)
    names = _SIX[:bands]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = CSmask(img.copy(), names, product_level=level, invalid_buffer=0, intra_op_num_threads=1,
                     inter_op_num_threads=1, providers=["CPUExecutionProvider"])
    got, version = csmask_classes(img, names, product_level=level, threads=1)
    assert got.dtype == np.uint8 and got.shape == shape
    assert np.array_equal(got, ref.csm[..., 0])
    assert version == ref.model_version


def test_spans_never_leave_a_single_block() -> None:
    assert _spans(2048, 1023, 3) == [(0, 1023), (1023, 2048)]          # 2 px left: joins the span before
    assert _spans(2050, 1023, 3) == [(0, 1023), (1023, 2046), (2046, 2050)]
    assert _spans(2, 1023, 3) == [(0, 2)]


@pytest.mark.parametrize("files", [["l7_olinda_crop.tif"],
                                   sorted(p.name for p in DATA.glob("s2l1c_virginia_small_*.tif"))])
@pytest.mark.parametrize("window", [1024, 64, 33])
def test_window_reads_match_full_maps(files: list[str], window: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_scene([DATA / f for f in files]) as scene:
            cache = IndexCache(scene)
            names = [b for b in ("blue", "green", "red", "nir", "swir1", "swir2") if b in scene.band_names]
            pixel = float(min(scene.pixel_size_m))
            valid = cache.valid()
            maps = csmask_coarse({b: cache.band(b) for b in names}, valid, pixel, surface=False)
            windows = csmask_coarse(SceneBands(scene, {b: b for b in names}, window), valid, pixel, surface=False)
    (map_classes, factor, model), (window_classes, window_factor, window_model) = maps, windows
    assert factor == window_factor == (3 if scene.sensor.startswith("Sentinel-2") else 1)   # 10 m: 3x3 means
    assert np.array_equal(map_classes, window_classes)
    for k in (1, 2):  # cloud, shadow on the scene grid
        assert np.array_equal(expand_classes(map_classes == k, factor, valid.shape) & valid,
                              expand_classes(window_classes == k, factor, valid.shape) & valid)
    assert model == window_model


class _Tall:
    """A real scene's pixels repeated down to ``height`` rows (several tile rows), with a NaN patch."""

    def __init__(self, scene: Any, height: int) -> None:
        self._cube = scene.read(bands=_MODEL_NAMES)
        self.height, self.width = height, self._cube.shape[2]
        self._nan = (slice(700, 760), slice(20, 90))   # rows of the second tile row, partly in one band only

    def read(self, bands: list[str], window: Window) -> np.ndarray:
        rows = np.arange(window.row_off, window.row_off + window.height) % self._cube.shape[1]
        cube = self._cube[[_MODEL_NAMES.index(b) for b in bands]][:, rows,
                                                                  window.col_off:window.col_off + window.width].copy()
        r = np.arange(window.row_off, window.row_off + window.height)
        at = (r >= self._nan[0].start) & (r < self._nan[0].stop)
        cube[1, at, self._nan[1]] = np.nan
        return cube


def _whole_image(src: SceneBands, names: list[str], f: int) -> np.ndarray:
    """The whole block-mean image as csmask_coarse built it before CoarseRows (the reference)."""
    scene = src.scene
    h, w = int(scene.height), int(scene.width)
    out = np.empty((-(-h // f), -(-w // f), len(names)), dtype=np.float32)
    size = max(f, (src.window_size // f) * f)
    for r0, r1 in _spans(h, size, f):
        for c0, c1 in _spans(w, size, f):
            cube = scene.read(bands=[src.names[b] for b in names], window=Window(c0, r0, c1 - c0, r1 - r0))
            for k in range(len(names)):
                m = _block_mean(cube[k], f)
                out[r0 // f:r0 // f + m.shape[0], c0 // f:c0 // f + m.shape[1], k] = m
    return out


@pytest.mark.parametrize(("files", "tall"), [(["l7_olinda_crop.tif"], None),
                                             ([p.name for p in DATA.glob("eolearn_s2l1c_2015-07-31*.tif")], None),
                                             (sorted(p.name for p in DATA.glob("s2l1c_virginia_small_*.tif")), None),
                                             (sorted(p.name for p in DATA.glob("s2l1c_virginia_small_*.tif")), 1799)])
@pytest.mark.parametrize("window", [1024, 96, 33])
def test_lazy_rows_match_whole_image(files: list[str], tall: int | None, window: int) -> None:
    """Rows made span by span on demand give the whole image's values, ok map and classes, bit for bit."""
    from spex.spectral.csmask_tiles import csmask_classes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_scene([DATA / f for f in files]) as scene:
            names = [b for b in _MODEL_NAMES if b in scene.band_names]
            f = 3 if scene.sensor.startswith("Sentinel-2") else 1
            src = SceneBands(scene if tall is None else _Tall(scene, tall), {b: b for b in names}, window)
            img = _whole_image(src, names, f)
            ok = np.isfinite(img).all(axis=-1)
            img[~ok] = 0.0
            lazy = CoarseRows(src, names, f)
            assert lazy.shape == img.shape
            for index in (np.arange(img.shape[0])[::-1], np.random.default_rng(0).permutation(img.shape[0])):
                assert np.array_equal(lazy.rows(index), img[index])   # spans dropped and made again
            assert np.array_equal(lazy.ok, ok)
            pixel = float(min(scene.pixel_size_m))
            got, got_f, _ = csmask_coarse(src, np.ones((src.scene.height, src.scene.width), bool), pixel,
                                          surface=False)
    assert got_f == f and (tall is None or (~ok).any() and tall % f)   # NaN blocks, height not a multiple of f
    ref, _ = csmask_classes(img, [_SIX[_MODEL_NAMES.index(b)] for b in names], product_level="l1c", threads=1)
    ref[~ok] = 0
    assert np.array_equal(got, ref)


@pytest.mark.parametrize(("m", "alpha"), [(256, 0.4), (255, 0.4), (17, 0.1), (8, 0.9), (1, 0.4), (64, 0.0)])
def test_tukey_window_is_scipys(m: int, alpha: float) -> None:
    """The numpy Tukey window (no scipy.signal import) equals scipy's, bit for bit."""
    from scipy.signal.windows import tukey as scipy_tukey

    from spex.spectral.csmask_tiles import tukey

    assert np.array_equal(tukey(m, alpha), scipy_tukey(m, alpha))


def test_model_run_leaves_scipy_signal_unimported() -> None:
    """A cloud-model run imports neither ``ukis_csmask.mask`` nor, through it, ``scipy.signal`` (~37 MB)."""
    code = ("import sys, numpy as np\n"
            "from spex.spectral.csmask_tiles import csmask_classes\n"
            "c, v = csmask_classes(np.full((40, 50, 4), 0.1, np.float32), ['blue', 'green', 'red', 'nir'],\n"
            "                      product_level='l1c', threads=1)\n"
            "print(c.shape, v, 'scipy.signal' in sys.modules, 'ukis_csmask.mask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent).stdout.split()
    assert out[:2] == ["(40,", "50)"] and out[-2:] == ["False", "False"], out
