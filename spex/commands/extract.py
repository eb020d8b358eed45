"""``python -m spex extract SCENE... --query "..." --out DIR``: one extraction, four files.

Writes mask.tif (COG), regions.geojson, overlay.png and reply.md via
:func:`spex.export.write_outputs` and prints the reply. Expected failures raise
:class:`spex.errors.SpexError` with a one-line message (exit 2 in the dispatcher).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from spex.errors import InstructionError, ModelError, SpexError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``extract`` sub-command."""
    p = subparsers.add_parser(
        "extract", help="extract a land-cover class described in plain English",
        description="Open one scene and extract what --query asks for, e.g. "
                    "--query 'water bodies larger than 2 ha in the north'. Writes mask.tif, regions.geojson, "
                    "overlay.png and reply.md into --out and prints the reply.")
    p.add_argument("scene", nargs="+", help="raster file(s) or a folder forming one scene")
    p.add_argument("--query", "-q", required=True, help="what to extract, in plain English")
    p.add_argument("--out", "-o", required=True, help="output folder (created if missing)")
    p.add_argument("--bands", default=None,
                   help="band names in file order, comma separated (e.g. blue,green,red,nir; 'skip' ignores one)")
    p.add_argument("--mtl", default=None, help="Landsat *_MTL.txt for TOA reflectance calibration")
    p.add_argument("--sensor", default=None, help="force a sensor layout, e.g. s2_l1c, landsat5_tm, aerial_rgbn")
    p.add_argument("--false-colour", "--false-color", dest="false_colour", action="store_true",
                   help="render the overlay on a NIR-red-green false-colour background")
    p.add_argument("--backend", choices=("spectral", "spex", "auto"), default="spectral",
                   help="spectral = rule-based engine (default); spex = the SPEX model: the trained refiner "
                        "(LLM [SEG] state + engine evidence) for every class it was trained on, or an old checkpoint "
                        "with --model; auto = per class, the refiner where it measured better on held-out data "
                        "(assets/spex-refiner model card), the engine elsewhere; both write reply.json")
    p.add_argument("--model", default=None, help="SPEX checkpoint folder (for --backend spex)")
    p.add_argument("--llm", default=None, help="language model for --backend spex without --model: 'smollm2' "
                   "(default, shipped GGUF), a local model folder or .gguf file")
    p.add_argument("--tile-size", type=int, default=1024, metavar="N",
                   help="read and compute the scene in N x N windows (default 1024); results do not depend on it")
    p.add_argument("--stream", choices=("auto", "on", "off"), default="auto",
                   help="run the class rules tile by tile (memory bounded by the tile size, thresholds calibrated "
                        "on the whole scene): auto = for scenes over 2048 x 2048 px whose rule halo is at most half "
                        "a tile, i.e. pixels of ~1.5 m or more at the default tile size (default), on, off = the "
                        "whole scene at once (spectral backend only)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="split this scene's tiles across a local Dask cluster of N worker processes (streamed "
                        "extraction; same result as one process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="split this scene's tiles across an existing Dask cluster, e.g. tcp://10.0.0.5:8786 "
                        "(every worker must see the scene files at the same paths)")
    p.add_argument("--quantization", choices=("4bit", "8bit"), default=None,
                   help="load the SPEX language model quantized (for --backend spex)")
    p.set_defaults(run=run)


def _one_line(exc: InstructionError) -> InstructionError:
    first = str(exc).splitlines()[0] if str(exc) else "the query could not be understood"
    return InstructionError(f"--query: {first} Try e.g. 'water bodies larger than 2 ha'.",
                            exc.understood, exc.supported)


def _backend(args: argparse.Namespace):
    """Return an object with ``extract(scene, request, cache)`` for the chosen backend."""
    if args.backend == "spectral":
        if args.model or args.quantization:
            raise ModelError("--model/--quantization only apply to --backend spex")
        return None
    if not args.model:
        raise ModelError("--backend spex needs --model PATH (a SPEX checkpoint folder)")
    if not Path(args.model).exists():
        raise ModelError(f"--model {args.model!r} does not exist")
    try:
        module = importlib.import_module("spex.model.backend")
        backend_cls = module.SpexBackend
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"the SPEX model backend is not available in this installation ({exc})") from exc
    return backend_cls(args.model, quantization=args.quantization)


def _cluster_asked(args: argparse.Namespace) -> bool:
    """--workers or --scheduler was given (batch runs build extract arguments without them)."""
    return getattr(args, "workers", None) is not None or getattr(args, "scheduler", None) is not None


