"""``@spaces.GPU`` on Hugging Face ZeroGPU Spaces, a no-op decorator elsewhere.

ZeroGPU attaches a GPU only while a function decorated with ``spaces.GPU`` runs;
on a CPU machine (or without the ``spaces`` package) the function runs as is.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["gpu", "spaces_available"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def spaces_available() -> bool:
    """True when the Hugging Face ``spaces`` package is importable."""
    return importlib.util.find_spec("spaces") is not None


def gpu(fn: F | None = None, *, duration: int = 120) -> F | Callable[[F], F]:
    """Decorate ``fn`` with ``spaces.GPU(duration=...)`` when available, else return it unchanged."""

    def wrap(f: F) -> F:
        if not spaces_available():
            return f
        import spaces  # imported lazily: it patches CUDA initialisation on ZeroGPU

        log.info("running %s under spaces.GPU(duration=%d)", f.__name__, duration)
        return spaces.GPU(duration=duration)(f)

    return wrap(fn) if fn is not None else wrap
