"""``python -m spex batch SCENES... --query "..." --out DIR``: one extraction per scene on Dask.

Each scene's files go to ``DIR/<scene name>/`` exactly as ``extract`` writes them; the table of
all scenes goes to ``DIR/summary.gpkg`` (layer "scenes", footprints) and ``DIR/summary.csv``.
Exit status 0 when every scene is done (or was done before), 1 when some failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from spex.errors import SpexError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``batch`` sub-command."""
    p = subparsers.add_parser(
        "batch", help="run one extraction per scene on a Dask cluster (local by default)",
        description="Extract what --query asks for from every scene, in parallel on dask.distributed. A scene is a "
                    "raster file, a folder, band files joined by commas (a.tif,b.tif), every match of a quoted glob, "
                    "or every line of a text file (.txt/.lst; band files of one scene separated by commas or "
                    "spaces). Outputs: DIR/<scene>/ as 'extract' writes them, DIR/summary.gpkg and summary.csv. "
                    "Scenes already done with the same query are skipped on a rerun.")
    p.add_argument("scenes", nargs="+", help="scenes: files, folders, a,b,c band sets, 'globs', or list files")
    p.add_argument("--query", "-q", required=True, help="what to extract from every scene, in plain English")
    p.add_argument("--out", "-o", required=True, help="output folder (one sub-folder per scene)")
    p.add_argument("--bands", default=None, help="band names in file order for every scene (as for extract)")
    p.add_argument("--sensor", default=None, help="force a sensor layout for every scene (as for extract)")
    p.add_argument("--false-colour", "--false-color", dest="false_colour", action="store_true",
                   help="render overlays on a NIR-red-green background")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (workers need spex installed and "
                        "the same paths to the scenes and DIR); default: a local cluster")
    p.add_argument("--workers", type=int, default=None,
                   help="local cluster: worker processes (default: min(CPU cores, scenes))")
    p.add_argument("--threads-per-worker", type=int, default=1, help="local cluster: threads per worker (default 1)")
    p.add_argument("--memory-limit", default=None,
                   help="local cluster: memory per worker, e.g. 4GB (default: system memory split evenly)")
    p.add_argument("--in-process", action="store_true",
                   help="local cluster: workers as threads of this process (no start-up cost, no memory isolation)")
    p.add_argument("--gdal-cache", type=int, default=256, metavar="MB",
                   help="GDAL block cache per task in MB (default 256)")
    p.add_argument("--tile-size", type=int, default=1024, metavar="N",
                   help="read and compute each scene in N x N windows (as for extract; default 1024)")
    p.add_argument("--force", action="store_true", help="redo scenes that are already done")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Expand the scenes, run them on the cluster, write and print the summary."""
    if not getattr(args, "verbose", False):  # Dask logs every worker start/stop at INFO; -v shows them
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # spawned worker processes inherit it
        logging.getLogger("distributed").setLevel(logging.WARNING)
    from tqdm import tqdm

    from spex.pipeline.batch import BatchOptions, run_batch
    from spex.pipeline.cluster import ClusterSettings, dashboard_text, open_client
    from spex.pipeline.scenes import expand_scenes
    from spex.pipeline.summary import format_summary, write_summary_csv, write_summary_gpkg

    if not args.query.strip():
        raise SpexError("--query is empty; say what to extract, e.g. 'extract the water bodies'")
    if args.gdal_cache < 1:
        raise SpexError(f"--gdal-cache must be at least 1 MB, got {args.gdal_cache}")
    if args.tile_size < 16:
        raise SpexError(f"--tile-size must be at least 16 pixels, got {args.tile_size}")
    scenes = expand_scenes(args.scenes)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpexError(f"cannot create output folder {out}: {exc}") from exc
    options = BatchOptions(query=args.query, bands=args.bands, sensor=args.sensor, false_colour=args.false_colour,
                           gdal_cache_mb=args.gdal_cache, tile_size=args.tile_size)
    settings = ClusterSettings(scheduler=args.scheduler, workers=args.workers,
                               threads_per_worker=args.threads_per_worker, memory_limit=args.memory_limit,
                               processes=not args.in_process)
    with open_client(settings, len(scenes)) as client:
        n_workers = len(client.scheduler_info().get("workers", {}))
        print(f"{len(scenes)} scene(s) on {n_workers} worker(s). {dashboard_text(client)}", file=sys.stderr,
              flush=True)
        with tqdm(total=len(scenes), desc="scenes", unit="scene", disable=None) as bar:
            def advance(row) -> None:
                bar.set_postfix_str(f"{row.name}: {row.status}", refresh=False)
                bar.update(1)
            rows = run_batch(client, scenes, options, out, force=args.force, on_summary=advance)
    gpkg = write_summary_gpkg(rows, out / "summary.gpkg")
    csv_path = write_summary_csv(rows, out / "summary.csv")
    print(format_summary(rows))
    print()
    print(f"Wrote {gpkg} and {csv_path}")
    return 1 if any(r.status == "failed" for r in rows) else 0
