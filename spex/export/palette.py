"""Display colours shared by the overlay PNG and the map, so both number regions alike.

Region #1 is the largest (``extraction.regions`` is sorted by area); the ``top_n``
largest regions get distinct colours, every other region the colour of its class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

__all__ = ["CLASS_COLOURS", "REGION_PALETTE", "class_colour", "class_colour_table", "hex_colour", "region_colour_table"]

#: One colour per target class, chosen to stay visible on both true- and false-colour previews.
CLASS_COLOURS: Final[dict[str, tuple[int, int, int]]] = {
    "water": (0, 200, 255),
    "wetland": (0, 230, 190),
    "vegetation": (150, 255, 40),
    "forest": (40, 220, 90),
    "grass": (210, 255, 90),
    "cropland": (255, 215, 0),
    "built": (255, 70, 40),
    "bare": (230, 170, 100),
    "cloud": (255, 255, 255),
    "snow": (200, 240, 255),
    "shadow": (90, 60, 160),
    "haze": (200, 200, 230),
    "cleared": (240, 200, 60),
    "fallow": (190, 120, 60),
}

#: Distinct colours for the largest regions (Trubetskoy's "20 distinct colours", reordered
#: so that neighbours in rank order contrast strongly).
REGION_PALETTE: Final[tuple[tuple[int, int, int], ...]] = (
    (230, 25, 75), (255, 225, 25), (67, 99, 216), (245, 130, 49), (145, 30, 180),
    (66, 212, 244), (240, 50, 230), (191, 239, 69), (250, 190, 212), (70, 153, 144),
    (220, 190, 255), (154, 99, 36), (255, 250, 200), (128, 0, 0), (170, 255, 195),
    (128, 128, 0), (255, 216, 177), (0, 0, 117), (169, 169, 169), (60, 180, 75),
)

_DEFAULT_CLASS_COLOUR: Final[tuple[int, int, int]] = (0, 255, 255)


def class_colour(targets: Sequence[str]) -> tuple[int, int, int]:
    """Colour of a request's (first) target class."""
    return CLASS_COLOURS.get(targets[0], _DEFAULT_CLASS_COLOUR) if targets else _DEFAULT_CLASS_COLOUR


def class_colour_table(targets: Sequence[str]) -> np.ndarray:
    """Lookup table class-map value -> RGB (uint8, shape (len(targets) + 1, 3)): row k = ``targets[k - 1]``.

    Used for merged results (several classes), where colour tells the classes apart instead of the rank.
    """
    table = np.zeros((len(targets) + 1, 3), dtype=np.uint8)
    for k, target in enumerate(targets, start=1):
        table[k] = CLASS_COLOURS.get(target, _DEFAULT_CLASS_COLOUR)
    return table


def hex_colour(rgb: Sequence[int]) -> str:
    """'#rrggbb' for an RGB triple (for Leaflet styles)."""
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb[:3]))


def region_colour_table(labels_in_rank_order: Sequence[int], max_label: int, *,
                        targets: Sequence[str], top_n: int) -> np.ndarray:
    """Lookup table label -> RGB (uint8, shape (max_label + 1, 3)); row 0 is unused.

    The first ``top_n`` labels (largest regions) get palette colours, the rest the class colour.
    ``top_n = 0`` colours every region with the class colour.
    """
    table = np.zeros((max_label + 1, 3), dtype=np.uint8)
    table[1:] = class_colour(targets)
    for rank, label in enumerate(labels_in_rank_order[:top_n]):
        if 0 < label <= max_label:
            table[label] = REGION_PALETTE[rank % len(REGION_PALETTE)]
    return table
