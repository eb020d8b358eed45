"""Named parts of the water class (sea, rivers, lakes) told apart by region shape, size and border contact.

Why rules on shape: a spectral index cannot tell the sea from a lake, both are open water; what
differs is the geometry of the connected region. Every rule here is stated to the user in words
(:data:`PART_RULES`), so "water but not the sea" says exactly what was removed and why.

- river-shaped: ``pixels / width² >= RIVER_MIN_ELONGATION``, at least ``RIVER_MIN_LENGTH_PX`` long and
  at most ``RIVER_MAX_WIDTH_M`` wide, where width = the widest inscribed width (2 x max distance to the
  region edge - 1 px): a channel of length L and width W scores ~L/W, a round lake ~0.8, a square 1.
  The width cap matters because a scene crops the sea too: a coastal strip cut by the frame is
  elongated but kilometres wide, while rivers (even with confluences) are rarely over 1 km.
- sea: touches the image edge or the edge of the valid data, is not river-shaped, and covers at
  least ``SEA_MIN_AREA_M2`` (``SEA_MIN_SCENE_FRACTION`` of the valid pixels when the scene is not
  georeferenced): a lake cut by the frame is usually smaller; a river reaching the frame is thin.
- lake: every other water region (ponds included; a reservoir is asked for as water: dammed valleys
  are dendritic and often cut by the frame, so shape cannot name them).

Regions are 8-connected, as in :mod:`spex.engine.postprocess`; a river that flows into the sea is
one connected body with it and counts as sea.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy import ndimage

from spex.errors import SpexError
from spex.units import format_area

__all__ = ["RIVER_MIN_ELONGATION", "RIVER_MIN_LENGTH_PX", "RIVER_MAX_WIDTH_M", "SEA_MIN_AREA_M2",
           "SEA_MIN_SCENE_FRACTION",
           "PART_RULES", "PartNotFound", "RegionParts", "classify_regions", "select_parts"]

#: A region at least this many times longer than wide (pixels / width²) is river-shaped.
RIVER_MIN_ELONGATION: Final[float] = 4.0
#: ... and at least this long (pixels / width), so that 3-pixel speckles are not rivers.
RIVER_MIN_LENGTH_PX: Final[float] = 10.0
#: ... and at most this wide at the widest point (georeferenced scenes): wider elongated water is sea/estuary.
RIVER_MAX_WIDTH_M: Final[float] = 1000.0
#: The sea: a border-touching, non-river water region of at least this area.
SEA_MIN_AREA_M2: Final[float] = 1e6
#: Without georeference: at least this share of the valid pixels instead.
SEA_MIN_SCENE_FRACTION: Final[float] = 0.01

PART_RULES: Final[dict[str, str]] = {
    "sea": ("sea = water regions that touch the edge of the image or of the valid data, are not river-shaped "
            "and cover at least 1 km² (1 % of the scene when it is not georeferenced)"),
    "rivers": (f"rivers = river-shaped water regions: at least {RIVER_MIN_ELONGATION:g} times longer than their "
               f"widest width, at most {RIVER_MAX_WIDTH_M / 1000:g} km wide (georeferenced scenes) and at least "
               f"{RIVER_MIN_LENGTH_PX:g} px long"),
    "lakes": "lakes = water regions that are neither sea nor river-shaped (ponds included)",
}

_EIGHT: Final[np.ndarray] = np.ones((3, 3), dtype=bool)


class PartNotFound(SpexError):
    """The named part (sea, rivers, lakes) does not occur in this scene; the message says why."""


@dataclass(frozen=True)
class RegionParts:
    """Part of each connected region of a water mask (index = label; entry 0 unused)."""

    labels: np.ndarray          # int32 (H, W), 8-connected, 0 = background
    kind: np.ndarray            # object array of "sea" | "rivers" | "lakes" per label
    pixels: np.ndarray          # int64 per label
    elongation: np.ndarray      # float per label
    touches_edge: np.ndarray    # bool per label

    @property
    def count(self) -> int:
        return int(self.pixels.size - 1)


def classify_regions(mask: np.ndarray, valid: np.ndarray, *, pixel_area_m2: float,
                     georeferenced: bool) -> RegionParts:
    """Label ``mask`` and name each region sea, rivers or lakes by the rules in :data:`PART_RULES`."""
    mask = np.asarray(mask, dtype=bool)
    labels, n = ndimage.label(mask, structure=_EIGHT)
    labels = labels.astype(np.int32, copy=False)
    index = np.arange(1, n + 1)
    pixels = np.bincount(labels.ravel(), minlength=n + 1).astype(np.int64)
    if n == 0:
        empty = np.zeros(1)
        return RegionParts(labels, np.array([""], dtype=object), pixels, empty, np.zeros(1, dtype=bool))
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]  # the frame counts as an edge
    widest = np.ones(n + 1)
    widest[1:] = np.maximum(2.0 * np.asarray(ndimage.maximum(depth, labels, index)) - 1.0, 1.0)
    elongation = pixels / widest ** 2
    length = pixels / widest
    edge = np.zeros(n + 1, dtype=bool)
    edge[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    if not valid.all():
        edge[labels[ndimage.binary_dilation(~valid, _EIGHT)]] = True
    edge[0] = False
    river = (elongation >= RIVER_MIN_ELONGATION) & (length >= RIVER_MIN_LENGTH_PX)
    if georeferenced:
        river &= widest * np.sqrt(pixel_area_m2) <= RIVER_MAX_WIDTH_M
    if georeferenced:
        big = pixels * pixel_area_m2 >= SEA_MIN_AREA_M2
    else:
        big = pixels >= SEA_MIN_SCENE_FRACTION * max(int(valid.sum()), 1)
    sea = edge & ~river & big
    kind = np.where(sea, "sea", np.where(river, "rivers", "lakes")).astype(object)
    kind[0] = ""
    return RegionParts(labels, kind, pixels, elongation, edge)


def select_parts(mask: np.ndarray, valid: np.ndarray, *, keep: tuple[str, ...] = (), drop: tuple[str, ...] = (),
                 pixel_area_m2: float, georeferenced: bool) -> tuple[np.ndarray, list[str]]:
    """The water pixels of the parts asked for, and sentences stating the rule and what it found.

    Args:
        mask: bool water mask (valid, allowed pixels only).
        keep: parts to keep (empty = all parts); drop: parts to remove.

    Raises:
        PartNotFound: a part to keep or drop does not occur; the message says which rule failed.
    """
    parts = classify_regions(mask, valid, pixel_area_m2=pixel_area_m2, georeferenced=georeferenced)
    found = {name: np.flatnonzero(parts.kind == name) for name in ("sea", "rivers", "lakes")}
    for name in (*keep, *drop):
        if found[name].size == 0:
            raise PartNotFound(_why_missing(name, parts, pixel_area_m2, georeferenced))
    wanted = np.zeros(parts.count + 1, dtype=bool)
    for name in keep or ("sea", "rivers", "lakes"):
        wanted[found[name]] = True
    for name in drop:
        wanted[found[name]] = False
    out = wanted[parts.labels] & mask
    notes = []
    for name in dict.fromkeys((*keep, *drop)):
        area = format_area(float(parts.pixels[found[name]].sum()) * pixel_area_m2, georeferenced)
        verb = "removed" if name in drop else "kept"
        notes.append(f"Part rule, {PART_RULES[name]}: {found[name].size} region(s), {area}, {verb}.")
    if "sea" in drop or "rivers" in keep:
        notes.append("A river that flows into the sea is one connected water body with it and counts as sea.")
    return out, notes


def _why_missing(name: str, parts: RegionParts, pixel_area_m2: float, georeferenced: bool) -> str:
    n = parts.count
    if n == 0:
        return f"There is no water in this scene, so I found no {_singular(name)}."
    if name == "sea":
        touching = int(parts.touches_edge[1:].sum())
        if touching == 0:
            return ("No water region touches the border of the image or of the valid data, so I found no sea "
                    f"({PART_RULES['sea']}). Ask for 'water' or 'the lakes' instead.")
        largest = format_area(float(parts.pixels[1:][parts.touches_edge[1:]].max()) * pixel_area_m2, georeferenced)
        return (f"{touching} water region(s) touch the border, but none is the sea: they are river-shaped or "
                f"smaller than the limit (largest {largest}); {PART_RULES['sea']}.")
    if name == "rivers":
        best = float(parts.elongation[1:].max())
        return (f"None of the {n} water regions is river-shaped ({PART_RULES['rivers']}; the most elongated is "
                f"{best:.1f} times longer than wide), so I found no rivers.")
    return f"All {n} water regions are sea or river-shaped, so I found no lakes ({PART_RULES['lakes']})."


def _singular(name: str) -> str:
    return {"sea": "sea", "rivers": "river", "lakes": "lake"}[name]
