"""SPIE region attributes: size word, centroid, 3x3 location, rotated box, index means.

Reproduces the attribute schema of the SPEX paper's SPIE dataset (digest
``spex_paper.md`` §3.3 and §8 item 9) from a binary class mask, so that prompts are
computed on the fly from imagery, never from labels.

Conventions (True = selected in ``mask``):

* Coordinates are 0-based pixel indices; ``x`` is the column, ``y`` the row.
  Normalised values divide by the image width / height, like the paper (which
  divides by 512, so the last pixel of a 512 tile maps to 0.998).
* Centroid = image moments (m10/m00, m01/m00) of the region's pixels.
* Location = 3x3 grid of thirds on the centroid: column "left" if x < 1/3, "right"
  if x >= 2/3, else "center"; row "top" / "middle" / "bottom" likewise; written
  "<row>-<col>", except (middle, center) which is "center". These nine names are the
  ones verified on all 29 released SPIE examples.
* Rotated box = minimum-area rectangle of the pixel centres (the paper uses OpenCV
  ``minAreaRect`` on the contour), corners normalised, clipped to [0, 1], listed
  clockwise on screen starting from the top-most (then left-most) corner. A
  one-pixel region's box collapses to one repeated point, as in the paper.
* Size word = pixel count as a fraction of the image area, see :data:`SIZE_CLASSES`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import shapely
from scipy import ndimage

from spex.io.scratch import row_blocks, value_range

__all__ = [
    "LOCATIONS",
    "SIZE_CLASSES",
    "SIZE_UPPER_FRACTIONS",
    "RegionAttributes",
    "describe_regions",
    "label_regions",
    "location_word",
    "size_class",
]

#: Size words, smallest first. Their vocabulary is the one seen in the released SPIE
#: files ('very tiny', 'small', 'medium', 'somewhat large', 'large', 'huge') plus 'tiny'.
SIZE_CLASSES: Final[tuple[str, ...]] = (
    "very tiny", "tiny", "small", "medium", "somewhat large", "large", "huge",
)

#: Exclusive upper bound of each size word as a fraction of the image area
#: (pixel count / (height * width)); "huge" is open-ended. The paper's cut-offs are
#: unpublished. These are chosen to be consistent with every released example: the
#: clipped-box area bounds each region's pixel area from above ('very tiny' <= 0.16 %,
#: 'small' boxes 0.43-1.27 %, 'medium' 0.66-1.84 %, 'somewhat large' 1.05 %, 'large'
#: ~3.5 % before clipping, 'huge' >= 30 %). On a 512 x 512 tile: very tiny <= 131 px,
#: tiny <= 393, small <= 917, medium <= 1835, somewhat large <= 3932, large <= 20971 px.
SIZE_UPPER_FRACTIONS: Final[tuple[float, ...]] = (0.0005, 0.0015, 0.0035, 0.007, 0.015, 0.08, math.inf)

#: The nine location words (row-major, top-left first).
LOCATIONS: Final[tuple[str, ...]] = (
    "top-left", "top-center", "top-right",
    "middle-left", "center", "middle-right",
    "bottom-left", "bottom-center", "bottom-right",
)

#: Hull candidate points per GEOS call (GEOS holds ~300 bytes per point: ~40 MB per call).
_GEOS_CHUNK_POINTS: Final[int] = 1 << 17


@dataclass(frozen=True)
class RegionAttributes:
    """Attributes of one connected region of a class mask.

    Attributes:
        label: region id in the label image.
        pixels: pixel count.
        area_m2, area_ha: area on the ground (pixels * pixel area).
        size_class: one of :data:`SIZE_CLASSES`.
        centroid: normalised (x, y) moment centroid; x = col / width, y = row / height.
        location: one of :data:`LOCATIONS`.
        rotated_box: 4 normalised (x, y) corners of the minimum-area rectangle, clipped to [0, 1].
        bbox: (row0, col0, row1, col1) in pixels, ends exclusive.
        touches_border: True when the region reaches the first/last row or column.
        mean_indices: mean of each given index map over the region's finite pixels (NaN if none).
    """

    label: int
    pixels: int
    area_m2: float
    area_ha: float
    size_class: str
    centroid: tuple[float, float]
    location: str
    rotated_box: tuple[tuple[float, float], ...]
    bbox: tuple[int, int, int, int]
    touches_border: bool
    mean_indices: dict[str, float] = field(default_factory=dict)

    def to_spie_dict(self) -> dict:
        """The SPIE attribute dict: 'Size of area', 'Centroid', 'Location', 'Bounding box' (3 decimals)."""
        return {
            "Size of area": self.size_class,
            "Centroid": [_r3(self.centroid[0]), _r3(self.centroid[1])],
            "Location": self.location,
            "Bounding box": [[_r3(x), _r3(y)] for x, y in self.rotated_box],
        }


def _r3(v: float) -> float:
    return float(round(float(v), 3))


def size_class(fraction: float) -> str:
    """Size word for a region covering ``fraction`` of the image area."""
    for word, upper in zip(SIZE_CLASSES, SIZE_UPPER_FRACTIONS, strict=True):
        if fraction < upper:
            return word
    return SIZE_CLASSES[-1]


def location_word(x: float, y: float) -> str:
    """3x3 thirds location of a normalised centroid (x = column, y = row)."""
    col = "left" if x < 1 / 3 else ("right" if x >= 2 / 3 else "center")
    row = "top" if y < 1 / 3 else ("bottom" if y >= 2 / 3 else "middle")
    return "center" if (row, col) == ("middle", "center") else f"{row}-{col}"


def label_regions(mask: np.ndarray, connectivity: int = 2) -> tuple[np.ndarray, int]:
    """Label connected regions of ``mask`` (True = selected).

    Args:
        mask: 2-D boolean mask.
        connectivity: 2 = 8-connected (default, diagonal neighbours join), 1 = 4-connected.

    Returns:
        (int32 label image with 0 = background, number of regions).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 (4-connected) or 2 (8-connected), got {connectivity}")
    structure = ndimage.generate_binary_structure(2, connectivity)
    labels = np.zeros(mask.shape, dtype=np.int32)
    n = ndimage.label(mask.astype(bool, copy=False), structure=structure, output=labels)
    return labels, int(n)


