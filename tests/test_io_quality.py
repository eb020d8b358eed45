"""Supplied quality flags (QA_PIXEL, BQA, SCL, MSK_CLDPRB) decide cloud and shadow; C2 Level-2 scaling."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import write_geotiff
from rasterio.transform import from_origin

from spex.engine.extract import extract
from spex.engine.request import ExtractionRequest
from spex.io import open_scene
from spex.io.quality import decode_qa, qa_kind
from spex.spectral import IndexCache

T30 = from_origin(500000, 5000000, 30, 30)


def _write(path: Path, data: np.ndarray, transform=T30) -> Path:
    return write_geotiff(path, data if data.ndim == 3 else data[None], crs="EPSG:32633", transform=transform)


def _c2_l2_bands(tmp_path: Path, n: int = 40) -> list[Path]:
    """Landsat 8 Collection 2 Level-2 SR bands of vegetation: DN = (reflectance + 0.2) / 2.75e-5."""
    refl = {1: 0.03, 2: 0.04, 3: 0.07, 4: 0.05, 5: 0.30, 6: 0.15, 7: 0.07}
    rng = np.random.default_rng(0)
    out = []
    for b, r in refl.items():
        dn = ((r * (1 + 0.05 * rng.standard_normal((n, n))) + 0.2) / 2.75e-5).astype("uint16")
        out.append(_write(tmp_path / f"LC08_L2SP_190026_20200101_20200110_02_T1_SR_B{b}.TIF", dn))
    return out


def _qa_pixel(n: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    qa = np.full((n, n), 21824, dtype="uint16")          # clear land, low confidences (USGS value)
    cloud = np.zeros((n, n), dtype=bool)
    cloud[5:15, 5:20] = True
    shadow = np.zeros((n, n), dtype=bool)
    shadow[20:28, 10:25] = True
    qa[cloud] = (1 << 3) | (3 << 8)                       # cloud, high confidence
    qa[shadow] = (1 << 4) | (3 << 10)                     # cloud shadow, high confidence
    return qa, cloud, shadow


def test_c2_level2_files_are_surface_reflectance_without_mtl(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_scene(_c2_l2_bands(tmp_path)) as scene:
            assert "Landsat 8" in scene.sensor and scene.calibrated
            nir = scene.read(["nir"])[0]
            assert abs(float(np.median(nir)) - 0.30) < 0.01
            assert any("2.75e-05" in n for n in scene.notes)


def test_qa_pixel_flags_decide_cloud_and_shadow(tmp_path: Path) -> None:
    qa, cloud, shadow = _qa_pixel()
    paths = [*_c2_l2_bands(tmp_path), _write(tmp_path / "LC08_L2SP_190026_20200101_20200110_02_T1_QA_PIXEL.TIF", qa)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_scene(paths) as scene:
            assert len(scene.band_names) == 7 and scene.quality() is not None
            assert any("QA_PIXEL" in n and "cloud 9.4 %" in n for n in scene.notes)
            cache = IndexCache(scene)
            got_cloud = extract(scene, ExtractionRequest(targets=("cloud",)), cache)
            got_shadow = extract(scene, ExtractionRequest(targets=("shadow",)), cache)
            veg = extract(scene, ExtractionRequest(targets=("vegetation",)), cache)
    assert np.array_equal(got_cloud.mask, cloud)          # the spectral test would find no cloud here
    assert np.array_equal(got_shadow.mask, shadow)
    assert not (veg.mask & (cloud | shadow)).any() and veg.mask.sum() > 0.8 * (~(cloud | shadow)).sum()
    assert any("QA_PIXEL" in c for c in veg.caveats)
    assert "quality flags" in got_cloud.evidence[0].threshold_method


def test_coarser_s2_cloud_probability_is_placed_on_the_10m_grid(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    t10 = from_origin(400000, 4000000, 10, 10)
    bands = [_write(tmp_path / f"T18SVH_20200101_B0{i}_10m.tif",
                    (rng.uniform(0.03, 0.3, (40, 40)) * 1e4).astype("uint16"), t10) for i in (2, 3, 4, 8)]
    prob = np.zeros((20, 20), dtype="uint8")
    prob[:10, :10] = 90
    prob[10:, 10:] = 30                                    # below the 50 % cut: not cloud
    cld = _write(tmp_path / "MSK_CLDPRB_20m.tif", prob, from_origin(400000, 4000000, 20, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_scene([*bands, cld]) as scene:
            layer = scene.quality()
    assert layer is not None
    expected = np.zeros((40, 40), dtype=bool)
    expected[:20, :20] = True
    assert np.array_equal(layer.get("cloud"), expected)


@pytest.mark.parametrize(("name", "kind"), [
    ("LC08_L1TP_014032_20180101_20180104_01_T1_BQA.TIF", "bqa_c1"), ("LC80140322013100LGN01_BQA.TIF", "bqa_pre"),
    ("T33UUP_20200101_SCL_20m.jp2", "scl"), ("MSK_CLASSI_B00.jp2", "classi"), ("eolearn_clm_2015-07-31.tif", "clm"),
    ("LC09_X_QA_PIXEL.TIF", "qa_pixel"), ("LC09_X_QA_RADSAT.TIF", None)])
def test_quality_products_by_name(name: str, kind: str | None) -> None:
    assert qa_kind(Path(name)) == kind


def test_decoders_follow_the_published_bit_layouts() -> None:
    # Collection 1 BQA: cloud bit 4; shadow confidence bits 7-8 high; snow 9-10 high
    bqa = np.array([[1 << 4, 3 << 7, 3 << 9, 1 << 7]], dtype="uint16")[None]
    d = decode_qa("bqa_c1", bqa)
    assert d["cloud"].tolist() == [[True, False, False, False]]
    assert d["shadow"].tolist() == [[False, True, False, False]]    # low confidence (1 << 7) is not shadow
    assert d["snow"].tolist() == [[False, False, True, False]]
    scl = np.array([[3, 8, 9, 10, 11, 4]], dtype="uint8")[None]
    d = decode_qa("scl", scl)
    assert d["shadow"].tolist() == [[True, False, False, False, False, False]]
    assert d["cloud"].tolist() == [[False, True, True, False, False, False]]
    assert d["cirrus"][0, 3] and d["snow"][0, 4]


def test_unknown_or_unreadable_quality_file_is_named_and_left_out(tmp_path: Path) -> None:
    paths = _c2_l2_bands(tmp_path)
    radsat = _write(tmp_path / "LC08_X_QA_RADSAT.TIF", np.zeros((40, 40), dtype="uint16"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_scene([*paths, radsat]) as scene:
            assert scene.quality() is None
            assert any("QA_RADSAT" in n and "cannot decode" in n for n in scene.notes)
