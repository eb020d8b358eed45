"""Cloud test: typical spectra, sensor variants, real clear spectra and a clear S2 crop."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import rasterio

from spex.errors import BandError
from spex.spectral import IndexCache, cloud_mask

_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
# Typical TOA-like reflectance spectra (blue, green, red, nir, swir1, swir2).
_SPECTRA = {
    "thick cloud": (0.45, 0.44, 0.43, 0.46, 0.34, 0.22),
    "bright cloud": (0.62, 0.60, 0.60, 0.62, 0.42, 0.28),
    "snow": (0.85, 0.83, 0.80, 0.70, 0.08, 0.06),
    "bright sand": (0.20, 0.28, 0.36, 0.42, 0.50, 0.44),
    "white concrete roof": (0.30, 0.31, 0.32, 0.33, 0.36, 0.33),
    "vegetation": (0.04, 0.08, 0.05, 0.40, 0.20, 0.10),
    "turbid water": (0.10, 0.12, 0.10, 0.05, 0.02, 0.01),
}


def _stack(names, bands=_BANDS):
    arr = np.array([_SPECTRA[n] for n in names], dtype=np.float32).T
    return {b: arr[i] for i, b in enumerate(_BANDS) if b in bands}


def test_only_clouds_flagged_with_swir():
    names = list(_SPECTRA)
    got = cloud_mask(_stack(names))
    assert dict(zip(names, got.tolist())) == {n: n.endswith("cloud") for n in names}


def test_four_band_needs_brighter_white_pixels():
    names = ["bright cloud", "thick cloud", "white concrete roof", "bright sand", "vegetation"]
    got = cloud_mask(_stack(names, ("blue", "green", "red", "nir")))
    assert got.tolist() == [True, True, False, False, False]


def test_cirrus_flags_thin_cirrus_over_dark_land():
    b = _stack(["vegetation", "vegetation"])
    b["cirrus"] = np.array([0.03, 0.002], dtype=np.float32)
    assert cloud_mask(b).tolist() == [True, False]


def test_thermal_vetoes_warm_bright_pixels_only_in_kelvin():
    b = _stack(["thick cloud", "thick cloud"])
    b["thermal"] = np.array([275.0, 310.0], dtype=np.float32)
    assert cloud_mask(b).tolist() == [True, False]
    b["thermal"] = np.array([0.2, 0.9], dtype=np.float32)  # relative units: ignored
    assert cloud_mask(b).tolist() == [True, True]


def test_nan_never_cloud_and_missing_band_error():
    b = _stack(["thick cloud", "thick cloud"])
    b["red"] = np.array([np.nan, 0.43], dtype=np.float32)
    assert cloud_mask(b).tolist() == [False, True]
    with pytest.raises(BandError, match="red"):
        cloud_mask({"blue": np.zeros(2), "green": np.zeros(2)})


def test_no_false_positive_on_labelled_landsat_spectra(data_dir: Path):
    with open(data_dir / "spyndex_spectral.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cols = {"blue": "SR_B2", "green": "SR_B3", "red": "SR_B4", "nir": "SR_B5", "swir1": "SR_B6",
            "swir2": "SR_B7", "thermal": "ST_B10"}
    b = {k: np.array([float(r[c]) for r in rows], dtype=np.float32) for k, c in cols.items()}
    assert not cloud_mask(b).any()


def test_clear_sentinel2_crop_has_no_cloud(data_dir: Path):
    from spex.io import open_scene

    with rasterio.open(data_dir / "eolearn_clm_2015-07-11.tif") as ref:
        assert ref.read(1).max() == 0  # s2cloudless says: clear
    with open_scene(data_dir / "eolearn_s2l1c_2015-07-11_13band.tif") as scene:
        assert IndexCache(scene).cloud().mean() <= 0.001


def test_cloud_objects_drop_small_and_thin_bright_objects():
    from spex.spectral.cloud import cloud_objects

    m = np.zeros((80, 80), dtype=bool)
    m[5:45, 5:45] = True          # 400 m cloud at 10 m: kept whole, edges included
    m[5, 45:60] = True            # ragged edge attached to the cloud: kept with it
    m[60:65, 60:65] = True        # 50 m white roof: dropped
    m[50:52, 0:80] = True         # 20 m wide bright beach strip: dropped
    out = cloud_objects(m, 10.0)
    assert out[5:45, 5:45].all() and out[5, 45:60].all()
    assert not out[60:65, 60:65].any() and not out[50:52].any()
    # the same roof at 60 m pixels (300 m across) is large enough to be a cloud
    assert cloud_objects(m, 60.0)[60:65, 60:65].all()
    # unknown pixel size: 2-pixel core
    assert cloud_objects(m, None)[60:65, 60:65].all() and not cloud_objects(m, None)[50:52].any()
    assert not cloud_objects(np.zeros((4, 4), dtype=bool), 10.0).any()


def test_cloud_objects_keep_scene_filling_cloud():
    from spex.spectral.cloud import cloud_objects

    m = np.ones((30, 30), dtype=bool)
    m[0, 0] = False
    assert cloud_objects(m, 10.0).sum() == m.sum()  # the image edge is not clear sky
    with pytest.raises(ValueError):
        cloud_objects(np.ones(5, dtype=bool), 10.0)
