"""The result of one extraction: mask, regions and the spectral evidence behind them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spex.engine.request import ExtractionRequest
from spex.spie.regions import RegionAttributes

__all__ = ["ClassEvidence", "Extraction"]


@dataclass(frozen=True)
class ClassEvidence:
    """Why pixels of one target class were selected (all numbers measured).

    ``mean_inside``/``mean_outside`` are the index means over selected / valid
    unselected pixels of the final mask; ``threshold_method`` says how the threshold
    was found ("otsu", "otsu-clamped", "fallback", "model").
    """

    target: str
    index: str
    formula: str
    bands: tuple[str, ...]
    threshold: float
    threshold_method: str
    direction: str  # ">" or "<": selected where index <direction> threshold
    mean_inside: float
    mean_outside: float
    pixels: int
    extra_tests: tuple[str, ...] = ()
    #: thresholds the user stated for this class, as applied (spex.engine.limits.AppliedLimit.describe)
    user_tests: tuple[str, ...] = ()


@dataclass
class Extraction:
    """A mask and everything needed to explain and export it.

    mask: bool (H, W), True = selected; never True on invalid pixels.
    labels: int32 (H, W) connected-region labels of ``mask`` (0 = background),
    numbered so that ``regions[i].label`` indexes into it.
    class_map: uint8 (H, W) for results of several classes: 0 = not selected, k = ``request.targets[k - 1]``
    (None for one class: every selected pixel is that class); see :mod:`spex.engine.classes`.
    """

    request: ExtractionRequest
    mask: np.ndarray
    labels: np.ndarray
    regions: list[RegionAttributes]
    evidence: list[ClassEvidence]
    caveats: list[str] = field(default_factory=list)
    backend: str = "spectral engine"
    valid_pixels: int = 0
    pixel_area_m2: float = 1.0
    class_map: np.ndarray | None = None

    @property
    def selected_pixels(self) -> int:
        return int(self.mask.sum())

    @property
    def total_area_m2(self) -> float:
        return self.selected_pixels * self.pixel_area_m2

    @property
    def fraction_of_valid(self) -> float:
        return self.selected_pixels / self.valid_pixels if self.valid_pixels else 0.0
