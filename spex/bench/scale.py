"""Large-scene benchmark: wall time and peak memory of each pipeline step on big synthetic scenes.

The issue requires that large scenes are processed window by window so memory stays
bounded (never a full float64 cube). This benchmark proves it on a realistic scene: the
bundled Sentinel-2 demo (three files at 10, 20 and 60 m on mutually offset grids) is
mirror-tiled to ``size`` x ``size`` pixels at 10 m, written as tiled, deflate-compressed
GeoTIFFs with the same CRS, pixel sizes and grid offsets, so opening it exercises the
co-registration path (bilinear WarpedVRT of the 20 m and 60 m files).

Each step runs in a fresh Python process (so one step's memory never hides another's):
prerequisites first (e.g. open + extract before ``write_outputs``), then the peak RSS
counter is reset (``/proc/self/clear_refs``) and only the measured step is timed.
Reported per step: wall time, RSS before the step, peak RSS during it, the step's own
growth (peak - before) in units of one full-scene float32 map, and the peak as a fraction
of what a naive float64 cube of all bands would take.

Peak RSS includes GDAL's block cache (default 5 % of RAM, ~1.2 GB on 24 GB); ``--gdal-cache MB``
bounds it to separate it from the arrays spex allocates. "CPU s" is robust to other load.

The issue-9 measurement (default): step "floor" (read every block once + NDWI > 0, GDAL cache
64 MB) and step "cli" (``python -m spex extract`` as a user runs it) on one 6-band file, with
the ratio of their CPU times (``getrusage``: the machine is shared, wall time is not meaningful)
and the cli's peak RSS against the targets (<= 3x the floor, <= 600 MB).

Usage::

    python -m spex.bench scale [--size 2048 4096 10240] [--bands 6|13|4] [--steps floor,cli,...]
                               [--workdir DIR] [--gdal-cache MB]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from spex.errors import SpexError

__all__ = ["StepResult", "ScaleReport", "STEPS", "synthesise_scene", "run_scale", "format_table",
           "demo_files"]

logger = logging.getLogger(__name__)

#: Measured steps, in pipeline order ("pipeline" = one process running all of them, as a chat turn does).
STEPS: tuple[str, ...] = ("open_scene", "info", "extract:water", "extract:vegetation", "write_outputs",
                          "map_html", "pipeline", "floor", "cli")
#: Steps run by default: "floor" (the least any tool can do: read every block + NDWI > 0) and "cli"
#: (``python -m spex extract`` as a user runs it) give the issue's bounded-work ratio.
DEFAULT_STEPS: tuple[str, ...] = ("floor", "cli")
#: Default sizes: the issue's table (2048², 4096², 10240² on one 6-band file).
DEFAULT_SIZES: tuple[int, ...] = (2048, 4096, 10240)
#: GDAL block cache of the floor step (MB): the floor reads each block once, a cache cannot help it.
FLOOR_GDAL_CACHE_MB = 64
#: Targets of the "cli" step (issue 9): peak RSS and CPU time as a multiple of the floor's.
TARGET_PEAK_MB = 600
TARGET_CPU_RATIO = 3.0
#: Query of the vegetation extraction step (the water one comes from ``--query``).
VEGETATION_QUERY = "extract the vegetation"
#: Rows written per block while synthesising (bounded memory: block x width x bands x 2 bytes).
WRITE_BLOCK_ROWS = 512
#: Seconds one child step may take before it is reported as timed out.
STEP_TIMEOUT_S = 3600
_MIB = 2**20


@dataclass(frozen=True)
class StepResult:
    """One measured step; memory in bytes, ``peak_rss`` is the high-water mark during the step."""

    step: str
    wall_s: float
    rss_before: int
    peak_rss: int
    peak_reset: bool            # False: peak is the process lifetime maximum (clear_refs unavailable)
    note: str = ""
    cpu_s: float = math.nan     # user + system CPU of the step (robust to other load on the machine)
    error: str = ""


@dataclass
class ScaleReport:
    """Results for one scene size."""

    size: int
    width: int
    height: int
    n_bands: int
    files: tuple[Path, ...]
    disk_bytes: int
    synth_s: float
    steps: list[StepResult] = field(default_factory=list)
    gdal_cache_mb: int | None = None

    @property
    def float64_cube_bytes(self) -> int:
        """What a naive full float64 cube of every band on the 10 m grid would take."""
        return 8 * self.n_bands * self.width * self.height

    @property
    def float32_map_bytes(self) -> int:
        """One full-scene float32 2-D map (the unit the window-by-window design pays per cached map)."""
        return 4 * self.width * self.height


# -- synthesis ------------------------------------------------------------------------
def demo_files(assets: Path | None = None) -> list[Path]:
    """The bundled demo scene's three files (10, 20, 60 m), sorted finest first."""
    folder = Path(assets) if assets is not None else Path(__file__).resolve().parents[2] / "assets" / "demo"
    files = sorted(folder.glob("*.tif"), key=lambda p: _res(p))
    if not files:
        raise SpexError(f"no demo GeoTIFFs in {folder}; the scale benchmark tiles assets/demo/*.tif")
    return files


