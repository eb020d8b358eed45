"""The structured extraction request and the parsed intent of one user turn.

Both are frozen values: a refinement builds a new request with
:func:`dataclasses.replace`, so undo/redo can keep old ones verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = ["TARGETS", "TARGET_LABELS", "REGIONS", "INTENT_KINDS", "PARTS", "PART_CLASSES", "IndexLimit",
           "ExtractionRequest", "Intent"]

#: Land-cover classes the engine can extract (canonical keys).
TARGETS: Final[tuple[str, ...]] = (
    "water", "wetland", "vegetation", "forest", "grass", "cropland", "built", "bare", "cloud", "snow", "shadow", "haze", "cleared", "fallow",
)

#: Plain words used in replies for each target.
TARGET_LABELS: Final[dict[str, str]] = {
    "water": "water bodies",
    "wetland": "wetlands",
    "vegetation": "vegetation",
    "forest": "dense forest / tree cover",
    "grass": "sparse vegetation / grassland",
    "cropland": "cropland",
    "built": "built-up / impervious surfaces",
    "bare": "bare soil / sand",
    "cloud": "clouds",
    "snow": "snow / ice",
    "shadow": "cloud shadows",
    "haze": "thin cloud / haze",
    "cleared": "cleared land / pasture / shrub",
    "fallow": "fallow / dry fields",
}

#: Image regions a request can be restricted to.
REGIONS: Final[tuple[str, ...]] = (
    "north", "south", "east", "west",
    "top-left", "top-right", "bottom-left", "bottom-right", "center",
)

#: Named parts of the water class, told apart by region shape, size and border contact (spex.engine.parts).
PARTS: Final[tuple[str, ...]] = ("sea", "rivers", "lakes")
#: Classes whose regions can be split into PARTS.
PART_CLASSES: Final[tuple[str, ...]] = ("water",)

INTENT_KINDS: Final[tuple[str, ...]] = (
    "extract", "refine", "undo", "redo", "reset", "question", "display", "help",
)


@dataclass(frozen=True)
class IndexLimit:
    """A threshold the user stated on a spectral index for one class: ``low < index < high``.

    When the index is the one the class rule thresholds (NDVI for vegetation, MNDWI for water ...)
    the user's bound replaces the scene's adaptive threshold; otherwise it is an extra test on the
    class's pixels. ``None`` = no bound on that side.
    """

    target: str
    index: str
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise ValueError(f"a limit on {self.index} needs a lower or an upper bound")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"{self.index} between {self.low:g} and {self.high:g} is empty")

    def describe(self) -> str:
        """E.g. 'NDVI > 0.60', 'NDVI 0.30–0.50', 'MNDWI < 0.10'."""
        if self.low is not None and self.high is not None:
            return f"{self.index} {self.low:.2f}–{self.high:.2f}"
        return f"{self.index} > {self.low:.2f}" if self.low is not None else f"{self.index} < {self.high:.2f}"


@dataclass(frozen=True)
class ExtractionRequest:
    """What to extract and how to filter it. All areas in square metres."""

    targets: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    min_area_m2: float | None = None
    max_area_m2: float | None = None
    keep_largest: int | None = None
    region: str | None = None
    strictness: int = 0
    fill_holes: bool = False
    smooth: bool = False
    drop_border: bool = False
    #: explicit index thresholds, per class ("vegetation with NDVI above 0.6")
    index_limits: tuple[IndexLimit, ...] = ()
    #: keep only these parts of the water class (PARTS: "sea", "rivers", "lakes"); () = all of it
    parts: tuple[str, ...] = ()
    #: remove these parts ("water but not the sea")
    drop_parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("an extraction request needs at least one target class")
        unknown = [t for t in (*self.targets, *self.exclude) if t not in TARGETS]
        if unknown:
            raise ValueError(f"unknown target class(es) {unknown}; supported: {', '.join(TARGETS)}")
        if self.region is not None and self.region not in REGIONS:
            raise ValueError(f"unknown region {self.region!r}; supported: {', '.join(REGIONS)}")
        if not -2 <= self.strictness <= 2:
            raise ValueError(f"strictness must be in -2..2, got {self.strictness}")
        for name in ("min_area_m2", "max_area_m2"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.keep_largest is not None and self.keep_largest < 1:
            raise ValueError(f"keep_largest must be >= 1, got {self.keep_largest}")
        for limit in self.index_limits:
            if not isinstance(limit, IndexLimit):
                raise ValueError(f"index_limits holds IndexLimit values, got {type(limit).__name__}")
            if limit.target not in self.targets:
                raise ValueError(f"the {limit.index} limit is for {limit.target}, which is not requested")
        bad = [p for p in (*self.parts, *self.drop_parts) if p not in PARTS]
        if bad:
            raise ValueError(f"unknown part(s) {bad}; supported: {', '.join(PARTS)}")
        if set(self.parts) & set(self.drop_parts):
            raise ValueError("a part cannot be both kept and removed")
        if (self.parts or self.drop_parts) and not set(self.targets) & set(PART_CLASSES):
            raise ValueError("sea, rivers and lakes are parts of the water class, which is not requested")

    def describe(self) -> str:
        """The request in plain words, e.g. 'water bodies larger than 2 ha, in the north'."""
        text = " + ".join(TARGET_LABELS[t] for t in self.targets)
        parts: list[str] = []
        if self.exclude:
            parts.append("excluding " + ", ".join(TARGET_LABELS[t] for t in self.exclude))
        if self.min_area_m2 is not None:
            parts.append(f"larger than {_area_words(self.min_area_m2)}")
        if self.max_area_m2 is not None:
            parts.append(f"smaller than {_area_words(self.max_area_m2)}")
        if self.keep_largest is not None:
            parts.append(f"the {self.keep_largest} largest" if self.keep_largest > 1 else "the largest only")
        if self.parts:
            parts.append("only the " + " and ".join(self.parts))
        if self.drop_parts:
            parts.append("not the " + " or ".join(self.drop_parts))
        for limit in self.index_limits:
            scope = f" ({TARGET_LABELS[limit.target]})" if len(self.targets) > 1 else ""
            parts.append(limit.describe() + scope)
        if self.region is not None:
            parts.append(f"in the {self.region}" + (" part" if self.region == "center" else ""))
        if self.strictness:
            parts.append({-2: "much looser", -1: "looser", 1: "stricter", 2: "much stricter"}[self.strictness]
                         + " threshold")
        if self.fill_holes:
            parts.append("holes filled")
        if self.smooth:
            parts.append("edges smoothed")
        if self.drop_border:
            parts.append("regions touching the border removed")
        return text + (", " + ", ".join(parts) if parts else "")


def _area_words(m2: float) -> str:
    if m2 >= 1e6:
        return f"{m2 / 1e6:g} km²"
    if m2 >= 1e4:
        return f"{m2 / 1e4:g} ha"
    return f"{m2:g} m²"


@dataclass(frozen=True)
class Intent:
    """What one user turn asks for.

    kind is one of INTENT_KINDS. ``request`` is the complete new request for
    "extract"/"refine"; ``question`` names a question about the current result
    ("largest", "smallest", "total_area", "count", "list", "where", "evidence"), or "shares": a
    scene-wide question answered by measuring every class (``classes``) on the scene;
    ``display`` is "false_colour" or "true_colour".
    """

    kind: str
    request: ExtractionRequest | None = None
    question: str | None = None
    display: str | None = None
    understood: tuple[str, ...] = field(default=())
    #: Sentences about filters kept or dropped when a follow-up changed the class (see spex.engine.merge).
    notes: tuple[str, ...] = field(default=())
    #: Classes a "shares" question compares ("how much is vegetation vs water?"); () = every class.
    classes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in INTENT_KINDS:
            raise ValueError(f"unknown intent kind {self.kind!r}; expected one of {INTENT_KINDS}")
        if self.kind in ("extract", "refine") and self.request is None:
            raise ValueError(f"intent {self.kind!r} needs a request")
