"""Markdown report and the write_outputs bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import rasterio
import rasterio.features
from helpers import Counted
from PIL import Image
from test_export_support import HEIGHT, WIDTH, make_extraction, open_test_scene

from spex.export import Outputs, write_outputs, write_regions_geojson, write_regions_gpkg, write_report


def test_report_has_scene_dialogue_request_regions_evidence_caveats(tmp_path: Path) -> None:
    transcript = [("user", "extract the water bodies"), ("assistant", "## Water\nI found 14 regions."),
                  ("user", "only the ones larger than 2 ha")]
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        text = write_report(transcript, extraction, scene, tmp_path / "report.md").read_text(encoding="utf-8")
        scene_text = scene.info().to_text().strip()
    assert text.startswith("# SPEX chat report")
    assert scene_text.splitlines()[0] in text
    assert "**User:**" in text and "> extract the water bodies" in text and "> only the ones larger than 2 ha" in text
    assert "> ## Water" in text  # the reply's own heading stays quoted inside the conversation
    assert "- Request: water bodies" in text
    lake = extraction.regions[0]
    assert f"| 1 | {lake.area_ha:,.2f} ha | {lake.size_class} | {lake.location} |" in text
    assert f"- Regions: {len(extraction.regions)}" in text
    assert "| NDWI | `(green - nir) / (green + nir)`" in text and "NDWI > 0.000" in text
    assert "cloud mask: 0 px removed" in text
    assert "- synthetic test scene" in text
    assert "## Caveats" in text


def test_report_without_extraction(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        text = write_report([], None, scene, tmp_path / "r.md").read_text(encoding="utf-8")
    assert "_No extraction was made in this session._" in text and "_No messages._" in text


def test_write_outputs_bundle(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        outputs = write_outputs(extraction, scene, tmp_path / "turn1", reply="Found **14** water bodies.",
                                false_colour=True)
    assert isinstance(outputs, Outputs)
    assert [p.name for p in outputs.paths()] == ["mask.tif", "regions.geojson", "regions.gpkg", "overlay.png", "reply.md"]
    assert all(p.parent == tmp_path / "turn1" and p.stat().st_size > 0 for p in outputs.paths())
    with rasterio.open(outputs.mask_tif) as ds:
        assert int((ds.read(1) == 1).sum()) == int(extraction.mask.sum())
    assert len(json.loads(outputs.geojson.read_text())["features"]) == len(extraction.regions)
    with Image.open(outputs.overlay_png) as image:
        assert image.width >= WIDTH and image.height > HEIGHT
        assert "false colour" in image.text["spex:bands"]
    assert outputs.reply_md.read_text(encoding="utf-8") == "Found **14** water bodies.\n"
    assert np.any(extraction.mask)


def test_write_outputs_reads_and_traces_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mask COG and the overlay share one validity read; GeoJSON and GeoPackage share one tracing."""
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        alone = write_regions_geojson(extraction, scene, tmp_path / "alone.geojson")
        alone_gpkg = write_regions_gpkg(extraction, scene, tmp_path / "alone.gpkg")
        traced = Counted(rasterio.features.shapes)
        monkeypatch.setattr(rasterio.features, "shapes", traced)
        scene.read, scene.valid = Counted(scene.read), Counted(scene.valid)  # shadow the methods
        outputs = write_outputs(extraction, scene, tmp_path / "turn1", reply="ok")
        assert traced.calls == 1
        assert scene.read.calls == 1  # 160 x 120 px: full-resolution preview
        # validity: the scene's own mask, built by the extraction, serves the COG and the overlay
        assert scene.valid_known() is not None and scene.valid.calls == 0
        del scene.read, scene.valid
    assert outputs.geojson.read_bytes() == alone.read_bytes()
    shared, own = pyogrio.raw.read(outputs.gpkg), pyogrio.raw.read(alone_gpkg)
    assert list(shared[2]) == list(own[2])  # geometries (WKB), in rank order
    for a, b in zip(shared[3], own[3], strict=True):
        np.testing.assert_array_equal(a, b)


def test_geojson_written_in_batches_is_the_one_shot_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Features encoded (and reprojected) a few vertices at a time give the bytes of one json.dumps."""
    import spex.export.vector as vector

    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        one_shot = json.dumps(vector.regions_feature_collection(extraction, scene), separators=(",", ":"),
                              allow_nan=False)
        monkeypatch.setattr(vector, "_GEOJSON_BATCH_VERTICES", 12)
        assert len(vector._batches(vector.region_features(extraction, scene, lonlat=False))) > 2
        path = vector.write_regions_geojson(extraction, scene, tmp_path / "batched.geojson")
    assert len(json.loads(one_shot)["features"]) > 2
    assert path.read_text(encoding="utf-8") == one_shot
