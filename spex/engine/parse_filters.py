"""Readers of the filter phrases: clear filters, sizes, explicit index thresholds, counts, strictness,
shape options and image parts. Each consumes what it recognised from the :class:`ParseState`.
"""

from __future__ import annotations

import re
from typing import Final

from spex.engine.parse_state import ParseState, fail
from spex.engine.phrases import PhraseError, find_index_limits
from spex.engine.request import IndexLimit, _area_words
from spex.engine.vocabulary import AREA_UNITS_M2, REGION_PHRASES

__all__ = ["AREA_UNIT", "read_area_filters", "read_clear_filters", "read_count_filter", "read_index_limits",
           "read_region", "read_shape_options", "read_strictness"]

_NUM = r"((?:\d+(?:\.\d+)?|\.\d+)(?:e[+-]?\d+)?)"

#: Larger than the Earth's surface (5.1e14 m²): no region can be this big, so the size is refused.
_ABSURD_AREA_M2: Final[float] = 5.1e14

#: More regions than any scene this tool opens can hold (400 Mpx / 3 px speckle limit is ~1.3e8;
#: asking for the N largest with N this large is a typo, not a filter).
_MAX_COUNT: Final[int] = 1_000_000

_REMOVAL = re.compile(r"\b(?:remove|drop|discard|delete|eliminate|get rid of|throw away|throw out|filter out|"
                      r"clean out|clear out|take out|cut out|exclude|ignore|skip|without|no)\b")

_UNIT_ALTS = "|".join(sorted((re.escape(u) for u in AREA_UNITS_M2), key=len, reverse=True))

AREA_UNIT = rf"(?P<unit>{_UNIT_ALTS}|pixels|pixel|px)\b"

_MIN_WORDS = (r"(?:larger|bigger|greater|wider|more|over|above|exceeding|at least|no smaller|not smaller|"
              r"no less|not less|minimum(?: area| size)?(?: of)?|min(?:imum)?(?: area| size)?|>=|>)")

_MAX_WORDS = (r"(?:smaller|less|tinier|under|below|at most|up to|no larger|not larger|no bigger|"
              r"not bigger|no more|not more|maximum(?: area| size)?(?: of)?|max(?:imum)?(?: area| size)?|<=|<)")


def read_clear_filters(state: ParseState) -> None:
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
        (r"\b(?:remove|drop|clear|reset|forget|cancel|ignore|no|without)\s+(?:the\s+|my\s+|any\s+)?"
         r"(?:ndvi|ndwi|mndwi|ndbi|bsi|ndsi|ndmi|evi|savi|awei\w*|index|own|user|explicit)\s+"
         r"(?:thresholds?|limits?|values?|constraints?|cut-?offs?)\b|\b(?:back to |use )?(?:the\s+)?(?:scene'?s\s+)?"
         r"adaptive thresholds?\b",
         {"index_limits": ()}, "remove your index thresholds (the scene's adaptive thresholds again)"),
        (r"\b(?:include|with|keep|add back|bring back)\s+(?:the\s+)?(?:sea|ocean)(?:\s+again)?\b|"
         r"\b(?:all|every|any)\s+parts?\b|\b(?:remove|drop|clear|no)\s+(?:the\s+)?part\s+(?:filter|restriction)\b",
         {"parts": (), "drop_parts": ()}, "all parts of the water again"),
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
            fail(f"A size of {value:g} pixels needs the scene's pixel size; load a scene first or give the "
                  "size in m², ha, km² or acres (e.g. 'larger than 2 ha').", understood)
        m2 = value * pixel_area_m2
    else:
        m2 = value * AREA_UNITS_M2[unit]
    if not m2 <= _ABSURD_AREA_M2:  # also catches inf / nan from e.g. 1e308 ha
        fail(f"A size of {value:g} {unit} is larger than the Earth's surface (about 51 billion ha), so no region "
              "could ever match it; give a size such as 'larger than 5 ha' or 'smaller than 2 km²'.", understood)
    return m2


