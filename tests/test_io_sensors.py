"""Sensor identification from all files together, --sensor with ids by name, and upload sorting."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from spex.io import open_scene, sort_scene_files

L8_IDS = (1, 2, 3, 4, 5, 6, 7, 9, 10, 11)


def _landsat8_files(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in L8_IDS:
        path = tmp_path / f"l8_B{i}.tif"
        lo, hi = (25000, 26000) if i >= 10 else (7000, 20000)   # thermal DN: narrow spread
        with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=1, dtype="uint16",
                           crs="EPSG:32633", transform=from_origin(500000, 5000000, 30, 30)) as ds:
            ds.write(rng.integers(lo, hi, (1, 16, 16)).astype("uint16"))
        paths.append(path)
    return paths


@pytest.mark.parametrize("sensor", [None, "landsat_oli"])
def test_landsat8_band_files_with_b11_are_landsat8(tmp_path: Path, sensor: str | None) -> None:
    """B10/B11 are Landsat 8 thermal ids too: they must not turn the scene into Sentinel-2; ids beat position."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_scene(_landsat8_files(tmp_path), sensor=sensor) as scene:
            assert "Landsat 8" in scene.sensor
            info = scene.info().to_text()
            names = scene.band_names
    for role in ("coastal", "blue", "green", "red", "nir", "swir1", "swir2", "cirrus", "thermal"):
        assert role in names
    assert "rededge1" not in names
    assert "cirrus        1375 nm   (B9" in info
    assert "nir            842 nm   (B5" in info


def test_sort_scene_files_keeps_what_it_can(tmp_path: Path) -> None:
    names = ["LC08_X_SR_B4.TIF", "LC08_X_SR_B5.TIF", "LC08_X_QA_PIXEL.TIF", "LC08_X_MTL.txt", "LC08_X_MTL.json",
             "LT05_X_BQA.TIF", "MSK_CLDPRB_20m.jp2", "T33UUP_B04_10m.jp2", "thumb.png", "notes.xml", "data.zip"]
    files = sort_scene_files([tmp_path / n for n in names])
    assert [p.name for p in files.bands] == ["LC08_X_SR_B4.TIF", "LC08_X_SR_B5.TIF", "T33UUP_B04_10m.jp2"]
    assert files.mtl is not None and files.mtl.name == "LC08_X_MTL.txt"
    assert [p.name for p in files.qa] == ["LC08_X_QA_PIXEL.TIF", "LT05_X_BQA.TIF", "MSK_CLDPRB_20m.jp2"]
    skipped = {p.name: why for p, why in files.skipped}
    assert set(skipped) == {"LC08_X_MTL.json", "thumb.png", "notes.xml", "data.zip"}
    assert all(why for why in skipped.values())


def test_open_scene_keeps_qa_file_out_of_the_bands(tmp_path: Path) -> None:
    paths = _landsat8_files(tmp_path)
    qa = tmp_path / "LC08_X_QA_PIXEL.TIF"
    with rasterio.open(qa, "w", driver="GTiff", width=16, height=16, count=1, dtype="uint16", crs="EPSG:32633",
                       transform=from_origin(500000, 5000000, 30, 30)) as ds:
        ds.write(np.full((1, 16, 16), 21824, dtype="uint16"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_scene([*paths, qa]) as scene:
            assert "Landsat 8" in scene.sensor
            assert qa not in scene.paths
            assert any("QA_PIXEL" in n for n in scene.notes)
