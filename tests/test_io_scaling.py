"""DN -> reflectance: S2 x1e-4, the L2A +0.1 offset, Landsat MTL calibration, relative normalisation."""

from __future__ import annotations

import datetime as dt
import functools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import write_geotiff

from spex.errors import RelativeScalingWarning, SceneReadError, SpexWarning
from spex.io import open_scene
from spex.io.mtl import earth_sun_distance, parse_mtl

S2_L2A_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")


#: Synthetic Landsat-like files: 30 m pixels in UTM 22N.
write = functools.partial(write_geotiff, crs="EPSG:32622", origin=(600_000.0, 9_600_000.0), res=30.0)


def test_s2_integer_times_1e4(data_dir):
    path = data_dir / "s2l1c_virginia_small_10m_B02-B03-B04-B08.tif"
    with rasterio.open(path) as ds:
        dn = ds.read(3).astype(np.float64)
    with open_scene(path) as s:
        red = s.read(["red"])[0]
        assert "0.0001" in s.scaling and s.calibrated
        assert not any("Offset removed" in n for n in s.notes)
    np.testing.assert_allclose(red, dn * 1e-4, rtol=1e-6)


def _l2a_cube(offset_dn: int) -> np.ndarray:
    """Left half water (0.02 in every band), right half vegetation; reflectance x 1e4 + offset."""
    refl = np.zeros((12, 40, 40), np.float32)
    refl[:, :, :20] = 0.02
    veg = np.array([0.03, 0.03, 0.06, 0.03, 0.1, 0.3, 0.38, 0.4, 0.42, 0.4, 0.2, 0.1], np.float32)
    refl[:, :, 20:] = veg[:, None, None]
    return (np.round(refl * 10000) + offset_dn).astype(np.uint16)


def test_l2a_offset_detected_and_removed(tmp_path):
    p = write(tmp_path / "S2_L2A_scene.tif", _l2a_cube(1000), descriptions=S2_L2A_IDS)
    with open_scene(p) as s:
        cube = s.read()
        assert s.sensor == "Sentinel-2 L2A"
        assert any("Offset removed" in n for n in s.notes)
        assert "minus the +0.1" in s.scaling
    np.testing.assert_allclose(cube[:, :, :20], 0.02, atol=1e-5)
    assert cube[s.band_names.index("nir"), 0, 30] == pytest.approx(0.4, abs=1e-5)


def test_l2a_without_offset_untouched(tmp_path):
    p = write(tmp_path / "S2_L2A_scene.tif", _l2a_cube(0), descriptions=S2_L2A_IDS)
    with open_scene(p) as s:
        cube = s.read()
        assert not any("Offset removed" in n for n in s.notes)
    np.testing.assert_allclose(cube[:, :, :20], 0.02, atol=1e-5)


def test_l2a_float_offset(tmp_path):
    """Float reflectance with the offset still in (as in rstoolbox sen2: water ~0.12 in every band)."""
    data = (_l2a_cube(1000).astype(np.float32) / 10000).astype(np.float32)
    p = write(tmp_path / "sen2_like.tif", data, descriptions=[i.replace("B0", "B") for i in S2_L2A_IDS])
    with open_scene(p) as s:
        assert s.sensor == "Sentinel-2 L2A"
        np.testing.assert_allclose(s.read(["green"])[0, :, :20], 0.02, atol=1e-5)


# --- Landsat MTL -------------------------------------------------------------------------
TM_MTL = """GROUP = L1_METADATA_FILE
  GROUP = PRODUCT_METADATA
    SPACECRAFT_ID = "LANDSAT_5"
    SENSOR_ID = "TM"
    DATE_ACQUIRED = 2000-01-04
  END_GROUP = PRODUCT_METADATA
  GROUP = IMAGE_ATTRIBUTES
    SUN_ELEVATION = 90.0
  END_GROUP = IMAGE_ATTRIBUTES
  GROUP = MIN_MAX_RADIANCE
{radiance}
  END_GROUP = MIN_MAX_RADIANCE
  GROUP = MIN_MAX_PIXEL_VALUE
{quant}
  END_GROUP = MIN_MAX_PIXEL_VALUE
END_GROUP = L1_METADATA_FILE
END
"""
TM_LMAX = {1: 193.0, 2: 365.0, 3: 264.0, 4: 221.0, 5: 30.2, 6: 15.303, 7: 16.5}
TM_LMIN = {1: -1.52, 2: -2.84, 3: -1.17, 4: -1.51, 5: -0.37, 6: 1.238, 7: -0.15}
PRODUCT = "LT05_L1TP_224063_20000104_20170101_01_T1"


