"""Cleared land (pasture, shrub, regrowth) and fallow / dry fields: the land that is not closed forest.

Why a family of its own: in forest regions users ask what was cleared, not what is "grass".
The physics (Tucker 1980; Gao 1996, https://doi.org/10.1016/S0034-4257(96)00067-3):

- **cleared**: green cover (NDVI > ``SPARSE_MIN_NDVI``) that is not closed canopy by the forest
  rule, not water, wetland or built-up. Without crown shadow and with soil and litter between
  plants, SWIR1 is brighter than under forest, so its NDMI stays below the forest split; the
  reply states the NDVI test it applies and every forest test it excludes. Shoreline pixels (one mixed pixel from open
  water) that are a water/canopy mixture are not cleared land: water lowers NIR and so NDVI below
  the forest rule's canopy limit, while SWIR1 stays as dark as under trees (NDMI above the forest
  split, NIR below ``SHORE_MIXED_MAX_NIR``). Real cleared banks keep their bright SWIR1.
- **fallow**: dry land between harvests or long unused: NDMI below ``FALLOW_MAX_NDMI`` (SWIR1 at or
  above NIR: dry soil, stubble and senesced grass hold little leaf water) and NDVI below the
  scene's vegetation split, not water, wetland or built-up. Needs SWIR1 (without it, dry and
  green low cover cannot be told apart).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from scipy import ndimage

from spex.engine.rules.context import (
    SPARSE_MIN_NDVI, SQUARE, RuleContext, RuleFunction, RuleResult, adaptive_threshold, compare, evaluate_rule,
    finish, need_bands,
)
from spex.engine.rules.vegetation import open_land, target_water_possible
from spex.engine.rules.water import shore_mixing_width

__all__ = ["RULES", "REQUIRED_BANDS", "FALLOW_MAX_NDMI", "SHORE_MIXED_MAX_NIR"]

#: Leaf water makes NDMI of green cover positive (> ~0.1); dry soil and stubble sit near or below 0.
FALLOW_MAX_NDMI: Final[float] = 0.05
#: Green cover reflects > ~0.2 in the NIR (TOA), open water < ~0.05: by linear mixing a shore pixel
#: darker than this in the NIR is at least about a third water (mixed shoreline pixel, drowned trees).
SHORE_MIXED_MAX_NIR: Final[float] = 0.15


def _shore_mixture(ctx: RuleContext, forest: RuleResult) -> tuple[np.ndarray | None, str]:
    """Shoreline pixels whose reflectance is a water/vegetation mixture, and their description.

    Why: a pixel half water, half forest has the forest's dark SWIR1 but an NDVI pulled below the
    canopy limit by the water, so "green, not forest, not water" would call it cleared land and
    draw a one-pixel fringe along every shore. None where the scene cannot tell (no water rule, no
    water, or neither SWIR1 nor a calibrated NIR to test the mixture with).
    """
    if not target_water_possible(ctx):
        return None, ""
    water = ctx.other("water")
    if not water.any():
        return None, ""
    width = shore_mixing_width(ctx)
    mixed = ndimage.binary_dilation(water, SQUARE, iterations=width) & ~water
    tests: list[str] = []
    if ctx.has("swir1") and forest.index == "NDMI":
        # canopy and water both absorb SWIR1; exposed soil and litter of cleared land do not
        mixed &= compare(ctx.feature("NDMI"), ">", forest.threshold)
        tests.append(f"NDMI > {forest.threshold:.2f}")
    if ctx.cache.scene.calibrated:
        mixed &= compare(ctx.band("nir"), "<", SHORE_MIXED_MAX_NIR)
        tests.append(f"NIR < {SHORE_MIXED_MAX_NIR}")
    if not tests:
        return None, ""
    return mixed, (f"not a water/canopy mixed pixel (within {width} px of open water with "
                   f"{' and '.join(tests)})")


def _cleared(ctx: RuleContext, s: int) -> RuleResult:
    need_bands(ctx, "cleared land", ("nir", "red", "swir1"), ("nir", "red", "green"))
    ndvi = ctx.feature("NDVI")
    forest = evaluate_rule("forest", ctx, strictness=0)
    mask = compare(ndvi, ">", SPARSE_MIN_NDVI + 0.05 * s) & ~forest.mask & open_land(ctx)
    # the threshold shown is the one applied (NDVI, some green cover); "not forest" carries all the forest tests
    extra = (f"not closed forest (the forest rule: {forest.index} {forest.direction} {forest.threshold:.2f}; "
             + "; ".join(forest.extra_tests) + ")", "not open water, wetland or built-up")
    shore, described = _shore_mixture(ctx, forest)
    if shore is not None:
        mask &= ~shore
        extra = (*extra, described)
    return finish(ctx, "cleared", mask, "NDVI", SPARSE_MIN_NDVI + 0.05 * s, "fixed (some green cover)", ">", extra,
                  ("Cleared land is green cover that is not closed canopy: pasture, shrub, regrowth and crops. "
                   "Old secondary forest with a closed canopy counts as forest.",), also=("red", "nir", "green", "swir1"))


def _fallow(ctx: RuleContext, s: int) -> RuleResult:
    need_bands(ctx, "fallow / dry fields", ("nir", "red", "swir1"))
    ndmi = ctx.feature("NDMI")
    ndvi = ctx.feature("NDVI")
    land = open_land(ctx)
    thr, method = adaptive_threshold(ctx, ndmi, land, bounds=(-0.15, FALLOW_MAX_NDMI), fallback=0.0,
                                     direction="<", strictness=s)
    cap = evaluate_rule("vegetation", ctx, strictness=0).threshold
    mask = compare(ndmi, "<", thr) & compare(ndvi, "<", cap) & land
    extra = (f"NDVI < {cap:.2f} (below the scene's vegetation split)", "not open water, wetland or built-up")
    return finish(ctx, "fallow", mask, "NDMI", thr, method, "<", extra,
                  ("Fallow means dry, sparsely covered land (SWIR1 at or above NIR): ploughed, harvested or "
                   "long-unused fields and dry grass; bare sand and rock with the same dryness are included.",),
                  also=("red",))


#: Classes of this family (the package merges them into spex.engine.rules.RULES).
RULES: Final[dict[str, RuleFunction]] = {"cleared": _cleared, "fallow": _fallow}
#: Human-readable band requirement of each class (help texts).
REQUIRED_BANDS: Final[dict[str, str]] = {"cleared": "red+NIR+SWIR1, or red+green+NIR", "fallow": "red+NIR+SWIR1"}
