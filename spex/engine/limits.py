"""Index thresholds stated by the user ("vegetation with NDVI above 0.6"), applied to one class rule.

What a user expects: the value they give is used *as given*. So when the class rule thresholds that
index (NDVI for vegetation, MNDWI for water ...), the user's bound replaces the scene's adaptive
threshold inside the rule (its other physical tests stay), and the reply shows both values. When the
rule does not threshold that index ("water with NDVI below 0"), the bound is an extra test on the
class's pixels. Either way the final mask satisfies ``low < index < high`` everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from spex.engine.request import ExtractionRequest, IndexLimit
from spex.engine.rules import RuleContext, RuleResult, evaluate_rule
from spex.errors import BandError
from spex.spectral import INDICES

__all__ = ["AppliedLimit", "apply_bounds", "check_limits", "evaluate_with_limits"]


@dataclass(frozen=True)
class AppliedLimit:
    """How one user bound was applied: ``replaced`` = the adaptive threshold it replaced (None: extra test)."""

    limit: IndexLimit
    replaced: float | None
    rule_index: str
    strictness: int = 0

    def describe(self) -> str:
        """E.g. 'NDVI > 0.60 (as you asked; this scene's adaptive threshold is 0.30)'."""
        if self.replaced is not None:
            moved = (f", which '{'stricter' if self.strictness > 0 else 'looser'}' moved; your value is not moved: "
                     "change it to select more or less" if self.strictness else "")
            return (f"{self.limit.describe()} (as you asked; this scene's adaptive threshold is "
                    f"{self.replaced:.2f}{moved})")
        return (f"{self.limit.describe()} (as you asked, an extra test on top of the class rule, which "
                f"thresholds {self.rule_index})")


def check_limits(request: ExtractionRequest, ctx: RuleContext) -> None:
    """Refuse limits on indices this scene cannot compute.

    Raises:
        BandError: an index is unknown or needs bands the scene lacks (the message names them).
    """
    for limit in request.index_limits:
        index = INDICES.get(limit.index)
        if index is None:
            raise BandError(f"I do not know the index {limit.index!r}; I can compute {', '.join(INDICES)}.")
        missing = [b for b in index.bands if not ctx.has(b)]
        if missing:
            raise BandError(f"I cannot apply '{limit.describe()}': {index.name} = {index.formula} needs the "
                            f"{', '.join(missing)} band(s), and this scene ({ctx.cache.scene.sensor}) has "
                            f"{', '.join(ctx.bands)}.")


def evaluate_with_limits(target: str, ctx: RuleContext, request: ExtractionRequest
                         ) -> tuple[RuleResult, tuple[AppliedLimit, ...]]:
    """The rule of ``target`` with the user's limits for it (the rule alone when there are none)."""
    limits = [lim for lim in request.index_limits if lim.target == target]
    if not limits:
        return evaluate_rule(target, ctx), ()
    sub = RuleContext(ctx.cache, strictness=ctx.strictness, calibration=ctx.calibration,
                      user_limits={lim.index: (lim.low, lim.high) for lim in limits})
    result = evaluate_rule(target, sub)
    applied = tuple(AppliedLimit(lim, sub.replaced.get(lim.index), result.index, ctx.strictness) for lim in limits)
    return apply_bounds(result, ctx, request), applied


def apply_bounds(result: RuleResult, ctx: RuleContext, request: ExtractionRequest) -> RuleResult:
    """``result`` with its mask restricted to ``low < index < high`` for every limit of its class
    (also after a learned refiner replaced the mask, so the user's values always hold)."""
    limits = [lim for lim in request.index_limits if lim.target == result.target]
    if not limits:
        return result
    mask = result.mask.copy()
    for lim in limits:
        values = ctx.cache.index(lim.index)
        with np.errstate(invalid="ignore"):
            if lim.low is not None:
                mask &= values > lim.low
            if lim.high is not None:
                mask &= values < lim.high
    return replace(result, mask=mask)
