"""Instruction and answer templates for SPIE records.

Instructions never carry label information: they either name the requested class
("extract the water bodies") or list region attributes measured on an
imagery-derived (spectral engine) mask through :func:`spex.spie.spie_prompt`.
Answers are written from the attributes of the *target* regions, which may come
from labels; they always start with the class words so that a model conditioned
on its own answer knows which class the mask is about.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Final

__all__ = [
    "CLASS_WORDS", "PLAIN_TEMPLATES", "instruction_plain", "instruction_for_request",
    "answer_text", "class_words",
]

#: Ways users name each class; the first entry is the canonical phrase used in SPIE prompts.
CLASS_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "water": ("water bodies", "water", "open water", "lakes and rivers", "surface water"),
    "wetland": ("wetlands", "marshes", "swamps"),
    "vegetation": ("vegetation", "green vegetation", "vegetated areas", "plants"),
    "forest": ("forest", "tree cover", "woodland", "dense trees"),
    "grass": ("grassland", "meadows", "sparse vegetation", "grass"),
    "cropland": ("cropland", "fields", "farmland", "crops"),
    "built": ("built-up areas", "buildings", "urban areas", "impervious surfaces", "settlements"),
    "bare": ("bare soil", "bare ground", "exposed soil", "sand and bare land"),
    "cloud": ("clouds", "cloud cover"),
    "snow": ("snow", "snow and ice"),
    "shadow": ("cloud shadows", "shadows of clouds"),
    "haze": ("haze", "thin cloud"),
    "cleared": ("cleared land", "pasture and shrub"),
    "fallow": ("fallow land", "dry fields"),
}

PLAIN_TEMPLATES: Final[tuple[str, ...]] = (
    "Extract the {c}.",
    "extract the {c}",
    "Segment all {c} in this image.",
    "Please extract the {c} from this scene.",
    "Find every {c} region.",
    "Show me the {c}.",
    "Map the {c} in this image.",
    "Where are the {c}? Give me a mask.",
    "Outline the {c}.",
    "Can you segment the {c} here?",
    "Highlight all {c}.",
    "I need a mask of the {c}.",
)

_OPENERS: Final[tuple[str, ...]] = ("{C}: ", "{C} found: ", "Mask of the {c}: ")
_NONE: Final[tuple[str, ...]] = (
    "{C}: none. There are no {c} in this image.",
    "{C}: none. I could not find any {c} here.",
    "{C}: none. This image shows no {c}.",
)
_NUMBER_WORDS: Final[tuple[str, ...]] = (
    "no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
)


def class_words(target: str) -> str:
    """Canonical plain words for a target (the SPIE prompt's class name)."""
    if target not in CLASS_WORDS:
        raise ValueError(f"unknown class {target!r}; expected one of {sorted(CLASS_WORDS)}")
    return CLASS_WORDS[target][0]


def instruction_plain(target: str, rng: random.Random) -> str:
    """A plain-language request for one class, with varied wording and synonyms."""
    words = rng.choice(CLASS_WORDS[target])
    return rng.choice(PLAIN_TEMPLATES).format(c=words)


def instruction_for_request(targets: Sequence[str]) -> str:
    """The deterministic instruction used at inference for a (possibly multi-class) request."""
    words = " and ".join(class_words(t) for t in targets)
    return PLAIN_TEMPLATES[0].format(c=words)


def _count_words(n: int) -> str:
    return _NUMBER_WORDS[n] if n < len(_NUMBER_WORDS) else str(n)


def answer_text(target: str, regions: Sequence, fraction: float, rng: random.Random | None = None) -> str:
    """Describe the target regions in one or two short sentences.

    ``regions`` are :class:`spex.spie.RegionAttributes` sorted largest first;
    ``fraction`` is the share of the (labelled) chip covered by the class. With
    ``rng=None`` the first (deterministic) wording is used.
    """
    pick = (lambda seq: seq[0]) if rng is None else rng.choice
    c = class_words(target)
    cap = c[:1].upper() + c[1:]
    if not regions:
        return pick(_NONE).format(C=cap, c=c)
    n = len(regions)
    head = pick(_OPENERS).format(C=cap, c=c)
    plural = "region" if n == 1 else "regions"
    first = regions[0]
    text = (f"{head}{_count_words(n)} {plural} covering about {100.0 * fraction:.0f}% of the image. "
            f"The largest is {first.size_class} and lies in the {first.location}")
    text += ", touching the edge." if first.touches_border else "."
    others = sorted({r.location for r in regions[1:4]} - {first.location})
    if others:
        text += f" Others are in the {', '.join(others)}."
    return text