def _write_tm_scene(folder: Path, dn: int = 100, thermal_dn: int = 140) -> list[Path]:
    radiance = "\n".join(f"    RADIANCE_MAXIMUM_BAND_{b} = {TM_LMAX[b]}\n    RADIANCE_MINIMUM_BAND_{b} = {TM_LMIN[b]}"
                         for b in range(1, 8))
    quant = "\n".join(f"    QUANTIZE_CAL_MAX_BAND_{b} = 255\n    QUANTIZE_CAL_MIN_BAND_{b} = 1" for b in range(1, 8))
    (folder / f"{PRODUCT}_MTL.txt").write_text(TM_MTL.format(radiance=radiance, quant=quant))
    paths = []
    rng = np.random.default_rng(0)
    for b in range(1, 8):
        data = rng.integers(20, 120, size=(1, 20, 20)).astype(np.uint8)
        data[0, 5, 5] = thermal_dn if b == 6 else dn
        data[0, 0, 0] = 0     # Landsat fill
        paths.append(write(folder / f"{PRODUCT}_B{b}.TIF", data))
    return paths


def test_old_mtl_radiance_to_toa_reflectance(tmp_path):
    paths = _write_tm_scene(tmp_path)
    with open_scene(paths) as s:          # MTL found beside the band files
        assert s.sensor == "Landsat 5 TM"
        assert s.calibrated and "TOA reflectance" in s.scaling
        cube = s.read()
        red = cube[s.band_names.index("red")]
        # by hand: gain = (264 + 1.17) / 254, bias = -1.17 - gain; L(100) = 102.1837 W m-2 sr-1 um-1;
        # d = 1 - 0.01672 cos(0) = 0.98328 AU; rho = pi * L * d^2 / (ESUN_B3 1536 * sin 90) = 0.20207
        assert red[5, 5] == pytest.approx(0.20207, abs=3e-4)
        # thermal: L(140) = 8.93499; BT = 1260.56 / ln(607.76 / L + 1) = 297.69 K
        assert cube[s.band_names.index("thermal"), 5, 5] == pytest.approx(297.69, abs=0.1)
        # DN 0 is Landsat fill -> invalid
        assert not s.valid()[0, 0] and np.isnan(cube[:, 0, 0]).all()


