"""One spectral rule per target class, with adaptive, physically clamped thresholds.

Every rule is a pure function of a :class:`RuleContext` (the scene's index cache plus
the request's strictness) that returns a :class:`RuleResult`: a boolean class mask
(True = class; never True on invalid pixels) and the evidence behind it.

Thresholds
----------
Each class has one *primary* index. Its threshold is found per scene with Otsu's
method (``spex.spectral.otsu_threshold``) on the relevant pixels (e.g. vegetation on
land only), then clamped to a physically sensible interval (``bounds``); if the
histogram has no usable valley the documented ``fallback`` (a literature value) is
used. Adaptive thresholds matter because TOA (L1C) and surface (L2A) reflectance, and
relatively scaled DN, shift index values by several hundredths. For uncalibrated
scenes (``scene.calibrated`` False) the clamp is widened by ``RELATIVE_BOUND_SLACK``
towards the class core. Secondary tests use fixed physical limits (e.g. water NIR
reflectance < 0.15).

Classes (summary; details in each rule's docstring and evidence text)
-------
water: MNDWI (NDWI without SWIR) > Otsu, NIR < 0.15, NDVI < 0.2 unless NIR < 0.05; plus shoreline
pixels with NIR < 0.05 connected to that water (one mixed pixel; one 20 m SWIR pixel on 10 m S2
grids; calibrated scenes only). wetland: water index within 0.3
below the open-water threshold, NIR < 0.15, within 500 m of open water. vegetation:
NDVI > Otsu on land. forest: vegetation with NDVI > 0.5 and NDMI > Otsu (canopy shadow
and leaf water darken SWIR), and green below an Otsu split among vegetation when the scene shows
one (crown shadow darkens the visible; without SWIR this green test alone). grass / cropland: non-forest
vegetation split at an NDVI Otsu (sparse vs dense green; a single date cannot tell crops
from grassland). built: NDBI > Otsu, NDVI < 0.5, SWIR1 > 0.08, flat SWIR (NDTI < 0.2) and
urban texture (local NDVI std >= 0.05 over ~50 m); 4-band: bright, unvegetated, textured.
NDBI falls back to -0.05 (mixed 30 m residential pixels). bare: the homogeneous (or
SWIR-absorbing) rest of that unvegetated land, NDVI below the vegetation split. cloud: Fmask-style
test, kept only as objects with a ~60 m core. snow: NDSI > 0.4, NIR > 0.11, green > 0.1.

Strictness
----------
``strictness`` (-2..+2) moves the primary threshold by ``STRICTNESS_STEP`` (0.05 index
units) per level towards the class core (stricter: fewer, purer pixels) or away from it
(looser), after clamping. It is applied on top of the adaptive value, so "stricter"
always removes pixels and "looser" always adds them.

Cross-class consistency
-----------------------
Classes exclude each other where physics says they cannot coexist in one pixel:
wetland, built and bare exclude open water; forest, grass and cropland are subsets of
vegetation; all land and water classes exclude detected cloud (except the cloud class).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from scipy import ndimage

from spex.errors import BandError
from spex.spectral import INDICES, IndexCache, otsu_threshold
from spex.spectral.cloud import CORE_RADIUS_M, cloud_objects
from spex.spectral.thresholds import masked_sample

__all__ = [
    "STRICTNESS_STEP", "RuleContext", "RuleResult", "RULES", "evaluate_rule", "required_bands",
    "WATER_MAX_NIR", "WATER_DARK_NIR", "UNVEGETATED_MIN_SWIR1", "SNOW_MIN_NDSI", "SNOW_MIN_NIR",
]

logger = logging.getLogger(__name__)

#: Threshold shift per strictness level, in index units (normalised differences span -1..1).
STRICTNESS_STEP: Final[float] = 0.05
#: Uncalibrated (relatively scaled) scenes: the physical clamp of Otsu thresholds is widened by this.
RELATIVE_BOUND_SLACK: Final[float] = 0.15
#: Threshold shift per strictness level for reflectance-valued features (brightness).
REFLECTANCE_STEP: Final[float] = 0.01
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
#: Snow: NDSI > 0.4 and NIR > 0.11 (Hall et al. 1995, MODIS/Landsat SNOMAP); green > 0.1
#: additionally rejects dark water, which also has a high NDSI.
SNOW_MIN_NDSI: Final[float] = 0.4
SNOW_MIN_NIR: Final[float] = 0.11
SNOW_MIN_GREEN: Final[float] = 0.10
#: Below this NDVI a pixel has no meaningful green cover (bare soil is ~0.05-0.15).
SPARSE_MIN_NDVI: Final[float] = 0.15
#: Forest needs a dense canopy: NDVI of closed canopies exceeds ~0.5 even at TOA.
FOREST_MIN_NDVI: Final[float] = 0.5
#: Wetland: water index at most this far below the scene's open-water threshold (mixed water pixels).
WETLAND_INDEX_MARGIN: Final[float] = 0.3
#: Wetland: NIR below this (water-logged surfaces; dry canopies reflect > 0.2 in the NIR).
WETLAND_MAX_NIR: Final[float] = 0.15
#: Wetland candidates must lie within this distance of open water.
WETLAND_MAX_WATER_DISTANCE_M: Final[float] = 500.0
#: Unvegetated land (built or bare) reflects SWIR1 above this; darker pixels are wet or shadowed.
UNVEGETATED_MIN_SWIR1: Final[float] = 0.08
#: Built-up pixels: local standard deviation of NDVI at least this (urban fabric mixes
#: roofs, streets and gardens; bare fields, beaches and rock are homogeneous, < ~0.04).
BUILT_MIN_HETEROGENEITY: Final[float] = 0.05
#: Ground scale of the texture window: a few houses with their gardens and street (5x5 px at 10 m).
TEXTURE_SCALE_M: Final[float] = 50.0
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
#: Bare soil: at most sparse green cover.
BARE_MAX_NDVI: Final[float] = 0.3
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


@dataclass(frozen=True)
class Feature:
    """A per-pixel quantity used by a rule (a catalogue index or a rule-local one)."""

    name: str
    formula: str
    bands: tuple[str, ...]


_CROSS: Final[np.ndarray] = ndimage.generate_binary_structure(2, 1)
_SQUARE: Final[np.ndarray] = ndimage.generate_binary_structure(2, 2)

#: Rule-local features that are not in the spectral catalogue.
_LOCAL: Final[dict[str, Feature]] = {
    "NDTI": Feature("NDTI", "(swir1 - swir2) / (swir1 + swir2)", ("swir1", "swir2")),
    "ExG": Feature("ExG", "(2 * green - red - blue) / (red + green + blue)", ("red", "green", "blue")),
    "VIS": Feature("VIS", "(red + green + blue) / 3", ("red", "green", "blue")),
    "NDVI_STD": Feature("NDVI_STD", "standard deviation of NDVI in a ~50 m window (at least 3x3 pixels)",
                        ("nir", "red")),
    "RG": Feature("RG", "(red - green) / (red + green)", ("red", "green")),
    "CLOUD": Feature("CLOUD", "Fmask-style test (spex.spectral.cloud_mask): bright blue, white (flat visible), "
                              "haze-optimised transform > 0, not snow, NIR > SWIR1; cold / cirrus where available; "
                              f"only objects with a core >= {CORE_RADIUS_M:g} m from clear pixels",
                     ("blue", "green", "red")),
}


@dataclass
class RuleContext:
    """Per-extraction state shared by the rules: the index cache and memoised class masks.

    ``masks`` memoises class masks computed at strictness 0 for use by *other* rules
    (e.g. built excludes water), so a stricter water request does not change built-up.
    """

    cache: IndexCache
    strictness: int = 0
    results: dict[tuple[str, int], RuleResult] = field(default_factory=dict)
    _features: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.cache.scene.band_names)

    def has(self, *names: str) -> bool:
        present = set(self.bands)
        return all(n in present or (n == "nir" and "nir08" in present) for n in names)

    def valid(self) -> np.ndarray:
        return self.cache.valid()

    @property
    def ground_pixel_m(self) -> float | None:
        """Ground pixel size in metres (the finer axis); None when not georeferenced or unknown."""
        scene = self.cache.scene
        if scene.crs is None:
            return None
        pixel = float(min(scene.pixel_size_m))
        return pixel if pixel > 0 else None

    def band(self, name: str) -> np.ndarray:
        if name == "nir" and "nir" not in self.bands and "nir08" in self.bands:
            name = "nir08"
        return self.cache.band(name)

    def feature(self, name: str) -> np.ndarray:
        """Index or rule-local feature map (float32, NaN where invalid), memoised."""
        if name in INDICES:
            return self.cache.index(name)
        if name not in self._features:
            self._features[name] = _local_feature(self, name)
        return self._features[name]

    def describe(self, name: str) -> Feature:
        if name in INDICES:
            idx = INDICES[name]
            return Feature(idx.name, idx.formula, tuple(idx.bands))
        return _LOCAL[name]

    def cloud(self) -> np.ndarray:
        """Cloud objects (False everywhere when the scene lacks the visible bands the test needs).

        The per-pixel spectral test, restricted to objects with a ~60 m core
        (:func:`spex.spectral.cloud.cloud_objects`): removes roofs and beaches that look white.
        """
        if "cloud_objects" not in self._features:
            if not self.has("blue", "green", "red"):
                mask = np.zeros(self.valid().shape, dtype=bool)
            else:
                mask = cloud_objects(self.cache.cloud() & self.valid(), self.ground_pixel_m)
            self._features["cloud_objects"] = mask
        return self._features["cloud_objects"]

    def other(self, target: str) -> np.ndarray:
        """Mask of another class at default strictness (for exclusions between classes)."""
        return evaluate_rule(target, self, strictness=0).mask


@dataclass(frozen=True)
class RuleResult:
    """A class mask and the evidence behind it (all thresholds as applied)."""

    target: str
    mask: np.ndarray
    index: str
    formula: str
    bands: tuple[str, ...]
    threshold: float
    threshold_method: str
    direction: str
    extra_tests: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()


def _local_feature(ctx: RuleContext, name: str) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "NDTI":
            s1, s2 = ctx.band("swir1"), ctx.band("swir2")
            out = (s1 - s2) / (s1 + s2)
        elif name == "NDVI_STD":
            ndvi = ctx.feature("NDVI")
            ok = np.isfinite(ndvi)
            out = masked_local_std(ndvi, ok, texture_window(ctx))
            out[~ok] = np.nan
        elif name == "RG":
            r, g = ctx.band("red"), ctx.band("green")
            out = (r - g) / (r + g)
        elif name in ("ExG", "VIS"):
            r, g, b = ctx.band("red"), ctx.band("green"), ctx.band("blue")
            out = (2 * g - r - b) / (r + g + b) if name == "ExG" else (r + g + b) / 3
        else:
            raise KeyError(name)
    out = np.asarray(out, dtype=np.float32)
    out[~np.isfinite(out)] = np.nan
    return out


def texture_window(ctx: RuleContext) -> int:
    """Odd window size (pixels) covering ~TEXTURE_SCALE_M on the ground, 3..51."""
    pixel = ctx.ground_pixel_m
    if pixel is None:
        return 3
    size = int(round(TEXTURE_SCALE_M / pixel))
    size += 1 - size % 2
    return int(min(max(size, 3), 51))


def _threshold(ctx: RuleContext, values: np.ndarray, within: np.ndarray, *, bounds: tuple[float, float],
               fallback: float, direction: str, strictness: int,
               step: float = STRICTNESS_STEP) -> tuple[float, str]:
    """Otsu threshold of ``values`` inside ``within``, clamped, then shifted by strictness."""
    sample = masked_sample(values, within)  # the subsample otsu_threshold would draw, no full copy
    if not ctx.cache.scene.calibrated:
        # relative scaling shifts values by unknown amounts: trust the scene's own split more
        # (only towards the class core: index signs stay meaningful under relative scaling)
        slack = RELATIVE_BOUND_SLACK * (REFLECTANCE_STEP / STRICTNESS_STEP if step == REFLECTANCE_STEP else 1.0)
        bounds = (bounds[0], bounds[1] + slack) if direction == ">" else (bounds[0] - slack, bounds[1])
    result = otsu_threshold(sample, bounds=bounds, fallback=fallback)
    shift = step * strictness
    value = float(result.value) + (shift if direction == ">" else -shift)
    method = result.method + (f", strictness {strictness:+d} ({'+' if direction == '>' else '-'}"
                              f"{abs(shift):.2f})" if strictness else "")
    return value, method


def _compare(values: np.ndarray, direction: str, threshold: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if direction == ">=":
            return values >= threshold
        return values > threshold if direction == ">" else values < threshold


def _need(ctx: RuleContext, target: str, *alternatives: tuple[str, ...]) -> None:
    """Raise BandError unless one band set of ``alternatives`` is present."""
    if any(ctx.has(*alt) for alt in alternatives):
        return
    options = " or ".join("+".join(alt) for alt in alternatives)
    raise BandError(f"extracting {target} needs the bands {options}; this scene ({ctx.cache.scene.sensor}) has "
                    f"{', '.join(ctx.bands)}")


def _result(ctx: RuleContext, target: str, mask: np.ndarray, index: str, threshold: float, method: str,
            direction: str, extra: tuple[str, ...] = (), caveats: tuple[str, ...] = (),
            also: tuple[str, ...] = ()) -> RuleResult:
    """Finish a rule: restrict to valid, non-cloud pixels; ``also`` = bands used by secondary tests."""
    feat = ctx.describe(index)
    bands = tuple(dict.fromkeys(b for b in (*feat.bands, *also) if ctx.has(b)))
    mask = mask & ctx.valid()
    if target != "cloud":
        mask &= ~ctx.cloud()
    return RuleResult(target, mask, feat.name, feat.formula, bands, threshold, method, direction,
                      extra, caveats)


# ----------------------------------------------------------------------------- classes

def _water(ctx: RuleContext, s: int) -> RuleResult:
    _need(ctx, "water", ("green", "swir1"), ("green", "nir"), ("red", "green", "blue"))
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
            within = valid & _compare(ctx.feature("NDVI"), "<", SPARSE_MIN_NDVI + 0.05)
    else:
        return _water_rgb(ctx, s)
    values = ctx.feature(index)
    thr, method = _threshold(ctx, values, within, bounds=bounds, fallback=fallback, direction=">", strictness=s)
    mask = _compare(values, ">", thr)
    extra: list[str] = []
    caveats: list[str] = []
    if ctx.has("nir"):
        nir = ctx.band("nir")
        mask &= _compare(nir, "<", WATER_MAX_NIR)
        extra.append(f"NIR reflectance < {WATER_MAX_NIR} (water absorbs NIR; rejects bright soil, roofs, snow)")
        if ctx.has("red"):
            # Fmask-style (Zhu & Woodcock 2012), relaxed: NDVI is only trusted where NIR is not tiny
            mask &= _compare(ctx.feature("NDVI"), "<", WATER_MAX_NDVI) | _compare(nir, "<", WATER_DARK_NIR)
            extra.append(f"NDVI < {WATER_MAX_NDVI} or NIR < {WATER_DARK_NIR} (water absorbs NIR more than red; "
                         "rejects shaded canopy; emergent vegetation goes to wetland)")
        width = _water_edge_width(ctx, index)
        if width and mask.any():
            edge = _compare(nir, "<", WATER_DARK_NIR) & valid & ~ctx.cloud()
            grown = ndimage.binary_dilation(mask, _SQUARE, iterations=width, mask=edge | mask)
            if (grown & ~mask).any():
                mask = grown
            extra.append(f"shoreline pixels with NIR < {WATER_DARK_NIR} (>= ~80 % water by linear mixing) "
                         f"connected to that water, up to {width} px away, are water too (mixed pixels whose "
                         f"{index} is pulled down by the bank)")
    if index == "NDWI":
        caveats.append("No SWIR band: water uses NDWI (green vs NIR), which confuses dark shadows and some "
                       "dark roofs with water more often than MNDWI.")
    return _result(ctx, "water", mask, index, thr, method, ">", tuple(extra), tuple(caveats), also=("nir", "red"))


def _water_edge_width(ctx: RuleContext, index: str) -> int:
    """Pixels of shoreline growth: one mixed pixel, or one native 20 m SWIR1 pixel on finer S2 grids.

    0 for relatively scaled scenes: the absolute NIR limit means nothing there.
    """
    if not ctx.cache.scene.calibrated:
        return 0
    pixel = ctx.ground_pixel_m
    if pixel is None:
        return 1
    if index == "MNDWI" and ctx.cache.scene.sensor.startswith("Sentinel-2"):
        return max(1, int(math.ceil(WATER_EDGE_MAX_M / pixel - 1e-6)))
    return 1


def _water_rgb(ctx: RuleContext, s: int) -> RuleResult:
    valid = ctx.valid()
    vis = ctx.feature("VIS")
    thr, method = _threshold(ctx, vis, valid, bounds=(0.03, 0.12), fallback=0.08, direction="<", strictness=s,
                             step=REFLECTANCE_STEP)
    r, g, b = ctx.band("red"), ctx.band("green"), ctx.band("blue")
    mask = _compare(vis, "<", thr) & (np.fmax(g, b) >= r)
    return _result(ctx, "water", mask, "VIS", thr, method, "<",
                   ("blue or green >= red (water is not reddish)",),
                   ("RGB only: water is approximated as dark, non-reddish pixels; shadows and dark roofs can be "
                    "mistaken for water. A NIR or SWIR band makes this reliable.",))


def _vegetation(ctx: RuleContext, s: int) -> RuleResult:
    _need(ctx, "vegetation", ("nir", "red"), ("red", "green", "blue"))
    valid = ctx.valid()
    if not ctx.has("nir", "red"):
        exg = ctx.feature("ExG")
        thr, method = _threshold(ctx, exg, valid, bounds=(0.02, 0.15), fallback=0.05, direction=">", strictness=s)
        return _result(ctx, "vegetation", _compare(exg, ">", thr), "ExG", thr, method, ">", (),
                       ("RGB only: vegetation uses the excess-green index; dry or dark vegetation is missed and "
                        "green roofs or water can be included.",))
    ndvi = ctx.feature("NDVI")
    land = valid
    extra: tuple[str, ...] = ()
    if target_water_possible(ctx):
        # the split is sought among land pixels: water would pull Otsu to the water/land valley
        land = valid & ~ctx.other("water")
        extra = ("not open water (threshold found on land pixels only)",)
    thr, method = _threshold(ctx, ndvi, land, bounds=(0.2, 0.45), fallback=0.3, direction=">", strictness=s)
    mask = _compare(ndvi, ">", thr) & land
    return _result(ctx, "vegetation", mask, "NDVI", thr, method, ">", extra, also=("green", "swir1"))


def target_water_possible(ctx: RuleContext) -> bool:
    """True when the scene has the bands of the water rule (so classes can exclude water)."""
    return ctx.has("green", "swir1") or ctx.has("green", "nir")


def _forest(ctx: RuleContext, s: int) -> RuleResult:
    _need(ctx, "forest", ("nir", "red", "swir1"), ("nir", "red", "green"))
    veg = ctx.other("vegetation")
    ndvi = ctx.feature("NDVI")
    dense = _compare(ndvi, ">", FOREST_MIN_NDVI + STRICTNESS_STEP * s)
    if ctx.has("swir1"):
        # Canopy shadowing and leaf water darken SWIR1 under trees: NDMI separates closed canopies
        # from grass and crops of the same NDVI (which expose bright soil/litter in SWIR).
        ndmi = ctx.feature("NDMI")
        thr, method = _threshold(ctx, ndmi, veg, bounds=(0.1, 0.4), fallback=0.2, direction=">", strictness=s)
        # Self-shadowing of crowns also darkens the visible: a closed canopy is darker in green than
        # grass or crops of the same NDVI/NDMI (the same cue as the no-SWIR branch below).
        # Absolute green levels shift with haze and TOA path radiance, so this test is applied only where
        # the scene's own vegetation shows two green populations (a histogram valley); otherwise NDMI decides.
        mask = veg & dense & _compare(ndmi, ">", thr)
        extra = [f"vegetation (NDVI above its threshold) and NDVI > {FOREST_MIN_NDVI + STRICTNESS_STEP * s:.2f}"
                 " (closed canopy)"]
        green = ctx.band("green")
        gthr, gmethod = _canopy_green_threshold(ctx, green, veg)
        if not gmethod.startswith("fallback"):
            mask &= _compare(green, "<", gthr)
            extra.append(f"green reflectance < {gthr:.3f} ({gmethod} among vegetation; crown shadows darken the "
                         "visible)")
        return _result(ctx, "forest", mask, "NDMI", thr, method, ">", tuple(extra),
                       ("Forest vs grass/crops is separated by canopy shadow and leaf water (NDMI); irrigated "
                        "crops at peak growth can look like forest on a single date.",), also=("red", "green"))
    # No SWIR: tree canopies are darker in the visible than grass/crops of similar NDVI.
    green = ctx.band("green")
    thr, method = _canopy_green_threshold(ctx, green, veg)
    mask = veg & dense & _compare(green, "<", thr)
    return _result(ctx, "forest", mask, "NDVI", FOREST_MIN_NDVI + STRICTNESS_STEP * s, "fixed (closed canopy)",
                   ">", (f"green reflectance < {thr:.3f} ({method}; canopy shadow darkens trees)",),
                   ("No SWIR band: forest is told from grass/crops only by visible darkness; expect confusion "
                    "with dark irrigated crops.",), also=("green",))


def _canopy_green_threshold(ctx: RuleContext, green: np.ndarray, veg: np.ndarray) -> tuple[float, str]:
    """Green reflectance separating shaded tree crowns from sunlit grass/crops (Otsu among vegetation)."""
    return _threshold(ctx, green, veg, bounds=(0.03, 0.12), fallback=0.07, direction="<", strictness=0,
                      step=REFLECTANCE_STEP)


def _non_forest_vegetation(ctx: RuleContext) -> tuple[np.ndarray, np.ndarray]:
    """Herbaceous/shrub vegetation (sparse cover included) and its NDVI."""
    _need(ctx, "grass", ("nir", "red"))
    ndvi = ctx.feature("NDVI")
    mask = _compare(ndvi, ">", SPARSE_MIN_NDVI) & ~ctx.other("forest")
    if target_water_possible(ctx):
        mask &= ~ctx.other("water")
    if ctx.has("green", "nir"):
        mask &= ~ctx.other("wetland")
    if ctx.has("swir1"):
        mask &= ~ctx.other("built")
    return mask, ndvi


def _grass_split(ctx: RuleContext, s: int, target: str) -> RuleResult:
    herb, ndvi = _non_forest_vegetation(ctx)
    direction = "<" if target == "grass" else ">"
    # Sparse/low-vigour cover (grassland, shrubs, pasture) vs dense green non-woody cover (growing crops).
    thr, method = _threshold(ctx, ndvi, herb, bounds=(0.35, 0.65), fallback=0.5, direction=direction, strictness=s)
    mask = herb & _compare(ndvi, direction, thr)
    caveat = ("A single date cannot separate crops from grassland reliably: cropland here means dense, actively "
              "growing non-woody vegetation (NDVI above the split), grassland the sparser non-woody cover; "
              "ploughed or harvested fields are not included.")
    extra = (f"NDVI > {SPARSE_MIN_NDVI} (some green cover)", "not forest, not open water")
    return _result(ctx, target, mask, "NDVI", thr, method, direction, extra, (caveat,), also=("swir1",))


def _grass(ctx: RuleContext, s: int) -> RuleResult:
    return _grass_split(ctx, s, "grass")


def _cropland(ctx: RuleContext, s: int) -> RuleResult:
    return _grass_split(ctx, s, "cropland")


def _wetland(ctx: RuleContext, s: int) -> RuleResult:
    """Water-logged land next to open water: marsh, tidal flats, vegetated shallows.

    Such pixels mix water with vegetation or mud, so their water index lies *below* the
    scene's open-water threshold but within ``WETLAND_INDEX_MARGIN`` of it, and their
    NIR stays low (< ``WETLAND_MAX_NIR``; dry canopies reflect > 0.2). A fixed index
    value would not work: path radiance lifts the green band at TOA, so dry forest
    reaches MNDWI -0.1 in L1C data but -0.55 at the surface. Candidates must lie within
    ``WETLAND_MAX_WATER_DISTANCE_M`` of open water, which rejects dark asphalt and shadows.
    """
    _need(ctx, "wetland", ("green", "swir1", "nir"), ("green", "nir"))
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
    mask = (_compare(values, ">", floor) & _compare(nir, "<", WETLAND_MAX_NIR - REFLECTANCE_STEP * s)
            & ~water & near_water & valid)
    # wetlands are areal: one-pixel lines are shadows or mixed pixels at field and forest edges
    mask = ndimage.binary_opening(mask, _CROSS)
    caveats = ["Wetland means water-logged land next to open water (marsh, tidal flats, vegetated shallows): "
               f"within {WETLAND_MAX_WATER_DISTANCE_M:g} m of open water. Dense reed beds or swamp forest look like "
               "dry vegetation on a single date and are not included; flooded fields are."]
    if not water.any():
        caveats.append("No open water was found, so no wetland can be placed next to it.")
    return _result(ctx, "wetland", mask, index, floor,
                   f"open-water threshold {water_rule.threshold:.3f} minus {WETLAND_INDEX_MARGIN}", ">",
                   (f"NIR < {WETLAND_MAX_NIR - REFLECTANCE_STEP * s:.2f} (water-logged, not dry canopy)",
                    "not open water", f"within {WETLAND_MAX_WATER_DISTANCE_M:g} m of open water (square neighbourhood)",
                    "areal: opened with a 3x3 cross (one-pixel lines are edge shadows or mixed pixels)"),
                   tuple(caveats), also=("nir",))


def _unvegetated_land(ctx: RuleContext, s: int) -> tuple[np.ndarray, float, str]:
    """Bright-in-SWIR, sparsely vegetated land (NDBI above its adaptive threshold), not water/wetland."""
    valid = ctx.valid()
    ndvi = ctx.feature("NDVI")
    ndbi = ctx.feature("NDBI")
    wet = ctx.other("water")
    if ctx.has("green", "nir"):
        wet = wet | ctx.other("wetland")
    thr, method = _threshold(ctx, ndbi, valid & ~wet, bounds=(-0.05, 0.2), fallback=NDBI_FALLBACK, direction=">",
                             strictness=s)
    cand = (_compare(ndbi, ">", thr) & _compare(ndvi, "<", BUILT_MAX_NDVI)
            & _compare(ctx.band("swir1"), ">", UNVEGETATED_MIN_SWIR1) & ~wet & valid)
    return cand, thr, method


def masked_local_std(values: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """Standard deviation of ``values`` over the ``mask`` pixels of each ``size`` window (0 where none)."""
    ok = mask & np.isfinite(values)
    w = ndimage.uniform_filter(ok.astype(np.float32), size)
    x = np.where(ok, values, 0.0).astype(np.float32)
    m1 = ndimage.uniform_filter(x, size) / np.maximum(w, 1e-6)
    m2 = ndimage.uniform_filter(x * x, size) / np.maximum(w, 1e-6)
    return np.sqrt(np.maximum(m2 - m1 * m1, 0.0))


def _homogeneous_core_margin(ctx: RuleContext, land: np.ndarray) -> np.ndarray:
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
    _need(ctx, "built", ("swir1", "nir", "red", "green"), ("nir", "red", "green", "blue"))
    valid = ctx.valid()
    ndvi = ctx.feature("NDVI")
    if ctx.has("swir1"):
        cand, thr, method = _unvegetated_land(ctx, s)
        mask = cand
        extra = [f"NDVI < {BUILT_MAX_NDVI} (mixed roofs and gardens allowed, not dense vegetation)",
                 f"SWIR1 > {UNVEGETATED_MIN_SWIR1} (not a dark wet surface)", "not open water or wetland"]
        caveats = []
        if ctx.has("swir2"):
            mask = mask & _compare(ctx.feature("NDTI"), "<", BUILT_MAX_NDTI)
            extra.append(f"NDTI < {BUILT_MAX_NDTI} (flat SWIR: no 2.2 um absorption of moist soil, clay or plant "
                         "litter)")
        if min(ctx.valid().shape) >= 3:
            mask = _heterogeneous_regions(mask, ctx.feature("NDVI_STD"), BUILT_MIN_HETEROGENEITY)
            extra.append(f"urban texture: local NDVI standard deviation (~50 m window) >= "
                         f"{BUILT_MIN_HETEROGENEITY} (roofs, streets and gardens alternate; fields, sand and "
                         "rock are homogeneous)")
            margin = _homogeneous_core_margin(ctx, cand)
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
        return _result(ctx, "built", mask, "NDBI", thr, method, ">", tuple(extra), tuple(caveats),
                       also=("red", "green", "swir2"))
    cand, thr, method = _bright_unvegetated(ctx, s)
    mask = cand
    extra = [f"NDVI < {BUILT_4BAND_MAX_NDVI}", "not open water"]
    if min(valid.shape) >= 3:
        mask = _heterogeneous_regions(cand, ctx.feature("NDVI_STD"), BUILT_MIN_HETEROGENEITY)
        extra.append(f"urban texture: local NDVI standard deviation (~50 m window) >= {BUILT_MIN_HETEROGENEITY}")
    return _result(ctx, "built", mask, "VIS", thr, method, ">", tuple(extra),
                   ("No SWIR band: built-up is approximated as bright, unvegetated land with urban texture; bare "
                    "soil patches inside towns can be included, dark roofs and large uniform roofs missed.",),
                   also=("nir",))


def _bright_unvegetated(ctx: RuleContext, s: int) -> tuple[np.ndarray, float, str]:
    """4-band / RGB+NIR: bright (visible mean above an adaptive threshold), unvegetated land, not water."""
    valid = ctx.valid()
    not_water = ~ctx.other("water")
    low_veg = _compare(ctx.feature("NDVI"), "<", BUILT_4BAND_MAX_NDVI)
    vis = ctx.feature("VIS")
    thr, method = _threshold(ctx, vis, valid & not_water, bounds=(0.06, 0.25), fallback=0.12,
                             direction=">", strictness=s, step=REFLECTANCE_STEP)
    return _compare(vis, ">", thr) & low_veg & not_water & valid, thr, method


def _bare(ctx: RuleContext, s: int) -> RuleResult:
    _need(ctx, "bare", ("swir1", "red", "nir", "green"), ("nir", "red", "green", "blue"))
    valid = ctx.valid()
    ndvi = ctx.feature("NDVI")
    if ctx.has("swir1"):
        cand, thr, method = _unvegetated_land(ctx, s)
        # Bare = soil-dominated SWIR (NDBI above its threshold) and not vegetation by this scene's own
        # NDVI split (its fallback is the literature 0.3), so no pixel falls between or into both classes:
        # on surface reflectance the split rises to ~0.45, and sparse regrowth on dry river beds (NDVI
        # 0.3-0.45, SWIR1 > NIR) would otherwise be neither. Never above BUILT_MAX_NDVI.
        cap = min(evaluate_rule("vegetation", ctx, strictness=0).threshold, BUILT_MAX_NDVI)
        sparse = _compare(ndvi, "<", cap)
        mask = ndimage.binary_opening(cand & sparse & ~ctx.other("built"), _CROSS)
        extra = (f"NDVI < {cap:.2f} (not vegetation: the scene's NDVI split)",
                 f"SWIR1 > {UNVEGETATED_MIN_SWIR1}",
                 "not open water or wetland", "not built-up (homogeneous texture"
                 + (f" or NDTI >= {BUILT_MAX_NDTI}: moist soil, clay or litter absorb at 2.2 um)" if ctx.has("swir2")
                    else ")"), "areal: opened with a 3x3 cross")
        return _result(ctx, "bare", mask, "NDBI", thr, method, ">", extra,
                       ("Bare soil is the unvegetated land that the SWIR shape marks as soil; dry bright soil and "
                        "sand with a flat SWIR go to built-up instead.",), also=("red", "swir2"))
    cand, thr, method = _bright_unvegetated(ctx, s)
    mask = cand & _compare(ndvi, "<", BARE_MAX_NDVI) & ~ctx.other("built")
    mask = ndimage.binary_opening(mask, _CROSS)
    return _result(ctx, "bare", mask, "VIS", thr, method, ">",
                   (f"NDVI < {BARE_MAX_NDVI}", "not open water", "not built-up (homogeneous texture)"),
                   ("No SWIR band: bare soil is approximated as bright, unvegetated, homogeneous land (fields, "
                    "sand, gravel beds); large uniform roofs can be included.",), also=("nir",))


def _cloud(ctx: RuleContext, s: int) -> RuleResult:
    _need(ctx, "cloud", ("blue", "green", "red"))
    mask = ctx.cloud()
    caveats: tuple[str, ...] = ()
    if s:
        caveats = ("The cloud test has no adjustable threshold; strictness does not change it.",)
    return _result(ctx, "cloud", mask, "CLOUD", float("nan"), "fixed test", ">", (), caveats)


def _snow(ctx: RuleContext, s: int) -> RuleResult:
    _need(ctx, "snow", ("green", "swir1", "nir"))
    ndsi = ctx.feature("NDSI")
    thr = SNOW_MIN_NDSI + STRICTNESS_STEP * s
    mask = _compare(ndsi, ">", thr) & _compare(ctx.band("nir"), ">", SNOW_MIN_NIR) & \
        _compare(ctx.band("green"), ">", SNOW_MIN_GREEN)
    return _result(ctx, "snow", mask, "NDSI", thr, "fixed (Hall et al. 1995 SNOMAP)", ">",
                   (f"NIR > {SNOW_MIN_NIR}", f"green > {SNOW_MIN_GREEN} (rejects water)"),
                   ("The snow test (bright visible, dark SWIR) is also met by breaking waves / foam and some "
                    "salt crusts; check snow found next to open water.",), also=("nir",))


RULES: Final[dict[str, Callable[[RuleContext, int], RuleResult]]] = {
    "water": _water, "wetland": _wetland, "vegetation": _vegetation, "forest": _forest, "grass": _grass,
    "cropland": _cropland, "built": _built, "bare": _bare, "cloud": _cloud, "snow": _snow,
}


def evaluate_rule(target: str, ctx: RuleContext, strictness: int | None = None) -> RuleResult:
    """Evaluate the rule of ``target`` (memoised per strictness).

    Raises:
        BandError: the scene lacks the bands this class needs (the message lists them).
        ValueError: unknown target.
    """
    if target not in RULES:
        raise ValueError(f"unknown target {target!r}; supported: {', '.join(RULES)}")
    s = ctx.strictness if strictness is None else strictness
    key = (target, s)
    if key not in ctx.results:
        ctx.results[key] = RULES[target](ctx, s)
    return ctx.results[key]


def required_bands(target: str) -> str:
    """Human-readable band requirement of a class (for help texts)."""
    return {
        "water": "green+SWIR1 (MNDWI), or green+NIR (NDWI), or RGB (approximate)",
        "wetland": "green+NIR(+SWIR1), next to open water",
        "vegetation": "red+NIR (NDVI), or RGB (excess green, approximate)",
        "forest": "red+NIR+SWIR1, or red+green+NIR",
        "grass": "red+NIR", "cropland": "red+NIR",
        "built": "NIR+SWIR1 (+SWIR2 to separate soil), or RGB+NIR (approximate)",
        "bare": "green+red+NIR+SWIR1 (+SWIR2), or RGB+NIR (approximate)",
        "cloud": "visible bands (+cirrus/thermal where available)",
        "snow": "green+NIR+SWIR1",
    }[target]
