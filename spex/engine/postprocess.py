"""Mask post-processing: morphology, hole filling, speckle/area/region/border/count filters.

All steps are array operations (scipy.ndimage, numpy bincount); no pixel loops.
Mask polarity: True = selected. ``valid`` pixels are the only ones that may ever be
selected: every step that can grow the mask (closing, hole filling) is followed by
``& allowed``, where ``allowed`` = valid and not an excluded class.

Order of operations (each one documented in the reply when it changed something):

1. smoothing (if asked): binary opening then closing with a 3x3 cross — removes
   one-pixel spurs and notches, so features only one pixel wide disappear;
2. hole filling (if asked): background fully enclosed by a region becomes part of it;
3. speckle filter (always): regions smaller than ``MIN_REGION_PIXELS`` are dropped —
   isolated pixels at a threshold edge are noise, not objects;
4. region filters on connected regions (8-connectivity): min/max area, image part
   (**a region is kept when its centroid lies in the part**; regions are never cut),
   border (regions touching the image edge or the edge of the valid footprint);
5. keep the N largest of what remains.

Labels are renumbered so that region 1 is the largest (ties: lower original label).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from spex.engine.request import ExtractionRequest
from spex.io.scratch import release_rows, row_blocks, scratch_zeros, value_range

__all__ = ["MIN_REGION_PIXELS", "REGION_BOXES", "PostprocessReport", "postprocess", "relabel_by_size",
           "region_box"]

#: Default speckle filter: connected regions with fewer pixels are removed.
MIN_REGION_PIXELS: Final[int] = 3

#: Image parts as normalised (x0, y0, x1, y1), x = column / width, y = row / height; half-open.
REGION_BOXES: Final[dict[str, tuple[float, float, float, float]]] = {
    "north": (0.0, 0.0, 1.0, 0.5), "south": (0.0, 0.5, 1.0, 1.0),
    "west": (0.0, 0.0, 0.5, 1.0), "east": (0.5, 0.0, 1.0, 1.0),
    "top-left": (0.0, 0.0, 0.5, 0.5), "top-right": (0.5, 0.0, 1.0, 0.5),
    "bottom-left": (0.0, 0.5, 0.5, 1.0), "bottom-right": (0.5, 0.5, 1.0, 1.0),
    "center": (0.25, 0.25, 0.75, 0.75),
}

_EIGHT: Final[np.ndarray] = np.ones((3, 3), dtype=bool)
#: Rows of about this many pixels are labelled at a time (:func:`_label`): ~5 bytes/pixel of working memory.
_LABEL_STRIP_PIXELS: Final[int] = 1 << 22
_CROSS: Final[np.ndarray] = ndimage.generate_binary_structure(2, 1)


def region_box(region: str) -> tuple[float, float, float, float]:
    """Normalised box of an image part (see REGION_BOXES)."""
    try:
        return REGION_BOXES[region]
    except KeyError:
        raise ValueError(f"unknown region {region!r}; supported: {', '.join(REGION_BOXES)}") from None


@dataclass
class PostprocessReport:
    """What each step removed or added (pixels / regions), for the explanation."""

    steps: list[str] = field(default_factory=list)
    regions_before_filters: int = 0

    def add(self, text: str) -> None:
        self.steps.append(text)


def relabel_by_size(labels: np.ndarray, keep: np.ndarray | None = None, *,
                    in_place: bool = False) -> tuple[np.ndarray, int]:
    """Renumber ``labels`` (0 = background) so 1 is the largest region; optionally keep a subset.

    Args:
        labels: int label image.
        keep: optional bool array indexed by old label (index 0 ignored).
        in_place: renumber a writeable uint16 or int32 ``labels`` itself, row block by row block (no
            second label image: 400 MB at 10240²).

    Returns:
        (labels: int32, or ``labels`` itself in place, number of regions).
    """
    n_old = value_range(labels)[1]  # in row blocks: file-backed labels stay one block resident
    if n_old == 0:
        return scratch_zeros(labels.shape, np.int32), 0
    counts = _label_counts(labels, n_old)
    present = counts > 0
    present[0] = False
    if keep is not None:
        present &= keep
    old = np.flatnonzero(present)
    order = old[np.lexsort((old, -counts[old]))]
    lut = np.zeros(n_old + 1, dtype=np.int32)
    lut[order] = np.arange(1, order.size + 1, dtype=np.int32)
    if not (in_place and labels.dtype in (np.uint16, np.int32) and labels.flags.writeable and labels.ndim == 2):
        return lut[labels], int(order.size)
    _renumber_in_place(labels, lut.astype(labels.dtype))  # the new numbers are at most the old ones: they fit
    return labels, int(order.size)


def _renumber_in_place(labels: np.ndarray, lut: np.ndarray) -> None:
    """``labels[:] = lut[labels]`` in row blocks (no second full-size label image)."""
    for _, block in row_blocks(labels):
        block[...] = lut[block]


def _label_counts(labels: np.ndarray, n: int) -> np.ndarray:
    """Pixel count of labels 0..n (int64), accumulated in row blocks: ``np.bincount`` casts
    its input to int64, so one call on the whole int32 image would copy it at 8 bytes/pixel."""
    counts = np.zeros(n + 1, dtype=np.int64)
    if labels.ndim != 2:
        return np.bincount(labels.ravel(), minlength=n + 1)
    for _, block in row_blocks(labels):
        counts += np.bincount(block.ravel(), minlength=n + 1)
    return counts


def _centroids(labels: np.ndarray, n: int, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised centroids (x = col/width, y = row/height) of labels 0..n, accumulated in row blocks
    so that no full-size coordinate array is ever built."""
    h, w = labels.shape
    sum_r = np.zeros(n + 1, dtype=np.float64)
    sum_c = np.zeros(n + 1, dtype=np.float64)
    cols = np.arange(w, dtype=np.float64)
    for r0, block in row_blocks(labels):
        rows = np.arange(r0, r0 + block.shape[0], dtype=np.float64)
        sum_r += np.bincount(block.ravel(), weights=np.repeat(rows, w), minlength=n + 1)
        sum_c += np.bincount(block.ravel(), weights=np.tile(cols, block.shape[0]), minlength=n + 1)
    safe = np.maximum(counts, 1)
    return (sum_c / safe + 0.5) / w, (sum_r / safe + 0.5) / h


