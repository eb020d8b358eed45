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
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Final

from spex.engine.merge import FollowUp, merge
from spex.engine.phrases import INDEX_CLASS, PhraseError, find_index_limits, find_parts, is_shares_question
from spex.engine.request import TARGET_LABELS, ExtractionRequest, IndexLimit, Intent, _area_words
from spex.engine.vocabulary import (
    AREA_UNITS_M2, EXAMPLES, NUMBER_WORDS, REGION_PHRASES, SUPPORTED_SUMMARY, TARGET_SYNONYMS, TYPOS,
)
from spex.errors import InstructionError

__all__ = ["parse_instruction", "parse_question", "QUESTION_KINDS"]

logger = logging.getLogger(__name__)

#: Question keys understood by :func:`spex.engine.reply.answer_question`.
QUESTION_KINDS: tuple[str, ...] = ("largest", "smallest", "total_area", "count", "list", "where", "evidence")

_NUM = r"((?:\d+(?:\.\d+)?|\.\d+)(?:e[+-]?\d+)?)"
#: Larger than the Earth's surface (5.1e14 m²): no region can be this big, so the size is refused.
_ABSURD_AREA_M2: Final[float] = 5.1e14
#: More regions than any scene this tool opens can hold (400 Mpx / 3 px speckle limit is ~1.3e8;
#: asking for the N largest with N this large is a typo, not a filter).
_MAX_COUNT: Final[int] = 1_000_000
_REMOVAL = re.compile(r"\b(?:remove|drop|discard|delete|eliminate|get rid of|throw away|throw out|filter out|"
                      r"clean out|clear out|take out|cut out|exclude|ignore|skip|without|no)\b")
_UNIT_ALTS = "|".join(sorted((re.escape(u) for u in AREA_UNITS_M2), key=len, reverse=True))
_AREA_UNIT = rf"(?P<unit>{_UNIT_ALTS}|pixels|pixel|px)\b"
_MIN_WORDS = (r"(?:larger|bigger|greater|wider|more|over|above|exceeding|at least|no smaller|not smaller|"
              r"no less|not less|minimum(?: area| size)?(?: of)?|min(?:imum)?(?: area| size)?|>=|>)")
_MAX_WORDS = (r"(?:smaller|less|tinier|under|below|at most|up to|no larger|not larger|no bigger|"
              r"not bigger|no more|not more|maximum(?: area| size)?(?: of)?|max(?:imum)?(?: area| size)?|<=|<)")
_EXTRACT_VERBS = re.compile(
    r"\b(?:extract|find|map|detect|segment|show(?: me)?|highlight|delineate|give me|get|select|"
    r"identify|locate|outline|mask|classify|mark|display|where are|i want|i need)\b")
_ADDITIVE = re.compile(r"\b(?:also|add|too|as well|plus|in addition|additionally|together with)\b")
_REPLACE = re.compile(r"\b(?:instead|rather|switch to|change to|swap)\b")
_PRONOUN = re.compile(r"\b(?:them|those|these|ones|it|the result|the selection|the mask)\b")
_FILTER = re.compile(r"\b(?:only|just|keep|remove|drop|discard|filter|limit|restrict|now)\b")
_NEGATION = re.compile(r"\b(?:without|except(?: for)?|excluding|exclude|but not|not|no|minus|remove|"
                       r"drop|discard|ignore|mask out|leave out|omit|apart from|other than|instead of|rather than|"
                       r"get rid of)\b")


@dataclass
class _State:
    """Mutable scratch state of one parse (never escapes this module)."""

    text: str
    understood: list[str] = field(default_factory=list)
    updates: dict[str, object] = field(default_factory=dict)
    strict_delta: int = 0
    strict_reset: bool = False
    targets: list[str] = field(default_factory=list)
    negated: list[str] = field(default_factory=list)
    display: str | None = None
    clear_all: bool = False
    index_limits: list[tuple[str, float | None, float | None]] = field(default_factory=list)
    keep_parts: tuple[str, ...] = ()
    drop_parts: tuple[str, ...] = ()

    def consume(self, match: re.Match[str]) -> None:
        """Blank out a recognised span so that later rules cannot re-use it."""
        start, end = match.span()
        self.text = self.text[:start] + " " * (end - start) + self.text[end:]


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
        _fail("The instruction is empty.", [])
    state = _State(norm)

    simple = _dialogue_command(state)
    if simple is not None:
        return simple
    shares = _shares(state)
    if shares is not None:
        return shares
    question = _question(state, raw=text, current=current)
    if question is not None:
        return question

    _display(state)
    _index_limits(state)
    _clear_filters(state)
    _area_filters(state, pixel_area_m2)
    _count_filter(state)
    _strictness(state)
    _shape_options(state)
    _region(state)
    _parts(state)
    _targets(state)
    return _build_intent(state, current)


