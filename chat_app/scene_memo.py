"""A per-session read memo in front of a :class:`spex.io.Scene`.

Every turn re-renders the overlay, the map and the mask COG, and those library
functions read display bands and the validity mask from the scene. Handing them this
memo instead of the scene means a refinement never goes back to the disk: the
same reads are answered from memory. No values are computed here, only remembered.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

__all__ = ["MemoScene"]

log = logging.getLogger(__name__)


def _window_key(window: Any) -> Hashable:
    if window is None:
        return None
    return (window.col_off, window.row_off, window.width, window.height)


class MemoScene:
    """Delegates everything to ``scene``; ``read``/``valid`` results are kept (LRU, bounded in bytes).

    Callers get copies, so a library function that edits its input in place cannot
    corrupt the memo.
    """

    def __init__(self, scene: Any, max_bytes: int = 256 * 2**20) -> None:
        self._scene = scene
        self._memo: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._max_bytes = max_bytes
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scene, name)

    @property
    def wrapped(self) -> Any:
        """The real scene (for functions that check identity, e.g. the index cache)."""
        return self._scene

    def read(self, bands: Sequence[str] | None = None, window: Any = None,
             out_shape: tuple[int, int] | None = None) -> np.ndarray:
        key = ("read", None if bands is None else tuple(bands), _window_key(window),
               None if out_shape is None else tuple(out_shape))
        return self._remember(key, lambda: self._scene.read(bands, window=window, out_shape=out_shape))

    def valid(self, window: Any = None, out_shape: tuple[int, int] | None = None) -> np.ndarray:
        key = ("valid", _window_key(window), None if out_shape is None else tuple(out_shape))
        return self._remember(key, lambda: self._scene.valid(window=window, out_shape=out_shape))

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._memo.values())

    def _remember(self, key: Hashable, load: Any) -> np.ndarray:
        if key in self._memo:
            self.hits += 1
            self._memo.move_to_end(key)
            return self._memo[key].copy()
        self.misses += 1
        value = np.asarray(load())
        if value.nbytes <= self._max_bytes:
            self._memo[key] = value
            while self.nbytes() > self._max_bytes:
                self._memo.popitem(last=False)
        return value.copy()
