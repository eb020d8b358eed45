"""SPEX refiner vs engine vs ``--backend auto`` on a labelled scene the refiner never saw.

Why: the refiner's own held-out table (assets/spex-refiner/README.md) holds out dates and columns
of one Sentinel-2 patch; the landscape and the sensor are the training ones. RStoolbox's Landsat-5 TM
scene (Tucuruí, Brazil; another sensor, continent and decade) with its authors' polygons is a true
out-of-distribution check. The polygons are read where the user has them (``$SPEX_LSAT_POLYGONS`` or
next to the scene; :mod:`spex.bench.polygons`); nothing is downloaded.

Each trained class is scored against the polygon classes that define it here: forest = forest;
grass (the refiner's pasture / shrub class) = cleared land; vegetation = forest + cleared + fallen/dry.
Water and cleared land have no refiner: the engine answers them under every backend.

Usage::

    SPEX_LSAT_POLYGONS=trainingPolygons_lsat.rds python -m spex.bench unseen [--data DIR]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spex.bench.accuracy import (
    LSAT_MTL, LSAT_POLYGONS_ENV, LSAT_SCENE, _lsat_polygons, default_data_dir, iou, lsat_labels,
)
from spex.engine.extract import extract
from spex.engine.request import ExtractionRequest
from spex.errors import SpexError
from spex.io import open_scene
from spex.spectral import IndexCache

__all__ = ["UnseenRow", "run_unseen", "format_unseen", "CLASS_LABELS"]

#: SPEX class -> polygon label codes that are its truth (see the module notes).
CLASS_LABELS: dict[str, tuple[int, ...]] = {"forest": (2,), "grass": (3,), "vegetation": (2, 3, 4), "water": (1,),
                                            "cleared": (3,)}


@dataclass(frozen=True)
class UnseenRow:
    """IoU inside the labelled pixels of one class under each backend, and the route auto took."""

    target: str
    positives: int
    labelled: int
    model: float
    engine: float
    auto: float
    route: str


def run_unseen(data: Path | None = None) -> list[UnseenRow]:
    """Score every class of :data:`CLASS_LABELS` on the Landsat-5 polygons.

    Raises:
        SpexError: the scene or its polygons are missing.
    """
    from spex.model.refined import RefinedBackend

    folder = (data or default_data_dir()) / "rstoolbox"
    if not (folder / LSAT_SCENE).is_file():
        raise SpexError(f"the Landsat-5 scene {folder / LSAT_SCENE} does not exist; set SPEX_DATA")
    polygons = _lsat_polygons(folder)
    if polygons is None:
        raise SpexError(f"no Landsat-5 polygons: set {LSAT_POLYGONS_ENV} to RStoolbox's trainingPolygons_lsat.rds")
    spex_backend = RefinedBackend("spex")
    auto_backend = RefinedBackend("auto", llm=spex_backend.llm)  # one language model for both, loaded once
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_scene(folder / LSAT_SCENE, mtl=folder / LSAT_MTL) as scene:
            labels = lsat_labels(scene, polygons)
            labelled = labels > 0
            cache = IndexCache(scene)
            for target, truth in CLASS_LABELS.items():
                gt = np.isin(labels, truth)
                request = ExtractionRequest(targets=(target,))
                engine = extract(scene, request, cache).mask
                model = spex_backend.extract(scene, request, cache).mask
                auto = auto_backend.extract(scene, request, cache).mask
                route = auto_backend.route(target)
                rows.append(UnseenRow(target, int(gt.sum()), int(labelled.sum()), iou(model, gt, labelled),
                                      iou(engine, gt, labelled), iou(auto, gt, labelled), route.backend))
    return rows


def format_unseen(rows: list[UnseenRow]) -> str:
    """Markdown table (the model card's "unseen scene" table)."""
    lines = ["| class | positives / labelled px | model | engine | auto | auto used | auto - engine |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r.target} | {r.positives} / {r.labelled} | {r.model:.3f} | {r.engine:.3f} | {r.auto:.3f} "
                     f"| {r.route} | {r.auto - r.engine:+.3f} |")
    return "\n".join(lines)
