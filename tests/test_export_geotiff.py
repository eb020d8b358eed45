"""Mask Cloud-Optimized GeoTIFF: layout, grid, values, nodata."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from test_export_support import make_extraction, open_test_scene, valid_truth, water_truth

from spex.errors import ExportError, NotGeoreferencedWarning
from spex.export import write_mask_cog


def test_mask_cog_layout_grid_and_values(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        out = write_mask_cog(extraction.mask, scene, tmp_path / "out" / "mask.tif")
        with rasterio.open(out) as ds:
            assert ds.driver == "GTiff"
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert ds.profile["compress"].lower() == "deflate"
            assert ds.profile["tiled"]
            assert ds.dtypes == ("uint8",) and ds.count == 1
            assert ds.nodata == 255
            assert ds.crs == scene.crs
            assert ds.transform.almost_equals(scene.transform)
            assert (ds.height, ds.width) == (scene.height, scene.width)
            data = ds.read(1)
    assert set(np.unique(data)) == {0, 1, 255}
    np.testing.assert_array_equal(data == 255, ~valid_truth())
    np.testing.assert_array_equal(data == 1, water_truth())


def test_mask_never_selected_on_invalid_pixels(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        everything = np.ones((scene.height, scene.width), dtype=bool)
        out = write_mask_cog(everything, scene, tmp_path / "all.tif")
    with rasterio.open(out) as ds:
        data = ds.read(1)
    np.testing.assert_array_equal(data, np.where(valid_truth(), 1, 255))


def test_mask_shape_mismatch_is_an_export_error(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene, pytest.raises(ExportError, match="does not match"):
        write_mask_cog(np.zeros((5, 5), dtype=bool), scene, tmp_path / "bad.tif")
    assert not (tmp_path / "bad.tif").exists()


def test_not_georeferenced_mask_is_written_without_crs(tmp_path: Path) -> None:
    with open_test_scene(tmp_path, georeferenced=False) as scene:
        assert scene.crs is None
        with pytest.warns(NotGeoreferencedWarning):
            out = write_mask_cog(water_truth(), scene, tmp_path / "nogeo.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(out) as ds:
            assert ds.crs is None
            np.testing.assert_array_equal(ds.read(1) == 1, water_truth())
