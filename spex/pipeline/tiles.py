"""One large scene's tiles on a Dask cluster (the streamed extraction's ``map_tiles``).

Why: a batch spreads scenes over workers, but one very large scene (a mosaic, a full tile at 10 m)
is one task. The streamed extraction (:mod:`spex.engine.streamed`) makes its tiles independent once
the scene-wide calibration and obstruction are known, so they can run anywhere: each worker opens
the scene itself and returns its tile's core masks; the result equals one process's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["dask_tile_map"]


def dask_tile_map(client: Any) -> Callable[[Callable[..., Any], list[tuple]], Iterator[Any]]:
    """A ``map_tiles`` for :func:`spex.engine.streamed.extract_streamed` that runs on ``client``'s workers.

    The arguments every tile shares (the scene opener, request, obstruction, calibration: up to one byte
    per scene pixel) are sent to the workers once; tiles come back in order.
    """
    def run(fn: Callable[..., Any], jobs: list[tuple]) -> Iterator[Any]:
        if not jobs:
            return iter(())
        shared = client.scatter(list(jobs[0][:4]), broadcast=True)
        per_tile = list(zip(*(job[4:] for job in jobs), strict=True))
        futures = client.map(fn, *([s] * len(jobs) for s in shared), *per_tile, pure=False)
        return (future.result() for future in futures)
    return run
