"""Markdown for chat bubbles built from library values (formatting only, no computation)."""

from __future__ import annotations

from typing import Any

__all__ = ["scene_markdown"]


def scene_markdown(info: Any, name: str) -> str:
    """What was read from an upload: sensor, bands and their roles, size, CRS, pixel size, scaling, notes.

    ``info`` is a :class:`spex.io.SceneInfo`; the plain-text form (``to_text()``) is used
    as a fallback for fields this function does not know.
    """
    try:
        rows = [("Sensor", info.sensor),
                ("Size", f"{info.width} × {info.height} px, {len(info.bands)} bands")]
        if info.georeferenced:
            px, py = info.pixel_size_m
            scene_km2 = info.pixel_area_m2 * info.width * info.height / 1e6
            rows += [("CRS", info.crs),
                     ("Pixel size", f"{px:.2f} × {py:.2f} m ({info.pixel_area_m2:g} m² per pixel; "
                                    f"scene {scene_km2:.2f} km²)")]
        else:
            rows.append(("CRS", "none — not georeferenced, areas are given in pixels"))
        rows += [("Scaling", info.scaling),
                 ("Calibrated", "yes (reflectance 0–1)" if info.calibrated
                  else "no (relative values; thresholds adapt to the scene)"),
                 ("Valid pixels", f"{100 * info.valid_fraction:.1f} % (sampled)")]
        bands = " · ".join(
            f"`{b.name}` {'~11 µm' if b.name == 'thermal' else f'{b.wavelength_nm:.0f} nm'} ({b.band_id}"
            f"{', resampled' if b.resampled else ''})" for b in info.bands)
        notes = list(info.notes)
    except AttributeError:  # an older/other info object: show its text verbatim
        return f"**Scene loaded:** {name}\n\n```text\n{info.to_text()}\n```"
    table = "\n".join(["| | |", "|---|---|", *(f"| **{k}** | {v} |" for k, v in rows)])
    text = f"**Scene loaded:** {name}\n\n{table}\n\n**Bands (role, centre, source band):** {bands}"
    if notes:
        items = "\n".join(f"- {n}" for n in notes)
        summary = f"<summary>Notes: how the files were read ({len(notes)})</summary>"
        text += f"\n\n<details>{summary}\n\n{items}\n\n</details>"
    return text
