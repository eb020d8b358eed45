"""Cleared land (pasture, shrub, regrowth) and fallow / dry fields: the land that is not closed forest.

Why a family of its own: in forest regions users ask what was cleared, not what is "grass".
The physics (Tucker 1980; Gao 1996, https://doi.org/10.1016/S0034-4257(96)00067-3):

- **cleared**: green cover (NDVI > ``SPARSE_MIN_NDVI``) that is not closed canopy by the forest
  rule, not water, wetland or built-up. Without crown shadow and with soil and litter between
  plants, SWIR1 is brighter than under forest, so its NDMI stays below the forest split; the
  reply gives NDMI inside vs outside as the evidence.
- **fallow**: dry land between harvests or long unused: NDMI below ``FALLOW_MAX_NDMI`` (SWIR1 at or
  above NIR: dry soil, stubble and senesced grass hold little leaf water) and NDVI below the
  scene's vegetation split, not water, wetland or built-up. Needs SWIR1 (without it, dry and
  green low cover cannot be told apart).
"""

from __future__ import annotations

from typing import Final

from spex.engine.rules.context import (
    SPARSE_MIN_NDVI, RuleContext, RuleFunction, RuleResult, adaptive_threshold, compare, evaluate_rule, finish,
    need_bands,
)
from spex.engine.rules.vegetation import open_land

__all__ = ["RULES", "REQUIRED_BANDS", "FALLOW_MAX_NDMI"]

#: Leaf water makes NDMI of green cover positive (> ~0.1); dry soil and stubble sit near or below 0.
FALLOW_MAX_NDMI: Final[float] = 0.05


def _cleared(ctx: RuleContext, s: int) -> RuleResult:
    need_bands(ctx, "cleared land", ("nir", "red", "swir1"), ("nir", "red", "green"))
    ndvi = ctx.feature("NDVI")
    mask = compare(ndvi, ">", SPARSE_MIN_NDVI + 0.05 * s) & ~ctx.other("forest") & open_land(ctx)
    forest = evaluate_rule("forest", ctx, strictness=0)
    extra = (f"NDVI > {SPARSE_MIN_NDVI + 0.05 * s:.2f} (some green cover)",
             f"not closed forest (the forest rule: {forest.index} {forest.direction} {forest.threshold:.2f} and "
             "NDVI > 0.5)", "not open water, wetland or built-up")
    index = "NDMI" if ctx.has("swir1") else "NDVI"
    return finish(ctx, "cleared", mask, index, SPARSE_MIN_NDVI + 0.05 * s, "fixed (some green cover)", ">", extra,
                  ("Cleared land is green cover that is not closed canopy: pasture, shrub, regrowth and crops. "
                   "Old secondary forest with a closed canopy counts as forest.",), also=("red", "nir"))


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