def _res(path: Path) -> float:
    with rasterio.open(path) as ds:
        return abs(ds.transform.a)


def _mirror_index(n_out: int, n_src: int, start: int = 0) -> np.ndarray:
    """Source indexes for output positions start..start+n_out, mirror-tiling a source of ``n_src``."""
    i = np.arange(start, start + n_out) % (2 * n_src)
    return np.where(i < n_src, i, 2 * n_src - 1 - i)


def synthesise_scene(size: int, out_dir: Path, *, bands: int = 13, sources: Sequence[Path] | None = None,
                     overviews: bool = False) -> list[Path]:
    """Write a ``size`` x ``size`` (10 m grid) mirror-tiled copy of the demo scene into ``out_dir``.

    Every file keeps its CRS, pixel size, origin (hence the demo's 10/40-50 m grid offsets),
    band descriptions and tags; coarser files get enough pixels to cover the 10 m footprint.
    Files are tiled 512 x 512, deflate + horizontal predictor, BigTIFF when needed.

    Args:
        size: side of the 10 m grid in pixels (>= 16).
        out_dir: folder to write into (files are named as the demo's, so identification is unchanged).
        bands: 13 = all three files (co-registration exercised); 4 = the 10 m file only.
        sources: demo files (default :func:`demo_files`).
        overviews: also build internal overviews (2, 4, 8, 16) as a production COG would have.

    Returns:
        The written paths, finest first.

    Notes:
        Memory: one block of ``WRITE_BLOCK_ROWS`` rows of one file at a time, plus the source files.
    """
    if size < 16:
        raise ValueError(f"invalid size {size!r}; expected at least 16 pixels")
    if bands not in (4, 6, 13):
        raise ValueError(f"invalid bands {bands!r}; expected 13 (all Sentinel-2 files), 6 (one file: the 10 m "
                         "bands + SWIR1/SWIR2) or 4 (10 m file only)")
    src_paths = list(sources) if sources is not None else demo_files()
    out_dir.mkdir(parents=True, exist_ok=True)
    if bands == 6:
        return [_synthesise_six(size, out_dir, src_paths)]
    if bands == 4:
        src_paths = src_paths[:1]
    with rasterio.open(src_paths[0]) as ref:
        ref_t = ref.transform
    right = ref_t.c + size * ref_t.a
    bottom = ref_t.f + size * ref_t.e
    written: list[Path] = []
    for path in src_paths:
        with rasterio.open(path) as src:
            data = src.read()
            t: Affine = src.transform
            width = math.ceil(round((right - t.c) / t.a, 6))
            height = math.ceil(round((bottom - t.f) / t.e, 6))
            profile = src.profile.copy()
            profile.update(width=width, height=height, tiled=True, blockxsize=512, blockysize=512,
                           compress="deflate", predictor=2, interleave="pixel", BIGTIFF="IF_SAFER")
            dst_path = out_dir / path.name
            cols = _mirror_index(width, src.width)
            with rasterio.open(dst_path, "w", **profile) as dst:
                dst.update_tags(**src.tags())
                dst.descriptions = src.descriptions
                for row in range(0, height, WRITE_BLOCK_ROWS):
                    h = min(WRITE_BLOCK_ROWS, height - row)
                    rows = _mirror_index(h, src.height, row)
                    dst.write(data[:, rows][:, :, cols], window=Window(0, row, width, h))
                if overviews:
                    factors = [f for f in (2, 4, 8, 16) if min(width, height) // f >= 64]
                    if factors:
                        dst.build_overviews(factors, Resampling.average)
        written.append(dst_path)
        logger.info("wrote %s (%d x %d)", dst_path, width, height)
    return written


SIX_BAND_IDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11", "B12")


def _six_band_source(src_paths: Sequence[Path]) -> tuple[np.ndarray, dict]:
    """The 10 m bands plus SWIR1/SWIR2 of the 20 m file on the 10 m grid (by georeference, nearest)."""
    with rasterio.open(src_paths[0]) as ten, rasterio.open(src_paths[1]) as twenty:
        data10 = ten.read()
        profile = ten.profile.copy()
        t10, t20 = ten.transform, twenty.transform
        pos = [_band_position(twenty, (b,), d) for b, d in (("B11", 5), ("B12", 6))]
        swir = twenty.read(pos)
        xs = t10.c + (np.arange(ten.width) + 0.5) * t10.a
        ys = t10.f + (np.arange(ten.height) + 0.5) * t10.e
        cols = np.clip(np.floor((xs - t20.c) / t20.a).astype(int), 0, twenty.width - 1)
        rows = np.clip(np.floor((ys - t20.f) / t20.e).astype(int), 0, twenty.height - 1)
        data = np.concatenate([data10, swir[:, rows][:, :, cols]])
    profile["count"] = data.shape[0]
    return data, profile


def _synthesise_six(size: int, out_dir: Path, src_paths: Sequence[Path]) -> Path:
    """One 6-band uint16 file (blue, green, red, NIR, SWIR1, SWIR2 at 10 m) mirror-tiled to ``size``."""
    data, profile = _six_band_source(src_paths)
    profile.update(width=size, height=size, tiled=True, blockxsize=512, blockysize=512, compress="deflate",
                   predictor=2, interleave="pixel", BIGTIFF="IF_SAFER")
    dst_path = out_dir / ("s2l1c_virginia_" + "-".join(SIX_BAND_IDS) + ".tif")
    cols = _mirror_index(size, data.shape[2])
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.descriptions = SIX_BAND_IDS
        for row in range(0, size, WRITE_BLOCK_ROWS):
            h = min(WRITE_BLOCK_ROWS, size - row)
            dst.write(data[:, _mirror_index(h, data.shape[1], row)][:, :, cols], window=Window(0, row, size, h))
    logger.info("wrote %s (%d x %d, 6 bands)", dst_path, size, size)
    return dst_path


# -- child side: one step in a fresh process -------------------------------------------
def _rss_now() -> int:
    """Current resident set size in bytes (0 when /proc is unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _hwm() -> int:
    """Peak RSS in bytes since the last reset (VmHWM), else the lifetime ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux >= 4.0); False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _measure(step: str, fn: Callable[[], str]) -> StepResult:
    before = _rss_now()
    reset = _reset_peak()
    t0, c0 = time.perf_counter(), _cpu()
    note = fn()
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return StepResult(step, wall, before, max(_hwm(), before), reset, note, cpu)


