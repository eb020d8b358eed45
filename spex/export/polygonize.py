"""Pixel outlines traced by GDAL, from memory for small label images and from a scratch file for large ones.

Why: ``rasterio.features.shapes`` on an array first copies it (and its mask) into an in-memory GDAL
dataset: 3 bytes per pixel more for uint16 labels, 300 MB at 10240². Given a band of a file instead,
GDAL's polygonizer reads it a scanline at a time. Writing the labels and the mask to uncompressed
scratch GeoTIFFs costs well under a second (they stay in the OS page cache, not in the process's
memory), and the outlines are the same, traced by the same code from the same pixels.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import rasterio
import rasterio.errors
import rasterio.features
import rasterio.windows

__all__ = ["FILE_BACKED_PIXELS", "traced_shapes"]

#: Label images with more pixels than this are traced from scratch files.
FILE_BACKED_PIXELS: Final[int] = 2048 * 2048
#: Rows written per block to the scratch files.
_ROWS: Final[int] = 512


def traced_shapes(labels: np.ndarray, mask: np.ndarray | None, transform: Any, *, connectivity: int = 4
                  ) -> Iterator[tuple[dict, float]]:
    """``(GeoJSON-like geometry, label)`` of each 4-connected piece of ``labels`` where ``mask``
    (default ``labels > 0``); ``labels`` uint16 or int32 (GDAL's types)."""
    if labels.size <= FILE_BACKED_PIXELS:
        yield from rasterio.features.shapes(labels, mask=labels > 0 if mask is None else mask,
                                            connectivity=connectivity, transform=transform)
        return
    h, w = labels.shape
    with tempfile.TemporaryDirectory(prefix="spex-trace-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # scratch files only
        paths = Path(tmp) / "labels.tif", Path(tmp) / "mask.tif"
        profile = {"driver": "GTiff", "width": w, "height": h, "count": 1, "transform": transform,
                   "BIGTIFF": "IF_SAFER"}
        with rasterio.open(paths[0], "w", dtype=labels.dtype, **profile) as out_labels, \
                rasterio.open(paths[1], "w", dtype="uint8", **profile) as out_mask:
            for r0 in range(0, h, _ROWS):
                block = labels[r0:r0 + _ROWS]
                window = rasterio.windows.Window(0, r0, w, block.shape[0])
                out_labels.write(block, 1, window=window)
                inside = block > 0 if mask is None else mask[r0:r0 + _ROWS]
                out_mask.write(inside.astype(np.uint8), 1, window=window)
        with rasterio.open(paths[0]) as src_labels, rasterio.open(paths[1]) as src_mask:
            yield from rasterio.features.shapes(rasterio.band(src_labels, 1), mask=rasterio.band(src_mask, 1),
                                                connectivity=connectivity, transform=transform)
