"""Sparse training polygons rasterised on a scene grid, for the accuracy benchmark.

Why: the Landsat-5 TM scene of RStoolbox has labelled polygons (water, forest, cleared land,
fallen/dry land) drawn by its authors, but they ship only as an R-serialised ``sf`` object
(``inst/external/trainingPolygons_lsat.rds``, GPL-3) and are not in the shared data. The
benchmark reads them where the user has them: the ``.rds`` itself (needs the optional
``rdata`` package) or any vector file GDAL reads (GeoPackage, GeoJSON) with a ``class`` column.
Nothing is downloaded and nothing is copied into the repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio import features
from rasterio.coords import BoundingBox
from shapely import wkb
from shapely.geometry import Polygon, mapping
from shapely.geometry.base import BaseGeometry

from spex.errors import SpexError

__all__ = ["read_class_polygons", "rasterize_classes"]


def read_class_polygons(path: Path) -> list[tuple[BaseGeometry, str]]:
    """(polygon, class name) pairs from an RStoolbox ``.rds`` or a vector file with a ``class`` column.

    Coordinates are returned as stored (the caller checks they fall on the scene).

    Raises:
        SpexError: unreadable file, no ``class`` column, or ``rdata`` missing for an ``.rds``.
    """
    path = Path(path)
    if not path.is_file():
        raise SpexError(f"polygon file {path} does not exist")
    if path.suffix.lower() == ".rds":
        return _read_rds(path)
    try:
        from pyogrio import raw
    except ImportError as exc:  # pragma: no cover - pyogrio ships with the GDAL stack used here
        raise SpexError("reading vector files needs pyogrio (pip install pyogrio)") from exc
    try:
        meta, _, geometry, fields = raw.read(path)
    except Exception as exc:  # pyogrio raises its own DataSourceError family
        raise SpexError(f"cannot read polygons from {path}: {exc}") from exc
    names = list(meta["fields"])
    if "class" not in names:
        raise SpexError(f"{path} has no 'class' column; it has: {', '.join(names)}")
    classes = fields[names.index("class")]
    return [(wkb.loads(bytes(g)), str(c)) for g, c in zip(geometry, classes, strict=True)]


def _read_rds(path: Path) -> list[tuple[BaseGeometry, str]]:
    """An ``sf`` data frame of POLYGONs with a factor column ``class`` (RStoolbox's layout)."""
    try:
        import rdata
    except ImportError as exc:
        raise SpexError(f"reading {path.name} needs the optional package 'rdata' (pip install rdata), "
                        "or convert the polygons to a GeoPackage with a 'class' column") from exc
    import warnings

    with warnings.catch_warnings():  # rdata warns for every sf class it keeps as plain R objects
        warnings.simplefilter("ignore")
        try:
            frame = rdata.conversion.convert(rdata.parser.parse_file(path))
        except Exception as exc:  # rdata raises plain exceptions on unknown or damaged objects
            raise SpexError(f"cannot parse {path}: {exc}") from exc
    if not hasattr(frame, "columns") or "class" not in frame.columns or "geometry" not in frame.columns:
        raise SpexError(f"{path} is not an sf data frame with 'class' and 'geometry' columns")
    out = []
    for rings, name in zip(frame["geometry"], frame["class"].astype(str), strict=True):
        shell, *holes = (np.asarray(r, dtype=float) for r in rings)
        out.append((Polygon(shell, holes), str(name)))
    return out


def rasterize_classes(polygons: list[tuple[BaseGeometry, str]], codes: Mapping[str, int], *,
                      shape: tuple[int, int], transform: Affine, bounds: BoundingBox) -> np.ndarray:
    """uint8 label raster (0 = unlabelled) of ``polygons`` whose class is in ``codes``.

    Raises:
        SpexError: a class is not in ``codes``, or no polygon overlaps the grid (wrong CRS or scene).
    """
    unknown = sorted({c for _, c in polygons} - set(codes))
    if unknown:
        raise SpexError(f"polygon classes {', '.join(unknown)} have no code; known: {', '.join(codes)}")
    inside = [g for g, _ in polygons if g.bounds[0] < bounds.right and g.bounds[2] > bounds.left
              and g.bounds[1] < bounds.top and g.bounds[3] > bounds.bottom]
    if not inside:
        raise SpexError("no polygon overlaps the scene: are they in the scene's CRS?")
    return features.rasterize([(mapping(g), codes[c]) for g, c in polygons], out_shape=shape,
                              transform=transform, fill=0, dtype="uint8")
