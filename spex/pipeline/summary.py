"""The batch summary table: one row per scene as GeoPackage (footprints in EPSG:4326), CSV and text.

Columns: scene, status, error, seconds, cpu_seconds, regions, selected_ha, valid_ha, one
``area_ha_<class>`` per target class (pixels of that class in the final mask), sensor, crs,
out_dir, files. The geometry is the scene's footprint (its bounds, reprojected and densified);
failed or non-georeferenced scenes have an empty geometry but keep their row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spex.errors import ExportError
from spex.pipeline.batch import SceneSummary

__all__ = ["SUMMARY_LAYER", "summary_columns", "write_summary_gpkg", "write_summary_csv", "format_summary"]

SUMMARY_LAYER = "scenes"


def summary_columns(rows: Sequence[SceneSummary]) -> list[tuple[str, list[Any]]]:
    """(column name, values) in table order; class areas are the union over all rows."""
    classes = list(dict.fromkeys(c for r in rows for c in r.area_ha))
    cols: list[tuple[str, list[Any]]] = [
        ("scene", [r.name for r in rows]),
        ("status", [r.status for r in rows]),
        ("error", [r.error or None for r in rows]),
        ("seconds", [None if math.isnan(r.seconds) else round(r.seconds, 3) for r in rows]),
        ("cpu_seconds", [None if math.isnan(r.cpu_seconds) else round(r.cpu_seconds, 3) for r in rows]),
        ("regions", [r.regions for r in rows]),
        ("selected_ha", [r.selected_ha for r in rows]),
        ("valid_ha", [r.valid_ha for r in rows]),
    ]
    cols += [(f"area_ha_{c}", [r.area_ha.get(c) if r.status != "failed" else None for r in rows]) for c in classes]
    cols += [("sensor", [r.sensor or None for r in rows]), ("crs", [r.crs for r in rows]),
             ("out_dir", [r.out_dir for r in rows]), ("files", [";".join(r.paths) for r in rows])]
    return cols


def _field(values: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    present = [v for v in values if v is not None]
    missing = np.array([v is None for v in values], dtype=bool)
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return np.array([0 if v is None else v for v in values], dtype=np.int64), missing
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64), missing
    return np.array([None if v is None else str(v) for v in values], dtype=object), None


def write_summary_gpkg(rows: Sequence[SceneSummary], path: Path) -> Path:
    """Write the table as GeoPackage layer ``scenes`` (Polygon/MultiPolygon footprints, EPSG:4326)."""
    import shapely

    from spex.export.ogr import pyogrio_raw

    geoms = [shapely.from_wkt(r.footprint_wkt) if r.footprint_wkt else None for r in rows]
    wkb = np.array([None if g is None else shapely.to_wkb(g) for g in geoms], dtype=object)
    cols = summary_columns(rows)
    arrays, masks = zip(*(_field(values) for _, values in cols), strict=True) if cols else ((), ())
    path = Path(path)
    try:
        path.unlink(missing_ok=True)
        pyogrio_raw().write(path, wkb, list(arrays), [name for name, _ in cols], field_mask=list(masks),
                            layer=SUMMARY_LAYER, driver="GPKG", geometry_type="MultiPolygon", promote_to_multi=True,
                            crs="EPSG:4326")
    except (OSError, RuntimeError, ValueError) as exc:
        raise ExportError(f"cannot write the batch summary {path}: {exc}") from exc
    return path


def write_summary_csv(rows: Sequence[SceneSummary], path: Path) -> Path:
    """The same table without geometry (footprint as WKT), for spreadsheets."""
    cols = summary_columns(rows) + [("footprint_wkt", [r.footprint_wkt for r in rows])]
    try:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow([name for name, _ in cols])
            for i in range(len(rows)):
                writer.writerow(["" if values[i] is None else values[i] for _, values in cols])
    except OSError as exc:
        raise ExportError(f"cannot write the batch summary {path}: {exc}") from exc
    return Path(path)


def format_summary(rows: Sequence[SceneSummary]) -> str:
    """A plain-text table for the terminal (errors on their own lines below it)."""
    head = f"{'scene':<28} {'status':<8} {'regions':>7} {'selected ha':>12} {'seconds':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        sel = "" if r.selected_ha is None else f"{r.selected_ha:.2f}"
        reg = "" if r.regions is None else str(r.regions)
        sec = "" if math.isnan(r.seconds) else f"{r.seconds:.1f}"
        lines.append(f"{r.name[:28]:<28} {r.status:<8} {reg:>7} {sel:>12} {sec:>8}")
    lines += [f"{r.name}: {r.error}" for r in rows if r.status == "failed"]
    return "\n".join(lines)