def parse_question(text: str) -> str | None:
    """Return the question key ("largest", "count", ...) asked by ``text``, or None."""
    state = _State(_normalise(text))
    return _question_key(state.text, force=True)


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
    t = re.sub(rf"\b(?:a|an)\s+(?={_AREA_UNIT})", "1 ", t)   # "a hectare"
    t = re.sub(r"[!;]+", " ", t)
    return re.sub(r"[ \t]+", " ", t).strip()


# ----------------------------------------------------------------------------- dialogue

def _dialogue_command(state: _State) -> Intent | None:
    t = state.text.strip(" .?")
    if re.fullmatch(r"(?:please )?(?:help|\?|what can you do|what can i (?:say|ask|do)|commands|"
                    r"how (?:does this|do i use this) work|how do i use (?:this|it)|usage|examples?)", t) \
            or re.match(r"^help\b", t):
        return Intent("help", understood=("help",))
    if re.fullmatch(r"(?:please )?(?:undo|go back|revert|step back|undo (?:that|the last (?:step|change))|"
                    r"back|previous|take that back)(?: please)?", t):
        return Intent("undo", understood=("undo the last step",))
    if re.fullmatch(r"(?:please )?(?:redo|redo (?:that|it)|forward|go forward)(?: please)?", t):
        return Intent("redo", understood=("redo the undone step",))
    if re.fullmatch(r"(?:please )?(?:start (?:over|again|from scratch)|reset|restart|clear|clear (?:all|everything)|"
                    r"reset (?:all|everything)|new (?:request|start)|forget (?:it|that|everything))(?: please)?", t):
        return Intent("reset", understood=("start over",))
    return None


def _question(state: _State, raw: str, current: ExtractionRequest | None) -> Intent | None:
    if _EXTRACT_VERBS.search(state.text) and not re.match(r"^(?:what|which|how|where|why)\b", state.text):
        return None
    key = _question_key(state.text, force=raw.strip().endswith("?"))
    if key is None:
        return None
    if key != "evidence":
        # "how many lakes are there?" before anything (or something else) was extracted
        # is an extraction of that class; the reply then answers with counts and areas.
        mentioned = {TARGET_SYNONYMS[p] for p in TARGET_SYNONYMS
                     if re.search(rf"\b{re.escape(p)}\b", state.text)}
        if mentioned and (current is None or not mentioned <= set(current.targets)):
            return None
    return Intent("question", question=key, understood=(f"question: {key.replace('_', ' ')}",))


def _question_key(t: str, *, force: bool) -> str | None:
    """Map question wording to a key; ``force`` accepts it without an interrogative word."""
    interrogative = bool(re.match(r"^(?:what|which|how|where|why|tell me|list|count|show me the list|give me the list|"
                                  r"is|are|can you (?:tell|explain|list)|explain|describe)\b", t))
    if not (interrogative or force):
        return None
    if re.search(r"\b(?:why|evidence|how did you|how were|how was|explain|reason|which bands?|which ind(?:ex|ices)|"
                 r"what ind(?:ex|ices)|what threshold|which threshold|justify|based on what)\b", t):
        return "evidence"
    if re.search(r"\bhow many\b|\bnumber of\b|\bcount\b", t):
        return "count"
    if re.search(r"\b(?:how much|total|in total|altogether|overall|what (?:percentage|fraction|share)|"
                 r"what percent|how big are they|how large are they|covered)\b", t):
        return "total_area"
    if re.search(r"\b(?:smallest|tiniest)\b", t):
        return "smallest"
    if re.search(r"\b(?:largest|biggest|main|main one|largest one|big one)\b", t):
        return "largest"
    if re.search(r"^where\b|\bwhere are\b|\bwhere is\b|\blocation|\blocated\b", t):
        return "where"
    if re.search(r"^list\b|\blist (?:them|all|the)\b|\btable\b|\beach (?:one|region)\b|\bdetails\b", t):
        return "list"
    return None


