"""Regions of an extraction as GeoJSON polygons (RFC 7946: EPSG:4326, lon/lat order).

One Feature per region, largest first; ``rank`` 1 is the largest region, the number
printed on the overlay and used in the reply. Properties carry the SPIE attributes
(size class, centroid, location, rotated box...) and the mean spectral indices.
:func:`region_features` is the one feature builder; :mod:`spex.export.gis` writes the
same features as GeoPackage and zipped Shapefile.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio.features
import rasterio.warp
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from spex.engine.request import TARGET_LABELS
from spex.errors import ExportError, NotGeoreferencedWarning
from spex.export.polygonize import traced_shapes
from spex.export.wkb import WKB_BYTES_PER_VERTEX, WkbPolygons

if TYPE_CHECKING:
    from spex.engine.result import Extraction
    from spex.io import Scene
    from spex.spie.regions import RegionAttributes

__all__ = [
    "region_features", "region_polygons", "region_polygons_wkb", "regions_feature_collection", "regions_summary",
    "write_regions_geojson",
]

logger = logging.getLogger(__name__)

_LONLAT_DECIMALS = 7  # ~1 cm: far below any pixel size, keeps files small
#: Outline vertices encoded per write of the GeoJSON file (~100 bytes each as Python objects).
_GEOJSON_BATCH_VERTICES = 100_000


def region_polygons(labels: np.ndarray, transform: Any, *, keep: Sequence[int] | None = None,
                    mask: np.ndarray | None = None) -> dict[int, Polygon | MultiPolygon]:
    """Polygons (in the raster's CRS units) of each label, holes included.

    Pixels are traced 4-connected by GDAL; pieces of one label that touch only at a corner
    (8-connected regions) are joined into a MultiPolygon. ``keep`` restricts to some labels.
    ``mask``: the extraction's mask when the caller has it (only labelled pixels inside it are traced,
    as the region attributes count them), which spares a full-scene ``labels > 0`` copy.
    """
    parts = _traced_pieces(labels, transform, keep, mask, encode=False)
    return {label: polys[0] if len(polys) == 1 else MultiPolygon(polys) for label, polys in parts.items()}


def region_polygons_wkb(labels: np.ndarray, transform: Any, *, mask: np.ndarray | None = None) -> WkbPolygons:
    """:func:`region_polygons` held as WKB (:mod:`spex.export.wkb`): each piece is encoded as it is traced,
    so the GEOS outlines of the whole result never exist at once."""
    parts = _traced_pieces(labels, transform, None, mask, encode=True)
    return WkbPolygons({label: pieces[0] if len(pieces) == 1
                        else shapely.to_wkb(MultiPolygon(list(shapely.from_wkb(pieces))))
                        for label, pieces in parts.items()})


def _traced_pieces(labels: np.ndarray, transform: Any, keep: Sequence[int] | None, mask: np.ndarray | None, *,
                   encode: bool) -> dict[int, list[Any]]:
    """The traced 4-connected pieces of each label, as Polygons or (``encode``) their WKB."""
    source = labels if labels.dtype in (np.uint16, np.int32) else np.asarray(labels, dtype=np.int32)  # GDAL types
    if keep is not None:
        source = np.where(np.isin(source, np.asarray(list(keep), dtype=np.int32)), source, 0)
    parts: dict[int, list[Any]] = defaultdict(list)
    for geom, value in traced_shapes(source, None if keep is not None else mask, transform):
        if value:  # a masked pixel without a label is no region
            piece = shape(geom)
            parts[int(value)].append(shapely.to_wkb(piece) if encode else piece)
    return parts


def _to_lonlat(geoms: list[Any], crs: Any) -> list[Any]:
    """Reproject all geometries to EPSG:4326 in one coordinate batch (fast for thousands)."""
    if not geoms:
        return geoms
    coords = shapely.get_coordinates(geoms)
    xs, ys = rasterio.warp.transform(crs, "EPSG:4326", coords[:, 0], coords[:, 1])
    lonlat = np.round(np.column_stack([xs, ys]), _LONLAT_DECIMALS)
    from spex.export.antimeridian import split_antimeridian  # RFC 7946 3.1.9: cut at +-180, lon in range

    return [split_antimeridian(g) for g in shapely.set_coordinates(np.array(geoms, dtype=object), lonlat)]


def _centroid_xy(region: RegionAttributes, scene: Scene) -> tuple[float, float]:
    """Region centroid in the scene CRS (from its normalised image position)."""
    col, row = region.centroid[0] * scene.width, region.centroid[1] * scene.height
    x, y = scene.transform @ (col, row)
    return float(x), float(y)


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _properties(rank: int, region: RegionAttributes, extraction: Extraction, lonlat: tuple[float, float] | None,
                classes: Mapping[int, str] | None = None) -> dict[str, Any]:
    """``class``/``class_key``: the region's own class (majority of its pixels) in a merged result."""
    own = (classes or {}).get(region.label)
    props: dict[str, Any] = {
        "rank": rank,
        "label": int(region.label),
        "targets": ",".join(extraction.request.targets),
        "class": TARGET_LABELS.get(own, own) if own else " + ".join(TARGET_LABELS.get(t, t)
                                                                       for t in extraction.request.targets),
        "class_key": own or ",".join(extraction.request.targets),
        "pixels": int(region.pixels),
        "area_m2": round(float(region.area_m2), 2),
        "area_ha": round(float(region.area_ha), 4),
        "size_class": region.size_class,
        "location": region.location,
        "centroid": [round(float(region.centroid[0]), 4), round(float(region.centroid[1]), 4)],
        "rotated_box": [[round(float(x), 4), round(float(y), 4)] for x, y in region.rotated_box],
        "touches_border": bool(region.touches_border),
    }
    if lonlat is not None:
        props["centroid_lon"] = round(lonlat[0], _LONLAT_DECIMALS)
        props["centroid_lat"] = round(lonlat[1], _LONLAT_DECIMALS)
    for name, value in sorted(region.mean_indices.items()):
        props[f"mean_{name.upper()}"] = None if _finite(value) is None else round(float(value), 4)
    return props


