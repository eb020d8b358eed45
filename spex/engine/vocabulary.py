"""Words the instruction parser understands: class synonyms, units, regions, number words.

Kept apart from the parsing logic so that the vocabulary can be read (and extended)
as plain data. Every phrase is lower case; multi-word phrases are matched before
their parts ("dry river bed" is bare soil, not a river).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "TYPOS", "TARGET_SYNONYMS", "AREA_UNITS_M2", "REGION_PHRASES", "NUMBER_WORDS",
    "EXAMPLES", "SUPPORTED_SUMMARY",
]

#: Frequent misspellings -> the word meant (whole words only; applied before anything else is read).
TYPOS: Final[dict[str, str]] = {
    "teh": "the", "hte": "the", "watr": "water", "wter": "water", "warer": "water", "vegetaton": "vegetation",
    "vegitation": "vegetation", "vegatation": "vegetation", "forrest": "forest",
    "buidings": "buildings", "bulidings": "buildings", "lakse": "lakes", "rivres": "rivers", "wich": "which",
    "claud": "cloud", "clods": "clouds", "larget": "largest", "bigest": "biggest",
}

#: phrase -> canonical target (see spex.engine.request.TARGETS).
TARGET_SYNONYMS: Final[dict[str, str]] = {
    # bare first in spirit: "dry river bed" must win over "river"
    "dry river bed": "bare", "dry riverbed": "bare", "dried river bed": "bare", "dry river beds": "bare",
    "dry riverbeds": "bare", "exposed river bed": "bare", "dryout": "bare", "dry out": "bare",
    "bare soil": "bare", "bare soils": "bare", "bare ground": "bare", "bare land": "bare", "bareland": "bare",
    "bare": "bare", "soil": "bare", "soils": "bare", "sand": "bare", "sands": "bare", "sandy": "bare",
    "beach": "bare", "beaches": "bare", "dune": "bare", "dunes": "bare", "gravel": "bare",
    "rock": "bare", "rocks": "bare", "bare rock": "bare", "desert": "bare",
    "sparse vegetation": "grass", "grass": "grass", "grasses": "grass", "grassland": "grass",
    "grasslands": "grass", "meadow": "grass", "meadows": "grass", "shrub": "cleared", "shrubs": "cleared",
    "shrubland": "cleared", "scrub": "cleared", "bushes": "cleared", "pasture": "cleared", "pastures": "cleared",
    "cleared land": "cleared", "cleared": "cleared", "clearing": "cleared", "clearings": "cleared",
    "deforested land": "cleared", "deforested areas": "cleared", "deforestation": "cleared", "regrowth": "cleared",
    "fallow": "fallow", "fallow land": "fallow", "fallow fields": "fallow", "fallows": "fallow",
    "dry fields": "fallow", "dry field": "fallow", "bare fields": "fallow", "ploughed fields": "fallow",
    "plowed fields": "fallow", "harvested fields": "fallow", "dry land": "fallow",
    "lawn": "grass", "lawns": "grass", "rangeland": "grass", "savanna": "grass", "savannah": "grass",
    "water": "water", "waters": "water", "water body": "water", "water bodies": "water",
    "open water": "water", "surface water": "water", "lake": "water", "lakes": "water",
    "river": "water", "rivers": "water", "stream": "water", "streams": "water", "creek": "water",
    "creeks": "water", "canal": "water", "canals": "water", "pond": "water", "ponds": "water",
    "reservoir": "water", "reservoirs": "water", "sea": "water", "seas": "water", "ocean": "water",
    "oceans": "water", "lagoon": "water", "lagoons": "water", "bay": "water", "estuary": "water",
    "tree": "forest", "trees": "forest", "tree cover": "forest", "woods": "forest", "wood": "forest",
    "woodland": "forest", "woodlands": "forest", "forest": "forest", "forests": "forest",
    "forested": "forest", "canopy": "forest", "tree canopy": "forest", "jungle": "forest",
    "field": "cropland", "fields": "cropland", "crop": "cropland", "crops": "cropland",
    "cropland": "cropland", "croplands": "cropland", "farmland": "cropland", "farmlands": "cropland",
    "agriculture": "cropland", "agricultural land": "cropland", "agricultural": "cropland",
    "cultivated land": "cropland", "arable land": "cropland", "orchards": "cropland",
    "green": "vegetation", "greenery": "vegetation", "green areas": "vegetation", "plants": "vegetation",
    "vegetation": "vegetation", "vegetated": "vegetation", "green space": "vegetation",
    "green spaces": "vegetation", "plant cover": "vegetation",
    "buildings": "built", "building": "built", "urban": "built", "urban area": "built",
    "urban areas": "built", "city": "built", "cities": "built", "town": "built", "towns": "built",
    "road": "built", "roads": "built", "streets": "built", "impervious": "built",
    "impervious surfaces": "built", "settlement": "built", "settlements": "built", "village": "built",
    "villages": "built", "built-up": "built", "built up": "built", "builtup": "built", "built": "built",
    "houses": "built", "house": "built", "roofs": "built", "rooftops": "built", "pavement": "built",
    "parking lots": "built", "industrial": "built", "artificial surfaces": "built",
    "marsh": "wetland", "marshes": "wetland", "marshland": "wetland", "salt marsh": "wetland",
    "swamp": "wetland", "swamps": "wetland", "wetland": "wetland", "wetlands": "wetland",
    "bog": "wetland", "bogs": "wetland", "fen": "wetland", "mangrove": "wetland", "mangroves": "wetland",
    "cloud": "cloud", "clouds": "cloud", "cloudy": "cloud", "cloud cover": "cloud",
    "cloud shadow": "shadow", "cloud shadows": "shadow", "shadow": "shadow", "shadows": "shadow",
    "shaded by clouds": "shadow", "cloud-shadowed areas": "shadow",
    "haze": "haze", "hazy": "haze", "thin cloud": "haze", "thin clouds": "haze", "thin cirrus": "haze",
    "cirrus": "haze", "hazy areas": "haze",
    "snow": "snow", "ice": "snow", "glacier": "snow", "glaciers": "snow", "snow cover": "snow",
    "snowfield": "snow", "snowfields": "snow", "sea ice": "snow",
}

#: unit spelling -> square metres per unit ("px" handled separately: needs the scene).
AREA_UNITS_M2: Final[dict[str, float]] = {
    "km2": 1e6, "sq km": 1e6, "square kilometers": 1e6, "square kilometres": 1e6,
    "square kilometer": 1e6, "square kilometre": 1e6, "sqkm": 1e6,
    "ha": 1e4, "hectare": 1e4, "hectares": 1e4,
    "m2": 1.0, "sq m": 1.0, "square meters": 1.0, "square metres": 1.0, "square meter": 1.0,
    "square metre": 1.0, "sqm": 1.0,
    "acre": 4046.8564224, "acres": 4046.8564224, "ac": 4046.8564224,
}

#: regex (on normalised text) -> canonical region. Corners are tried before halves.
REGION_PHRASES: Final[tuple[tuple[str, str], ...]] = (
    (r"(?:top|upper|north)[- ]?(?:left|west(?:ern)?)", "top-left"),
    (r"north[- ]?west(?:ern)?", "top-left"),
    (r"(?:top|upper|north)[- ]?(?:right|east(?:ern)?)", "top-right"),
    (r"north[- ]?east(?:ern)?", "top-right"),
    (r"(?:bottom|lower|south)[- ]?(?:left|west(?:ern)?)", "bottom-left"),
    (r"south[- ]?west(?:ern)?", "bottom-left"),
    (r"(?:bottom|lower|south)[- ]?(?:right|east(?:ern)?)", "bottom-right"),
    (r"south[- ]?east(?:ern)?", "bottom-right"),
    (r"cent(?:er|re)|central|middle", "center"),
    (r"north(?:ern)?|top|upper", "north"),
    (r"south(?:ern)?|bottom|lower", "south"),
    (r"east(?:ern)?|right", "east"),
    (r"west(?:ern)?|left", "west"),
)

NUMBER_WORDS: Final[dict[str, int]] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "fifty": 50, "hundred": 100, "thousand": 1000, "a couple of": 2, "a couple": 2, "a pair of": 2,
    "a dozen": 12, "dozen": 12,
}

EXAMPLES: Final[tuple[str, ...]] = (
    "extract the water bodies",
    "only keep the lakes larger than 2 ha",
    "the 3 largest forests in the north",
    "buildings, excluding clouds, smaller than 0.5 km²",
    "be stricter / looser, fill the holes, smooth the edges",
    "remove the ones touching the border",
    "also add wetlands / now the vegetation instead / remove the size filter",
    "undo, redo, start over, show false colour",
    "how many? / what is the largest one? / how much area in total? / why?",
    "vegetation with NDVI above 0.6 / MNDWI > 0.3 / NDVI between 0.3 and 0.5",
    "water but not the sea / only the rivers / the lake in the north / the largest lake",
    "which class covers most of the scene? / how much is vegetation vs water?",
)

SUPPORTED_SUMMARY: Final[tuple[str, ...]] = (
    "classes: water, wetland, vegetation, forest, grass, cropland, built, bare, cloud, cloud shadow, haze, snow, cleared land, fallow "
    "(synonyms such as lakes, trees, fields, buildings, sand, marsh, glacier)",
    "size: larger/smaller than N m², ha, km², acres or pixels; between A and B ha",
    "count: the largest, the N largest, top N",
    "place: in the north/south/east/west, top-left ... bottom-right, in the center",
    "exclusion: without X, except X, exclude X",
    "threshold: stricter, looser, or your own value (NDVI above 0.6, MNDWI > 0.3, NDVI between 0.3 and 0.5); "
    "shape: fill the holes, smooth the edges, drop border-touching regions",
    "parts of the water (by region shape, size, border contact): the sea, rivers, lakes; not the sea, only the rivers",
    "dialogue: also add X, X instead, remove the size/place/count filter, undo, redo, start over",
    "questions: how many, largest, smallest, total area, list, where, why/evidence; which class covers most, "
    "X vs Y (measured on the scene); display: false/true colour; help",
)
