"""Scene-wide class shares ("which class covers most of the scene?", "how much is vegetation vs water?").

Answered by measuring, never from a prior: each class is extracted with the engine's own rules at the
default threshold (exactly what "extract the <class>" gives) and its selected pixels are counted
against the valid pixels. Classes can overlap (forest, grassland and cropland are parts of
vegetation; a pixel can pass two rules), so shares need not add up to 100 %; the pixels no class
claims are counted too. Classes the scene's bands cannot support are listed with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from spex.engine.extract import extract
from spex.engine.request import TARGETS, ExtractionRequest
from spex.errors import BandError
from spex.io import Scene
from spex.spectral import IndexCache

__all__ = ["TOP_LEVEL_CLASSES", "SUBCLASS_OF", "ClassShare", "ShareTable", "class_shares"]

#: Classes that (by their rules) exclude each other: the candidates for "which class covers most".
TOP_LEVEL_CLASSES: Final[tuple[str, ...]] = ("water", "wetland", "vegetation", "built", "bare", "snow", "cloud", "shadow")
#: Subclasses and the class they are part of.
SUBCLASS_OF: Final[dict[str, str]] = {"forest": "vegetation", "grass": "vegetation", "cropland": "vegetation",
                                      "cleared": "vegetation"}


@dataclass(frozen=True)
class ClassShare:
    """One class measured on the whole scene."""

    target: str
    pixels: int
    area_m2: float
    share: float         # of the valid pixels, 0..1
    regions: int


@dataclass(frozen=True)
class ShareTable:
    """Measured shares of the asked classes, largest first, and what could not be measured."""

    rows: tuple[ClassShare, ...]
    valid_pixels: int
    unclaimed_pixels: int                   # valid pixels no measured class selected
    skipped: tuple[tuple[str, str], ...]    # (class, reason)
    pixel_area_m2: float
    asked: tuple[str, ...]

    @property
    def largest(self) -> ClassShare | None:
        """The class with the most pixels among the non-overlapping (top-level) rows, else among all."""
        top = [r for r in self.rows if r.target not in SUBCLASS_OF] or list(self.rows)
        return max(top, key=lambda r: r.pixels) if top else None


def class_shares(scene: Scene, classes: Sequence[str] = (), cache: IndexCache | None = None) -> ShareTable:
    """Extract each class (default: :data:`TOP_LEVEL_CLASSES`) and measure its share of the valid scene.

    Raises:
        ValueError: an unknown class name.
    """
    asked = tuple(dict.fromkeys(classes)) or TOP_LEVEL_CLASSES
    unknown = [c for c in asked if c not in TARGETS]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown}; supported: {', '.join(TARGETS)}")
    cache = cache if cache is not None else IndexCache(scene)
    claimed: np.ndarray | None = None
    rows: list[ClassShare] = []
    skipped: list[tuple[str, str]] = []
    valid_pixels = 0
    for target in asked:
        try:
            ex = extract(scene, ExtractionRequest(targets=(target,)), cache)
        except BandError as exc:
            skipped.append((target, str(exc)))
            continue
        valid_pixels = ex.valid_pixels
        claimed = ex.mask.copy() if claimed is None else claimed | ex.mask
        rows.append(ClassShare(target, ex.selected_pixels, ex.total_area_m2, ex.fraction_of_valid, len(ex.regions)))
    rows.sort(key=lambda r: -r.pixels)
    unclaimed = valid_pixels - (int(claimed.sum()) if claimed is not None else 0)
    return ShareTable(tuple(rows), valid_pixels, unclaimed, tuple(skipped), float(scene.pixel_area_m2), asked)