def describe_regions(
    mask: np.ndarray,
    *,
    pixel_area_m2: float,
    index_maps: Mapping[str, np.ndarray] | None = None,
    labels: np.ndarray | None = None,
    top_n: int | None = None,
) -> list[RegionAttributes]:
    """Attributes of the connected regions of ``mask``, largest first.

    Args:
        mask: 2-D boolean mask, True = selected.
        pixel_area_m2: ground area of one pixel (1.0 gives areas in pixels).
        index_maps: optional index name -> (H, W) float map; its region means go to ``mean_indices``.
        labels: optional label image of ``mask`` (e.g. from :func:`label_regions`) to reuse;
            pixels outside ``mask`` are ignored.
        top_n: keep only the ``top_n`` largest regions (None = all).

    Returns:
        One :class:`RegionAttributes` per region, sorted by pixel count (descending, ties by label).

    Notes:
        Per-region sums are accumulated with ``np.bincount`` over row blocks and the
        rotated boxes come from one vectorised GEOS call, so the cost is linear in the pixel
        count; building the result objects costs ~10 us per returned region.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    mask = mask.astype(bool, copy=False)
    if not (pixel_area_m2 > 0 and math.isfinite(pixel_area_m2)):
        raise ValueError(f"pixel_area_m2 must be a positive number, got {pixel_area_m2}")
    if top_n is not None and top_n < 0:
        raise ValueError(f"top_n must be >= 0 or None, got {top_n}")
    index_maps = dict(index_maps or {})
    for name, arr in index_maps.items():
        if np.shape(arr) != mask.shape:
            raise ValueError(f"index map {name!r} has shape {np.shape(arr)}, mask has {mask.shape}")

    if labels is None:
        lab, n = label_regions(mask)
    else:
        lab = np.asarray(labels)
        if lab.shape != mask.shape:
            raise ValueError(f"labels have shape {lab.shape}, mask has {mask.shape}")
        if not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"labels must be an integer array, got {lab.dtype}")
        low, n = value_range(lab)
        if low < 0:
            raise ValueError("labels must be >= 0 (0 = background)")
        if not _labels_cover(lab, mask):
            lab = np.where(mask, lab, 0)
            n = int(lab.max(initial=0))
    height, width = mask.shape
    if n <= 0:
        return []

    counts, sum_r, sum_c, box, idx_sum, idx_cnt = _accumulate(lab, n, index_maps)
    present = np.flatnonzero(counts[1:]) + 1
    order = present[np.lexsort((present, -counts[present]))]
    if top_n is not None:
        order = order[:top_n]
    if order.size == 0:
        return []
    px = counts[order]
    cx = sum_c[order] / px / width
    cy = sum_r[order] / px / height
    bb = box[order]
    frac = px / float(height * width)
    size_words = np.asarray(SIZE_CLASSES)[np.searchsorted(np.asarray(SIZE_UPPER_FRACTIONS), frac, side="right")]
    col = np.where(cx < 1 / 3, 0, np.where(cx >= 2 / 3, 2, 1))
    row = np.where(cy < 1 / 3, 0, np.where(cy >= 2 / 3, 2, 1))
    loc_words = np.asarray(LOCATIONS)[row * 3 + col]
    border = (bb[:, 0] == 0) | (bb[:, 1] == 0) | (bb[:, 2] == height) | (bb[:, 3] == width)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = {k: np.where(idx_cnt[k][order] > 0, idx_sum[k][order] / idx_cnt[k][order], np.nan).tolist()
                 for k in index_maps}
    boxes = _rotated_boxes(lab, n, order, px, width, height).tolist()
    area = px * float(pixel_area_m2)

    return [
        RegionAttributes(
            label=lbl,
            pixels=p,
            area_m2=a,
            area_ha=a / 1e4,
            size_class=sw,
            centroid=(x, y),
            location=lw,
            rotated_box=tuple(map(tuple, corners)),
            bbox=tuple(b),
            touches_border=t,
            mean_indices={k: v[i] for k, v in means.items()},
        )
        for i, (lbl, p, a, sw, x, y, lw, corners, b, t) in enumerate(
            zip(order.tolist(), px.tolist(), area.tolist(), size_words.tolist(), cx.tolist(), cy.tolist(),
                loc_words.tolist(), boxes, bb.tolist(), border.tolist(), strict=True)
        )
    ]


def _labels_cover(lab: np.ndarray, mask: np.ndarray) -> bool:
    """Whether ``lab > 0`` is exactly ``mask``, compared in row blocks (no full-size temporary)."""
    return all(np.array_equal(block > 0, mask[r0:r0 + block.shape[0]])
               for r0, block in row_blocks(lab))


def _accumulate(
    lab: np.ndarray, n: int, index_maps: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-label pixel counts, row/col sums, bounding boxes and finite index sums/counts.

    Works block by block; the bounding box columns are (row0, col0, row1, col1), ends exclusive.
    """
    width = lab.shape[1]
    size = n + 1
    counts = np.zeros(size, dtype=np.int64)
    sum_r = np.zeros(size, dtype=np.float64)
    sum_c = np.zeros(size, dtype=np.float64)
    idx_sum = {k: np.zeros(size, dtype=np.float64) for k in index_maps}
    idx_cnt = {k: np.zeros(size, dtype=np.int64) for k in index_maps}
    box = np.empty((size, 4), dtype=np.int64)
    box[:, :2] = np.iinfo(np.int64).max
    box[:, 2:] = -1
    for r0, block in row_blocks(lab):
        flat = block.ravel()
        nz = np.flatnonzero(flat)
        if nz.size == 0:
            continue
        ids = flat[nz]
        rows = nz // width + r0
        cols = nz % width
        counts += np.bincount(ids, minlength=size)
        sum_r += np.bincount(ids, weights=rows.astype(np.float64), minlength=size)
        sum_c += np.bincount(ids, weights=cols.astype(np.float64), minlength=size)
        np.minimum.at(box[:, 0], ids, rows)
        np.minimum.at(box[:, 1], ids, cols)
        np.maximum.at(box[:, 2], ids, rows + 1)
        np.maximum.at(box[:, 3], ids, cols + 1)
        for k, arr in index_maps.items():
            vals = np.asarray(arr[r0 : r0 + block.shape[0]]).ravel()[nz]
            fin = np.isfinite(vals)
            idx_sum[k] += np.bincount(ids[fin], weights=vals[fin].astype(np.float64), minlength=size)
            idx_cnt[k] += np.bincount(ids[fin], minlength=size)
    return counts, sum_r, sum_c, box, idx_sum, idx_cnt


