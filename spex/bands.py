"""Canonical band names shared by every part of spex.

Bands are always referred to by these names (TerraTorch-style), never by position.
Centre wavelengths (nm) are indicative and used for documentation and sorting only.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CANONICAL_BANDS", "RGB_BANDS", "WAVELENGTHS_NM", "BAND_ALIASES", "canonical_band"]

WAVELENGTHS_NM: Final[dict[str, float]] = {
    "coastal": 443.0,
    "blue": 490.0,
    "green": 560.0,
    "red": 665.0,
    "rededge1": 705.0,
    "rededge2": 740.0,
    "rededge3": 783.0,
    "nir": 842.0,       # broad NIR: S2 B08, TM/ETM+ B4, OLI B5, aerial NIR
    "nir08": 865.0,     # narrow NIR: S2 B8A
    "watervapour": 945.0,
    "cirrus": 1375.0,
    "swir1": 1610.0,
    "swir2": 2190.0,
    "thermal": 11000.0,
    "pan": 640.0,
}

CANONICAL_BANDS: Final[tuple[str, ...]] = tuple(WAVELENGTHS_NM)
RGB_BANDS: Final[tuple[str, str, str]] = ("red", "green", "blue")

#: Alternative spellings accepted from users and file descriptions (lower-cased keys).
BAND_ALIASES: Final[dict[str, str]] = {
    "b": "blue", "g": "green", "r": "red", "n": "nir",
    "aerosol": "coastal", "coastal_aerosol": "coastal", "ca": "coastal",
    "re1": "rededge1", "re2": "rededge2", "re3": "rededge3",
    "red_edge_1": "rededge1", "red_edge_2": "rededge2", "red_edge_3": "rededge3",
    "nir_broad": "nir", "nir_narrow": "nir08", "nir2": "nir08", "narrow_nir": "nir08",
    "swir_1": "swir1", "swir_2": "swir2", "swir16": "swir1", "swir22": "swir2",
    "wv": "watervapour", "water_vapour": "watervapour", "water_vapor": "watervapour",
    "tir": "thermal", "lwir": "thermal", "panchromatic": "pan",
    # Sentinel-2 band ids
    "b01": "coastal", "b1": "coastal", "b02": "blue", "b2": "blue", "b03": "green", "b3": "green",
    "b04": "red", "b4": "red", "b05": "rededge1", "b5": "rededge1", "b06": "rededge2",
    "b6": "rededge2", "b07": "rededge3", "b7": "rededge3", "b08": "nir", "b8": "nir",
    "b8a": "nir08", "b09": "watervapour", "b9": "watervapour", "b10": "cirrus",
    "b11": "swir1", "b12": "swir2",
}


def canonical_band(name: str) -> str | None:
    """Return the canonical name for ``name`` (any case/alias), or None if unknown.

    Sentinel-2 ids (B01..B12, B8A) are recognised; Landsat band numbers are not,
    because their meaning depends on the sensor (use the sensor tables for those).
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in WAVELENGTHS_NM:
        return key
    return BAND_ALIASES.get(key)
