"""Nearest-neighbour decimated reads that decode every block of a file once.

Why: ``DatasetReader.read(out_shape=...)`` on a file without overviews makes GDAL fetch, for
every output row, the full-resolution rows it samples; with a block cache smaller than the
file (a 10240² 6-band scene is 1.2 GB decoded) each band re-decodes every block, so a 512 px
identification sample cost ~19 CPU-s at 10240² (three times reading the whole file once).
Here each block is read once, all requested bands together, and the same pixels GDAL's
nearest resampling picks are taken from it: the result is identical to GDAL's (tested), at
the cost of one pass over the file and one block of memory.

Only for plain files without overviews (GDAL would read an overview instead, which holds
different values) and not for masks (a mask band may be derived differently).

Also for the warped view of a coarser file on the scene grid (:class:`rasterio.vrt.WarpedVRT`, e.g. the
20 m and 60 m Sentinel-2 bands, :mod:`spex.io.coregister`) when it has no overviews: GDAL's decimated
read of one warped band samples the full-resolution warped blocks too, but re-warps them (and re-decodes
their source) for each output row once its block cache (32 MB in the CLI) is smaller than a row of
warped blocks: a 1366 px overview of a 4096² 13-band scene took ~265 CPU-s, ~30 s per warped band.
Here each warped block is made once, for all its bands: the same values as GDAL's per-band read (tested),
~3 CPU-s there. (GDAL's read of several warped bands at once is fast but warps at the coarse resolution
instead: other values, not a sample of the scene's pixels.)
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np
import rasterio
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

__all__ = ["nearest_picks", "can_decimate_by_blocks", "decimated_read", "decimated_reads"]


def nearest_picks(n_src: int, n_dst: int) -> np.ndarray:
    """Source indexes GDAL's nearest resampling samples for ``n_dst`` outputs from ``n_src`` inputs.

    GDAL (``GDALRasterBand::IRasterIO``): source = floor((i + 0.5) * n_src / n_dst + 1e-10).
    """
    pos = (np.arange(n_dst, dtype=np.float64) + 0.5) * (float(n_src) / float(n_dst)) + 1e-10
    return np.minimum(np.floor(pos).astype(np.int64), n_src - 1)


def can_decimate_by_blocks(ds: object) -> bool:
    """True for a plain tiled/striped dataset, or a warped view of one (module notes), without overviews;
    False for other VRTs."""
    warped = isinstance(ds, WarpedVRT)
    if not warped and (not isinstance(ds, rasterio.io.DatasetReader) or getattr(ds, "driver", "") == "VRT"):
        return False
    try:
        return not ds.overviews(1)
    except rasterio.errors.RasterioError:
        return False


def decimated_read(ds: rasterio.io.DatasetReader | WarpedVRT, indexes: list[int], out_shape: tuple[int, int],
                   window: Window | None = None) -> np.ndarray:
    """``ds.read(indexes, window=window, out_shape=(len(indexes), *out_shape))`` decoded block by block.

    Returns the file's dtype, shape (len(indexes), h, w). Memory: one block of the requested bands.
    """
    h, w = int(out_shape[0]), int(out_shape[1])
    if window is None:
        r_off, c_off, win_h, win_w = 0, 0, ds.height, ds.width
    else:
        r_off, c_off = int(window.row_off), int(window.col_off)
        win_h, win_w = int(window.height), int(window.width)
    rows = nearest_picks(win_h, h) + r_off
    cols = nearest_picks(win_w, w) + c_off
    out = np.empty((len(indexes), h, w), dtype=ds.dtypes[indexes[0] - 1])
    block_h, block_w = ds.block_shapes[0]
    row_block = rows // block_h
    col_block = cols // block_w
    for br in np.unique(row_block):
        out_r = np.flatnonzero(row_block == br)
        src_r = rows[out_r]
        r0, r1 = int(src_r[0]), int(src_r[-1]) + 1
        for bc in np.unique(col_block):
            out_c = np.flatnonzero(col_block == bc)
            src_c = cols[out_c]
            c0, c1 = int(src_c[0]), int(src_c[-1]) + 1
            part = ds.read(indexes, window=Window(c0, r0, c1 - c0, r1 - r0))
            out[:, out_r[0]:out_r[-1] + 1, out_c[0]:out_c[-1] + 1] = part[:, src_r - r0][:, :, src_c - c0]
    return out


def decimated_reads(requests: Iterable[tuple[Hashable, rasterio.io.DatasetReader | WarpedVRT, int]],
                    out_shape: tuple[int, int], window: Window | None = None) -> dict[Hashable, np.ndarray]:
    """``{key: band}`` for ``(key, dataset, band index)`` requests, each dataset decoded once for all its bands.

    Requests on datasets :func:`can_decimate_by_blocks` rejects are left out (the caller reads those
    through GDAL). Why one pass per dataset: a pixel-interleaved block holds every band, so reading
    the bands one by one decodes the whole file once per band.
    """
    groups: dict[int, tuple[rasterio.io.DatasetReader | WarpedVRT, list[tuple[Hashable, int]]]] = {}
    for key, ds, index in requests:
        if can_decimate_by_blocks(ds):
            groups.setdefault(id(ds), (ds, []))[1].append((key, index))
    out: dict[Hashable, np.ndarray] = {}
    for ds, members in groups.values():
        cube = decimated_read(ds, [index for _, index in members], out_shape, window)
        out.update((key, band) for (key, _), band in zip(members, cube, strict=True))
    return out
