"""Full-scene arrays kept in an unlinked temporary file, whose pages are handed back as they are walked.

Why: a 10240² scene's region labels are 200 MB (uint16) that every later step (post-processing, region
attributes, the overlay, the outlines) reads a block of rows at a time. As a shared file mapping
(``np.memmap``) they behave as an ordinary array for every numpy operation, and pages that were read or
written count in the process's RSS only until :func:`release_rows` hands them back
(``madvise(MADV_DONTNEED)``: the data stays in the file, i.e. in the OS page cache, which the kernel may
write out and drop). Walking them with :func:`row_blocks` therefore keeps one block resident.
Small arrays (under :data:`SCRATCH_MIN_BYTES`) are ordinary in-memory arrays: nothing to gain there.

Unlike :class:`spex.io.spill.SpilledMap` (plain reads and writes, for a map read back a few times),
this is an ndarray: code written for in-memory arrays takes it unchanged, and only the loops that walk
it need :func:`row_blocks` to keep the RSS down. The file has no name (``tempfile.TemporaryFile``) and
disappears with the last view of the array.
"""

from __future__ import annotations

import logging
import mmap
import tempfile
from collections.abc import Iterator
from typing import Final

import numpy as np

__all__ = ["BLOCK_PIXELS", "SCRATCH_MIN_BYTES", "is_scratch", "release_rows", "row_blocks", "scratch_zeros",
           "value_range"]

logger = logging.getLogger(__name__)

#: Arrays of at least this many bytes are file-backed (a 4096² uint16 label image; 10240²: 200 MB).
SCRATCH_MIN_BYTES: Final[int] = 1 << 25
#: Elements per block of :func:`row_blocks` by default (4 MB of int32 labels).
BLOCK_PIXELS: Final[int] = 1 << 20
_DONTNEED: Final[int | None] = getattr(mmap, "MADV_DONTNEED", None)


def scratch_zeros(shape: tuple[int, ...], dtype: np.dtype | type, *, directory: str | None = None) -> np.ndarray:
    """Zeros of ``shape`` and ``dtype``: file-backed when at least :data:`SCRATCH_MIN_BYTES` (module notes),
    else in memory; also in memory, with a logged warning, when no temporary file can be made."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < SCRATCH_MIN_BYTES or _DONTNEED is None:
        return np.zeros(shape, dtype=dtype)
    try:
        with tempfile.TemporaryFile(dir=directory, prefix="spex-scratch-") as f:
            f.truncate(nbytes)  # sparse: reads as zeros until written
            return np.memmap(f, dtype=dtype, mode="r+", shape=shape)  # the mapping keeps the file alive
    except OSError as exc:
        logger.warning("no scratch file for a %d MB array (%s); keeping it in memory", nbytes >> 20, exc)
        return np.zeros(shape, dtype=dtype)


def _mapping(arr: np.ndarray) -> tuple[mmap.mmap, int] | None:
    """The shared mapping behind ``arr`` (a scratch array or a view of one) and ``arr``'s offset in it."""
    root = arr
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not isinstance(root, np.memmap) or root.mode not in ("r+", "w+") or not isinstance(root.base, mmap.mmap):
        return None  # in memory, or a private (copy-on-write) mapping whose dropped pages would be lost
    offset = arr.__array_interface__["data"][0] - root.__array_interface__["data"][0] + int(root.offset)
    return root.base, offset


def is_scratch(arr: np.ndarray) -> bool:
    """Whether ``arr`` is (a view of) a file-backed array from :func:`scratch_zeros`."""
    return _mapping(arr) is not None


def release_rows(arr: np.ndarray, start: int = 0, stop: int | None = None) -> None:
    """Hand back the resident pages of rows ``start:stop`` of a file-backed ``arr`` (their values stay);
    a no-op for in-memory arrays. Pages shared with neighbouring rows go too (they are read back on use)."""
    found = _mapping(arr) if _DONTNEED is not None and arr.ndim >= 1 else None
    if found is None or arr.size == 0:
        return
    mm, offset = found
    stop = arr.shape[0] if stop is None else min(int(stop), arr.shape[0])
    if stop <= start:
        return
    lo = offset + int(start) * arr.strides[0]
    hi = offset + (int(stop) - 1) * arr.strides[0] + (arr[0].nbytes if arr.ndim > 1 else arr.itemsize)
    lo -= lo % mmap.PAGESIZE
    hi = min(len(mm), -(-hi // mmap.PAGESIZE) * mmap.PAGESIZE)
    if hi > lo:
        mm.madvise(_DONTNEED, lo, hi - lo)


def row_blocks(arr: np.ndarray, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, arr[r0:r0 + rows])`` down ``arr`` (default: rows of about :data:`BLOCK_PIXELS` elements);
    each block's pages are handed back once the loop moves on (:func:`release_rows`), so a file-backed array
    stays one block resident however it is walked."""
    row_size = int(np.prod(arr.shape[1:], dtype=np.int64))
    rows = max(1, int(rows) if rows is not None else BLOCK_PIXELS // max(row_size, 1))
    for r0 in range(0, arr.shape[0], rows):
        yield r0, arr[r0:r0 + rows]
        release_rows(arr, r0, r0 + rows)


def value_range(arr: np.ndarray) -> tuple[int, int]:
    """(lowest, highest) value of an integer array, counting 0 (so (0, 0) when empty), read with
    :func:`row_blocks`: a file-backed label image stays one block resident."""
    low, high = 0, 0
    for _, block in row_blocks(arr):
        if block.size:
            low, high = min(low, int(block.min())), max(high, int(block.max()))
    return low, high
