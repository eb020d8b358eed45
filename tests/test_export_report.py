"""Markdown report and the write_outputs bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from test_export_support import HEIGHT, WIDTH, make_extraction, open_test_scene

from spex.export import Outputs, write_outputs, write_report


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
