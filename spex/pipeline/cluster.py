"""A Dask client for batch work: a LocalCluster sized for this machine, or an existing scheduler.

Defaults and why:
- worker processes with one thread each: parts of an extraction hold the GIL (region
  attributes, vector tracing), and a process per worker makes the per-worker memory limit
  real (the nanny restarts a worker that runs away instead of the whole machine swapping);
- workers = min(CPU cores, scenes); memory limit = Dask's "auto" (system memory split evenly)
  unless ``memory_limit`` is given (e.g. "4GB").
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from spex.errors import SpexError

__all__ = ["ClusterSettings", "open_client", "dashboard_text"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterSettings:
    """How to get workers: ``scheduler`` (an address) or a LocalCluster of ``workers`` workers."""

    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int = 1
    processes: bool = True
    memory_limit: str | None = None   # per worker, Dask syntax ("4GB"); None = "auto"
    dashboard_address: str | None = ":8787"

    def local_workers(self, n_scenes: int) -> int:
        if self.workers is not None:
            if self.workers < 1:
                raise SpexError(f"--workers must be at least 1, got {self.workers}")
            return int(self.workers)
        return max(1, min(os.cpu_count() or 1, max(n_scenes, 1)))


@contextlib.contextmanager
def open_client(settings: ClusterSettings, n_scenes: int) -> Iterator[Any]:
    """Yield a ``dask.distributed.Client``; a LocalCluster it started is closed on exit.

    Raises:
        SpexError: dask.distributed is missing, or the scheduler cannot be reached.
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise SpexError("batch needs dask.distributed: pip install 'dask[distributed]'") from exc
    if settings.scheduler:
        try:
            client = Client(settings.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise SpexError(f"cannot reach the Dask scheduler at {settings.scheduler} ({exc}); start one with "
                            "'dask scheduler' and workers with 'dask worker ADDRESS', or omit --scheduler "
                            "for a local cluster") from exc
        with client:
            yield client
        return
    if settings.threads_per_worker < 1:
        raise SpexError(f"--threads-per-worker must be at least 1, got {settings.threads_per_worker}")
    cluster = LocalCluster(n_workers=settings.local_workers(n_scenes), threads_per_worker=settings.threads_per_worker,
                           processes=settings.processes, memory_limit=settings.memory_limit or "auto",
                           dashboard_address=settings.dashboard_address if _has_dashboard() else None)
    with cluster, Client(cluster) as client:
        yield client


def _has_dashboard() -> bool:
    return importlib.util.find_spec("bokeh") is not None


def dashboard_text(client: Any) -> str:
    """One line naming the dashboard address (or why there is none)."""
    link = getattr(client, "dashboard_link", None)
    remote = getattr(client, "cluster", None) is None  # an existing scheduler serves its own dashboard
    if link and (remote or _has_dashboard()):
        return f"Dask dashboard: {link}"
    return "Dask dashboard: not available (install bokeh>=3.1 to get one)"
