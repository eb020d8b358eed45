"""GeoPackage and zipped Shapefile exports: read back with pyogrio and compared to the GeoJSON."""

from __future__ import annotations

import dataclasses
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pyogrio.raw
import pytest
import shapely
from shapely.geometry import shape
from test_export_support import (
    ISLAND,
    LAKE,
    ORIGIN,
    PIXEL_M,
    POND_COLS,
    make_extraction,
    open_test_scene,
    scattered_pixels,
    water_truth,
)

from spex.errors import ExportError, NotGeoreferencedWarning
from spex.export import (
    Outputs,
    write_outputs,
    write_regions_geojson,
    write_regions_gpkg,
    write_regions_shapefile_zip,
)
from spex.export.gis import shapefile_field_names


def _read(path: str | Path) -> tuple[list, dict[str, np.ndarray], dict]:
    """Geometries (shapely), fields by name and layer info of the only layer at ``path``."""
    meta, _, wkb, fields = pyogrio.raw.read(path)
    geoms = list(shapely.from_wkb(wkb)) if wkb is not None else []
    return geoms, dict(zip(meta["fields"], fields, strict=True)), pyogrio.read_info(path)


def _geojson(extraction, scene, tmp_path: Path) -> list[dict]:
    path = write_regions_geojson(extraction, scene, tmp_path / "regions.geojson")
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def test_gpkg_is_in_the_scene_crs_with_mask_areas(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        path = write_regions_gpkg(extraction, scene, tmp_path / "regions.gpkg")
    assert [name for name, _ in pyogrio.list_layers(path)] == ["regions"]
    geoms, fields, info = _read(path)
    assert info["crs"] == "EPSG:32633" and info["geometry_type"] == "MultiPolygon"
    assert info["features"] == len(geoms) == len(extraction.regions) == 1 + len(POND_COLS)
    # metric coordinates on the scene grid, not degrees
    x0, y1 = ORIGIN
    xmin, ymin, xmax, ymax = info["total_bounds"]
    assert x0 <= xmin < xmax <= x0 + scene.width * PIXEL_M and y1 - scene.height * PIXEL_M <= ymin < ymax <= y1
    areas = np.array([g.area for g in geoms])
    assert areas.sum() == pytest.approx(water_truth().sum() * PIXEL_M**2, rel=0.01)
    np.testing.assert_allclose(areas, fields["pixels"] * PIXEL_M**2, rtol=0.01)
    np.testing.assert_allclose(areas, [r.area_m2 for r in extraction.regions], rtol=0.01)
    lake = geoms[0]
    assert lake.is_valid and len(lake.geoms) == 1 and len(lake.geoms[0].interiors) == 1
    island_px = (ISLAND[0].stop - ISLAND[0].start) * (ISLAND[1].stop - ISLAND[1].start)
    lake_px = (LAKE[0].stop - LAKE[0].start) * (LAKE[1].stop - LAKE[1].start)
    assert lake.area == pytest.approx((lake_px - island_px) * PIXEL_M**2)
    assert info["layer_metadata"]["spex_request"] == extraction.request.describe()
    assert info["layer_metadata"]["spex_source_crs"] == "EPSG:32633"


def test_gpkg_fields_equal_the_geojson_properties(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        features = _geojson(extraction, scene, tmp_path)
        _, fields, info = _read(write_regions_gpkg(extraction, scene, tmp_path / "regions.gpkg"))
    assert dict(zip(info["fields"], info["dtypes"], strict=True))["touches_border"] == "bool"
    assert len(features) == len(fields["rank"])
    for i, feature in enumerate(features):
        props = feature["properties"]
        for name in ("rank", "label", "targets", "class", "pixels", "area_m2", "area_ha", "size_class", "location",
                     "touches_border", "centroid_lon", "centroid_lat", "mean_NDWI"):
            assert fields[name][i] == props[name], name
        assert [fields["centroid_x"][i], fields["centroid_y"][i]] == props["centroid"]
        assert json.loads(fields["rotated_box"][i]) == props["rotated_box"]


def test_gpkg_in_lonlat_has_the_geojson_coordinates(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        features = _geojson(extraction, scene, tmp_path)
        geoms, _, info = _read(write_regions_gpkg(extraction, scene, tmp_path / "ll.gpkg", crs="EPSG:4326"))
    assert info["crs"] == "EPSG:4326"
    for geom, feature in zip(geoms, features, strict=True):
        np.testing.assert_allclose(shapely.get_coordinates(geom),
                                   shapely.get_coordinates(shape(feature["geometry"])), atol=1e-9)
    assert 14.9 < info["total_bounds"][0] < info["total_bounds"][2] < 15.2


def test_rewriting_replaces_the_layer(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        path = write_regions_gpkg(extraction, scene, tmp_path / "regions.gpkg")
        mask = np.zeros((scene.height, scene.width), dtype=bool)
        mask[50:55, 50:55] = True
        write_regions_gpkg(make_extraction(scene, mask=mask), scene, path)
    assert len(pyogrio.list_layers(path)) == 1 and pyogrio.read_info(path)["features"] == 1


def test_empty_mask_gives_valid_empty_layers(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene, mask=np.zeros((scene.height, scene.width), dtype=bool))
        gpkg = write_regions_gpkg(extraction, scene, tmp_path / "empty.gpkg")
        shp_zip = write_regions_shapefile_zip(extraction, scene, tmp_path / "empty.zip")
    for path in (gpkg, shp_zip):
        info = pyogrio.read_info(path)
        assert info["features"] == 0 and info["crs"] == "EPSG:32633"
        assert {"rank", "pixels", "area_m2"} <= set(info["fields"])
    assert pyogrio.read_info(gpkg)["layer_name"] == "regions"


def test_shapefile_zip_has_five_members_and_the_same_regions(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        gpkg_geoms, gpkg_fields, _ = _read(write_regions_gpkg(extraction, scene, tmp_path / "regions.gpkg"))
        path = write_regions_shapefile_zip(extraction, scene, tmp_path / "regions.shp.zip")
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == sorted(f"regions{ext}" for ext in (".shp", ".shx", ".dbf", ".prj",
                                                                                  ".cpg"))
        assert archive.read("regions.cpg").decode().strip().upper() in {"UTF-8", "UTF8"}
    geoms, fields, info = _read(path)
    assert info["crs"] == "EPSG:32633" and info["features"] == len(extraction.regions)
    assert all(len(name) <= 10 for name in fields) and len(set(fields)) == len(gpkg_fields)
    renamed = dict(zip(gpkg_fields, shapefile_field_names(list(gpkg_fields)), strict=True))
    for long_name, short in renamed.items():
        if gpkg_fields[long_name].dtype == object:
            assert list(fields[short]) == list(gpkg_fields[long_name]), long_name
        else:
            np.testing.assert_allclose(fields[short].astype(float), gpkg_fields[long_name].astype(float),
                                       rtol=1e-12, err_msg=long_name)
    np.testing.assert_allclose([g.area for g in geoms], [g.area for g in gpkg_geoms], rtol=1e-9)


def test_shapefile_field_names_are_short_unique_and_readable() -> None:
    names = ["rank", "touches_border", "centroid_lon", "mean_NDWI", "mean_AWEInsh", "mean_AWEInshadow",
             "size_class", "very_long_field_a", "very_long_field_b", "RANK"]
    short = shapefile_field_names(names)
    assert short[:6] == ["rank", "on_border", "cent_lon", "mean_NDWI", "m_AWEInsh", "m_AWEInsha"]
    assert short[6] == "size_class"
    assert all(len(s) <= 10 for s in short)
    assert len({s.lower() for s in short}) == len(short)


def test_regions_without_attributes_get_null_fields(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        full = make_extraction(scene)
        partial = dataclasses.replace(full, regions=full.regions[:3])
        _, fields, info = _read(write_regions_gpkg(partial, scene, tmp_path / "partial.gpkg"))
        shp_geoms, shp_fields, _ = _read(write_regions_shapefile_zip(partial, scene, tmp_path / "partial.zip"))
    assert info["features"] == len(shp_geoms) == len(full.regions)
    np.testing.assert_array_equal(fields["pixels"], [r.pixels for r in full.regions])
    assert list(fields["size_class"][:3]) == [r.size_class for r in full.regions[:3]]
    assert all(v is None for v in fields["size_class"][3:])
    assert np.isnan(fields["mean_NDWI"][3:]).all() and not np.isnan(fields["mean_NDWI"][:3]).any()
    np.testing.assert_array_equal(shp_fields["pixels"], fields["pixels"])


def test_not_georeferenced_scene(tmp_path: Path) -> None:
    with open_test_scene(tmp_path, georeferenced=False) as scene:
        extraction = make_extraction(scene)
        with pytest.warns(NotGeoreferencedWarning):
            path = write_regions_gpkg(extraction, scene, tmp_path / "nogeo.gpkg")
        with pytest.raises(ExportError, match="not georeferenced"):
            write_regions_gpkg(extraction, scene, tmp_path / "ll.gpkg", crs="EPSG:4326")
        with pytest.warns(NotGeoreferencedWarning):
            shp_zip = write_regions_shapefile_zip(extraction, scene, tmp_path / "nogeo.zip")
    geoms, fields, info = _read(path)
    assert info["crs"] is None
    np.testing.assert_allclose([g.area for g in geoms], fields["pixels"])  # one unit = one pixel
    with zipfile.ZipFile(shp_zip) as archive:
        assert not any(name.endswith(".prj") for name in archive.namelist())


def test_unknown_crs_is_rejected(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        with pytest.raises(ValueError, match="expected 'scene' or 'EPSG:4326'"):
            write_regions_gpkg(extraction, scene, tmp_path / "x.gpkg", crs="EPSG:3857")  # type: ignore[arg-type]
    assert not (tmp_path / "x.gpkg").exists()


def test_write_outputs_adds_the_geopackage(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        outputs = write_outputs(extraction, scene, tmp_path / "turn1", reply="ok")
    assert outputs.gpkg == tmp_path / "turn1" / "regions.gpkg"
    assert pyogrio.read_info(outputs.gpkg)["features"] == len(extraction.regions)
    legacy = Outputs(mask_tif=outputs.mask_tif, geojson=outputs.geojson, overlay_png=outputs.overlay_png,
                     reply_md=outputs.reply_md)
    assert legacy.gpkg is None
    assert legacy.paths() == tuple(p for p in outputs.paths() if p != outputs.gpkg)


def test_thousands_of_regions_are_fast(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        mask = scattered_pixels(scene)
        extraction = make_extraction(scene, mask=mask)
        start = time.perf_counter()
        gpkg = write_regions_gpkg(extraction, scene, tmp_path / "many.gpkg")
        shp_zip = write_regions_shapefile_zip(extraction, scene, tmp_path / "many.zip")
        elapsed = time.perf_counter() - start
    assert pyogrio.read_info(gpkg)["features"] == pyogrio.read_info(shp_zip)["features"] == int(mask.sum()) > 4000
    assert elapsed < 10.0


def test_unwritable_path_raises_export_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        with pytest.raises(ExportError, match="GPKG"):
            write_regions_gpkg(extraction, scene, blocker / "regions.gpkg")
        with pytest.raises(ExportError, match="Shapefile"):
            write_regions_shapefile_zip(extraction, scene, blocker / "regions.zip")
