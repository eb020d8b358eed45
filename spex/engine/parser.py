"""Rule-based English instruction parser: one user turn -> :class:`Intent`.

Why rules and not a language model: the grammar of extraction requests is small
(a class, a few filters, dialogue commands), the result must be exact and
explainable, and it must run instantly on a CPU. Digits and units are first-class
("larger than 2.5 ha", "at least 100 pixels") — unlike LISA's demo, which rejects
any prompt containing a digit.

The parser works by *consuming* recognised phrases from the normalised text in a
fixed order (dialogue commands, questions, area filters, counts, strictness, shape
options, regions, classes), so that one phrase never triggers two meanings
("top 3" is a count, not the top of the image; "lower the threshold" is not the
south). Whatever was recognised is reported in ``Intent.understood``.

Refinements ("only the ones larger than 5 ha", "also add wetlands", "now the
vegetation instead") build on ``current`` with :func:`dataclasses.replace`.

Modules: this one holds the order of the readers, normalisation and the assembly of the
request; the readers live in :mod:`spex.engine.parse_filters` (sizes, index thresholds, counts,
strictness, shape, place), :mod:`spex.engine.parse_dialogue` (commands, questions, shares,
display) and :mod:`spex.engine.parse_classes` (classes, water parts, contradictions), sharing
:class:`spex.engine.parse_state.ParseState`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from spex.engine.merge import FollowUp, merge
from spex.engine.parse_classes import read_parts, read_targets
from spex.engine.parse_dialogue import question_key, read_dialogue_command, read_display, read_question, read_shares
from spex.engine.parse_filters import (
    AREA_UNIT, read_area_filters, read_clear_filters, read_count_filter, read_index_limits, read_region,
    read_shape_options, read_strictness,
)
from spex.engine.parse_state import EXTRACT_VERBS, ParseState, fail
from spex.engine.phrases import INDEX_CLASS
from spex.engine.request import TARGET_LABELS, ExtractionRequest, IndexLimit, Intent
from spex.engine.vocabulary import NUMBER_WORDS, SUPPORTED_SUMMARY, TYPOS
from spex.errors import InstructionError

__all__ = ["parse_instruction", "parse_question", "QUESTION_KINDS"]

logger = logging.getLogger(__name__)

#: Question keys understood by :func:`spex.engine.reply.answer_question`.
QUESTION_KINDS: tuple[str, ...] = ("largest", "smallest", "total_area", "count", "list", "where", "evidence")

#: Subclasses and the class whose index describes them (forest/grass/cropland are vegetation).
_FAMILY = {"forest": "vegetation", "grass": "vegetation", "cropland": "vegetation", "wetland": "water"}
_ADDITIVE = re.compile(r"\b(?:also|add|too|as well|plus|in addition|additionally|together with)\b")
_REPLACE = re.compile(r"\b(?:instead|rather|switch to|change to|swap)\b")
_PRONOUN = re.compile(r"\b(?:them|those|these|ones|it|the result|the selection|the mask)\b")
_FILTER = re.compile(r"\b(?:only|just|keep|remove|drop|discard|filter|limit|restrict|now)\b")


def parse_instruction(text: str, current: ExtractionRequest | None = None, *,
                      pixel_area_m2: float | None = None) -> Intent:
    """Parse one plain-English turn into an :class:`Intent`.

    Args:
        text: the user's words, e.g. "only keep the lakes larger than 2 ha".
        current: the request currently shown; refinements build on it.
        pixel_area_m2: area of one pixel of the current scene, needed only to
            convert sizes given in pixels into square metres.

    Returns:
        The intent; for "extract"/"refine" it carries the complete new request.

    Raises:
        InstructionError: nothing usable was recognised, a refinement came before
            any class was asked for, or a size was given in pixels without a scene.
            The message lists what was understood and what is supported.
    """
    if not isinstance(text, str):
        raise TypeError(f"instruction must be a str, got {type(text).__name__}")
    norm = _normalise(text)
    if not norm.strip():
        fail("The instruction is empty.", [])
    state = ParseState(norm)

    simple = read_dialogue_command(state)
    if simple is not None:
        return simple
    shares = read_shares(state)
    if shares is not None:
        return shares
    question = read_question(state, raw=text, current=current)
    if question is not None:
        return question

    read_display(state)
    read_index_limits(state)
    read_clear_filters(state)
    read_area_filters(state, pixel_area_m2)
    read_count_filter(state)
    read_strictness(state)
    read_shape_options(state)
    read_region(state)
    read_parts(state)
    read_targets(state)
    return _build_intent(state, current)


def parse_question(text: str) -> str | None:
    """Return the question key ("largest", "count", ...) asked by ``text``, or None."""
    state = ParseState(_normalise(text))
    return question_key(state.text, force=True)


# ----------------------------------------------------------------------------- normalisation

def _normalise(text: str) -> str:
    """Lower-case, unify units and number words, keep digits and decimal points."""
    t = text.lower().replace("\u00b2", "2").replace("^2", "2").replace("\u2019", "'")
    t = re.sub(r"[a-z]+", lambda m: TYPOS.get(m.group(0), m.group(0)), t)
    t = t.replace("colour", "color").replace("centre", "center")
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)          # 5,000 -> 5000
    t = re.sub(r"(\d)\s*k\b(?!m)", r"\g<1>000", t)      # 5k -> 5000
    t = re.sub(r"\b(?:sq\.?|square)\s*(km|kilomet(?:er|re)s?)\b", "km2", t)
    t = re.sub(r"\b(?:sq\.?|square)\s*(m|met(?:er|re)s?)\b", "m2", t)
    t = re.sub(r"\bkm\s*2\b", "km2", t)
    t = re.sub(r"\bm\s*2\b", "m2", t)
    t = re.sub(r"(\d)(km2|m2|ha|px|acres?)\b", r"\1 \2", t)
    for word, value in sorted(NUMBER_WORDS.items(), key=lambda kv: -len(kv[0])):
        t = re.sub(rf"\b{word}\b(?!-)", str(value), t)
    t = re.sub(rf"\b(?:a|an)\s+(?={AREA_UNIT})", "1 ", t)   # "a hectare"
    t = re.sub(r"[!;]+", " ", t)
    return re.sub(r"[ \t]+", " ", t).strip()


# ----------------------------------------------------------------------------- assembly

def _build_intent(state: ParseState, current: ExtractionRequest | None) -> Intent:
    t = state.text
    if current is None and not state.targets:
        if state.index_limits:  # "MNDWI > 0.3": the class whose own index it is
            target = INDEX_CLASS[state.index_limits[0][0]]
            state.targets.append(target)
            state.understood.append(f"class: {TARGET_LABELS[target]} ({state.index_limits[0][0]} is its index)")
        elif state.drop_parts:  # "without the sea"
            state.targets.append("water")
            state.understood.append(f"class: {TARGET_LABELS['water']}")
    has_modifiers = (bool(state.updates) or state.strict_delta != 0 or state.strict_reset or state.clear_all
                     or bool(state.index_limits) or bool(state.keep_parts) or bool(state.drop_parts))
    if not state.targets and not state.negated and not has_modifiers:
        if state.display is not None:
            return Intent("display", display=state.display, understood=tuple(state.understood))
        fail("I could not find a class or an option in that instruction.", state.understood)

    additive = bool(_ADDITIVE.search(t))
    refine_cue = additive or bool(_REPLACE.search(t)) or bool(_PRONOUN.search(t)) or (
        bool(_FILTER.search(t)) and not EXTRACT_VERBS.search(t))
    is_refine = current is not None and (not state.targets or refine_cue)

    if not is_refine:
        if not state.targets:
            example = "'extract the water bodies' or 'show the forest larger than 5 ha'"
            if state.negated and not has_modifiers:
                fail("I only found classes to leave out; say which class to extract, e.g. "
                      "'water without clouds'.", state.understood)
            fail(f"That looks like a refinement, but nothing has been extracted yet; ask for a class first, "
                  f"e.g. {example}.", state.understood)
        base = ExtractionRequest(targets=tuple(state.targets))
        request = _apply(base, state, targets=tuple(state.targets), is_refine=False)
        return Intent("extract", request=request, display=state.display, understood=tuple(state.understood))

    assert current is not None  # for type checkers; guarded by is_refine
    notes: tuple[str, ...] = ()
    previous_targets = current.targets
    if state.targets:
        explicit = set(state.updates)
        if state.strict_delta or state.strict_reset:
            explicit.add("strictness")
        mode = "add" if additive else "replace"
        current, notes = merge(current, FollowUp(tuple(state.targets), mode, frozenset(explicit)))
        state.understood.extend(notes)
    targets = list(current.targets)
    exclude = list(current.exclude)
    for neg in state.negated:
        if neg in previous_targets and neg not in targets:
            continue  # "forest instead of water": already replaced
        if neg in targets and len(targets) > 1:
            targets.remove(neg)
            state.understood.append(f"dropped class: {TARGET_LABELS[neg]}")
        elif neg in targets:
            fail(f"'{TARGET_LABELS[neg]}' is the only class requested, so it cannot be removed; "
                  "ask for another class instead (e.g. 'now the forest instead').", state.understood)
        elif neg not in exclude:
            exclude.append(neg)
    exclude = [x for x in exclude if x not in targets]
    base = current
    if state.clear_all:
        base = ExtractionRequest(targets=current.targets)
        exclude = []
    request = _apply(base, state, targets=tuple(targets), is_refine=True, exclude=tuple(exclude))
    return Intent("refine", request=request, display=state.display, understood=tuple(state.understood),
                  notes=notes)


def _apply(base: ExtractionRequest, state: ParseState, *, targets: tuple[str, ...], is_refine: bool,
           exclude: tuple[str, ...] | None = None) -> ExtractionRequest:
    if exclude is None:
        exclude = tuple(x for x in state.negated if x not in targets)
    strictness = 0 if state.strict_reset else base.strictness
    strictness = max(-2, min(2, strictness + state.strict_delta))
    if state.strict_delta and strictness == base.strictness and is_refine:
        state.understood.append("threshold already at its " + ("strictest" if state.strict_delta > 0 else "loosest")
                                + " setting")
    updates = {k: v for k, v in state.updates.items() if k != "exclude"}
    if "exclude" in state.updates:
        exclude = tuple(x for x in state.negated if x not in targets)
    updates.update(_constraint_updates(base, state, targets))
    try:
        return replace(base, targets=targets, exclude=exclude, strictness=strictness, **updates)
    except ValueError as exc:  # request validation (e.g. min > max after merging)
        raise InstructionError(f"That combination is not possible: {exc}.", state.understood,
                               list(SUPPORTED_SUMMARY)) from exc


def _constraint_updates(base: ExtractionRequest, state: ParseState, targets: tuple[str, ...]) -> dict[str, object]:
    """Index limits and water parts of the new request: this turn's values over the base's."""
    scope = [t for t in state.targets if t in targets] or list(targets)
    limits = [] if "index_limits" in state.updates else [lim for lim in base.index_limits if lim.target in targets]
    for index, low, high in state.index_limits:
        # "water and vegetation with NDVI above 0.3": the bound belongs to the class(es) NDVI describes
        own = [t for t in scope if INDEX_CLASS[index] in (t, _FAMILY.get(t))]
        for target in own or scope:
            limits = [lim for lim in limits if (lim.target, lim.index) != (target, index)]
            limits.append(IndexLimit(target, index, low, high))
    parts, drop = ((), ()) if "parts" in state.updates else (base.parts, base.drop_parts)
    if state.keep_parts:
        parts = state.keep_parts
        drop = tuple(d for d in state.drop_parts if d not in parts)
    elif state.drop_parts:
        drop = tuple(dict.fromkeys((*drop, *state.drop_parts)))
        parts = tuple(p for p in parts if p not in drop)
        if not parts and base.parts:
            fail(f"Removing the {' and '.join(state.drop_parts)} leaves none of the parts you kept "
                  f"({' and '.join(base.parts)}); say which part to keep.", state.understood)
    if "water" not in targets:
        parts, drop = (), ()
    return {"index_limits": tuple(limits), "parts": parts, "drop_parts": drop}


