"""Per-scene memo of index, band, validity and cloud maps.

A chat session keeps one :class:`IndexCache` per scene, so refinements ("stricter",
"only the north", "undo") never re-read the files: each map is computed once, window
by window, and kept as a full-size float32 (or bool) array.

A one-shot run (the ``extract`` CLI) opts in to ``one_shot=True``: once the class rules have run,
the extraction releases the maps no later step reads (:meth:`IndexCache.release`), so peak memory
holds the primary index maps and masks, not every band and test index the rules touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
from rasterio.windows import Window

from spex.errors import BandError
from spex.spectral.cloud import CLOUD_BANDS, cloud_mask
from spex.spectral.indices import SpectralIndex, band_substitutes, resolve_index

__all__ = ["IndexCache", "SceneLike"]

logger = logging.getLogger(__name__)


class SceneLike(Protocol):
    """The part of :class:`spex.io.Scene` the cache uses."""

    band_names: tuple[str, ...]
    width: int
    height: int

    def read(self, bands: Sequence[str] | None = None, window: Window | None = None,
             out_shape: tuple[int, int] | None = None) -> np.ndarray: ...
    def valid(self, window: Window | None = None, out_shape: tuple[int, int] | None = None) -> np.ndarray: ...
    def windows(self, size: int = 1024) -> Iterator[Window]: ...


class IndexCache:
    """Memo of full-scene maps for one scene, each computed once, window by window.

    Only the bands one map needs are read, one window at a time, so peak extra memory
    is a few bands of one window plus the output map.

    Args:
        scene: an open :class:`spex.io.Scene` (or anything with the same protocol).
        window_size: tile size passed to ``scene.windows``.
        one_shot: this cache serves a single extraction (CLI): :func:`spex.engine.extract` releases
            the maps it will not read again once the rules have run. A chat keeps the default (False)
            so refinements re-use every map.

    Notes:
        Each map costs ``4 * width * height`` bytes (bool maps a quarter of that); see
        :meth:`nbytes`. Maps are returned as read-only arrays shared with the cache.
    """

    def __init__(self, scene: SceneLike | Any, window_size: int = 1024, *, one_shot: bool = False) -> None:
        self.scene = scene
        self.window_size = int(window_size)
        self.one_shot = bool(one_shot)
        self._maps: dict[str, np.ndarray] = {}
        self._derived: dict[str, Any] = {}

    # -- public maps -------------------------------------------------------------
    def index(self, name: str) -> np.ndarray:
        """Index ``name`` (case-insensitive) as float32 (H, W), NaN where invalid.

        Raises:
            ValueError: unknown index. BandError: the scene lacks a required band.
        """
        idx = resolve_index(name)
        key = f"index:{idx.name}"
        if key not in self._maps:
            needed = self._bands_for(idx)
            self._maps[key] = self._compute(needed, idx, np.float32, np.nan)
            logger.debug("computed %s for %dx%d scene", idx.name, self.scene.width, self.scene.height)
        return self._maps[key]

    def band(self, name: str) -> np.ndarray:
        """Reflectance of band ``name`` as float32 (H, W), NaN where invalid.

        Raises:
            BandError: the scene has no such band.
        """
        if name not in self.scene.band_names:
            raise BandError(f"band {name!r} is not in this scene; it has: {', '.join(self.scene.band_names)}")
        key = f"band:{name}"
        if key not in self._maps:
            out = np.full((self.scene.height, self.scene.width), np.nan, dtype=np.float32)
            for w in self.scene.windows(self.window_size):
                out[_slices(w)] = self.scene.read(bands=[name], window=w)[0]
            self._maps[key] = _freeze(out)
        return self._maps[key]

    def valid(self) -> np.ndarray:
        """Validity mask, bool (H, W), True = valid data."""
        if "valid" not in self._maps and callable(getattr(self.scene, "valid_full", None)):
            self._maps["valid"] = self.scene.valid_full()  # the scene's own read-only mask: not held twice
        if "valid" not in self._maps:
            out = np.zeros((self.scene.height, self.scene.width), dtype=bool)
            for w in self.scene.windows(self.window_size):
                out[_slices(w)] = self.scene.valid(window=w)
            self._maps["valid"] = _freeze(out)
        return self._maps["valid"]

    def cloud(self) -> np.ndarray:
        """Cloud mask, bool (H, W), True = cloud (see :func:`spex.spectral.cloud.cloud_mask`).

        Raises:
            BandError: the scene lacks blue, green or red.
        """
        if "cloud" not in self._maps:
            names = self.scene.band_names
            needed = [b for b in CLOUD_BANDS if b in names]
            if "nir" not in names and "nir08" in names:
                needed.append("nir08")
            self._maps["cloud"] = self._compute(needed, cloud_mask, bool, False)
        return self._maps["cloud"]

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """A result derived from this scene by another component, computed once per scene.

        Why: a learned backend's class probability costs seconds per class (about 15 s on the
        demo scene for the SPEX model); refinements and undo re-threshold it and must not
        recompute it. ``key`` must name everything the result depends on besides the scene.
        """
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def name_of(self, values: np.ndarray) -> str | None:
        """Key of the cached map that is ``values`` itself (e.g. "index:NDVI"), None when it is not one."""
        return next((key for key, arr in self._maps.items() if arr is values), None)

    def cached(self) -> tuple[str, ...]:
        """Keys of the maps and memoised results held, e.g. ('index:NDVI', 'valid')."""
        return (*self._maps, *self._derived)

    def nbytes(self) -> int:
        """Bytes held by all cached maps and the arrays of memoised results."""
        derived = [a for v in self._derived.values() for a in (v if isinstance(v, (tuple, list)) else (v,))
                   if isinstance(a, np.ndarray)]
        return sum(a.nbytes for a in (*self._maps.values(), *derived))

    def release(self, keep_indices: Collection[str] = ()) -> int:
        """Drop every band and index map except the validity mask and ``keep_indices``; bytes freed.

        Why: a one-shot extraction reads the bands and test indices only inside the class rules; after
        them only the primary indices (region means, evidence) and the masks are read. Memoised results
        (rule masks, cloud and shadow) stay. A map asked for again is recomputed, identically.
        """
        keep = {"valid", *(f"index:{resolve_index(n).name}" for n in keep_indices if _is_index(n))}
        drop = [k for k in self._maps if k not in keep]
        freed = sum(self._maps[k].nbytes for k in drop)
        for k in drop:
            del self._maps[k]
        return freed

    def clear(self) -> None:
        """Drop every cached map and memoised result (e.g. when memory is short)."""
        self._maps.clear()
        self._derived.clear()

    # -- internals -------------------------------------------------------------------
    def _bands_for(self, idx: SpectralIndex) -> list[str]:
        names = self.scene.band_names
        needed: list[str] = []
        missing: list[str] = []
        for b in idx.bands:
            found = next((s for s in band_substitutes(b) if s in names), None)
            if found:
                needed.append(found)
            else:
                missing.append(b)
        if missing:
            raise BandError(
                f"{idx.name} = {idx.formula} needs bands {', '.join(idx.bands)}; this scene "
                f"({getattr(self.scene, 'sensor', 'unknown sensor')}) lacks {', '.join(missing)} "
                f"and has: {', '.join(names)}"
            )
        return needed

    def _compute(self, bands: list[str], fn: Any, dtype: Any, fill: Any) -> np.ndarray:
        """Evaluate ``fn`` on a band dict, window by window, reusing cached bands."""
        out = np.full((self.scene.height, self.scene.width), fill, dtype=dtype)
        cached = {b: self._maps[f"band:{b}"] for b in bands if f"band:{b}" in self._maps}
        to_read = [b for b in bands if b not in cached]
        for w in self.scene.windows(self.window_size):
            sl = _slices(w)
            data = {b: arr[sl] for b, arr in cached.items()}
            if to_read:
                cube = self.scene.read(bands=to_read, window=w)
                data.update(zip(to_read, cube, strict=True))
            out[sl] = fn(data)
        return _freeze(out)


def _is_index(name: str) -> bool:
    try:
        resolve_index(name)
    except (ValueError, KeyError):
        return False
    return True


def _slices(w: Window) -> tuple[slice, slice]:
    (r0, r1), (c0, c1) = w.toranges()
    return slice(int(r0), int(r1)), slice(int(c0), int(c1))


def _freeze(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a
