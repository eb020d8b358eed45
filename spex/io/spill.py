"""A full-scene 2-D map kept in a temporary file and read back a block of rows at a time.

Why: the streamed engine needs each class's primary index once more after the tiles (region means and
the reply's evidence read it in row blocks), which as a float16 array is 200 MB at 10240². Written to an
unlinked temporary file with plain writes and read back with plain reads, it sits in the OS page cache
(which the kernel may drop) instead of the process's memory, so peak RSS no longer grows with it.
Not ``np.memmap``: mapped pages that were touched count in RSS until the kernel evicts them.
"""

from __future__ import annotations

import os
import tempfile
from types import TracebackType
from typing import Self

import numpy as np

__all__ = ["SpilledMap"]


class SpilledMap:
    """A (rows, cols) array of ``dtype`` on disk: written by windows, read by row slices.

    Reads give ordinary (writeable) arrays; ``len``, ``shape``, ``ndim`` and ``dtype`` behave as a numpy
    array's, so code that walks a map in row blocks (``arr[r0:r1]``) takes either. Unwritten cells are 0.
    Use as a context manager, or call :meth:`close`; the file is deleted when closed (or at exit).
    """

    def __init__(self, shape: tuple[int, int], dtype: np.dtype | type, *, directory: str | None = None) -> None:
        rows, cols = (int(v) for v in shape)
        if rows < 0 or cols < 0:
            raise ValueError(f"shape must be two non-negative sizes, got {shape}")
        self.shape = (rows, cols)
        self.dtype = np.dtype(dtype)
        self._row_bytes = cols * self.dtype.itemsize
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (lives as long as the map)
        self._file.truncate(rows * self._row_bytes)  # sparse: reads as zeros until written

    ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def write(self, window: tuple[slice, slice], values: np.ndarray) -> None:
        """Store ``values`` at ``window`` = (row slice, column slice), slices with explicit bounds."""
        rows, cols = window
        block = np.ascontiguousarray(values, dtype=self.dtype)
        r0, c0 = int(rows.start), int(cols.start)
        if block.ndim != 2 or r0 < 0 or c0 < 0 or r0 + block.shape[0] > self.shape[0] \
                or c0 + block.shape[1] > self.shape[1]:
            raise ValueError(f"block {block.shape} at ({r0}, {c0}) does not fit the map {self.shape}")
        fd = self._file.fileno()
        if c0 == 0 and block.shape[1] == self.shape[1]:
            os.pwrite(fd, block.tobytes(), r0 * self._row_bytes)
            return
        offset = r0 * self._row_bytes + c0 * self.dtype.itemsize
        for row in block:
            os.pwrite(fd, row.tobytes(), offset)
            offset += self._row_bytes

    def __getitem__(self, key: slice | tuple[slice, ...]) -> np.ndarray:
        """Rows ``key`` (a slice, step 1), optionally followed by a column slice or index."""
        rows, cols = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError(f"a SpilledMap is read by contiguous row slices, got {rows!r}")
        r0, r1, _ = rows.indices(self.shape[0])
        out = np.empty((max(0, r1 - r0), self.shape[1]), dtype=self.dtype)
        if out.size:
            want = out.nbytes
            got = os.preadv(self._file.fileno(), [memoryview(out).cast("B")], r0 * self._row_bytes)
            if got != want:
                raise OSError(f"short read from the spilled map: {got} of {want} bytes")
        return out[(slice(None), *cols)] if cols else out

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
