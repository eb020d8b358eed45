"""A Markdown report of a session: scene, conversation, final request, regions, evidence, caveats.

Every number comes from the extraction (measured on the mask), never from the dialogue.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from spex.engine.request import TARGET_LABELS
from spex.errors import ExportError
from spex.units import format_area

if TYPE_CHECKING:
    from spex.engine.result import Extraction
    from spex.io import Scene

__all__ = ["report_markdown", "write_report"]

_SPEAKERS = {"user": "User", "human": "User", "assistant": "SPEX", "bot": "SPEX", "spex": "SPEX",
             "system": "System"}
_MAX_TABLE_ROWS = 20


def _num(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _quote(text: str) -> str:
    """Indent a chat message as a block quote so its own Markdown headings stay inside it."""
    return "\n".join("> " + line if line.strip() else ">" for line in text.strip().splitlines()) or ">"


def _scene_section(scene: Scene) -> list[str]:
    lines = ["## Scene", "", "```", scene.info().to_text().strip(), "```", ""]
    return lines


def _transcript_section(transcript: Sequence[tuple[str, str]]) -> list[str]:
    lines = ["## Conversation", ""]
    if not transcript:
        return [*lines, "_No messages._", ""]
    for speaker, text in transcript:
        who = _SPEAKERS.get(str(speaker).strip().lower(), str(speaker))
        lines += [f"**{who}:**", "", _quote(str(text)), ""]
    return lines


def _regions_section(extraction: Extraction, georef: bool) -> list[str]:
    regions = extraction.regions
    lines = ["## Largest regions", ""]
    if not regions:
        return [*lines, "_No region selected._", ""]
    index_names = sorted({name for r in regions[:_MAX_TABLE_ROWS] for name in r.mean_indices})
    header = ["#", "area", "size class", "location", "centroid (x, y)", "touches border",
              *[f"mean {n.upper()}" for n in index_names]]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, r in enumerate(regions[:_MAX_TABLE_ROWS], start=1):
        cells = [str(rank), format_area(r.area_m2, georef), r.size_class, r.location,
                 f"{r.centroid[0]:.2f}, {r.centroid[1]:.2f}", "yes" if r.touches_border else "no",
                 *[_num(r.mean_indices.get(n, float("nan"))) for n in index_names]]
        lines.append("| " + " | ".join(cells) + " |")
    if len(regions) > _MAX_TABLE_ROWS:
        rest = sum(r.area_m2 for r in regions[_MAX_TABLE_ROWS:])
        lines += ["", f"… and {len(regions) - _MAX_TABLE_ROWS} smaller regions "
                      f"({format_area(rest, georef)} together)."]
    lines.append("")
    return lines


def _evidence_section(extraction: Extraction) -> list[str]:
    lines = ["## Spectral evidence", ""]
    if not extraction.evidence:
        return [*lines, "_No per-class evidence recorded._", ""]
    lines += ["| class | index | formula | bands | rule | threshold method | mean inside | mean outside "
              "| pixels |", "|---|---|---|---|---|---|---|---|---|"]
    extras: list[str] = []
    for ev in extraction.evidence:
        lines.append(
            f"| {TARGET_LABELS.get(ev.target, ev.target)} | {ev.index} | `{ev.formula}` | {', '.join(ev.bands)} "
            f"| {ev.index} {ev.direction} {_num(ev.threshold)} | {ev.threshold_method} | {_num(ev.mean_inside)} "
            f"| {_num(ev.mean_outside)} | {ev.pixels:,} |")
        extras += [f"- {TARGET_LABELS.get(ev.target, ev.target)}: {test}" for test in ev.extra_tests]
    if extras:
        lines += ["", "Additional tests:", "", *extras]
    lines.append("")
    return lines


def report_markdown(transcript: Sequence[tuple[str, str]], extraction: Extraction | None, scene: Scene) -> str:
    """The report text. ``transcript`` holds (speaker, text) pairs, speaker "user" or "assistant"."""
    georef = scene.crs is not None
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# SPEX chat report", "", f"_Generated {now}._", ""]
    lines += _scene_section(scene)
    lines += _transcript_section(transcript)
    lines += ["## Final request", ""]
    if extraction is None:
        lines += ["_No extraction was made in this session._", ""]
    else:
        total = format_area(extraction.total_area_m2, georef)
        lines += [
            f"- Request: {extraction.request.describe()}",
            f"- Method: {extraction.backend}",
            f"- Selected: {extraction.selected_pixels:,} pixels = {total} "
            f"({extraction.fraction_of_valid:.1%} of {extraction.valid_pixels:,} valid pixels)",
            f"- Regions: {len(extraction.regions)}",
            f"- Pixel area: {extraction.pixel_area_m2:g} {'m²' if georef else 'px (not georeferenced)'}",
            "",
        ]
        lines += _regions_section(extraction, georef)
        lines += _evidence_section(extraction)
    caveats = list(dict.fromkeys(extraction.caveats if extraction else []))  # scene notes: in "Scene"
    if not georef:
        caveats.append("The scene has no georeference: areas are in pixels and exports use pixel coordinates.")
    if not scene.calibrated:
        caveats.append("Values are not calibrated reflectance; index thresholds are relative to this scene.")
    caveats.append("Masks come from spectral rules or a model, not from ground truth; check them "
                   "against local knowledge before use.")
    lines += ["## Caveats", "", *[f"- {c}" for c in caveats], ""]
    return "\n".join(lines)


def write_report(transcript: Sequence[tuple[str, str]], extraction: Extraction | None, scene: Scene,
                 path: Path) -> Path:
    """Write :func:`report_markdown` to ``path`` (UTF-8); returns ``path``.

    Raises:
        ExportError: when the file cannot be written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report_markdown(transcript, extraction, scene), encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot write report {path}: {exc}") from exc
    return path
