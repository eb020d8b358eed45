"""Training polygons for the accuracy benchmark: read from a vector file, rasterised on a scene grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyogrio import raw
from rasterio.coords import BoundingBox
from rasterio.transform import from_origin
from shapely import to_wkb
from shapely.geometry import box

from spex.bench.polygons import rasterize_classes, read_class_polygons
from spex.errors import SpexError

GRID = {"shape": (10, 10), "transform": from_origin(600000, 9600300, 30, 30),
        "bounds": BoundingBox(600000, 9600000, 600300, 9600300)}


def _gpkg(path: Path, geoms: list, classes: list[str], column: str = "class") -> Path:
    raw.write(path, np.array([to_wkb(g) for g in geoms], dtype=object), [np.array(classes, dtype=object)],
              fields=[column], geometry_type="Polygon", crs="EPSG:32622", driver="GPKG")
    return path


def test_polygons_are_rasterised_with_their_codes(tmp_path: Path) -> None:
    path = _gpkg(tmp_path / "p.gpkg", [box(600000, 9600210, 600090, 9600300), box(600210, 9600000, 600300, 9600090)],
                 ["forest", "water"])
    polygons = read_class_polygons(path)
    assert [c for _, c in polygons] == ["forest", "water"]
    labels = rasterize_classes(polygons, {"water": 1, "forest": 2}, **GRID)
    assert (labels[:3, :3] == 2).all() and (labels[-3:, -3:] == 1).all() and (labels > 0).sum() == 18


def test_bad_polygons_get_specific_messages(tmp_path: Path) -> None:
    with pytest.raises(SpexError, match="no 'class' column"):
        read_class_polygons(_gpkg(tmp_path / "n.gpkg", [box(0, 0, 1, 1)], ["x"], column="name"))
    far = [(box(0, 0, 10, 10), "forest")]
    with pytest.raises(SpexError, match="no polygon overlaps"):
        rasterize_classes(far, {"forest": 2}, **GRID)
    with pytest.raises(SpexError, match="have no code"):
        rasterize_classes([(box(600000, 9600000, 600090, 9600090), "swamp")], {"forest": 2}, **GRID)
    with pytest.raises(SpexError, match="does not exist"):
        read_class_polygons(tmp_path / "missing.rds")
