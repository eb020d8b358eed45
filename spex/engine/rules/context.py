"""Shared state and helpers of the class rules: RuleContext, RuleResult, thresholds, features.

Every rule is a pure function ``rule(ctx, strictness) -> RuleResult`` of a
:class:`RuleContext` (the scene's index cache plus memoised class masks). The helpers
here are the only way rules threshold (:func:`adaptive_threshold`: Otsu, physically
clamped, shifted by strictness), compare (NaN-safe) and finish a mask (:func:`finish`:
valid, non-cloud pixels only), so every class behaves alike.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from scipy import ndimage

from spex.errors import BandError
from spex.spectral import INDICES, IndexCache, otsu_threshold
from spex.io.quality import QualityLayer
from spex.engine.rules.calibration import Calibration
from spex.engine.rules.obstruction import CLOUD_METHOD_ENV, Obstruction, detect_obstruction
from spex.spectral.cloud import CORE_RADIUS_M
from spex.spectral.thresholds import masked_sample

__all__ = [
    "STRICTNESS_STEP", "RELATIVE_BOUND_SLACK", "REFLECTANCE_STEP", "SPARSE_MIN_NDVI", "TEXTURE_SCALE_M",
    "OBSTRUCTION_CLASSES", "MASK_FEATURES", "CROSS", "SQUARE", "Feature", "RuleContext", "RuleResult", "RuleFunction", "adaptive_threshold", "compare",
    "need_bands", "finish", "texture_window", "masked_local_std", "evaluate_rule",
]

logger = logging.getLogger(__name__)

#: Threshold shift per strictness level, in index units (normalised differences span -1..1).
STRICTNESS_STEP: Final[float] = 0.05
#: Uncalibrated (relatively scaled) scenes: the physical clamp of Otsu thresholds is widened by this.
RELATIVE_BOUND_SLACK: Final[float] = 0.15
#: Threshold shift per strictness level for reflectance-valued features (brightness).
REFLECTANCE_STEP: Final[float] = 0.01

#: Below this NDVI a pixel has no meaningful green cover (bare soil is ~0.05-0.15).
SPARSE_MIN_NDVI: Final[float] = 0.15

#: Features that are masks, not per-pixel index values (their evidence is the mask itself).
MASK_FEATURES: Final[frozenset[str]] = frozenset({"CLOUD", "SHADOW", "HAZE", "CLOUD_MODEL", "SHADOW_MODEL", "QA"})
#: Classes that are themselves obstructions: they are not cut by cloud / shadow exclusion.
OBSTRUCTION_CLASSES: Final[frozenset[str]] = frozenset({"cloud", "shadow", "haze"})

#: Ground scale of the texture window: a few houses with their gardens and street (5x5 px at 10 m).
TEXTURE_SCALE_M: Final[float] = 50.0

@dataclass(frozen=True)
class Feature:
    """A per-pixel quantity used by a rule (a catalogue index or a rule-local one)."""

    name: str
    formula: str
    bands: tuple[str, ...]


#: 4- and 8-connected 3x3 structuring elements.
CROSS: Final[np.ndarray] = ndimage.generate_binary_structure(2, 1)
SQUARE: Final[np.ndarray] = ndimage.generate_binary_structure(2, 2)

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
    "CLOUD_MODEL": Feature("CLOUD_MODEL", "ukis-csmask UNet (DLR, trained on Sentinel-2 and Landsat; ONNX on the CPU) "
                                          "cloud class, thin and thick, at ~30 m", ("blue", "green", "red", "nir")),
    "SHADOW_MODEL": Feature("SHADOW_MODEL", "ukis-csmask UNet cloud-shadow class at ~30 m",
                            ("blue", "green", "red", "nir")),
    "QA": Feature("QA", "the quality flags supplied with the scene", ()),
    "HAZE": Feature("HAZE", "thin cloud / haze: cloud of the cloud source where the opaque-cloud test finds no "
                            "bright white pixel within 60 m (the ground still shows)", ("blue", "green", "red")),
    "SHADOW": Feature("SHADOW", "dark NIR/SWIR1 basin (flood-fill depth) matched to a detected cloud shifted away "
                                "from the sun (spex.spectral.shadow)", ("nir", "swir1")),
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
    _derived: dict[str, object] = field(default_factory=dict)
    #: user-stated bounds per catalogue index, (low, high): they replace the adaptive threshold of any
    #: test on that index (low for ">" tests, high for "<" tests); see spex.engine.extract
    user_limits: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    #: index -> the adaptive threshold a user bound replaced (so the reply can show both)
    replaced: dict[str, float] = field(default_factory=dict)
    #: scene-wide statistics recorded on an overview and replayed on tiles (spex.engine.streamed);
    #: None = each statistic is computed from this context's own pixels
    calibration: Calibration | None = None
    #: (target, strictness) of the rules being evaluated, innermost last (names the statistics)
    _frames: list[tuple[str, int]] = field(default_factory=list)

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

    def statistic(self, name: tuple, compute: Callable[[], object]) -> object:
        """A scene-wide statistic of the rule being evaluated (an Otsu split, a mean), named by ``name``.

        Why: a tile of a large scene must threshold like the whole scene, so its statistics come from the
        calibration (:class:`Calibration`) when there is one; otherwise ``compute()`` on this context.
        """
        if self.calibration is None:
            return compute()
        frame = self._frames[-1] if self._frames else ("", self.strictness)
        return self.calibration.get((*frame, *name), compute)

    def name_of(self, values: np.ndarray) -> str:
        """The cache or feature key of the map ``values`` ("index:NDVI", "band:green", "VIS"), "?" if none."""
        for key, arr in self._features.items():
            if arr is values:
                return key
        return self.cache.name_of(values) or "?"

    def describe(self, name: str) -> Feature:
        if name in INDICES:
            idx = INDICES[name]
            return Feature(idx.name, idx.formula, tuple(idx.bands))
        return _LOCAL[name]

    def quality(self) -> QualityLayer | None:
        """The quality flags supplied with the scene (QA_PIXEL, BQA, SCL...), None when none."""
        get = getattr(self.cache.scene, "quality", None)
        return get() if callable(get) else None

    def obstruction(self) -> Obstruction:
        """Cloud, haze and cloud shadow from the best source at hand (:mod:`.obstruction`), memoised."""
        if "obstruction" not in self._derived:
            # memoised on the scene's cache: refinements and undo must not re-run the cloud model
            self._derived["obstruction"] = self.cache.memo(_obstruction_key(), lambda: detect_obstruction(self))
        return self._derived["obstruction"]  # type: ignore[return-value]

    def use_obstruction(self, obstruction: Obstruction) -> None:
        """Take ``obstruction`` as this scene's (a tile cut from the whole scene's) instead of detecting it."""
        self._derived["obstruction"] = self.cache.memo(_obstruction_key(), lambda: obstruction)

    def cloud(self) -> np.ndarray:
        """All cloud, thin and opaque (False everywhere when nothing can detect it)."""
        return self.obstruction().cloud

    def haze(self) -> np.ndarray:
        """The thin part of the cloud (the ground still shows): flagged, excluded only when asked."""
        return self.obstruction().haze

    def shadow(self) -> np.ndarray:
        return self.obstruction().shadow

    def obstructed(self) -> np.ndarray:
        """Pixels no land or water class may take: opaque cloud and cloud shadow."""
        if "obstructed" not in self._features:
            self._features["obstructed"] = self.obstruction().blocking
        return self._features["obstructed"]

    def release(self, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Forget the rule-local feature maps except ``keep`` (one-shot runs, see IndexCache.release)."""
        for name in [n for n in self._features if n not in keep]:
            del self._features[name]

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


