"""Which class each selected pixel and region belongs to, for results that merge several classes.

Why: after "also add bare soil" the result holds two classes; to colour, label and total them apart,
every selected pixel needs its class, and every region one class. :func:`postprocess_classes` therefore
post-processes each class on its own (a pixel claimed by several rules goes to the class asked for
first): a size filter or "the 3 largest" applies to each class's regions, as the carry-over note
"kept for all classes" says, and a bare patch touching a lake stays its own region instead of being
swallowed by it. :func:`build_class_map` is the fallback for masks made otherwise (majority class).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spex.engine.postprocess import postprocess, relabel_by_size
from spex.io.scratch import release_rows, row_blocks, scratch_zeros
from spex.engine.request import TARGET_LABELS, ExtractionRequest
from spex.engine.result import Extraction

__all__ = ["ClassTotal", "build_class_map", "class_totals", "postprocess_classes", "region_classes"]


@dataclass(frozen=True)
class ClassTotal:
    """Measured totals of one class in a merged result."""

    target: str
    pixels: int
    area_m2: float
    regions: int
    share_of_valid: float


def postprocess_classes(class_masks: Sequence[tuple[str, np.ndarray]], request: ExtractionRequest, *,
                        allowed: np.ndarray, valid: np.ndarray, pixel_area_m2: float
                        ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, list[str]]:
    """Post-process each class separately and join them.

    Args:
        class_masks: (target, mask) in request order; earlier classes win shared pixels.

    Returns:
        (mask, labels numbered largest first over all classes, region count, uint8 class map
        (k = class_masks[k - 1]), post-processing steps prefixed with the class).
    """
    if len(class_masks) > 254:
        raise ValueError("at most 254 classes fit a uint8 class map")
    shape = allowed.shape
    taken = np.zeros(shape, dtype=bool)
    raw_any = np.zeros(shape, dtype=bool)
    for _, m in class_masks:
        raw_any |= m
    joined = scratch_zeros(shape, np.int32)  # renumbered in place below: no second label image
    class_map = np.zeros(shape, dtype=np.uint8)
    steps: list[str] = []
    offset = 0
    for k, (target, m) in enumerate(class_masks, start=1):
        own = m & ~taken
        others = raw_any & ~m  # hole filling / smoothing may not claim another class's pixels
        out, labels, n, report = postprocess(own, request, allowed=allowed & ~taken & ~others, valid=valid,
                                             pixel_area_m2=pixel_area_m2)
        steps.extend(f"{TARGET_LABELS.get(target, target)}: {step}" for step in report.steps)
        for r0, block in row_blocks(joined):  # file-backed on large scenes (spex.io.scratch)
            inside = out[r0:r0 + block.shape[0]]
            block[inside] = labels[r0:r0 + block.shape[0]][inside].astype(np.int32) + offset  # may be uint16
            release_rows(labels, r0, r0 + block.shape[0])
        del labels
        class_map[out] = k
        taken |= out | m
        offset += n
    labels, n = relabel_by_size(joined, in_place=True)
    mask = np.empty(shape, dtype=bool)
    for r0, block in row_blocks(labels):
        np.greater(block, 0, out=mask[r0:r0 + block.shape[0]])
    return mask, labels, n, class_map, steps


def build_class_map(mask: np.ndarray, labels: np.ndarray, class_masks: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 (H, W): 0 = not selected, k = class ``k - 1`` of ``class_masks`` (first listed wins)."""
    if len(class_masks) > 254:
        raise ValueError("at most 254 classes fit a uint8 class map")
    out = np.zeros(mask.shape, dtype=np.uint8)
    for k in range(len(class_masks), 0, -1):
        out[class_masks[k - 1] & mask] = k
    orphan = mask & (out == 0)
    if orphan.any():
        majority = _majority(labels, out, len(class_masks))
        out[orphan] = majority[labels[orphan]]
    return out


def _majority(labels: np.ndarray, cmap: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority class (1-based) of each label; 1 where a label has no classed pixel."""
    n = int(labels.max(initial=0))
    sel = (labels > 0) & (cmap > 0)
    key = labels[sel].astype(np.int64) * (n_classes + 1) + cmap[sel]
    counts = np.bincount(key, minlength=(n + 1) * (n_classes + 1)).reshape(n + 1, n_classes + 1)
    counts[:, 0] = 0
    majority = np.argmax(counts, axis=1).astype(np.uint8)
    majority[majority == 0] = 1
    return majority


def region_classes(extraction: Extraction) -> dict[int, str]:
    """Label -> class of every region (the only class for single-class results; {} when unknown)."""
    targets = extraction.request.targets
    if len(targets) == 1:
        return {r.label: targets[0] for r in extraction.regions}
    if extraction.class_map is None:
        return {}
    majority = _majority(extraction.labels, extraction.class_map, len(targets))
    return {r.label: targets[int(majority[r.label]) - 1] for r in extraction.regions if r.label < majority.size}


def class_totals(extraction: Extraction) -> list[ClassTotal]:
    """Pixels, area, regions and share of the valid scene per requested class (request order)."""
    targets = extraction.request.targets
    per_region = region_classes(extraction)
    valid = max(extraction.valid_pixels, 1)
    if len(targets) == 1 or extraction.class_map is None:
        if len(targets) != 1:
            return []
        px = extraction.selected_pixels
        return [ClassTotal(targets[0], px, px * extraction.pixel_area_m2, len(extraction.regions), px / valid)]
    counts = np.bincount(extraction.class_map.ravel(), minlength=len(targets) + 1)
    out = []
    for k, target in enumerate(targets, start=1):
        px = int(counts[k])
        regions = sum(1 for t in per_region.values() if t == target)
        out.append(ClassTotal(target, px, px * extraction.pixel_area_m2, regions, px / valid))
    return out
