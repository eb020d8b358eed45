"""Readers of the classes: parts of the water (sea, rivers, lakes), class words kept or negated,
and the contradictions that must be refused rather than dropped.
"""

from __future__ import annotations

import re

from spex.engine.parse_state import NEGATION, ParseState, fail
from spex.engine.phrases import find_parts
from spex.engine.request import TARGET_LABELS
from spex.engine.vocabulary import TARGET_SYNONYMS

__all__ = ["read_parts", "read_targets"]

def read_parts(state: ParseState) -> None:
    """Sea / rivers / lakes: a part word keeps that part of the water; after a negation it drops it."""
    found = find_parts(state.text)
    if not found.keep and not found.drop:
        return
    state.keep_parts, state.drop_parts = found.keep, found.drop
    if found.keep:
        state.targets.append("water")  # the part word names the water class too
        state.understood.append("only the " + " and ".join(found.keep) + " (by region shape, size and border contact)")
    if found.drop:
        state.understood.append("not the " + " or ".join(found.drop) + " (by region shape, size and border contact)")
    for a, b in sorted(found.spans, key=lambda s: -s[0]):
        state.text = state.text[:a] + " " * (b - a) + state.text[b:]


def read_targets(state: ParseState) -> None:
    """Find class words in order; a word after a negation ("without", "except") is excluded."""
    phrases = sorted(TARGET_SYNONYMS, key=len, reverse=True)
    alternation = "|".join(re.escape(p).replace(r"\ ", r"[\s-]+") for p in phrases)
    found: list[tuple[int, int, str]] = []
    text = state.text
    for m in re.finditer(rf"\b(?:{alternation})\b", text):
        key = re.sub(r"[\s-]+", " ", m.group(0))
        key = key if key in TARGET_SYNONYMS else m.group(0)
        found.append((m.start(), m.end(), TARGET_SYNONYMS.get(key, TARGET_SYNONYMS.get(key.replace(" ", "-"), ""))))
    previous_end, previous_negated = 0, False
    for start, end, target in found:
        if not target:
            continue
        gap = text[previous_end:start]
        negated = bool(NEGATION.search(gap)) or (
            previous_negated and re.fullmatch(r"[\s,]*(?:and|or|nor|,)?[\s,]*(?:the|any|all)?\s*", gap) is not None)
        bucket = state.negated if negated else state.targets
        if target not in bucket:
            bucket.append(target)
        previous_end, previous_negated = end, negated
    _parts_and_contradictions(state, text)
    for target in state.targets:
        state.understood.append(f"class: {TARGET_LABELS[target]}")
    for target in state.negated:
        state.understood.append(f"without: {TARGET_LABELS[target]}")


def _parts_and_contradictions(state: ParseState, text: str) -> None:
    """Refuse what cannot be honoured instead of dropping it.

    "water excluding water" would leave nothing, and so would "lakes but no water" (a part of an
    excluded class); the reason is said rather than returning something else.
    """
    both = [t for t in state.targets if t in state.negated]
    if state.keep_parts and "water" in state.negated:
        fail(f"'{' and '.join(state.keep_parts)}' are part of the water class, which you excluded, so nothing "
              "would be left; say e.g. 'water but not the sea' or 'only the lakes'.", state.understood)
    if both:
        label = TARGET_LABELS[both[0]]
        fail(f"'{label}' is both asked for and excluded, which would leave nothing. Say which class to keep "
              "and which to leave out, e.g. 'water excluding clouds'.", state.understood)
    subclass = {"forest": "vegetation", "grass": "vegetation", "cropland": "vegetation"}
    if state.targets and all(subclass.get(t) in state.negated for t in state.targets):
        fail(f"{' + '.join(TARGET_LABELS[t] for t in state.targets)} is part of "
              f"{TARGET_LABELS[subclass[state.targets[0]]]}, which you excluded, so nothing would be left.",
              state.understood)
