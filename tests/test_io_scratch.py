"""File-backed scratch arrays: ordinary arrays to numpy, pages handed back as they are walked, and every
consumer of a file-backed label image (post-processing, regions, overlay, outlines, exports) gives the
in-memory result."""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import VIRGINIA

from spex.engine import extract, parse_instruction
from spex.engine.streamed import extract_streamed
from spex.export import write_outputs
from spex.export.render import downsample_labels
from spex.io import open_scene, scratch
from spex.io.scratch import is_scratch, release_rows, row_blocks, scratch_zeros
from spex.spectral import IndexCache

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_small_arrays_stay_in_memory() -> None:
    a = scratch_zeros((64, 64), np.uint16)
    assert type(a) is np.ndarray and not is_scratch(a) and a.dtype == np.uint16 and not a.any()


def test_large_arrays_are_file_backed_zeros_that_keep_their_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scratch, "SCRATCH_MIN_BYTES", 0)
    a = scratch_zeros((300, 70), np.int32)
    assert is_scratch(a) and is_scratch(np.asarray(a)) and is_scratch(a[10:20, 5:9])
    assert a.shape == (300, 70) and a.dtype == np.int32 and not a.any()
    for r0, block in row_blocks(a, 7):
        block[...] = np.arange(r0, r0 + block.shape[0])[:, None] * 100 + np.arange(70)
    release_rows(a)
    release_rows(a[:, 3:9], 250, 10_000)  # a column view; a stop past the end
    expected = np.arange(300)[:, None] * 100 + np.arange(70)
    np.testing.assert_array_equal(a, expected)
    np.testing.assert_array_equal(np.concatenate([b for _, b in row_blocks(a[5:], 64)]), expected[5:])
    assert not is_scratch(a + 1) and not is_scratch(np.zeros(4))


def test_private_mappings_are_never_released(tmp_path: Path) -> None:
    """A copy-on-write mapping's written pages exist only in memory: handing them back would lose them."""
    path = tmp_path / "c.bin"
    path.write_bytes(bytes(4096 * 4))
    a = np.memmap(path, dtype=np.uint8, mode="c", shape=(4, 4096))
    a[:] = 7
    assert not is_scratch(a)
    release_rows(a)
    assert (a == 7).all()


@linux_only
def test_walked_pages_leave_the_resident_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scratch, "SCRATCH_MIN_BYTES", 0)
    a = scratch_zeros((2048, 8192), np.uint32)  # 64 MiB
    before = _rss_bytes()
    a[:] = 3  # an ordinary full write: every page resident
    assert _rss_bytes() - before > 48 << 20
    release_rows(a)
    assert _rss_bytes() - before < 16 << 20
    peak = 0
    for _, block in row_blocks(a, 64):  # 2 MiB per block
        block += 1
        peak = max(peak, _rss_bytes() - before)
    assert peak < 16 << 20
    assert int(a[::97, ::89].min()) == int(a[::97, ::89].max()) == 4


@pytest.mark.parametrize(("shape", "out"), [((300, 211), (41, 37)), ((1000, 50), (999, 50)), ((64, 64), (1, 1)),
                                            ((5000, 300), (700, 90))])
def test_downsample_labels_in_blocks_is_the_whole_array_reduction(shape: tuple[int, int],
                                                                 out: tuple[int, int]) -> None:
    labels = np.random.default_rng(1).integers(0, 500, size=shape).astype(np.int32)
    rows = (np.arange(out[0]) * shape[0]) // out[0]
    cols = (np.arange(out[1]) * shape[1]) // out[1]
    expected = np.maximum.reduceat(np.maximum.reduceat(labels, rows, axis=0), cols, axis=1)
    np.testing.assert_array_equal(downsample_labels(labels, out), expected)


@pytest.mark.parametrize(("query", "streamed"), [
    ("extract the water bodies", True),
    ("extract the water bodies in the north, not touching the border", False),  # centroid and border filters
    ("extract the forest and the built-up areas", True),                        # classes joined
])
def test_file_backed_labels_give_the_in_memory_result(data_dir: Path, tmp_path: Path, query: str, streamed: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The same mask, labels, regions and downloads (byte for byte) whether the labels are in memory or on file."""
    def run(out: Path):
        with open_scene([data_dir / f for f in VIRGINIA]) as scene:
            request = parse_instruction(query, None, pixel_area_m2=scene.pixel_area_m2).request
            result = extract_streamed(scene, request, tile_size=48) if streamed else \
                extract(scene, request, IndexCache(scene))
            outputs = write_outputs(result, scene, out, reply="r")
        return result, {p.name: p.read_bytes() for p in outputs.paths()}

    memory, files = run(tmp_path / "memory")
    assert not is_scratch(memory.labels)
    monkeypatch.setattr(scratch, "SCRATCH_MIN_BYTES", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    on_file, files_on_file = run(tmp_path / "file")
    assert is_scratch(on_file.labels)
    assert len(memory.regions) > 1
    np.testing.assert_array_equal(on_file.mask, memory.mask)
    np.testing.assert_array_equal(on_file.labels, memory.labels)
    assert on_file.regions == memory.regions
    assert files_on_file.keys() == files.keys()
    for name in ("regions.geojson", "overlay.png", "reply.md"):
        assert files_on_file[name] == files[name], name
    with rasterio.open(tmp_path / "memory" / "mask.tif") as a, rasterio.open(tmp_path / "file" / "mask.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
    assert _gpkg_rows(tmp_path / "file" / "regions.gpkg") == _gpkg_rows(tmp_path / "memory" / "regions.gpkg")


def _gpkg_rows(path: Path) -> list[tuple]:
    """The features of a GeoPackage's "regions" layer (its metadata tables hold write times)."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT * FROM regions ORDER BY fid").fetchall()


def test_without_a_temporary_file_the_array_stays_in_memory(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    def no_file(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scratch, "SCRATCH_MIN_BYTES", 0)
    monkeypatch.setattr(tempfile, "TemporaryFile", no_file)
    with caplog.at_level("WARNING", logger="spex.io.scratch"):
        a = scratch_zeros((100, 100), np.uint16)
    assert type(a) is np.ndarray and not is_scratch(a) and not a.any()
    assert "No space left on device" in caplog.text


def test_value_range_counts_zero_and_reads_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scratch, "BLOCK_PIXELS", 50)  # many blocks
    a = np.zeros((37, 11), dtype=np.int32)
    assert scratch.value_range(a) == (0, 0) and scratch.value_range(np.zeros((0, 5), np.int32)) == (0, 0)
    a[30, 4], a[3, 9] = 812, -7
    assert scratch.value_range(a) == (-7, 812) and scratch.value_range(np.abs(a) + 5) == (0, 817)
