"""Shared pytest set-up: offline, no telemetry, paths to the small test crops."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

DATA = Path(__file__).parent / "data"
ASSETS = Path(__file__).resolve().parent.parent / "assets"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of the small permissively licensed test crops."""
    return DATA


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    """The repository's assets folder (demo scene, leaflet, checkpoint)."""
    return ASSETS


@pytest.fixture(scope="module")
def virginia(data_dir: Path):
    """The small 3-file Sentinel-2 Virginia crop (10/20/60 m) and its index cache."""
    from spex.io import open_scene
    from spex.spectral import IndexCache
    from helpers import VIRGINIA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = open_scene([data_dir / f for f in VIRGINIA])
    with scene:
        yield scene, IndexCache(scene)
