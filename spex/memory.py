"""Give freed heap memory back to the operating system between the large steps of a run.

Why: glibc keeps freed heap pages (and, after a large ``free``, serves allocations of up to that size
from the heap instead of fresh mappings), so a process that allocated and freed full-scene temporaries
keeps their pages in its RSS: on a 10240² scene ~200 MB more than the arrays it still holds.
``malloc_trim(0)`` returns every free page, at the cost of a few milliseconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

__all__ = ["fix_mmap_threshold", "limit_malloc_arenas", "return_freed_heap"]


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


#: glibc ``mallopt`` parameters.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Allocations of this size or more get mappings of their own (see :func:`fix_mmap_threshold`).
MMAP_THRESHOLD_BYTES = 4 << 20


def _mallopt(param: int, value: int) -> bool:
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None) if libc is not None else None
    return bool(mallopt(param, int(value))) if mallopt is not None else False


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (``M_ARENA_MAX``) for this process; call before threads start.

    Why: every worker thread (Gradio's pool, the turn pool, onnxruntime's) may get its own arena, and
    memory freed in one is not handed back while a few live blocks pin it. False where this is not glibc.
    """
    return _mallopt(_M_ARENA_MAX, arenas)


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Serve every allocation of ``nbytes`` or more from a mapping of its own, unmapped when freed.

    Why: glibc raises its threshold to the size of each large block freed (up to 32 MB), after which
    window-sized arrays (a 1024² float32 band: 4 MB) come from the heap and their pages stay in RSS
    between steps. Fixed at 4 MB: 10240² extract CLI peak 714 -> 684 MiB (with 2 arenas), where
    256 kB cost ~25 % more CPU in page faults. False where this is not glibc.
    """
    return _mallopt(_M_MMAP_THRESHOLD, nbytes)


def return_freed_heap() -> None:
    """Return the heap's free pages to the OS (a no-op where glibc's ``malloc_trim`` is absent)."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        trim(0)
