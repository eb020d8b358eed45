"""Regions of an extraction as GIS-ready layers: GeoPackage and zipped ESRI Shapefile.

The features are exactly those of the GeoJSON (:func:`spex.export.vector.region_features`):
one per region, largest first, same properties. Differences forced by the formats:

- Geometries stay in the scene CRS by default (metric for UTM scenes, so GIS area and
  length tools give metres); ``crs="EPSG:4326"`` writes lon/lat like the GeoJSON.
- Every layer is MultiPolygon (single polygons are promoted) so one layer type fits all.
- List properties become scalars: ``centroid`` -> ``centroid_x``/``centroid_y`` (normalised
  image position) and ``rotated_box`` -> compact JSON text.
- Shapefile (dBASE) field names have at most 10 characters, see :func:`shapefile_field_names`.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import shapely

from spex.errors import ExportError, NotGeoreferencedWarning
from spex.export.ogr import pyogrio_raw
from spex.export.vector import region_features, regions_summary

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

    from spex.engine.result import Extraction
    from spex.io import Scene

__all__ = ["shapefile_field_names", "write_regions_gpkg", "write_regions_shapefile_zip"]

logger = logging.getLogger(__name__)

GisCRS = Literal["scene", "EPSG:4326"]
GPKG_LAYER = "regions"
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")  # .prj only when the scene has a CRS

_DBF_NAME_MAX = 10  # dBASE III field-name limit
_SHAPEFILE_RENAMES = {  # readable short forms of the long property names
    "centroid_x": "cent_x", "centroid_y": "cent_y", "centroid_lon": "cent_lon", "centroid_lat": "cent_lat",
    "rotated_box": "rot_box", "touches_border": "on_border",
}
_SPLIT_LISTS = {"centroid": ("centroid_x", "centroid_y")}
# Fields every feature carries; they give an empty result a usable schema.
_EMPTY_SCHEMA = (("rank", np.int64), ("label", np.int64), ("targets", object), ("pixels", np.int64),
                 ("area_m2", np.float64), ("area_ha", np.float64))
_WRITE_ERRORS = (OSError, RuntimeError, ValueError)  # pyogrio's errors derive from RuntimeError


def shapefile_field_names(names: Sequence[str]) -> list[str]:
    """Unique dBASE-safe (<= 10 characters) names for ``names``, in the same order.

    Known long names get readable short forms (``touches_border`` -> ``on_border``),
    ``mean_<INDEX>`` becomes ``m_<INDEX>`` when too long, anything else is cut; clashes
    (compared case-insensitively, as dBASE does) get a numeric suffix.
    """
    out: list[str] = []
    taken: set[str] = set()
    for name in names:
        short = _SHAPEFILE_RENAMES.get(name, name)
        if len(short) > _DBF_NAME_MAX and short.startswith("mean_"):
            short = "m_" + short[len("mean_"):]
        short = short[:_DBF_NAME_MAX]
        candidate, n = short, 1
        while candidate.lower() in taken:
            suffix = f"_{n}"
            candidate, n = short[: _DBF_NAME_MAX - len(suffix)] + suffix, n + 1
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def _flatten(props: dict[str, Any]) -> dict[str, Any]:
    """Scalar-only copy of a feature's properties (OGR fields cannot hold lists)."""
    flat: dict[str, Any] = {}
    for key, value in props.items():
        if key in _SPLIT_LISTS and isinstance(value, (list, tuple)):
            flat.update(zip(_SPLIT_LISTS[key], value, strict=True))
        elif isinstance(value, (list, tuple, dict)):
            flat[key] = json.dumps(value, separators=(",", ":"))
        else:
            flat[key] = value
    return flat


def _column(values: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """One typed field array plus its null mask (None when nothing is missing)."""
    present = [v for v in values if v is not None]
    missing = np.array([v is None for v in values], dtype=bool)
    if present and all(isinstance(v, bool) for v in present):
        dtype, fill = np.bool_, False
    elif present and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present):
        dtype, fill = np.int64, 0
    elif present and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in present):
        dtype, fill = np.float64, np.nan
    else:
        return np.array([None if v is None else str(v) for v in values], dtype=object), None
    data = np.array([fill if v is None else v for v in values], dtype=dtype)
    return data, (missing if missing.any() else None)


def _layer_data(features: list[tuple[BaseGeometry | bytes, dict[str, Any]]]
                ) -> tuple[np.ndarray, list[str], list[np.ndarray], list[np.ndarray | None]]:
    """WKB geometries, field names, field arrays and null masks of the features."""
    rows = [_flatten(props) for _, props in features]
    if not rows:
        names = [name for name, _ in _EMPTY_SCHEMA]
        arrays = [np.array([], dtype=dtype) for _, dtype in _EMPTY_SCHEMA]
        return np.array([], dtype=object), names, arrays, [None] * len(names)
    names = list(dict.fromkeys(key for row in rows for key in row))  # union, first-seen order
    columns = [_column([row.get(name) for row in rows]) for name in names]
    geoms = [geom for geom, _ in features]
    encoded = all(isinstance(geom, bytes) for geom in geoms)  # region_polygons_wkb's outlines, taken as they are
    wkb = np.array(geoms, dtype=object) if encoded else shapely.to_wkb(np.array(geoms, dtype=object))
    return wkb, names, [c[0] for c in columns], [c[1] for c in columns]


