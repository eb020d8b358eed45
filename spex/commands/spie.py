"""``python -m spex spie build``: make SPIE instruction records from a scene.

Examples::

    python -m spex spie build --scene s2.tif --labels lulc.tif --classes 2=forest,8=built --out /tmp/spie
    python -m spex spie build --scene rgbn.tif --pseudo --out /tmp/spie
"""

from __future__ import annotations

import argparse
import json

from spex.errors import SpexError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("spie", help="build SPIE instruction records (dataset for the SPEX model)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="spie_command", required=True, metavar="ACTION")
    build = sub.add_parser("build", help="tile one scene into chips, masks and LLaVA-style records")
    build.add_argument("--scene", nargs="+", required=True, metavar="PATH",
                       help="raster file(s) forming one scene (co-registered by georeference)")
    build.add_argument("--labels", metavar="PATH", help="label raster of class codes (0 = unlabelled)")
    build.add_argument("--classes", metavar="MAP",
                       help="label codes per class, e.g. 1=water,2=forest or 1+2+3=vegetation")
    build.add_argument("--pseudo", action="store_true",
                       help="no labels: use the spectral engine's masks as targets (records flagged pseudo)")
    build.add_argument("--targets", default="water,vegetation,built,bare",
                       help="classes to pseudo-label (default: %(default)s)")
    build.add_argument("--out", required=True, metavar="DIR", help="dataset folder (created; records are added)")
    build.add_argument("--chip", type=int, default=64, help="chip size in pixels (default: %(default)s)")
    build.add_argument("--stride", type=int, default=None, help="chip stride in pixels (default: chip size)")
    build.add_argument("--variants", type=int, default=2, help="instructions per chip and present class")
    build.add_argument("--mtl", metavar="PATH", help="Landsat MTL metadata for calibration")
    build.add_argument("--bands", help="comma-separated band names overriding identification")
    build.add_argument("--split", default="train", help="split name stored in each record (default: train)")
    build.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from spex.spie.builder import BuildOptions, ClassMap, build_scene

    if args.pseudo and (args.labels or args.classes):
        raise SpexError("--pseudo builds targets from the spectral engine; do not combine it with --labels/--classes")
    if not args.pseudo and not (args.labels and args.classes):
        raise SpexError("give --labels PATH --classes 1=water,... for labelled data, or --pseudo for unlabelled scenes")
    try:
        classes = ClassMap.parse(args.classes) if args.classes else None
        targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
        options = BuildOptions(chip=args.chip, stride=args.stride, variants=args.variants, seed=args.seed,
                               split=args.split, pseudo_targets=targets)
    except ValueError as exc:
        raise SpexError(str(exc)) from exc
    bands = [b.strip() for b in args.bands.split(",")] if args.bands else None
    summary = build_scene(args.scene, args.out, labels=args.labels, classes=classes, pseudo=args.pseudo,
                          mtl=args.mtl, bands=bands, options=options)
    print(json.dumps(summary.to_dict(), indent=1))
    return 0
