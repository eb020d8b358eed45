"""A read memo in front of a :class:`~spex.io.Scene`, for callers that read the same pixels again and again.

Rendering an overlay, a map and a mask COG after every refinement of a conversation (or
every sub-command of a batch) asks the scene for the same display bands and the same
validity mask each time. Passing a :class:`MemoScene` where a ``Scene`` is expected answers
those repeated reads from memory instead of decoding the files again. Nothing is computed
here: values are only remembered, so results are bit-identical to the wrapped scene's.

Example:
    >>> with open_scene("scene.tif") as scene:                    # doctest: +SKIP
    ...     view = MemoScene(scene, max_bytes=128 * 2**20)
    ...     render_preview(view, Path("a.png")); render_preview(view, Path("b.png"))  # one disk read
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

if TYPE_CHECKING:
    from rasterio.windows import Window

    from spex.io.scene import Scene

__all__ = ["DEFAULT_MEMO_BYTES", "MemoScene"]

log = logging.getLogger(__name__)

#: Default memory budget: a 1024² preview is 12 MiB of float32 bands, a full 10 980² S2 validity mask 115 MiB.
DEFAULT_MEMO_BYTES: Final[int] = 256 * 2**20


def _window_key(window: Window | None) -> Hashable:
    if window is None:
        return None
    return (window.col_off, window.row_off, window.width, window.height)


def _shape_key(out_shape: tuple[int, int] | None) -> Hashable:
    return None if out_shape is None else tuple(int(n) for n in out_shape)


class MemoScene:
    """A :class:`~spex.io.Scene` whose ``read`` and ``valid`` results are remembered.

    Every other attribute (``band_names``, ``transform``, ``info()``, ``close()`` ...) is the
    wrapped scene's. Results are kept in a least-recently-used memo bounded by ``max_bytes``;
    an array larger than the whole budget is returned but not kept. Callers always get a
    copy, so a function that edits its input in place cannot corrupt later answers.

    Args:
        scene: the scene to read from; it stays owned by the caller (closing it is the caller's job,
            ``close()`` on the memo closes the wrapped scene too).
        max_bytes: memory budget of the memo in bytes (>= 0; 0 disables memoisation).

    Raises:
        ValueError: when ``max_bytes`` is negative.

    Notes:
        Costs at most ``max_bytes`` plus one transient copy of the array being returned.
        Not thread-safe: use one memo per session (as the chat app does).
    """

    def __init__(self, scene: Scene, max_bytes: int = DEFAULT_MEMO_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self._scene = scene
        self._memo: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name: str) -> Any:
        # only called for names not found on the memo itself: everything else is the scene's
        return getattr(self._scene, name)

    def __enter__(self) -> MemoScene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def wrapped(self) -> Scene:
        """The real scene (for code that checks identity, e.g. an :class:`~spex.spectral.IndexCache`)."""
        return self._scene

    def read(self, bands: Sequence[str] | None = None, window: Window | None = None,
             out_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Same as :meth:`Scene.read`: float32 (n_bands, h, w) reflectance, NaN where invalid."""
        key = ("read", None if bands is None else tuple(bands), _window_key(window), _shape_key(out_shape))
        return self._remember(key, lambda: self._scene.read(bands, window=window, out_shape=out_shape))

    def valid(self, window: Window | None = None, out_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Same as :meth:`Scene.valid`: bool (h, w), True = valid data."""
        full = self._scene.valid_known() if out_shape is None and hasattr(self._scene, "valid_known") else None
        if full is not None:  # the scene's own full-resolution mask, already built: not held twice
            return (full if window is None else full[window.toslices()]).copy()
        key = ("valid", _window_key(window), _shape_key(out_shape))
        return self._remember(key, lambda: self._scene.valid(window=window, out_shape=out_shape))

    def nbytes(self) -> int:
        """Bytes held by the memo (never more than ``max_bytes``)."""
        return self._bytes

    def clear(self) -> None:
        """Forget every remembered array (the counters are kept)."""
        self._memo.clear()
        self._bytes = 0

    def close(self) -> None:
        """Forget the memo and close the wrapped scene."""
        self.clear()
        self._scene.close()

    def _remember(self, key: Hashable, load: Callable[[], np.ndarray]) -> np.ndarray:
        cached = self._memo.get(key)
        if cached is not None:
            self.hits += 1
            self._memo.move_to_end(key)
            return cached.copy()
        self.misses += 1
        value = np.asarray(load())
        if value.nbytes <= self.max_bytes:
            self._memo[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._memo.popitem(last=False)
                self._bytes -= dropped.nbytes
                log.debug("read memo full (%d bytes): dropped a %d-byte array", self.max_bytes, dropped.nbytes)
            return value.copy()
        return value