#: A class rule: (context, strictness) -> result.
RuleFunction = Callable[[RuleContext, int], RuleResult]


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


def _obstruction_key() -> str:
    return f"obstruction:{os.environ.get(CLOUD_METHOD_ENV, 'auto').lower()}"


def adaptive_threshold(ctx: RuleContext, values: np.ndarray, within: np.ndarray, *, bounds: tuple[float, float],
                       fallback: float, direction: str, strictness: int,
                       step: float = STRICTNESS_STEP) -> tuple[float, str]:
    """Otsu threshold of ``values`` inside ``within``, clamped, then shifted by strictness."""
    if not ctx.cache.scene.calibrated:
        # relative scaling shifts values by unknown amounts: trust the scene's own split more
        # (only towards the class core: index signs stay meaningful under relative scaling)
        slack = RELATIVE_BOUND_SLACK * (REFLECTANCE_STEP / STRICTNESS_STEP if step == REFLECTANCE_STEP else 1.0)
        bounds = (bounds[0], bounds[1] + slack) if direction == ">" else (bounds[0] - slack, bounds[1])
    # masked_sample: the subsample otsu_threshold would draw, without a full copy
    result = ctx.statistic(("otsu", ctx.name_of(values), bounds, fallback),
                           lambda: otsu_threshold(masked_sample(values, within), bounds=bounds, fallback=fallback))
    shift = step * strictness
    value = float(result.value) + (shift if direction == ">" else -shift)
    for name, (low, high) in ctx.user_limits.items():  # the user's value wins, said in the evidence
        bound = low if direction.startswith(">") else high
        if bound is not None and values is ctx.cache.index(name):
            ctx.replaced[name] = value
            return float(bound), "user"
    method = result.method + (f", strictness {strictness:+d} ({'+' if direction == '>' else '-'}"
                              f"{abs(shift):.2f})" if strictness else "")
    return value, method


