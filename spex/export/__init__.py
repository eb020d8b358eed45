"""Exports of an extraction: mask COG, regions GeoJSON/GeoPackage/zipped Shapefile, preview/overlay PNG,
Markdown report; light lossy copies of pictures for inline display."""

from spex.export.compact import encode_lossy, write_lossy_copy
from spex.export.geotiff import write_mask_cog
from spex.export.gis import write_regions_gpkg, write_regions_shapefile_zip
from spex.export.outputs import Outputs, write_outputs
from spex.export.render import Preview, preview_image, render_overlay, render_preview
from spex.export.report import write_report
from spex.export.vector import regions_feature_collection, write_regions_geojson

__all__ = [
    "Outputs", "Preview", "preview_image", "regions_feature_collection", "render_overlay", "render_preview",
    "write_mask_cog", "write_outputs", "write_regions_geojson", "write_regions_gpkg", "write_regions_shapefile_zip",
    "write_report", "encode_lossy", "write_lossy_copy",
]
