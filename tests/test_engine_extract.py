"""extract(): labels/regions consistency, filters on a real crop; reply numbers equal the mask's numbers."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from spex.engine import answer_question, explain, extract, parse_instruction
from spex.engine.reply import format_area, region_lonlat
from spex.engine.request import ExtractionRequest
from spex.errors import InstructionError
from spex.io import open_scene



def test_labels_match_regions(virginia) -> None:
    scene, cache = virginia
    ext = extract(scene, ExtractionRequest(targets=("water", "wetland")), cache)
    assert ext.backend == "spectral engine"
    assert np.array_equal(ext.mask, ext.labels > 0)
    assert [r.label for r in ext.regions] == list(range(1, len(ext.regions) + 1))
    sizes = [int((ext.labels == r.label).sum()) for r in ext.regions]
    assert sizes == [r.pixels for r in ext.regions] and sizes == sorted(sizes, reverse=True)
    assert sum(sizes) == ext.selected_pixels
    assert ext.pixel_area_m2 == pytest.approx(scene.pixel_area_m2)
    assert ext.valid_pixels == int(cache.valid().sum())
    assert [e.target for e in ext.evidence] == ["water", "wetland"]
    assert all("MNDWI" in r.mean_indices for r in ext.regions)


def test_filters_on_real_scene(virginia) -> None:
    scene, cache = virginia
    base = extract(scene, ExtractionRequest(targets=("water",)), cache)
    big = extract(scene, ExtractionRequest(targets=("water",), min_area_m2=10_000), cache)
    assert all(r.area_m2 >= 10_000 for r in big.regions)
    assert len(big.regions) == sum(r.area_m2 >= 10_000 for r in base.regions)
    top2 = extract(scene, ExtractionRequest(targets=("water",), keep_largest=2), cache)
    assert [r.pixels for r in top2.regions] == [r.pixels for r in base.regions[:2]]
    north = extract(scene, ExtractionRequest(targets=("water",), region="north"), cache)
    assert all(r.centroid[1] < 0.5 for r in north.regions)
    assert any("centroid" in c for c in north.caveats)
    stricter = extract(scene, ExtractionRequest(targets=("water",), strictness=2), cache)
    assert stricter.selected_pixels < base.selected_pixels


def test_exclusion_removes_class(virginia) -> None:
    scene, cache = virginia
    veg = extract(scene, ExtractionRequest(targets=("vegetation",)), cache)
    forest = extract(scene, ExtractionRequest(targets=("forest",)), cache)
    no_forest = extract(scene, ExtractionRequest(targets=("vegetation",), exclude=("forest",)), cache)
    assert not (no_forest.mask & forest.mask).any()
    assert no_forest.selected_pixels < veg.selected_pixels
    assert any("Excluded" in c for c in no_forest.caveats)


def test_reply_numbers_come_from_the_mask(virginia) -> None:
    scene, cache = virginia
    ext = extract(scene, ExtractionRequest(targets=("water",)), cache)
    text = explain(ext, scene)
    n = len(ext.regions)
    assert f"Found {n} regions" in text
    assert format_area(ext.total_area_m2, True) in text
    assert f"{100 * ext.selected_pixels / ext.valid_pixels:.1f} %" in text
    assert f"{ext.selected_pixels:,} of {ext.valid_pixels:,} px" in text
    r1 = ext.regions[0]
    assert f"| 1 | {format_area(r1.area_m2, True)} | {r1.size_class} | {r1.location} |" in text
    lon, lat = region_lonlat(r1, scene)
    assert -76.5 < lon < -75.0 and 37.0 < lat < 38.0 and f"{lon:.5f}" in text
    ev = ext.evidence[0]
    assert f"{ev.threshold:.3f}" in text and f"{ev.mean_inside:.3f}" in text and "spectral engine" in text
    assert "MNDWI" in text and "(green - swir1) / (green + swir1)" in text


def test_answers_from_the_mask(virginia) -> None:
    scene, cache = virginia
    ext = extract(scene, ExtractionRequest(targets=("water",)), cache)
    n = len(ext.regions)
    assert f"**{n}** regions" in answer_question("count", ext, scene)
    assert f"**{n}** regions" in answer_question("how many are there?", ext, scene)
    assert format_area(ext.total_area_m2, True) in answer_question("total_area", ext, scene)
    largest = answer_question("largest", ext, scene)
    assert "#1" in largest and format_area(ext.regions[0].area_m2, True) in largest
    smallest = answer_question("smallest", ext, scene)
    assert f"#{n}" in smallest and format_area(ext.regions[-1].area_m2, True) in smallest
    listing = answer_question("list", ext, scene)
    assert len(re.findall(r"\n\| \d+ \|", listing)) == min(n, 30)
    assert ext.regions[0].location in answer_question("where", ext, scene)
    assert "MNDWI" in answer_question("why?", ext, scene)
    with pytest.raises(InstructionError):
        answer_question("what colour is the sky", ext, scene)


def test_empty_result_reply(virginia) -> None:
    scene, cache = virginia
    ext = extract(scene, ExtractionRequest(targets=("snow",)), cache)
    assert ext.selected_pixels == 0 and ext.regions == []
    assert "Found no" in explain(ext, scene)
    assert "0 regions" in answer_question("count", ext, scene)


def test_parse_then_extract_dialogue(virginia) -> None:
    scene, cache = virginia
    first = parse_instruction("extract the lakes and rivers", pixel_area_m2=scene.pixel_area_m2)
    second = parse_instruction("only keep the ones larger than 50 pixels", first.request,
                               pixel_area_m2=scene.pixel_area_m2)
    assert second.kind == "refine" and second.request.min_area_m2 == pytest.approx(50 * scene.pixel_area_m2)
    ext = extract(scene, second.request, cache)
    assert all(r.pixels >= 50 for r in ext.regions)


def test_not_georeferenced_areas_in_pixels(tmp_path: Path) -> None:
    import rasterio

    cube = np.full((4, 20, 20), 0.05, dtype=np.float32)
    cube[3] = 0.02
    cube[:, :, 10:] = np.array([0.03, 0.06, 0.04, 0.35], dtype=np.float32)[:, None, None]
    path = tmp_path / "plain.tif"
    with rasterio.open(path, "w", driver="GTiff", width=20, height=20, count=4, dtype="float32") as ds:
        ds.write(cube)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = open_scene(path, bands=["blue", "green", "red", "nir"])
    with scene:
        ext = extract(scene, ExtractionRequest(targets=("water",)))
        text = explain(ext, scene)
        assert "200 px" in text and "not georeferenced" in text
        assert "lon" not in answer_question("largest", ext, scene)