def region_features(extraction: Extraction, scene: Scene, *, lonlat: bool = True,
                    simplify_tolerance: float | None = None, max_features: int | None = None,
                    polygons: Mapping[int, BaseGeometry] | None = None
                    ) -> list[tuple[BaseGeometry, dict[str, Any]]]:
    """``(geometry, properties)`` of each region, largest first: the one feature builder
    behind every vector export (GeoJSON, GeoPackage, Shapefile), so they all agree.

    Args:
        lonlat: True gives EPSG:4326 lon/lat geometries (rounded to 1e-7 deg); False keeps
            the scene CRS (metric for projected scenes). Ignored when the scene has no CRS:
            geometries are then in pixel coordinates (x = column, y = row).
        simplify_tolerance: Douglas-Peucker tolerance in scene pixels (topology preserved);
            None keeps the exact pixel outlines.
        max_features: keep only this many of the largest regions.
        polygons: ``region_polygons(extraction.labels, scene.transform)`` when the caller already
            has it (tracing is the costly step; several exports of one result can share it), or
            :func:`region_polygons_wkb`, whose outlines stay WKB ``bytes`` in the features where they
            need no reprojection nor simplification (the writers decode a batch at a time).

    Returns:
        Shapely Polygon/MultiPolygon (or its WKB, see ``polygons``) and a properties dict per
        region; the properties do not depend on ``lonlat`` (``centroid_lon``/``centroid_lat`` are
        always WGS 84).

    Raises:
        ExportError: when the labels do not match the scene grid.
    """
    labels = np.asarray(extraction.labels)
    if labels.shape != (scene.height, scene.width):
        raise ExportError(f"labels shape {labels.shape} does not match the scene grid "
                          f"({scene.height}, {scene.width})")
    regions = list(extraction.regions)
    if max_features is not None:
        regions = regions[:max_features]
    truncated = max_features is not None and len(extraction.regions) > max_features
    keep = [r.label for r in regions] if truncated else None  # filtering costs two raster copies
    if polygons is None:
        polygons = region_polygons(labels, scene.transform, keep=keep)
    elif keep is not None:
        kept = set(keep)
        polygons = {label: geom for label, geom in polygons.items() if label in kept}
    described = {r.label for r in regions}
    missing = sorted(set(polygons) - described) if max_features is None else []
    if missing:
        logger.warning("%d labelled regions have no attributes; exported with pixel counts only", len(missing))

    ordered = [r.label for r in regions if r.label in polygons] + missing
    georef = scene.crs is not None
    geoms: list[Any]
    if isinstance(polygons, WkbPolygons) and not simplify_tolerance and not (lonlat and georef):
        geoms = [polygons.wkb(label) for label in ordered]  # stay encoded: the writers decode a batch at a time
    else:
        geoms = [polygons[label] for label in ordered]
    if simplify_tolerance:
        pixel = max(abs(scene.transform.a), abs(scene.transform.e))
        geoms = list(shapely.simplify(np.array(geoms, dtype=object), simplify_tolerance * pixel,
                                      preserve_topology=True))
    if georef:
        if lonlat:
            geoms = _to_lonlat(geoms, scene.crs)
        centres = [_centroid_xy(r, scene) for r in regions]
        if centres:
            lons, lats = rasterio.warp.transform(scene.crs, "EPSG:4326", [c[0] for c in centres],
                                                 [c[1] for c in centres])
            centre_ll = {r.label: ((lon + 180.0) % 360.0 - 180.0 if abs(lon) > 180.0 else lon, lat)
                         for r, lon, lat in zip(regions, lons, lats, strict=True)}
        else:
            centre_ll = {}
    else:
        centre_ll = {}

    by_label = {r.label: r for r in regions}
    from spex.engine.classes import region_classes  # merged results: each region's own class

    classes = region_classes(extraction) if len(extraction.request.targets) > 1 else None
    counts = np.bincount(labels.ravel(), minlength=max(ordered, default=0) + 1) if missing else None
    features = []
    for rank, (label, geom) in enumerate(zip(ordered, geoms, strict=True), start=1):
        region = by_label.get(label)
        if region is not None:
            props = _properties(rank, region, extraction, centre_ll.get(label), classes)
        else:
            pixels = int(counts[label]) if counts is not None else 0
            area = pixels * extraction.pixel_area_m2
            props = {"rank": rank, "label": int(label), "targets": ",".join(extraction.request.targets),
                     "pixels": pixels, "area_m2": round(area, 2), "area_ha": round(area / 1e4, 4)}
        features.append((geom, props))
    return features