def _child_step(step: str, paths: list[str], query: str, out: Path, tile_size: int | None = None) -> StepResult:
    """Run the prerequisites of ``step`` unmeasured, then measure ``step`` alone."""
    from spex.engine import explain, extract, parse_instruction
    from spex.export import write_outputs
    from spex.export.render import render_overlay
    from spex.io import open_scene
    from spex.spectral import IndexCache
    from spex.viz import map_html

    def run_extract(scene, text: str):
        intent = parse_instruction(text, None, pixel_area_m2=scene.pixel_area_m2)
        if intent.request is None:
            raise SpexError(f"query {text!r} is not an extraction request")
        cache = IndexCache(scene)
        return extract(scene, intent.request, cache), cache

    def extract_note(extraction, cache) -> str:
        share = 100 * np.count_nonzero(extraction.mask) / extraction.mask.size
        return (f"{len(extraction.regions)} regions, {share:.1f}% px, "
                f"cache {cache.nbytes() / _MIB:.0f} MiB")

    if step == "open_scene":
        opened: list = []

        def op() -> str:
            opened.append(open_scene(paths))
            return f"{len(opened[0].band_names)} bands, {opened[0].sensor}"
        res = _measure(step, op)
        opened[0].close()
        return res
    if step == "floor":
        return _measure(step, lambda: _floor(paths))
    if step == "cli":
        from spex.cli import main as spex_main

        def cli() -> str:
            tiles = ["--tile-size", str(tile_size)] if tile_size else []
            code = spex_main(["extract", *paths, "--query", query, "--out", str(out), *tiles])
            if code != 0:
                raise SpexError(f"python -m spex extract exited with {code}")
            sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
            return f"{sum(sizes.values()) / _MIB:.1f} MiB written ({', '.join(sorted(sizes))})"
        return _measure(step, cli)
    if step == "pipeline":
        def whole() -> str:
            with open_scene(paths) as scene:
                extraction, cache = run_extract(scene, query)
                outputs = write_outputs(extraction, scene, out, reply=explain(extraction, scene))
                page = map_html(scene, extraction, overlay_png=outputs.overlay_png)
                return extract_note(extraction, cache) + f", map {len(page) / _MIB:.1f} MiB"
        return _measure(step, whole)
    with open_scene(paths) as scene:
        if step == "info":
            return _measure(step, lambda: f"{len(scene.info().to_text())} chars")
        if step.startswith("extract:"):
            text = VEGETATION_QUERY if step == "extract:vegetation" else query
            return _measure(step, lambda: extract_note(*run_extract(scene, text)))
        extraction, cache = run_extract(scene, query)
        del cache  # a chat session keeps it; dropping it isolates the measured step's own cost
        if step == "write_outputs":
            reply = explain(extraction, scene)

            def wo() -> str:
                outputs = write_outputs(extraction, scene, out, reply=reply)
                return f"{sum(p.stat().st_size for p in outputs.paths()) / _MIB:.1f} MiB written"
            return _measure(step, wo)
        if step == "map_html":
            png = render_overlay(scene, extraction, out / "overlay.png")
            return _measure(step, lambda: f"page {len(map_html(scene, extraction, overlay_png=png)) / _MIB:.1f} MiB")
    raise ValueError(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")


def _band_position(ds: rasterio.io.DatasetReader, ids: tuple[str, ...], default: int) -> int:
    """1-based band of ``ds`` whose description is one of ``ids`` (e.g. "B03"), else ``default``."""
    for i, desc in enumerate(ds.descriptions, start=1):
        if desc and desc.strip().upper() in ids:
            return i
    return default


def _floor(paths: Sequence[str]) -> str:
    """The floor of any extraction: read every block of every file once and count NDWI > 0.

    One block at a time (all bands of the block), GDAL cache :data:`FLOOR_GDAL_CACHE_MB`; NDWI
    (green - NIR) / (green + NIR) from the finest file. Nothing is kept: this is what a streaming
    pipeline cannot avoid paying.
    """
    water = total = 0
    with rasterio.Env(GDAL_CACHEMAX=FLOOR_GDAL_CACHE_MB):
        for k, path in enumerate(paths):
            with rasterio.open(path) as ds:
                green = _band_position(ds, ("B03", "B3", "GREEN"), 2)
                nir = _band_position(ds, ("B08", "B8", "NIR"), min(4, ds.count))
                for _, window in ds.block_windows(1):
                    block = ds.read(window=window)
                    if k == 0:
                        g = block[green - 1].astype(np.float32)
                        n = block[nir - 1].astype(np.float32)
                        with np.errstate(divide="ignore", invalid="ignore"):
                            water += int(np.count_nonzero((g - n) / (g + n) > 0))
                        total += g.size
    return f"NDWI > 0 on {100 * water / max(total, 1):.1f}% px, GDAL cache {FLOOR_GDAL_CACHE_MB} MB"


def _child_main(argv: Sequence[str]) -> int:
    """Entry of the measured child process: prints one JSON line with the StepResult."""
    p = argparse.ArgumentParser(prog="python -m spex.bench.scale")
    p.add_argument("--step", required=True, choices=STEPS)
    p.add_argument("--query", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tile-size", type=int, default=None)
    p.add_argument("paths", nargs="+")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.WARNING)
    try:
        res = _child_step(args.step, args.paths, args.query, Path(args.out), args.tile_size)
    except SpexError as exc:
        res = StepResult(args.step, math.nan, 0, _hwm(), False, error=str(exc).splitlines()[0])
    print(json.dumps(res.__dict__))
    return 0


# -- parent side -----------------------------------------------------------------------
def _run_child(step: str, files: Sequence[Path], query: str, out: Path, gdal_cache_mb: int | None,
               tile_size: int | None = None) -> StepResult:
    tiles = ["--tile-size", str(tile_size)] if tile_size else []
    cmd = [sys.executable, "-m", "spex.bench.scale", "--step", step, "--query", query, "--out", str(out),
           *tiles, *map(str, files)]
    env = dict(os.environ)
    if gdal_cache_mb is not None:
        env["GDAL_CACHEMAX"] = str(int(gdal_cache_mb))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False, env=env)
    except subprocess.TimeoutExpired:
        return StepResult(step, math.nan, 0, 0, False, error=f"timed out after {STEP_TIMEOUT_S} s")
    last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    if proc.returncode != 0 or not last:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return StepResult(step, math.nan, 0, 0, False, error=f"exit {proc.returncode}: {tail}")
    return StepResult(**json.loads(last[0]))


