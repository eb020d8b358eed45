"""The time limit of one chat turn: checked between steps, and enforced from outside.

Why: one turn on a hostile file once ran 125 s while the server held 8 GB. A turn now runs
in a worker thread with a deadline in its context:

- every library call the dialogue makes (:class:`~chat_app.dialogue.Services`, wrapped by
  :func:`limited_services`) and every progress report checks it, and past it raises
  :class:`~spex.errors.TurnTimeLimit`, which the dialogue answers like any expected error
  (a clear reply, the previous scene and result kept);
- if a single step overruns, :func:`run_limited` stops waiting a moment after the limit
  and answers with the caller's fallback (the previous state plus the same message); the
  abandoned worker stops at its next check and its result is dropped.

The deadline lives in a :class:`contextvars.ContextVar`, so concurrent sessions never see
each other's limits.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from spex.errors import TurnTimeLimit

__all__ = ["check_deadline", "limit_message", "limited_progress", "limited_services", "run_limited"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: (deadline on the monotonic clock, limit in seconds) of the turn running in this context.
_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("spex_turn_deadline",
                                                                                        default=None)


def limit_message(limit_s: float) -> str:
    """What the user reads when a turn ran out of time."""
    return (f"That turn took longer than this server allows ({limit_s:g} s per turn), so I stopped it. "
            "Crop the scene to a smaller area, upload fewer bands, or ask for one class at a time.")


def check_deadline() -> None:
    """Raise :class:`TurnTimeLimit` when the turn running in this context is past its limit."""
    current = _DEADLINE.get()
    if current is not None and time.monotonic() > current[0]:
        raise TurnTimeLimit(limit_message(current[1]))


def limited_progress(progress: Callable[[float, str], None]) -> Callable[[float, str], None]:
    """``progress`` that also checks the deadline at every report."""
    def report(fraction: float, desc: str) -> None:
        check_deadline()
        progress(fraction, desc)
    return report


def _checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        check_deadline()
        out = fn(*args, **kwargs)
        check_deadline()  # a step that ran past the limit: its result is not used
        return out
    call.__wrapped_deadline__ = True  # type: ignore[attr-defined]
    call.__name__ = getattr(fn, "__name__", "service")
    call.__doc__ = getattr(fn, "__doc__", None)
    return call


def limited_services(services: Any) -> Any:
    """A copy of a ``Services`` dataclass whose every callable checks the deadline before and after."""
    changes = {f.name: _checked(getattr(services, f.name)) for f in dataclasses.fields(services)
               if callable(getattr(services, f.name))}
    return dataclasses.replace(services, **changes)


def run_limited(work: Callable[[], T], limit_s: float, on_timeout: Callable[[], T], *,
                grace_s: float | None = None, executor: Executor | None = None) -> T:
    """Run ``work()`` with a deadline of ``limit_s``; ``on_timeout()`` when it has not returned by then.

    ``work`` runs in a worker thread under a copy of the caller's context (so Gradio's
    progress tracking still finds its event) plus the deadline; it is given ``grace_s``
    (default: a tenth of the limit, at most 5 s) past the limit to stop at a check itself,
    so its own, more specific reply wins when it can. ``executor``: a pool whose threads are
    reused (as Gradio's are), so GDAL's per-thread environment outlives a turn; without one,
    a fresh daemon thread runs it.
    """
    grace = min(5.0, 0.1 * limit_s) if grace_s is None else grace_s
    ctx = contextvars.copy_context()

    def inner() -> T:
        _DEADLINE.set((time.monotonic() + limit_s, limit_s))
        return work()

    if executor is not None:
        future = executor.submit(ctx.run, inner)
        try:
            return future.result(timeout=limit_s + grace)
        except FutureTimeout:
            log.warning("turn abandoned after %.1f s (limit %g s)", limit_s + grace, limit_s)
            return on_timeout()
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = ctx.run(inner)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="spex-turn", daemon=True).start()
    if not done.wait(limit_s + grace):
        log.warning("turn abandoned after %.1f s (limit %g s)", limit_s + grace, limit_s)
        return on_timeout()
    if "error" in box:
        raise box["error"]
    return box["value"]
