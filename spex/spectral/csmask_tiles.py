"""ukis-csmask's tiled inference, one tile row at a time: the same classes in bounded memory.

Why not ``CSmask(img).csm``: it builds every overlapping 256 x 256 tile of the padded image at
once (6 bands float32), then every tile's class probabilities, then float64 blended copies of
them and a float64 padded target: about 20 bytes per input pixel per band, ~0.5 GB for a
4096² scene at 30 m and several GB beyond; and it also computes a buffered validity mask by
dilating until nothing changes, which spex never uses.

This module repeats its arithmetic exactly (same model file, normalisation, symmetric padding,
tile grid with 20 % overlap, softmax, Tukey-window blending summed in float64 in tile order,
cast, argmax), so the classes are bit-identical (``tests/test_csmask_tiles.py`` compares them
with ``CSmask``), but it cuts each tile from the image on demand and keeps only the float64 sum
of one tile row (256 rows of the padded width): memory = input + output + O(256 x width).
The input may also be a :class:`RowSource` that makes the image's rows as they are asked for
(:class:`spex.spectral.csmask.CoarseRows`): then no whole image is held either.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from spex.memory import return_freed_heap

__all__ = ["TILE_OVERLAP", "RowSource", "csmask_classes", "tukey"]

#: Overlap of CSmask's tiles (``CSmask._csm``: ``tile_array(..., overlap=0.2)``).
TILE_OVERLAP: Final[float] = 0.2


class RowSource(Protocol):
    """An image made row by row on demand: ``shape`` (H, W, bands), ``rows(index)`` float32 (len(index), W, bands).

    Tile rows ask for 256 rows at a time, advancing down the image (mirrored at its top and bottom).
    """

    @property
    def shape(self) -> tuple[int, int, int]: ...

    def rows(self, index: np.ndarray) -> np.ndarray: ...


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    """Source index of numpy's ``mode="symmetric"`` padding (edge repeated, period 2n)."""
    i = index % (2 * n)
    return np.where(i < n, i, 2 * n - 1 - i)


def tukey(m: int, alpha: float) -> np.ndarray:
    """The symmetric Tukey window of ``m`` points, as ``scipy.signal.windows.tukey(m, alpha)`` computes it.

    Why not scipy's: importing ``scipy.signal`` maps ~37 MB of libraries (linalg, stats, optimize,
    interpolate) into every run that uses the cloud model, for one 256-point window.
    """
    if m <= 1 or alpha <= 0:
        return np.ones(m)
    if alpha >= 1:
        raise ValueError(f"alpha must be below 1 (a Hann window otherwise), got {alpha}")
    n = np.arange(0, m, dtype=np.float64)
    width = int(math.floor(alpha * (m - 1) / 2.0))
    n1, n3 = n[0:width + 1], n[m - width - 1:]
    w1 = 0.5 * (1 + np.cos(np.pi * (-1 + 2.0 * n1 / alpha / (m - 1))))
    w3 = 0.5 * (1 + np.cos(np.pi * (-2.0 / alpha + 1 + 2.0 * n3 / alpha / (m - 1))))
    return np.concatenate((w1, np.ones(n[width + 1:m - width - 1].shape), w3))


