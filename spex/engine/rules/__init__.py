"""One spectral rule per target class, with adaptive, physically clamped thresholds.

One module per class family (TorchGeo keeps one dataset per module): each holds its
classes' physics, constants and citations and exports ``RULES`` (class -> rule) and
``REQUIRED_BANDS``; :mod:`spex.engine.rules.context` holds the shared
:class:`RuleContext`, :class:`RuleResult` and helpers. A new class is one new module
listed in ``FAMILIES`` below.

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

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from spex.engine.rules import bare, built, cleared, cloud, snow, vegetation, water
from spex.engine.rules.built import UNVEGETATED_MIN_SWIR1
from spex.engine.rules.context import (
    STRICTNESS_STEP, RuleContext, RuleFunction, RuleResult, evaluate_rule,
)
from spex.engine.rules.snow import SNOW_MIN_NDSI, SNOW_MIN_NIR
from spex.engine.rules.water import WATER_DARK_NIR, WATER_MAX_NIR

__all__ = [
    "STRICTNESS_STEP", "RuleContext", "RuleResult", "RuleFunction", "RULES", "FAMILIES", "evaluate_rule",
    "required_bands", "WATER_MAX_NIR", "WATER_DARK_NIR", "UNVEGETATED_MIN_SWIR1", "SNOW_MIN_NDSI", "SNOW_MIN_NIR",
]

#: The class families, in the order their classes are listed to users.
FAMILIES: Final[tuple] = (water, vegetation, cleared, built, bare, cloud, snow)


def _merge(name: str) -> Mapping:
    merged: dict = {}
    for family in FAMILIES:
        for target, value in getattr(family, name).items():
            if target in merged:
                raise RuntimeError(f"class {target!r} is defined by two rule modules")
            merged[target] = value
    return MappingProxyType(merged)


#: The registry: class -> rule function (read-only; built once from FAMILIES).
RULES: Final[Mapping[str, RuleFunction]] = _merge("RULES")
_REQUIRED_BANDS: Final[Mapping[str, str]] = _merge("REQUIRED_BANDS")


def required_bands(target: str) -> str:
    """Human-readable band requirement of a class (for help texts)."""
    return _REQUIRED_BANDS[target]
