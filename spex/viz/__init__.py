"""Interactive map of a scene and its extraction (standalone HTML, Leaflet inlined)."""

from spex.viz.map import map_html

__all__ = ["map_html"]