def package_dir() -> Path:
    """Where ukis-csmask's model files are, found without importing ``ukis_csmask.mask``.

    Why: that module imports ``scipy.signal`` (for the window :func:`tukey` replaces), ~37 MB of
    libraries for a run; spex uses only its model files and repeats its arithmetic.

    Raises:
        ImportError: ukis-csmask is not installed.
    """
    spec = importlib.util.find_spec("ukis_csmask")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("ukis-csmask is not installed (pip install ukis-csmask; it is in requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def _normalize(tile: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``CSmask.normalize``: the same in-place arithmetic on the same lists, so the same float32 values."""
    tile -= mean
    tile /= std
    return tile


def _model(band_order: Sequence[str], product_level: str) -> tuple[str, dict]:
    """CSmask's model file and metadata for these bands (6-band model when SWIR is present)."""
    folder = package_dir()
    six = all(b in band_order for b in ("blue", "green", "red", "nir", "swir16", "swir22"))
    path = folder / f"model_{'6b' if six else '4b'}_{product_level}.onnx"
    with open(path.with_suffix(".json")) as f:
        return str(path), json.load(f)


def csmask_classes(img: np.ndarray | RowSource, band_order: Sequence[str], *, product_level: str, threads: int
                   ) -> tuple[np.ndarray, str]:
    """CSmask classes (uint8 (H, W): 0 clear, 1 cloud, 2 cloud shadow) and the model version.

    Args:
        img: (H, W, bands) float32 reflectance, bands in ``band_order`` (CSmask's names), or a
            :class:`RowSource` of such rows (the same classes, without the whole image in memory).
        product_level: "l1c" or "l2a".
        threads: onnxruntime intra-op threads (idle threads sleep instead of spinning on the CPU).
    """
    import onnxruntime
    from scipy.special import softmax

    if isinstance(img, np.ndarray) and (img.ndim != 3 or img.dtype != np.float32):
        raise TypeError(f"img must be (rows, cols, bands) float32, got {img.shape} {img.dtype}")
    model_file, meta = _model(band_order, product_level)
    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model_file, sess_options=so, providers=["CPUExecutionProvider"])
    return_freed_heap()   # loading and optimising the graph leaves ~100 MB of freed heap behind
    name = session.get_inputs()[0].name
    stats = meta["data"]["dataset_statistics"]
    order = [list(band_order).index(b) for b in stats["band_names"]]
    size = int(meta["data"]["target_size"][0])
    step = int(size - size * TILE_OVERLAP)
    pad = int(size * TILE_OVERLAP)
    h, w = img.shape[:2]
    n_rows = (h + 2 * pad + size + 1 - size) // step + 1   # tiles of tile_array on the padded image
    n_cols = (w + 2 * pad + size + 1 - size) // step + 1
    window = tukey(size, TILE_OVERLAP * 2)[:, None, None]
    window = window * window.transpose(1, 0, 2)
    offsets = np.arange(size)
    out = np.zeros((h, w), dtype=np.uint8)
    acc: np.ndarray | None = None   # float64 blend sum of padded rows [i * step, i * step + size)
    for i in range(n_rows):
        rows = _mirror(i * step - pad + offsets, h)
        band_rows = None   # the last tile row's rows go before this one's are made (21 MB each at 10240²)
        band_rows = img[rows] if isinstance(img, np.ndarray) else img.rows(rows)
        for j in range(n_cols):
            cols = _mirror(j * step - pad + offsets, w)
            tile = _normalize(band_rows[:, cols][:, :, order].astype(np.float32),
                              mean=stats["img"][0], std=stats["img"][1])
            prob = softmax(session.run(None, {name: np.moveaxis(tile[None], -1, 1)})[0], axis=1)
            prob = np.moveaxis(prob, 1, -1)[0]
            if acc is None:
                acc = np.zeros((size, (n_cols - 1) * step + size, prob.shape[-1]), dtype=np.float64)
                dtype = prob.dtype
            acc[:, j * step:j * step + size] = acc[:, j * step:j * step + size] + prob * window
        final = size if i == n_rows - 1 else step
        top = i * step - pad                 # image row of acc[0]
        r0, r1 = max(top, 0), min(top + final, h)
        if r1 > r0:
            out[r0:r1] = np.argmax(acc[r0 - top:r1 - top, pad:pad + w].astype(dtype), axis=2).astype(np.uint8)
        acc[:size - step] = acc[step:]
        acc[size - step:] = 0.0
    del session, acc, band_rows
    return_freed_heap()
    return out, str(meta["model"]["version"])
