"""Cloud, thin cloud / haze and cloud shadow, shown from the scene's obstruction source.

The masks come from :mod:`spex.engine.rules.obstruction` (supplied quality flags, else the
ukis-csmask model, else the spectral tests); these rules only present them with their evidence.
"""

from __future__ import annotations

from typing import Final

from spex.engine.rules.context import RuleContext, RuleFunction, RuleResult, finish, need_bands
from spex.spectral.shadow import FILL_DEPTH, MIN_MATCH

__all__ = ["RULES", "REQUIRED_BANDS"]

_FIXED = "The cloud, haze and shadow masks have no adjustable threshold; strictness does not change them."


def _index(source: str, spectral: str, model: str) -> str:
    if source.startswith("quality flags"):
        return "QA"
    return model if source.startswith("ukis-csmask") else spectral


def _need(ctx: RuleContext, target: str) -> None:
    """Without quality flags, every source needs the visible bands."""
    if ctx.obstruction().source.startswith("none"):
        need_bands(ctx, target, ("blue", "green", "red"))


def _cloud(ctx: RuleContext, s: int) -> RuleResult:
    _need(ctx, "cloud")
    ob = ctx.obstruction()
    caveats = [_FIXED] if s else []
    thin = int(ob.haze.sum())
    if thin:
        caveats.append(f"{thin:,} px of it are thin cloud / haze (the ground still shows); ask for 'the haze' to "
                       "see that part alone.")
    return finish(ctx, "cloud", ob.cloud, _index(ob.source, "CLOUD", "CLOUD_MODEL"), float("nan"), ob.source, ">",
                  (), tuple(caveats))


def _haze(ctx: RuleContext, s: int) -> RuleResult:
    _need(ctx, "haze")
    ob = ctx.obstruction()
    caveats = [_FIXED] if s else []
    if ob.source == "spectral tests":
        caveats.append("Thin cloud and haze are found by the cloud model or by cirrus quality flags; neither is "
                       "available for this scene, so no haze can be told apart.")
    return finish(ctx, "haze", ob.haze, "HAZE", float("nan"), ob.source, ">",
                  (f"cloud by {ob.source}", "no opaque-cloud pixel (blue > 0.2, white, haze-optimised transform > 0) "
                   "within 60 m"), tuple(caveats))


def _shadow(ctx: RuleContext, s: int) -> RuleResult:
    _need(ctx, "cloud shadows")
    ob = ctx.obstruction()
    res = ob.shadow_match
    caveats: list[str] = [_FIXED] if s else []
    extra: tuple[str, ...] = ()
    index = "SHADOW" if res is not None else _index(ob.source, "SHADOW", "SHADOW_MODEL")
    if res is not None:   # the geometric match made the shadow: show its evidence
        if not ob.cloud.any():
            caveats.append("No cloud was detected, so no cloud shadow can be matched.")
        else:
            bands = "NIR and SWIR1" if ctx.has("nir", "swir1") else "NIR" if ctx.has("nir") else "visible mean"
            matched = (f"shadow cast towards {(res.azimuth_deg + 180) % 360:.0f} deg ({res.azimuth_source}); "
                       f"{res.matched} of {res.objects} cloud objects matched" if res.azimuth_deg is not None
                       else f"no dark area matched any of the {res.objects} cloud objects")
            extra = (f"dark basin: the flood fill of {bands} lifts it by > {FILL_DEPTH:g}",
                     f"on a cloud's footprint shifted away from the sun (>= {MIN_MATCH:.0%} overlap); {matched}")
    caveats.append("Clouds outside the scene can cast shadows into it; those are not detected.")
    return finish(ctx, "shadow", ob.shadow, index, float("nan"), ob.source, ">", extra, tuple(caveats))


#: Classes of this family (the package merges them into spex.engine.rules.RULES).
RULES: Final[dict[str, RuleFunction]] = {"cloud": _cloud, "haze": _haze, "shadow": _shadow}
#: Human-readable band requirement of each class (help texts).
REQUIRED_BANDS: Final[dict[str, str]] = {
    "cloud": "visible bands (+NIR/SWIR for the cloud model; cirrus/thermal refine the test); or QA flags",
    "haze": "blue, green, red, NIR (cloud model) or cirrus quality flags",
    "shadow": "visible bands (+NIR/SWIR1 where available); or QA flags",
}
