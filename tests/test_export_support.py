"""Synthetic scenes and extractions shared by the export and map tests.

The scene is a small Sentinel-2-like GeoTIFF (blue, green, red, nir; DN = 10000 x
reflectance, 0 = fill) with known geometry: vegetation background, a lake with an
island (a hole), a row of 3 x 3 ponds, and an invalid stripe of fill along the left edge.
Other test modules import the builders from here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from spex.engine.request import ExtractionRequest
from spex.engine.result import ClassEvidence, Extraction
from spex.errors import SpexWarning
from spex.io import Scene, open_scene
from spex.spie import describe_regions, label_regions

HEIGHT, WIDTH = 120, 160
PIXEL_M = 10.0
ORIGIN = (500_000.0, 4_200_000.0)  # UTM 33N, ~38 deg N
CRS = "EPSG:32633"
FILL_COLS = 8  # leftmost columns are fill (invalid)
LAKE = (slice(20, 60), slice(40, 100))  # 40 x 60 px
ISLAND = (slice(35, 45), slice(60, 70))  # 10 x 10 px hole in the lake
POND_ROWS = slice(90, 93)
POND_COLS = [slice(c, c + 3) for c in range(20, 150, 10)]  # 13 ponds of 3 x 3 px
BANDS = ("blue", "green", "red", "nir")

VEG = {"blue": 0.04, "green": 0.08, "red": 0.05, "nir": 0.40}
WATER = {"blue": 0.06, "green": 0.07, "red": 0.04, "nir": 0.02}


def water_truth() -> np.ndarray:
    """bool (H, W): the water pixels painted into the synthetic scene."""
    truth = np.zeros((HEIGHT, WIDTH), dtype=bool)
    truth[LAKE] = True
    truth[ISLAND] = False
    for cols in POND_COLS:
        truth[POND_ROWS, cols] = True
    truth[:, :FILL_COLS] = False
    return truth


def valid_truth() -> np.ndarray:
    valid = np.ones((HEIGHT, WIDTH), dtype=bool)
    valid[:, :FILL_COLS] = False
    return valid


def make_geotiff(path: Path, *, georeferenced: bool = True) -> Path:
    """Write the synthetic 4-band uint16 scene to ``path``."""
    rng = np.random.default_rng(0)
    water = water_truth()
    data = np.zeros((4, HEIGHT, WIDTH), dtype=np.uint16)
    for i, band in enumerate(BANDS):
        refl = np.where(water, WATER[band], VEG[band]) + rng.normal(0, 0.004, (HEIGHT, WIDTH))
        data[i] = np.clip(refl * 10000, 1, 10000).astype(np.uint16)
    data[:, :, :FILL_COLS] = 0
    profile = {"driver": "GTiff", "width": WIDTH, "height": HEIGHT, "count": 4, "dtype": "uint16", "nodata": 0}
    if georeferenced:
        profile.update(crs=CRS, transform=from_origin(*ORIGIN, PIXEL_M, PIXEL_M))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            dst.descriptions = ("B02", "B03", "B04", "B08")
    return path


def open_test_scene(tmp_path: Path, *, georeferenced: bool = True) -> Scene:
    name = "scene.tif" if georeferenced else "scene_nogeo.tif"
    path = make_geotiff(tmp_path / name, georeferenced=georeferenced)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpexWarning)
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return open_scene(path, bands=BANDS)


def make_extraction(scene: Scene, mask: np.ndarray | None = None, target: str = "water") -> Extraction:
    """Extraction of ``mask`` (default: NDWI > 0 on the scene) with real SPIE attributes."""
    cube = scene.read(["green", "nir"])
    ndwi = (cube[0] - cube[1]) / (cube[0] + cube[1])
    valid = np.asarray(scene.valid(), dtype=bool)
    if mask is None:
        mask = np.nan_to_num(ndwi, nan=-1.0) > 0.0
    mask = np.asarray(mask, dtype=bool) & valid
    labels, _ = label_regions(mask)
    regions = describe_regions(mask, pixel_area_m2=scene.pixel_area_m2, index_maps={"NDWI": ndwi},
                               labels=labels)
    inside = float(np.nanmean(ndwi[mask])) if mask.any() else float("nan")
    outside = float(np.nanmean(ndwi[valid & ~mask]))
    evidence = [ClassEvidence(target=target, index="NDWI", formula="(green - nir) / (green + nir)",
                              bands=("green", "nir"), threshold=0.0, threshold_method="fallback",
                              direction=">", mean_inside=inside, mean_outside=outside,
                              pixels=int(mask.sum()), extra_tests=("cloud mask: 0 px removed",))]
    return Extraction(request=ExtractionRequest(targets=(target,)), mask=mask, labels=labels, regions=regions,
                      evidence=evidence, caveats=["synthetic test scene"], valid_pixels=int(valid.sum()),
                      pixel_area_m2=scene.pixel_area_m2)


def scattered_pixels(scene: Scene) -> np.ndarray:
    """bool (H, W): every other valid pixel of every other row, i.e. thousands of 1-px regions (stress case)."""
    mask = np.zeros((scene.height, scene.width), dtype=bool)
    mask[::2, FILL_COLS::2] = True  # isolated single pixels: 4 560 regions
    return mask


def test_synthetic_scene_opens_as_designed(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        assert scene.band_names == BANDS
        assert (scene.height, scene.width) == (HEIGHT, WIDTH)
        np.testing.assert_array_equal(scene.valid(), valid_truth())
        extraction = make_extraction(scene)
        np.testing.assert_array_equal(extraction.mask, water_truth())
        assert len(extraction.regions) == 1 + len(POND_COLS)
