"""``python -m spex.bench accuracy|scale ...``: print a benchmark table.

* ``accuracy [--data DIR] [--out DIR]``: engine vs single-index baseline on the labelled scenes.
* ``unseen [--data DIR]``: SPEX refiner vs engine vs auto on the Landsat-5 polygons (``$SPEX_LSAT_POLYGONS``).
* ``clouds [--data DIR]``: cloud / haze / shadow per source (spectral, auto) and scene, IoU vs eo-learn CLM.
* ``scale [--size 2048 4096 10240] [--bands 6|13|4] [--steps floor,cli,...] [--workdir DIR] [--gdal-cache MB]``: wall
  time, CPU time and peak memory of each pipeline step on large synthetic scenes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from spex.errors import SpexError


def _print_table(make: Callable[[], str]) -> int:
    """Print the table ``make`` builds; a SpexError (missing data...) is one line on stderr, exit 2."""
    try:
        print(make())
    except SpexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run a benchmark and print its table; SpexError -> one line, exit 2."""
    parser = argparse.ArgumentParser(prog="python -m spex.bench", description="SPEX benchmarks")
    sub = parser.add_subparsers(dest="bench", required=True)
    acc = sub.add_parser("accuracy", help="engine vs single-index baseline on the labelled scenes")
    acc.add_argument("--data", default=None, help="data folder (default $SPEX_DATA or /work/shared/data)")
    acc.add_argument("--out", default=None, help="write overlay PNGs + replies here for visual checks")
    acc.add_argument("-v", "--verbose", action="store_true")
    sc = sub.add_parser("scale", help="time and peak memory per step on large synthetic scenes")
    sc.add_argument("--size", type=int, nargs="+", default=[2048, 4096, 10240],
                    help="side(s) of the synthetic 10 m grid in pixels (default 2048 4096 10240)")
    sc.add_argument("--bands", type=int, choices=(13, 6, 4), default=6,
                    help="6 = one file: 10 m bands + SWIR1/2 (default, the issue's scene); 13 = three "
                         "co-registered Sentinel-2 files; 4 = the 10 m file alone")
    sc.add_argument("--workdir", default=None, help="keep scenes/outputs here (reused); default a temp folder")
    sc.add_argument("--query", default="extract the water bodies", help="extraction query for the water step")
    sc.add_argument("--steps", default=None, help="comma-separated subset of: " + ", ".join(_scale_steps())
                    + " (default floor,cli: the extract CLI against the floor, with their ratio)")
    sc.add_argument("--overviews", action="store_true", help="build internal overviews in the synthetic files")
    sc.add_argument("--gdal-cache", type=int, default=None, metavar="MB",
                    help="GDAL block cache of the measured processes (GDAL_CACHEMAX; default GDAL's 5%% of RAM)")
    sc.add_argument("-v", "--verbose", action="store_true")
    ti = sub.add_parser("tiles", help="extract with several --tile-size values on one scene: identical results?")
    ti.add_argument("--size", type=int, default=4096, help="side of the synthetic 6-band scene (default 4096)")
    ti.add_argument("--tile-size", type=int, nargs="+", default=[4096, 512], help="tile sizes (default 4096 512)")
    ti.add_argument("--workdir", required=True, help="scenes and outputs go here (reused)")
    ti.add_argument("--query", default="extract the water bodies")
    ti.add_argument("-v", "--verbose", action="store_true")
    cl = sub.add_parser("clouds", help="cloud / haze / shadow share per source and scene, IoU vs eo-learn CLM")
    cl.add_argument("--data", default=None, help="data folder (default $SPEX_DATA or /work/shared/data)")
    cl.add_argument("-v", "--verbose", action="store_true")
    un = sub.add_parser("unseen", help="SPEX refiner vs engine vs auto on the Landsat-5 polygons (never trained on)")
    un.add_argument("--data", default=None, help="data folder (default $SPEX_DATA or /work/shared/data)")
    un.add_argument("-v", "--verbose", action="store_true")
    co = sub.add_parser("corpus", help="share of the phrasing corpus a reader holds, per kind")
    co.add_argument("--reader", choices=("rule", "model"), default="rule")
    co.add_argument("-v", "--verbose", action="store_true")
    from spex.bench.gpu import add_arguments as gpu_arguments
    gpu_arguments(sub.add_parser("gpu", help="SPEX LLM + refiner at none/8/4-bit on CUDA (load, mask, first token, reply, memory)"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.bench == "scale":
        return _scale(args)
    if args.bench == "tiles":
        from spex.bench.scale import compare_tilings, format_tilings
        runs = compare_tilings(args.size, args.tile_size, workdir=Path(args.workdir), query=args.query)
        print(format_tilings(args.size, runs))
        return 0 if all(r.same_mask is not False and r.same_regions is not False and not r.step.error
                        for r in runs) else 1
    if args.bench == "gpu":
        from spex.bench.gpu import run_args
        return run_args(args)
    if args.bench == "clouds":
        from spex.bench.clouds import format_clouds, run_clouds
        return _print_table(lambda: format_clouds(run_clouds(Path(args.data) if args.data else None)))
    if args.bench == "unseen":
        from spex.bench.unseen import format_unseen, run_unseen
        return _print_table(lambda: format_unseen(run_unseen(Path(args.data) if args.data else None)))
    if args.bench == "corpus":
        from spex.bench.corpus import main as corpus_main
        return corpus_main(args.reader)
    from spex.bench.accuracy import format_table, run_accuracy
    try:
        rows = run_accuracy(Path(args.data) if args.data else None, Path(args.out) if args.out else None)
    except SpexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows))
    return 0


def _scale_steps() -> tuple[str, ...]:
    from spex.bench.scale import STEPS
    return STEPS


def _scale(args: argparse.Namespace) -> int:
    """Run the large-scene benchmark; bad arguments -> one line, exit 2."""
    from spex.bench.scale import DEFAULT_STEPS, format_table, run_scale
    steps = tuple(s.strip() for s in args.steps.split(",") if s.strip()) if args.steps else DEFAULT_STEPS
    if any(s < 16 for s in args.size):
        print(f"error: --size must be at least 16 pixels, got {args.size}", file=sys.stderr)
        return 2
    try:
        reports = run_scale(args.size, bands=args.bands, workdir=Path(args.workdir) if args.workdir else None,
                            query=args.query, steps=steps, overviews=args.overviews,
                            gdal_cache_mb=args.gdal_cache)
    except (SpexError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(reports))
    return 1 if any(s.error for r in reports for s in r.steps) else 0


if __name__ == "__main__":
    raise SystemExit(main())
