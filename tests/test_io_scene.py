"""Scene behaviour: invalid pixels, windows, decimated reads, pixel sizes, info text, closing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from helpers import VIRGINIA as VA
from helpers import write_geotiff as write
from rasterio.transform import from_origin
from rasterio.windows import Window

from spex.errors import BandError, SpexWarning
from spex.io import Scene, SceneInfo, open_scene



def refl_cube(n=4, h=30, w=30, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.02, 0.5, size=(n, h, w)).astype(np.float32)


def test_nodata_value_and_nan_become_invalid(tmp_path):
    data = (refl_cube() * 10000).astype(np.int16)
    data[:, 0, 0] = -9999
    data[2, 1, 1] = -9999              # nodata in one band only -> whole pixel invalid
    p = write(tmp_path / "x.tif", data, nodata=-9999, descriptions=("blue", "green", "red", "nir"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpexWarning)
        s = open_scene(p)
    with s:
        ok, cube = s.valid(), s.read()
        nir_only = s.read(["nir"])
    assert not ok[0, 0] and not ok[1, 1] and ok[2, 2]
    assert np.isnan(cube[:, 1, 1]).all() and np.isnan(nir_only[0, 1, 1])
    assert np.isfinite(cube[:, ok]).all()


def test_float_nan_and_internal_mask(tmp_path):
    data = refl_cube()
    data[:, 5, 5] = np.nan
    p = tmp_path / "m.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(p, "w", driver="GTiff", width=30, height=30, count=4, dtype="float32",
                           crs="EPSG:32618", transform=from_origin(500000, 4000000, 10, 10)) as ds:
            ds.write(data)
            ds.descriptions = ("blue", "green", "red", "nir")
            mask = np.full((30, 30), 255, np.uint8)
            mask[10:12, 10:12] = 0
            ds.write_mask(mask)
    with open_scene(p) as s:
        ok = s.valid()
        assert not ok[5, 5] and not ok[10, 10] and not ok[11, 11] and ok[12, 12]
        assert ok.sum() == 900 - 5
        assert np.isnan(s.read(["red"])[0, 10, 10])


def test_windows_and_window_reads_match_full_read(data_dir):
    with open_scene([data_dir / f for f in VA]) as s:
        full = s.read(["red", "swir1"])
        tiles = list(s.windows(64))
        assert sum(w.width * w.height for w in tiles) == s.width * s.height
        for w in (tiles[0], tiles[5], tiles[-1]):
            part = s.read(["red", "swir1"], window=w)
            np.testing.assert_array_equal(part, full[:, w.row_off:w.row_off + w.height,
                                                     w.col_off:w.col_off + w.width])
            np.testing.assert_array_equal(s.valid(window=w), s.valid()[w.toslices()])
        with pytest.raises(ValueError, match="invalid window"):
            s.read(window=Window(190, 190, 50, 50))


def test_out_shape_preview(data_dir):
    with open_scene([data_dir / f for f in VA]) as s:
        small = s.read(["red", "green", "blue"], out_shape=(50, 50))
        assert small.shape == (3, 50, 50) and small.dtype == np.float32
        assert s.valid(out_shape=(50, 50)).shape == (50, 50)
        assert np.nanmean(small) == pytest.approx(np.nanmean(s.read(["red", "green", "blue"])), rel=0.1)


def test_pixel_size_in_geographic_crs(tmp_path):
    deg = 8.983152841195214e-05                 # ~10 m at the equator
    p = write(tmp_path / "g.tif", (refl_cube() * 10000).astype(np.uint16), crs="EPSG:4326",
              transform=from_origin(-56.374, -1.459, deg, deg), descriptions=("B02", "B03", "B04", "B08"))
    with open_scene(p) as s:
        sx, sy = s.pixel_size_m
        assert sx == pytest.approx(10.0, abs=0.05) and sy == pytest.approx(9.93, abs=0.05)
        assert s.pixel_area_m2 == pytest.approx(sx * sy)
        assert "EPSG:4326" in s.info().to_text()


def test_info_text_lists_everything(data_dir):
    with open_scene([data_dir / f for f in VA]) as s:
        info = s.info()
    assert isinstance(info, SceneInfo)
    text = info.to_text()
    for needle in ("Sentinel-2 L1C", "EPSG:32618", "10.00 x 10.00 m", "nir08", "865 nm", "B8A",
                   "0.0001", "Notes:", "resampled"):
        assert needle in text, needle
    with pytest.raises(AttributeError):
        info.sensor = "x"  # type: ignore[misc]


def test_has_bands_and_unknown_band(data_dir):
    with open_scene(data_dir / VA[0]) as s:
        assert s.has("red", "nir") and s.has("B04") and not s.has("swir1")
        with pytest.raises(BandError, match="not in this scene"):
            s.read(["swir1"])


def test_context_manager_closes_datasets(data_dir):
    with open_scene(data_dir / VA[0]) as s:
        assert isinstance(s, Scene)
        s.read(["red"], window=Window(0, 0, 4, 4))
    with pytest.raises(Exception):
        s.read(["red"], window=Window(0, 0, 4, 4))


def test_read_is_float32_and_bounds(data_dir):
    with open_scene(data_dir / VA[0]) as s:
        cube = s.read()
        assert cube.dtype == np.float32 and cube.shape == (4, 200, 200)
        b = s.bounds
        assert (b.left, b.top) == (443630.0, 4172560.0) and b.right - b.left == 2000.0


def test_folder_of_band_files(data_dir, tmp_path):
    for f in VA:
        (tmp_path / f).write_bytes((data_dir / f).read_bytes())
    with open_scene(tmp_path) as s:
        assert len(s.band_names) == 13 and s.width == 200


def test_pixels_zero_in_every_band_are_padding(tmp_path, data_dir):
    with rasterio.open(data_dir / "solaris_ms1_BGRN_uint16.tif") as ds:
        data, desc, profile = ds.read(), ds.descriptions, ds.profile
    data[:, :, :100] = 0                                  # padding strip, as in solaris ms2/ms3
    data[3, 200, 200] = 0                                 # a single zero in one band stays valid
    p = tmp_path / "padded.tif"
    with rasterio.open(p, "w", **profile) as out:
        out.write(data)
        out.descriptions = desc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpexWarning)
        s = open_scene(p)
    with s:
        ok = s.valid()
        assert not ok[:, :100].any() and ok[200, 200]
        assert np.isnan(s.read(["nir"])[0, :, :100]).all()
        assert any("0 in every band" in n for n in s.notes)
