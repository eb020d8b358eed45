"""What hides the ground: cloud (opaque or thin), haze and cloud shadow, from the best source at hand.

Why one module: every land and water class excludes what hides the ground, the cloud, haze and
shadow classes show it, and the reply says where it came from. The sources, in order:

1. **Quality flags supplied with the scene** (QA_PIXEL, BQA, SCL, MSK_CLDPRB, CLM): the data
   provider's own masks. Cirrus / thin-cirrus flags are the thin part (haze).
2. **The ukis-csmask model** (:mod:`spex.spectral.csmask`) on calibrated satellite scenes of
   5-65 m pixels with blue, green, red and NIR: cloud (thin and thick) and cloud shadow.
3. **The spectral tests** otherwise: the Fmask-style opaque-cloud objects and the geometric shadow
   match (:mod:`spex.spectral.shadow`).

Thin cloud / haze is the part of the cloud where the ground still shows: cloud the source marks but
the opaque-cloud pixel test (bright, white, blue > 0.2) does not find within ``OPAQUE_HALO_M``.
It belongs to the cloud class and is flagged in the reply; it is excluded from other classes only
when the user asks ("without the haze"), because indices there are attenuated but still meaningful.
Set ``SPEX_CLOUD_METHOD=spectral`` to force source 3 (benchmarks, comparisons).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
from scipy import ndimage

from spex.spectral.cloud import cloud_objects
from spex.spectral.csmask import MODEL_PIXEL_RANGE_M, SceneBands, csmask_available, csmask_coarse, expand_classes
from spex.spectral.shadow import ShadowResult, match_shadows, potential_shadow

if TYPE_CHECKING:
    from spex.engine.rules.context import RuleContext

__all__ = ["Obstruction", "SceneObstruction", "detect_obstruction", "scene_obstruction", "OPAQUE_HALO_M",
           "CLOUD_METHOD_ENV"]

log = logging.getLogger(__name__)

#: Opaque-cloud pixels count for this far around them (cloud edges are not haze).
OPAQUE_HALO_M: Final[float] = 60.0
#: Environment variable that forces a cloud source: "auto" (default) or "spectral".
CLOUD_METHOD_ENV: Final[str] = "SPEX_CLOUD_METHOD"


@dataclass(frozen=True)
class Obstruction:
    """Cloud (all of it), its thin part (haze), cloud shadow, and the source that found them."""

    cloud: np.ndarray
    haze: np.ndarray
    shadow: np.ndarray
    source: str
    shadow_match: ShadowResult | None = None

    @property
    def blocking(self) -> np.ndarray:
        """What no land or water class may take by default: opaque cloud and cloud shadow."""
        return (self.cloud & ~self.haze) | self.shadow


def _zeros(ctx: RuleContext) -> np.ndarray:
    return np.zeros(ctx.valid().shape, dtype=bool)


def _opaque(ctx: RuleContext) -> np.ndarray:
    """Opaque-cloud pixels of the spectral test, widened by OPAQUE_HALO_M."""
    if not ctx.has("blue", "green", "red"):
        return _zeros(ctx)
    pixel = ctx.cache.cloud() & ctx.valid()
    grow = max(1, int(round(OPAQUE_HALO_M / (ctx.ground_pixel_m or 30.0))))
    return ndimage.binary_dilation(pixel, structure=np.ones((3, 3), dtype=bool), iterations=grow) if pixel.any() \
        else pixel


def _geometric_shadow(ctx: RuleContext, cloud: np.ndarray) -> ShadowResult:
    if not cloud.any() or not ctx.has("blue", "green", "red"):
        return ShadowResult(_zeros(ctx), None, "none", 0, 0)
    names = [b for b in ("blue", "green", "red", "nir", "swir1") if ctx.has(b)]
    sun = getattr(ctx.cache.scene, "sun", None)
    return match_shadows(cloud, potential_shadow({b: ctx.band(b) for b in names}, ctx.valid()), ctx.ground_pixel_m,
                         sun_azimuth=sun[0] if sun else None, sun_elevation=sun[1] if sun else None)


def _model_usable(ctx: RuleContext) -> bool:
    scene = ctx.cache.scene
    pixel = ctx.ground_pixel_m
    return (os.environ.get(CLOUD_METHOD_ENV, "auto").lower() != "spectral" and csmask_available()
            and ctx.has("blue", "green", "red", "nir") and bool(getattr(scene, "calibrated", False))
            and pixel is not None and MODEL_PIXEL_RANGE_M[0] <= pixel <= MODEL_PIXEL_RANGE_M[1])


def _surface(ctx: RuleContext) -> bool:
    scene = ctx.cache.scene
    text = f"{getattr(scene, 'sensor', '')} {getattr(scene, 'scaling', '')}".lower()
    return "l2a" in text or "surface" in text


@dataclass(frozen=True)
class SceneObstruction:
    """The whole scene's obstruction in a form one tile at a time can be cut from (streamed extraction).

    Either the cloud model's ~30 m classes (``classes``, block ``factor``: a few MB for any scene; the
    thin part is decided per tile by the local opaque-cloud test) or full-resolution bit ``codes``
    (1 cloud, 2 haze, 4 shadow: one byte per pixel) from the quality flags or the spectral tests.
    """

    source: str
    classes: np.ndarray | None = None
    factor: int = 1
    any_cloud: bool = False
    codes: np.ndarray | None = None
    shadow_match: ShadowResult | None = None

    def cut(self, ctx: RuleContext, pixels: tuple[np.ndarray, np.ndarray] | None = None) -> Obstruction:
        """The obstruction at the scene's ``pixels`` = (rows, cols) (None = all of it): a tile (two ranges)
        or an overview (its sampled rows and columns); ``ctx`` is the context of that part."""
        valid = ctx.valid()
        if self.classes is not None:
            cls = expand_classes(self.classes, self.factor, valid.shape, pixels)
            cloud = (cls == 1) & valid
            # a cloud shadow needs a cloud: with none in the scene, the model's "shadow" is terrain shading
            # or a dark surface (shaded slopes of a closed canopy, dark soil), and the ground there is seen
            shadow = (cls == 2) & valid if self.any_cloud else _zeros(ctx)
            haze = cloud & ~_opaque(ctx) if cloud.any() else cloud  # the opaque test only matters under cloud
            return Obstruction(cloud, haze, shadow, self.source)
        assert self.codes is not None
        codes = self.codes if pixels is None else self.codes[np.ix_(*pixels)]
        return Obstruction((codes & 1) > 0, (codes & 2) > 0, (codes & 4) > 0, self.source, self.shadow_match)

    @classmethod
    def packed(cls, ob: Obstruction) -> SceneObstruction:
        codes = ob.cloud.astype(np.uint8)
        codes |= ob.haze.view(np.uint8) << 1
        codes |= ob.shadow.view(np.uint8) << 2
        return cls(ob.source, codes=codes, shadow_match=ob.shadow_match)


def _model_obstruction(ctx: RuleContext) -> SceneObstruction | None:
    """The cloud model's classes for the scene of ``ctx``; None when the model cannot be used or fails."""
    if not _model_usable(ctx):
        return None
    try:
        names = [b for b in ("blue", "green", "red", "nir", "swir1", "swir2") if ctx.has(b)]
        # the model sees ~30 m block means: read them window by window, no full-scene band is kept
        scene_names = {b: "nir08" if b == "nir" and "nir" not in ctx.bands else b for b in names}
        bands = SceneBands(ctx.cache.scene, scene_names, ctx.cache.window_size)
        classes, f, model = csmask_coarse(bands, ctx.valid(), ctx.ground_pixel_m, surface=_surface(ctx))
    except Exception as exc:  # noqa: BLE001 - an ONNX runtime failure must not cost the user the answer
        log.warning("cloud model failed (%s); using the spectral tests", exc)
        return None
    pixel = (ctx.ground_pixel_m or 30.0) * f
    # a block with no valid pixel is clear (csmask_coarse), so any cloud block holds a valid cloud pixel
    return SceneObstruction(f"{model} cloud/shadow model at {pixel:.0f} m", classes=classes, factor=f,
                            any_cloud=bool((classes == 1).any()))


