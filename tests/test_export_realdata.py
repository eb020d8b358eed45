"""Exports and map on the real test crops (tests/data): multi-file Sentinel-2, Landsat 7, aerial."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp
from PIL import Image
from shapely.geometry import shape
from test_export_support import make_extraction

from spex.errors import SpexWarning
from spex.export import write_outputs
from spex.io import open_scene
from spex.viz import map_html

CROPS = {
    "s2-virginia-3-files": ["s2l1c_virginia_small_10m_B02-B03-B04-B08.tif",
                            "s2l1c_virginia_small_20m_B05-B06-B07-B8A-B11-B12.tif",
                            "s2l1c_virginia_small_60m_B01-B09-B10.tif"],
    "landsat7-olinda": ["l7_olinda_crop.tif"],
    "aerial-bgrn": ["solaris_ms1_BGRN_uint16.tif"],
}


@pytest.mark.parametrize("name", sorted(CROPS))
def test_outputs_and_map_on_real_crops(name: str, data_dir: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpexWarning)
        scene = open_scene([data_dir / f for f in CROPS[name]])
    with scene:
        extraction = make_extraction(scene)
        assert extraction.regions, "NDWI > 0 finds water in each crop"
        outputs = write_outputs(extraction, scene, tmp_path / name, reply="test reply", false_colour=True)
        with rasterio.open(outputs.mask_tif) as ds:
            assert ds.crs == scene.crs and ds.transform.almost_equals(scene.transform)
            assert (ds.height, ds.width) == (scene.height, scene.width)
            assert int((ds.read(1) == 1).sum()) == extraction.selected_pixels
        doc = json.loads(outputs.geojson.read_text())
        geoms = [shape(f["geometry"]) for f in doc["features"]]
        lon0, lat0 = np.mean([g.centroid.coords[0] for g in geoms], axis=0)
        laea = f"+proj=laea +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m"
        area = sum(shape(rasterio.warp.transform_geom("EPSG:4326", laea, f["geometry"])).area
                   for f in doc["features"])
        assert area == pytest.approx(extraction.total_area_m2, rel=0.02)
        with Image.open(outputs.overlay_png) as image:
            assert image.width >= 512 or image.height >= 512
        page = map_html(scene, extraction)
        assert f"of {len(extraction.regions)})" in page or f"Regions ({len(extraction.regions)})" in page
        assert len(page) < 3_000_000
