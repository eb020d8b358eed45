"""SPIE region attributes on hand-made masks with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from scipy import ndimage
from skimage.draw import polygon

from spex.spie import (
    LOCATIONS,
    SIZE_CLASSES,
    SIZE_UPPER_FRACTIONS,
    describe_regions,
    label_regions,
    location_word,
    size_class,
)

H, W = 100, 200


def _rotated_rectangle(center=(140.0, 60.0), half=(20.0, 8.0), angle_deg=30.0) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    c = np.asarray(center)
    return np.array([c + half[0] * u + half[1] * v, c - half[0] * u + half[1] * v,
                     c - half[0] * u - half[1] * v, c + half[0] * u - half[1] * v])  # (x, y)


@pytest.fixture()
def mask() -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[10:20, 0:25] = True            # A: 250 px on the left border
    m[50, 100] = True                # B: one pixel in the centre
    corners = _rotated_rectangle()
    rr, cc = polygon(corners[:, 1], corners[:, 0], m.shape)
    m[rr, cc] = True                 # C: rotated rectangle, middle-right
    m[98:100, 198:200] = True        # D: 2x2 in the bottom-right corner
    m[30, 60] = m[31, 61] = True     # E: diagonal pair
    return m


def test_known_attributes(mask: np.ndarray):
    col = np.tile(np.arange(W, dtype=np.float32), (H, 1))
    col[10, 12] = np.nan
    regs = describe_regions(mask, pixel_area_m2=100.0, index_maps={"col": col})
    assert [r.pixels for r in regs][1:] == [250, 4, 2, 1]
    c, a, d, e, b = regs

    assert a.area_m2 == 25_000.0 and a.area_ha == 2.5
    assert a.size_class == "somewhat large"           # 250 / 20000 = 1.25 %
    assert a.centroid == pytest.approx((12 / W, 14.5 / H))
    assert a.location == "top-left"
    assert a.bbox == (10, 0, 20, 25)
    assert a.touches_border
    assert np.allclose(a.rotated_box, ((0.0, 0.1), (0.12, 0.1), (0.12, 0.19), (0.0, 0.19)))
    assert a.mean_indices["col"] == pytest.approx(12.0)  # NaN pixel ignored

    assert (b.size_class, b.location, b.touches_border) == ("very tiny", "center", False)
    assert b.centroid == (0.5, 0.5) and b.bbox == (50, 100, 51, 101)
    assert b.rotated_box == ((0.5, 0.5),) * 4
    assert b.mean_indices["col"] == 100.0

    assert d.location == "bottom-right" and d.touches_border and d.bbox == (98, 198, 100, 200)
    assert d.centroid == pytest.approx((198.5 / W, 98.5 / H))
    assert np.allclose(d.rotated_box, ((0.99, 0.98), (0.995, 0.98), (0.995, 0.99), (0.99, 0.99)))

    assert e.pixels == 2  # 8-connected diagonal neighbours form one region
    assert np.allclose(e.rotated_box, ((0.3, 0.3), (0.305, 0.31), (0.305, 0.31), (0.3, 0.3)))

    assert c.location == "middle-right" and c.size_class == "large" and not c.touches_border
    assert c.centroid == pytest.approx((140 / W, 60 / H), abs=0.6 / W)


def test_rotated_box_of_rotated_rectangle(mask: np.ndarray):
    c = describe_regions(mask, pixel_area_m2=1.0)[0]
    box = np.array(c.rotated_box) * [W, H]  # back to pixels
    true = _rotated_rectangle()
    # every corner lies within 1.5 px of a corner of the drawn rectangle (pixel-centre hull)
    dist = np.linalg.norm(box[:, None, :] - true[None, :, :], axis=2)
    assert dist.min(axis=1).max() < 1.5
    assert sorted(dist.argmin(axis=1).tolist()) == [0, 1, 2, 3]
    edges = np.diff(np.vstack([box, box[:1]]), axis=0)
    angles = np.degrees(np.arctan2(edges[:, 1], edges[:, 0])) % 90
    assert np.all(np.minimum(np.abs(angles - 30), np.abs(angles - 60)) < 3)
    # clockwise on screen (y down) = positive shoelace sum, start at the top-most corner
    x, y = box[:, 0], box[:, 1]
    assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0
    assert y[0] == y.min()


def test_full_image_region_matches_paper_convention():
    r = describe_regions(np.ones((512, 512), bool), pixel_area_m2=1.0)[0]
    assert r.size_class == "huge" and r.location == "center" and r.touches_border
    assert r.to_spie_dict() == {
        "Size of area": "huge",
        "Centroid": [0.499, 0.499],
        "Location": "center",
        "Bounding box": [[0.0, 0.0], [0.998, 0.0], [0.998, 0.998], [0.0, 0.998]],
    }


def test_connectivity_and_labels_reuse(mask: np.ndarray):
    lab8, n8 = label_regions(mask)
    lab4, n4 = label_regions(mask, connectivity=1)
    assert lab8.dtype == np.int32 and (n8, n4) == (5, 6)
    assert describe_regions(mask, pixel_area_m2=1.0, labels=lab8) == describe_regions(mask, pixel_area_m2=1.0)
    assert len(describe_regions(mask, pixel_area_m2=1.0, labels=lab4)) == 6
    # labels beyond the mask are ignored
    extra = lab8.copy()
    extra[0, 199] = 99
    assert [r.pixels for r in describe_regions(mask, pixel_area_m2=1.0, labels=extra)][1:] == [250, 4, 2, 1]


def test_top_n_and_empty(mask: np.ndarray):
    regs = describe_regions(mask, pixel_area_m2=1.0, top_n=2)
    assert [r.pixels for r in regs][1:] == [250]
    assert len(regs) == 2
    assert describe_regions(mask, pixel_area_m2=1.0, top_n=0) == []
    assert describe_regions(np.zeros((5, 5), bool), pixel_area_m2=1.0) == []
    with pytest.raises(ValueError, match="pixel_area_m2"):
        describe_regions(mask, pixel_area_m2=0.0)
    with pytest.raises(ValueError, match="shape"):
        describe_regions(mask, pixel_area_m2=1.0, index_maps={"x": np.zeros((3, 3))})


def test_vectorised_stats_match_brute_force():
    rng = np.random.default_rng(7)
    m = np.zeros((120, 150), dtype=bool)  # margin so that no rectangle is clipped
    m[30:90, 30:120] = ndimage.gaussian_filter(rng.random((60, 90)), 2) > 0.52
    lab, n = label_regions(m)
    assert n > 10
    regs = describe_regions(m, pixel_area_m2=1.0)
    assert len(regs) == n
    objects = ndimage.find_objects(lab)
    checked = 0
    for r in regs:
        rows, cols = np.nonzero(lab == r.label)
        assert r.pixels == rows.size
        assert r.centroid == pytest.approx((cols.mean() / 150, rows.mean() / 120))
        sl = objects[r.label - 1]
        assert r.bbox == (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
        ref = shapely.MultiPoint(np.column_stack([cols, rows]).astype(float)).minimum_rotated_rectangle
        got = shapely.Polygon(np.array(r.rotated_box) * [150, 120]) if r.pixels > 2 else None
        if got is not None and ref.geom_type == "Polygon":
            checked += 1
            assert got.area == pytest.approx(ref.area, rel=1e-6, abs=1e-6)
    assert checked >= 5
    assert [r.pixels for r in regs] == sorted((r.pixels for r in regs), reverse=True)


def test_location_words_and_size_classes():
    assert len(LOCATIONS) == 9 and len(SIZE_CLASSES) == len(SIZE_UPPER_FRACTIONS) == 7
    assert location_word(0.0, 0.0) == "top-left"
    assert location_word(1 / 3, 1 / 3) == "center"          # thirds: >= 1/3 is the middle
    assert location_word(2 / 3, 0.5) == "middle-right"
    assert location_word(0.5, 0.99) == "bottom-center"
    assert location_word(0.1, 0.5) == "middle-left"
    assert location_word(0.9, 0.2) == "top-right"
    tile = 512 * 512
    cut = {131: "very tiny", 132: "tiny", 393: "tiny", 394: "small", 917: "small", 918: "medium",
           1835: "medium", 1836: "somewhat large", 3932: "somewhat large", 3933: "large",
           20971: "large", 20972: "huge"}
    assert {px: size_class(px / tile) for px in cut} == cut


def test_box_corners_outside_the_image_are_clipped():
    m = np.zeros((H, W), dtype=bool)
    corners = _rotated_rectangle(center=(100.0, 3.0), half=(20.0, 6.0), angle_deg=40.0)
    rr, cc = polygon(corners[:, 1], corners[:, 0], m.shape)
    m[rr, cc] = True
    box = np.array(describe_regions(m, pixel_area_m2=1.0)[0].rotated_box)
    assert box.min() >= 0.0 and box.max() <= 1.0
    assert np.sum(box[:, 1] == 0.0) >= 1  # a corner lay above the first row


def test_many_regions_fast_and_top_n_consistent():
    import time

    rng = np.random.default_rng(3)
    m = rng.random((400, 400)) > 0.75  # salt-and-pepper: thousands of regions
    t0 = time.perf_counter()
    full = describe_regions(m, pixel_area_m2=1.0)
    elapsed = time.perf_counter() - t0
    assert len(full) > 5000
    assert elapsed < 10.0, f"describe_regions took {elapsed:.1f} s for {len(full)} regions"
    assert describe_regions(m, pixel_area_m2=1.0, top_n=10) == full[:10]
    assert sum(r.pixels for r in full) == int(m.sum())


def test_rotated_boxes_in_geos_chunks_and_hull_cut_are_unchanged(monkeypatch: pytest.MonkeyPatch):
    """Chunked GEOS calls (and regions with more candidates than a chunk cut to their convex hull first)
    give the same boxes as one call over every candidate point."""
    import spex.spie.regions as regions

    rng = np.random.default_rng(11)
    mask = ndimage.binary_opening(rng.random((160, 200)) < 0.55)
    mask[20:120, 30:170] |= rng.random((100, 140)) < 0.9  # one large ragged region: many run ends
    mask[:, 188:193] = False
    mask[5:150, 190] = True  # a straight line of 145 run ends: qhull refuses it, GEOS takes the line
    whole = describe_regions(mask, pixel_area_m2=1.0)
    monkeypatch.setattr(regions, "_GEOS_CHUNK_POINTS", 40)
    chunked = describe_regions(mask, pixel_area_m2=1.0)
    assert len(whole) > 10
    assert [r.label for r in chunked] == [r.label for r in whole]
    for a, b in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(a.rotated_box, b.rotated_box, rtol=0, atol=1e-12)
