"""Constraints applied by the engine on a small synthetic coastal scene (tests/synthetic_water.py):
user index thresholds, sea/rivers/lakes, class shares, one class per region in merged results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic_water import BANDS, masks, write_scene

from spex.engine import explain, extract
from spex.engine.classes import class_totals, region_classes
from spex.engine.parts import PartNotFound, classify_regions
from spex.engine.reply import shares_reply
from spex.engine.request import ExtractionRequest, IndexLimit
from spex.engine.shares import class_shares
from spex.errors import BandError
from spex.export import write_outputs
from spex.export.palette import CLASS_COLOURS
from spex.io import open_scene
from spex.spectral import IndexCache
from spex.viz import map_html


@pytest.fixture(scope="module")
def coast(tmp_path_factory: pytest.TempPathFactory):
    path = write_scene(tmp_path_factory.mktemp("coast") / "coast.tif")
    with open_scene(path, bands=list(BANDS)) as scene:
        yield scene, IndexCache(scene)


def run(coast, **kw) -> object:  # noqa: ANN001
    scene, cache = coast
    return extract(scene, ExtractionRequest(**kw), cache)


def test_user_threshold_replaces_the_adaptive_one(coast) -> None:  # noqa: ANN001
    scene, cache = coast
    ndvi = cache.index("NDVI")
    plain = run(coast, targets=("vegetation",))
    for low in (0.6, 0.2):  # above and below the scene's own threshold: both used as given
        ex = run(coast, targets=("vegetation",), index_limits=(IndexLimit("vegetation", "NDVI", low),))
        ev = ex.evidence[0]
        assert ev.threshold == low and ev.threshold_method == "user"
        assert f"this scene's adaptive threshold is {plain.evidence[0].threshold:.2f}" in ev.user_tests[0]
        assert np.all(ndvi[ex.mask] > low)
        # the vegetated pixels above the bound are selected (all but speckle at the noisy boundary)
        expected = (ndvi > low) & plain.mask if low > plain.evidence[0].threshold else plain.mask
        assert (expected & ~ex.mask).sum() <= 0.005 * expected.sum()
    high = run(coast, targets=("vegetation",), index_limits=(IndexLimit("vegetation", "NDVI", 0.6),))
    assert high.selected_pixels < plain.selected_pixels
    reply = explain(high, scene)
    assert "NDVI > 0.60 (as you asked; this scene's adaptive threshold is" in reply


def test_between_and_extra_test(coast) -> None:  # noqa: ANN001
    _, cache = coast
    ndvi = cache.index("NDVI")
    ex = run(coast, targets=("vegetation",), index_limits=(IndexLimit("vegetation", "NDVI", 0.5, 0.6),))
    assert ex.selected_pixels and np.all((ndvi[ex.mask] > 0.5) & (ndvi[ex.mask] < 0.6))
    extra = run(coast, targets=("water",), index_limits=(IndexLimit("water", "NDVI", None, 0.0),))
    assert "extra test" in extra.evidence[0].user_tests[0]
    assert np.all(ndvi[extra.mask] < 0.0)


def test_index_the_scene_cannot_compute_is_refused(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "rgbn.tif", bands=("blue", "green", "red", "nir"))
    with open_scene(path, bands=["blue", "green", "red", "nir"]) as scene:
        with pytest.raises(BandError, match="swir1"):
            extract(scene, ExtractionRequest(("water",), index_limits=(IndexLimit("water", "MNDWI", 0.3),)))


def test_parts_by_shape_size_and_border(coast) -> None:  # noqa: ANN001
    scene, cache = coast
    m = masks()
    water = run(coast, targets=("water",))
    parts = classify_regions(water.mask, cache.valid(), pixel_area_m2=scene.pixel_area_m2, georeferenced=True)
    kinds = sorted(parts.kind[1:])
    assert kinds == ["lakes", "lakes", "rivers", "sea"]
    no_sea = run(coast, targets=("water",), drop_parts=("sea",))
    assert not (no_sea.mask & m["sea"]).any() and no_sea.selected_pixels == water.selected_pixels - int(m["sea"].sum())
    assert any(c.startswith("Part rule, sea = ") and "removed" in c for c in no_sea.caveats)
    rivers = run(coast, targets=("water",), parts=("rivers",))
    assert np.array_equal(rivers.mask, m["river"] & water.mask)
    north = run(coast, targets=("water",), parts=("lakes",), region="north")
    assert np.array_equal(north.mask, m["north_lake"] & water.mask)
    largest = run(coast, targets=("water",), parts=("lakes",), keep_largest=1)
    assert np.array_equal(largest.mask, m["south_lake"] & water.mask)  # not the sea, the largest *lake*
    assert "**Parts of the water:** Part rule, lakes" in explain(largest, scene)


def test_missing_part_is_refused_with_the_rule(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "inland.tif", sea=False)
    with open_scene(path, bands=list(BANDS)) as scene:
        with pytest.raises(PartNotFound, match="No water region touches the border .* so I found no sea"):
            extract(scene, ExtractionRequest(("water",), drop_parts=("sea",)))
        lakes = extract(scene, ExtractionRequest(("water",), parts=("lakes",)))
        assert len(lakes.regions) == 2


def test_shares_are_measured(coast) -> None:  # noqa: ANN001
    scene, cache = coast
    table = class_shares(scene, (), cache)
    assert table.largest is not None and table.largest.target == "vegetation"
    by = {r.target: r for r in table.rows}
    for target in ("vegetation", "water"):
        ex = run(coast, targets=(target,))
        assert by[target].pixels == ex.selected_pixels and by[target].share == pytest.approx(ex.fraction_of_valid)
    pair = class_shares(scene, ("vegetation", "water"), cache)
    text = shares_reply(pair, scene)
    assert "times as much" in text and "| vegetation |" in text and "| water bodies |" in text
    assert [r.target for r in pair.rows] == ["vegetation", "water"]


def test_merged_result_one_class_per_region(coast, tmp_path: Path) -> None:  # noqa: ANN001
    scene, _ = coast
    m = masks()
    ex = run(coast, targets=("water", "bare"))
    assert ex.class_map is not None
    classes = region_classes(ex)
    bare_regions = [r for r in ex.regions if classes[r.label] == "bare"]
    assert len(bare_regions) == 1 and abs(bare_regions[0].pixels - int(m["bare"].sum())) <= 8
    for r in ex.regions:  # a region never mixes classes
        assert len(np.unique(ex.class_map[ex.labels == r.label])) == 1
    totals = {t.target: t for t in class_totals(ex)}
    assert totals["water"].pixels + totals["bare"].pixels == ex.selected_pixels
    reply = explain(ex, scene)
    assert "Per class" in reply and "| bare soil / sand |" in reply
    # size filters apply to each class's own regions
    big = run(coast, targets=("water", "bare"), min_area_m2=4.2e4)
    assert {region_classes(big)[r.label] for r in big.regions} == {"water"} and len(big.regions) == 2

    out = write_outputs(ex, scene, tmp_path / "out", reply=reply)
    features = json.loads(out.geojson.read_text())["features"]
    assert sorted({f["properties"]["class_key"] for f in features}) == ["bare", "water"]
    assert {f["properties"]["class"] for f in features} == {"water bodies", "bare soil / sand"}
    import pyogrio

    meta, _, _, columns = pyogrio.raw.read(out.gpkg)
    gpkg_classes = columns[list(meta["fields"]).index("class_key")]
    assert sorted(set(gpkg_classes)) == ["bare", "water"] and len(gpkg_classes) == len(features)
    image = np.asarray(Image.open(out.overlay_png).convert("RGB"))
    caption = image[scene.height * (image.shape[1] // scene.width):]  # the caption strip below the picture
    for target in ("water", "bare"):  # a legend swatch of each class colour
        assert (np.abs(caption.astype(int) - CLASS_COLOURS[target]).sum(axis=2) == 0).any(), target
    page = map_html(scene, ex)
    assert "spex-legend" in page and "bare soil / sand" in page


def test_questions_on_a_merged_result_name_the_classes(coast) -> None:  # noqa: ANN001
    from spex.engine import answer_question

    scene, _ = coast
    ex = run(coast, targets=("water", "bare"))
    assert "region #1 (water bodies)" in answer_question("largest", ex, scene)
    listed = answer_question("list", ex, scene)
    assert "| # | class |" in listed and "| bare soil / sand |" in listed
    assert "| bare soil / sand | 3." in answer_question("count", ex, scene)


def test_refiner_output_still_obeys_user_thresholds(coast) -> None:  # noqa: ANN001
    import dataclasses

    scene, cache = coast
    request = ExtractionRequest(("vegetation",), index_limits=(IndexLimit("vegetation", "NDVI", 0.6),))

    def everything(result, ctx):  # noqa: ANN001, ANN202 - a refiner that claims every valid pixel
        return dataclasses.replace(result, mask=ctx.valid().copy())

    ex = extract(scene, request, cache, refine=everything)
    assert ex.selected_pixels and np.all(cache.index("NDVI")[ex.mask] > 0.6)