def _display(state: _State) -> None:
    m = re.search(r"\b(?:false[- ]?color(?: composite)?|color[- ]?infrared|cir|near[- ]?infrared composite|"
                  r"nir composite)\b", state.text)
    if m:
        state.display = "false_colour"
        state.understood.append("display: false colour (NIR-red-green)")
        state.consume(m)
        return
    m = re.search(r"\b(?:true[- ]?color|natural[- ]?color|real color|rgb view|normal color)\b", state.text)
    if m:
        state.display = "true_colour"
        state.understood.append("display: true colour")
        state.consume(m)


# ----------------------------------------------------------------------------- filters

def _clear_filters(state: _State) -> None:
    """'remove the size filter', 'anywhere', 'all of them', 'normal threshold', ..."""
    rules: tuple[tuple[str, dict[str, object], str], ...] = (
        (r"\b(?:remove|drop|clear|reset|undo|forget|no more|without|cancel|ignore)\s+(?:all\s+)?(?:the\s+)?"
         r"(?:filters|constraints|restrictions|options|modifiers)\b", {}, "remove all filters"),
        (r"\b(?:remove|drop|clear|reset|forget|cancel|ignore|no|without)\s+(?:the\s+|any\s+)?"
         r"(?:size|area|minimum size|maximum size|min size|max size|minimum area|maximum area)"
         r"(?:\s+(?:filter|limit|limits|threshold|constraint|restriction))?\b|\b(?:any|all) sizes?\b",
         {"min_area_m2": None, "max_area_m2": None}, "remove the size filter"),
        (r"\b(?:remove|drop|clear|reset|forget|cancel|ignore|no)\s+(?:the\s+)?"
         r"(?:region|location|place|area of the image|"
         r"position|quadrant|half)(?:\s+(?:filter|limit|restriction|constraint))?\b|\b(?:anywhere|everywhere|"
         r"whole (?:image|scene)|entire (?:image|scene)|full (?:image|scene))\b",
         {"region": None}, "remove the place restriction (whole image)"),
        (r"\b(?:remove|drop|clear|cancel|ignore)\s+(?:the\s+)?(?:count|number|largest|top[- ]?n)"
         r"(?:\s+(?:filter|limit|restriction))?\b|\b(?:all of them|keep (?:them )?all|all (?:the )?regions|"
         r"not (?:just|only) the (?:\d+ )?largest|every one)\b",
         {"keep_largest": None}, "keep all regions (no count limit)"),
        (r"\b(?:remove|drop|clear|cancel|ignore|no)\s+(?:the\s+)?exclusions?\b|\binclude (?:the )?"
         r"(?:excluded|masked) (?:ones|classes)\b",
         {"exclude": ()}, "remove the exclusion"),
        (r"\b(?:keep|include|allow)\s+(?:the\s+)?(?:ones|regions|those|them)?\s*(?:touching|on|at|cut by)\s+"
         r"(?:the\s+)?(?:image\s+)?(?:border|edge|edges|borders|boundary)\b",
         {"drop_border": False}, "keep regions touching the border"),
        (r"\b(?:don't|do not|no|without|stop)\s+(?:fill(?:ing)?|filled)\b|\bkeep the holes\b|\bunfill\b",
         {"fill_holes": False}, "do not fill holes"),
        (r"\b(?:don't|do not|no|without|stop)\s+(?:smooth(?:ing)?|smoothed)\b|\braw edges\b",
         {"smooth": False}, "do not smooth edges"),
    )
    for pattern, update, words in rules:
        m = re.search(pattern, state.text)
        if m:
            if not update:
                state.clear_all = True
            state.updates.update(update)
            state.understood.append(words)
            state.consume(m)
    m = re.search(r"\b(?:normal|default|original|standard|medium)\s+(?:threshold|strictness|sensitivity)\b|"
                  r"\breset (?:the )?(?:threshold|strictness)\b", state.text)
    if m:
        state.strict_reset = True
        state.understood.append("default threshold")
        state.consume(m)