def run_scale(sizes: Sequence[int], *, bands: int = 13, workdir: Path | None = None,
              query: str = "extract the water bodies", steps: Sequence[str] = STEPS,
              overviews: bool = False, gdal_cache_mb: int | None = None) -> list[ScaleReport]:
    """Synthesise one scene per size and measure every step in its own process.

    Args:
        sizes: sides of the 10 m grid in pixels.
        bands: 13 (three co-registered files) or 4 (the 10 m file alone).
        workdir: where scenes and outputs go (kept, and scenes reused when present); default a
            temporary folder removed afterwards.
        query: the water (or any) extraction query used by extract/write_outputs/map_html.
        steps: subset of :data:`STEPS`.
        overviews: build internal overviews in the synthetic files.
        gdal_cache_mb: GDAL block cache of the children (``GDAL_CACHEMAX``, MB); default GDAL's
            own (5 % of RAM). The cache is part of the RSS measured, so this bounds that share.
    """
    if gdal_cache_mb is not None and gdal_cache_mb < 1:
        raise ValueError(f"invalid GDAL cache size {gdal_cache_mb!r} MB; expected a positive number")
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown steps {unknown}; expected some of {', '.join(STEPS)}")
    tmp = tempfile.TemporaryDirectory(prefix="spex_scale_") if workdir is None else None
    root = Path(tmp.name) if tmp is not None else Path(workdir)  # type: ignore[arg-type]
    reports = []
    try:
        for size in sizes:
            t0 = time.perf_counter()
            files = _scene_files(root, size, bands, overviews)
            synth = time.perf_counter() - t0
            n_bands = 0
            for f in files:
                with rasterio.open(f) as ds:
                    n_bands += ds.count
            report = ScaleReport(size, size, size, n_bands, tuple(files), sum(f.stat().st_size for f in files),
                                 synth, gdal_cache_mb=gdal_cache_mb)
            for step in steps:
                out = root / f"out_{size}_{bands}b" / step.replace(":", "_")
                res = _run_child(step, files, query, out, gdal_cache_mb)
                logger.info("%s @ %d: %.1f s, peak %.0f MiB", step, size, res.wall_s, res.peak_rss / _MIB)
                report.steps.append(res)
            reports.append(report)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return reports