def _label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected labels numbered like ``ndimage.label`` (raster order of each region's first pixel).

    Labelled in strips of rows joined across the seams (union-find over the pairs of labels that touch
    there): ``ndimage.label`` on a whole scene needs ~5 bytes/pixel of working memory (500 MB at
    10240²). uint16 while the regions fit (2 bytes/pixel, not 4), else int32.
    """
    for dtype in (np.uint16, np.int32):
        try:
            return _label_strips(mask, dtype)
        except OverflowError:
            continue
    raise AssertionError("unreachable")  # int32 holds more labels than a raster has pixels / 2


def _label_strips(mask: np.ndarray, dtype: type) -> tuple[np.ndarray, int]:
    h, w = mask.shape
    out = scratch_zeros((h, w), dtype)  # file-backed on large scenes (spex.io.scratch): one strip resident
    top = int(np.iinfo(dtype).max)
    step = max(1, _LABEL_STRIP_PIXELS // max(w, 1))
    offset = 0
    for r0 in range(0, h, step):
        part = out[r0:r0 + step]
        try:
            n = ndimage.label(mask[r0:r0 + step], structure=_EIGHT, output=part)
        except RuntimeError:  # more regions in this strip than dtype holds
            raise OverflowError from None
        if offset + n > top:
            raise OverflowError
        if offset:
            np.add(part, dtype(offset), out=part, where=part > 0)
        offset += n
        release_rows(out, r0, r0 + step)
    if h <= step or offset == 0:
        return out, offset
    a, b = [], []
    for r in range(step, h, step):  # 8-connected pairs across the seam above row r
        up, down = out[r - 1], out[r]
        for shift in (-1, 0, 1):
            u = up[max(0, -shift):w - max(0, shift)]
            d = down[max(0, shift):w - max(0, -shift)]
            both = (u > 0) & (d > 0)
            a.append(u[both])
            b.append(d[both])
    first, second = np.concatenate(a).astype(np.int64), np.concatenate(b).astype(np.int64)
    graph = sparse.coo_matrix((np.ones(first.size, dtype=np.int8), (first, second)), shape=(offset + 1, offset + 1))
    n_comp, comp = csgraph.connected_components(graph, directed=False)
    lowest = np.full(n_comp, offset + 1, dtype=np.int64)  # a region's number: its lowest strip label
    np.minimum.at(lowest, comp[1:], np.arange(1, offset + 1))
    used = np.unique(comp[1:])
    order = used[np.argsort(lowest[used], kind="stable")]
    rank = np.zeros(n_comp, dtype=np.int64)
    rank[order] = np.arange(1, order.size + 1)
    lut = np.zeros(offset + 1, dtype=dtype)
    lut[1:] = rank[comp[1:]]
    _renumber_in_place(out, lut)
    return out, int(order.size)


def postprocess(mask: np.ndarray, request: ExtractionRequest, *, allowed: np.ndarray, pixel_area_m2: float,
                valid: np.ndarray | None = None, min_region_pixels: int = MIN_REGION_PIXELS,
                in_place: bool = False) -> tuple[np.ndarray, np.ndarray, int, PostprocessReport]:
    """Apply the request's shape and region filters to a class mask.

    Args:
        mask: bool (H, W) class mask, True = selected.
        request: supplies smooth, fill_holes, min/max area, region, drop_border, keep_largest.
        allowed: bool (H, W); pixels that may be selected (valid and not excluded).
        pixel_area_m2: ground area of one pixel, converts area limits to pixel counts.
        valid: bool (H, W) valid-data footprint for the border test (default: ``allowed``);
            a region next to invalid pixels touches the edge of the data.
        min_region_pixels: speckle filter size (regions below it are removed).
        in_place: ``mask`` (bool) is the caller's to overwrite: it is cut to ``allowed`` and becomes the
            returned mask where no smoothing or hole filling makes a new one (no full-scene copy).

    Returns:
        (mask, labels, n_regions, report) with labels numbered largest first.
    """
    if mask.shape != allowed.shape:
        raise ValueError(f"mask shape {mask.shape} != allowed shape {allowed.shape}")
    if not pixel_area_m2 > 0:
        raise ValueError(f"pixel_area_m2 must be > 0, got {pixel_area_m2}")
    report = PostprocessReport()
    if in_place and isinstance(mask, np.ndarray) and mask.dtype == bool:
        out = np.logical_and(mask, allowed, out=mask)
    else:
        out = np.asarray(mask, dtype=bool) & allowed

    if request.smooth:
        before = int(out.sum())
        out = ndimage.binary_closing(ndimage.binary_opening(out, _CROSS), _CROSS) & allowed
        report.add(f"smoothing (opening + closing, 3x3 cross) changed the mask by {int(out.sum()) - before:+d} px")
    if request.fill_holes:
        before = int(out.sum())
        out = ndimage.binary_fill_holes(out) & allowed
        report.add(f"hole filling added {int(out.sum()) - before} px")

    labels, n = _label(out)
    if n == 0:
        return out, labels, 0, report
    counts = _label_counts(labels, n)
    keep = counts >= max(1, min_region_pixels)
    keep[0] = False
    dropped = int(n - keep[1:].sum())
    if dropped:
        report.add(f"speckle filter removed {dropped} region(s) under {min_region_pixels} px "
                   f"({int(counts[1:][~keep[1:]].sum())} px)")
    report.regions_before_filters = int(keep[1:].sum())

    if request.min_area_m2 is not None:
        ok = counts * pixel_area_m2 >= request.min_area_m2
        report.add(f"minimum area removed {int((keep & ~ok)[1:].sum())} region(s)")
        keep &= ok
    if request.max_area_m2 is not None:
        ok = counts * pixel_area_m2 <= request.max_area_m2
        report.add(f"maximum area removed {int((keep & ~ok)[1:].sum())} region(s)")
        keep &= ok
    if request.region is not None:
        cx, cy = _centroids(labels, n, counts)
        x0, y0, x1, y1 = region_box(request.region)
        ok = (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)
        report.add(f"image-part filter ({request.region}, by region centroid) removed "
                   f"{int((keep & ~ok)[1:].sum())} region(s)")
        keep &= ok
    if request.drop_border:
        touching = np.zeros(n + 1, dtype=bool)
        edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        touching[edge] = True
        footprint = allowed if valid is None else valid
        if not footprint.all():
            touching[labels[ndimage.binary_dilation(~footprint, _EIGHT)]] = True
        release_rows(labels)
        touching[0] = False
        report.add(f"border filter removed {int((keep & touching)[1:].sum())} region(s) touching the image edge "
                   "or the edge of the valid data")
        keep &= ~touching
    if request.keep_largest is not None:
        candidates = np.flatnonzero(keep)
        if candidates.size > request.keep_largest:
            order = candidates[np.lexsort((candidates, -counts[candidates]))]
            drop = order[request.keep_largest:]
            keep[drop] = False
            report.add(f"kept the {request.keep_largest} largest of {candidates.size} regions")

    new_labels, n_new = relabel_by_size(labels, keep, in_place=True)  # labels is this function's own
    for r0, block in row_blocks(new_labels):  # out is too: no second mask
        np.greater(block, 0, out=out[r0:r0 + block.shape[0]])
    return out, new_labels, n_new, report