def _to_m2(value: float, unit: str, pixel_area_m2: float | None, understood: list[str]) -> float:
    if unit in ("pixels", "pixel", "px"):
        if pixel_area_m2 is None or pixel_area_m2 <= 0:
            _fail(f"A size of {value:g} pixels needs the scene's pixel size; load a scene first or give the "
                  "size in m², ha, km² or acres (e.g. 'larger than 2 ha').", understood)
        m2 = value * pixel_area_m2
    else:
        m2 = value * AREA_UNITS_M2[unit]
    if not m2 <= _ABSURD_AREA_M2:  # also catches inf / nan from e.g. 1e308 ha
        _fail(f"A size of {value:g} {unit} is larger than the Earth's surface (about 51 billion ha), so no region "
              "could ever match it; give a size such as 'larger than 5 ha' or 'smaller than 2 km²'.", understood)
    return m2


def _area_filters(state: _State, pixel_area_m2: float | None) -> None:
    between = re.search(rf"\bbetween\s+{_NUM}\s*(?:(?P<u1>{_UNIT_ALTS}|pixels|px)\s+)?(?:and|to|-)\s+{_NUM}\s*"
                        + _AREA_UNIT, state.text)
    if between:
        unit = between.group("unit")
        lo = _to_m2(float(between.group(1)), between.group("u1") or unit, pixel_area_m2, state.understood)
        hi = _to_m2(float(between.group(3)), unit, pixel_area_m2, state.understood)
        lo, hi = min(lo, hi), max(lo, hi)
        state.updates["min_area_m2"], state.updates["max_area_m2"] = lo, hi
        state.understood.append(f"size between {_area_words(lo)} and {_area_words(hi)}")
        state.consume(between)
    negative = re.search(rf"(?:(?<![\w.])-|\bminus\s+|\bnegative\s+)\s*{_NUM}\s*{_AREA_UNIT}", state.text)
    if negative:
        _fail(f"A size cannot be negative ('{negative.group(0).strip()}'): every region has a positive area. "
              "Give a positive size, e.g. 'larger than 5 ha'.", state.understood)
    for kind, words in (("min", _MIN_WORDS), ("max", _MAX_WORDS)):
        pattern = (rf"(?<!\w){words}(?:\s+th[ae]n)?(?:\s+or equal to)?"
                   rf"(?:\s+(?:about|around|approximately|roughly))?\s*{_NUM}\s*{_AREA_UNIT}")
        for m in list(re.finditer(pattern, state.text)):
            value = _to_m2(float(m.group(1)), m.group("unit"), pixel_area_m2, state.understood)
            removal = _removal_before(state, m.start())
            if removal is not None:  # "remove the patches under 1 ha" removes the small ones: keeps larger
                kind = "max" if kind == "min" else "min"
                state.understood.append(f"'{removal.group(0)} ... {m.group(0).strip()}' removes those regions")
                state.consume(removal)
            key = f"{kind}_area_m2"
            state.updates[key] = value
            state.understood.append(("larger than " if kind == "min" else "smaller than ") + _area_words(value)
                                    + (f" ({m.group(1)} px)" if m.group("unit") in ("pixels", "pixel", "px") else ""))
            state.consume(m)
    # a bare size with no comparator, e.g. "lakes of 2 ha": ambiguous -> ask
    m = re.search(rf"{_NUM}\s*{_AREA_UNIT}", state.text)
    if m:
        _fail(f"I found the size '{m.group(0).strip()}' but not whether you want regions larger or smaller "
              "than it; say e.g. 'larger than 2 ha' or 'smaller than 2 ha'.", state.understood)
    vague = re.search(r"\b(?:small|smaller|tiny|little|large|big|bigger|larger)\s+(?:ones|regions|patches|bits|"
                      r"objects|areas|pieces|blobs)\b", state.text)
    if vague and "min_area_m2" not in state.updates and "max_area_m2" not in state.updates:
        _fail(f"'{vague.group(0)}' needs a size: say e.g. 'remove regions smaller than 1 ha' or "
              "'only keep the ones larger than 5000 m²'.", state.understood)
    mn, mx = state.updates.get("min_area_m2"), state.updates.get("max_area_m2")
    if isinstance(mn, float) and isinstance(mx, float) and mn > mx:
        _fail(f"The minimum size ({_area_words(mn)}) is larger than the maximum size ({_area_words(mx)}), "
              "so nothing could be kept.", state.understood)


