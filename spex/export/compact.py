"""Light lossy copies of rendered pictures, for places that show them inline on every turn.

The overlay PNG of a 1020 × 1020 scene is about 2 MB (lossless, noisy satellite texture);
shown in a chat bubble or embedded in a map page at every turn, that is what the browser
downloads again and again. WebP at quality ~80 keeps the numbered tags and the caption
legible at about a tenth of the size (~270 kB for the demo overlay). The full-quality PNG
stays the download.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Final

from PIL import Image

from spex.errors import ExportError

__all__ = ["LOSSY_QUALITY", "encode_lossy", "write_lossy_copy"]

logger = logging.getLogger(__name__)

#: WebP/JPEG quality: labels and 1-px outlines stay sharp, noise-like texture is what gets dropped.
LOSSY_QUALITY: Final[int] = 80
_SUFFIXES: Final[dict[str, str]] = {"image/webp": ".webp", "image/jpeg": ".jpg", "image/png": ".png"}


def encode_lossy(image: Image.Image, *, quality: int = LOSSY_QUALITY) -> tuple[bytes, str]:
    """(bytes, MIME type) of ``image`` as lossy WebP, alpha kept.

    Where Pillow was built without WebP: JPEG for opaque pictures, lossless PNG when there
    is an alpha channel (JPEG has none).
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    buffer = io.BytesIO()
    try:
        image.save(buffer, format="WEBP", quality=quality, method=4)
        return buffer.getvalue(), "image/webp"
    except (OSError, KeyError, ValueError):
        logger.debug("Pillow cannot write WebP; falling back to JPEG/PNG")
    buffer = io.BytesIO()
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue(), "image/png"
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue(), "image/jpeg"


def write_lossy_copy(src: Path, dest: Path, *, quality: int = LOSSY_QUALITY) -> Path:
    """Write a lossy copy of picture ``src`` next to ``dest``, whose suffix is replaced to match the format.

    Returns the path written (``dest`` with ``.webp``, or ``.jpg``/``.png`` without WebP support).

    Raises:
        ExportError: when ``src`` cannot be read or the copy cannot be written.
    """
    try:
        with Image.open(src) as image:
            image.load()
            data, mime = encode_lossy(image, quality=quality)
    except OSError as exc:
        raise ExportError(f"cannot read picture {src}: {exc}") from exc
    out = Path(dest).with_suffix(_SUFFIXES[mime])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc}") from exc
    return out
