"""Bare soil: the homogeneous (or SWIR-absorbing) rest of the unvegetated land.

bare: unvegetated-land candidates (see :mod:`spex.engine.rules.built`), NDVI below the scene's
vegetation split, not built-up, opened with a 3x3 cross; 4-band: bright, unvegetated, homogeneous.
"""

from __future__ import annotations

from typing import Final

from scipy import ndimage

from spex.engine.rules.built import (
    BUILT_MAX_NDTI, BUILT_MAX_NDVI, UNVEGETATED_MIN_SWIR1, bright_unvegetated, unvegetated_land,
)
from spex.engine.rules.context import (
    CROSS, RuleContext, RuleFunction, RuleResult, compare, evaluate_rule, finish, need_bands,
)

__all__ = ["RULES", "REQUIRED_BANDS", "BARE_MAX_NDVI"]

#: Bare soil: at most sparse green cover.
BARE_MAX_NDVI: Final[float] = 0.3

def _bare(ctx: RuleContext, s: int) -> RuleResult:
    need_bands(ctx, "bare", ("swir1", "red", "nir", "green"), ("nir", "red", "green", "blue"))
    ndvi = ctx.feature("NDVI")
    if ctx.has("swir1"):
        cand, thr, method = unvegetated_land(ctx, s)
        # Bare = soil-dominated SWIR (NDBI above its threshold) and not vegetation by this scene's own
        # NDVI split (its fallback is the literature 0.3), so no pixel falls between or into both classes:
        # on surface reflectance the split rises to ~0.45, and sparse regrowth on dry river beds (NDVI
        # 0.3-0.45, SWIR1 > NIR) would otherwise be neither. Never above BUILT_MAX_NDVI.
        cap = min(evaluate_rule("vegetation", ctx, strictness=0).threshold, BUILT_MAX_NDVI)
        sparse = compare(ndvi, "<", cap)
        mask = ndimage.binary_opening(cand & sparse & ~ctx.other("built"), CROSS)
        extra = (f"NDVI < {cap:.2f} (not vegetation: the scene's NDVI split)",
                 f"SWIR1 > {UNVEGETATED_MIN_SWIR1}",
                 "not open water or wetland", "not built-up (homogeneous texture"
                 + (f" or NDTI >= {BUILT_MAX_NDTI}: moist soil, clay or litter absorb at 2.2 um)" if ctx.has("swir2")
                    else ")"), "areal: opened with a 3x3 cross")
        return finish(ctx, "bare", mask, "NDBI", thr, method, ">", extra,
                      ("Bare soil is the unvegetated land that the SWIR shape marks as soil; dry bright soil and "
                        "sand with a flat SWIR go to built-up instead.",), also=("red", "swir2"))
    cand, thr, method = bright_unvegetated(ctx, s)
    mask = cand & compare(ndvi, "<", BARE_MAX_NDVI) & ~ctx.other("built")
    mask = ndimage.binary_opening(mask, CROSS)
    return finish(ctx, "bare", mask, "VIS", thr, method, ">",
                  (f"NDVI < {BARE_MAX_NDVI}", "not open water", "not built-up (homogeneous texture)"),
                  ("No SWIR band: bare soil is approximated as bright, unvegetated, homogeneous land (fields, "
                    "sand, gravel beds); large uniform roofs can be included.",), also=("nir",))


#: Classes of this family (the package merges them into spex.engine.rules.RULES).
RULES: Final[dict[str, RuleFunction]] = {"bare": _bare}
#: Human-readable band requirement of each class (help texts).
REQUIRED_BANDS: Final[dict[str, str]] = {"bare": "green+red+NIR+SWIR1 (+SWIR2), or RGB+NIR (approximate)"}
