"""Outlines held as WKB (spex.export.wkb) give the exports of the traced shapely polygons, byte for byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely
from affine import Affine
from scipy import ndimage
from test_export_support import make_extraction, open_test_scene

import spex.export.vector as vector
from spex.export import write_regions_gpkg
from spex.export.wkb import WkbPolygons


def test_wkb_outlines_equal_the_traced_polygons() -> None:
    rng = np.random.default_rng(3)
    mask = ndimage.binary_opening(rng.random((300, 240)) < 0.6)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))  # 8-connected: some labels are several pieces
    labels = labels.astype(np.uint16)
    transform = Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0)
    plain = vector.region_polygons(labels, transform, mask=mask)
    held = vector.region_polygons_wkb(labels, transform, mask=mask)
    assert isinstance(held, WkbPolygons) and n > 50 and sorted(held) == sorted(plain) == list(range(1, n + 1))
    assert any(g.geom_type == "MultiPolygon" for g in plain.values())
    assert all(held.wkb(k) == shapely.to_wkb(plain[k]) and held[k].equals_exact(plain[k], 0) for k in plain)


def test_exports_from_wkb_outlines_are_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GeoJSON bytes (in several batches) and GeoPackage features equal those from shapely polygons; the
    map's lon/lat features decode the WKB."""
    monkeypatch.setattr(vector, "_GEOJSON_BATCH_VERTICES", 12)
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        plain = vector.region_polygons(extraction.labels, scene.transform, mask=extraction.mask)
        held = vector.region_polygons_wkb(extraction.labels, scene.transform, mask=extraction.mask)
        features = vector.region_features(extraction, scene, lonlat=False, polygons=held)
        assert len(features) > 2 and all(isinstance(geom, bytes) for geom, _ in features)
        assert len(vector._batches(features)) > 2
        paths = {}
        for name, polygons in (("plain", plain), ("held", held)):
            paths[name] = (vector.write_regions_geojson(extraction, scene, tmp_path / f"{name}.geojson",
                                                        polygons=polygons),
                           write_regions_gpkg(extraction, scene, tmp_path / f"{name}.gpkg", polygons=polygons))
        lonlat = vector.regions_feature_collection(extraction, scene, polygons=held)
        assert lonlat == vector.regions_feature_collection(extraction, scene, polygons=plain)
    assert paths["held"][0].read_bytes() == paths["plain"][0].read_bytes()
    (meta_p, _, wkb_p, fields_p), (meta_h, _, wkb_h, fields_h) = (pyogrio.raw.read(p[1]) for p in paths.values())
    assert list(meta_h["fields"]) == list(meta_p["fields"]) and list(wkb_h) == list(wkb_p)
    assert all(np.array_equal(a, b) for a, b in zip(fields_h, fields_p, strict=True))