@contextlib.contextmanager
def _tile_cluster(args: argparse.Namespace, bands: list[str] | None) -> Iterator[tuple]:
    """(opener, map_tiles) for the streamed extraction: a Dask cluster's workers with --workers/--scheduler,
    else (None, None) = this process."""
    if not _cluster_asked(args):
        yield None, None
        return
    workers, scheduler = getattr(args, "workers", None), getattr(args, "scheduler", None)
    from spex.io import open_scene
    from spex.pipeline.cluster import ClusterSettings, dashboard_text, open_client
    from spex.pipeline.tiles import dask_tile_map

    settings = ClusterSettings(scheduler=scheduler, workers=workers)
    with open_client(settings, n_scenes=workers or 1) as client:
        print(dashboard_text(client), file=sys.stderr)
        opener = functools.partial(open_scene, [str(p) for p in args.scene], bands=bands, mtl=args.mtl,
                                   sensor=args.sensor)
        yield opener, dask_tile_map(client)


def _streamed(args: argparse.Namespace, scene, backend) -> bool:
    """Whether to run the rules tile by tile (``--stream``; auto: see ``streaming_pays``)."""
    from spex.engine.streamed import streaming_pays

    mode = getattr(args, "stream", "auto")
    if backend is not None:
        if mode == "on":
            raise SpexError("--stream on applies to the spectral backend only (a SPEX checkpoint reads the whole "
                            "scene); use --stream auto or off")
        return False
    if _cluster_asked(args):
        if mode == "off":
            raise SpexError("--workers/--scheduler split a scene's tiles, which needs the streamed extraction "
                            "(--stream auto or on)")
        return True
    return mode == "on" or (mode == "auto" and streaming_pays(scene.height, scene.width, min(scene.pixel_size_m),
                                                              args.tile_size))


def run(args: argparse.Namespace, on_result=None) -> int:
    """Open the scene, parse the query, extract, write the four files, print the reply.

    ``on_result(scene, extraction, outputs, reply)`` (batch runs, :mod:`spex.pipeline.batch`) is called
    while the scene is open, and then nothing is printed and no progress bar is shown.
    """
    from spex.engine import explain, extract, parse_instruction
    from spex.engine.streamed import extract_streamed
    from spex.export import write_outputs
    from spex.io import open_scene
    from spex.spectral import IndexCache

    if args.backend == "auto" and args.model:
        raise ModelError("--model applies to --backend spex only (auto routes between the refiner and the engine)")
    if args.backend in ("spex", "auto") and not args.model:  # reader, refiner, LLM reply.json (spex.export.reply_json)
        from spex.export.reply_json import run_llm_extract
        return run_llm_extract(args)
    from tqdm import tqdm

    bar = tqdm(total=6, desc="reading", unit="step", disable=True if on_result else None,
               leave=False)  # hidden when not a terminal

    def step(name: str) -> None:
        bar.set_description(name)
        bar.update(1)

    bands = [b for b in re.split(r"[,\s]+", args.bands) if b] if args.bands else None
    backend = _backend(args)
    if args.tile_size < 16:
        raise SpexError(f"--tile-size must be at least 16 pixels, got {args.tile_size}")
    with open_scene(args.scene, bands=bands, mtl=args.mtl, sensor=args.sensor) as scene:
        try:
            intent = parse_instruction(args.query, None, pixel_area_m2=scene.pixel_area_m2)
        except InstructionError as exc:
            raise _one_line(exc) from exc
        if intent.kind == "question" and intent.question == "shares" and on_result is None:  # measured per class
            from spex.engine.reply import shares_reply
            from spex.engine.shares import class_shares

            bar.close()
            print(shares_reply(class_shares(scene, intent.classes, IndexCache(scene)), scene))
            return 0
        if intent.kind != "extract" or intent.request is None:
            raise InstructionError(f"--query must ask for a class to extract (understood a {intent.kind!r} "
                                   "request); e.g. 'extract the water bodies larger than 2 ha'.")
        step("extracting")
        if _streamed(args, scene, backend):
            def tiles(done: int, total: int) -> None:
                bar.set_description(f"extracting (tile {done}/{total})")
                bar.refresh()
            with _tile_cluster(args, bands) as (opener, map_tiles):
                extraction = extract_streamed(scene, intent.request, tile_size=args.tile_size, progress=tiles,
                                              opener=opener, map_tiles=map_tiles)
        elif backend is None:
            extraction = extract(scene, intent.request, IndexCache(scene, window_size=args.tile_size, one_shot=True))
        else:
            extraction = backend.extract(scene, intent.request, IndexCache(scene, window_size=args.tile_size))
        step("explaining")
        reply = explain(extraction, scene)
        false_colour = args.false_colour or intent.display == "false_colour"
        outputs = write_outputs(extraction, scene, Path(args.out), reply=reply, false_colour=false_colour,
                                progress=step)
        if on_result is not None:
            on_result(scene, extraction, outputs, reply)
            return 0
    bar.close()
    print(reply)
    print()
    print("Wrote " + ", ".join(str(path) for path in outputs.paths()))
    return 0