def compare(values: np.ndarray, direction: str, threshold: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if direction == ">=":
            return values >= threshold
        return values > threshold if direction == ">" else values < threshold


def need_bands(ctx: RuleContext, target: str, *alternatives: tuple[str, ...]) -> None:
    """Raise BandError unless one band set of ``alternatives`` is present."""
    if any(ctx.has(*alt) for alt in alternatives):
        return
    options = " or ".join("+".join(alt) for alt in alternatives)
    raise BandError(f"extracting {target} needs the bands {options}; this scene ({ctx.cache.scene.sensor}) has "
                    f"{', '.join(ctx.bands)}")


def finish(ctx: RuleContext, target: str, mask: np.ndarray, index: str, threshold: float, method: str,
           direction: str, extra: tuple[str, ...] = (), caveats: tuple[str, ...] = (),
           also: tuple[str, ...] = ()) -> RuleResult:
    """Finish a rule: restrict to valid, non-cloud pixels; ``also`` = bands used by secondary tests."""
    feat = ctx.describe(index)
    bands = tuple(dict.fromkeys(b for b in (*feat.bands, *also) if ctx.has(b)))
    mask = mask & ctx.valid()
    if target not in OBSTRUCTION_CLASSES:
        mask &= ~ctx.obstructed()
    return RuleResult(target, mask, feat.name, feat.formula, bands, threshold, method, direction,
                      extra, caveats)


# ----------------------------------------------------------------------------- classes

def masked_local_std(values: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """Standard deviation of ``values`` over the ``mask`` pixels of each ``size`` window (0 where none)."""
    ok = mask & np.isfinite(values)
    w = ndimage.uniform_filter(ok.astype(np.float32), size)
    x = np.where(ok, values, 0.0).astype(np.float32)
    m1 = ndimage.uniform_filter(x, size) / np.maximum(w, 1e-6)
    m2 = ndimage.uniform_filter(x * x, size) / np.maximum(w, 1e-6)
    return np.sqrt(np.maximum(m2 - m1 * m1, 0.0))


def evaluate_rule(target: str, ctx: RuleContext, strictness: int | None = None) -> RuleResult:
    """Evaluate the rule of ``target`` (memoised per strictness).

    Raises:
        BandError: the scene lacks the bands this class needs (the message lists them).
        ValueError: unknown target.
    """
    from spex.engine.rules import RULES  # the registry: the family modules, merged at package import

    if target not in RULES:
        raise ValueError(f"unknown target {target!r}; supported: {', '.join(RULES)}")
    s = ctx.strictness if strictness is None else strictness
    key = (target, s)
    if key not in ctx.results:
        def run() -> RuleResult:
            ctx._frames.append(key)
            try:
                return RULES[target](ctx, s)
            finally:
                ctx._frames.pop()
        if ctx.user_limits:  # user bounds change thresholds and record what they replaced: per extraction
            ctx.results[key] = run()
        else:  # a pure function of the scene: refinements, undo and redo reuse it (memoised on the cache)
            method = os.environ.get(CLOUD_METHOD_ENV, "auto").lower()
            ctx.results[key] = ctx.cache.memo(f"rule:{target}:{s}:{method}", lambda: _frozen(run()))
    return ctx.results[key]


def _frozen(result: RuleResult) -> RuleResult:
    """``result`` with a read-only mask: it is shared by every later extraction on the scene."""
    result.mask.flags.writeable = False
    return result
