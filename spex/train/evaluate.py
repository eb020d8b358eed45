"""Held-out evaluation: SPEX model vs spectral engine, IoU per class on the same labelled pixels.

Held-out data (never used for training, tokenizer or pretraining of the shipped model):

* ``rstoolbox sen2`` — a Sentinel-2 L2A scene from another continent, sparse polygons for
  water / forest / built-up / dried river bed. A true scene hold-out. IoU is computed inside
  labelled pixels only (the polygons are samples, not a map), so false positives count only
  where another class was labelled.
* ``eo-learn 2015-09-09`` — the date left out of the eo-learn training dates. Same place and
  the same label map as the training dates, so this is a *temporal* hold-out only and
  flatters any model that memorised the layout; it is reported separately for that reason.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from spex.engine.request import ExtractionRequest
from spex.errors import SpexError
from spex.spie.builder import ClassMap, read_labels

__all__ = ["HeldOutScene", "HELD_OUT", "EvalRow", "iou", "evaluate", "format_table", "default_data_root"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldOutScene:
    """A labelled scene kept out of training (paths relative to the data root)."""

    name: str
    paths: tuple[str, ...]
    labels: str
    classes: str
    kind: str
    mtl: str | None = None


HELD_OUT: tuple[HeldOutScene, ...] = (
    HeldOutScene("rstoolbox sen2", ("rstoolbox/sen2_L2A_12band.tif",), "rstoolbox/sen2_training_labels.tif",
                 "1=water,2=forest,3=built,4=bare", "scene hold-out"),
    HeldOutScene("eo-learn 2015-09-09", ("eo-learn/eolearn_s2l1c_2015-09-09_13band.tif",), "eo-learn/eolearn_lulc.tif",
                 "2=forest,3=grass,8=built,1+2+3+4=vegetation", "date hold-out (same place)"),
)


@dataclass(frozen=True)
class EvalRow:
    """Scores of one class on one held-out scene (IoU in [0, 1]; None = backend failed)."""

    scene: str
    kind: str
    target: str
    labelled_px: int
    positive_px: int
    model_iou: float | None
    engine_iou: float | None
    model_error: str | None = None
    engine_error: str | None = None


def default_data_root() -> Path:
    """``$SPEX_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("SPEX_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def iou(pred: np.ndarray, truth: np.ndarray, scope: np.ndarray) -> float:
    """Intersection over union of two bool masks restricted to ``scope`` (1.0 if both empty)."""
    p, t = pred & scope, truth & scope
    union = int((p | t).sum())
    return float((p & t).sum()) / union if union else 1.0


def evaluate(model_path: str | Path, data_root: str | Path | None = None,
             scenes: tuple[HeldOutScene, ...] = HELD_OUT, quantization: str | None = None) -> list[EvalRow]:
    """Run the model and the engine on each held-out scene and class; return the rows."""
    from spex.engine.extract import extract
    from spex.io import open_scene
    from spex.model.backend import SpexBackend
    from spex.spectral import IndexCache

    root = Path(data_root) if data_root else default_data_root()
    backend = SpexBackend(model_path, quantization=quantization, device="cpu")
    rows: list[EvalRow] = []
    for held in scenes:
        paths = [root / p for p in held.paths]
        if not all(p.exists() for p in paths):
            raise SpexError(f"held-out scene {held.name} not found under {root}; set SPEX_DATA to the data folder")
        classes = ClassMap.parse(held.classes)
        with open_scene(paths if len(paths) > 1 else paths[0], mtl=(root / held.mtl) if held.mtl else None) as scene:
            cache = IndexCache(scene)
            labels = read_labels(root / held.labels, scene)
            scope = (labels > 0) & cache.valid()
            for target, codes in classes.codes.items():
                truth = np.isin(labels, codes)
                request = ExtractionRequest(targets=(target,))
                scores: dict[str, float | None] = {}
                errors: dict[str, str | None] = {"model": None, "engine": None}
                for which, fn in (("model", backend.extract), ("engine", extract)):
                    try:
                        scores[which] = iou(fn(scene, request, cache).mask, truth, scope)
                    except SpexError as exc:
                        scores[which], errors[which] = None, str(exc)
                rows.append(EvalRow(held.name, held.kind, target, int(scope.sum()), int((truth & scope).sum()),
                                    scores["model"], scores["engine"], errors["model"], errors["engine"]))
                logger.info("%s %s: model %s engine %s", held.name, target, scores["model"], scores["engine"])
    return rows


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def format_table(rows: list[EvalRow]) -> str:
    """Markdown table: one row per scene and class, plus the mean per scene."""
    lines = ["| held-out scene | kind | class | labelled px | class px | SPEX model IoU | spectral engine IoU |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.scene} | {r.kind} | {r.target} | {r.labelled_px} | {r.positive_px} | "
                     f"{_fmt(r.model_iou)} | {_fmt(r.engine_iou)} |")
    for scene in dict.fromkeys(r.scene for r in rows):
        sub = [r for r in rows if r.scene == scene]
        m = [r.model_iou for r in sub if r.model_iou is not None]
        e = [r.engine_iou for r in sub if r.engine_iou is not None]
        lines.append(f"| {scene} | | **mean** | | | {_fmt(float(np.mean(m)) if m else None)} | "
                     f"{_fmt(float(np.mean(e)) if e else None)} |")
    return "\n".join(lines)


def rows_to_dicts(rows: list[EvalRow]) -> list[dict]:
    return [asdict(r) for r in rows]
