"""Regions GeoJSON: EPSG:4326 lon/lat, areas, holes, empty masks, many regions, attributes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio.warp
import shapely
from shapely.geometry import shape
from test_export_support import (
    ISLAND,
    LAKE,
    PIXEL_M,
    POND_COLS,
    make_extraction,
    open_test_scene,
    scattered_pixels,
    water_truth,
)

from spex.errors import NotGeoreferencedWarning
from spex.export import regions_feature_collection, write_regions_geojson


def _equal_area(geom: dict, lon0: float, lat0: float) -> float:
    """Area (m²) of a lon/lat geometry in a Lambert azimuthal equal-area projection at the scene."""
    laea = f"+proj=laea +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m"
    return shape(rasterio.warp.transform_geom("EPSG:4326", laea, geom)).area


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_geojson_is_lonlat_and_areas_match_the_mask(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        doc = _load(write_regions_geojson(extraction, scene, tmp_path / "regions.geojson"))
    assert doc["type"] == "FeatureCollection" and "crs" not in doc  # RFC 7946: no crs member
    features = doc["features"]
    assert len(features) == len(extraction.regions) == 1 + len(POND_COLS)
    coords = np.concatenate([shapely.get_coordinates(shape(f["geometry"])) for f in features])
    # UTM 33N easting 500 km is the central meridian 15 E; northing 4200 km is ~37.9 N: lon first.
    assert np.all((coords[:, 0] > 14.9) & (coords[:, 0] < 15.2))
    assert np.all((coords[:, 1] > 37.8) & (coords[:, 1] < 38.0))
    lon0, lat0 = coords.mean(axis=0)
    areas = [_equal_area(f["geometry"], lon0, lat0) for f in features]
    expected_total = water_truth().sum() * PIXEL_M**2
    assert sum(areas) == pytest.approx(expected_total, rel=0.01)
    for feature, area in zip(features, areas, strict=True):
        assert area == pytest.approx(feature["properties"]["area_m2"], rel=0.01)
        assert shape(feature["geometry"]).is_valid


def test_lake_keeps_its_island_as_a_hole(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        doc = _load(write_regions_geojson(extraction, scene, tmp_path / "regions.geojson"))
    lake = doc["features"][0]
    props = lake["properties"]
    lake_px = (LAKE[0].stop - LAKE[0].start) * (LAKE[1].stop - LAKE[1].start)
    island_px = (ISLAND[0].stop - ISLAND[0].start) * (ISLAND[1].stop - ISLAND[1].start)
    assert props["rank"] == 1 and lake["id"] == 1
    assert props["pixels"] == lake_px - island_px
    assert props["area_ha"] == pytest.approx((lake_px - island_px) * PIXEL_M**2 / 1e4)
    geom = shape(lake["geometry"])
    assert geom.geom_type == "Polygon" and len(geom.interiors) == 1
    hole = shapely.Polygon(geom.interiors[0])
    lon0, lat0 = hole.centroid.x, hole.centroid.y
    assert _equal_area(shapely.geometry.mapping(hole), lon0, lat0) == pytest.approx(island_px * PIXEL_M**2,
                                                                                    rel=0.01)


def test_features_carry_spie_attributes_sorted_by_area(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        doc = _load(write_regions_geojson(extraction, scene, tmp_path / "regions.geojson"))
    areas = [f["properties"]["area_m2"] for f in doc["features"]]
    assert areas == sorted(areas, reverse=True)
    assert [f["properties"]["rank"] for f in doc["features"]] == list(range(1, len(areas) + 1))
    first = doc["features"][0]["properties"]
    region = extraction.regions[0]
    assert first["label"] == region.label
    assert first["size_class"] == region.size_class and first["location"] == region.location
    assert first["centroid"] == pytest.approx(list(region.centroid), abs=1e-4)
    assert len(first["rotated_box"]) == 4
    assert first["touches_border"] is False
    assert first["mean_NDWI"] > 0.3
    assert first["targets"] == "water"
    assert 14.9 < first["centroid_lon"] < 15.2 and 37.8 < first["centroid_lat"] < 38.0
    assert doc["spex"]["georeferenced"] is True and doc["spex"]["source_crs"] == "EPSG:32633"


def test_empty_mask_gives_an_empty_feature_collection(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene, mask=np.zeros((scene.height, scene.width), dtype=bool))
        doc = _load(write_regions_geojson(extraction, scene, tmp_path / "empty.geojson"))
    assert doc["type"] == "FeatureCollection" and doc["features"] == []


def test_thousands_of_regions_are_fast(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        mask = scattered_pixels(scene)
        extraction = make_extraction(scene, mask=mask)
        start = time.perf_counter()
        doc = _load(write_regions_geojson(extraction, scene, tmp_path / "many.geojson"))
        elapsed = time.perf_counter() - start
    assert len(doc["features"]) == int(mask.sum()) > 4000
    assert elapsed < 10.0
    assert all(f["properties"]["pixels"] == 1 for f in doc["features"])


def test_simplify_tolerance_reduces_vertices_keeps_area(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        mask = np.zeros((scene.height, scene.width), dtype=bool)
        rows, cols = np.ogrid[: scene.height, : scene.width]
        mask[(rows - 60) ** 2 + (cols - 80) ** 2 < 45**2] = True  # a pixelated disc
        extraction = make_extraction(scene, mask=mask)
        exact = _load(write_regions_geojson(extraction, scene, tmp_path / "exact.geojson"))
        simple = _load(write_regions_geojson(extraction, scene, tmp_path / "simple.geojson",
                                             simplify_tolerance=1.0))
    n_exact = len(shapely.get_coordinates(shape(exact["features"][0]["geometry"])))
    n_simple = len(shapely.get_coordinates(shape(simple["features"][0]["geometry"])))
    assert n_simple < n_exact / 2
    a_exact = shape(exact["features"][0]["geometry"]).area
    a_simple = shape(simple["features"][0]["geometry"]).area
    assert a_simple == pytest.approx(a_exact, rel=0.03)


def test_diagonal_pieces_of_one_region_become_one_feature(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        mask = np.zeros((scene.height, scene.width), dtype=bool)
        mask[50, 50] = mask[51, 51] = mask[52, 52] = True  # 8-connected: one region
        extraction = make_extraction(scene, mask=mask)
        doc = _load(write_regions_geojson(extraction, scene, tmp_path / "diag.geojson"))
    assert len(doc["features"]) == 1
    geom = shape(doc["features"][0]["geometry"])
    assert geom.geom_type == "MultiPolygon" and len(geom.geoms) == 3 and geom.is_valid


def test_not_georeferenced_scene_keeps_pixel_coordinates(tmp_path: Path) -> None:
    with open_test_scene(tmp_path, georeferenced=False) as scene:
        extraction = make_extraction(scene)
        with pytest.warns(NotGeoreferencedWarning):
            doc = _load(write_regions_geojson(extraction, scene, tmp_path / "nogeo.geojson"))
    assert doc["spex"]["georeferenced"] is False
    lake = shape(doc["features"][0]["geometry"])
    assert lake.area == pytest.approx(doc["features"][0]["properties"]["pixels"])
    assert "centroid_lon" not in doc["features"][0]["properties"]


def test_feature_collection_can_keep_only_the_largest(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        doc = regions_feature_collection(extraction, scene, max_features=3)
    assert [f["properties"]["label"] for f in doc["features"]] == [r.label for r in extraction.regions[:3]]
    assert doc["spex"]["regions_total"] == len(extraction.regions) > 3
