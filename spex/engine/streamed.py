"""Large scenes tile by tile: the class rules run on each tile with a halo, calibrated on the whole scene.

Why: the whole-scene engine (:func:`spex.engine.extract`) keeps every band and index it touches as a
full-scene float32 map (400 MB each at 10240²). Here each tile (``tile_size`` pixels plus a halo as wide
as the farthest neighbourhood any rule looks at) is a scene of its own, so those maps exist one tile at
a time. What must be the same everywhere is decided once for the whole scene:

- thresholds: every Otsu split is recorded on an overview (a nearest-neighbour sample of the scene's
  pixels, :class:`spex.io.views.SceneOverview`) and replayed on every tile (:mod:`.rules.calibration`);
- cloud, haze and shadow: the cloud model's ~30 m classes, or the quality flags / spectral tests as one
  byte per pixel (:class:`.rules.obstruction.SceneObstruction`), cut for each tile;
- the sanity checks, and everything after the class masks (regions across tile seams, post-processing,
  region attributes, evidence): :func:`spex.engine.extract.assemble` on the stitched masks.

So the mask does not depend on the tile size (tested), and it is the mask of the whole-scene engine
wherever the overview's thresholds equal the full scene's (the overview holds ~2.4 M of its pixels).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from rasterio.windows import Window

from spex.engine.extract import assemble, extract, scene_caveats
from spex.engine.limits import check_limits, evaluate_with_limits
from spex.engine.request import ExtractionRequest
from spex.engine.result import Extraction
from spex.engine.rules import RuleContext, RuleResult, evaluate_rule
from spex.engine.rules.built import BUILT_CORE_M, BUILT_CORE_MARGIN_M
from spex.engine.rules.calibration import Calibration
from spex.engine.rules.context import MASK_FEATURES, TEXTURE_SCALE_M
from spex.engine.rules.obstruction import OPAQUE_HALO_M, SceneObstruction, scene_obstruction
from spex.engine.rules.water import WATER_EDGE_MAX_M, WETLAND_MAX_WATER_DISTANCE_M
from spex.engine.sanity import check_scene
from spex.io import Scene
from spex.io.spill import SpilledMap
from spex.io.views import SceneOverview, SceneWindow
from spex.memory import return_freed_heap
from spex.spectral import IndexCache

__all__ = ["OVERVIEW_SIDE", "STREAM_MIN_PIXELS", "extract_auto", "extract_streamed", "halo_pixels",
           "streaming_pays"]

logger = logging.getLogger(__name__)

#: Scenes with more pixels than this are streamed by the extract CLI (``--stream auto``, see streaming_pays).
STREAM_MIN_PIXELS: Final[int] = 2048 * 2048
#: Longer side of the calibration overview (pixels): ~2.4 M sampled pixels, more than Otsu's sample.
OVERVIEW_SIDE: Final[int] = 1536
#: How far (m) any rule's neighbourhood reaches, summed along the longest chain: wetland lies within
#: 500 m of open water, whose shoreline grows by one mixed pixel; built-up land reads a ~50 m texture
#: window, a 50 m homogeneous-core opening and its 30 m margin; haze looks 60 m for opaque cloud.
RULE_REACH_M: Final[float] = (WETLAND_MAX_WATER_DISTANCE_M + WATER_EDGE_MAX_M + TEXTURE_SCALE_M + BUILT_CORE_M
                              + BUILT_CORE_MARGIN_M + OPAQUE_HALO_M)
#: Pixels added to the reach (3x3 openings and dilations, rounding).
HALO_SLACK_PX: Final[int] = 8


def halo_pixels(pixel_m: float) -> int:
    """Halo (pixels) around each tile so that its core pixels see every neighbour the rules read."""
    return int(math.ceil(RULE_REACH_M / max(float(pixel_m), 1e-6))) + HALO_SLACK_PX


def streaming_pays(height: int, width: int, pixel_m: float, tile_size: int) -> bool:
    """Whether streaming is worth it by default: a scene over STREAM_MIN_PIXELS whose halo is at most half
    a tile (on metre-scale imagery the 500 m wetland reach makes each tile's view several tiles wide, and
    the whole-scene engine then needs less memory)."""
    return height * width > STREAM_MIN_PIXELS and halo_pixels(pixel_m) <= tile_size // 2


def extract_auto(scene: Scene, request: ExtractionRequest, cache: IndexCache | None = None, *,
                 tile_size: int = 1024, progress: Callable[[int, int], None] | None = None) -> Extraction:
    """The streamed engine where :func:`streaming_pays`, else the whole-scene one (which reuses ``cache``).

    Why: an app serving uploads of any size needs memory bounded on large scenes, and the whole-scene
    engine's cached maps (fast refinements) on the others; ``progress`` is called per tile when streamed.
    """
    if streaming_pays(scene.height, scene.width, min(scene.pixel_size_m), tile_size):
        return extract_streamed(scene, request, tile_size=tile_size, progress=progress)
    return extract(scene, request, cache=cache)


@dataclass
class _Stitched:
    """Full-scene results gathered tile by tile: one byte per pixel per mask in memory, and each primary
    index map spilled to a temporary file (float16: three significant digits, for the region means and the
    evidence, which the reply rounds to two; read back a block of rows at a time)."""

    masks: dict[str, np.ndarray]
    exclusions: dict[str, np.ndarray]
    indices: dict[str, SpilledMap]
    shares: np.ndarray  # cloud, haze, shadow pixels

    def close(self) -> None:
        for spilled in self.indices.values():
            spilled.close()


def extract_streamed(scene: Scene, request: ExtractionRequest, *, tile_size: int = 1024,
                     overview_side: int = OVERVIEW_SIDE, progress: Callable[[int, int], None] | None = None,
                     opener: Callable[[], Scene] | None = None, map_tiles: TileMap | None = None) -> Extraction:
    """Extract ``request`` from ``scene`` tile by tile (module notes); same result for any ``tile_size``.

    Args:
        scene: an open scene.
        request: what to extract and how to filter it.
        tile_size: side of the tiles the rules run on (pixels, >= 16), without their halo.
        overview_side: longer side of the calibration overview (pixels).
        progress: called with (tiles done, tiles in all) after each tile.
        opener: opens this same scene again (picklable, e.g. ``functools.partial(open_scene, paths)``), and
        map_tiles: runs the tiles elsewhere, e.g. on a Dask cluster's workers
            (:func:`spex.pipeline.tiles.dask_tile_map`), each opening the scene with ``opener``; the result
            equals one process's.

    Raises:
        BandError: a requested (or excluded) class needs bands the scene lacks.
        ValueError: ``tile_size`` below 16.
    """
    if tile_size < 16:
        raise ValueError(f"tile_size must be at least 16 pixels, got {tile_size}")
    cache = IndexCache(scene, window_size=tile_size, one_shot=True)
    ctx = RuleContext(cache, strictness=request.strictness)
    valid = cache.valid()
    check_limits(request, ctx)
    whole = scene_obstruction(ctx)
    sanity = check_scene(cache)
    return_freed_heap()  # each step's freed temporaries would otherwise stay in the RSS (spex.memory)
    calibration, results, applied = _calibrate(scene, request, whole, overview_side)
    return_freed_heap()
    stitched = _run_tiles(scene, request, whole, calibration, results, tile_size, progress, opener, map_tiles)
    try:
        if calibration.missed:
            logger.warning("%d statistics were computed per tile", len(calibration.missed))
        results = [replace(r, mask=stitched.masks[r.target]) for r in results]
        shares = tuple(int(v) for v in stitched.shares)
        notes = scene_caveats(scene, ctx.has, int(valid.sum()), shares, whole.source)  # type: ignore[arg-type]
        notes.append(f"Processed in tiles of {tile_size} px with a {halo_pixels(min(scene.pixel_size_m))} px "
                     "halo; thresholds were calibrated on the whole scene, so the tile size does not change the "
                     "result.")

        def release(keep: set[str]) -> None:
            for name in [n for n in stitched.indices if n not in keep]:
                stitched.indices.pop(name).close()
        return assemble(scene, request, results, applied, valid=valid, sanity=sanity,
                        exclusions=stitched.exclusions, feature=stitched.indices.__getitem__,  # type: ignore
                        release=release, scene_notes=notes, masks_owned=True)
    finally:
        stitched.close()


def _calibrate(scene: Scene, request: ExtractionRequest, whole: SceneObstruction, side: int
               ) -> tuple[Calibration, list[RuleResult], list[tuple]]:
    """Run the rules on an overview of the scene, recording every statistic; the overview's results
    carry the thresholds and descriptions the reply cites (their masks are replaced by the tiles')."""
    overview = SceneOverview(scene, side=side)
    octx = RuleContext(IndexCache(overview, window_size=max(overview.width, overview.height)),
                       strictness=request.strictness, calibration=Calibration())
    octx.use_obstruction(whole.cut(octx, (overview.full_rows(), overview.full_cols())))
    limited = [evaluate_with_limits(t, octx, request) for t in request.targets]
    for x in request.exclude:
        evaluate_rule(x, octx, strictness=0)
    assert octx.calibration is not None
    return octx.calibration.freeze(), [r for r, _ in limited], [a for _, a in limited]


@dataclass(frozen=True)
class _Tile:
    """What one tile adds to the stitched results: its core's masks, index values and obstruction counts."""

    core: Window
    masks: dict[str, np.ndarray]
    exclusions: dict[str, np.ndarray]
    indices: dict[str, np.ndarray]
    shares: tuple[int, int, int]


#: Runs tile jobs: (function, list of argument tuples) -> results in order (a Dask client's map, or a loop).
TileMap = Callable[[Callable[..., _Tile], list[tuple]], "Iterable[_Tile]"]


def _run_tiles(scene: Scene, request: ExtractionRequest, whole: SceneObstruction, calibration: Calibration,
               results: list[RuleResult], tile_size: int, progress: Callable[[int, int], None] | None,
               opener: Callable[[], Scene] | None = None, map_tiles: TileMap | None = None) -> _Stitched:
    shape = (scene.height, scene.width)
    out = _Stitched(masks={r.target: np.zeros(shape, dtype=bool) for r in results},
                    exclusions={x: np.zeros(shape, dtype=bool) for x in request.exclude},
                    indices={r.index: SpilledMap(shape, np.float16) for r in results
                             if r.index not in MASK_FEATURES},  # every tile writes its core: no fill needed
                    shares=np.zeros(3, dtype=np.int64))
    halo = halo_pixels(min(scene.pixel_size_m))
    cores = list(scene.windows(tile_size))
    indices = tuple(out.indices)
    if map_tiles is None or opener is None:
        done: Iterable[_Tile] = (_tile(scene, request, whole, calibration, core, halo, indices) for core in cores)
    else:  # each worker opens the scene itself: only the request, calibration and obstruction travel
        done = map_tiles(_tile_opened, [(opener, request, whole, calibration, core, halo, indices) for core in cores])
    for k, tile in enumerate(done):
        dest = tile.core.toslices()
        for name, part in tile.masks.items():
            out.masks[name][dest] = part
        for name, part in tile.exclusions.items():
            out.exclusions[name][dest] = part
        for name, part in tile.indices.items():
            out.indices[name].write(dest, part)
        out.shares += tile.shares
        return_freed_heap()
        if progress is not None:
            progress(k + 1, len(cores))
    return out


def _tile_opened(opener: Callable[[], Scene], *args: object) -> _Tile:
    with opener() as scene:
        return _tile(scene, *args)  # type: ignore[arg-type]


def _tile(scene: Scene, request: ExtractionRequest, whole: SceneObstruction, calibration: Calibration,
          core: Window, halo: int, indices: tuple[str, ...]) -> _Tile:
    """The rules on ``core`` grown by ``halo``, with the scene's calibration and obstruction; the core kept."""
    outer, inner = _with_halo(core, halo, scene.width, scene.height)
    view = SceneWindow(scene, outer, memo=True)
    tctx = RuleContext(IndexCache(view, window_size=max(view.width, view.height)),
                       strictness=request.strictness, calibration=calibration)
    r0, c0 = int(outer.row_off), int(outer.col_off)
    ob = whole.cut(tctx, (np.arange(r0, r0 + view.height), np.arange(c0, c0 + view.width)))
    tctx.use_obstruction(ob)
    masks, values = {}, {}
    for r in (evaluate_with_limits(t, tctx, request)[0] for t in request.targets):
        masks[r.target] = r.mask[inner]
        if r.index in indices:
            values[r.index] = tctx.feature(r.index)[inner].astype(np.float16)
    exclusions = {x: evaluate_rule(x, tctx, strictness=0).mask[inner] for x in request.exclude}
    shares = tuple(int(m[inner].sum()) for m in (ob.cloud, ob.haze, ob.shadow))
    return _Tile(core, masks, exclusions, values, shares)  # type: ignore[arg-type]


def _with_halo(core: Window, halo: int, width: int, height: int) -> tuple[Window, tuple[slice, slice]]:
    """The tile ``core`` grown by ``halo`` (clipped to the scene) and the core's slices inside it."""
    c0, r0 = max(0, int(core.col_off) - halo), max(0, int(core.row_off) - halo)
    c1 = min(width, int(core.col_off + core.width) + halo)
    r1 = min(height, int(core.row_off + core.height) + halo)
    dr, dc = int(core.row_off) - r0, int(core.col_off) - c0
    return (Window(c0, r0, c1 - c0, r1 - r0),
            (slice(dr, dr + int(core.height)), slice(dc, dc + int(core.width))))
