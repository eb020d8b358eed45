"""Sort uploaded files into band rasters, an MTL metadata file, quality (QA) rasters and skipped files.

Why: an upload often holds a whole product folder (bands, ``*_MTL.txt``, ``QA_PIXEL``/``BQA``,
Sentinel-2 cloud masks, thumbnails, XML). Keeping what can be used and saying why each other
file was left out beats rejecting the whole upload.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SceneFiles", "sort_scene_files", "RASTER_SUFFIXES"]

#: File suffixes read as rasters (lower case).
RASTER_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".jp2", ".vrt", ".img")
#: Quality rasters: Landsat Collection 2 QA_PIXEL / QA_RADSAT, pre-collection BQA, Sentinel-2 cloud masks.
_QA = re.compile(r"(QA_PIXEL|QA_RADSAT|SR_QA_AEROSOL|_BQA|^BQA|MSK_CLDPRB|MSK_CLASSI|MSK_CLOUDS|_SCL|^SCL|_CLM|^CLM)",
                 re.IGNORECASE)
_MTL = re.compile(r"_MTL\.(txt|json)$|^MTL\.(txt|json)$", re.IGNORECASE)


@dataclass
class SceneFiles:
    """Uploaded files by role; ``skipped`` holds (file, user-facing reason) for every file left out."""

    bands: list[Path] = field(default_factory=list)
    mtl: Path | None = None
    qa: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def sort_scene_files(paths: Iterable[str | Path]) -> SceneFiles:
    """Classify ``paths`` by name (no file is opened): bands, one MTL, QA rasters, skipped with a reason."""
    out = SceneFiles()
    for raw in paths:
        path = Path(raw)
        name = path.name
        if _MTL.search(name):
            if out.mtl is None:
                out.mtl = path
            else:
                out.skipped.append((path, f"a second metadata file; {out.mtl.name} is used"))
        elif path.suffix.lower() in RASTER_SUFFIXES:
            (out.qa if _QA.search(path.stem) else out.bands).append(path)
        elif path.suffix.lower() in (".xml", ".json", ".txt", ".html", ".md"):
            out.skipped.append((path, "metadata or documentation file that spex does not read (only *_MTL.txt/"
                                      "*_MTL.json metadata is used)"))
        elif path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
            out.skipped.append((path, "a preview image, not calibrated band data (upload the GeoTIFF/JP2 bands)"))
        else:
            out.skipped.append((path, f"unsupported file type {path.suffix or '(no suffix)'!r}; accepted: "
                                      f"{', '.join(RASTER_SUFFIXES)} rasters and *_MTL.txt"))
    return out
