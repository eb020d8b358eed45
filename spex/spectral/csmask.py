"""Cloud and cloud shadow from a trained model: DLR's ukis-csmask UNets (ONNX, CPU).

Why a model: a pixel test finds bright, white, opaque cloud, but misses thin cloud and haze
(eo-learn 2015-07-31: 0 % found where the s2cloudless mask says 100 %) and cannot see shadow
without geometry. ukis-csmask (Wieland et al. 2019, https://doi.org/10.1016/j.rse.2019.05.022;
Apache-2.0, weights inside the PyPI wheel, nothing downloaded) was trained on Sentinel-2 and
Landsat scenes at ~30 m for clear / cloud / cloud shadow, with 4 (blue, green, red, NIR) or
6 bands (+ SWIR1, SWIR2), for top-of-atmosphere (L1C) or surface (L2A) reflectance.

Measured on the scenes at hand (see the issue note): IoU 1.00 against eo-learn's cloud mask on
its haze date and its thick-cloud date, 0 % cloud on the three clear dates and on the cloud-free
Virginia scene when run at 30 m (at 10 m it marked 1.5 % cloud, 3.8 % shadow there), hence the
block averaging to ~``MODEL_PIXEL_M`` before inference.

Memory: the block means can be made from the scene window by window (:class:`SceneBands`, windows
aligned to the block size, so every block mean is the one of the full-scene map), one row span at a
time as the model asks for them (:class:`CoarseRows`), and the model runs one tile row at a time
(:mod:`spex.spectral.csmask_tiles`); neither a full-scene band nor the whole ~30 m image is held.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from rasterio.windows import Window

__all__ = ["MODEL_PIXEL_M", "CoarseRows", "SceneBands", "csmask_available", "csmask_coarse", "expand_classes"]

#: The models were trained on ~30 m pixels; finer scenes are block-averaged to about this size.
MODEL_PIXEL_M: Final[float] = 30.0
#: Ground pixel sizes the model is used for (satellite scenes; metre-scale aerial data is out of its domain).
MODEL_PIXEL_RANGE_M: Final[tuple[float, float]] = (5.0, 65.0)
#: Longest side (scene pixels) of the windows :class:`CoarseRows` reads: a span of ~170 coarse rows at 3x3
#: blocks, so the spans a tile row straddles and each window's float32 cube stay ~10-15 MB on a 10240-px-wide
#: scene (1024-px windows: ~90 MB more at the cloud model's peak there, for the same CPU time).
SPAN_MAX_PX: Final[int] = 512
_BANDS6: Final[tuple[str, ...]] = ("blue", "green", "red", "nir", "swir1", "swir2")
_NAMES: Final[dict[str, str]] = {"swir1": "swir16", "swir2": "swir22"}


@dataclass(frozen=True)
class SceneBands:
    """Bands of an open scene, read window by window instead of as full-scene maps.

    ``names`` maps the model's band names (blue, ..., nir, swir1, swir2) to the scene's (e.g. nir08).
    """

    scene: Any
    names: Mapping[str, str]
    window_size: int = 1024

    def __contains__(self, name: object) -> bool:
        return name in self.names


def csmask_available() -> bool:
    """True when ukis-csmask and onnxruntime are installed (both in requirements.txt)."""
    return all(importlib.util.find_spec(m) is not None for m in ("ukis_csmask", "onnxruntime"))


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Mean over f x f blocks (NaN ignored; the last partial blocks are padded by edge values)."""
    if f == 1:
        return a
    h, w = a.shape
    ph, pw = (-h) % f, (-w) % f
    a = np.pad(a, ((0, ph), (0, pw)), mode="edge")
    blocks = a.reshape(a.shape[0] // f, f, a.shape[1] // f, f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(blocks, axis=(1, 3)).astype(np.float32)


def _expand(a: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1)[:shape[0], :shape[1]] if f > 1 else a


def _coarse_from_maps(bands: Mapping[str, np.ndarray], names: Sequence[str], valid: np.ndarray,
                      f: int) -> np.ndarray:
    """(h', w', bands) float32 block means of full-scene maps (NaN = invalid)."""
    return np.stack([_block_mean(np.where(valid, bands[b], np.nan).astype(np.float32), f) for b in names], axis=-1)


def _spans(n: int, size: int, f: int) -> list[tuple[int, int]]:
    """[start, end) spans of ``size`` (a multiple of ``f``) covering 0..n, none under two blocks when n allows.

    Why two blocks: numpy reduces a (1, f, k, f) block view in another order than a (m, f, k, f) one,
    which may change the float32 mean in its last bit; the full-scene map has many blocks per axis.
    """
    starts = list(range(0, n, size))
    if len(starts) > 1 and n - starts[-1] <= f:
        starts.pop()   # the last span would be one block: the one before it takes it
    return list(zip(starts, [*starts[1:], n], strict=True))


class CoarseRows:
    """The block means of a scene, row span by row span on demand (``shape`` (h', w', bands) like the image).

    Why: the model consumes its ~30 m image one tile row at a time (rows advancing, mirrored at both
    edges), so holding the whole image (280 MB for a 10240² 10 m scene with 6 bands) is not needed.
    Each span is read window by window with windows that are multiples of ``f`` (as :func:`_spans`
    makes them), so no block straddles two and every block mean is that of the whole-image build.
    Spans below the lowest row still asked are dropped (asked again, they are recomputed).
    Rows are returned with NaN set to 0; :attr:`ok` (h', w') is False where a band was NaN (the
    scene's full-resolution reads are NaN where invalid, as ``np.where(valid, band, nan)`` is).
    """

    def __init__(self, src: SceneBands, names: Sequence[str], f: int) -> None:
        h, w = int(src.scene.height), int(src.scene.width)
        size = max(f, (min(src.window_size, SPAN_MAX_PX) // f) * f)
        self._src, self._bands, self._f = src, [src.names[b] for b in names], f
        self._rows, self._cols = _spans(h, size, f), _spans(w, size, f)
        self._starts = np.array([r0 // f for r0, _ in self._rows])
        self.shape: tuple[int, int, int] = (-(-h // f), -(-w // f), len(names))
        self.ok = np.ones(self.shape[:2], dtype=bool)
        self._held: dict[int, np.ndarray] = {}

    def _span(self, k: int) -> np.ndarray:
        """Block means of row span k (float32 (rows, w', bands)), NaN -> 0 and :attr:`ok` updated."""
        (r0, r1), f = self._rows[k], self._f
        out = np.empty((-(-r1 // f) - r0 // f, *self.shape[1:]), dtype=np.float32)
        for c0, c1 in self._cols:
            cube = self._src.scene.read(bands=self._bands, window=Window(c0, r0, c1 - c0, r1 - r0))
            for b in range(len(self._bands)):
                m = _block_mean(cube[b], f)
                out[:, c0 // f:c0 // f + m.shape[1], b] = m
        ok = np.isfinite(out).all(axis=-1)
        out[~ok] = 0.0
        self.ok[r0 // f:r0 // f + out.shape[0]] = ok
        return out

    def rows(self, index: np.ndarray) -> np.ndarray:
        """float32 (len(index), w', bands): these coarse rows (any order, repeats allowed)."""
        ids = np.searchsorted(self._starts, index, side="right") - 1
        for k in [k for k in self._held if k < ids.min()]:
            del self._held[k]
        out = np.empty((len(index), *self.shape[1:]), dtype=np.float32)
        for k in np.unique(ids).tolist():
            if k not in self._held:
                self._held[k] = self._span(k)
            at = ids == k
            out[at] = self._held[k][index[at] - self._starts[k]]
        return out


def csmask_coarse(bands: Mapping[str, np.ndarray] | SceneBands, valid: np.ndarray, pixel_m: float | None, *,
                  surface: bool) -> tuple[np.ndarray, int, str]:
    """The model's classes on its ~30 m grid: (uint8 classes (0 clear, 1 cloud, 2 shadow), block factor, model).

    Args:
        bands: reflectance (blue, green, red, nir [, swir1, swir2]) as full-scene maps, or
            :class:`SceneBands` to read them window by window (same result, without full-scene copies).
        valid: pixels with data (its shape is the scene's); invalid pixels do not enter the block means.
        pixel_m: ground pixel size (m); the scene is block-averaged to ~30 m first.
        surface: surface (L2A) reflectance rather than top of atmosphere.

    A block with no valid pixel is clear. The classes stay on this small grid (a few MB for any
    scene): :func:`expand_classes` puts them on the scene grid, whole or one tile at a time.

    Raises:
        ImportError: ukis-csmask / onnxruntime not installed. KeyError: a required band is missing.
    """
    from spex.memory import return_freed_heap
    from spex.spectral.csmask_tiles import csmask_classes

    names = [b for b in _BANDS6 if b in bands] if all(b in bands for b in _BANDS6) else list(_BANDS6[:4])
    f = max(1, round(MODEL_PIXEL_M / pixel_m)) if pixel_m else 1
    img: np.ndarray | CoarseRows
    if isinstance(bands, SceneBands):
        img = CoarseRows(bands, names, f)   # made as the model asks for rows: no whole image held
        ok = img.ok                         # filled as the spans are made, complete once the model is done
    else:
        img = _coarse_from_maps(bands, names, valid, f)
        ok = np.isfinite(img).all(axis=-1)
        img[~ok] = 0.0
    threads = max(1, (os.cpu_count() or 1))
    csm, version = csmask_classes(img, [_NAMES.get(b, b) for b in names],
                                  product_level="l2a" if surface else "l1c", threads=threads)
    del img
    return_freed_heap()   # the freed row spans may sit in glibc's heap (not its top) and stay in RSS
    csm[~ok] = 0
    return csm, f, f"ukis-csmask {version}"


def expand_classes(classes: np.ndarray, f: int, shape: tuple[int, int],
                   pixels: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The coarse ``classes`` on the scene grid (``shape``), or at the scene's ``pixels`` = (rows, cols) only
    (a tile: two ranges; an overview: its sampled rows and columns), the same values as that part."""
    if pixels is None:
        return _expand(classes, f, shape)
    rows, cols = pixels
    return classes[np.ix_(np.asarray(rows) // f, np.asarray(cols) // f)]
