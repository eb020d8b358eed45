"""PNG previews and mask overlays of a scene.

Display conventions (TorchGeo habit): each band is stretched between its 2nd and 98th
percentile computed on valid pixels only, so a few bright clouds or a nodata collar do
not flatten the picture the way a global min-max does. Invalid pixels are dark grey.
Large scenes are read through ``scene.read(out_shape=...)`` so a preview never loads
the full-resolution cube.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin
from scipy import ndimage

from spex.bands import WAVELENGTHS_NM
from spex.engine.request import TARGET_LABELS
from spex.errors import BandError, ExportError
from spex.export.palette import class_colour, class_colour_table, region_colour_table
from spex.io.scratch import BLOCK_PIXELS, release_rows
from spex.units import format_area

if TYPE_CHECKING:
    from spex.engine.result import Extraction
    from spex.io import Scene

__all__ = [
    "Preview", "choose_display_bands", "downsample_labels", "format_area", "outlines", "output_shape",
    "preview_image", "render_overlay", "render_preview",
]

logger = logging.getLogger(__name__)

#: Colour of invalid (nodata / outside footprint) pixels in PNGs.
NODATA_RGB: Final[tuple[int, int, int]] = (48, 48, 48)
#: Percentiles of the per-band display stretch.
STRETCH_PERCENTILES: Final[tuple[float, float]] = (2.0, 98.0)
#: Opacity of the mask fill in overlays (outlines are opaque).
FILL_ALPHA: Final[float] = 0.45
#: At most this many valid values per band enter the percentile computation.
_MAX_STRETCH_SAMPLES: Final[int] = 1_000_000
#: PNG text key holding the number of image rows above the caption strip (read by spex.viz).
PNG_IMAGE_ROWS_KEY: Final[str] = "spex:image_rows"
#: JPEG quality of on-screen overlays (4:4:4 chroma: 1-px coloured outlines do not bleed).
SCREEN_JPEG_QUALITY: Final[int] = 90

_LAST_RESORT: Final[frozenset[str]] = frozenset({"thermal", "cirrus", "watervapour"})
_TRUE_COLOUR: Final[tuple[str, str, str]] = ("red", "green", "blue")
_FALSE_COLOURS: Final[tuple[tuple[str, str, str], ...]] = (
    ("nir", "red", "green"),
    ("nir08", "red", "green"),
    ("swir1", "nir", "red"),
    ("swir1", "nir08", "red"),
)


@dataclass(frozen=True)
class Preview:
    """A display-ready picture of a scene.

    rgb: uint8 (h, w, 3), invalid pixels dark grey. valid: bool (h, w), True = valid data.
    bands: the scene bands shown as red, green, blue. scale: output pixels per scene pixel
    (1.0 = full resolution, < 1 = downsampled). note: why these bands, when not the asked ones.
    """

    rgb: np.ndarray
    valid: np.ndarray
    bands: tuple[str, str, str]
    scale: float
    note: str | None = None

    def rgba(self) -> np.ndarray:
        """uint8 (h, w, 4) with alpha 0 on invalid pixels (for map overlays)."""
        alpha = np.where(self.valid, 255, 0).astype(np.uint8)
        return np.dstack([self.rgb, alpha])

    def describe(self) -> str:
        """One line, e.g. 'R/G/B = nir/red/green (false colour)'."""
        kind = "true colour" if self.bands == _TRUE_COLOUR else "false colour"
        text = f"R/G/B = {'/'.join(self.bands)} ({kind})"
        return f"{text}; {self.note}" if self.note else text


def choose_display_bands(band_names: Sequence[str], *, false_colour: bool = False
                         ) -> tuple[tuple[str, str, str], str | None]:
    """Pick the three bands to show and explain any fallback.

    True colour is red/green/blue. False colour is nir/red/green (vegetation red), else
    swir1/nir/red. When neither exists, the three longest-wavelength surface bands are shown
    (longest as red; thermal, cirrus and water vapour only as a last resort); one or two bands
    are repeated to make a grey/duo-tone picture.

    Raises:
        BandError: when the scene has no bands at all.
    """
    names = list(band_names)
    if not names:
        raise BandError("the scene has no bands to display")
    present = set(names)
    wanted = "false colour" if false_colour else "true colour"
    candidates = _FALSE_COLOURS if false_colour else (_TRUE_COLOUR,)
    for combo in candidates:
        if present.issuperset(combo):
            if combo is not candidates[0]:
                return combo, f"{'/'.join(candidates[0])} not available, showing {'/'.join(combo)}"
            return combo, None
    if not false_colour:
        for combo in _FALSE_COLOURS:
            if present.issuperset(combo):
                return combo, f"no red/green/blue bands, showing false colour {'/'.join(combo)}"
    # surface bands first (longest wavelength as red); thermal and atmospheric bands only if nothing else
    ordered = sorted(dict.fromkeys(names), key=lambda b: (b in _LAST_RESORT, -WAVELENGTHS_NM.get(b, 0.0)))
    while len(ordered) < 3:
        ordered.append(ordered[-1])
    combo3 = (ordered[0], ordered[1], ordered[2])
    return combo3, f"{wanted} bands not available, showing {'/'.join(combo3)}"


def output_shape(height: int, width: int, max_size: int) -> tuple[int, int]:
    """(h, w) no larger than ``max_size`` on the long side, aspect ratio kept."""
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    scale = min(1.0, max_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def downsample_labels(labels: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Block-maximum downsampling of a label raster to ``out_shape``.

    Unlike nearest-neighbour sampling, a region smaller than one output pixel still
    shows up (where regions share a block, the higher label wins).
    """
    h, w = labels.shape
    oh, ow = out_shape
    if (oh, ow) == (h, w):
        return labels
    if oh > h or ow > w:
        raise ValueError(f"downsample_labels cannot enlarge {labels.shape} to {out_shape}")
    rows = (np.arange(oh) * h) // oh  # strictly increasing (oh <= h): each output row has its own input rows
    cols = (np.arange(ow) * w) // ow
    out = np.empty((oh, ow), dtype=labels.dtype)
    step = max(1, (BLOCK_PIXELS // max(w, 1)) * oh // h)  # output rows per block of input rows
    for i0 in range(0, oh, step):  # in row blocks: a file-backed label image stays one block resident
        i1 = min(oh, i0 + step)
        r0, r1 = int(rows[i0]), int(rows[i1]) if i1 < oh else h
        reduced = np.maximum.reduceat(labels[r0:r1], rows[i0:i1] - r0, axis=0)
        out[i0:i1] = np.maximum.reduceat(reduced, cols, axis=1)
        release_rows(labels, r0, r1)
    return out


def _stretch(band: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """2–98 % percentile stretch of one band to uint8, computed on valid finite pixels."""
    good = valid & np.isfinite(band)
    values = band[good]
    if values.size == 0:
        return np.zeros(band.shape, dtype=np.uint8)
    if values.size > _MAX_STRETCH_SAMPLES:
        values = values[:: values.size // _MAX_STRETCH_SAMPLES + 1]
    lo, hi = np.percentile(values, STRETCH_PERCENTILES)
    if not hi > lo:  # flat band: show it mid-grey rather than dividing by zero
        return np.where(good, 128, 0).astype(np.uint8)
    scaled = (np.nan_to_num(band, nan=lo) - np.float32(lo)) / np.float32(hi - lo)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def preview_image(scene: Scene, *, false_colour: bool = False, max_size: int = 1024) -> Preview:
    """Read, stretch and colour a (downsampled) picture of ``scene``.

    Notes:
        Reads three bands at ``output_shape(...)``: at most 3 × max_size² float32 values.
    """
    bands, note = choose_display_bands(scene.band_names, false_colour=false_colour)
    shape = output_shape(scene.height, scene.width, max_size)
    out_shape = None if shape == (scene.height, scene.width) else shape
    unique = list(dict.fromkeys(bands))
    cube = scene.read(unique, out_shape=out_shape)
    valid = np.asarray(scene.valid(out_shape=out_shape), dtype=bool)
    valid = valid & np.all(np.isfinite(cube), axis=0)
    stretched = {name: _stretch(cube[i], valid) for i, name in enumerate(unique)}
    rgb = np.dstack([stretched[b] for b in bands])
    rgb[~valid] = NODATA_RGB
    if note:
        logger.info("preview: %s", note)
    return Preview(rgb=rgb, valid=valid, bands=bands, scale=shape[1] / scene.width, note=note)


def _enlarge(image: np.ndarray, min_size: int) -> tuple[np.ndarray, int]:
    """Integer nearest-neighbour enlargement so that tiny crops stay legible."""
    factor = max(1, -(-min_size // max(image.shape[:2])))  # ceil: long side >= min_size
    if factor == 1:
        return image, 1
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1), factor


def _save_picture(image: np.ndarray, path: Path, text: dict[str, str]) -> Path:
    """Lossless PNG with ``text`` chunks; a ``.jpg``/``.jpeg`` path gets a fast on-screen JPEG instead.

    Why JPEG for the screen: deflating a 1020² photo-like overlay takes ~0.25 s (PNG barely
    compresses satellite texture), JPEG at 4:4:4 ~0.01 s with outlines and numbers intact. It
    carries no text chunks, so maps and downloads keep using the PNG.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in (".jpg", ".jpeg"):
            Image.fromarray(image).convert("RGB").save(path, format="JPEG", quality=SCREEN_JPEG_QUALITY,
                                                       subsampling=0)
            return path
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        Image.fromarray(image).save(path, format="PNG", pnginfo=info, optimize=False, compress_level=6)
    except OSError as exc:
        raise ExportError(f"cannot write picture {path}: {exc}") from exc
    return path


def render_preview(scene: Scene, path: Path, *, false_colour: bool = False, max_size: int = 1024,
                   min_size: int = 512) -> Path:
    """Write a stretched true- or false-colour PNG of the scene; returns ``path``.

    Scenes smaller than ``min_size`` are enlarged by the smallest integer factor that reaches it
    (pixels stay crisp).
    The bands shown are stored in the PNG text chunk ``spex:bands``.
    """
    preview = preview_image(scene, false_colour=false_colour, max_size=max_size)
    image, _ = _enlarge(preview.rgb, min_size)
    return _save_picture(image, path, {"spex:bands": preview.describe(),
                                   PNG_IMAGE_ROWS_KEY: str(image.shape[0])})


_Font = ImageFont.ImageFont | ImageFont.FreeTypeFont
#: Fonts tried first (found by Pillow in the system font folders); they have ² and –.
_UNICODE_FONTS: Final[tuple[str, ...]] = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf")
_ASCII_FALLBACK: Final[dict[str, str]] = {"²": "2", "–": "-", "…": "...", "×": "x"}


def _font(size: int) -> tuple[_Font, bool]:
    """A font of ``size`` px and whether it can draw non-ASCII signs such as ² and –."""
    for name in _UNICODE_FONTS:
        try:
            return ImageFont.truetype(name, size), True
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size), False
    except (TypeError, OSError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default(), False


def _printable(text: str, unicode_ok: bool) -> str:
    """Replace signs the fallback font lacks (it would draw empty boxes)."""
    if unicode_ok:
        return text
    return "".join(_ASCII_FALLBACK.get(ch, ch) for ch in text)


def outlines(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inner, outer) outlines of labelled regions: pixels with a 4-neighbour of another label.

    inner = such pixels inside a region, outer = such background (0) pixels. Equal to
    ``skimage.segmentation.find_boundaries`` in modes "inner" / "outer" intersected with the
    foreground / background, with four array comparisons instead of two grey dilations and
    erosions each (~10x faster on a 1020² picture: it is on every chat turn's critical path).
    """
    edge = np.zeros(labels.shape, dtype=bool)
    rows = labels[1:, :] != labels[:-1, :]
    edge[1:, :] |= rows
    edge[:-1, :] |= rows
    cols = labels[:, 1:] != labels[:, :-1]
    edge[:, 1:] |= cols
    edge[:, :-1] |= cols
    foreground = labels > 0
    return edge & foreground, edge & ~foreground


def _interior_point(region_mask: np.ndarray) -> tuple[int, int]:
    """(row, col) of the pixel farthest from the region edge (a point surely inside)."""
    dist = ndimage.distance_transform_edt(np.pad(region_mask, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(row), int(col)


def _label_anchor(small: np.ndarray, label: int, centroid: tuple[float, float],
                  bbox: tuple[int, int, int, int], scale: float) -> tuple[float, float]:
    """Where to print a region's number (x, y in preview pixels): centroid if inside, else interior."""
    h, w = small.shape
    cx = min(w - 1, max(0, int(centroid[0] * w)))
    cy = min(h - 1, max(0, int(centroid[1] * h)))
    if small[cy, cx] == label:
        return cx + 0.5, cy + 0.5
    r0, c0, r1, c1 = bbox
    r0, c0 = int(r0 * scale), int(c0 * scale)
    r1, c1 = max(r0 + 1, int(np.ceil(r1 * scale))), max(c0 + 1, int(np.ceil(c1 * scale)))
    sub = small[r0:r1, c0:c1] == label
    if not sub.any():
        return cx + 0.5, cy + 0.5
    row, col = _interior_point(sub)
    return c0 + col + 0.5, r0 + row + 0.5


def _luminance(rgb: Sequence[int]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


_Anchor = tuple[int, tuple[float, float], tuple[int, int, int], tuple[float, float, float, float]]


def _draw_numbers(image: Image.Image, anchors: list[_Anchor], font_size: int) -> None:
    """Small numbered tags at region anchors; later tags avoid overlapping earlier ones.

    Each anchor is (rank, (x, y) inside the region, colour, region box (x0, y0, x1, y1)).
    A region smaller than its tag gets the tag beside its top-right corner so that it stays visible.
    """
    draw = ImageDraw.Draw(image)
    font, _ = _font(font_size)
    placed: list[tuple[float, float, float, float]] = []
    width, height = image.size
    pad = max(2, font_size // 5)
    for rank, (x, y), colour, (x0, y0, x1, y1) in anchors:
        text = str(rank)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        bw, bh = tw + 2 * pad, th + 2 * pad
        if x1 - x0 < 2 * bw or y1 - y0 < 2 * bh:  # small region: tag beside it, not on it
            x, y = x1 + 1 + bw / 2, y0 - 1 - bh / 2
            if y - bh / 2 < 0:
                y = y1 + 1 + bh / 2
        bx = min(max(0.0, x - bw / 2), width - bw)
        by = min(max(0.0, y - bh / 2), height - bh)
        for _ in range(8):  # nudge down/up to avoid covering an earlier tag
            if not any(bx < p[2] and bx + bw > p[0] and by < p[3] and by + bh > p[1] for p in placed):
                break
            by = by + bh + 1 if by + 2 * bh + 1 <= height else max(0.0, by - 2 * bh)
        box = (bx, by, bx + bw, by + bh)
        placed.append(box)
        draw.rounded_rectangle(box, radius=pad, fill=tuple(colour), outline=(0, 0, 0), width=1)
        ink = (0, 0, 0) if _luminance(colour) > 140 else (255, 255, 255)
        draw.text((bx + pad - left, by + pad - top), text, fill=ink, font=font)


def _wrap(draw: ImageDraw.ImageDraw, parts: Sequence[str], font: _Font, width: int) -> list[str]:
    """Greedy wrap of caption parts (joined by ' · ') to fit ``width`` pixels."""
    lines: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current} · {part}" if current else part
        if current and draw.textlength(candidate, font=font) > width:
            lines.append(current)
            current = part
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _caption(image: Image.Image, parts: Sequence[str], swatch: tuple[int, int, int],
             legend: Sequence[tuple[tuple[int, int, int], str]] = ()) -> Image.Image:
    """Append a dark caption strip under ``image`` with a class-colour swatch.

    ``legend`` (merged results): one line per class with its own swatch, above the other lines.
    """
    width = image.width
    font_size = max(11, min(18, width // 45))
    font, unicode_ok = _font(font_size)
    probe = ImageDraw.Draw(image)
    margin = font_size // 2
    sw = font_size
    lines = _wrap(probe, [_printable(p, unicode_ok) for p in parts], font, width - 3 * margin - sw)
    line_h = int(font_size * 1.35)
    strip_h = margin * 2 + line_h * (len(lines) + len(legend))
    out = Image.new("RGB", (width, image.height + strip_h), (24, 24, 24))
    out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    y0 = image.height + margin
    for i, (colour, text) in enumerate(legend):
        y = y0 + i * line_h
        draw.rectangle((margin, y + 2, margin + sw, y + 2 + sw), fill=tuple(colour), outline=(255, 255, 255))
        draw.text((2 * margin + sw, y), _printable(text, unicode_ok), fill=(235, 235, 235), font=font)
    y0 += line_h * len(legend)
    if not legend:
        draw.rectangle((margin, y0 + 2, margin + sw, y0 + 2 + sw), fill=swatch, outline=(255, 255, 255))
    for i, line in enumerate(lines):
        draw.text((2 * margin + sw, y0 + i * line_h), line, fill=(235, 235, 235), font=font)
    return out


def class_legend(extraction: Extraction, georef: bool) -> list[tuple[tuple[int, int, int], str]]:
    """(colour, 'class: area (share)') per class of a merged result; [] for one class."""
    if len(extraction.request.targets) < 2 or extraction.class_map is None:
        return []
    from spex.engine.classes import class_totals

    table = class_colour_table(extraction.request.targets)
    return [(tuple(int(c) for c in table[k]), f"{TARGET_LABELS.get(t.target, t.target)}: "
             f"{format_area(t.area_m2, georef)} ({t.share_of_valid:.1%}), {t.regions} region(s)")
            for k, t in enumerate(class_totals(extraction), start=1)]


def render_overlay(scene: Scene, extraction: Extraction, path: Path, *, false_colour: bool = False,
                   max_size: int = 1024, min_size: int = 512, top_n: int = 10,
                   preview: Preview | None = None) -> Path:
    """Write the preview with the mask drawn on top (PNG; a ``.jpg`` path: fast JPEG); returns ``path``.

    The ``top_n`` largest regions get distinct colours and numbered tags (#1 = largest, the
    numbering of the reply and the GeoJSON ``rank``); other regions use the class colour.
    Every region has an opaque outline over a semi-transparent fill. A caption strip states
    class, region count, total area and the bands shown.

    ``preview``: the scene's :func:`preview_image` for these settings, when the caller keeps one
    (refinement turns redraw the same background; reading and stretching it again costs ~50 ms).

    Raises:
        ExportError: when the mask does not match the scene grid or the file cannot be written.
    """
    if extraction.labels.shape != (scene.height, scene.width):
        raise ExportError(f"labels shape {extraction.labels.shape} does not match the scene grid "
                          f"({scene.height}, {scene.width})")
    if preview is None:
        preview = preview_image(scene, false_colour=false_colour, max_size=max_size)
    elif preview.valid.shape != output_shape(scene.height, scene.width, max_size):
        raise ValueError(f"preview of shape {preview.valid.shape} does not fit this scene at max_size {max_size}")
    small = downsample_labels(extraction.labels, preview.valid.shape)
    ranked = [r.label for r in extraction.regions]
    max_label = int(max(int(small.max(initial=0)), max(ranked, default=0)))
    table = region_colour_table(ranked, max_label, targets=extraction.request.targets, top_n=top_n)
    selected = small > 0
    colours = table[small[selected]]  # only where drawn: a full-picture gather is ~3 M lookups
    merged = extraction.class_map is not None and len(extraction.request.targets) > 1
    if merged:  # several classes: colour by class (legend in the caption), numbers still rank the regions
        ctable = class_colour_table(extraction.request.targets)
        small_classes = downsample_labels(extraction.class_map, preview.valid.shape)
        colours = ctable[small_classes[selected]]
        from spex.engine.classes import region_classes

        region_class = region_classes(extraction)
        for region in extraction.regions[:top_n]:
            k = extraction.request.targets.index(region_class.get(region.label, extraction.request.targets[0])) + 1
            if region.label < table.shape[0]:
                table[region.label] = ctable[k]

    image = preview.rgb.copy()
    blend = (1.0 - FILL_ALPHA) * image[selected].astype(np.float32) + FILL_ALPHA * colours
    image[selected] = blend.astype(np.float32).astype(np.uint8)  # via float32 as ever: same pixels
    image, factor = _enlarge(image, min_size)
    big_labels = np.repeat(np.repeat(small, factor, axis=0), factor, axis=1) if factor > 1 else small
    inner, outer = outlines(big_labels)
    image[outer] = (image[outer] * 0.35).astype(np.uint8)  # dark halo keeps outlines crisp on bright ground
    if merged:
        big_classes = (np.repeat(np.repeat(small_classes, factor, axis=0), factor, axis=1) if factor > 1
                       else small_classes)
        image[inner] = ctable[big_classes[inner]]
    else:
        image[inner] = table[big_labels[inner]]

    pil = Image.fromarray(image)
    font_size = max(12, min(18, pil.width // 55))
    anchors = []
    for rank, region in enumerate(extraction.regions[:top_n], start=1):
        x, y = _label_anchor(small, region.label, region.centroid, region.bbox, preview.scale)
        r0, c0, r1, c1 = (v * preview.scale * factor for v in region.bbox)
        anchors.append((rank, (x * factor, y * factor), tuple(int(c) for c in table[region.label]),
                        (c0, r0, c1, r1)))
    _draw_numbers(pil, anchors, font_size)

    georef = scene.crs is not None
    label = " + ".join(TARGET_LABELS.get(t, t) for t in extraction.request.targets)
    n = len(extraction.regions)
    parts = [f"{label}: {n} region{'s' if n != 1 else ''}",
             f"{format_area(extraction.total_area_m2, georef)} total"
             f" ({extraction.fraction_of_valid:.1%} of valid area)"]
    if merged:
        parts.append(f"#1–#{min(n, top_n)} = largest regions; colour = class")
    elif n > top_n:
        parts.append(f"#1–#{top_n} largest coloured individually, others in class colour")
    parts.append(preview.describe())
    out = _caption(pil, parts, class_colour(extraction.request.targets),
                   legend=class_legend(extraction, georef) if merged else ())
    return _save_picture(np.asarray(out), path, {"spex:bands": preview.describe(),
                                             "spex:request": extraction.request.describe(),
                                             PNG_IMAGE_ROWS_KEY: str(pil.height)})
