"""Scene validity memo: built once, equal to the per-band computation, and read() no longer re-reads
every core band of a window just to decide its validity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import VIRGINIA
from rasterio.windows import Window

from spex.io import Scene, open_scene
from spex.io import scene as scene_mod

WINDOWS = (Window(0, 0, 200, 200), Window(10, 20, 30, 40), Window(150, 130, 50, 70), Window(63, 64, 65, 66))


@pytest.fixture()
def virginia(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    # small tiles, so the memo of the 200 x 200 crop is built from several (warped) windows
    monkeypatch.setattr(scene_mod, "VALID_TILE", 64)
    with open_scene([data_dir / f for f in VIRGINIA]) as s:
        yield s


def _old_valid(scene: Scene, window: Window | None) -> np.ndarray:
    """Validity as computed before the memo: every core band read for this very window."""
    shape = (scene.height, scene.width) if window is None else (int(window.height), int(window.width))
    return ~scene._invalid(window, None, shape, {})


def _old_read(scene: Scene, bands: list[str], window: Window) -> np.ndarray:
    """read() as computed before the memo (own bad pixels + core-band validity of the window)."""
    out = []
    for name in bands:
        i = scene.band_names.index(name)
        arr, bad = scene._raw_band(i, window, None)
        band = scene._sources[i].scaling.apply(arr)
        band[bad] = np.nan
        out.append(band)
    cube = np.stack(out).astype(np.float32)
    cube[:, ~_old_valid(scene, window)] = np.nan
    return cube


def test_memo_equals_the_full_extent_computation(virginia: Scene) -> None:
    assert any(s.warped for s in virginia._sources)  # the 20 m and 60 m bands are warped onto the 10 m grid
    old = _old_valid(virginia, None)
    assert 0 < old.sum() <= old.size
    memo = virginia.valid()
    assert memo.dtype == bool and memo.shape == (200, 200)
    np.testing.assert_array_equal(memo, old)
    for w in WINDOWS:
        np.testing.assert_array_equal(virginia.valid(window=w), _old_valid(virginia, w))


def test_read_matches_the_old_computation(virginia: Scene) -> None:
    bands = ["red", "nir", "swir1", "cirrus"]
    for w in WINDOWS:
        np.testing.assert_array_equal(virginia.read(bands, window=w), _old_read(virginia, bands, w))
    # decimated reads keep their own path
    small = virginia.read(["red"], out_shape=(50, 50))
    assert small.shape == (1, 50, 50) and np.isfinite(small).any()
    assert virginia.valid(out_shape=(50, 50)).shape == (50, 50)


def test_read_after_valid_reads_only_the_requested_bands(virginia: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    virginia.valid()  # builds the memo (every core band, once)
    calls: list[int] = []
    raw = Scene._raw_band

    def counted(self: Scene, i: int, window: Window | None, out_shape: tuple[int, int] | None, pre=None):
        calls.append(i)
        return raw(self, i, window, out_shape, pre)

    monkeypatch.setattr(Scene, "_raw_band", counted)
    cube = virginia.read(["red", "nir"], window=Window(10, 20, 30, 40))
    assert cube.shape == (2, 40, 30)
    assert sorted(calls) == sorted(virginia.band_names.index(b) for b in ("red", "nir"))
    calls.clear()
    virginia.valid(window=Window(0, 0, 100, 100))
    virginia.valid()
    assert calls == []  # validity is a memo lookup now


def test_valid_returns_an_editable_copy(virginia: Scene) -> None:
    a = virginia.valid()
    a[:] = False
    assert virginia.valid().any()


def test_decimated_validity_comes_from_the_memo_once_built(virginia: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    before = virginia.valid(out_shape=(50, 50))  # no memo yet: the core bands are read at 50 x 50
    full = virginia.valid()
    calls: list[int] = []
    real = Scene._raw_band
    monkeypatch.setattr(Scene, "_raw_band", lambda self, i, w, o, pre=None: calls.append(i) or real(self, i, w, o, pre))
    after = virginia.valid(out_shape=(50, 50))
    assert calls == []  # answered from the memo, no band read
    rows = ((np.arange(50) + 0.5) * full.shape[0] / 50).astype(int)
    assert np.array_equal(after, full[np.ix_(rows, rows)])
    assert (after == before).mean() > 0.98  # same answer as decimating the bands, up to resampling
    cube = virginia.read(["red"], out_shape=(50, 50))
    assert calls == [virginia.band_names.index("red")]  # only the requested band is read
    assert np.array_equal(np.isfinite(cube[0]), after & np.isfinite(cube[0]))


def test_an_all_valid_scene_holds_no_mask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No invalid pixel: the memo is a read-only zero-stride view (no byte per pixel); one invalid pixel in
    a late window: a full mask, True everywhere else, including the windows before it."""
    import rasterio
    from rasterio.transform import from_origin

    monkeypatch.setattr(scene_mod, "VALID_TILE", 32)  # several windows, the hole in the last one
    data = np.full((4, 96, 80), 1200, dtype=np.uint16)
    for name, bad in (("clear.tif", None), ("holed.tif", (90, 70))):
        arr = data.copy()
        if bad is not None:
            arr[:, bad[0], bad[1]] = 0
        path = tmp_path / name
        with rasterio.open(path, "w", driver="GTiff", width=80, height=96, count=4, dtype="uint16", nodata=0,
                           crs="EPSG:32618", transform=from_origin(500000, 4200000, 10, 10)) as dst:
            dst.write(arr)
        with pytest.warns(UserWarning), open_scene([path], bands=["blue", "green", "red", "nir"]) as scene:
            memo = scene.valid_full()
            assert memo.shape == (96, 80) and memo.dtype == bool and not memo.flags.writeable
            expected = np.ones((96, 80), dtype=bool)
            if bad is None:
                assert memo.strides == (0, 0)
            else:
                expected[bad] = False
                assert memo.strides != (0, 0)
            np.testing.assert_array_equal(memo, expected)
            np.testing.assert_array_equal(scene.valid(window=Window(60, 80, 20, 16)), expected[80:, 60:])
            assert scene.valid(window=Window(0, 0, 8, 8)).flags.writeable  # callers still get their own copy


def test_grid_files_are_the_scenes_own_unwarped_handles(virginia: Scene) -> None:
    """Only the 10 m file lies on the grid unwarped (20 m and 60 m are warped views); it is the handle the
    scene reads through (shared block cache), listed once for its four bands."""
    files = virginia.grid_files()
    assert [Path(ds.name).name for ds in files] == [VIRGINIA[0]]
    assert files[0] is virginia._sources[virginia.band_names.index("red")].reader
    assert not files[0].closed
