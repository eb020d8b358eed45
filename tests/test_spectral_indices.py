"""Spectral indices: labelled Landsat-8 spectra (spyndex, MIT), spyndex parity, NaN handling."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from spex.errors import BandError
from spex.spectral import INDICES, available_indices, compute_index, normalized_difference, resolve_index

# Landsat 8 OLI SR columns -> canonical band names
_L8 = {"coastal": "SR_B1", "blue": "SR_B2", "green": "SR_B3", "red": "SR_B4", "nir": "SR_B5",
       "swir1": "SR_B6", "swir2": "SR_B7"}
# our index -> spyndex id (AWEInsh left out on purpose: spyndex misprints its sign, see indices.py)
_SPYNDEX_ID = {"NDVI": "NDVI", "NDWI": "NDWI", "MNDWI": "MNDWI", "NDBI": "NDBI", "BSI": "BI", "NDSI": "NDSI",
               "NDMI": "NDMI", "EVI": "EVI", "SAVI": "SAVI", "AWEIsh": "AWEIsh"}
_SPYNDEX_BAND = {"blue": "B", "green": "G", "red": "R", "nir": "N", "swir1": "S1", "swir2": "S2"}


@pytest.fixture(scope="module")
def spectra(data_dir: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    with open(data_dir / "spyndex_spectral.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    bands = {k: np.array([float(r[c]) for r in rows], dtype=np.float32) for k, c in _L8.items()}
    return bands, np.array([r["class"] for r in rows])


def test_water_samples_have_positive_water_indices(spectra):
    bands, cls = spectra
    water = cls == "Water"
    assert water.sum() == 37
    assert np.mean(compute_index("NDWI", bands)[water] > 0) >= 0.9
    assert np.mean(compute_index("MNDWI", bands)[water] > 0) >= 0.9
    assert np.mean(compute_index("NDWI", bands)[~water] > 0) <= 0.1


def test_vegetation_samples_have_high_ndvi(spectra):
    bands, cls = spectra
    veg = cls == "Vegetation"
    ndvi = compute_index("NDVI", bands)
    assert np.mean(ndvi[veg] > 0.3) >= 0.9
    assert np.mean(ndvi[cls == "Water"] > 0.3) <= 0.1


def test_urban_is_more_built_up_and_bare_than_vegetation(spectra):
    bands, cls = spectra
    ndbi, bsi = compute_index("NDBI", bands), compute_index("BSI", bands)
    assert ndbi[cls == "Urban"].mean() > ndbi[cls == "Vegetation"].mean() + 0.2
    assert bsi[cls == "Urban"].mean() > bsi[cls == "Vegetation"].mean() + 0.2


@pytest.mark.parametrize("name", sorted(_SPYNDEX_ID))
def test_matches_spyndex(spectra, name):
    spyndex = pytest.importorskip("spyndex")
    bands, _ = spectra
    idx = INDICES[name]
    params: dict = {_SPYNDEX_BAND[b]: bands[b].astype(np.float64) for b in idx.bands}
    params.update({"g": 2.5, "C1": 6.0, "C2": 7.5, "L": 1.0} if name == "EVI" else {})
    params.update({"L": 0.5} if name == "SAVI" else {})
    expected = np.asarray(spyndex.computeIndex(_SPYNDEX_ID[name], params=params), dtype=np.float64)
    got = compute_index(name, bands)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # metadata sourced from the same catalogue
    assert spyndex.indices[_SPYNDEX_ID[name]].reference.split("/")[-1] in idx.reference


def test_awei_nsh_follows_feyisa_2014():
    b = {"green": np.float32(0.08), "swir1": np.float32(0.02), "nir": np.float32(0.04), "swir2": np.float32(0.01)}
    # 4 * (0.08 - 0.02) - (0.25 * 0.04 + 2.75 * 0.01) = 0.24 - 0.0375
    assert float(compute_index("AWEInsh", b)) == pytest.approx(0.2025, abs=1e-6)


def test_known_value_and_every_index_documented():
    assert float(compute_index("ndvi", {"nir": np.float32(0.5), "red": np.float32(0.1)})) == pytest.approx(2 / 3, 1e-6)
    for idx in INDICES.values():
        assert idx.formula and idx.reference and idx.long_name
        assert all(b in idx.formula for b in idx.bands)
    assert {"NDVI", "NDWI", "MNDWI", "NDBI", "BSI", "NDSI", "EVI", "SAVI", "AWEIsh", "AWEInsh", "NDMI"} <= set(INDICES)


def test_normalized_difference_nan_and_guards():
    a = np.array([0.3, np.nan, 0.0, 0.05, 1e-8, 0.2], dtype=np.float32)
    b = np.array([0.1, 0.2, 0.0, -0.04, 0.0, np.nan], dtype=np.float32)
    out = normalized_difference(a, b)
    assert out.dtype == np.float32
    assert out[0] == pytest.approx(0.5)
    assert np.isnan(out[1]) and np.isnan(out[2]) and np.isnan(out[4]) and np.isnan(out[5])
    assert out[3] == 1.0  # negative reflectance would give 9.0: clipped into [-1, 1]


def test_nan_propagates_through_compound_indices():
    b = {k: np.array([0.1, np.nan], dtype=np.float32) for k in ("blue", "green", "red", "nir", "swir1", "swir2")}
    for name in INDICES:
        out = compute_index(name, b)
        assert np.isnan(out[1]), name
        assert np.isfinite(out[0]) or name in ("NDVI", "NDWI", "MNDWI", "NDBI", "BSI", "NDSI", "NDMI"), name


def test_available_indices_per_sensor():
    assert available_indices(["red", "green", "blue"]) == []
    assert available_indices(["blue", "green", "red", "nir"]) == ["NDVI", "NDWI", "EVI", "SAVI"]
    s2 = ["coastal", "blue", "green", "red", "rededge1", "nir", "nir08", "swir1", "swir2", "cirrus"]
    assert available_indices(s2) == list(INDICES)
    assert "NDVI" in available_indices(["red", "nir08"])  # narrow NIR stands in for broad NIR


def test_narrow_nir_substitutes_and_errors():
    out = compute_index("NDVI", {"red": np.float32(0.1), "nir08": np.float32(0.3)})
    assert float(out) == pytest.approx(0.5)
    with pytest.raises(BandError, match="swir1"):
        compute_index("NDBI", {"nir": np.zeros(3), "red": np.zeros(3)})
    with pytest.raises(ValueError, match="supported"):
        resolve_index("NDXYZ")