def _removal_before(state: _State, start: int) -> re.Match[str] | None:
    """The removal verb ("remove", "get rid of", "without") governing a size phrase starting at ``start``.

    Only the words since the previous clause break count, and a later "but"/"except"/"keep"/"only"
    cancels it ("remove everything but the ones over 5 ha" keeps the large ones).
    """
    head = state.text[:start]
    cut = max(head.rfind(","), head.rfind(" and "), head.rfind(" then "), head.rfind(". "))
    clause_start = cut + 1 if cut >= 0 else 0
    last = None
    for m in _REMOVAL.finditer(head, clause_start):
        last = m
    if last is None or re.search(r"\b(?:but|except|other than|keep|only|just)\b", head[last.end():]):
        return None
    return last


def _index_limits(state: _State) -> None:
    """Explicit index thresholds ("NDVI above 0.6"): used as given (spex.engine.limits), never replaced."""
    try:
        phrases = find_index_limits(state.text)
    except PhraseError as exc:
        _fail(str(exc), state.understood)
    for ph in phrases:
        state.index_limits.append((ph.index, ph.low, ph.high))
        limit = IndexLimit("-", ph.index, ph.low, ph.high)
        state.understood.append(f"{limit.describe()} as you said (replaces the scene's adaptive {ph.index} threshold "
                                "where the class rule uses it, else an extra test)")
    for ph in sorted(phrases, key=lambda p: -p.span[0]):
        a, b = ph.span
        state.text = state.text[:a] + " " * (b - a) + state.text[b:]


def _parts(state: _State) -> None:
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


def _mentioned_classes(text: str) -> list[str]:
    phrases = sorted(TARGET_SYNONYMS, key=len, reverse=True)
    alternation = "|".join(re.escape(p).replace(r"\ ", r"[\s-]+") for p in phrases)
    out: list[str] = []
    for m in re.finditer(rf"\b(?:{alternation})\b", text):
        key = re.sub(r"[\s-]+", " ", m.group(0))
        target = TARGET_SYNONYMS.get(key) or TARGET_SYNONYMS.get(m.group(0))
        if target and target not in out:
            out.append(target)
    return out


def _shares(state: _State) -> Intent | None:
    """'which class covers most of the scene?', 'how much is vegetation vs water?': measured per class."""
    classes = _mentioned_classes(state.text)
    if not is_shares_question(state.text, len(classes)):
        return None
    words = "compare " + " vs ".join(TARGET_LABELS[c] for c in classes) if classes else "every class"
    return Intent("question", question="shares", classes=tuple(classes),
                  understood=(f"question: class shares of the scene ({words}), measured",))


def _count_filter(state: _State) -> None:
    if re.search(r"\b(?:\d+\s+)?(?:smallest|tiniest)\b", state.text):
        _fail("Keeping the N smallest regions is not supported; use a size limit instead "
              "(e.g. 'smaller than 1 ha').", state.understood)
    patterns = (
        rf"\b(?:the\s+)?(?P<n>\d+)\s+(?:largest|biggest|main)\b",
        rf"\b(?:the\s+)?(?:largest|biggest)\s+(?P<n>\d+)\b(?!\s*(?:{_UNIT_ALTS}|pixels|px)\b)",
        rf"\btop[- ]?(?P<n>\d+)\b",
        r"\b(?:the\s+)?(?:largest|biggest|main)(?:\s+(?:one|region|area|patch|body))?\b",
    )
    for pattern in patterns:
        m = re.search(pattern, state.text)
        if m:
            n = int(m.groupdict().get("n") or 1)
            if m.start() > 0 and re.match(r"[-.\d]", state.text[m.start() - 1]) or re.search(
                    rf"(?:-|minus\s+){m.groupdict().get('n') or 'x'}\s+(?:largest|biggest|main)", state.text):
                _fail(f"The number of regions to keep must be a whole number of at least 1; "
                      f"'{state.text[max(0, m.start() - 3):m.end()].strip()}' is not.", state.understood)
            if n > _MAX_COUNT:
                _fail(f"Keeping the {n:,} largest regions is not a real limit (no scene holds that many regions); "
                      f"give a number up to {_MAX_COUNT:,}, or say 'all of them' to keep every region.",
                      state.understood)
            if n < 1:
                _fail("The number of regions to keep must be at least 1.", state.understood)
            state.updates["keep_largest"] = n
            state.understood.append("keep the largest region only" if n == 1 else f"keep the {n} largest regions")
            state.consume(m)
            return


