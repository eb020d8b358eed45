"""Uploads that keep what they can, and the chat's wording of the CLI's band options.

An upload is sorted into band files, an MTL and skipped files (each with its reason), so one
stray file no longer refuses the whole upload. Roles (bands, MTL, quality bands) come from
``spex.io.sort_scene_files``; this module adds the chat's own checks (pictures, file size).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spex.errors import SceneReadError
from spex.io import sort_scene_files

__all__ = ["ACCEPTED_SUFFIXES", "MTL_SUFFIX", "SortedUpload", "chat_wording", "sort_upload"]

ACCEPTED_SUFFIXES = (".tif", ".tiff", ".jp2")
MTL_SUFFIX = "_mtl.txt"
_PICTURES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF", ".webp": "WebP", ".bmp": "BMP"}


@dataclass
class SortedUpload:
    """An upload sorted into what can be used and what was skipped (file, user-facing reason)."""

    rasters: list[Path] = field(default_factory=list)
    mtl: Path | None = None
    qa: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def skipped_text(self) -> str:
        return "\n".join(f"- `{p.name}` skipped: {why}" for p, why in self.skipped)


def _reason(f: Path, max_bytes: int) -> str | None:
    """Why ``f`` cannot be part of a scene, or None when it can."""
    suffix = f.suffix.lower()
    if f.name.lower().endswith(MTL_SUFFIX):
        return None
    if suffix in _PICTURES:
        return (f"a {_PICTURES[suffix]} picture has no georeference and no calibrated bands; give the scene as "
                "GeoTIFF (.tif/.tiff) or JPEG 2000 (.jp2)")
    if suffix not in ACCEPTED_SUFFIXES:
        return ("not a file type I read (accepted: GeoTIFF .tif/.tiff, JPEG 2000 .jp2 and the Landsat "
                "*_MTL.txt)")
    if f.exists() and f.stat().st_size > max_bytes:
        return (f"{f.stat().st_size / 2**20:.0f} MB, over the upload limit of {max_bytes / 2**20:.0f} MB per file; "
                "crop the scene (e.g. gdal_translate -srcwin) or upload fewer bands")
    return None


def sort_upload(files: Sequence[Path], max_bytes: int) -> SortedUpload:
    """Band files, MTL, quality bands and skipped files of an upload.

    Raises:
        SceneReadError: nothing usable is left (the message lists every skipped file and why).
    """
    out = SortedUpload()
    usable: list[Path] = []
    for f in files:
        why = _reason(f, max_bytes)
        if why is None:
            usable.append(f)
        else:
            out.skipped.append((f, why))
    roles = sort_scene_files(usable)  # the library decides bands, MTL and quality bands by name
    out.rasters, out.qa, out.mtl = list(roles.bands), list(roles.qa), roles.mtl
    out.skipped += [(Path(p), why) for p, why in roles.skipped]
    if not out.rasters and out.mtl is None:
        listed = ("\n\n" + out.skipped_text()) if out.skipped else ""
        raise SceneReadError("The upload has no raster I can use. Accepted: one GeoTIFF/JPEG 2000 or the band files "
                             "of one scene (.tif, .tiff, .jp2), optionally with the Landsat *_MTL.txt." + listed)
    return out


def chat_wording(message: str) -> str:
    """A library message with the CLI's band/sensor options in the words the chat accepts."""
    message = re.sub(r"(?:override|give (?:them|the bands)) with --bands(?: / bands=)?(?:,? e\.g\. --bands [\w,.]+)?",
                     "tell me the bands in file order, e.g. *the bands are blue, green, red, nir*", message)
    message = re.sub(r"--bands(?: / bands=)?(?: instead)?", "a message such as *the bands are blue, green, red, nir*",
                     message)
    message = re.sub(r"--sensor(?: \w+)?", "a message such as *this is Landsat 8 OLI*", message)
    message = re.sub(r"--mtl(?: \S+)?", "an upload of the *_MTL.txt file", message)
    return message
