"""A standalone, offline Leaflet map of a scene and its extracted regions.

The page is built with folium, then made self-contained: folium's CDN links (Leaflet,
jQuery, Bootstrap, Font Awesome...) are dropped and the vendored Leaflet 1.9.4 from
``assets/leaflet`` is inlined, with its control icons as data URLs. Only the optional
OpenStreetMap tiles are fetched online; without network the map still shows the scene.

Rasters are warped to Web Mercator before being placed, because a Leaflet image
overlay is an axis-aligned rectangle in EPSG:3857: a UTM picture stretched into its
lon/lat bounding box would not line up with the polygons.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import folium
import numpy as np
import rasterio.warp
import shapely
from affine import Affine
from PIL import Image
from rasterio.enums import Resampling
from rasterio.transform import from_bounds

from spex.engine.request import TARGET_LABELS
from spex.errors import ExportError
from spex.export.compact import encode_lossy
from spex.export.palette import (
    CLASS_COLOURS, REGION_PALETTE, class_colour, class_colour_table, hex_colour, region_colour_table,
)
from spex.export.render import (
    FILL_ALPHA,
    PNG_IMAGE_ROWS_KEY,
    downsample_labels,
    output_shape,
    preview_image,
)
from spex.export.vector import regions_feature_collection
from spex.units import format_area

if TYPE_CHECKING:
    from spex.engine.result import Extraction
    from spex.io import Scene

__all__ = ["LEAFLET_DIR", "inline_leaflet", "map_html"]

logger = logging.getLogger(__name__)

LEAFLET_DIR: Final[Path] = Path(__file__).resolve().parents[2] / "assets" / "leaflet"
#: Regions drawn as vectors in the map; beyond this only the raster mask layer shows them.
MAX_MAP_FEATURES: Final[int] = 2000
#: Polygon simplification for the map only, in scene pixels (exports keep exact outlines).
MAP_SIMPLIFY_PX: Final[float] = 0.5
#: Regions that get distinct colours (as in the overlay PNG).
TOP_N: Final[int] = 10
_MERCATOR_MAX_LAT: Final[float] = 85.05
_EXTERNAL_TAG = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script>|<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>",
    re.IGNORECASE,
)


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def inline_leaflet(leaflet_dir: Path = LEAFLET_DIR) -> tuple[str, str]:
    """(leaflet.js source, leaflet.css with its images as data URLs) from the vendored copy.

    Raises:
        ExportError: when the vendored files are missing.
    """
    try:
        js = (leaflet_dir / "leaflet.js").read_text(encoding="utf-8")
        css = (leaflet_dir / "leaflet.css").read_text(encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"vendored Leaflet not found in {leaflet_dir}: {exc}") from exc

    def to_data_url(match: re.Match[str]) -> str:
        image = leaflet_dir / match.group(1)
        if not image.is_file():
            return match.group(0)
        return f"url({_data_url(image.read_bytes(), 'image/png')})"

    css = re.sub(r"url\((images/[A-Za-z0-9_.-]+\.png)\)", to_data_url, css)
    return js.replace("</script", "<\\/script"), css


def _encode_image(rgba: np.ndarray) -> str:
    """Data URL of an RGBA picture: lossy WebP (with alpha) when Pillow has it, else PNG."""
    return _data_url(*encode_lossy(Image.fromarray(rgba, mode="RGBA"), quality=82))


def _encode_png(rgba: np.ndarray) -> str:
    """Lossless data URL (for masks: few colours, exact edges)."""
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", optimize=True)
    return _data_url(buffer.getvalue(), "image/png")


def _load_overlay_png(path: Path, max_size: int) -> np.ndarray:
    """An overlay PNG as RGBA, caption strip cut off (see ``spex:image_rows``), at most ``max_size``."""
    try:
        with Image.open(path) as image:
            rows = int(image.text.get(PNG_IMAGE_ROWS_KEY, image.height)) if hasattr(image, "text") else image.height
            image = image.convert("RGBA").crop((0, 0, image.width, min(rows, image.height)))
            h, w = output_shape(image.height, image.width, max_size)
            if (h, w) != (image.height, image.width):
                image = image.resize((w, h), Image.Resampling.LANCZOS)
            return np.asarray(image)
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read overlay image {path}: {exc}") from exc


def _to_mercator(rgba: np.ndarray, scene: Scene) -> tuple[np.ndarray, list[list[float]]]:
    """Warp an RGBA picture covering the scene onto an EPSG:3857 grid; returns (rgba, lat/lon bounds)."""
    h, w = rgba.shape[:2]
    src_transform = scene.transform @ Affine.scale(scene.width / w, scene.height / h)
    left, bottom, right, top = rasterio.warp.transform_bounds(scene.crs, "EPSG:3857", *scene.bounds,
                                                              densify_pts=21)
    limit = 20037508.34 * 0.985  # clip to |lat| < ~85 deg, where Web Mercator is defined
    bottom, top = max(bottom, -limit), min(top, limit)
    span_x, span_y = right - left, top - bottom
    dh, dw = output_shape(max(1, round(max(h, w) * span_y / max(span_x, span_y))),
                          max(1, round(max(h, w) * span_x / max(span_x, span_y))), max(h, w))
    dst_transform = from_bounds(left, bottom, right, top, dw, dh)
    out = np.zeros((4, dh, dw), dtype=np.uint8)
    for band in range(4):
        rasterio.warp.reproject(rgba[..., band], out[band], src_transform=src_transform, src_crs=scene.crs,
                                dst_transform=dst_transform, dst_crs="EPSG:3857",
                                resampling=Resampling.nearest, src_nodata=None, dst_nodata=0)
    lons, lats = rasterio.warp.transform("EPSG:3857", "EPSG:4326", [left, right], [bottom, top])
    return np.moveaxis(out, 0, -1), [[lats[0], lons[0]], [lats[1], lons[1]]]


def _place(rgba: np.ndarray, scene: Scene) -> tuple[np.ndarray, list[list[float]]]:
    """Picture and Leaflet bounds: Web Mercator for georeferenced scenes, pixel space otherwise."""
    if scene.crs is None:
        return rgba, [[0.0, 0.0], [float(scene.height), float(scene.width)]]
    return _to_mercator(rgba, scene)


def _mask_rgba(extraction: Extraction, shape: tuple[int, int]) -> np.ndarray:
    """Region colours (top regions distinct, others class colour) on transparent background."""
    small = downsample_labels(extraction.labels, shape)
    ranked = [r.label for r in extraction.regions]
    table = region_colour_table(ranked, int(max(int(small.max(initial=0)), max(ranked, default=0))),
                                targets=extraction.request.targets, top_n=TOP_N)
    rgba = np.zeros((*shape, 4), dtype=np.uint8)
    rgba[..., :3] = table[small]
    if _merged(extraction):  # several classes: colour by class, as in the overlay and the legend
        rgba[..., :3] = class_colour_table(extraction.request.targets)[downsample_labels(extraction.class_map, shape)]
    rgba[..., 3] = np.where(small > 0, round(255 * (FILL_ALPHA + 0.2)), 0)
    return rgba


def _pixel_space(collection: dict[str, Any], scene: Scene) -> dict[str, Any]:
    """Non-georeferenced features: scene coordinates -> (column, height - row) for CRS.Simple."""
    inverse = ~scene.transform
    for feature in collection["features"]:
        geom = shapely.geometry.shape(feature["geometry"])

        def to_simple(coords: np.ndarray) -> np.ndarray:
            cols, rows = inverse @ (coords[:, 0], coords[:, 1])
            return np.column_stack([cols, scene.height - np.asarray(rows)])

        feature["geometry"] = shapely.geometry.mapping(shapely.transform(geom, to_simple))
    return collection


def _regions_layer(extraction: Extraction, scene: Scene, fill_opacity: float) -> folium.GeoJson | None:
    if not extraction.regions:
        return None
    collection = regions_feature_collection(extraction, scene, simplify_tolerance=MAP_SIMPLIFY_PX,
                                            max_features=MAX_MAP_FEATURES)
    if scene.crs is None:
        collection = _pixel_space(collection, scene)
    georef = scene.crs is not None
    default = hex_colour(class_colour(extraction.request.targets))
    merged = _merged(extraction)
    for feature in collection["features"]:
        props = feature["properties"]
        rank = props["rank"]
        if merged:  # colour = the region's class (properties "class_key" from spex.export.vector)
            props["colour"] = hex_colour(CLASS_COLOURS.get(props.get("class_key", ""), class_colour(())))
        else:
            props["colour"] = hex_colour(REGION_PALETTE[(rank - 1) % len(REGION_PALETTE)]) if rank <= TOP_N else default
        props["area"] = format_area(props["area_m2"], georef)
    fields = ["rank", "class", "area", "size_class", "location", "touches_border"]
    aliases = ["Region #", "Class", "Area", "Size class", "Location", "Touches border"]
    fields += [k for k in collection["features"][0]["properties"] if k.startswith("mean_")]
    aliases += [k.replace("mean_", "Mean ") for k in fields[len(aliases):]]
    for feature in collection["features"]:  # only what the tooltip and style use: smaller page
        feature["properties"] = {k: feature["properties"].get(k) for k in (*fields, "colour")}
        if georef:
            feature["geometry"] = shapely.geometry.mapping(shapely.set_precision(
                shapely.geometry.shape(feature["geometry"]), 1e-6))
    shown = len(collection["features"])
    name = f"Regions ({shown} largest of {len(extraction.regions)})" if shown < len(extraction.regions) \
        else f"Regions ({shown})"
    return folium.GeoJson(
        collection,
        name=name,
        style_function=lambda f: {"color": f["properties"]["colour"], "weight": 1.5, "opacity": 1.0,
                                  "fillColor": f["properties"]["colour"], "fillOpacity": fill_opacity},
        highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.55},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases, localize=True, sticky=True),
        smooth_factor=0.5,
    )


def _merged(extraction: Extraction) -> bool:
    return extraction.class_map is not None and len(extraction.request.targets) > 1


def _legend_html(extraction: Extraction, georef: bool) -> str:
    """Class colours and totals of a merged result (one swatch per class), '' for one class."""
    if not _merged(extraction):
        return ""
    from spex.export.render import class_legend

    rows = "".join(f'<div><span style="display:inline-block;width:11px;height:11px;margin-right:5px;'
                   f'border:1px solid #fff;background:{hex_colour(colour)}"></span>{html.escape(text)}</div>'
                   for colour, text in class_legend(extraction, georef))
    return ('<div class="spex-legend" style="position:absolute;top:10px;left:50px;z-index:1000;'
            'background:rgba(20,20,20,.8);color:#eee;font:12px/1.4 sans-serif;padding:4px 8px;border-radius:4px">'
            f"<b>Classes</b>{rows}</div>")


def _caption_html(scene: Scene, extraction: Extraction | None, bands_text: str) -> str:
    parts = [f"<b>{html.escape(scene.sensor)}</b>", html.escape(bands_text)]
    if extraction is not None:
        label = " + ".join(TARGET_LABELS.get(t, t) for t in extraction.request.targets)
        n = len(extraction.regions)
        parts.insert(1, f"{html.escape(label)}: {n} region{'s' if n != 1 else ''}, "
                        f"{html.escape(format_area(extraction.total_area_m2, scene.crs is not None))}")
    if scene.crs is None:
        parts.append("not georeferenced: pixel coordinates")
    return ('<div style="position:absolute;bottom:48px;left:10px;z-index:1000;background:rgba(20,20,20,.8);'
            'color:#eee;font:12px/1.35 sans-serif;padding:4px 8px;border-radius:4px;max-width:70%">'
            + "<br>".join(parts) + "</div>")


def _make_offline(fmap: folium.Map) -> None:
    """Replace folium's CDN resources by the inlined vendored Leaflet (nothing else is needed)."""
    js, css = inline_leaflet()
    fmap.default_js = []  # instance attributes: the class lists stay untouched
    fmap.default_css = []
    header = fmap.get_root().header
    header.add_child(folium.Element(f"<style>{css}</style>"), name="leaflet_css_inline")
    header.add_child(folium.Element(f"<script>{js}</script>"), name="leaflet_js_inline")