def _strictness(state: _State) -> None:
    stricter = (r"\b(?:much|a lot|far|way|very much)\s+(?:stricter|more (?:strict|conservative|selective))\b|"
                r"\bvery (?:strict|conservative)\b")
    looser = (r"\b(?:much|a lot|far|way)\s+(?:looser|more (?:permissive|inclusive|liberal|lenient|generous))\b|"
              r"\bvery (?:loose|permissive|lenient)\b")
    for pattern, delta, words in (
            (stricter, 2, "much stricter threshold"),
            (looser, -2, "much looser threshold"),
            (r"\b(?:stricter|strict|more strict|more conservative|conservative|more selective|tighter|tighten|"
             r"less permissive|less inclusive|fewer false (?:positives|alarms)|higher threshold|raise the threshold|"
             r"increase the threshold|be more careful|fewer|show less)\b", 1, "stricter threshold"),
            (r"\b(?:looser|loose|less strict|more permissive|permissive|more inclusive|more liberal|lenient|relax|"
             r"relaxed|lower threshold|lower the threshold|decrease the threshold|reduce the threshold|"
             r"include more|catch more|more sensitive|less conservative|more of (?:it|them))\b",
             -1, "looser threshold"),
    ):
        m = re.search(pattern, state.text)
        if m:
            state.strict_delta = delta
            state.understood.append(words)
            state.consume(m)
            return


#: Shape switches: (pattern, ExtractionRequest field set to True, words echoed back to the user).
_SHAPE_OPTIONS: Final[tuple[tuple[str, str, str], ...]] = (
    (r"\b(?:fill(?:ing)?(?: in)?(?: the| all| any)?(?: small)? (?:holes|gaps|hole|gap)|"
     r"fill (?:them|it) in|"
     r"fill holes|no holes|close (?:the )?holes|without holes|solid)\b",
     "fill_holes", "fill holes"),
    (r"\b(?:smooth(?:en)?(?: out)?(?: the| its| their)?(?: edges| outlines| boundaries| borders| shapes)?|"
     r"smoother|clean(?: up)?(?: the)? edges|tidy(?: up)?(?: the)? edges|less (?:jagged|noisy|ragged)|"
     r"remove (?:the )?(?:noise|speckles?))\b",
     "smooth", "smooth edges"),
    (r"\b(?:remove|drop|discard|exclude|without|ignore|skip|no|not)\b[\w\s]{0,40}?\b(?:touching|"
     r"on|at|cut by|cut off by|crossing|intersecting|along|near)\s+(?:the\s+)?(?:image\s+|scene\s+)?"
     r"(?:border|edge|edges|borders|boundary|frame)s?\b|\b(?:away from|not touching|inside|"
     r"fully inside|within)\s+(?:the\s+)?(?:image\s+|scene\s+)?"
     r"(?:border|edge|edges|borders|frame|image)\b|"
     r"\b(?:complete|whole|entire) (?:ones|regions|objects) only\b|"
     r"\b(?:remove|drop|discard|exclude|without|no|ignore|skip|get rid of)\s+(?:the\s+|all\s+)?"
     r"(?:border|edge)[- ]?(?:ones|regions|objects|touching ones|patches)\b",
     "drop_border", "drop regions touching the image border"),
)


def _shape_options(state: _State) -> None:
    """Switches that change the outlines: fill holes, smooth edges, drop border regions."""
    for pattern, field, words in _SHAPE_OPTIONS:
        m = re.search(pattern, state.text)
        if m:
            state.updates[field] = True
            state.understood.append(words)
            state.consume(m)


def _region(state: _State) -> None:
    """Image part; plain top/bottom/left/right/upper/lower/middle need a context word."""
    before = r"\b(?:in|on|at|from|to|within|inside|across)\s+(?:the\s+)?(?:image'?s?\s+|scene'?s?\s+)?"
    after = (r"(?:\s+(?:half|part|side|quarter|corner|area|portion|third|section|region|"
             r"of the (?:image|scene|map)))")
    weak = re.compile(r"(?:top|bottom|upper|lower|left|right|middle)")
    for phrase, region in REGION_PHRASES:
        for pattern in (rf"{before}(?:{phrase})\b{after}?", rf"\b(?:{phrase}){after}", rf"\b(?:{phrase})\b"):
            for m in re.finditer(pattern, state.text):
                core = re.sub(before, "", m.group(0)).strip()
                if pattern.endswith(r")\b") and weak.fullmatch(core):
                    continue  # a lone "top"/"left" is not a place
                state.updates["region"] = region
                state.understood.append(f"only regions whose centre lies in the {region}"
                                        + (" part" if region == "center" else ""))
                state.consume(m)
                return


