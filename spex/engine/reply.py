"""The explanatory reply (Markdown) and answers to follow-up questions.

Every number here is measured from the extraction's mask, labels and regions (or the
scene's grid); nothing is recomputed from imagery and nothing is invented. Areas are
in hectares when the scene is georeferenced, otherwise in pixels.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from rasterio.warp import transform as warp_transform

from spex.engine.classes import class_totals, region_classes
from spex.engine.parser import QUESTION_KINDS, parse_question
from spex.engine.request import TARGET_LABELS
from spex.engine.result import ClassEvidence, Extraction
from spex.engine.rules.context import MASK_FEATURES, OBSTRUCTION_CLASSES
from spex.engine.shares import SUBCLASS_OF, ShareTable
from spex.engine.vocabulary import EXAMPLES, SUPPORTED_SUMMARY
from spex.errors import InstructionError
from spex.io import Scene
from spex.spie import RegionAttributes
from spex.units import format_area

__all__ = ["explain", "answer_question", "help_text", "region_lonlat", "format_area", "shares_reply",
           "class_totals_rows"]

#: Regions listed in the main reply (the rest is available via "list them").
TOP_REGIONS_IN_REPLY = 5
#: Regions listed by "list them" before truncation.
MAX_LISTED = 30

_METHOD_WORDS = {
    "otsu": "Otsu's method on this scene",
    "otsu-clamped": "Otsu's method, clamped to the physically plausible range",
    "fallback": "literature default (no clear split in this scene's histogram)",
}


def _georef(scene: Scene) -> bool:
    return scene.crs is not None


def region_lonlat(region: RegionAttributes, scene: Scene) -> tuple[float, float] | None:
    """Centroid of a region as (lon, lat) in EPSG:4326, or None if not georeferenced."""
    if scene.crs is None:
        return None
    col = region.centroid[0] * scene.width
    row = region.centroid[1] * scene.height
    x, y = scene.transform @ (col, row)
    if scene.crs.to_epsg() == 4326:
        return float(x), float(y)
    xs, ys = warp_transform(scene.crs, "EPSG:4326", [x], [y])
    return float(xs[0]), float(ys[0])


def _label(extraction: Extraction) -> str:
    return " + ".join(TARGET_LABELS[t] for t in extraction.request.targets)


def _empty_hint(extraction: Extraction) -> str:
    """What to make of an empty result.

    Why: cloud, shadow and haze come from a mask source without an adjustable threshold, so
    'looser' changes nothing; and an empty obstruction mask is an answer in itself (the scene
    looks clear), unless the user's own filters removed what there was.
    """
    request = extraction.request
    if not all(t in OBSTRUCTION_CLASSES for t in request.targets):
        return "Try 'looser', or remove a filter."
    filtered = (request.min_area_m2 is not None or request.max_area_m2 is not None or request.keep_largest is not None
                or request.region is not None or request.drop_border or bool(request.exclude))
    if filtered:
        return "None is left after your filters; remove a filter to see all of it."
    sources = list(dict.fromkeys(ev.threshold_method for ev in extraction.evidence
                                 if ev.target in OBSTRUCTION_CLASSES and ev.threshold_method))
    checked = f" (checked by {', '.join(sources)})" if sources else ""
    return f"The scene looks clear of {_label(extraction)}{checked}."


def _region_rows(regions: Sequence[RegionAttributes], scene: Scene,
                 classes: dict[int, str] | None = None) -> list[str]:
    """Markdown table of regions; ``classes`` (label -> class) adds a class column for merged results."""
    geo = _georef(scene)
    column = "centroid (lon, lat)" if geo else "centroid (col, row)"
    if classes:
        rows = [f"| # | class | area | size | location | {column} |", "|---|---|---|---|---|---|"]
    else:
        rows = [f"| # | area | size | location | {column} |", "|---|---|---|---|---|"]
    for r in regions:
        ll = region_lonlat(r, scene)
        where = (f"{ll[0]:.5f}, {ll[1]:.5f}" if ll is not None else
                 f"{r.centroid[0] * scene.width:.0f}, {r.centroid[1] * scene.height:.0f}")
        cls = f" {TARGET_LABELS.get(classes.get(r.label, ''), '?')} |" if classes else ""
        rows.append(f"| {r.label} |{cls} {format_area(r.area_m2, geo)} | {r.size_class} | {r.location} | {where} |")
    return rows


def class_totals_rows(extraction: Extraction, scene: Scene) -> list[str]:
    """Per-class totals of a merged result (Markdown table); [] for one class."""
    if len(extraction.request.targets) < 2:
        return []
    totals = class_totals(extraction)
    if not totals:
        return ["(per-class totals are not available from this backend)"]
    geo = _georef(scene)
    rows = ["| class | area | % of valid scene | regions |", "|---|---|---|---|"]
    for t in totals:
        rows.append(f"| {TARGET_LABELS[t.target]} | {format_area(t.area_m2, geo)} | {100 * t.share_of_valid:.1f} % "
                    f"| {t.regions} |")
    return rows


def _evidence_lines(extraction: Extraction) -> list[str]:
    lines: list[str] = []
    for ev in extraction.evidence:
        lines.append(_evidence_text(ev))
    return lines


def _evidence_text(ev: ClassEvidence) -> str:
    label = TARGET_LABELS[ev.target]
    if ev.index in MASK_FEATURES:
        tests = "".join(f"; {t}" for t in ev.extra_tests)
        text = (f"- **{label}**: {ev.formula}{tests}; {ev.pixels:,} px selected.")
        return text
    if ev.threshold_method == "model":  # a learned backend: the index is evidence, not the selection rule
        thr = "model decision" if math.isnan(ev.threshold) else f"the model's probability > {ev.threshold:.2f}"
        thr += f"; {ev.index} is measured as evidence, not used to select"
    elif math.isnan(ev.threshold):
        thr = "model decision"
    elif ev.threshold_method == "user":
        said = next((u for u in ev.user_tests if u.startswith(ev.index + " ")), "")
        thr = f"{ev.index} {ev.direction} {ev.threshold:.2f} " + (said[said.find("("):] if "(" in said
                                                                   else "(as you asked)")
    else:
        method = _METHOD_WORDS.get(ev.threshold_method.split(",")[0], ev.threshold_method)
        extra_method = ev.threshold_method[len(ev.threshold_method.split(",")[0]):]
        thr = f"{ev.index} {ev.direction} {ev.threshold:.3f} (threshold from {method}{extra_method})"
    inside = "n/a" if math.isnan(ev.mean_inside) else f"{ev.mean_inside:.3f}"
    outside = "n/a" if math.isnan(ev.mean_outside) else f"{ev.mean_outside:.3f}"
    text = (f"- **{label}**: {ev.index} = `{ev.formula}`; selected where {thr}. "
            f"Mean {ev.index} inside the selection {inside} vs {outside} in the rest of the valid scene "
            f"({ev.pixels:,} px of this class selected).")
    if ev.extra_tests:
        text += " Also required: " + "; ".join(ev.extra_tests) + "."
    if ev.user_tests:
        text += " Your thresholds: " + "; ".join(ev.user_tests) + "."
    if ev.bands:
        text += (" Index bands: " if ev.threshold_method == "model" else " Bands used: ") + ", ".join(ev.bands) + "."
    return text


def explain(extraction: Extraction, scene: Scene) -> str:
    """Markdown reply: what was found, why (spectral evidence), and caveats.

    All counts and areas come from ``extraction.mask`` / ``regions``; the % is of valid pixels.
    """
    geo = _georef(scene)
    n = len(extraction.regions)
    label = _label(extraction)
    total = format_area(extraction.total_area_m2, geo)
    pct = 100.0 * extraction.fraction_of_valid
    lines = [f"**Request:** {extraction.request.describe()}  ", f"**Backend:** {extraction.backend}", ""]
    user_tests = [u for ev in extraction.evidence for u in ev.user_tests]
    if user_tests:
        lines += ["**Your thresholds:** " + "; ".join(user_tests) + ".", ""]
    part_rules = [c for c in extraction.caveats if c.startswith("Part rule")]
    if part_rules:
        lines += ["**Parts of the water:** " + " ".join(part_rules), ""]
    if n == 0:
        lines.append(f"**Found no {label}** matching the request in this scene (0 px of "
                     f"{extraction.valid_pixels:,} valid pixels). {_empty_hint(extraction)}")
    else:
        lines.append(f"**Found {n} region{'s' if n != 1 else ''} of {label}**: {total} in total, "
                     f"{pct:.1f} % of the valid scene ({extraction.selected_pixels:,} of "
                     f"{extraction.valid_pixels:,} px).")
        totals = class_totals_rows(extraction, scene)
        if totals:
            lines += ["", "Per class (colours in the overlay and map legend):", ""] + totals
        top = extraction.regions[:TOP_REGIONS_IN_REPLY]
        lines.append("")
        lines.append("Largest regions:" if n > 1 else "The region:")
        lines.append("")
        classes = region_classes(extraction) if len(extraction.request.targets) > 1 else None
        lines.extend(_region_rows(top, scene, classes))
        if n > len(top):
            rest = sum(r.area_m2 for r in extraction.regions[len(top):])
            lines.append("")
            lines.append(f"…and {n - len(top)} smaller region(s) totalling {format_area(rest, geo)} "
                         "(ask 'list them' for all).")
    lines += ["", "**Why these pixels:**", ""]
    lines.extend(_evidence_lines(extraction))
    caveats = [c for c in extraction.caveats if not c.startswith("Part rule")]
    if caveats:
        lines += ["", "**Caveats:**", ""]
        lines.extend(f"- {c}" for c in caveats)
    return "\n".join(lines)


def shares_reply(table: ShareTable, scene: Scene) -> str:
    """Markdown answer to a class-share question: the measured table, the largest class, what was skipped."""
    geo = _georef(scene)
    lines: list[str] = []
    top = table.largest
    if top is None:
        lines.append("I could not measure any of the classes on this scene.")
    elif len(table.asked) == 2 and len(table.rows) == 2:
        a, b = table.rows
        ratio = f"{a.pixels / b.pixels:.1f} times as much" if b.pixels else "while the other is absent"
        lines.append(f"**{TARGET_LABELS[a.target]}** covers {100 * a.share:.1f} % of the valid scene "
                     f"({format_area(a.area_m2, geo)}), **{TARGET_LABELS[b.target]}** {100 * b.share:.1f} % "
                     f"({format_area(b.area_m2, geo)}): {ratio}.")
    else:
        lines.append(f"**{TARGET_LABELS[top.target]}** covers most of the scene: {100 * top.share:.1f} % of the "
                     f"valid pixels ({format_area(top.area_m2, geo)}).")
    if table.rows:
        lines += ["", "| class | area | % of valid scene | regions |", "|---|---|---|---|"]
        for r in table.rows:
            part = f" (part of {TARGET_LABELS[SUBCLASS_OF[r.target]]})" if r.target in SUBCLASS_OF else ""
            lines.append(f"| {TARGET_LABELS[r.target]}{part} | {format_area(r.area_m2, geo)} | "
                         f"{100 * r.share:.1f} % | {r.regions} |")
        lines.append(f"| *no class measured here* | {format_area(table.unclaimed_pixels * table.pixel_area_m2, geo)}"
                     f" | {100 * table.unclaimed_pixels / max(table.valid_pixels, 1):.1f} % | |")
    lines += ["", f"Measured by extracting each class with its own rule at the default threshold (as *extract the "
                  f"…* does) on {table.valid_pixels:,} valid pixels; classes can overlap, so shares need not add "
                  "up to 100 %."]
    for target, reason in table.skipped:
        lines.append(f"- Not measured: {TARGET_LABELS[target]} ({reason})")
    return "\n".join(lines)


def help_text() -> str:
    """What the user can say (Markdown)."""
    lines = ["**What I understand**", ""]
    lines += [f"- {s}" for s in SUPPORTED_SUMMARY]
    lines += ["", "**Examples**", ""] + [f"- {e}" for e in EXAMPLES]
    return "\n".join(lines)


def answer_question(question: str, extraction: Extraction, scene: Scene) -> str:
    """Answer a follow-up question from the current mask (no recomputation).

    Args:
        question: a key of QUESTION_KINDS ("largest", "count", ...) or the user's words.

    Raises:
        InstructionError: the question is not one of the supported kinds.
    """
    key = question if question in QUESTION_KINDS else parse_question(question)
    if key is None:
        raise InstructionError(
            f"I cannot answer {question!r} from the current result. I can answer: how many, which is the "
            "largest / smallest, how much area in total, list them, where are they, why (evidence).",
            [], list(QUESTION_KINDS))
    geo = _georef(scene)
    label = _label(extraction)
    regions = extraction.regions
    n = len(regions)
    if key == "evidence":
        return "\n".join(["**Why these pixels:**", ""] + _evidence_lines(extraction))
    if n == 0:
        return f"The current result has no {label} (0 regions), so there is nothing to measure."
    classes = region_classes(extraction) if len(extraction.request.targets) > 1 else None
    if key == "count":
        text = (f"There {'is' if n == 1 else 'are'} **{n}** region{'s' if n != 1 else ''} of {label} in the "
                f"current result ({extraction.request.describe()}).")
        totals = class_totals_rows(extraction, scene)
        return text + ("\n\n" + "\n".join(totals) if totals else "")
    if key == "total_area":
        text = (f"In total **{format_area(extraction.total_area_m2, geo)}** of {label}, "
                f"{100 * extraction.fraction_of_valid:.1f} % of the valid scene, in {n} region{'s' if n != 1 else ''}.")
        totals = class_totals_rows(extraction, scene)
        return text + ("\n\n" + "\n".join(totals) if totals else "")
    if key in ("largest", "smallest"):
        r = regions[0] if key == "largest" else regions[-1]
        ll = region_lonlat(r, scene)
        where = f", centroid at lon {ll[0]:.5f}, lat {ll[1]:.5f}" if ll else ""
        share = 100.0 * r.pixels / max(extraction.selected_pixels, 1)
        of = f" ({TARGET_LABELS[classes[r.label]]})" if classes and r.label in classes else ""
        return (f"The {key} is region #{r.label}{of}: **{format_area(r.area_m2, geo)}** ({r.size_class}), in the "
                f"{r.location} of the image{where}; it is {share:.1f} % of the selected area.")
    if key == "list":
        shown = regions[:MAX_LISTED]
        lines = [f"{n} region{'s' if n != 1 else ''} of {label}:", ""] + _region_rows(shown, scene, classes)
        if n > len(shown):
            lines += ["", f"…{n - len(shown)} more (smaller) regions not listed; the GeoJSON download has all."]
        return "\n".join(lines)
    # where
    counts = Counter(r.location for r in regions)
    area_by_loc: Counter[str] = Counter()
    for r in regions:
        area_by_loc[r.location] += r.area_m2
    parts = [f"{loc}: {c} region{'s' if c != 1 else ''} ({format_area(area_by_loc[loc], geo)})"
             for loc, c in counts.most_common()]
    largest = regions[0]
    ll = region_lonlat(largest, scene)
    tail = f" (lon {ll[0]:.5f}, lat {ll[1]:.5f})" if ll else ""
    return ("By image part (3×3 grid, by region centroid): " + "; ".join(parts) + ". "
            f"The largest region (#1) is in the {largest.location}{tail}.")
