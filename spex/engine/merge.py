"""Carry-over of filters when a follow-up changes the class: a pure function with user-facing notes.

Why: after "water larger than 5 ha, the three largest", the turn "now the forest instead" is a new
question about another class. Size and count filters were chosen while looking at the old class's
regions, and the threshold step (stricter/looser) was about the old class's index, so keeping them
silently gives a result nobody asked for (3 forest patches instead of the forest). They are dropped
and the reply says so. Choices about *where* and *how* (image part, exclusions, hole filling,
smoothing, border regions) are about the scene and the presentation, so they are kept and said.
Adding a class ("also add bare soil") keeps everything: the user extends the same question.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Final, Literal

from spex.engine.request import TARGET_LABELS, ExtractionRequest, _area_words

__all__ = ["CLASS_BOUND_FIELDS", "FollowUp", "merge"]

#: Request fields that describe the old class's regions or threshold: dropped when the class is replaced.
CLASS_BOUND_FIELDS: Final[tuple[str, ...]] = ("min_area_m2", "max_area_m2", "keep_largest", "strictness")
#: Fields scoped to a class (index limits name theirs; parts belong to water): dropped with that class.
_SCOPED_FIELDS: Final[tuple[str, ...]] = ("index_limits", "parts", "drop_parts")
#: Fields kept across a class change (scene part, exclusions, outline options).
_KEPT_FIELDS: Final[tuple[str, ...]] = ("region", "exclude", "fill_holes", "smooth", "drop_border")


@dataclass(frozen=True)
class FollowUp:
    """What a follow-up turn says about the classes.

    mode: "replace" (e.g. "now the forest instead"), "add" ("also add bare soil") or "same" (no class named).
    explicit: request fields the follow-up itself sets; they are never reported as dropped or kept.
    """

    targets: tuple[str, ...] = ()
    mode: Literal["replace", "add", "same"] = "same"
    explicit: frozenset[str] = frozenset()


def merge(previous: ExtractionRequest, follow_up: FollowUp) -> tuple[ExtractionRequest, tuple[str, ...]]:
    """The request after ``follow_up``, and notes (plain sentences) on what was kept or dropped.

    Only the class change is handled here; the follow-up's own new values are applied by the caller
    afterwards (``dataclasses.replace``), which is why ``explicit`` fields are left untouched.
    """
    if follow_up.mode == "same" or not follow_up.targets:
        return previous, ()
    if follow_up.mode == "add":
        targets = tuple(dict.fromkeys((*previous.targets, *follow_up.targets)))
        request = replace(previous, targets=targets, exclude=tuple(x for x in previous.exclude if x not in targets))
        kept = _describe(previous, CLASS_BOUND_FIELDS + _KEPT_FIELDS + _SCOPED_FIELDS, follow_up.explicit)
        notes = (f"Kept for all classes: {', '.join(kept)}.",) if kept else ()
        return request, notes
    targets = tuple(dict.fromkeys(follow_up.targets))
    if set(targets) == set(previous.targets):
        return previous, ()
    changes: dict[str, object] = {"targets": targets,
                                  "exclude": tuple(x for x in previous.exclude if x not in targets)}
    dropped = _describe(previous, CLASS_BOUND_FIELDS, follow_up.explicit)
    for name in CLASS_BOUND_FIELDS:
        if name not in follow_up.explicit:
            changes[name] = 0 if name == "strictness" else None
    gone = [lim for lim in previous.index_limits if lim.target not in targets]
    dropped += [f"{lim.describe()} (for {TARGET_LABELS[lim.target]})" for lim in gone]
    changes["index_limits"] = tuple(lim for lim in previous.index_limits if lim.target in targets)
    if "water" not in targets and (previous.parts or previous.drop_parts):
        dropped += _describe(previous, ("parts", "drop_parts"), ())
        changes["parts"], changes["drop_parts"] = (), ()
    request = replace(previous, **changes)
    kept = _describe(request, _KEPT_FIELDS, follow_up.explicit)
    old = " + ".join(TARGET_LABELS[t] for t in previous.targets)
    notes: list[str] = []
    if dropped:
        notes.append(f"Dropped the filters that were about {old}: {', '.join(dropped)} "
                     "(say them again to apply them to the new class).")
    if kept:
        notes.append(f"Kept: {', '.join(kept)}.")
    return request, tuple(notes)


def _describe(request: ExtractionRequest, names: Collection[str], skip: Collection[str]) -> list[str]:
    """Plain words for the set (non-default) fields among ``names``."""
    words: list[str] = []
    for name in names:
        if name in skip:
            continue
        value = getattr(request, name)
        if name == "min_area_m2" and value is not None:
            words.append(f"larger than {_area_words(value)}")
        elif name == "max_area_m2" and value is not None:
            words.append(f"smaller than {_area_words(value)}")
        elif name == "keep_largest" and value is not None:
            words.append("the largest only" if value == 1 else f"the {value} largest")
        elif name == "strictness" and value:
            words.append({-2: "much looser", -1: "looser", 1: "stricter", 2: "much stricter"}[value] + " threshold")
        elif name == "region" and value is not None:
            words.append(f"in the {value}")
        elif name == "exclude" and value:
            words.append("excluding " + ", ".join(TARGET_LABELS[t] for t in value))
        elif name == "parts" and value:
            words.append("only the " + " and ".join(value))
        elif name == "drop_parts" and value:
            words.append("not the " + " or ".join(value))
        elif name == "index_limits" and value:
            words.extend(f"{lim.describe()} (for {TARGET_LABELS[lim.target]})" for lim in value)
        elif name in ("fill_holes", "smooth", "drop_border") and value:
            words.append({"fill_holes": "holes filled", "smooth": "edges smoothed",
                          "drop_border": "regions touching the border removed"}[name])
    return words
