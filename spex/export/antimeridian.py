"""Lon/lat geometries that cross the antimeridian, cut as RFC 7946 (section 3.1.9) asks.

Why: a region in a UTM zone at 180 degrees (zone 1 or 60, EPSG:3832 ...) reprojected to
EPSG:4326 gets longitudes past 180 (180.39) or vertices that jump from 179.9 to -179.6,
which GeoJSON readers draw as a band around the whole globe. Each ring is first made
continuous (no step above 180 degrees between neighbours), then the geometry is cut at
+-180 and the pieces beyond are shifted back by 360 degrees, so every longitude lies in
[-180, 180] and each piece keeps its true shape and area.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

__all__ = ["split_antimeridian", "wrap_longitudes"]


def wrap_longitudes(lons: Iterable[float]) -> list[float]:
    """Longitudes brought into [-180, 180] (180 stays 180; 540 -> 180, -190 -> 170)."""
    out = []
    for lon in lons:
        lon = float(lon)
        if np.isfinite(lon) and not -180.0 <= lon <= 180.0:
            lon = (lon + 180.0) % 360.0 - 180.0
        out.append(lon)
    return out


def _unwrap_ring(coords: np.ndarray, reference: float | None) -> np.ndarray:
    """A ring's longitudes made continuous, starting within 180 degrees of ``reference``."""
    lon = np.unwrap(np.radians(coords[:, 0]))  # steps above 180 degrees become steps of less
    lon = np.degrees(lon)
    if reference is not None:  # inner rings (holes) continue from their outer ring
        lon += 360.0 * np.round((reference - lon[0]) / 360.0)
    return np.column_stack([lon, coords[:, 1]])


def _unwrap_polygon(poly: Polygon) -> Polygon:
    shell = _unwrap_ring(np.asarray(poly.exterior.coords), None)
    holes = [_unwrap_ring(np.asarray(r.coords), float(shell[0, 0])) for r in poly.interiors]
    return Polygon(shell, holes)


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    return [g for part in getattr(geom, "geoms", []) for g in _polygons(part)]


def split_antimeridian(geom: BaseGeometry) -> BaseGeometry:
    """``geom`` (lon/lat, Polygon or MultiPolygon) with every longitude in [-180, 180].

    A geometry already within range and without a jump across the antimeridian is returned
    unchanged (the common case costs one bounds check per ring). Otherwise each polygon is
    unwrapped, cut into its parts in each 360-degree band, and those parts are shifted into
    [-180, 180]; the result is a MultiPolygon when a polygon was cut.
    """
    polys = _polygons(geom)
    if not polys:
        return geom
    needs = False
    for p in polys:
        lon = np.asarray(p.exterior.coords)[:, 0]
        if lon.min() < -180.0 or lon.max() > 180.0 or np.abs(np.diff(lon)).max(initial=0.0) > 180.0:
            needs = True
            break
    if not needs:
        return geom
    pieces: list[Polygon] = []
    for p in polys:
        u = _unwrap_polygon(p)
        if not u.is_valid:
            u = shapely.make_valid(u)
        west, _, east, _ = u.bounds
        for k in range(int(np.floor((west + 180.0) / 360.0)), int(np.floor((east + 180.0) / 360.0)) + 1):
            band = box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0)
            part = u.intersection(band)
            if part.is_empty:
                continue
            part = shapely.transform(part, lambda xy, k=k: xy - np.array([360.0 * k, 0.0]))
            pieces.extend(q for q in _polygons(part) if not q.is_empty and q.area > 0)
    if not pieces:
        return geom
    # the shift by 360 k is exact, but float rounding can leave 180.00000000000003: clamp
    pieces = [shapely.transform(q, lambda xy: np.column_stack([np.clip(xy[:, 0], -180.0, 180.0), xy[:, 1]]))
              for q in pieces]
    return pieces[0] if len(pieces) == 1 else MultiPolygon(pieces)
