"""Measured facts of one extraction, and the check that a text states no other number.

The language model writes the explanation from a facts block; every number it may state is
listed here, in the unit in which it may be stated (areas in ha, km² and m², shares in %,
index values as measured). :func:`unverified_numbers` extracts every number of a text
(digits and the number words one..twenty) and returns those that are no fact within the
rounding of the precision they were written with, so an invented number is caught.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Fact", "extraction_facts", "facts_block", "facts_json", "unverified_numbers", "numbers_in",
           "number_matches", "template_explanation"]


@dataclass(frozen=True)
class Fact:
    """One measured value the reply may state: ``key`` (stable id), value, unit, phrase."""

    key: str
    value: float
    unit: str
    text: str


_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUM = re.compile(r"(?<![A-Za-z0-9_.])[-−]?\d[\d,]*(?:\.\d+)?(?![A-Za-z0-9_])|(?<![A-Za-z0-9_.])[-−]?\.\d+")
#: unit written after a number -> the fact unit it must match (others: any fact).
_UNIT = re.compile(r"\s?(%|percent\b|ha\b|hectares?\b|km²|km2\b|square kilomet\w+|m²|m2\b|square met\w+|"
                   r"met(?:er|re)s?\b|m\b|km\b|kilomet\w+|px\b|pixels?\b|degrees?\b|°|(?:separate\s)?regions?\b)", re.IGNORECASE)
_UNIT_KEYS = {"%": "%", "percent": "%", "ha": "ha", "hectare": "ha", "hectares": "ha", "km²": "km²", "km2": "km²",
              "px": "px", "pixel": "px", "pixels": "px", "region": "regions", "regions": "regions",
              "separate region": "regions", "separate regions": "regions"}
_ORDINAL = re.compile(r"(?<![A-Za-z0-9_.])(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.IGNORECASE)


def numbers_in(text: str, ignore: Iterable[str] = ()) -> list[tuple[str, float, int]]:
    """(as written, value, decimals) for each number in ``text``; names in ``ignore`` are skipped.

    ``ignore`` holds proper names that contain digits (``Sentinel-2``, ``Landsat 5 TM``,
    ``SmolLM2-135M``): they are removed before the search.
    """
    for name in sorted(set(ignore), key=len, reverse=True):
        if name and re.search(r"\d", name):
            text = re.sub(re.escape(name), " ", text, flags=re.IGNORECASE)
    out: list[tuple[str, float, int]] = []
    for m in _NUM.finditer(text):
        raw = m.group(0)
        clean = raw.replace("−", "-")
        unit = _UNIT.match(text, m.end())
        if unit:
            raw = raw + unit.group(0).rstrip()
        # "1,234" is a thousands separator; "1,5" would be a decimal comma (not produced by us).
        clean = clean.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", clean) else clean.split(",")[0]
        try:
            value = float(clean)
        except ValueError:
            continue
        decimals = len(clean.split(".")[1]) if "." in clean else 0
        out.append((raw, value, decimals))
    for m in _ORDINAL.finditer(text):  # "12nd region": a rank must be one of the ranked regions
        out.append((m.group(0), float(m.group(1)), 0))
    for m in _WORD.finditer(text):
        out.append((m.group(0), float(_WORDS[m.group(0).lower()]), 0))
    return out


def number_matches(value: float, decimals: int, fact: float) -> bool:
    """True when ``value`` is ``fact`` as written with ``decimals`` decimals (or within 1 %)."""
    if not math.isfinite(fact):
        return False
    tol = max(0.5 * 10.0 ** (-decimals) + 1e-9, 0.01 * abs(fact))
    return abs(value - fact) <= tol


def unverified_numbers(text: str, facts: Sequence[Fact], ignore: Iterable[str] = ()) -> list[str]:
    """Numbers of ``text`` that match no fact (empty list = every number is a measured fact)."""
    bad: list[str] = []
    for raw, value, decimals in numbers_in(text, ignore):
        if _ORDINAL.fullmatch(raw):  # a rank ("the 2nd region") must lie within a measured region count
            if not any(f.unit == "regions" and 1 <= value <= f.value for f in facts):
                bad.append(raw)
            continue
        unit = _UNIT.search(raw)
        pool = [f.value for f in facts]
        if unit:
            word = unit.group(0).strip().lower()
            key = _UNIT_KEYS.get(word) or ("km²" if word.startswith("square kilomet") else None)
            # a unit with no fact (metres, degrees ...) can never be verified
            pool = [f.value for f in facts if f.unit == key] if key else []
        if not any(number_matches(value, decimals, v) for v in pool):
            bad.append(raw)
    return bad


def _location_counts(regions) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in regions:
        counts[r.location] = counts.get(r.location, 0) + 1
    return counts


def extraction_facts(extraction, *, top_regions: int = 3) -> list[Fact]:
    """The facts of one :class:`~spex.engine.Extraction` (all measured from its mask and evidence)."""
    from spex.engine.request import TARGET_LABELS

    facts: list[Fact] = []
    area = extraction.total_area_m2
    label = " + ".join(TARGET_LABELS[t] for t in extraction.request.targets)
    georef = extraction.pixel_area_m2 != 1.0
    if georef:
        facts.append(Fact("area_ha", round(area / 1e4, 2), "ha", f"selected area of {label}: {area / 1e4:.2f} ha"))
        facts.append(Fact("area_km2", round(area / 1e6, 3), "km²", f"selected area: {area / 1e6:.3f} km²"))
    facts.append(Fact("pixels", float(extraction.selected_pixels), "px", f"selected pixels: {extraction.selected_pixels}"))
    facts.append(Fact("share_pct", round(100 * extraction.fraction_of_valid, 1), "%",
                      f"share of the valid scene: {100 * extraction.fraction_of_valid:.1f} %"))
    facts.append(Fact("regions", float(len(extraction.regions)), "regions",
                      f"number of separate regions: {len(extraction.regions)}"))
    for i, r in enumerate(extraction.regions[:top_regions], start=1):
        where = r.location
        if georef:
            facts.append(Fact(f"region{i}_ha", round(r.area_ha, 2), "ha",
                              f"region {i} by size: {r.area_ha:.2f} ha, {where} of the scene"))
        else:
            facts.append(Fact(f"region{i}_px", float(r.pixels), "px", f"region {i} by size: {r.pixels} px, {where}"))
        facts.append(Fact(f"region{i}_rank", float(i), "rank", f"(region rank {i})"))
    for ev in extraction.evidence:
        if ev.index in ("none", "") or not math.isfinite(ev.threshold):
            continue
        word = TARGET_LABELS.get(ev.target, ev.target)
        facts.append(Fact(f"{ev.target}_threshold", round(ev.threshold, 2), ev.index,
                          f"{word}: selected where {ev.index} {ev.direction} {ev.threshold:.2f}"))
        if math.isfinite(ev.mean_inside):
            facts.append(Fact(f"{ev.target}_mean_inside", round(ev.mean_inside, 2), ev.index,
                              f"mean {ev.index} inside the mask: {ev.mean_inside:.2f}"))
        if math.isfinite(ev.mean_outside):
            facts.append(Fact(f"{ev.target}_mean_outside", round(ev.mean_outside, 2), ev.index,
                              f"mean {ev.index} outside the mask: {ev.mean_outside:.2f}"))
    for where, n in sorted(_location_counts(extraction.regions).items(), key=lambda kv: -kv[1])[:3]:
        facts.append(Fact(f"regions_{where}", float(n), "regions", f"regions located {where}: {n}"))
    return facts


def facts_block(facts: Sequence[Fact]) -> str:
    """The facts as the bullet list given to the language model (rank entries are implicit)."""
    return "\n".join(f"- {f.text}" for f in facts if not f.key.endswith("_rank"))


def facts_json(facts: Sequence[Fact]) -> dict[str, dict[str, float | str]]:
    """``{"key": {"value", "unit", "text"}}`` for reply.json."""
    return {f.key: {"value": f.value, "unit": f.unit, "text": f.text} for f in facts}


def template_explanation(extraction, facts: Sequence[Fact]) -> str:
    """Measured fallback reply from the same facts (used when the generated text fails the check)."""
    from spex.engine.request import TARGET_LABELS

    by = {f.key: f for f in facts}
    label = " + ".join(TARGET_LABELS[t] for t in extraction.request.targets)
    if extraction.selected_pixels == 0:
        return f"No {label} was found in this scene with the measured evidence."
    amount = f"{by['area_ha'].value:.2f} ha" if "area_ha" in by else f"{int(by['pixels'].value)} px"
    parts = [f"I selected {label}: {amount} ({by['share_pct'].value:.1f} % of the valid scene) in "
             f"{int(by['regions'].value)} region(s)."]
    first = next((f for f in facts if f.key in ("region1_ha", "region1_px")), None)
    if first is not None:
        parts.append(f"The largest is {first.text.split(': ', 1)[1]}.")
    for ev in extraction.evidence:
        k = f"{ev.target}_threshold"
        if k in by and f"{ev.target}_mean_inside" in by and f"{ev.target}_mean_outside" in by:
            parts.append(f"Spectrally, {ev.index} averages {by[ev.target + '_mean_inside'].value:.2f} inside the "
                         f"mask against {by[ev.target + '_mean_outside'].value:.2f} outside it.")
    return " ".join(parts)
