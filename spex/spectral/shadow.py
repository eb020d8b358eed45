"""Cloud shadow: dark NIR/SWIR "holes" that match the projection of a detected cloud.

Why geometry as well as spectrum: a shadow is just darker ground, and water, dark forest or
burnt land are dark too. What only a shadow has is its cloud, displaced away from the sun.
The method follows Fmask (Zhu & Woodcock 2012, https://doi.org/10.1016/j.rse.2011.10.028;
Zhu et al. 2015, https://doi.org/10.1016/j.rse.2014.12.014):

1. Potential shadow: a flood-fill transform (morphological reconstruction by erosion) fills
   local dark basins of the NIR band; pixels the fill lifts by more than ``FILL_DEPTH``
   reflectance are basins. With SWIR1 the same must hold there (shadow darkens every band;
   water is dark in NIR/SWIR but not a basin in both when large and open, and is removed by
   step 2 unless a cloud projects onto it). Without NIR the visible mean is used.
2. Matching: every cloud object is shifted away from the sun by distances for cloud heights
   ``HEIGHT_RANGE_M``; the shift whose footprint lands most on potential shadow (at least
   ``MIN_MATCH`` of its pixels, Fmask's similarity) gives the object's shadow. The direction
   is the sun azimuth when known (Landsat MTL), otherwise the one direction, common to the
   whole scene, that matches best (the sun is one point in the sky for a scene).
3. Shadow = matched footprints, widened by ``EDGE_M`` to cover cloud edges, on potential shadow.

Clouds outside the scene can cast shadows into it; those are not found (said in the reply).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy import ndimage
from skimage.morphology import reconstruction

__all__ = ["ShadowResult", "potential_shadow", "match_shadows", "FILL_DEPTH", "MIN_MATCH", "HEIGHT_RANGE_M"]

#: Reflectance a basin must be lifted by the flood fill (Fmask uses 0.02 on NIR).
FILL_DEPTH: Final[float] = 0.02
#: Fraction of a shifted cloud that must land on potential shadow to accept the match (Fmask: 0.3).
MIN_MATCH: Final[float] = 0.3
#: Cloud base heights searched (m): low cumulus to high cirrus decks.
HEIGHT_RANGE_M: Final[tuple[float, float]] = (200.0, 12000.0)
#: Sun zenith assumed for the largest search distance when the sun position is unknown (deg).
ZENITH_UNKNOWN_DEG: Final[float] = 60.0
#: Footprints are widened by this much (m) to cover the soft edges of clouds and their shadows.
EDGE_M: Final[float] = 60.0
#: Directions tried when the sun azimuth is unknown.
N_DIRECTIONS: Final[int] = 36
#: At most this many pixels of one cloud object are used to score its shifts (the rest follow).
SCORE_PIXELS: Final[int] = 4000


@dataclass(frozen=True)
class ShadowResult:
    """The shadow mask and how it was matched (for the reply's evidence)."""

    mask: np.ndarray
    azimuth_deg: float | None
    azimuth_source: str
    matched: int
    objects: int


def _basins(band: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Flood-fill depth of ``band`` (0 outside basins); NaN/invalid pixels are treated as walls' tops."""
    top = float(np.nanmax(band[valid])) if valid.any() else 1.0
    img = np.where(valid & np.isfinite(band), band, top).astype(np.float64)
    seed = img.copy()
    seed[1:-1, 1:-1] = img.max()
    filled = reconstruction(seed, img, method="erosion")
    return (filled - img).astype(np.float32)


def potential_shadow(bands: dict[str, np.ndarray], valid: np.ndarray) -> np.ndarray:
    """Pixels in dark basins of NIR (and SWIR1 where present): candidate cloud shadow."""
    if "nir" in bands:
        dark = _basins(bands["nir"], valid) > FILL_DEPTH
    else:
        vis = (bands["red"] + bands["green"] + bands["blue"]) / np.float32(3.0)
        dark = _basins(vis, valid) > FILL_DEPTH
    if "swir1" in bands:
        dark &= _basins(bands["swir1"], valid) > FILL_DEPTH
    return dark & valid


def _shift_range(pixel_m: float, sun_elevation: float | None) -> tuple[int, int, int]:
    """(min, max, step) shift in pixels for the searched cloud heights."""
    zenith = ZENITH_UNKNOWN_DEG if sun_elevation is None else min(max(90.0 - sun_elevation, 0.0), 75.0)
    tan_z = math.tan(math.radians(zenith))
    lo = max(1, int(HEIGHT_RANGE_M[0] * tan_z / pixel_m))
    hi = max(lo + 1, int(math.ceil(HEIGHT_RANGE_M[1] * tan_z / pixel_m)))
    return lo, hi, max(1, (hi - lo) // 80)


def _unit(azimuth_deg: float) -> tuple[float, float]:
    """(drow, dcol) per pixel of distance, pointing away from a sun at ``azimuth_deg`` (clockwise from north)."""
    a = math.radians(azimuth_deg)
    return math.cos(a), -math.sin(a)   # north-up image: rows grow southward


def _score(rows: np.ndarray, cols: np.ndarray, d: float, unit: tuple[float, float], pot: np.ndarray,
           cloud: np.ndarray) -> float:
    r = np.rint(rows + unit[0] * d).astype(np.int64)
    c = np.rint(cols + unit[1] * d).astype(np.int64)
    inside = (r >= 0) & (r < pot.shape[0]) & (c >= 0) & (c < pot.shape[1])
    if inside.sum() < 0.5 * rows.size:   # the shadow would fall mostly outside the scene: not scorable
        return 0.0
    r, c = r[inside], c[inside]
    free = ~cloud[r, c]                  # a shadow under another cloud is hidden: score the visible part
    if not free.any():
        return 0.0
    return float(pot[r[free], c[free]].mean())


def _best_shift(rows: np.ndarray, cols: np.ndarray, shifts: range, unit: tuple[float, float], pot: np.ndarray,
                cloud: np.ndarray) -> tuple[float, float]:
    """(score, distance) of the best shift: a coarse scan of ``shifts``, then pixel steps around the best."""
    best = (0.0, 0.0)
    for d in shifts:
        s = _score(rows, cols, float(d), unit, pot, cloud)
        if s > best[0]:
            best = (s, float(d))
    if shifts.step > 1 and best[0] > 0:
        for d in range(max(1, int(best[1]) - shifts.step + 1), int(best[1]) + shifts.step):
            s = _score(rows, cols, float(d), unit, pot, cloud)
            if s > best[0]:
                best = (s, float(d))
    return best


def _best_direction(rows: np.ndarray, cols: np.ndarray, shifts: range, pot: np.ndarray,
                    cloud: np.ndarray) -> tuple[float, float]:
    """(score, azimuth) of the scene's shadow direction: 36 directions, then 1-degree steps around the best."""
    coarse = 360.0 / N_DIRECTIONS
    best = max((_best_shift(rows, cols, shifts, _unit(a), pot, cloud)[0], float(a))
               for a in np.arange(0.0, 360.0, coarse))
    fine = [(_best_shift(rows, cols, shifts, _unit(best[1] + da), pot, cloud)[0], (best[1] + da) % 360.0)
            for da in np.arange(-coarse / 2 + 1, coarse / 2)]
    return max([best, *fine])


def _sample(rows: np.ndarray, cols: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if rows.size <= SCORE_PIXELS:
        return rows, cols
    pick = rng.choice(rows.size, SCORE_PIXELS, replace=False)
    return rows[pick], cols[pick]


def match_shadows(cloud: np.ndarray, potential: np.ndarray, pixel_m: float | None, *,
                  sun_azimuth: float | None = None, sun_elevation: float | None = None,
                  seed: int = 0) -> ShadowResult:
    """Cloud shadow mask from cloud objects and potential shadow (see module notes).

    Args:
        cloud: bool cloud objects. potential: bool candidate shadow (:func:`potential_shadow`).
        pixel_m: ground pixel size (m); None = unknown (taken as 10 m).
        sun_azimuth, sun_elevation: degrees, from the metadata when known.
    """
    cloud = np.asarray(cloud, dtype=bool)
    pot = np.asarray(potential, dtype=bool) & ~cloud
    empty = ShadowResult(np.zeros(cloud.shape, dtype=bool), sun_azimuth, "none", 0, 0)
    if not cloud.any() or not pot.any():
        return empty
    pixel = pixel_m if pixel_m and pixel_m > 0 else 10.0
    lo, hi, step = _shift_range(pixel, sun_elevation)
    shifts = range(lo, hi + 1, step)
    labels, n = ndimage.label(cloud, structure=np.ones((3, 3), dtype=bool))
    objects = ndimage.find_objects(labels)
    rng = np.random.default_rng(seed)
    coords: list[tuple[np.ndarray, np.ndarray]] = []
    for k, sl in enumerate(objects, start=1):
        rr, cc = np.nonzero(labels[sl] == k)
        coords.append(_sample(rr + sl[0].start, cc + sl[1].start, rng))

    if sun_azimuth is not None:
        azimuth, source = float(sun_azimuth), "sun azimuth from the metadata"
    else:  # one direction for the whole scene: the one whose best shifts match most cloud pixels
        all_r, all_c = _sample(np.concatenate([c[0] for c in coords]), np.concatenate([c[1] for c in coords]), rng)
        best_score, azimuth = _best_direction(all_r, all_c, shifts, pot, cloud)
        source = "estimated from the scene (best cloud-to-shadow match)"
        if best_score < MIN_MATCH:
            return ShadowResult(empty.mask, None, "no direction matched", 0, n)
    unit = _unit(azimuth)
    footprint = np.zeros(cloud.shape, dtype=bool)
    matched = 0
    for k, sl in enumerate(objects, start=1):
        score, d = _best_shift(*coords[k - 1], shifts, unit, pot, cloud)
        if score < MIN_MATCH:
            continue
        matched += 1
        rr, cc = np.nonzero(labels[sl] == k)
        r = np.rint(rr + sl[0].start + unit[0] * d).astype(np.int64)
        c = np.rint(cc + sl[1].start + unit[1] * d).astype(np.int64)
        ok = (r >= 0) & (r < cloud.shape[0]) & (c >= 0) & (c < cloud.shape[1])
        footprint[r[ok], c[ok]] = True
    if matched:
        grow = max(1, int(round(EDGE_M / pixel)))
        footprint = ndimage.binary_dilation(footprint, structure=np.ones((3, 3), dtype=bool), iterations=grow)
    return ShadowResult(footprint & pot, azimuth, source, matched, n)