def regions_summary(extraction: Extraction, scene: Scene, *, lonlat: bool = True) -> dict[str, Any]:
    """What the regions file holds as a whole (request, backend, sensor, CRS, totals).

    ``lonlat`` says which coordinates the geometries use, as in :func:`region_features`.
    """
    georef = scene.crs is not None
    if not georef:
        coordinates = "pixel (x = column, y = row); no CRS"
    elif lonlat:
        coordinates = "EPSG:4326 lon/lat"
    else:
        coordinates = f"scene CRS {scene.crs.to_string()}"
    return {
        "request": extraction.request.describe(),
        "backend": extraction.backend,
        "sensor": scene.sensor,
        "georeferenced": georef,
        "coordinates": coordinates,
        "source_crs": scene.crs.to_string() if georef else None,
        "regions_total": len(extraction.regions),
        "total_area_m2": round(extraction.total_area_m2, 2),
    }


def _batches(features: Sequence[tuple[BaseGeometry | bytes, dict[str, Any]]]) -> list[tuple[int, int]]:
    """[start, stop) runs of ``features`` of at most :data:`_GEOJSON_BATCH_VERTICES` vertices (or one feature);
    a WKB outline's vertices are estimated from its length."""
    counts = [len(geom) // WKB_BYTES_PER_VERTEX if isinstance(geom, bytes) else shapely.get_num_coordinates(geom)
              for geom, _ in features]
    out, start, total = [], 0, 0
    for i, n in enumerate(np.asarray(counts, dtype=np.int64).tolist()):
        if i > start and total + n > _GEOJSON_BATCH_VERTICES:
            out.append((start, i))
            start, total = i, 0
        total += n
    if start < len(features):
        out.append((start, len(features)))
    return out


