"""One extraction per scene on a Dask cluster; per-scene outputs exactly as ``extract`` writes them.

Why Dask: a season of tiles or a country does not fit one process; ``dask.distributed`` runs
the same task on a laptop (``LocalCluster``) or on many machines (``dask scheduler`` +
``dask worker``) with a dashboard, memory limits per worker and restarts of dead workers.

Each task is :func:`run_scene`: it calls the ``extract`` command's own code path
(:func:`spex.commands.extract.run`) with the scene's files and ``--out DIR/<name>``, so the
files are byte-for-byte what a single ``extract`` run writes, then writes a done marker
(``.spex-done.json``, last, atomically) holding the scene's summary row. A rerun skips a scene
whose marker matches the same files, query and options. A failing scene becomes a ``failed``
row with the user-facing error message; the other scenes go on.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from spex.errors import user_message
from spex.pipeline.scenes import BatchScene

__all__ = ["BatchOptions", "SceneSummary", "DONE_MARKER", "extract_args", "run_scene", "done_summary",
           "run_batch"]

logger = logging.getLogger(__name__)

#: Written last into ``DIR/<name>/``: the scene is complete (its JSON holds the summary row).
DONE_MARKER = ".spex-done.json"
_MARKER_VERSION = 1


@dataclass(frozen=True)
class BatchOptions:
    """What every scene of a batch is asked (the ``extract`` options that change results)."""

    query: str
    bands: str | None = None
    sensor: str | None = None
    false_colour: bool = False
    #: GDAL block cache per task, MB: set deliberately so N workers x cache stays within memory.
    gdal_cache_mb: int = 256
    #: Read/compute window of each scene (``extract --tile-size``); results do not depend on it.
    tile_size: int = 1024

    def result_key(self) -> dict[str, Any]:
        """The options a done marker must match (GDAL cache and tile size do not change results)."""
        return {"query": self.query, "bands": self.bands, "sensor": self.sensor, "false_colour": self.false_colour}


@dataclass
class SceneSummary:
    """One row of the batch summary table."""

    name: str
    paths: tuple[str, ...]
    status: str                        # "done" | "failed" | "skipped" (done by an earlier run)
    error: str = ""
    seconds: float = math.nan          # wall time of the task on its worker
    cpu_seconds: float = math.nan      # CPU time of the task's thread
    regions: int | None = None
    selected_ha: float | None = None
    valid_ha: float | None = None
    area_ha: dict[str, float] = field(default_factory=dict)   # per target class (its pixels in the mask)
    sensor: str = ""
    crs: str | None = None
    footprint_wkt: str | None = None   # scene bounds in EPSG:4326 (densified), None when not georeferenced
    out_dir: str = ""
    worker: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["paths"] = list(self.paths)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SceneSummary:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["paths"] = tuple(kwargs.get("paths", ()))
        return cls(**kwargs)


def extract_args(scene: BatchScene, options: BatchOptions, out_dir: Path) -> argparse.Namespace:
    """The ``extract`` command's arguments for one scene, parsed by its own parser (same defaults)."""
    from spex.commands import extract as extract_command

    parser = argparse.ArgumentParser(prog="spex", add_help=False)
    extract_command.add_parser(parser.add_subparsers(dest="command"))
    argv = ["extract", *scene.paths, "--query", options.query, "--out", str(out_dir),
            "--tile-size", str(options.tile_size)]
    if options.bands:
        argv += ["--bands", options.bands]
    if options.sensor:
        argv += ["--sensor", options.sensor]
    if options.false_colour:
        argv.append("--false-colour")
    return parser.parse_args(argv)


def _footprint(scene: Any) -> tuple[str | None, str | None]:
    """(EPSG:4326 WKT of the scene bounds, scene CRS as text); (None, None) when not georeferenced."""
    if scene.crs is None:
        return None, None
    import shapely
    from rasterio.warp import transform_geom
    from shapely.geometry import box, mapping, shape

    b = scene.bounds
    geom = transform_geom(scene.crs, "EPSG:4326", mapping(box(b.left, b.bottom, b.right, b.top)),
                          antimeridian_cutting=True, precision=7)
    try:
        crs_text = scene.crs.to_string()
    except Exception:  # noqa: BLE001 - a CRS without an authority code: its WKT
        crs_text = scene.crs.to_wkt()
    return shapely.to_wkt(shape(geom), rounding_precision=7), crs_text


def _fill_summary(summary: SceneSummary, scene: Any, extraction: Any) -> None:
    georef = scene.crs is not None
    ha = float(extraction.pixel_area_m2) / 1e4
    summary.regions = len(extraction.regions)
    summary.selected_ha = float(extraction.selected_pixels) * ha if georef else None
    summary.valid_ha = float(extraction.valid_pixels) * ha if georef else None
    summary.area_ha = {ev.target: float(ev.pixels) * ha for ev in extraction.evidence} if georef else {}
    summary.sensor = str(scene.sensor)
    summary.footprint_wkt, summary.crs = _footprint(scene)


