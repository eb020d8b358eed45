"""Resumable training state: model/optimizer/scheduler/RNG in one file, losses as JSON lines.

A checkpoint is written atomically (temp file + rename) so an interrupted run never
leaves a half-written state behind; ``--resume`` continues from the last one with the
same data order because the RNG states are restored too.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["TrainState", "save_state", "load_state", "append_log", "read_log", "truncate_log", "plot_losses"]

logger = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Where a stage is: ``step`` optimiser steps done, ``elapsed_s`` wall time spent so far;
    ``advanced`` = this call ran at least one step (later stages' states are then stale)."""

    step: int = 0
    elapsed_s: float = 0.0
    advanced: bool = False


def _rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_state(path: Path, state: TrainState, modules: dict[str, object]) -> None:
    """Save ``state`` and the ``state_dict()`` of each named module/optimizer/scheduler."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"state": state.__dict__, "rng": _rng_state(),
               "modules": {k: v.state_dict() for k, v in modules.items()}}  # type: ignore[attr-defined]
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_state(path: Path, modules: dict[str, object]) -> TrainState:
    """Restore modules and RNG from ``path``; returns the saved :class:`TrainState`."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    for name, module in modules.items():
        if name in payload["modules"]:
            module.load_state_dict(payload["modules"][name])  # type: ignore[attr-defined]
    _set_rng_state(payload["rng"])
    return TrainState(**payload["state"])


def append_log(path: Path, row: dict) -> None:
    """One JSON object per line; survives crashes and resumes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_log(path: Path, step: int) -> None:
    """Drop rows after ``step`` (a resumed run re-logs them)."""
    rows = [r for r in read_log(path) if r.get("step", 0) <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def plot_losses(rows: list[dict], keys: list[str], path: Path, title: str = "") -> Path:
    """Loss curves as PNG: matplotlib when installed, else a plain PIL line plot."""
    series = {k: [(r["step"], r[k]) for r in rows if k in r and r[k] is not None] for k in keys}
    series = {k: v for k, v in series.items() if v}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _plot_pil(series, path, title)
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))


def _plot_pil(series: dict[str, list[tuple[int, float]]], path: Path, title: str) -> Path:
    from PIL import Image, ImageDraw

    w, h, m = 720, 400, 50
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle([m, m // 2, w - m // 2, h - m], outline=(0, 0, 0))
    pts_all = [p for v in series.values() for p in v]
    if pts_all:
        x0, x1 = min(p[0] for p in pts_all), max(p[0] for p in pts_all)
        y0, y1 = min(p[1] for p in pts_all), max(p[1] for p in pts_all)
        x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-6)

        def xy(p: tuple[int, float]) -> tuple[float, float]:
            return (m + (p[0] - x0) / (x1 - x0) * (w - 1.5 * m), h - m - (p[1] - y0) / (y1 - y0) * (h - 1.5 * m))

        for i, (k, pts) in enumerate(series.items()):
            colour = _COLOURS[i % len(_COLOURS)]
            if len(pts) > 1:
                draw.line([xy(p) for p in pts], fill=colour, width=2)
            draw.text((w - 200, m // 2 + 5 + 14 * i), k, fill=colour)
        draw.text((m, h - m + 5), f"step {x0}", fill=(0, 0, 0))
        draw.text((w - m - 60, h - m + 5), f"step {x1}", fill=(0, 0, 0))
        draw.text((5, m // 2), f"{y1:.3g}", fill=(0, 0, 0))
        draw.text((5, h - m - 10), f"{y0:.3g}", fill=(0, 0, 0))
    draw.text((m, 5), title, fill=(0, 0, 0))
    img.save(path)
    return path
