"""Open water and wetland.

water: MNDWI (NDWI without SWIR) > Otsu, NIR < 0.15, NDVI < 0.2 unless NIR < 0.05; plus shoreline
pixels with NIR < 0.05 connected to that water (one mixed pixel; one 20 m SWIR pixel on 10 m S2
grids; calibrated scenes only); RGB only: dark, non-reddish pixels. wetland: water index within 0.3
below the open-water threshold, NIR < 0.15, within 500 m of open water.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from scipy import ndimage

from spex.engine.rules.context import (
    CROSS, REFLECTANCE_STEP, SPARSE_MIN_NDVI, SQUARE, STRICTNESS_STEP, RuleContext, RuleFunction, RuleResult,
    adaptive_threshold, compare, evaluate_rule, finish, need_bands,
)

__all__ = ["RULES", "REQUIRED_BANDS", "shore_mixing_width", "WATER_MAX_NIR", "WATER_MAX_NDVI", "WATER_DARK_NIR",
           "WATER_EDGE_MAX_M", "WETLAND_INDEX_MARGIN", "WETLAND_MAX_NIR", "WETLAND_MAX_WATER_DISTANCE_M"]

#: Open water absorbs NIR: clear water < 0.05, sediment-laden water rarely > 0.12 (TOA);
#: vegetation, soil and roofs are > 0.15. Rejects bright surfaces with a positive NDWI/MNDWI.
WATER_MAX_NIR: Final[float] = 0.15
#: Open water absorbs NIR at least as strongly as red (NDVI <= ~0.1); 0.2 tolerates sediment,
#: algae and mixed shore pixels. Higher NDVI means canopy (shaded forest) or emergent vegetation.
WATER_MAX_NDVI: Final[float] = 0.2
#: Below this NIR reflectance NDVI is dominated by noise and offsets, so it is not tested.
WATER_DARK_NIR: Final[float] = 0.05
#: Shoreline pixels mix water with land. By linear mixing of water (NIR ~0.02) and any land
#: surface (vegetation / soil NIR >= ~0.2), a pixel with NIR < WATER_DARK_NIR is >= ~80 % water,
#: yet its MNDWI can fail: Sentinel-2 SWIR1 (B11) is 20 m, so on a 10 m grid it carries the
#: bright SWIR of the bank (Du et al. 2016, doi:10.3390/rs8040354). Such dark pixels connected
#: to detected water are added, at most this far (one native SWIR1 pixel) from it.
WATER_EDGE_MAX_M: Final[float] = 20.0

#: Wetland: water index at most this far below the scene's open-water threshold (mixed water pixels).
WETLAND_INDEX_MARGIN: Final[float] = 0.3
#: Wetland: NIR below this (water-logged surfaces; dry canopies reflect > 0.2 in the NIR).
WETLAND_MAX_NIR: Final[float] = 0.15
#: Wetland candidates must lie within this distance of open water.
WETLAND_MAX_WATER_DISTANCE_M: Final[float] = 500.0

def _water(ctx: RuleContext, s: int) -> RuleResult:
    need_bands(ctx, "water", ("green", "swir1"), ("green", "nir"), ("red", "green", "blue"))
    valid = ctx.valid()
    within = valid
    if ctx.has("green", "swir1"):
        index, bounds, fallback = "MNDWI", (-0.15, 0.35), 0.0
    elif ctx.has("green", "nir"):
        # Without SWIR, roofs and roads reach NDWI 0..0.15 (Xu 2006), so the threshold stays above 0.05
        # and the split is sought among pixels that are not clearly vegetated (else Otsu splits
        # vegetation from everything else).
        index, bounds, fallback = "NDWI", (0.05, 0.4), 0.2
        if ctx.has("red"):
            within = valid & compare(ctx.feature("NDVI"), "<", SPARSE_MIN_NDVI + 0.05)
    else:
        return _water_rgb(ctx, s)
    values = ctx.feature(index)
    thr, method = adaptive_threshold(ctx, values, within, bounds=bounds, fallback=fallback, direction=">", strictness=s)
    mask = compare(values, ">", thr)
    extra: list[str] = []
    caveats: list[str] = []
    if ctx.has("nir"):
        nir = ctx.band("nir")
        mask &= compare(nir, "<", WATER_MAX_NIR)
        extra.append(f"NIR reflectance < {WATER_MAX_NIR} (water absorbs NIR; rejects bright soil, roofs, snow)")
        if ctx.has("red"):
            # Fmask-style (Zhu & Woodcock 2012), relaxed: NDVI is only trusted where NIR is not tiny
            mask &= compare(ctx.feature("NDVI"), "<", WATER_MAX_NDVI) | compare(nir, "<", WATER_DARK_NIR)
            extra.append(f"NDVI < {WATER_MAX_NDVI} or NIR < {WATER_DARK_NIR} (water absorbs NIR more than red; "
                         "rejects shaded canopy; emergent vegetation goes to wetland)")
        width = _water_edge_width(ctx, index)
        if width and mask.any():
            edge = compare(nir, "<", WATER_DARK_NIR) & valid & ~ctx.obstructed()
            grown = ndimage.binary_dilation(mask, SQUARE, iterations=width, mask=edge | mask)
            if (grown & ~mask).any():
                mask = grown
            extra.append(f"shoreline pixels with NIR < {WATER_DARK_NIR} (>= ~80 % water by linear mixing) "
                         f"connected to that water, up to {width} px away, are water too (mixed pixels whose "
                         f"{index} is pulled down by the bank)")
    if index == "NDWI":
        caveats.append("No SWIR band: water uses NDWI (green vs NIR), which confuses dark shadows and some "
                       "dark roofs with water more often than MNDWI.")
    return finish(ctx, "water", mask, index, thr, method, ">", tuple(extra), tuple(caveats), also=("nir", "red"))


def _water_edge_width(ctx: RuleContext, index: str) -> int:
    """Pixels of shoreline growth: one mixed pixel (see ``shore_mixing_width``).

    0 for relatively scaled scenes: the absolute NIR limit means nothing there.
    """
    if not ctx.cache.scene.calibrated:
        return 0
    return shore_mixing_width(ctx, swir=index == "MNDWI")


def shore_mixing_width(ctx: RuleContext, *, swir: bool | None = None) -> int:
    """Pixels of one mixed-pixel buffer along shorelines: one pixel, or one native 20 m SWIR1 pixel on finer S2 grids.

    Shoreline pixels mix water with the bank; where the SWIR1 band is coarser than the grid (Sentinel-2
    B11 at 20 m resampled to 10 m), a SWIR-based test sees the bank up to ``WATER_EDGE_MAX_M`` away.
    ``swir`` says whether the test at hand uses SWIR1 (default: whether the scene has it).
    """
    pixel = ctx.ground_pixel_m
    if pixel is None:
        return 1
    uses_swir = ctx.has("swir1") if swir is None else swir
    if uses_swir and ctx.cache.scene.sensor.startswith("Sentinel-2"):
        return max(1, int(math.ceil(WATER_EDGE_MAX_M / pixel - 1e-6)))
    return 1


def _water_rgb(ctx: RuleContext, s: int) -> RuleResult:
    valid = ctx.valid()
    vis = ctx.feature("VIS")
    thr, method = adaptive_threshold(ctx, vis, valid, bounds=(0.03, 0.12), fallback=0.08, direction="<", strictness=s,
                                     step=REFLECTANCE_STEP)
    r, g, b = ctx.band("red"), ctx.band("green"), ctx.band("blue")
    mask = compare(vis, "<", thr) & (np.fmax(g, b) >= r)
    return finish(ctx, "water", mask, "VIS", thr, method, "<",
                  ("blue or green >= red (water is not reddish)",),
                  ("RGB only: water is approximated as dark, non-reddish pixels; shadows and dark roofs can be "
                    "mistaken for water. A NIR or SWIR band makes this reliable.",))


def _wetland(ctx: RuleContext, s: int) -> RuleResult:
    """Water-logged land next to open water: marsh, tidal flats, vegetated shallows.

    Such pixels mix water with vegetation or mud, so their water index lies *below* the
    scene's open-water threshold but within ``WETLAND_INDEX_MARGIN`` of it, and their
    NIR stays low (< ``WETLAND_MAX_NIR``; dry canopies reflect > 0.2). A fixed index
    value would not work: path radiance lifts the green band at TOA, so dry forest
    reaches MNDWI -0.1 in L1C data but -0.55 at the surface. Candidates must lie within
    ``WETLAND_MAX_WATER_DISTANCE_M`` of open water, which rejects dark asphalt and shadows.
    """
    need_bands(ctx, "wetland", ("green", "swir1", "nir"), ("green", "nir"))
    valid = ctx.valid()
    water_rule = evaluate_rule("water", ctx, strictness=0)
    water = water_rule.mask
    index = water_rule.index
    values = ctx.feature(index)
    floor = water_rule.threshold - WETLAND_INDEX_MARGIN + STRICTNESS_STEP * s
    nir = ctx.band("nir")
    pixel = max(min(ctx.cache.scene.pixel_size_m), 1e-6)
    dist_px = max(1, int(round(WETLAND_MAX_WATER_DISTANCE_M / pixel)))
    if water.any():
        # square neighbourhood (separable max filter: cost independent of the distance)
        near_water = ndimage.maximum_filter(water.view(np.uint8), size=2 * dist_px + 1) > 0
    else:
        near_water = np.zeros_like(water)
    mask = (compare(values, ">", floor) & compare(nir, "<", WETLAND_MAX_NIR - REFLECTANCE_STEP * s)
            & ~water & near_water & valid)
    # wetlands are areal: one-pixel lines are shadows or mixed pixels at field and forest edges
    mask = ndimage.binary_opening(mask, CROSS)
    caveats = ["Wetland means water-logged land next to open water (marsh, tidal flats, vegetated shallows): "
               f"within {WETLAND_MAX_WATER_DISTANCE_M:g} m of open water. Dense reed beds or swamp forest look like "
               "dry vegetation on a single date and are not included; flooded fields are."]
    if not water.any():
        caveats.append("No open water was found, so no wetland can be placed next to it.")
    return finish(ctx, "wetland", mask, index, floor,
                  f"open-water threshold {water_rule.threshold:.3f} minus {WETLAND_INDEX_MARGIN}", ">",
                  (f"NIR < {WETLAND_MAX_NIR - REFLECTANCE_STEP * s:.2f} (water-logged, not dry canopy)",
                    "not open water", f"within {WETLAND_MAX_WATER_DISTANCE_M:g} m of open water (square neighbourhood)",
                    "areal: opened with a 3x3 cross (one-pixel lines are edge shadows or mixed pixels)"),
                  tuple(caveats), also=("nir",))


#: Classes of this family (the package merges them into spex.engine.rules.RULES).
RULES: Final[dict[str, RuleFunction]] = {"water": _water, "wetland": _wetland}
#: Human-readable band requirement of each class (help texts).
REQUIRED_BANDS: Final[dict[str, str]] = {"water": "green+SWIR1 (MNDWI), or green+NIR (NDWI), or RGB (approximate)",
    "wetland": "green+NIR(+SWIR1), next to open water"}