def _marker(out_dir: Path) -> Path:
    return out_dir / DONE_MARKER


def done_summary(scene: BatchScene, options: BatchOptions, out_root: str | Path) -> SceneSummary | None:
    """The summary of a scene already done with the same files and options, else None."""
    path = _marker(Path(out_root) / scene.name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (data.get("version") != _MARKER_VERSION or data.get("options") != options.result_key()
            or data.get("paths") != [os.path.abspath(p) for p in scene.paths]):
        return None
    summary = SceneSummary.from_json(data.get("summary", {}))
    summary.status = "skipped"
    return summary


def run_scene(scene: BatchScene, options: BatchOptions, out_root: str) -> SceneSummary:
    """Extract one scene into ``out_root/<name>/`` (a Dask task); never raises for a bad scene.

    The done marker is removed first (a rerun that fails must not look done) and written last.
    """
    import rasterio

    from spex.commands import extract as extract_command

    out_dir = Path(out_root) / scene.name
    summary = SceneSummary(name=scene.name, paths=scene.paths, status="failed", out_dir=str(out_dir),
                           worker=socket.gethostname())
    wall0, cpu0 = time.perf_counter(), time.thread_time()

    def on_result(opened: Any, extraction: Any, _outputs: Any, _reply: str) -> None:
        _fill_summary(summary, opened, extraction)

    try:
        _marker(out_dir).unlink(missing_ok=True)
        with rasterio.Env(GDAL_CACHEMAX=int(options.gdal_cache_mb)):
            extract_command.run(extract_args(scene, options, out_dir), on_result=on_result)
        summary.status = "done"
    except Exception as exc:  # noqa: BLE001 - one bad scene is reported, the batch goes on
        summary.error = user_message(exc, action=f"extracting scene {scene.name}")
        logger.info("scene %s failed: %s", scene.name, summary.error)
    summary.seconds = time.perf_counter() - wall0
    summary.cpu_seconds = time.thread_time() - cpu0
    if summary.status == "done":
        _write_marker(out_dir, scene, options, summary)
    return summary


def _write_marker(out_dir: Path, scene: BatchScene, options: BatchOptions, summary: SceneSummary) -> None:
    data = {"version": _MARKER_VERSION, "options": options.result_key(),
            "paths": [os.path.abspath(p) for p in scene.paths], "summary": summary.to_json()}
    tmp = out_dir / f".{DONE_MARKER}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, _marker(out_dir))


def _lost_task(scene: BatchScene, out_root: str, exc: BaseException) -> SceneSummary:
    """Row of a scene whose task did not return (its worker died, e.g. over its memory limit)."""
    name = type(exc).__name__
    why = ("the worker running it died (usually: it went over its memory limit; give workers more memory with "
           "--memory-limit or use fewer --workers)") if name == "KilledWorker" else user_message(exc)
    return SceneSummary(name=scene.name, paths=scene.paths, status="failed", error=why,
                        out_dir=str(Path(out_root) / scene.name))


def run_batch(client: Any, scenes: Sequence[BatchScene], options: BatchOptions, out_root: str | Path, *,
              force: bool = False, on_summary: Callable[[SceneSummary], None] | None = None
              ) -> list[SceneSummary]:
    """Run :func:`run_scene` for every scene on the Dask ``client``; rows in the order of ``scenes``.

    Scenes already done (same files and options) are skipped unless ``force``. ``on_summary`` is
    called with each row as it arrives (skipped ones first), e.g. to drive a progress bar.
    """
    from dask.distributed import as_completed

    out_root = str(Path(out_root).resolve())
    rows: dict[str, SceneSummary] = {}
    todo: list[BatchScene] = []
    for scene in scenes:
        done = None if force else done_summary(scene, options, out_root)
        if done is None:
            todo.append(scene)
        else:
            rows[scene.name] = done
            if on_summary:
                on_summary(done)
    token = uuid.uuid4().hex[:8]
    futures = {client.submit(run_scene, s, options, out_root, key=f"spex-scene-{s.name}-{token}", pure=False,
                             retries=0): s for s in todo}
    for future in as_completed(futures):
        scene = futures[future]
        try:
            summary = future.result()
        except Exception as exc:  # noqa: BLE001 - worker lost, unpicklable result...: that scene failed
            summary = _lost_task(scene, out_root, exc)
        rows[scene.name] = summary
        if on_summary:
            on_summary(summary)
    return [rows[s.name] for s in scenes]
