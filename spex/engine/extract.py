"""Run a request on a scene with the spectral rules: the default (embedded) backend.

``extract`` = class rules (union of the targets) -> exclusions -> post-processing ->
region attributes -> measured evidence and caveats. Every number in the returned
:class:`Extraction` is measured on the returned mask.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np

from spex.engine.classes import postprocess_classes
from spex.engine.limits import apply_bounds, check_limits, evaluate_with_limits
from spex.engine.parts import select_parts
from spex.engine.postprocess import MIN_REGION_PIXELS, PostprocessReport, postprocess
from spex.engine.request import PART_CLASSES, TARGET_LABELS, ExtractionRequest
from spex.engine.result import ClassEvidence, Extraction
from spex.engine.rules import RuleContext, RuleResult, evaluate_rule
from spex.engine.rules.context import MASK_FEATURES
from spex.engine.sanity import SceneSanity, check_scene, unsupported_claims
from spex.io import Scene
from spex.memory import return_freed_heap
from spex.spectral import IndexCache
from spex.spie import describe_regions

__all__ = ["extract", "assemble", "BACKEND_NAME", "scene_caveats", "obstruction_caveats"]

logger = logging.getLogger(__name__)

#: Maps are averaged in row blocks of about this many pixels (bounds the temporaries).
_BLOCK_PIXELS = 1 << 20

BACKEND_NAME = "spectral engine"


def extract(scene: Scene, request: ExtractionRequest, cache: IndexCache | None = None, *,
            refine: Callable[[RuleResult, RuleContext], RuleResult] | None = None) -> Extraction:
    """Extract ``request`` from ``scene`` with the spectral rules.

    Args:
        scene: an open scene.
        request: what to extract and how to filter it.
        cache: the scene's index cache (re-used across turns); created when None.
        refine: replaces each target's rule result (the SPEX refiner, spex.model.refined); exclusions,
            post-processing and evidence stay the engine's.

    Returns:
        The extraction; ``mask`` True = selected, ``labels`` numbered largest first,
        ``regions[i].label == i + 1``.

    Raises:
        BandError: a requested (or excluded) class needs bands the scene lacks.
    """
    if not isinstance(request, ExtractionRequest):
        raise TypeError(f"request must be an ExtractionRequest, got {type(request).__name__}")
    if cache is None:
        cache = IndexCache(scene)
    elif cache.scene is not scene:
        raise ValueError("the index cache belongs to a different scene")
    ctx = RuleContext(cache, strictness=request.strictness)
    valid = cache.valid()

    check_limits(request, ctx)  # an index the scene cannot compute is refused, with the bands it needs
    # Cloud, haze and shadow first (memoised; every class and the caveats read them): the cloud model's
    # working memory (~300 MB) is then spent while only the validity mask is held, not on top of class maps.
    ctx.obstruction()
    limited = [evaluate_with_limits(t, ctx, request) for t in request.targets]  # user thresholds (limits.py)
    results = [r for r, _ in limited]
    if refine is not None:
        results = [apply_bounds(refine(r, ctx), ctx, request) for r in results]  # user thresholds still hold
    exclusions = {x: evaluate_rule(x, ctx, strictness=0).mask for x in request.exclude}
    n_valid = int(valid.sum())
    ob = ctx.obstruction()
    shares = tuple(int(m.sum()) for m in (ob.cloud, ob.haze, ob.shadow))

    def release(keep: set[str]) -> None:  # a one-shot run: only the primary indices and masks are read later
        if cache.one_shot:
            cache.release(keep)
            ctx.release(keep)
    return assemble(scene, request, results, [a for _, a in limited], valid=valid, sanity=check_scene(cache),
                    exclusions=exclusions, feature=ctx.feature, release=release,
                    scene_notes=scene_caveats(scene, ctx.has, n_valid, shares, ob.source))


def assemble(scene: Scene, request: ExtractionRequest, results: list[RuleResult], applied: list[tuple], *,
             valid: np.ndarray, sanity: SceneSanity, exclusions: dict[str, np.ndarray],
             feature: Callable[[str], np.ndarray], release: Callable[[set[str]], None] | None = None,
             scene_notes: list[str], masks_owned: bool = False) -> Extraction:
    """Class masks -> one extraction: refusals, exclusions, parts, post-processing, regions, evidence, caveats.

    Shared by :func:`extract` and the streamed extraction (:mod:`spex.engine.streamed`), which hands in
    masks stitched from its tiles. ``feature(name)`` gives a full-scene map of a primary index;
    ``release(keep)`` may free every map but the indices in ``keep`` once the class masks are final.
    ``masks_owned``: the class masks are the caller's to overwrite (the streamed engine's stitched ones, not
    a cache's), so one class is post-processed in place instead of on a full-scene copy.
    """
    refused = unsupported_claims({r.target: r.mask for r in results}, sanity, bool(scene.calibrated))
    claimed = [r.mask for r in results if r.target not in refused]
    if len(claimed) == 1:  # one class: its mask is the union (read only from here on: no full-scene copy)
        union = claimed[0]
    else:
        union = np.zeros(valid.shape, dtype=bool)
        for m in claimed:
            union |= m
    allowed = valid if sanity.usable is None else valid & sanity.usable  # never written in place
    excluded_px: dict[str, int] = {}
    for x, ex in exclusions.items():
        excluded_px[x] = int((union & ex).sum())
        allowed = allowed & ~ex
    part_notes: list[str] = []
    if request.parts or request.drop_parts:  # sea / rivers / lakes by region shape (spex.engine.parts)
        water = np.zeros(valid.shape, dtype=bool)
        for r in results:
            if r.target in PART_CLASSES and r.target not in refused:
                water |= r.mask
        kept, part_notes = select_parts(water & allowed, valid, keep=request.parts, drop=request.drop_parts,
                                        pixel_area_m2=float(scene.pixel_area_m2), georeferenced=scene.crs is not None)
        union = union & (~water | kept)

    if release is not None:
        release({r.index for r in results})
    pixel_area = float(scene.pixel_area_m2)
    class_map = None
    if len(claimed) > 1:  # several classes: each post-processed on its own, one class per region (classes.py)
        active = [(r.target, r.mask & union) for r in results if r.target not in refused]
        mask, labels, n, class_map, class_steps = postprocess_classes(active, request, allowed=allowed, valid=valid,
                                                                     pixel_area_m2=pixel_area)
        report = PostprocessReport(steps=class_steps)
    else:
        # in place only on a mask nothing else reads: a fresh union, or an owned class mask whose evidence
        # does not read the mask itself (the selection only shrinks within it, so its evidence is unchanged)
        fresh = not any(union is r.mask for r in results)
        own = masks_owned and all(r.index not in MASK_FEATURES for r in results)
        mask, labels, n, report = postprocess(union, request, allowed=allowed, valid=valid, pixel_area_m2=pixel_area,
                                              in_place=fresh or own)
    del union, allowed
    return_freed_heap()  # the post-processing's full-scene temporaries (spex.memory)
    index_maps = {r.index: feature(r.index) for r in results if r.index not in MASK_FEATURES}
    regions = describe_regions(mask, pixel_area_m2=pixel_area, index_maps=index_maps, labels=labels)
    return_freed_heap()

    evidence = [_evidence(r, index_maps.get(r.index, r.mask), mask, valid, a)
                for r, a in zip(results, applied, strict=True)]
    caveats = part_notes + scene_notes + sanity.caveats
    caveats += [f"No {TARGET_LABELS[t]} claimed: {why}." for t, why in refused.items() if not sanity.refusal]
    for r in results:
        caveats.extend(c for c in r.caveats if c not in caveats)
    for x, px in excluded_px.items():
        caveats.append(f"Excluded {TARGET_LABELS[x]}: {px} px of the class mask overlapped it and were removed.")
    if request.region is not None:
        caveats.append(f"'In the {request.region}' keeps whole regions whose centroid lies in that part of the "
                       "image; regions are not cut at the boundary.")
    if request.drop_border:
        caveats.append("Border filter: regions touching the image edge or the edge of the valid data were removed.")
    steps = list(report.steps)
    steps.insert(0, f"regions smaller than {MIN_REGION_PIXELS} px are treated as speckle and removed")
    caveats.append("Post-processing: " + "; ".join(steps) + ".")
    logger.info("extracted %s: %d px in %d regions", request.describe(), int(mask.sum()), n)
    return Extraction(request=request, mask=mask, labels=labels, regions=regions, evidence=evidence,
                      caveats=caveats, backend=BACKEND_NAME, valid_pixels=int(valid.sum()),
                      pixel_area_m2=pixel_area, class_map=class_map)


def _evidence(r: RuleResult, values: np.ndarray, mask: np.ndarray, valid: np.ndarray,
              applied: tuple = ()) -> ClassEvidence:
    """Mean primary index (``values``; cloud/shadow: the class mask itself, 0/1) over selected pixels of
    this class vs valid unselected pixels."""
    mean_in, pixels = _masked_mean(values, mask, also=r.mask)
    mean_out, _ = _masked_mean(values, valid, exclude=mask)
    return ClassEvidence(target=r.target, index=r.index, formula=r.formula, bands=r.bands,
                         threshold=r.threshold, threshold_method=r.threshold_method, direction=r.direction,
                         mean_inside=mean_in, mean_outside=mean_out, pixels=pixels,
                         extra_tests=r.extra_tests, user_tests=tuple(a.describe() for a in applied))


def _masked_mean(values: np.ndarray, where: np.ndarray, *, also: np.ndarray | None = None,
                 exclude: np.ndarray | None = None) -> tuple[float, int]:
    """(Mean (float64) of the finite ``values`` where ``where & also & ~exclude``, NaN when there are none;
    pixels where ``where & also & ~exclude``, finite or not).

    Summed in row blocks with ``where=`` instead of gathering ``values[where]``: a gather copies
    every selected value of a full-scene map (4 bytes/pixel), and ``where & also`` would be another
    full-scene mask, just to average it.
    """
    total, count, pixels = 0.0, 0, 0
    step = max(1, _BLOCK_PIXELS // max(values.shape[1], 1)) if values.ndim == 2 else max(1, len(values))
    for r0 in range(0, values.shape[0], step):
        rows = slice(r0, r0 + step)
        block = np.asarray(values[rows])
        sel = np.array(where[rows], dtype=bool)
        if also is not None:
            sel &= also[rows]
        if exclude is not None:
            sel &= ~exclude[rows]
        pixels += int(np.count_nonzero(sel))
        sel &= np.isfinite(block)
        n = int(np.count_nonzero(sel))
        if n:
            total += float(np.sum(block, where=sel, dtype=np.float64))
            count += n
    return (total / count if count else math.nan), pixels


def obstruction_caveats(shares: tuple[int, int, int], n_valid: int, source: str) -> list[str]:
    """Cloud, haze and shadow shares (pixels of cloud, haze, shadow) with what was done about them, and the
    source that found them."""
    cloud, haze, shadow = (float(px) / n_valid for px in shares)
    if cloud < 0.001 and shadow < 0.001:
        return []
    parts = []
    opaque = cloud - haze
    if opaque >= 0.001:
        parts.append(f"opaque cloud: {100 * opaque:.1f} %")
    if shadow >= 0.001:
        parts.append(f"cloud shadow: {100 * shadow:.1f} %")
    out = []
    if parts:
        out.append(f"{' and '.join(parts).capitalize()} of the valid scene ({source}); those pixels are not "
                   "assigned to any land or water class (ask for 'the clouds' or 'the cloud shadows' to see them).")
    if haze >= 0.001:
        out.append(f"Thin cloud / haze covers {100 * haze:.1f} % of the valid scene ({source}): the ground still "
                   "shows there, so it is kept in the classes, but index values are attenuated; say 'without the "
                   "haze' to leave it out.")
    return out


def scene_caveats(scene: Scene, has: Callable[..., bool], n_valid: int, shares: tuple[int, int, int],
                  source: str) -> list[str]:
    """Caveats about the scene itself: scaling, offsets, clouds (``shares``: cloud, haze, shadow pixels
    found by ``source``), band set (``has``: the rules' band test), georeference."""
    caveats: list[str] = []
    if not scene.calibrated:
        caveats.append("Values are relatively scaled DN, not calibrated reflectance ("
                       + scene.scaling + "); thresholds were found adaptively per scene, so index values are "
                       "relative and less comparable across scenes.")
    for note in scene.notes:
        low = note.lower()
        if "offset" in low and ("removed" in low or "subtracted" in low) and not low.startswith("no "):
            caveats.append(note)
    if n_valid:
        caveats.extend(obstruction_caveats(shares, n_valid, source))
    if not has("blue", "green", "red"):
        caveats.append("Cloud screening needs the blue, green and red bands; it was not applied to this scene.")
    if not has("nir"):
        caveats.append("RGB only: without near-infrared, classes are approximated from colour and brightness.")
    if scene.crs is None:
        caveats.append("The scene is not georeferenced: areas are in pixels and no coordinates are given.")
    return caveats