def _targets(state: _State) -> None:
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
        negated = bool(_NEGATION.search(gap)) or (
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


def _parts_and_contradictions(state: _State, text: str) -> None:
    """Refuse what cannot be honoured instead of dropping it.

    "water excluding water" would leave nothing, and so would "lakes but no water" (a part of an
    excluded class); the reason is said rather than returning something else.
    """
    both = [t for t in state.targets if t in state.negated]
    if state.keep_parts and "water" in state.negated:
        _fail(f"'{' and '.join(state.keep_parts)}' are part of the water class, which you excluded, so nothing "
              "would be left; say e.g. 'water but not the sea' or 'only the lakes'.", state.understood)
    if both:
        label = TARGET_LABELS[both[0]]
        _fail(f"'{label}' is both asked for and excluded, which would leave nothing. Say which class to keep "
              "and which to leave out, e.g. 'water excluding clouds'.", state.understood)
    subclass = {"forest": "vegetation", "grass": "vegetation", "cropland": "vegetation"}
    if state.targets and all(subclass.get(t) in state.negated for t in state.targets):
        _fail(f"{' + '.join(TARGET_LABELS[t] for t in state.targets)} is part of "
              f"{TARGET_LABELS[subclass[state.targets[0]]]}, which you excluded, so nothing would be left.",
              state.understood)


# ----------------------------------------------------------------------------- assembly

def _build_intent(state: _State, current: ExtractionRequest | None) -> Intent:
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
        _fail("I could not find a class or an option in that instruction.", state.understood)

    additive = bool(_ADDITIVE.search(t))
    refine_cue = additive or bool(_REPLACE.search(t)) or bool(_PRONOUN.search(t)) or (
        bool(_FILTER.search(t)) and not _EXTRACT_VERBS.search(t))
    is_refine = current is not None and (not state.targets or refine_cue)

    if not is_refine:
        if not state.targets:
            example = "'extract the water bodies' or 'show the forest larger than 5 ha'"
            if state.negated and not has_modifiers:
                _fail("I only found classes to leave out; say which class to extract, e.g. "
                      "'water without clouds'.", state.understood)
            _fail(f"That looks like a refinement, but nothing has been extracted yet; ask for a class first, "
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
            _fail(f"'{TARGET_LABELS[neg]}' is the only class requested, so it cannot be removed; "
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


def _apply(base: ExtractionRequest, state: _State, *, targets: tuple[str, ...], is_refine: bool,
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


def _constraint_updates(base: ExtractionRequest, state: _State, targets: tuple[str, ...]) -> dict[str, object]:
    """Index limits and water parts of the new request: this turn's values over the base's."""
    scope = [t for t in state.targets if t in targets] or list(targets)
    limits = [lim for lim in base.index_limits if lim.target in targets]
    for index, low, high in state.index_limits:
        for target in scope:
            limits = [lim for lim in limits if (lim.target, lim.index) != (target, index)]
            limits.append(IndexLimit(target, index, low, high))
    parts, drop = base.parts, base.drop_parts
    if state.keep_parts:
        parts = state.keep_parts
        drop = tuple(d for d in state.drop_parts if d not in parts)
    elif state.drop_parts:
        drop = tuple(dict.fromkeys((*drop, *state.drop_parts)))
        parts = tuple(p for p in parts if p not in drop)
        if not parts and base.parts:
            _fail(f"Removing the {' and '.join(state.drop_parts)} leaves none of the parts you kept "
                  f"({' and '.join(base.parts)}); say which part to keep.", state.understood)
    if "water" not in targets:
        parts, drop = (), ()
    return {"index_limits": tuple(limits), "parts": parts, "drop_parts": drop}


def _fail(reason: str, understood: list[str]) -> None:
    """Raise an InstructionError that says what was understood and what is supported."""
    lines = [reason]
    lines.append("Understood: " + ("; ".join(understood) if understood else "nothing"))
    lines.append("I can handle: " + " | ".join(SUPPORTED_SUMMARY))
    lines.append("Examples: " + "; ".join(f"'{e}'" for e in EXAMPLES[:6]))
    raise InstructionError("\n".join(lines), understood, list(SUPPORTED_SUMMARY))
