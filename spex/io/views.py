"""Read-only views of an open scene: one window of it (a tile with its halo) or a decimated overview.

Why: the streamed extraction (:mod:`spex.engine.streamed`) runs the unchanged class rules on tiles
of a large scene and calibrates their scene-wide thresholds on an overview. Both views answer the
same protocol as :class:`spex.io.Scene` (bands, geometry, ``read``/``valid``/``windows``), so the
rules cannot tell them from a scene, and nothing is copied but the pixels a view is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from affine import Affine
from rasterio.windows import Window

from spex.bands import canonical_band
from spex.errors import BandError
from spex.io.decimate import nearest_picks
from spex.io.scene import tile_windows

__all__ = ["SceneWindow", "SceneOverview", "overview_shape"]

#: Attributes a view passes through from its scene unchanged.
_SHARED = ("band_names", "sensor", "crs", "nodata", "scaling", "calibrated", "notes", "paths", "sun")


class _View:
    scene: Any
    width: int
    height: int
    transform: Affine

    def __getattr__(self, name: str) -> Any:  # only the shared, scene-wide descriptors
        if name in _SHARED:
            return getattr(self.scene, name)
        raise AttributeError(name)

    def has(self, *bands: str) -> bool:
        return self.scene.has(*bands)

    def quality(self) -> None:
        """Quality flags are decided scene-wide by the streamed extraction, never per view."""
        return None

    def windows(self, size: int = 1024) -> Iterator[Window]:
        return tile_windows(self.width, self.height, size)

    def _names(self, bands: Sequence[str] | str | None) -> list[str]:
        """Canonical names of ``bands`` (default all), as ``Scene.read`` resolves them."""
        names = self.scene.band_names
        if bands is None:
            return list(names)
        out = []
        for b in ([bands] if isinstance(bands, str) else bands):
            name = canonical_band(b)
            if name not in names:
                raise BandError(f"band {b!r} is not in this scene; it has: {', '.join(names)}")
            out.append(name)
        return out

    def _local(self, window: Window | None) -> tuple[int, int, int, int]:
        if window is None:
            return 0, 0, self.height, self.width
        r0, c0 = int(round(window.row_off)), int(round(window.col_off))
        h, w = int(round(window.height)), int(round(window.width))
        if r0 < 0 or c0 < 0 or h <= 0 or w <= 0 or r0 + h > self.height or c0 + w > self.width:
            raise ValueError(f"invalid window {window!r}; expected one inside the {self.width} x {self.height} view")
        return r0, c0, h, w


@dataclass
class SceneWindow(_View):
    """The part ``window`` of ``scene`` as a scene of its own (same pixels, same pixel size)."""

    scene: Any
    window: Window
    #: keep every band read (with the bands decoded along with it, ``Scene.companions``) for later reads
    memo: bool = False
    _bands: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.window = Window(int(self.window.col_off), int(self.window.row_off),
                             int(self.window.width), int(self.window.height))
        self.width, self.height = int(self.window.width), int(self.window.height)
        self.transform = self.scene.transform @ Affine.translation(self.window.col_off, self.window.row_off)

    @property
    def pixel_size_m(self) -> tuple[float, float]:
        return self.scene.pixel_size_m  # the scene's (metres per pixel do not change inside it)

    @property
    def pixel_area_m2(self) -> float:
        return self.scene.pixel_area_m2

    def _outer(self, window: Window | None) -> Window:
        r0, c0, h, w = self._local(window)
        return Window(int(self.window.col_off) + c0, int(self.window.row_off) + r0, w, h)

    def read(self, bands: Sequence[str] | str | None = None, window: Window | None = None,
             out_shape: tuple[int, int] | None = None) -> np.ndarray:
        if not self.memo or out_shape is not None:
            return self.scene.read(bands=bands, window=self._outer(window), out_shape=out_shape)
        names = self._names(bands)
        missing = [n for n in names if n not in self._bands]
        if missing:  # one read of the whole view per file: each block is decoded once
            group = self.scene.companions(missing)
            self._bands.update(zip(group, self.scene.read(bands=list(group), window=self.window), strict=True))
        r0, c0, h, w = self._local(window)
        return np.stack([self._bands[n][r0:r0 + h, c0:c0 + w] for n in names])

    def valid(self, window: Window | None = None, out_shape: tuple[int, int] | None = None) -> np.ndarray:
        return self.scene.valid(window=self._outer(window), out_shape=out_shape)


def overview_shape(height: int, width: int, side: int) -> tuple[int, int, int]:
    """(h, w, factor): the integer decimation ``factor`` that brings the longer side to at most ``side``."""
    factor = max(1, -(-max(height, width) // max(int(side), 1)))
    return -(-height // factor), -(-width // factor), factor


@dataclass
class SceneOverview(_View):
    """``scene`` decimated by an integer factor (nearest pixels: a true sample of its values), read once.

    Every band is read at the overview size in one pass over the files (``Scene.read(out_shape=)``
    decodes each block once) and kept: ``bands x h x w x 4`` bytes (6 bands at 1536² = 57 MB).
    """

    scene: Any
    side: int = 1536
    _cube: np.ndarray = field(init=False, repr=False)
    _valid: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.height, self.width, self.factor = overview_shape(int(self.scene.height), int(self.scene.width), self.side)
        shape = (self.height, self.width)
        names = list(self.scene.band_names)
        self._cube = np.empty((len(names), *shape), dtype=np.float32)
        left = list(names)
        while left:  # one file's bands at a time: its decoded values and their reflectance are ~100 MB fewer
            group = [n for n in self.scene.companions([left[0]]) if n in left]  # at once than all files'
            self._cube[[names.index(n) for n in group]] = self.scene.read(group, out_shape=shape)
            left = [n for n in left if n not in group]
        self._valid = self.scene.valid(out_shape=shape)
        sx = self.scene.width / self.width
        sy = self.scene.height / self.height
        self.transform = self.scene.transform @ Affine.scale(sx, sy)
        sx_m, sy_m = self.scene.pixel_size_m
        self._pixel = (float(sx_m) * sx, float(sy_m) * sy)

    @property
    def pixel_size_m(self) -> tuple[float, float]:
        return self._pixel

    @property
    def pixel_area_m2(self) -> float:
        return float(self._pixel[0] * self._pixel[1])

    def read(self, bands: Sequence[str] | str | None = None, window: Window | None = None,
             out_shape: tuple[int, int] | None = None) -> np.ndarray:
        if out_shape is not None:
            raise ValueError("an overview is read at its own size (out_shape is not supported)")
        idx = [self.band_names.index(n) for n in self._names(bands)]
        r0, c0, h, w = self._local(window)
        return self._cube[idx, r0:r0 + h, c0:c0 + w].copy()

    def valid(self, window: Window | None = None, out_shape: tuple[int, int] | None = None) -> np.ndarray:
        if out_shape is not None:
            raise ValueError("an overview is read at its own size (out_shape is not supported)")
        r0, c0, h, w = self._local(window)
        return self._valid[r0:r0 + h, c0:c0 + w].copy()

    def full_rows(self) -> np.ndarray:
        """Scene rows the overview's rows sample (GDAL's nearest picks)."""
        return nearest_picks(int(self.scene.height), self.height)

    def full_cols(self) -> np.ndarray:
        return nearest_picks(int(self.scene.width), self.width)