def _supplied(ctx: RuleContext) -> Obstruction | None:
    """Cloud, haze and shadow from the quality flags supplied with the scene; None when there are none."""
    valid = ctx.valid()
    qa = ctx.quality()
    if qa is None or qa.get("cloud") is None:
        return None
    thick = qa.get("cloud") & valid
    thin = (qa.get("cirrus") & valid & ~thick) if qa.get("cirrus") is not None else _zeros(ctx)
    cloud = thick | thin
    if qa.get("shadow") is not None:
        return Obstruction(cloud, thin, qa.get("shadow") & valid & ~cloud, f"quality flags ({qa.description})")
    match = _geometric_shadow(ctx, thick)
    return Obstruction(cloud, thin, match.mask & ~cloud, f"quality flags ({qa.description})", match)


def _spectral(ctx: RuleContext) -> Obstruction:
    if not ctx.has("blue", "green", "red"):
        return Obstruction(_zeros(ctx), _zeros(ctx), _zeros(ctx), "none (no visible bands)")
    cloud = cloud_objects(ctx.cache.cloud() & ctx.valid(), ctx.ground_pixel_m)
    match = _geometric_shadow(ctx, cloud)
    return Obstruction(cloud, _zeros(ctx), match.mask & ~cloud, "spectral tests", match)


def detect_obstruction(ctx: RuleContext) -> Obstruction:
    """Cloud, haze and shadow of the scene in ``ctx`` from the best available source (module notes)."""
    supplied = _supplied(ctx)
    if supplied is not None:
        return supplied
    model = _model_obstruction(ctx)
    if model is not None:
        return model.cut(ctx)
    return _spectral(ctx)


def scene_obstruction(ctx: RuleContext) -> SceneObstruction:
    """:func:`detect_obstruction` for the whole scene of ``ctx``, in the compact form tiles are cut from."""
    supplied = _supplied(ctx)
    if supplied is not None:
        return SceneObstruction.packed(supplied)
    return _model_obstruction(ctx) or SceneObstruction.packed(_spectral(ctx))