def _rotated_boxes(
    lab: np.ndarray, n: int, selected: np.ndarray, pixels: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Normalised min-area rectangles of the ``selected`` labels, shape (len(selected), 4, 2).

    Every pixel that ends a horizontal run of its label is a candidate hull point (this
    includes each row's left- and right-most pixel, so the convex hull is exact); the
    rectangles of all regions are then computed in one vectorised GEOS call.
    One-pixel regions skip GEOS: their box is the pixel centre four times.
    """
    k = len(selected)
    corners = np.empty((k, 4, 2), dtype=np.float64)
    multi = pixels > 1
    pos = np.full(n + 1, -1, dtype=np.int64)
    pos[selected] = np.arange(k)
    pos[selected[~multi]] = -2  # singletons: recorded once below, not sent to GEOS
    k_multi = int(multi.sum())
    pos[selected[multi]] = np.arange(k_multi)
    xs, ys, owners = [], [], []
    single_x = np.zeros(k, dtype=np.float64)
    single_y = np.zeros(k, dtype=np.float64)
    single_slot = np.flatnonzero(~multi)
    single_pos = np.full(n + 1, -1, dtype=np.int64)
    single_pos[selected[~multi]] = single_slot
    for r0, blk in row_blocks(lab):
        run_end = np.ones(blk.shape, dtype=bool)  # first and last column always end a run
        if blk.shape[1] > 2:
            diff = blk[:, 1:] != blk[:, :-1]
            run_end[:, 1:-1] = diff[:, :-1] | diff[:, 1:]
        owner_blk = pos[blk]
        rs, cs = np.nonzero(owner_blk == -2)
        slots = single_pos[blk[rs, cs]]
        single_x[slots] = cs
        single_y[slots] = rs + r0
        run_end &= owner_blk >= 0
        rr, cc = np.nonzero(run_end)
        who = owner_blk[rr, cc]
        rr, cc, who = _row_extremes(rr, cc, who)
        xs.append(cc.astype(np.float64))
        ys.append((rr + r0).astype(np.float64))
        owners.append(who)
    corners[~multi] = np.column_stack([single_x, single_y])[~multi][:, None, :]
    if k_multi:
        corners[multi] = _envelopes(np.concatenate(xs), np.concatenate(ys), np.concatenate(owners), k_multi)
    corners = _order_corners(corners)
    return np.clip(corners / np.array([width, height], dtype=np.float64), 0.0, 1.0)


def _row_extremes(rows: np.ndarray, cols: np.ndarray, owner: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The left- and right-most of the run ends (in raster order) of each (owner, row): every other pixel of
    the row lies between them, so the convex hull, and the rectangle, are unchanged with fewer points."""
    if rows.size == 0:
        return rows, cols, owner
    order = np.lexsort((cols, rows, owner))  # by owner, then row, then column
    r, c, o = rows[order], cols[order], owner[order]
    new = np.ones(r.size, dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | (o[1:] != o[:-1])
    keep = new.copy()
    keep[:-1] |= new[1:]  # the first and the last of each (owner, row)
    return r[keep], c[keep], o[keep]


def _envelopes(xs: np.ndarray, ys: np.ndarray, owner: np.ndarray, k: int) -> np.ndarray:
    """Min-area rectangle corners (k, 4, 2) of the point sets grouped by ``owner`` (0..k-1, each non-empty).

    Why in chunks: GEOS makes one geometry per point (~300 bytes each), so a large scene's million hull
    candidates would cost ~0.5 GB at once; a point set larger than a chunk is first cut to its convex hull
    (qhull works on the arrays), which leaves its minimum-area rectangle unchanged.
    """
    sort = np.argsort(owner, kind="stable")
    coords = np.column_stack([xs[sort], ys[sort]])
    owner = owner[sort]
    starts = np.searchsorted(owner, np.arange(k + 1))
    coords, starts = _hull_reduced(coords, starts)
    corners = np.empty((k, 4, 2), dtype=np.float64)
    g0 = 0
    while g0 < k:
        g1 = int(np.searchsorted(starts, starts[g0] + _GEOS_CHUNK_POINTS, side="right")) - 1
        g1 = min(k, max(g1, g0 + 1))
        part = slice(int(starts[g0]), int(starts[g1]))
        ids = np.repeat(np.arange(g1 - g0), np.diff(starts[g0:g1 + 1]))
        corners[g0:g1] = _envelope_chunk(coords[part], ids, g1 - g0)
        g0 = g1
    return corners


def _hull_reduced(coords: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``coords`` grouped by ``starts`` with each group over :data:`_GEOS_CHUNK_POINTS` cut to its hull vertices."""
    from scipy.spatial import ConvexHull, QhullError

    sizes = np.diff(starts)
    big = np.flatnonzero(sizes > _GEOS_CHUNK_POINTS)
    if big.size == 0:
        return coords, starts
    pieces, prev = [], 0
    for g in big.tolist():
        a, b = int(starts[g]), int(starts[g + 1])
        pieces.append(coords[prev:a])
        pts = coords[a:b]
        try:
            pts = pts[np.sort(ConvexHull(pts).vertices)]
        except QhullError:  # all points on one line: GEOS takes the line itself
            pass
        pieces.append(pts)
        sizes[g] = len(pts)
        prev = b
    pieces.append(coords[prev:])
    return np.concatenate(pieces), np.concatenate([[0], np.cumsum(sizes)])


def _envelope_chunk(coords: np.ndarray, owner: np.ndarray, k: int) -> np.ndarray:
    """Min-area rectangle corners (k, 4, 2) of ``coords`` grouped by the sorted ``owner`` (0..k-1): one GEOS call."""
    envelopes = shapely.oriented_envelope(shapely.multipoints(coords, indices=owner))
    corners = np.empty((k, 4, 2), dtype=np.float64)
    pts, which = shapely.get_coordinates(envelopes, return_index=True)
    first = np.concatenate([[0], np.cumsum(np.bincount(which, minlength=k))[:-1]])
    kind = shapely.get_type_id(envelopes)
    poly = kind == 3  # closed ring: 5 coordinates, take the first 4
    corners[poly] = pts[first[poly][:, None] + np.arange(4)]
    line = kind == 1  # collinear pixels: zero-width rectangle [a, b, b, a]
    corners[line] = pts[first[line][:, None] + np.array([0, 1, 1, 0])]
    point = kind == 0  # defensive: a single distinct point four times
    corners[point] = pts[first[point]][:, None, :]
    return corners


def _order_corners(corners: np.ndarray) -> np.ndarray:
    """Clockwise on screen (y down), starting at the top-most then left-most corner. Shape (k, 4, 2)."""
    x, y = corners[..., 0], corners[..., 1]
    signed = np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1)
    corners = np.where((signed < 0)[:, None, None], corners[:, ::-1], corners)
    # rounding removes floating noise so ties (axis-aligned boxes) break deterministically
    key = np.round(corners, 6)
    score = key[..., 1] * (4.0 * (key[..., 0].max() + 1.0)) + key[..., 0]
    start = np.argmin(score, axis=1)
    idx = (start[:, None] + np.arange(4)) % 4
    return np.take_along_axis(corners, idx[:, :, None], axis=1)
