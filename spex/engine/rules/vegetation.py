"""Vegetation, forest, grass and cropland (forest, grass and cropland are subsets of vegetation).

vegetation: NDVI > Otsu on land (RGB only: excess green). forest: vegetation with NDVI > 0.5
and NDMI > Otsu (canopy shadow and leaf water darken SWIR), and green below an Otsu split among
vegetation when the scene shows one, or when the brighter side is a drier cover (crown shadow darkens
the visible; without SWIR this green test alone). grass / cropland: non-forest vegetation split at an
NDVI Otsu (sparse vs dense green; a single date cannot tell crops from grassland).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from spex.engine.rules.context import (
    REFLECTANCE_STEP, SPARSE_MIN_NDVI, STRICTNESS_STEP, RuleContext, RuleFunction, RuleResult, adaptive_threshold,
    compare, finish, need_bands,
)
from spex.spectral import otsu_threshold
from spex.spectral.thresholds import masked_sample

__all__ = ["RULES", "REQUIRED_BANDS", "FOREST_MIN_NDVI", "open_land", "target_water_possible"]

#: Forest needs a dense canopy: NDVI of closed canopies exceeds ~0.5 even at TOA.
FOREST_MIN_NDVI: Final[float] = 0.5
#: Green reflectance range in which a canopy / open-land split is physically plausible (TOA or surface).
CANOPY_GREEN_BOUNDS: Final[tuple[float, float]] = (0.03, 0.12)
#: A valley-less green split is a cover boundary only if the brighter side's mean NDMI is this much lower
#: (pasture/regrowth vs closed canopy: ~0.15-0.3 lower on Landsat-5 and Sentinel-2; within one canopy ~0).
CANOPY_NDMI_CONTRAST: Final[float] = 0.1
#: Each side of such a split must hold at least this many pixels (a few fields, not noise).
MIN_SPLIT_PIXELS: Final[int] = 100

def _vegetation(ctx: RuleContext, s: int) -> RuleResult:
    need_bands(ctx, "vegetation", ("nir", "red"), ("red", "green", "blue"))
    valid = ctx.valid()
    if not ctx.has("nir", "red"):
        exg = ctx.feature("ExG")
        thr, method = adaptive_threshold(ctx, exg, valid, bounds=(0.02, 0.15), fallback=0.05, direction=">",
                                         strictness=s)
        return finish(ctx, "vegetation", compare(exg, ">", thr), "ExG", thr, method, ">", (),
                      ("RGB only: vegetation uses the excess-green index; dry or dark vegetation is missed and "
                        "green roofs or water can be included.",))
    ndvi = ctx.feature("NDVI")
    land = valid
    extra: tuple[str, ...] = ()
    if target_water_possible(ctx):
        # the split is sought among land pixels: water would pull Otsu to the water/land valley
        land = valid & ~ctx.other("water")
        extra = ("not open water (threshold found on land pixels only)",)
    thr, method = adaptive_threshold(ctx, ndvi, land, bounds=(0.2, 0.45), fallback=0.3, direction=">", strictness=s)
    mask = compare(ndvi, ">", thr) & land
    return finish(ctx, "vegetation", mask, "NDVI", thr, method, ">", extra, also=("green", "swir1"))


def target_water_possible(ctx: RuleContext) -> bool:
    """True when the scene has the bands of the water rule (so classes can exclude water)."""
    return ctx.has("green", "swir1") or ctx.has("green", "nir")


def _forest(ctx: RuleContext, s: int) -> RuleResult:
    need_bands(ctx, "forest", ("nir", "red", "swir1"), ("nir", "red", "green"))
    veg = ctx.other("vegetation")
    ndvi = ctx.feature("NDVI")
    dense = compare(ndvi, ">", FOREST_MIN_NDVI + STRICTNESS_STEP * s)
    if ctx.has("swir1"):
        # Canopy shadowing and leaf water darken SWIR1 under trees: NDMI separates closed canopies
        # from grass and crops of the same NDVI (which expose bright soil/litter in SWIR).
        ndmi = ctx.feature("NDMI")
        thr, method = adaptive_threshold(ctx, ndmi, veg, bounds=(0.1, 0.4), fallback=0.2, direction=">", strictness=s)
        # Self-shadowing of crowns also darkens the visible: a closed canopy is darker in green than
        # grass or crops of the same NDVI/NDMI (the same cue as the no-SWIR branch below).
        # Absolute green levels shift with haze and TOA path radiance, so this test is applied only where
        # the scene's own vegetation shows two green populations (a histogram valley); otherwise NDMI decides.
        mask = veg & dense & compare(ndmi, ">", thr)
        extra = [f"vegetation (NDVI above its threshold) and NDVI > {FOREST_MIN_NDVI + STRICTNESS_STEP * s:.2f}"
                 " (closed canopy)"]
        green = ctx.band("green")
        gthr, gmethod = _canopy_green_threshold(ctx, green, veg)
        gmethod = "" if gmethod.startswith("fallback") else f"{gmethod} among vegetation"
        if not gmethod:  # no valley: a dominant canopy with a tail of open land?
            gthr, gmethod = _canopy_split_by_moisture(ctx, green, veg & dense, ndmi)
        if gmethod:
            mask &= compare(green, "<", gthr)
            extra.append(f"green reflectance < {gthr:.3f} ({gmethod}; crown shadows darken the visible)")
        return finish(ctx, "forest", mask, "NDMI", thr, method, ">", tuple(extra),
                      ("Forest vs grass/crops is separated by canopy shadow and leaf water (NDMI); irrigated "
                        "crops at peak growth can look like forest on a single date.",), also=("red", "green"))
    # No SWIR: tree canopies are darker in the visible than grass/crops of similar NDVI.
    green = ctx.band("green")
    thr, method = _canopy_green_threshold(ctx, green, veg)
    mask = veg & dense & compare(green, "<", thr)
    return finish(ctx, "forest", mask, "NDVI", FOREST_MIN_NDVI + STRICTNESS_STEP * s, "fixed (closed canopy)",
                  ">", (f"green reflectance < {thr:.3f} ({method}; canopy shadow darkens trees)",),
                  ("No SWIR band: forest is told from grass/crops only by visible darkness; expect confusion "
                    "with dark irrigated crops.",), also=("green",))


def _canopy_green_threshold(ctx: RuleContext, green: np.ndarray, veg: np.ndarray) -> tuple[float, str]:
    """Green reflectance separating shaded tree crowns from sunlit grass/crops (Otsu among vegetation)."""
    return adaptive_threshold(ctx, green, veg, bounds=CANOPY_GREEN_BOUNDS, fallback=0.07, direction="<",
                              strictness=0, step=REFLECTANCE_STEP)


def _canopy_split_by_moisture(ctx: RuleContext, green: np.ndarray, dense: np.ndarray,
                              ndmi: np.ndarray) -> tuple[float, str]:
    """Otsu's green split among dense vegetation when its histogram has no valley, if it separates two covers.

    Why: where closed forest fills most of a scene, pasture, shrub and regrowth are a tail of the green
    histogram, not a second peak, so the valley test rejects the split and cleared land passes as forest
    (NDVI and NDMI overlap). Otsu's value is kept only when the brighter side is a *different cover*:
    its mean NDMI is at least ``CANOPY_NDMI_CONTRAST`` below the darker side's (exposed soil and litter,
    no crown shadow). Inside one closed canopy, sunlit and shaded crowns differ in brightness, not in the
    NIR/SWIR1 ratio, so a pure-forest scene keeps all its forest. Returns ("", nan) when not accepted.
    """
    if not ctx.cache.scene.calibrated:  # relative DN: absolute green bounds mean nothing
        return math.nan, ""
    return ctx.statistic(("canopy split", ctx.name_of(green)),  # type: ignore[return-value]
                         lambda: _moisture_split(green, dense, ndmi))


def _moisture_split(green: np.ndarray, dense: np.ndarray, ndmi: np.ndarray) -> tuple[float, str]:
    result = otsu_threshold(masked_sample(green, dense), bounds=CANOPY_GREEN_BOUNDS, fallback=math.nan)
    raw = result.otsu_raw
    if raw is None or not CANOPY_GREEN_BOUNDS[0] <= raw <= CANOPY_GREEN_BOUNDS[1]:
        return math.nan, ""
    dark, bright = dense & compare(green, "<", raw), dense & compare(green, ">=", raw)
    if min(int(dark.sum()), int(bright.sum())) < MIN_SPLIT_PIXELS:
        return math.nan, ""
    contrast = float(np.nanmean(ndmi[dark])) - float(np.nanmean(ndmi[bright]))
    if not contrast >= CANOPY_NDMI_CONTRAST:
        return math.nan, ""
    return raw, (f"Otsu among dense vegetation; no histogram valley, but the brighter side's NDMI is "
                 f"{contrast:.2f} lower: a drier, open cover")


def open_land(ctx: RuleContext) -> np.ndarray:
    """Valid pixels that are not open water, wetland or built-up (where the scene's bands can tell)."""
    mask = ctx.valid().copy()
    if target_water_possible(ctx):
        mask &= ~ctx.other("water")
    if ctx.has("green", "nir"):
        mask &= ~ctx.other("wetland")
    if ctx.has("swir1"):
        mask &= ~ctx.other("built")
    return mask


def _non_forest_vegetation(ctx: RuleContext) -> tuple[np.ndarray, np.ndarray]:
    """Herbaceous/shrub vegetation (sparse cover included) and its NDVI."""
    need_bands(ctx, "grass", ("nir", "red"))
    ndvi = ctx.feature("NDVI")
    mask = compare(ndvi, ">", SPARSE_MIN_NDVI) & ~ctx.other("forest") & open_land(ctx)
    return mask, ndvi


def _grass_split(ctx: RuleContext, s: int, target: str) -> RuleResult:
    herb, ndvi = _non_forest_vegetation(ctx)
    direction = "<" if target == "grass" else ">"
    # Sparse/low-vigour cover (grassland, shrubs, pasture) vs dense green non-woody cover (growing crops).
    thr, method = adaptive_threshold(ctx, ndvi, herb, bounds=(0.35, 0.65), fallback=0.5, direction=direction,
                                     strictness=s)
    mask = herb & compare(ndvi, direction, thr)
    caveat = ("A single date cannot separate crops from grassland reliably: cropland here means dense, actively "
              "growing non-woody vegetation (NDVI above the split), grassland the sparser non-woody cover; "
              "ploughed or harvested fields are not included.")
    extra = (f"NDVI > {SPARSE_MIN_NDVI} (some green cover)", "not forest, not open water")
    return finish(ctx, target, mask, "NDVI", thr, method, direction, extra, (caveat,), also=("swir1",))


def _grass(ctx: RuleContext, s: int) -> RuleResult:
    return _grass_split(ctx, s, "grass")


def _cropland(ctx: RuleContext, s: int) -> RuleResult:
    return _grass_split(ctx, s, "cropland")


#: Classes of this family (the package merges them into spex.engine.rules.RULES).
RULES: Final[dict[str, RuleFunction]] = {
    "vegetation": _vegetation, "forest": _forest, "grass": _grass, "cropland": _cropland,
}
#: Human-readable band requirement of each class (help texts).
REQUIRED_BANDS: Final[dict[str, str]] = {"vegetation": "red+NIR (NDVI), or RGB (excess green, approximate)",
    "forest": "red+NIR+SWIR1, or red+green+NIR", "grass": "red+NIR", "cropland": "red+NIR"}
