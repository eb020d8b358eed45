"""Cloud: Fmask-style test, kept only as objects with a ~60 m core (see RuleContext.cloud)."""

from __future__ import annotations

from typing import Final

from spex.engine.rules.context import RuleContext, RuleFunction, RuleResult, finish, need_bands

__all__ = ["RULES", "REQUIRED_BANDS"]

def _cloud(ctx: RuleContext, s: int) -> RuleResult:
    need_bands(ctx, "cloud", ("blue", "green", "red"))
    mask = ctx.cloud()
    caveats: tuple[str, ...] = ()
    if s:
        caveats = ("The cloud test has no adjustable threshold; strictness does not change it.",)
    return finish(ctx, "cloud", mask, "CLOUD", float("nan"), "fixed test", ">", (), caveats)


#: Classes of this family (the package merges them into spex.engine.rules.RULES).
RULES: Final[dict[str, RuleFunction]] = {"cloud": _cloud}
#: Human-readable band requirement of each class (help texts).
REQUIRED_BANDS: Final[dict[str, str]] = {"cloud": "visible bands (+cirrus/thermal where available)"}
