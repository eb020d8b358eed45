"""Silencing bitsandbytes' per-matmul int8 dtype notice around one model call.

Split from :mod:`spex.model.modeling_spex` (one concept per module): both the model's
forward/generate and :mod:`spex.model.loading`'s smoke test wrap LM calls in :func:`_quiet_bnb`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class _DropCastNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "inputs will be cast" not in record.getMessage()


@contextmanager
def _quiet_bnb() -> Iterator[None]:
    """Silence bitsandbytes' per-matmul int8 dtype notice during one call (restored after)."""
    bnb_logger = logging.getLogger("bitsandbytes.autograd._functions")
    flt = _DropCastNotice()
    bnb_logger.addFilter(flt)
    try:
        yield
    finally:
        bnb_logger.removeFilter(flt)
