"""Post-processing on hand-made masks: exact area filters, N largest, region, border, holes."""

from __future__ import annotations

import numpy as np
import pytest

from spex.engine.postprocess import MIN_REGION_PIXELS, postprocess, relabel_by_size
from spex.engine.request import ExtractionRequest


def _squares() -> np.ndarray:
    """20x20 mask with four squares: 2x2 (top-left), 3x3 (top-right), 4x4 (bottom-left), 5x5 touching bottom-right."""
    m = np.zeros((20, 20), dtype=bool)
    m[2:4, 2:4] = True          # 4 px, centroid in top-left
    m[2:5, 14:17] = True        # 9 px, top-right
    m[12:16, 2:6] = True        # 16 px, bottom-left
    m[15:20, 15:20] = True      # 25 px, bottom-right, touches the border
    return m


def _run(req: ExtractionRequest, mask: np.ndarray | None = None, allowed: np.ndarray | None = None,
         pixel_area: float = 100.0):
    mask = _squares() if mask is None else mask
    allowed = np.ones_like(mask) if allowed is None else allowed
    return postprocess(mask, req, allowed=allowed, pixel_area_m2=pixel_area)


def test_labels_numbered_largest_first() -> None:
    mask, labels, n, _ = _run(ExtractionRequest(targets=("water",)))
    assert n == 4
    sizes = [int((labels == i).sum()) for i in range(1, n + 1)]
    assert sizes == [25, 16, 9, 4]
    assert np.array_equal(mask, labels > 0)


@pytest.mark.parametrize("lo, hi, kept", [
    (900.0, None, [25, 16, 9]),      # 9 px * 100 m2 = 900 m2 is kept (>=)
    (901.0, None, [25, 16]),
    (None, 1600.0, [16, 9, 4]),      # <= is kept
    (500.0, 1600.0, [16, 9]),
])
def test_area_filters_exact(lo, hi, kept) -> None:
    _, labels, n, _ = _run(ExtractionRequest(targets=("water",), min_area_m2=lo, max_area_m2=hi))
    assert [int((labels == i).sum()) for i in range(1, n + 1)] == kept


def test_keep_largest_after_filters() -> None:
    _, labels, n, report = _run(ExtractionRequest(targets=("water",), keep_largest=2, max_area_m2=1600.0))
    assert [int((labels == i).sum()) for i in range(1, n + 1)] == [16, 9]
    assert any("largest" in s for s in report.steps)


@pytest.mark.parametrize("region, kept", [
    ("north", [9, 4]), ("south", [25, 16]), ("west", [16, 4]), ("east", [25, 9]),
    ("top-left", [4]), ("bottom-right", [25]), ("center", []),
])
def test_region_by_centroid(region, kept) -> None:
    _, labels, n, _ = _run(ExtractionRequest(targets=("water",), region=region))
    assert [int((labels == i).sum()) for i in range(1, n + 1)] == kept


def test_region_keeps_whole_regions() -> None:
    m = np.zeros((10, 10), dtype=bool)
    m[1:3, 1:9] = True  # spans west and east, centroid x = 0.5 -> east (half-open boxes)
    mask, _, n, _ = _run(ExtractionRequest(targets=("water",), region="east"), mask=m)
    assert n == 1 and mask.sum() == 16


def test_drop_border_including_invalid_edge() -> None:
    mask, _, n, _ = _run(ExtractionRequest(targets=("water",), drop_border=True))
    assert n == 3 and not mask[19, 19]
    valid = np.ones((20, 20), dtype=bool)
    valid[:, 7:10] = False  # nodata strip next to nothing; then next to the 2x2 square
    valid[2:4, 4] = False
    mask2, _, n2, _ = postprocess(_squares(), ExtractionRequest(targets=("water",), drop_border=True),
                                  allowed=valid, valid=valid, pixel_area_m2=1.0)
    assert n2 == 2 and not mask2[2, 2]


def test_fill_holes_respects_allowed() -> None:
    m = np.zeros((9, 9), dtype=bool)
    m[1:8, 1:8] = True
    m[3:6, 3:6] = False  # 9-px hole
    allowed = np.ones_like(m)
    allowed[4, 4] = False  # an invalid pixel in the hole stays unselected
    mask, _, n, _ = postprocess(m, ExtractionRequest(targets=("water",), fill_holes=True), allowed=allowed,
                                pixel_area_m2=1.0)
    assert n == 1 and mask.sum() == 49 - 1 and not mask[4, 4]


def test_speckle_filter_and_smooth() -> None:
    m = np.zeros((12, 12), dtype=bool)
    m[0, 0] = True                      # 1 px speckle
    m[3:9, 3:9] = True
    m[5, 9:11] = True                   # 2-px spur
    mask, _, n, _ = _run(ExtractionRequest(targets=("water",)), mask=m, pixel_area=1.0)
    assert MIN_REGION_PIXELS > 1 and n == 1 and not mask[0, 0] and mask[5, 10]
    smooth, _, _, _ = _run(ExtractionRequest(targets=("water",), smooth=True), mask=m, pixel_area=1.0)
    assert not smooth[5, 10] and smooth[5, 5]


def test_invalid_never_selected() -> None:
    m = np.ones((6, 6), dtype=bool)
    allowed = np.ones_like(m)
    allowed[:, 0] = False
    for req in (ExtractionRequest(targets=("water",), smooth=True, fill_holes=True),
                ExtractionRequest(targets=("water",))):
        mask, _, _, _ = postprocess(m, req, allowed=allowed, pixel_area_m2=1.0)
        assert not mask[:, 0].any()


def test_relabel_by_size_keep_subset() -> None:
    lab = np.array([[1, 1, 0, 2], [1, 0, 3, 3], [0, 0, 3, 3]], dtype=np.int32)
    out, n = relabel_by_size(lab)
    assert n == 3 and out[1, 2] == 1 and out[0, 0] == 2 and out[0, 3] == 3
    keep = np.array([False, True, False, True])
    out2, n2 = relabel_by_size(lab, keep)
    assert n2 == 2 and out2[0, 3] == 0