def _scene_files(root: Path, size: int, bands: int, overviews: bool = False) -> list[Path]:
    """The synthetic scene of ``size`` under ``root``, written once and reused."""
    scene_dir = root / f"scene_{size}_{bands}b{'_ovr' if overviews else ''}"
    marker = scene_dir / ".complete"
    if marker.exists():
        return [scene_dir / n for n in marker.read_text(encoding="utf-8").split()]
    files = synthesise_scene(size, scene_dir, bands=bands, overviews=overviews)
    marker.write_text(" ".join(f.name for f in files), encoding="utf-8")
    return files


@dataclass(frozen=True)
class TilingRun:
    """One ``extract --tile-size`` run of :func:`compare_tilings`."""

    tile_size: int
    step: StepResult
    same_mask: bool | None       # vs the first tile size (None for the first itself)
    same_regions: bool | None    # regions.geojson byte-identical to the first's


def compare_tilings(size: int, tile_sizes: Sequence[int], *, workdir: Path, bands: int = 6,
                    query: str = "extract the water bodies", gdal_cache_mb: int | None = None) -> list[TilingRun]:
    """Run ``python -m spex extract --tile-size N`` on one synthetic scene per tile size and compare.

    Each run is a fresh process (CPU time and peak RSS measured as for the scale table); masks are
    compared pixel by pixel (read block by block) and the GeoJSON region lists byte for byte.
    """
    files = _scene_files(Path(workdir), size, bands)
    runs: list[TilingRun] = []
    first: Path | None = None
    for tile in tile_sizes:
        out = Path(workdir) / f"tiles_{size}_{bands}b" / f"tile_{tile}"
        res = _run_child("cli", files, query, out, gdal_cache_mb, tile_size=tile)
        same_mask = same_regions = None
        if first is not None and not res.error:
            same_mask = _same_raster(first / "mask.tif", out / "mask.tif")
            same_regions = (first / "regions.geojson").read_bytes() == (out / "regions.geojson").read_bytes()
        elif first is None:
            first = out
        runs.append(TilingRun(tile, res, same_mask, same_regions))
    return runs