def _feature(geom: BaseGeometry, props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "id": props["rank"], "properties": props, "geometry": mapping(geom)}


def regions_feature_collection(extraction: Extraction, scene: Scene, *, simplify_tolerance: float | None = None,
                               max_features: int | None = None,
                               polygons: Mapping[int, BaseGeometry] | None = None) -> dict[str, Any]:
    """The GeoJSON FeatureCollection (a dict) of the extraction's regions, largest first.

    Args:
        simplify_tolerance: Douglas-Peucker tolerance in scene pixels (topology preserved);
            None keeps the exact pixel outlines.
        max_features: keep only this many of the largest regions (the map uses it).
        polygons: already traced region polygons, see :func:`region_features`.

    Notes:
        Non-georeferenced scenes keep pixel coordinates (x = column, y = row) and say so in
        the ``spex`` member; RFC 7946 needs a CRS, so GIS tools will not place them.
    """
    features = [_feature(geom, props) for geom, props in region_features(
        extraction, scene, lonlat=True, simplify_tolerance=simplify_tolerance, max_features=max_features,
        polygons=polygons)]
    return _collection(extraction, scene, features)


def _collection(extraction: Extraction, scene: Scene, features: list[dict[str, Any]]) -> dict[str, Any]:
    """The FeatureCollection around ``features`` (the one layout: the batched file writes its bytes too)."""
    return {"type": "FeatureCollection", "name": "spex_regions",
            "spex": regions_summary(extraction, scene, lonlat=True), "features": features}


def write_regions_geojson(extraction: Extraction, scene: Scene, path: Path, *,
                          simplify_tolerance: float | None = None,
                          polygons: Mapping[int, BaseGeometry] | None = None) -> Path:
    """Write the regions as an RFC 7946 GeoJSON FeatureCollection; returns ``path``.

    An empty mask gives a valid FeatureCollection with no features. ``polygons``: already
    traced region polygons (see :func:`region_features`).

    Raises:
        ExportError: when the labels do not match the scene grid or the file cannot be written.
    """
    path = Path(path)
    if scene.crs is None:
        warnings.warn(f"{path.name}: the scene is not georeferenced; polygons are in pixel coordinates",
                      NotGeoreferencedWarning, stacklevel=2)
    # scene-CRS outlines (the traced polygons themselves), reprojected a batch at a time: a lon/lat copy of
    # every outline at once costs as much memory again as the outlines
    features = region_features(extraction, scene, lonlat=False, simplify_tolerance=simplify_tolerance,
                               polygons=polygons)
    head = json.dumps(_collection(extraction, scene, []), separators=(",", ":"))  # ends in "[]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The same bytes as json.dumps of the whole collection, written a batch of features at a time: the
        # C encoder stays (json.dump streams through the ~10x slower pure-Python one), and memory holds one
        # batch's text instead of the whole file's (tens of MB for thousands of regions).
        with path.open("w", encoding="utf-8") as out:
            out.write(head[:-2])
            for k, (start, stop) in enumerate(_batches(features)):
                batch = features[start:stop]
                geoms = [shapely.from_wkb(geom) if isinstance(geom, bytes) else geom for geom, _ in batch]
                if scene.crs is not None:
                    geoms = _to_lonlat(geoms, scene.crs)
                out.write(("," if k else "") + ",".join(
                    json.dumps(_feature(geom, props), separators=(",", ":"), allow_nan=False)
                    for geom, (_, props) in zip(geoms, batch, strict=True)))
            out.write("]}")
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot write GeoJSON {path}: {exc}") from exc
    return path
