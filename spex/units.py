"""Human-readable quantities, one formatting for every output of a turn.

The reply, the overlay caption, the map tooltips and the Markdown report all print areas;
they share this function so that region #3 reads the same number everywhere.
"""

from __future__ import annotations

__all__ = ["format_area"]


def format_area(area_m2: float, georeferenced: bool) -> str:
    """Area in ha (km² from 1,000 ha, m² below 0.1 ha); pixels when not georeferenced.

    Not georeferenced scenes measure areas in pixels (``pixel_area_m2`` is 1.0), hence "px".
    """
    if not georeferenced:
        return f"{area_m2:,.0f} px"
    if area_m2 >= 1e7:
        return f"{area_m2 / 1e6:,.1f} km²"
    if area_m2 >= 1e3:
        return f"{area_m2 / 1e4:,.2f} ha"
    return f"{area_m2:,.0f} m²"
