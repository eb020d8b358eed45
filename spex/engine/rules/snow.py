"""Snow and ice: NDSI > 0.4, NIR > 0.11, green > 0.1 (Hall et al. 1995 SNOMAP)."""

from __future__ import annotations

from typing import Final

from spex.engine.rules.context import (
    STRICTNESS_STEP, RuleContext, RuleFunction, RuleResult, compare, finish, need_bands,
)

__all__ = ["RULES", "REQUIRED_BANDS", "SNOW_MIN_NDSI", "SNOW_MIN_NIR", "SNOW_MIN_GREEN"]

#: Snow: NDSI > 0.4 and NIR > 0.11 (Hall et al. 1995, MODIS/Landsat SNOMAP); green > 0.1
#: additionally rejects dark water, which also has a high NDSI.
SNOW_MIN_NDSI: Final[float] = 0.4
SNOW_MIN_NIR: Final[float] = 0.11
SNOW_MIN_GREEN: Final[float] = 0.10

def _snow(ctx: RuleContext, s: int) -> RuleResult:
    need_bands(ctx, "snow", ("green", "swir1", "nir"))
    ndsi = ctx.feature("NDSI")
    thr = SNOW_MIN_NDSI + STRICTNESS_STEP * s
    mask = compare(ndsi, ">", thr) & compare(ctx.band("nir"), ">", SNOW_MIN_NIR) & \
        compare(ctx.band("green"), ">", SNOW_MIN_GREEN)
    return finish(ctx, "snow", mask, "NDSI", thr, "fixed (Hall et al. 1995 SNOMAP)", ">",
                  (f"NIR > {SNOW_MIN_NIR}", f"green > {SNOW_MIN_GREEN} (rejects water)"),
                  ("The snow test (bright visible, dark SWIR) is also met by breaking waves / foam and some "
                    "salt crusts; check snow found next to open water.",), also=("nir",))


#: Classes of this family (the package merges them into spex.engine.rules.RULES).
RULES: Final[dict[str, RuleFunction]] = {"snow": _snow}
#: Human-readable band requirement of each class (help texts).
REQUIRED_BANDS: Final[dict[str, str]] = {"snow": "green+NIR+SWIR1"}
