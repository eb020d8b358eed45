"""Built-up / impervious surfaces, and the unvegetated-land candidates shared with bare soil.

built: NDBI > Otsu, NDVI < 0.5, SWIR1 > 0.08, flat SWIR (NDTI < 0.2) and urban texture (local NDVI
std >= 0.05 over ~50 m), not next to a uniform unvegetated core at <= 15 m pixels; 4-band: bright,
unvegetated, textured. NDBI falls back to -0.05 (mixed 30 m residential pixels).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from scipy import ndimage

from spex.engine.rules.context import (
    REFLECTANCE_STEP, RuleContext, RuleFunction, RuleResult, adaptive_threshold, compare, finish,
    masked_local_std, need_bands, texture_window,
)

__all__ = ["RULES", "REQUIRED_BANDS", "UNVEGETATED_MIN_SWIR1", "BUILT_MIN_HETEROGENEITY", "BUILT_CORE_M",
           "BUILT_CORE_MAX_VIS_STD", "BUILT_CORE_MARGIN_M", "BUILT_CORE_MAX_PIXEL_M", "BUILT_4BAND_MAX_NDVI",
           "BUILT_MAX_NDTI", "NDBI_FALLBACK", "BUILT_MAX_NDVI", "unvegetated_land", "bright_unvegetated",
           "homogeneous_core_margin"]

#: Unvegetated land (built or bare) reflects SWIR1 above this; darker pixels are wet or shadowed.
UNVEGETATED_MIN_SWIR1: Final[float] = 0.08
#: Built-up pixels: local standard deviation of NDVI at least this (urban fabric mixes
#: roofs, streets and gardens; bare fields, beaches and rock are homogeneous, < ~0.04).
BUILT_MIN_HETEROGENEITY: Final[float] = 0.05
#: Homogeneous unvegetated "cores" (fields, sand bars): every pixel of a ~BUILT_CORE_M square is
#: unvegetated land and the visible brightness of that land varies by less than
#: BUILT_CORE_MAX_VIS_STD within the texture window (urban land alternates dark and bright roofs,
#: asphalt and concrete: >= ~0.03 on the rstoolbox town; bare fields and river sand: < ~0.01).
BUILT_CORE_M: Final[float] = 50.0
BUILT_CORE_MAX_VIS_STD: Final[float] = 0.015
#: Built-up pixels within this distance of such a core are its edge (a field border mixes soil and
#: crop, which passes the NDVI texture test), not a town.
BUILT_CORE_MARGIN_M: Final[float] = 30.0
#: Only at pixels this fine are roofs, streets and gardens resolved, so that a town is not uniform;
#: at 30 m (Landsat) dense city blocks average out to uniform pixels (seen on Olinda, L7).
BUILT_CORE_MAX_PIXEL_M: Final[float] = 15.0

#: 4-band built-up proxy: NDVI below this.
BUILT_4BAND_MAX_NDVI: Final[float] = 0.3
#: Impervious materials have a flat SWIR (no 2.1-2.2 um clay / moisture / cellulose
#: absorption); soils, moist sediments and dry vegetation have NDTI = (swir1-swir2)/(swir1+swir2) above this.
BUILT_MAX_NDTI: Final[float] = 0.2
#: NDBI threshold when the scene's histogram has no valley. Zha et al. (2003) used NDBI > 0, which
#: needs an impervious-dominated pixel; a 30 m residential pixel mixing ~half roofs/streets (NDBI ~+0.1)
#: with gardens (NDBI ~-0.3) sits slightly below 0. -0.05 is the low end of the Otsu clamp used
#: below; soils and dry grass that pass it are removed by the NDTI and texture tests.
NDBI_FALLBACK: Final[float] = -0.05
#: Built-up pixels at 10-30 m mix roofs with gardens and street trees: NDVI up to this is accepted.
BUILT_MAX_NDVI: Final[float] = 0.5

def unvegetated_land(ctx: RuleContext, s: int) -> tuple[np.ndarray, float, str]:
    """Bright-in-SWIR, sparsely vegetated land (NDBI above its adaptive threshold), not water/wetland."""
    valid = ctx.valid()
    ndvi = ctx.feature("NDVI")
    ndbi = ctx.feature("NDBI")
    wet = ctx.other("water")
    if ctx.has("green", "nir"):
        wet = wet | ctx.other("wetland")
    thr, method = adaptive_threshold(ctx, ndbi, valid & ~wet, bounds=(-0.05, 0.2), fallback=NDBI_FALLBACK,
                                     direction=">", strictness=s)
    cand = (compare(ndbi, ">", thr) & compare(ndvi, "<", BUILT_MAX_NDVI)
            & compare(ctx.band("swir1"), ">", UNVEGETATED_MIN_SWIR1) & ~wet & valid)
    return cand, thr, method


def homogeneous_core_margin(ctx: RuleContext, land: np.ndarray) -> np.ndarray:
    """Pixels within BUILT_CORE_MARGIN_M of a homogeneous unvegetated core (see BUILT_CORE_*).

    Why: the NDVI texture test lets through the borders of bare fields (soil next to crop is
    as heterogeneous as roofs next to gardens). A town has no ~50 m square of land whose
    brightness is uniform; a field or a sand bar does, and its border lies next to it.
    """
    pixel = ctx.ground_pixel_m
    if pixel is None or pixel > BUILT_CORE_MAX_PIXEL_M:
        return np.zeros_like(land)
    core_px = max(3, int(round(BUILT_CORE_M / pixel)))
    margin_px = max(1, int(round(BUILT_CORE_MARGIN_M / pixel)))
    vis = ctx.feature("VIS") if ctx.has("blue") else ctx.band("red")
    uniform = land & (masked_local_std(vis, land, texture_window(ctx)) < BUILT_CORE_MAX_VIS_STD)
    core = ndimage.binary_opening(uniform, np.ones((core_px, core_px), dtype=bool))
    if not core.any():
        return core
    return ndimage.binary_dilation(core, iterations=margin_px)


def _heterogeneous_regions(mask: np.ndarray, texture: np.ndarray, minimum: float) -> np.ndarray:
    """Keep pixels of ``mask`` whose neighbourhood texture is at least ``minimum``.

    Decided per pixel (the texture window already spans ~50 m), not per connected region,
    because a town and the gravel bed next to it often form one connected region.
    """
    with np.errstate(invalid="ignore"):
        return mask & (texture >= minimum)


def _built(ctx: RuleContext, s: int) -> RuleResult:
    need_bands(ctx, "built", ("swir1", "nir", "red", "green"), ("nir", "red", "green", "blue"))
    valid = ctx.valid()
    if ctx.has("swir1"):
        cand, thr, method = unvegetated_land(ctx, s)
        mask = cand
        extra = [f"NDVI < {BUILT_MAX_NDVI} (mixed roofs and gardens allowed, not dense vegetation)",
                 f"SWIR1 > {UNVEGETATED_MIN_SWIR1} (not a dark wet surface)", "not open water or wetland"]
        caveats = []
        if ctx.has("swir2"):
            mask = mask & compare(ctx.feature("NDTI"), "<", BUILT_MAX_NDTI)
            extra.append(f"NDTI < {BUILT_MAX_NDTI} (flat SWIR: no 2.2 um absorption of moist soil, clay or plant "
                         "litter)")
        if min(ctx.valid().shape) >= 3:
            mask = _heterogeneous_regions(mask, ctx.feature("NDVI_STD"), BUILT_MIN_HETEROGENEITY)
            extra.append(f"urban texture: local NDVI standard deviation (~50 m window) >= "
                         f"{BUILT_MIN_HETEROGENEITY} (roofs, streets and gardens alternate; fields, sand and "
                         "rock are homogeneous)")
            margin = homogeneous_core_margin(ctx, cand)
            mask = mask & ~margin
            if margin.any():
                extra.append(f"not within {BUILT_CORE_MARGIN_M:.0f} m of a uniform unvegetated area of at least "
                             f"{BUILT_CORE_M:.0f} m x {BUILT_CORE_M:.0f} m (visible-brightness std < "
                             f"{BUILT_CORE_MAX_VIS_STD}): the borders of bare fields and sand bars")
            caveats.append("Large homogeneous built areas (airport aprons, big industrial roofs) can fail the "
                           "texture test and go to bare soil, and so can buildings right next to a bare field; "
                           "small isolated farm buildings pass it.")
        if not ctx.has("swir2"):
            caveats.append("No SWIR2 band: moist soil cannot be told from built-up by SWIR shape.")
        return finish(ctx, "built", mask, "NDBI", thr, method, ">", tuple(extra), tuple(caveats),
                      also=("red", "green", "swir2"))
    cand, thr, method = bright_unvegetated(ctx, s)
    mask = cand
    extra = [f"NDVI < {BUILT_4BAND_MAX_NDVI}", "not open water"]
    if min(valid.shape) >= 3:
        mask = _heterogeneous_regions(cand, ctx.feature("NDVI_STD"), BUILT_MIN_HETEROGENEITY)
        extra.append(f"urban texture: local NDVI standard deviation (~50 m window) >= {BUILT_MIN_HETEROGENEITY}")
    return finish(ctx, "built", mask, "VIS", thr, method, ">", tuple(extra),
                  ("No SWIR band: built-up is approximated as bright, unvegetated land with urban texture; bare "
                    "soil patches inside towns can be included, dark roofs and large uniform roofs missed.",),
                  also=("nir",))


def bright_unvegetated(ctx: RuleContext, s: int) -> tuple[np.ndarray, float, str]:
    """4-band / RGB+NIR: bright (visible mean above an adaptive threshold), unvegetated land, not water."""
    valid = ctx.valid()
    not_water = ~ctx.other("water")
    low_veg = compare(ctx.feature("NDVI"), "<", BUILT_4BAND_MAX_NDVI)
    vis = ctx.feature("VIS")
    thr, method = adaptive_threshold(ctx, vis, valid & not_water, bounds=(0.06, 0.25), fallback=0.12,
                                     direction=">", strictness=s, step=REFLECTANCE_STEP)
    return compare(vis, ">", thr) & low_veg & not_water & valid, thr, method


#: Classes of this family (the package merges them into spex.engine.rules.RULES).
RULES: Final[dict[str, RuleFunction]] = {"built": _built}
#: Human-readable band requirement of each class (help texts).
REQUIRED_BANDS: Final[dict[str, str]] = {"built": "NIR+SWIR1 (+SWIR2 to separate soil), or RGB+NIR (approximate)"}
