"""Write every download of one extraction into a folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from spex.errors import ExportError
from spex.export.geotiff import write_mask_cog
from spex.export.gis import write_regions_gpkg
from spex.export.render import render_overlay
from spex.export.vector import region_polygons_wkb, write_regions_geojson
from spex.io.memo import MemoScene
from spex.memory import return_freed_heap

if TYPE_CHECKING:
    from spex.engine.result import Extraction
    from spex.io import Scene

__all__ = ["Outputs", "write_outputs"]


@dataclass(frozen=True)
class Outputs:
    """Paths of the files written by :func:`write_outputs`.

    ``gpkg`` defaults to None so that Outputs built without a GeoPackage stay valid.
    """

    mask_tif: Path
    geojson: Path
    overlay_png: Path
    reply_md: Path
    gpkg: Path | None = None

    def paths(self) -> tuple[Path, ...]:
        """Every file written (mask, GeoJSON, GeoPackage when written, overlay, reply), in download order."""
        gis = (self.gpkg,) if self.gpkg is not None else ()
        return (self.mask_tif, self.geojson, *gis, self.overlay_png, self.reply_md)


def write_outputs(extraction: Extraction, scene: Scene, out_dir: Path, *, reply: str,
                  false_colour: bool = False, progress: Callable[[str], None] | None = None) -> Outputs:
    """Write mask.tif (COG), regions.geojson, regions.gpkg, overlay.png and reply.md into ``out_dir``.

    regions.gpkg (layer "regions") holds the GeoJSON's features in the scene CRS, for GIS;
    a zipped Shapefile is optional: :func:`spex.export.write_regions_shapefile_zip`.

    Existing files of the same names are replaced, so one folder per turn keeps history.
    The files share their inputs: the scene is read through a :class:`~spex.io.MemoScene`
    (the validity mask serves both the COG and the overlay) and the region outlines are
    traced once for the GeoJSON and the GeoPackage (and held as WKB, :mod:`spex.export.wkb`).

    ``progress`` (optional) is called with the name of each step as it starts
    ("writing mask", "rendering", "vectorising", "writing vectors"), e.g. to drive a CLI bar.

    Raises:
        ExportError: when a file cannot be written or the mask does not match the scene.
    """
    step = progress or (lambda _name: None)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create output folder {out_dir}: {exc}") from exc
    view = scene if isinstance(scene, MemoScene) else MemoScene(scene)  # a caller's memo is reused as is
    step("writing mask")
    mask_tif = write_mask_cog(extraction.mask, view, out_dir / "mask.tif")
    return_freed_heap()  # each step's temporaries are scene-sized on large scenes (spex.memory)
    step("rendering")  # before the outlines exist: the steps' peaks do not add up
    overlay = render_overlay(view, extraction, out_dir / "overlay.png", false_colour=false_colour)
    if view is not scene:  # our own memo, read for the last time (the preview bands: ~50 MB at 10240²)
        view.clear()
    return_freed_heap()
    step("vectorising")
    polygons = region_polygons_wkb(extraction.labels, scene.transform, mask=extraction.mask)
    return_freed_heap()  # GDAL's outlines, freed once read
    step("writing vectors")
    geojson = write_regions_geojson(extraction, view, out_dir / "regions.geojson", polygons=polygons)
    return_freed_heap()
    gpkg = write_regions_gpkg(extraction, view, out_dir / "regions.gpkg", polygons=polygons)
    del polygons
    return_freed_heap()
    reply_md = out_dir / "reply.md"
    try:
        reply_md.write_text(reply.rstrip() + "\n", encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot write {reply_md}: {exc}") from exc
    return Outputs(mask_tif=mask_tif, geojson=geojson, overlay_png=overlay, reply_md=reply_md, gpkg=gpkg)
