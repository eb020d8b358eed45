"""Cloud and cloud shadow from a trained model: DLR's ukis-csmask UNets (ONNX, CPU).

Why a model: a pixel test finds bright, white, opaque cloud, but misses thin cloud and haze
(eo-learn 2015-07-31: 0 % found where the s2cloudless mask says 100 %) and cannot see shadow
without geometry. ukis-csmask (Wieland et al. 2019, https://doi.org/10.1016/j.rse.2019.05.022;
Apache-2.0, weights inside the PyPI wheel, nothing downloaded) was trained on Sentinel-2 and
Landsat scenes at ~30 m for clear / cloud / cloud shadow, with 4 (blue, green, red, NIR) or
6 bands (+ SWIR1, SWIR2), for top-of-atmosphere (L1C) or surface (L2A) reflectance.

Measured on the scenes at hand (see the issue note): IoU 1.00 against eo-learn's cloud mask on
its haze date and its thick-cloud date, 0 % cloud on the three clear dates and on the cloud-free
Virginia scene when run at 30 m (at 10 m it marked 1.5 % cloud, 3.8 % shadow there), hence the
block averaging to ~``MODEL_PIXEL_M`` before inference.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = ["MODEL_PIXEL_M", "ModelMasks", "csmask_available", "csmask_masks"]

#: The models were trained on ~30 m pixels; finer scenes are block-averaged to about this size.
MODEL_PIXEL_M: Final[float] = 30.0
#: Ground pixel sizes the model is used for (satellite scenes; metre-scale aerial data is out of its domain).
MODEL_PIXEL_RANGE_M: Final[tuple[float, float]] = (5.0, 65.0)
_BANDS6: Final[tuple[str, ...]] = ("blue", "green", "red", "nir", "swir1", "swir2")
_NAMES: Final[dict[str, str]] = {"swir1": "swir16", "swir2": "swir22"}


@dataclass(frozen=True)
class ModelMasks:
    """Cloud and shadow masks on the scene grid, and which model made them."""

    cloud: np.ndarray
    shadow: np.ndarray
    model: str
    factor: int


def csmask_available() -> bool:
    """True when ukis-csmask and onnxruntime are installed (both in requirements.txt)."""
    return all(importlib.util.find_spec(m) is not None for m in ("ukis_csmask", "onnxruntime"))


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Mean over f x f blocks (NaN ignored; the last partial blocks are padded by edge values)."""
    if f == 1:
        return a
    h, w = a.shape
    ph, pw = (-h) % f, (-w) % f
    a = np.pad(a, ((0, ph), (0, pw)), mode="edge")
    blocks = a.reshape(a.shape[0] // f, f, a.shape[1] // f, f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(blocks, axis=(1, 3)).astype(np.float32)


def _expand(a: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1)[:shape[0], :shape[1]] if f > 1 else a


def csmask_masks(bands: Mapping[str, np.ndarray], valid: np.ndarray, pixel_m: float | None, *,
                 surface: bool) -> ModelMasks:
    """Run ukis-csmask on reflectance ``bands`` (blue, green, red, nir [, swir1, swir2]).

    Args:
        valid: pixels with data; invalid ones are never cloud or shadow.
        pixel_m: ground pixel size (m); the scene is block-averaged to ~30 m first.
        surface: surface (L2A) reflectance rather than top of atmosphere.

    Raises:
        ImportError: ukis-csmask / onnxruntime not installed. KeyError: a required band is missing.
    """
    from ukis_csmask.mask import CSmask

    names = [b for b in _BANDS6 if b in bands] if all(b in bands for b in _BANDS6) else list(_BANDS6[:4])
    shape = valid.shape
    f = max(1, int(round(MODEL_PIXEL_M / pixel_m))) if pixel_m else 1
    stack = []
    for b in names:
        x = np.where(valid, bands[b], np.nan).astype(np.float32)
        stack.append(_block_mean(x, f))
    img = np.stack(stack, axis=-1)
    ok = np.isfinite(img).all(axis=-1)
    img[~ok] = 0.0
    threads = max(1, (os.cpu_count() or 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # "smaller than the tiling size": it pads, results hold
        cs = CSmask(np.ascontiguousarray(img, dtype=np.float32), [_NAMES.get(b, b) for b in names],
                    product_level="l2a" if surface else "l1c", invalid_buffer=0,
                    intra_op_num_threads=threads, inter_op_num_threads=1, providers=["CPUExecutionProvider"])
    csm = cs.csm[..., 0]
    csm = np.where(ok, csm, 0)
    cloud = _expand(csm == 1, f, shape) & valid
    shadow = _expand(csm == 2, f, shape) & valid
    return ModelMasks(cloud, shadow, f"ukis-csmask {cs.model_version}", f)
