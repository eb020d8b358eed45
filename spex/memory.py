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

__all__ = ["limit_malloc_arenas", "return_freed_heap"]


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


#: glibc ``mallopt`` parameter of :func:`limit_malloc_arenas`.
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (``M_ARENA_MAX``) for this process; call before threads start.

    Why: every worker thread (Gradio's pool, the turn pool, onnxruntime's) may get its own arena, and
    memory freed in one is not handed back while a few live blocks pin it. False where this is not glibc.
    """
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None) if libc is not None else None
    return bool(mallopt(_M_ARENA_MAX, int(arenas))) if mallopt is not None else False


def return_freed_heap() -> None:
    """Return the heap's free pages to the OS (a no-op where glibc's ``malloc_trim`` is absent)."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        trim(0)