def test_explicit_mtl_argument(tmp_path):
    paths = _write_tm_scene(tmp_path)
    stack = np.stack([rasterio.open(p).read(1) for p in paths])
    single = write(tmp_path / "stack.tif", stack, descriptions=[f"B{b}_dn" for b in range(1, 8)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpexWarning)
        with open_scene(single) as s:
            assert not s.calibrated            # MTL name does not match: not found, relative
    with open_scene(single, mtl=tmp_path / f"{PRODUCT}_MTL.txt") as s:
        assert s.calibrated and s.sensor == "Landsat 5 TM"
        assert s.read(["red"])[0, 5, 5] == pytest.approx(0.20207, abs=3e-4)


def test_oli_reflectance_mult(tmp_path):
    mtl = ("GROUP = LANDSAT_METADATA_FILE\n GROUP = IMAGE_ATTRIBUTES\n  SPACECRAFT_ID = \"LANDSAT_8\"\n"
           "  DATE_ACQUIRED = 2020-06-01\n  SUN_ELEVATION = 30.0\n END_GROUP = IMAGE_ATTRIBUTES\n"
           " GROUP = LEVEL1_RADIOMETRIC_RESCALING\n"
           + "".join(f"  REFLECTANCE_MULT_BAND_{b} = 2.0000E-05\n  REFLECTANCE_ADD_BAND_{b} = -0.100000\n"
                     for b in range(1, 8))
           + " END_GROUP = LEVEL1_RADIOMETRIC_RESCALING\nEND_GROUP = LANDSAT_METADATA_FILE\nEND\n")
    (tmp_path / "LC08_L1TP_001002_20200601_20200608_02_T1_MTL.txt").write_text(mtl)
    paths = []
    for b in range(1, 8):
        data = np.full((1, 10, 10), 20000, np.uint16)
        paths.append(write(tmp_path / f"LC08_L1TP_001002_20200601_20200608_02_T1_B{b}.TIF", data))
    with open_scene(paths) as s:
        assert s.band_names[0] == "coastal" and "OLI" in s.sensor
        # (2e-5 * 20000 - 0.1) / sin(30 deg) = 0.6
        np.testing.assert_allclose(s.read(), 0.6, atol=1e-5)


def test_mtl_parser_and_distance():
    mtl = parse_mtl('GROUP = A\n  X = "y"\n  N = 3.5\nEND_GROUP = A\n')
    assert mtl.first("X") == "y" and mtl.number("N") == 3.5
    assert earth_sun_distance(dt.date(2000, 1, 4)) == pytest.approx(0.98328, abs=1e-5)
    assert earth_sun_distance(dt.date(2000, 7, 4)) == pytest.approx(1.0167, abs=1e-3)
    with pytest.raises(SceneReadError):
        parse_mtl("no metadata here")


def test_bad_mtl_is_an_error(tmp_path, data_dir):
    bad = tmp_path / "x_MTL.txt"
    bad.write_text("hello")
    with pytest.raises(SceneReadError, match="MTL"):
        open_scene(data_dir / "l7_olinda_crop.tif", mtl=bad)


def test_relative_normalisation_warns_and_keeps_physics(data_dir):
    with pytest.warns(RelativeScalingWarning):
        s = open_scene(data_dir / "l7_olinda_crop.tif")
    with s:
        assert not s.calibrated and "relative" in s.scaling
        assert any("relative" in n for n in s.notes)
        g, r, n = s.read(["green", "red", "nir"])
    assert np.nanpercentile(n, 99.5) == pytest.approx(0.48, abs=0.01)
    assert np.nanpercentile(r, 0.5) == pytest.approx(0.02, abs=0.005)
    water = n < np.nanpercentile(n, 10)            # darkest NIR: the ocean in the east
    assert np.nanmean((g - n)[water] / (g + n)[water]) > 0.2
    veg = (n - r) / (n + r) > 0.3
    assert 0.05 < veg.mean() < 0.8


def test_float_reflectance_used_as_is(tmp_path):
    data = np.random.default_rng(5).uniform(0.01, 0.5, size=(4, 20, 20)).astype(np.float32)
    p = write(tmp_path / "refl.tif", data, descriptions=["blue", "green", "red", "nir"])
    with open_scene(p) as s:
        assert s.calibrated
        np.testing.assert_allclose(s.read(), data, rtol=1e-6)


def test_uint16_sentinel2_zero_is_fill(tmp_path):
    data = _l2a_cube(0)
    data[:, 3, 3] = 0
    with open_scene(write(tmp_path / "S2_L2A.tif", data, descriptions=S2_L2A_IDS)) as s:
        assert not s.valid()[3, 3]
        assert math.isnan(s.read(["red"])[0, 3, 3])


def test_bright_scene_is_not_mistaken_for_offset(tmp_path):
    """A cloud deck is bright in every band, but its NIR/SWIR floor (> 0.2) is not water + 0.1."""
    refl = np.random.default_rng(6).uniform(0.3, 0.6, size=(12, 30, 30)).astype(np.float32)
    p = write(tmp_path / "S2_L2A_cloud.tif", np.round(refl * 10000).astype(np.uint16), descriptions=S2_L2A_IDS)
    with open_scene(p) as s:
        assert not any("Offset removed" in n for n in s.notes)
        np.testing.assert_allclose(s.read(["nir"])[0], refl[7], atol=1e-4)


def test_mtl_listed_among_paths(tmp_path):
    paths = _write_tm_scene(tmp_path)
    renamed = []
    for p in paths:                       # names no longer match the product id: only the listed MTL helps
        q = p.with_name("scene_" + p.name.split("_")[-1])
        p.rename(q)
        renamed.append(q)
    with open_scene(renamed + [tmp_path / f"{PRODUCT}_MTL.txt"]) as s:
        assert s.calibrated and s.sensor == "Landsat 5 TM"
