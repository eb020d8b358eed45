"""Every bad input gives a specific SpexError (never a raw GDAL traceback)."""

from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pytest
import rasterio
from helpers import write_geotiff as write

from spex.errors import BandError, NotGeoreferencedWarning, RelativeScalingWarning, SceneReadError, SpexWarning
from spex.io import open_scene

OLINDA = "l7_olinda_crop.tif"


def test_missing_file(tmp_path):
    with pytest.raises(SceneReadError, match="not found"):
        open_scene(tmp_path / "nope.tif")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.tif"
    p.write_bytes(b"")
    with pytest.raises(SceneReadError, match="empty"):
        open_scene(p)


def test_text_file(tmp_path):
    p = tmp_path / "notes.tif"
    p.write_text("this is not an image\n" * 20)
    with pytest.raises(SceneReadError, match="not a raster"):
        open_scene(p)


def test_corrupt_tiff(tmp_path):
    p = tmp_path / "corrupt.tif"
    p.write_bytes(b"II*\x00" + os.urandom(4000))
    with pytest.raises(SceneReadError, match="corrupt"):
        open_scene(p)


@pytest.mark.parametrize("compress", ["deflate", None])
def test_truncated_tiff(tmp_path, data_dir, compress):
    with rasterio.open(data_dir / OLINDA) as ds:
        data, profile = ds.read(), ds.profile
    profile.update(compress=compress)
    full = tmp_path / "full.tif"
    with rasterio.open(full, "w", **profile) as out:
        out.write(data)
    blob = full.read_bytes()
    p = tmp_path / "truncated.tif"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(SceneReadError, match="corrupt or truncated"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpexWarning)
            open_scene(p).read()


def test_all_nodata(tmp_path):
    p = write(tmp_path / "x.tif", np.zeros((4, 20, 20), np.uint16), nodata=0)
    with pytest.raises(SceneReadError, match="no valid pixels"):
        open_scene(p)


def test_all_nan(tmp_path):
    p = write(tmp_path / "x.tif", np.full((4, 20, 20), np.nan, np.float32))
    with pytest.raises(SceneReadError, match="no valid pixels"):
        open_scene(p)


def test_absurd_dimensions(tmp_path, data_dir):
    with pytest.raises(SceneReadError, match="more than the limit"):
        open_scene(data_dir / OLINDA, max_pixels=1000)


def test_unsupported_dtype(tmp_path):
    p = write(tmp_path / "c.tif", np.ones((4, 10, 10), np.complex64))
    with pytest.raises(SceneReadError, match="complex64"):
        open_scene(p)


def test_band_count_mismatch(data_dir):
    with pytest.raises(BandError, match="6 bands"):
        open_scene(data_dir / OLINDA, bands=["blue", "green", "red", "nir"])


def test_directory_without_rasters(tmp_path):
    with pytest.raises(SceneReadError, match="no raster"):
        open_scene(tmp_path)


def test_not_georeferenced_is_accepted_with_warning(tmp_path, data_dir):
    with rasterio.open(data_dir / "solaris_ms1_BGRN_uint16.tif") as ds:
        data, desc = ds.read(), ds.descriptions
    p = tmp_path / "plain.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(p, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=4,
                           dtype=data.dtype) as out:
            out.write(data)
            out.descriptions = desc
    with pytest.warns(NotGeoreferencedWarning), pytest.warns(RelativeScalingWarning, match="plain.tif"):
        s = open_scene(p)
    with s:
        assert s.crs is None and s.pixel_area_m2 == 1.0
        assert "pixels" in s.info().to_text()


def test_several_non_georeferenced_files_rejected(tmp_path, data_dir):
    a = tmp_path / "a.tif"
    shutil.copy(data_dir / "solaris_ms1_BGRN_uint16.tif", a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(tmp_path / "b.tif", "w", driver="GTiff", width=5, height=5, count=4,
                           dtype="uint16") as out:
            out.write(np.ones((4, 5, 5), np.uint16))
        with rasterio.open(tmp_path / "c.tif", "w", driver="GTiff", width=5, height=5, count=4,
                           dtype="uint16") as out:
            out.write(np.ones((4, 5, 5), np.uint16))
    with pytest.raises(SceneReadError, match="without georeference"):
        open_scene([tmp_path / "b.tif", tmp_path / "c.tif"])


def test_only_mtl_given(tmp_path):
    p = tmp_path / "X_MTL.txt"
    p.write_text("GROUP = A\nEND_GROUP = A\n")
    with pytest.raises(SceneReadError, match="only an MTL"):
        open_scene(p)


def test_png_without_georeference_is_rgb_in_pixels(tmp_path):
    rgb = np.random.default_rng(0).integers(1, 255, size=(3, 16, 16), dtype=np.uint8)
    p = tmp_path / "photo.png"
    with warnings.catch_warnings():  # a photo has no georeference: GDAL's warning is expected here
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(p, "w", driver="PNG", width=16, height=16, count=3, dtype="uint8") as out:
            out.write(rgb)
    with (pytest.warns(NotGeoreferencedWarning), pytest.warns(SpexWarning, match="taken as RGB"),
          pytest.warns(RelativeScalingWarning, match="photo.png")):
        s = open_scene(p)
    with s:
        assert s.band_names == ("red", "green", "blue") and s.pixel_area_m2 == 1.0
