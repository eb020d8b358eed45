"""Helpers shared by several test modules (imported as ``from helpers import ...``).

Small synthetic GeoTIFF writer, extraction of several classes from one file, the Virginia crop
file names, a call counter, a free TCP port for in-process app servers, and the ``python -m spex``
runner.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.transform import from_origin

ROOT = Path(__file__).resolve().parent.parent

#: The three band files of the small Sentinel-2 L1C Virginia crop in tests/data (10 m, 20 m, 60 m).
VIRGINIA = ("s2l1c_virginia_small_10m_B02-B03-B04-B08.tif", "s2l1c_virginia_small_20m_B05-B06-B07-B8A-B11-B12.tif",
            "s2l1c_virginia_small_60m_B01-B09-B10.tif")


def write_geotiff(path: Path, data: np.ndarray, *, crs: str | None = "EPSG:32618", transform: Affine | None = None,
                  origin: tuple[float, float] = (500_000.0, 4_000_000.0), res: float = 10.0,
                  nodata: float | None = None, descriptions: tuple[str, ...] | list[str] | None = None,
                  **profile: Any) -> Path:
    """Write ``data`` (bands, rows, cols) as a small GeoTIFF; returns ``path``.

    The grid is ``transform`` when given, else north-up from ``origin`` (upper-left x, y) with
    square ``res`` pixels. ``descriptions`` name the bands (band identification reads them);
    ``profile`` passes further creation options (e.g. ``compress``).
    """
    transform = transform if transform is not None else from_origin(*origin, res, res)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, **profile) as ds:
        ds.write(data)
        if descriptions:
            ds.descriptions = tuple(descriptions)
    return path


def extract_each(path: Path, *targets: str) -> dict[str, Any]:
    """``{target: Extraction}`` of each class alone from the scene at ``path``, sharing one index cache.

    Scaling and georeference warnings are silenced: the tests check the masks, not the notes.
    """
    from spex.engine.extract import extract
    from spex.engine.request import ExtractionRequest
    from spex.io import open_scene
    from spex.spectral import IndexCache

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_scene(path) as scene:
            cache = IndexCache(scene)
            return {t: extract(scene, ExtractionRequest(targets=(t,)), cache) for t in targets}


class Counted:
    """Wraps a function and counts its calls (e.g. installed over a scene method or a service)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for an in-process server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_spex(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m spex <args>`` from the repository root, output captured as text."""
    return subprocess.run([sys.executable, "-m", "spex", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
