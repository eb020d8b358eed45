"""MemoScene: repeated reads come from memory, bit-identical, copied, bounded in bytes (LRU)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import Counted
from rasterio.windows import Window

from spex.export import render_preview
from spex.io import MemoScene, Scene, open_scene

S2_10M = "s2l1c_virginia_small_10m_B02-B03-B04-B08.tif"  # 200 x 200, blue green red nir


@pytest.fixture()
def scene(data_dir: Path) -> Iterator[Scene]:
    with open_scene(data_dir / S2_10M) as s:
        s.read, s.valid = Counted(s.read), Counted(s.valid)  # instance attributes shadow the methods
        yield s


def test_repeated_reads_are_served_from_memory(scene: Scene) -> None:
    memo = MemoScene(scene)
    first = memo.read(["red", "nir"], out_shape=(50, 50))
    again = memo.read(["red", "nir"], out_shape=(50, 50))
    mask = memo.valid(out_shape=(50, 50))
    assert np.array_equal(memo.valid(out_shape=(50, 50)), mask)
    assert scene.read.calls == 1 and scene.valid.calls == 1
    assert (memo.hits, memo.misses) == (2, 2)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, scene.read.fn(["red", "nir"], out_shape=(50, 50)))
    assert first.dtype == np.float32 and first.shape == (2, 50, 50)


def test_bands_windows_and_shapes_are_distinct_keys(scene: Scene) -> None:
    memo = MemoScene(scene)
    full = memo.read(["red"])
    window = memo.read(["red"], window=Window(10, 20, 30, 40))
    memo.read(["red"], window=Window(10, 20, 30, 40))
    small = memo.read(["red"], out_shape=(100, 100))
    other = memo.read(["nir"])
    assert scene.read.calls == 4
    assert full.shape == (1, 200, 200) and small.shape == (1, 100, 100) and window.shape == (1, 40, 30)
    np.testing.assert_array_equal(window[0], full[0, 20:60, 10:40])
    assert not np.array_equal(full, other, equal_nan=True)


def test_callers_get_copies(scene: Scene) -> None:
    memo = MemoScene(scene)
    a = memo.read(["red"])
    a[:] = -1.0  # a caller editing its input in place ...
    b = memo.read(["red"])
    assert not np.any(b == -1.0)  # ... does not change what the next caller gets
    b[:] = -2.0
    assert not np.any(memo.read(["red"]) == -2.0)


def test_memory_is_bounded_least_recently_used_first(scene: Scene) -> None:
    one = 200 * 200 * 4  # one float32 band of the full scene
    memo = MemoScene(scene, max_bytes=2 * one)
    memo.read(["red"])
    memo.read(["green"])
    memo.read(["red"])  # red is now the most recently used
    memo.read(["blue"])  # evicts green, the least recently used
    assert memo.nbytes() == 2 * one <= memo.max_bytes
    calls = scene.read.calls
    memo.read(["red"])
    memo.read(["blue"])
    assert scene.read.calls == calls
    memo.read(["green"])
    assert scene.read.calls == calls + 1


def test_oversized_arrays_are_returned_but_not_kept(scene: Scene) -> None:
    memo = MemoScene(scene, max_bytes=1000)
    cube = memo.read()
    assert cube.shape == (4, 200, 200) and memo.nbytes() == 0
    memo.read()
    assert scene.read.calls == 2
    off = MemoScene(scene, max_bytes=0)
    off.valid()
    off.valid()
    # the reads above built the scene's own validity mask: the memo answers from it, keeping no copy
    assert scene.valid_known() is not None
    assert off.nbytes() == 0 and scene.valid.calls == 0
    with pytest.raises(ValueError, match="max_bytes"):
        MemoScene(scene, max_bytes=-1)


def test_everything_else_is_the_wrapped_scene(scene: Scene) -> None:
    memo = MemoScene(scene)
    assert memo.wrapped is scene
    assert memo.band_names == scene.band_names and memo.transform == scene.transform
    assert (memo.width, memo.height, memo.crs) == (scene.width, scene.height, scene.crs)
    assert memo.has("red", "nir") and memo.info() == scene.info()
    memo.read(["red"])
    memo.clear()
    assert memo.nbytes() == 0
    memo.read(["red"])
    assert scene.read.calls == 2


def test_renders_twice_with_one_disk_read_and_the_same_pixels(scene: Scene, tmp_path: Path) -> None:
    memo = MemoScene(scene)
    a = render_preview(memo, tmp_path / "a.png")
    b = render_preview(memo, tmp_path / "b.png")
    direct = render_preview(scene, tmp_path / "direct.png")
    assert scene.read.calls == 2  # one for the memo, one for the direct render
    assert scene.valid.calls == 1  # the direct render; the memo answers from the scene's own validity mask
    assert a.read_bytes() == b.read_bytes() == direct.read_bytes()


def test_close_closes_the_wrapped_scene(data_dir: Path) -> None:
    s = open_scene(data_dir / S2_10M)
    with MemoScene(s) as memo:
        memo.read(["red"])
    assert memo.nbytes() == 0
    with pytest.raises(Exception):  # noqa: B017, PT011 - the closed dataset's own error
        s.read(["red"])
