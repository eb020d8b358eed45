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

from spex.io.scratch import row_blocks

__all__ = ["FILE_BACKED_PIXELS", "PASS_PIXELS", "traced_shapes"]

#: Label images with more pixels than this are traced from scratch files.
FILE_BACKED_PIXELS: Final[int] = 2048 * 2048
#: Label images with more pixels than this are traced in several passes, each over the labels of one
#: residue class (label mod passes): GDAL holds every outline of a pass in memory until it is read
#: (~85 bytes per vertex; 1.6 M vertices at 10240²), and a pass's scan costs ~2 CPU-s there.
PASS_PIXELS: Final[int] = 1 << 26
#: Rows written per block to the scratch files.
_ROWS: Final[int] = 512


def traced_shapes(labels: np.ndarray, mask: np.ndarray | None, transform: Any, *, connectivity: int = 4
                  ) -> Iterator[tuple[dict, float]]:
    """``(GeoJSON-like geometry, label)`` of each 4-connected piece of ``labels`` where ``mask``
    (default ``labels > 0``); ``labels`` uint16 or int32 (GDAL's types). Large images are traced in
    passes (:data:`PASS_PIXELS`): the pieces of one label come in the same order, labels in another."""
    if labels.size <= FILE_BACKED_PIXELS:
        yield from rasterio.features.shapes(labels, mask=labels > 0 if mask is None else mask,
                                            connectivity=connectivity, transform=transform)
        return
    h, w = labels.shape
    passes = max(1, -(-labels.size // PASS_PIXELS))
    with tempfile.TemporaryDirectory(prefix="spex-trace-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # scratch files only
        paths = Path(tmp) / "labels.tif", Path(tmp) / "mask.tif"
        profile = {"driver": "GTiff", "width": w, "height": h, "count": 1, "transform": transform,
                   "BIGTIFF": "IF_SAFER"}
        with rasterio.open(paths[0], "w", dtype=labels.dtype, **profile) as out_labels:
            for r0, block in row_blocks(labels, _ROWS):  # a file-backed label image stays one block resident
                out_labels.write(block, 1, window=rasterio.windows.Window(0, r0, w, block.shape[0]))
        for k in range(passes):  # labels = k (mod passes): each pass's outlines are all GDAL holds at once
            with rasterio.open(paths[1], "w", dtype="uint8", **profile) as out_mask:
                for r0, block in row_blocks(labels, _ROWS):
                    inside = block > 0 if mask is None else mask[r0:r0 + block.shape[0]]
                    if passes > 1:
                        inside = inside & (block % passes == k)
                    out_mask.write(inside.astype(np.uint8), 1, window=rasterio.windows.Window(0, r0, w, block.shape[0]))
            with rasterio.open(paths[0]) as src_labels, rasterio.open(paths[1]) as src_mask:
                yield from rasterio.features.shapes(rasterio.band(src_labels, 1), mask=rasterio.band(src_mask, 1),
                                                    connectivity=connectivity, transform=transform)
