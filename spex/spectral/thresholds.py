"""Adaptive index thresholds: Otsu with physical bounds and a bimodality check.

Otsu's method always returns a value, even on a unimodal histogram where it merely
splits one class in two. So the Otsu value is accepted only when the (smoothed)
histogram has a real valley there; otherwise the caller's literature threshold is
used. An accepted value outside the physically sensible ``bounds`` is clamped, so one
odd scene can never move, e.g., the water threshold to NDWI = -0.6.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.ndimage import gaussian_filter1d
from skimage.filters import threshold_otsu

__all__ = ["ThresholdResult", "otsu_threshold", "masked_sample", "SceneSample"]

logger = logging.getLogger(__name__)

#: At most this many values enter the histogram (seeded random subsample, deterministic).
MAX_SAMPLES: Final[int] = 1_000_000
#: Fewer finite values than this give the fallback: a histogram would be noise.
MIN_SAMPLES: Final[int] = 100
#: Histogram bins (also used by Otsu).
N_BINS: Final[int] = 256
#: Gaussian smoothing of the histogram before the valley test, in bins.
SMOOTH_BINS: Final[float] = 2.0
#: Bimodal if the smoothed density at the threshold is at most this fraction of the
#: lower of the two peaks on either side of it.
VALLEY_RATIO: Final[float] = 0.75
#: Each side of the split must hold at least this fraction of the values.
MIN_CLASS_FRACTION: Final[float] = 0.005
#: Percentiles of the histogram range; trims ratio blow-ups (e.g. EVI over dark pixels).
RANGE_PERCENTILES: Final[tuple[float, float]] = (0.1, 99.9)
_SEED: Final[int] = 0
#: Rows of a map are scanned in blocks of about this many pixels (bounds the temporaries).
_BLOCK_PIXELS: Final[int] = 1 << 20


@dataclass(frozen=True)
class ThresholdResult:
    """An adaptive threshold and how it was chosen.

    Attributes:
        value: the threshold to use.
        method: "otsu" (accepted as is), "otsu-clamped" (bimodal, clamped into bounds)
            or "fallback" (too few values or no valley: the caller's default).
        otsu_raw: Otsu's value before acceptance/clamping; None when not computed.
    """

    value: float
    method: str
    otsu_raw: float | None

    def __post_init__(self) -> None:
        if self.method not in ("otsu", "otsu-clamped", "fallback"):
            raise ValueError(f"invalid method {self.method!r}; expected 'otsu', 'otsu-clamped' or 'fallback'")


def otsu_threshold(values: np.ndarray, *, bounds: tuple[float, float], fallback: float) -> ThresholdResult:
    """Otsu threshold of the finite ``values``, clamped to ``bounds``, else ``fallback``.

    Args:
        values: index values of any shape; NaN/inf are ignored.
        bounds: (low, high) physically sensible range for the threshold.
        fallback: literature threshold used when the data give no reliable split.

    Returns:
        A :class:`ThresholdResult`.

    Raises:
        ValueError: if ``bounds`` is not an increasing pair of finite numbers.

    Notes:
        At most :data:`MAX_SAMPLES` values are used (a seeded random subsample), so the
        cost is bounded and the result reproducible.
    """
    lo, hi = (float(b) for b in bounds)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"bounds must be two finite numbers with low < high, got {bounds}")
    v = np.asarray(values).ravel()
    v = v[np.isfinite(v)]
    if v.size > MAX_SAMPLES:
        v = v[np.random.default_rng(_SEED).integers(0, v.size, MAX_SAMPLES)]
    if v.size < MIN_SAMPLES:
        logger.debug("only %d finite values: fallback threshold %g", v.size, fallback)
        return ThresholdResult(float(fallback), "fallback", None)

    v = v.astype(np.float32, copy=False)
    vmin, vmax = (float(p) for p in np.percentile(v, RANGE_PERCENTILES))
    if not vmax > vmin:
        return ThresholdResult(float(fallback), "fallback", None)
    counts, edges = np.histogram(v, bins=N_BINS, range=(vmin, vmax))
    centers = (edges[:-1] + edges[1:]) / 2
    raw = float(threshold_otsu(hist=(counts, centers)))

    if not _is_bimodal(counts, centers, raw):
        logger.debug("no histogram valley at Otsu %g: fallback %g", raw, fallback)
        return ThresholdResult(float(fallback), "fallback", raw)
    if raw < lo or raw > hi:
        return ThresholdResult(min(max(raw, lo), hi), "otsu-clamped", raw)
    return ThresholdResult(raw, "otsu", raw)


def masked_sample(values: np.ndarray, within: np.ndarray) -> np.ndarray:
    """The finite ``values[within]`` that :func:`otsu_threshold` would use, without a full-size copy.

    Returns exactly ``values[within & isfinite(values)]`` when that holds at most
    :data:`MAX_SAMPLES` values; otherwise the same seeded subsample ``otsu_threshold`` draws
    from that array (same multiset of values, in ascending index order; the histogram, the
    percentiles and so the threshold are order-independent and therefore identical).

    Notes:
        Scans 2-D maps in row blocks: peak extra memory is one block plus the (at most
        MAX_SAMPLES) sample, instead of a bool map and a copy of every selected value.
    """
    values = np.asarray(values)
    within = np.asarray(within, dtype=bool)
    if values.ndim != 2 or values.shape != within.shape:
        return values[within & np.isfinite(values)]
    step = max(1, _BLOCK_PIXELS // max(values.shape[1], 1))
    blocks = [slice(r0, r0 + step) for r0 in range(0, values.shape[0], step)]
    counts = np.array([np.count_nonzero(within[b] & np.isfinite(values[b])) for b in blocks], dtype=np.int64)
    total = int(counts.sum())
    if total <= MAX_SAMPLES:
        return values[within & np.isfinite(values)]
    picks = np.sort(np.random.default_rng(_SEED).integers(0, total, MAX_SAMPLES))
    starts = np.concatenate(([0], np.cumsum(counts)))
    parts = []
    for k, b in enumerate(blocks):
        lo, hi = np.searchsorted(picks, starts[k]), np.searchsorted(picks, starts[k + 1])
        if hi > lo:
            selected = values[b][within[b] & np.isfinite(values[b])]
            parts.append(selected[picks[lo:hi] - starts[k]])
    return np.concatenate(parts)


def _is_bimodal(counts: np.ndarray, centers: np.ndarray, t: float) -> bool:
    """True when both sides are populated and the density at ``t`` is a real valley."""
    split = int(np.searchsorted(centers, t, side="right"))
    total = counts.sum()
    if split <= 0 or split >= len(counts):
        return False
    left, right = counts[:split].sum(), counts[split:].sum()
    if min(left, right) < MIN_CLASS_FRACTION * total:
        return False
    smooth = gaussian_filter1d(counts.astype(np.float64), SMOOTH_BINS, mode="constant")
    valley = float(np.interp(t, centers, smooth))
    peak = min(float(smooth[:split].max()), float(smooth[split:].max()))
    return valley <= VALLEY_RATIO * peak


class SceneSample:
    """The threshold sample of a whole scene, accumulated window by window.

    Why: a tiled run must give every tile the threshold the whole scene gives. Windows
    (a regular grid, any order) add their ``values[within & finite]``; :meth:`sample`
    returns exactly what :func:`masked_sample` returns on the assembled scene (every value
    when at most :data:`MAX_SAMPLES`, else the same seeded picks of the row-major order),
    so :meth:`threshold` equals ``otsu_threshold(masked_sample(values, within), ...)``.

    Memory: per-row counts (height x tile columns) plus the selected values, spilled to a
    temporary file (4 bytes each) and read back one window at a time.
    """

    def __init__(self, height: int, col_starts: list[int]) -> None:
        self.height = int(height)
        self.col_starts = [int(c) for c in col_starts]
        self._rows = np.zeros((self.height, len(self.col_starts)), dtype=np.int64)
        self._parts: dict[tuple[int, int], tuple[int, int]] = {}  # (row0, col0) -> (file offset, count)
        self._file = tempfile.TemporaryFile()
        self._size = 0

    def add(self, values: np.ndarray, within: np.ndarray, row0: int, col0: int) -> None:
        """Add one window (its top-left corner at ``row0, col0`` of the scene grid)."""
        sel = np.asarray(within, dtype=bool) & np.isfinite(values)
        tc = self.col_starts.index(int(col0))
        self._rows[row0:row0 + sel.shape[0], tc] = np.count_nonzero(sel, axis=1)
        chosen = np.ascontiguousarray(np.asarray(values)[sel], dtype=np.float32)
        self._parts[(int(row0), tc)] = (self._size, int(chosen.size))
        self._file.seek(self._size)
        self._file.write(chosen.tobytes())
        self._size += chosen.nbytes

    @property
    def total(self) -> int:
        return int(self._rows.sum())

    def sample(self) -> np.ndarray:
        """The values :func:`masked_sample` would return on the whole scene (as a multiset)."""
        total = self.total
        if total <= MAX_SAMPLES:
            self._file.seek(0)
            return np.frombuffer(self._file.read(self._size), dtype=np.float32).copy()
        picks = np.sort(np.random.default_rng(_SEED).integers(0, total, MAX_SAMPLES))
        flat = self._rows.ravel()  # row-major over (row, tile column) = the scene's row-major order
        incl = np.cumsum(flat)
        f = np.searchsorted(incl, picks, side="right")
        j = picks - (incl[f] - flat[f])
        rows, tcs = np.divmod(f, len(self.col_starts))
        starts = sorted({r0 for r0, _ in self._parts})
        band = np.searchsorted(np.asarray(starts), rows, side="right") - 1
        within_tile = np.zeros_like(self._rows)  # rows of the same window before this row
        for k, r0 in enumerate(starts):
            r1 = starts[k + 1] if k + 1 < len(starts) else self.height
            block = self._rows[r0:r1]
            within_tile[r0:r1] = np.cumsum(block, axis=0) - block
        pos = within_tile[rows, tcs] + j
        out = np.empty(picks.size, dtype=np.float32)
        key = band * len(self.col_starts) + tcs
        order = np.argsort(key, kind="stable")
        bounds = np.searchsorted(key[order], np.arange(len(starts) * len(self.col_starts) + 1))
        for k in range(len(bounds) - 1):
            lo, hi = bounds[k], bounds[k + 1]
            if hi == lo:
                continue
            offset, count = self._parts[(starts[k // len(self.col_starts)], k % len(self.col_starts))]
            self._file.seek(offset)
            part = np.frombuffer(self._file.read(4 * count), dtype=np.float32)
            out[order[lo:hi]] = part[pos[order[lo:hi]]]
        return out

    def threshold(self, *, bounds: tuple[float, float], fallback: float) -> ThresholdResult:
        """:func:`otsu_threshold` of the scene-wide sample."""
        return otsu_threshold(self.sample(), bounds=bounds, fallback=fallback)

    def close(self) -> None:
        self._file.close()