def _check_crs(crs: str, scene: Scene, path: Path) -> bool:
    """Whether to write lon/lat; validates ``crs`` and warns about pixel coordinates."""
    if crs not in ("scene", "EPSG:4326"):
        raise ValueError(f"invalid crs: {crs!r}; expected 'scene' or 'EPSG:4326'")
    if scene.crs is None:
        if crs == "EPSG:4326":
            raise ExportError(f"{path.name}: the scene is not georeferenced, so regions cannot be written in "
                              "EPSG:4326; use crs='scene' to write pixel coordinates")
        warnings.warn(f"{path.name}: the scene is not georeferenced; polygons are in pixel coordinates",
                      NotGeoreferencedWarning, stacklevel=3)
    return crs == "EPSG:4326"


def _write_layer(extraction: Extraction, scene: Scene, path: Path, *, lonlat: bool, driver: str,
                 shapefile: bool, polygons: Mapping[int, BaseGeometry] | None = None) -> None:
    """Build the features once and write them with OGR (``path`` is replaced)."""
    raw = pyogrio_raw()  # here, and without pandas (spex.export.ogr): only this step needs it
    features = region_features(extraction, scene, lonlat=lonlat, polygons=polygons)
    wkb, names, arrays, masks = _layer_data(features)
    if shapefile:
        names = shapefile_field_names(names)
    if scene.crs is None:
        crs_wkt = None
    else:
        crs_wkt = "EPSG:4326" if lonlat else scene.crs.to_wkt()
    summary = regions_summary(extraction, scene, lonlat=lonlat)
    options: dict[str, Any] = {}
    if not shapefile:  # GeoPackage keeps the summary as layer metadata and a description
        options["layer_metadata"] = {f"spex_{k}": "" if v is None else str(v) for k, v in summary.items()}
        options["layer_options"] = {"DESCRIPTION": f"SPEX regions: {summary['request']}"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        with warnings.catch_warnings():  # the caller already got a NotGeoreferencedWarning
            warnings.filterwarnings("ignore", message="'crs' was not provided", category=UserWarning)
            raw.write(path, wkb, arrays, names, field_mask=masks,
                      layer=None if shapefile else GPKG_LAYER, driver=driver, geometry_type="MultiPolygon",
                      promote_to_multi=True, crs=crs_wkt, encoding="UTF-8" if shapefile else None, **options)
    except _WRITE_ERRORS as exc:
        raise ExportError(f"cannot write {driver} {path}: {exc}") from exc
    logger.debug("wrote %d regions to %s", len(features), path)


def write_regions_gpkg(extraction: Extraction, scene: Scene, path: Path, *, crs: GisCRS = "scene",
                       polygons: Mapping[int, BaseGeometry] | None = None) -> Path:
    """Write the regions as a GeoPackage layer named ``regions``; returns ``path``.

    Args:
        crs: "scene" keeps the scene CRS (metric areas in GIS for projected scenes);
            "EPSG:4326" writes lon/lat like the GeoJSON.
        polygons: already traced region polygons (see :func:`spex.export.vector.region_features`).

    Notes:
        The layer metadata (``spex_request``, ``spex_backend``, ``spex_sensor``,
        ``spex_total_area_m2``...) repeats the GeoJSON ``spex`` summary. An empty mask gives
        a valid layer with no features. A non-georeferenced scene is written in pixel
        coordinates without a CRS (with a :class:`NotGeoreferencedWarning`).

    Raises:
        ValueError: for an unknown ``crs``.
        ExportError: when the labels do not match the scene, lon/lat is asked of a scene
            without CRS, or the file cannot be written.
    """
    path = Path(path)
    lonlat = _check_crs(crs, scene, path)
    _write_layer(extraction, scene, path, lonlat=lonlat, driver="GPKG", shapefile=False, polygons=polygons)
    return path


def write_regions_shapefile_zip(extraction: Extraction, scene: Scene, path: Path, *,
                                crs: GisCRS = "scene") -> Path:
    """Write the regions as an ESRI Shapefile zipped into ``path`` (one download); returns ``path``.

    The archive holds ``<name>.shp/.shx/.dbf/.prj/.cpg`` at its root, ``<name>`` being the
    zip's stem (``regions.zip`` or ``regions.shp.zip`` -> ``regions``). Text is UTF-8
    (declared in .cpg); field names are cut to 10 characters by
    :func:`shapefile_field_names`. A scene without CRS has no .prj.

    Raises:
        ValueError: for an unknown ``crs``.
        ExportError: as :func:`write_regions_gpkg`.
    """
    path = Path(path)
    lonlat = _check_crs(crs, scene, path)
    stem = path.name.removesuffix(".zip").removesuffix(".shp") or "regions"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="spex-shp-") as tmp:
            shp = Path(tmp) / f"{stem}.shp"
            _write_layer(extraction, scene, shp, lonlat=lonlat, driver="ESRI Shapefile", shapefile=True)
            members = [shp.with_suffix(ext) for ext in SHAPEFILE_PARTS if shp.with_suffix(ext).exists()]
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for member in members:
                    archive.write(member, arcname=member.name)
    except OSError as exc:
        if isinstance(exc, ExportError):
            raise
        raise ExportError(f"cannot write zipped Shapefile {path}: {exc}") from exc
    return path