def read_area_filters(state: ParseState, pixel_area_m2: float | None) -> None:
    between = re.search(rf"\bbetween\s+{_NUM}\s*(?:(?P<u1>{_UNIT_ALTS}|pixels|px)\s+)?(?:and|to|-)\s+{_NUM}\s*"
                        + AREA_UNIT, state.text)
    if between:
        unit = between.group("unit")
        lo = _to_m2(float(between.group(1)), between.group("u1") or unit, pixel_area_m2, state.understood)
        hi = _to_m2(float(between.group(3)), unit, pixel_area_m2, state.understood)
        lo, hi = min(lo, hi), max(lo, hi)
        state.updates["min_area_m2"], state.updates["max_area_m2"] = lo, hi
        state.understood.append(f"size between {_area_words(lo)} and {_area_words(hi)}")
        state.consume(between)
    negative = re.search(rf"(?:(?<![\w.])-|\bminus\s+|\bnegative\s+)\s*{_NUM}\s*{AREA_UNIT}", state.text)
    if negative:
        fail(f"A size cannot be negative ('{negative.group(0).strip()}'): every region has a positive area. "
              "Give a positive size, e.g. 'larger than 5 ha'.", state.understood)
    for kind, words in (("min", _MIN_WORDS), ("max", _MAX_WORDS)):
        pattern = (rf"(?<!\w){words}(?:\s+th[ae]n)?(?:\s+or equal to)?"
                   rf"(?:\s+(?:about|around|approximately|roughly))?\s*{_NUM}\s*{AREA_UNIT}")
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
    m = re.search(rf"{_NUM}\s*{AREA_UNIT}", state.text)
    if m:
        fail(f"I found the size '{m.group(0).strip()}' but not whether you want regions larger or smaller "
              "than it; say e.g. 'larger than 2 ha' or 'smaller than 2 ha'.", state.understood)
    vague = re.search(r"\b(?:small|smaller|tiny|little|large|big|bigger|larger)\s+(?:ones|regions|patches|bits|"
                      r"objects|areas|pieces|blobs)\b", state.text)
    if vague and "min_area_m2" not in state.updates and "max_area_m2" not in state.updates:
        fail(f"'{vague.group(0)}' needs a size: say e.g. 'remove regions smaller than 1 ha' or "
              "'only keep the ones larger than 5000 m²'.", state.understood)
    mn, mx = state.updates.get("min_area_m2"), state.updates.get("max_area_m2")
    if isinstance(mn, float) and isinstance(mx, float) and mn > mx:
        fail(f"The minimum size ({_area_words(mn)}) is larger than the maximum size ({_area_words(mx)}), "
              "so nothing could be kept.", state.understood)


def _removal_before(state: ParseState, start: int) -> re.Match[str] | None:
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


def read_index_limits(state: ParseState) -> None:
    """Explicit index thresholds ("NDVI above 0.6"): used as given (spex.engine.limits), never replaced."""
    try:
        phrases = find_index_limits(state.text)
    except PhraseError as exc:
        fail(str(exc), state.understood)
    for ph in phrases:
        state.index_limits.append((ph.index, ph.low, ph.high))
        limit = IndexLimit("-", ph.index, ph.low, ph.high)
        state.understood.append(f"{limit.describe()} as you said (replaces the scene's adaptive {ph.index} threshold "
                                "where the class rule uses it, else an extra test)")
    for ph in sorted(phrases, key=lambda p: -p.span[0]):
        a, b = ph.span
        state.text = state.text[:a] + " " * (b - a) + state.text[b:]


def read_count_filter(state: ParseState) -> None:
    if re.search(r"\b(?:\d+\s+)?(?:smallest|tiniest)\b", state.text):
        fail("Keeping the N smallest regions is not supported; use a size limit instead "
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
                fail(f"The number of regions to keep must be a whole number of at least 1; "
                      f"'{state.text[max(0, m.start() - 3):m.end()].strip()}' is not.", state.understood)
            if n > _MAX_COUNT:
                fail(f"Keeping the {n:,} largest regions is not a real limit (no scene holds that many regions); "
                      f"give a number up to {_MAX_COUNT:,}, or say 'all of them' to keep every region.",
                      state.understood)
            if n < 1:
                fail("The number of regions to keep must be at least 1.", state.understood)
            state.updates["keep_largest"] = n
            state.understood.append("keep the largest region only" if n == 1 else f"keep the {n} largest regions")
            state.consume(m)
            return


def read_strictness(state: ParseState) -> None:
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


def read_shape_options(state: ParseState) -> None:
    """Switches that change the outlines: fill holes, smooth edges, drop border regions."""
    for pattern, field, words in _SHAPE_OPTIONS:
        m = re.search(pattern, state.text)
        if m:
            state.updates[field] = True
            state.understood.append(words)
            state.consume(m)


def read_region(state: ParseState) -> None:
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