def _same_raster(a: Path, b: Path) -> bool:
    with rasterio.open(a) as da, rasterio.open(b) as db:
        if (da.width, da.height, da.count) != (db.width, db.height, db.count):
            return False
        return all(np.array_equal(da.read(window=w), db.read(window=w)) for _, w in da.block_windows(1))


def format_tilings(size: int, runs: Sequence[TilingRun]) -> str:
    """Plain-text table of :func:`compare_tilings`."""
    lines = [f"extract on a {size} x {size} scene, by --tile-size (compared with --tile-size {runs[0].tile_size})",
             f"  {'tile':>6s} {'CPU s':>7s} {'peak RSS':>9s} {'mask':>10s} {'regions':>10s}  note"]
    for r in runs:
        if r.step.error:
            lines.append(f"  {r.tile_size:6d}  ERROR {r.step.error}")
            continue
        word = {None: "(reference)", True: "identical", False: "DIFFERENT"}
        lines.append(f"  {r.tile_size:6d} {r.step.cpu_s:7.1f} {r.step.peak_rss / _MIB:6.0f}MiB "
                     f"{word[r.same_mask]:>10s} {word[r.same_regions]:>10s}  {r.step.note}")
    return "\n".join(lines)


def format_table(reports: Sequence[ScaleReport]) -> str:
    """Plain-text table: one block per size, one line per step."""
    lines: list[str] = []
    for r in reports:
        lines.append(f"Scene {r.width} x {r.height} px @ 10 m, {r.n_bands} bands in {len(r.files)} file(s) "
                     f"({r.disk_bytes / _MIB:.0f} MiB on disk, synthesised in {r.synth_s:.1f} s)")
        cache = "GDAL default (5% of RAM)" if r.gdal_cache_mb is None else f"{r.gdal_cache_mb} MB"
        lines.append(f"  naive float64 cube: {r.float64_cube_bytes / _MIB:,.0f} MiB;  one float32 map: "
                     f"{r.float32_map_bytes / _MIB:,.0f} MiB;  GDAL block cache: {cache} (counted in RSS)")
        lines.append(f"  {'step':<20s} {'wall s':>8s} {'CPU s':>7s} {'RSS before':>11s} {'peak RSS':>9s} "
                     f"{'step +RSS':>10s} {'+RSS/f32 map':>13s} {'peak/f64 cube':>14s}  note")
        for s in r.steps:
            if s.error:
                dashes = " ".join(f"{'-':>{n}s}" for n in (8, 7, 11, 9, 10, 13, 14))
                lines.append(f"  {s.step:<20s} {dashes}  ERROR {s.error}")
                continue
            grow = max(0, s.peak_rss - s.rss_before)
            flag = "" if s.peak_reset else " (lifetime peak)"
            lines.append(f"  {s.step:<20s} {s.wall_s:8.1f} {s.cpu_s:7.1f} {s.rss_before / _MIB:8.0f}MiB "
                         f"{s.peak_rss / _MIB:6.0f}MiB {grow / _MIB:7.0f}MiB {grow / r.float32_map_bytes:13.1f} "
                         f"{s.peak_rss / r.float64_cube_bytes:14.2f}  {s.note}{flag}")
        verdict = _verdict(r)
        if verdict:
            lines.append(verdict)
        lines.append("")
    return "\n".join(lines).rstrip()


def _verdict(r: ScaleReport) -> str:
    """The issue's bounded-work line: ``cli`` CPU time / ``floor`` CPU time and the cli's peak RSS."""
    by = {s.step: s for s in r.steps if not s.error}
    floor, cli = by.get("floor"), by.get("cli")
    if floor is None or cli is None or not floor.cpu_s > 0:
        return ""
    ratio = cli.cpu_s / floor.cpu_s
    peak_mb = cli.peak_rss / 1e6
    return (f"  => extract CLI: {cli.cpu_s:.1f} CPU-s = {ratio:.1f}x the floor's {floor.cpu_s:.1f} CPU-s "
            f"(target <= {TARGET_CPU_RATIO:g}x: {'met' if ratio <= TARGET_CPU_RATIO else 'NOT met'}); peak RSS "
            f"{peak_mb:,.0f} MB vs floor {floor.peak_rss / 1e6:,.0f} MB (target <= {TARGET_PEAK_MB} MB: "
            f"{'met' if peak_mb <= TARGET_PEAK_MB else 'NOT met'}). CPU time (getrusage), not wall time: the "
            "machine is shared.")


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
