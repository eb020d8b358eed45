"""Phrases for the constraints beyond class and size: index thresholds, parts of the water, class shares.

Pure functions on the parser's normalised text (lower case, numbers as digits). Each finder returns
what it recognised with the text spans it used, so :mod:`spex.engine.parser` can blank them out
(one phrase, one meaning), or raises :class:`PhraseError` with a user-facing reason when the words
cannot be honoured (an index outside its range, a threshold without a direction ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["INDEX_CLASS", "INDEX_RANGE", "IndexPhrase", "PartPhrase", "PhraseError", "find_index_limits",
           "find_parts", "is_shares_question"]


class PhraseError(ValueError):
    """Words that name a constraint which cannot be applied as said; the message is for the user."""


#: Index spellings -> catalogue name (spex.spectral.INDICES).
_INDEX_NAMES: Final[dict[str, str]] = {
    "ndvi": "NDVI", "ndwi": "NDWI", "mndwi": "MNDWI", "ndbi": "NDBI", "bsi": "BSI", "ndsi": "NDSI",
    "ndmi": "NDMI", "evi": "EVI", "savi": "SAVI", "awei": "AWEIsh", "aweish": "AWEIsh", "aweinsh": "AWEInsh",
}
#: Indices users name that the catalogue does not compute.
_UNSUPPORTED_INDICES: Final[tuple[str, ...]] = ("nbr", "gndvi", "ndre", "msavi", "ui", "ndti", "ndci", "lswi")
#: The class a threshold on this index most likely refers to when no class is named.
INDEX_CLASS: Final[dict[str, str]] = {
    "NDVI": "vegetation", "EVI": "vegetation", "SAVI": "vegetation", "NDMI": "vegetation", "NDWI": "water",
    "MNDWI": "water", "AWEIsh": "water", "AWEInsh": "water", "NDBI": "built", "BSI": "bare", "NDSI": "snow",
}
#: Values each index can take (normalised differences lie in -1..1; SAVI's 1.5 factor; AWEI unbounded).
INDEX_RANGE: Final[dict[str, tuple[float, float]]] = {
    **{n: (-1.0, 1.0) for n in ("NDVI", "NDWI", "MNDWI", "NDBI", "BSI", "NDSI", "NDMI", "EVI")},
    "SAVI": (-1.5, 1.5), "AWEIsh": (-10.0, 10.0), "AWEInsh": (-10.0, 10.0),
}

_IDX = r"\b(?P<idx>" + "|".join(sorted(list(_INDEX_NAMES) + list(_UNSUPPORTED_INDICES), key=len, reverse=True)) + r")\b"
_VAL = r"(-?(?:\d+(?:\.\d+)?|\.\d+))"
_LEAD = r"\s*(?:values?\s*)?(?:(?:is|are|of|being)\s+)?(?:(?:a|an)\s+value\s+(?:of\s+)?)?"
_ABOVE = (r"(?:>=|=>|>|above|over|greater(?: than)?|higher(?: than)?|larger(?: than)?|bigger(?: than)?|more than|"
          r"exceeding|at least|no less than|not less than|not below|min(?:imum)?(?: of)?|starting at|from)")
_BELOW = (r"(?:<=|=<|<|below|under|less than|lower(?: than)?|smaller(?: than)?|at most|no more than|not above|"
          r"up to|max(?:imum)?(?: of)?)")
_BETWEEN = re.compile(_IDX + _LEAD + r"(?:between|from|in(?: the range)?|within)?\s*" + _VAL
                      + r"\s*(?:and|to|-|–|\.\.)\s*" + _VAL)
_ONE_SIDED = re.compile(_IDX + _LEAD + rf"(?P<op>{_ABOVE}|{_BELOW})\s*(?:or equal to\s*)?{_VAL}")
_TRAILING = re.compile(_IDX + _LEAD + _VAL + r"\s+(?P<op>or (?:more|higher|above|greater|less|lower|below))")
_BARE = re.compile(_IDX + _LEAD + r"(?:=|==)?\s*" + _VAL)


@dataclass(frozen=True)
class IndexPhrase:
    """One stated index threshold: ``low < index < high`` (None = open side)."""

    index: str
    low: float | None
    high: float | None
    span: tuple[int, int]
    words: str


def find_index_limits(text: str) -> list[IndexPhrase]:
    """Every index threshold in ``text`` ("ndvi above 0.6", "mndwi > 0.3", "ndvi between 0.3 and 0.5").

    Raises:
        PhraseError: an index the catalogue lacks, a value outside the index's range, an empty
            interval, or an index with a number but no direction ("ndvi 0.6").
    """
    found: list[IndexPhrase] = []
    taken: list[tuple[int, int]] = []

    def free(span: tuple[int, int]) -> bool:
        return all(span[1] <= a or span[0] >= b for a, b in taken)

    for m in _BETWEEN.finditer(text):
        lo, hi = float(m.group(2)), float(m.group(3))
        if not free(m.span()):
            continue
        if lo == hi:
            raise PhraseError(f"'{m.group(0).strip()}' is an empty interval; give two different values, e.g. "
                              "'NDVI between 0.3 and 0.5'.")
        found.append(_phrase(m, min(lo, hi), max(lo, hi)))
        taken.append(m.span())
    for pattern in (_ONE_SIDED, _TRAILING):
        for m in pattern.finditer(text):
            if not free(m.span()):
                continue
            value = float(m.groups()[-1] if pattern is _ONE_SIDED else m.group(2))
            op = m.group("op")
            above = re.fullmatch(_ABOVE, op) is not None or any(w in op for w in ("more", "higher", "above", "greater"))
            found.append(_phrase(m, value if above else None, None if above else value))
            taken.append(m.span())
    for m in _BARE.finditer(text):
        if free(m.span()):
            raise PhraseError(f"I found '{m.group(0).strip()}' but not whether you want {m.group('idx').upper()} above "
                              "or below that value; say e.g. 'NDVI above 0.6' or 'NDVI below 0.2'.")
    return found


def _phrase(m: re.Match[str], low: float | None, high: float | None) -> IndexPhrase:
    word = m.group("idx")
    if word in _UNSUPPORTED_INDICES:
        raise PhraseError(f"I cannot compute {word.upper()}; the indices I know are "
                          f"{', '.join(dict.fromkeys(_INDEX_NAMES.values()))}.")
    index = _INDEX_NAMES[word]
    lo_ok, hi_ok = INDEX_RANGE[index]
    for value in (low, high):
        if value is not None and not lo_ok <= value <= hi_ok:
            hint = f" (did you mean {value / 10:g}?)" if 1 < abs(value) <= 10 and hi_ok == 1.0 else ""
            raise PhraseError(f"{index} lies between {lo_ok:g} and {hi_ok:g}, so '{m.group(0).strip()}' is outside "
                              f"what {index} can be{hint}; give a value in that range, e.g. '{index} above 0.5'.")
    if low is not None and low >= hi_ok or high is not None and high <= lo_ok:
        raise PhraseError(f"{index} lies between {lo_ok:g} and {hi_ok:g}, so '{m.group(0).strip()}' selects "
                          "nothing; give a value inside that range.")
    return IndexPhrase(index, low, high, m.span(), m.group(0).strip())


# ----------------------------------------------------------------------------- parts of the water

#: Part nouns -> part (spex.engine.request.PARTS). "dry river bed" is bare soil and "sea ice" snow.
#: "Reservoir" is no part: a dammed valley is dendritic (river-shaped by geometry) and, cut by the
#: frame, as large as a sea, so the shape rules would drop it; it asks for the water class itself.
_PART_NOUNS: Final[tuple[tuple[str, str], ...]] = (
    (r"(?:open )?seas?(?! ice)|oceans?|(?:the )?coastal waters?|bays?|estuar(?:y|ies)", "sea"),
    (r"(?<!dry )(?<!dried )(?<!exposed )(?:rivers?|streams?|creeks?|canals?|channels?)(?![ -]?beds?)", "rivers"),
    (r"lakes?|ponds?", "lakes"),
)
_PART = r"\b(?:" + "|".join(f"(?:{pattern})" for pattern, _ in _PART_NOUNS) + r")\b"
_NOT = (r"\b(?:but not|not|without|excluding|exclude|except(?: for)?|minus|other than|apart from|leave out|leaving out|"
        r"no|ignore|ignoring|remove|drop|omit|get rid of|mask out)\s+(?:the\s+|any\s+|all\s+)?")
_OR = r"(?:\s*(?:,|and|or|nor)\s+(?:the\s+)?)"


@dataclass(frozen=True)
class PartPhrase:
    """Parts named in a turn: ``keep`` (only these), ``drop`` (not these), the spans used."""

    keep: tuple[str, ...]
    drop: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]


def find_parts(text: str) -> PartPhrase:
    """Sea / rivers / lakes named in ``text``: after a negation they are dropped, otherwise kept."""
    keep: list[str] = []
    drop: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in re.finditer(_NOT + rf"(?P<list>{_PART}(?:{_OR}{_PART})*)", text):
        for p in re.finditer(_PART, m.group("list")):
            name = _part_name(p.group(0))
            if name not in drop:
                drop.append(name)
        spans.append(m.span())
    rest = text
    for a, b in spans:
        rest = rest[:a] + " " * (b - a) + rest[b:]
    for p in re.finditer(_PART, rest):
        name = _part_name(p.group(0))
        if name not in keep:
            keep.append(name)
        spans.append(p.span())
    return PartPhrase(tuple(k for k in keep if k not in drop), tuple(drop), tuple(spans))


def _part_name(word: str) -> str:
    return next(name for pattern, name in _PART_NOUNS if re.fullmatch(pattern, word))


# ----------------------------------------------------------------------------- class shares

_SHARES = re.compile(
    r"\b(?:which|what|wich)\s+(?:land[- ]?cover\s+|kind of land\s+)?(?:class(?:es)?|land[- ]?cover|cover type|"
    r"type of (?:land[- ]?)?cover|surface)\s*(?:covers?|dominat\w*|is (?:the )?(?:most|largest|biggest|main|"
    r"dominant|most common)|has the (?:most|largest))\b"
    r"|\b(?:which|what|wich)\s+(?:covers?|dominates)\s+(?:the\s+)?(?:most|scene|image)\b"
    r"|\b(?:dominant|predominant|prevailing|main|most common|majority)\s+(?:land[- ]?cover|class|cover(?: type)?)\b"
    r"|\b(?:land[- ]?cover|class(?:es)?)\s+(?:breakdown|composition|shares?|statistics|stats|distribution|"
    r"proportions?|percentages?|fractions?)\b"
    r"|\b(?:share|percentage|fraction|proportion)s?\s+of\s+(?:each|every|all(?: the)?)\s+class(?:es)?\b"
    r"|\bhow much of (?:the )?(?:scene|image|area|picture) is\b"
    r"|\bcovers? (?:the )?most of the (?:scene|image)\b")
_VERSUS = re.compile(r"\b(?:vs\.?|versus|compared (?:to|with)|against|relative to)\b|\bcompare\b")


def is_shares_question(text: str, n_classes: int) -> bool:
    """True for scene-wide class-share questions ("which class covers most of the scene?",
    "how much is vegetation vs water?"); ``n_classes`` = classes named in the text."""
    if _SHARES.search(text):
        return not re.search(r"\b(?:which|what) (?:region|one|lake|patch|part)\b", text)
    return n_classes >= 2 and bool(_VERSUS.search(text))
