"""SpilledMap: a full-scene map on disk, written by windows and read back by row blocks unchanged."""

import numpy as np
import pytest

from spex.io.spill import SpilledMap


def test_windows_written_read_back_by_row_blocks() -> None:
    rng = np.random.default_rng(3)
    full = rng.normal(size=(37, 53)).astype(np.float16)
    with SpilledMap(full.shape, np.float16) as spilled:
        for r0 in range(0, 37, 10):  # tiles of 10 x 16, the last ones partial
            for c0 in range(0, 53, 16):
                dest = (slice(r0, min(r0 + 10, 37)), slice(c0, min(c0 + 16, 53)))
                spilled.write(dest, full[dest])
        assert spilled.shape == full.shape and spilled.ndim == 2 and len(spilled) == 37
        assert spilled.dtype == np.float16
        for r0 in range(0, 37, 7):
            np.testing.assert_array_equal(spilled[r0:r0 + 7], full[r0:r0 + 7])
        np.testing.assert_array_equal(spilled[5:9, 3:8], full[5:9, 3:8])
        np.testing.assert_array_equal(spilled[30:99], full[30:])
        assert spilled[40:50].shape == (0, 53)
        block = spilled[0:2]
        block[:] = 0  # an ordinary writeable copy: the map is unchanged
        np.testing.assert_array_equal(spilled[0:2], full[0:2])


def test_full_width_rows_and_unwritten_cells() -> None:
    with SpilledMap((4, 3), np.int32) as spilled:
        spilled.write((slice(1, 3), slice(0, 3)), np.arange(6).reshape(2, 3))
        np.testing.assert_array_equal(spilled[0:4], [[0, 0, 0], [0, 1, 2], [3, 4, 5], [0, 0, 0]])


def test_bad_windows_and_reads_are_refused() -> None:
    with SpilledMap((4, 4), np.float32) as spilled:
        with pytest.raises(ValueError, match="does not fit"):
            spilled.write((slice(3, 5), slice(0, 2)), np.zeros((2, 2)))
        with pytest.raises(TypeError, match="contiguous row slices"):
            spilled[::2]
        with pytest.raises(TypeError, match="contiguous row slices"):
            spilled[1]