def _strip_external(page: str) -> str:
    """Drop any remaining tag that loads a remote script or stylesheet (safety net)."""
    found = _EXTERNAL_TAG.findall(page)
    if found:
        logger.warning("dropping %d external resource tags from the map page: %s", len(found), found)
    return _EXTERNAL_TAG.sub("", page)


def map_html(scene: Scene, extraction: Extraction | None = None, *, overlay_png: Path | None = None,
             false_colour: bool = False, max_size: int = 1024) -> str:
    """A complete standalone HTML page with a Leaflet map of the scene (for ``<iframe srcdoc>``).

    Layers: OpenStreetMap tiles (online only), the scene picture (``overlay_png`` if given,
    its caption strip removed, else a fresh preview), the mask as a raster, the regions as
    polygons with tooltips (area, size class, location, index means), and a layer control.
    The view is fitted to the scene footprint. Non-georeferenced scenes are shown in pixel
    space without tiles.

    Notes:
        Pictures are at most ``max_size`` px; typical page size is 0.3–1.5 MB.
    """
    if overlay_png is not None:
        rgba = _load_overlay_png(Path(overlay_png), max_size)
        bands_text = "picture: overlay image"
    else:
        preview = preview_image(scene, false_colour=false_colour, max_size=max_size)
        rgba = preview.rgba()
        bands_text = preview.describe()
    georef = scene.crs is not None
    picture, bounds = _place(rgba, scene)
    centre = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    if georef:
        fmap = folium.Map(location=centre, tiles=None, control_scale=True, max_zoom=22)
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap (online only)", max_native_zoom=19,
                         max_zoom=22).add_to(fmap)
    else:
        fmap = folium.Map(location=centre, tiles=None, crs="Simple", zoom_start=0, min_zoom=-5, max_zoom=8)
    _make_offline(fmap)
    folium.raster_layers.ImageOverlay(_encode_image(picture), bounds=bounds, name="Scene picture",
                                      pixelated=True, opacity=1.0).add_to(fmap)
    if extraction is not None:
        if extraction.labels.shape != (scene.height, scene.width):
            raise ExportError(f"labels shape {extraction.labels.shape} does not match the scene grid "
                              f"({scene.height}, {scene.width})")
        mask_shape = output_shape(scene.height, scene.width, max_size)
        mask_picture, mask_bounds = _place(_mask_rgba(extraction, mask_shape), scene)
        many = len(extraction.regions) > MAX_MAP_FEATURES
        folium.raster_layers.ImageOverlay(_encode_png(mask_picture), bounds=mask_bounds, name="Mask (raster)",
                                          pixelated=True, show=many).add_to(fmap)
        # a given overlay picture is already tinted: keep the polygons light on top of it
        layer = _regions_layer(extraction, scene, 0.3 if overlay_png is None else 0.08)
        if layer is not None:
            layer.add_to(fmap)
    fmap.get_root().html.add_child(folium.Element(_caption_html(scene, extraction, bands_text)))
    if extraction is not None and _merged(extraction):
        fmap.get_root().html.add_child(folium.Element(_legend_html(extraction, georef)))
    folium.LayerControl(collapsed=True).add_to(fmap)
    fmap.fit_bounds(bounds)
    fmap.get_root().script.add_child(folium.Element(_REFIT_JS % {"map": fmap.get_name(), "bounds": json.dumps(bounds)}))
    return _strip_external(fmap.get_root().render())


#: fit_bounds runs when the page is parsed; a page rendered in a container that is not laid out
#: yet (an iframe whose panel is still being drawn) has size 0 there, and Leaflet then shows the
#: whole world with the scene as an invisible dot (seen in the browser after an upload). For the
#: first 5 s, and on every resize, fit again whenever the map has a size but its view is far
#: wider than the scene needs; a view the fit produced, or a user's zoom in, is left alone.
_REFIT_JS: Final[str] = """
setTimeout(function () {  // deferred: this runs before folium's script has created the map
  var map = %(map)s, bounds = %(bounds)s, ticks = 0;
  function refit() {
    map.invalidateSize({pan: false});
    var size = map.getSize();
    if (size.x > 0 && size.y > 0 && map.getZoom() < map.getBoundsZoom(bounds) - 1) {
      map.fitBounds(bounds, {animate: false});
    }
  }
  window.addEventListener("resize", refit);
  var timer = setInterval(function () { refit(); if (++ticks >= 20) { clearInterval(timer); } }, 250);
}, 0);
"""
