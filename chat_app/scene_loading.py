"""Scene loading for the dialogue: an upload, a hint or the demo becomes the session's scene.

Split from :mod:`chat_app.dialogue` (one concept per module). :class:`SceneLoading` is a
mixin of :class:`~chat_app.dialogue.Dialogue` holding the methods that open a scene, render
its preview and install it in the working state; the turn logic stays in the dialogue.
``chat_app.dialogue`` re-exports :data:`DEMO_NAME`.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

from chat_app.formatting import scene_markdown
from chat_app.hints import SceneHints
from chat_app.services import Progress
from chat_app.state import ChatEntry, ChatState, Panel, SceneContext
from chat_app.uploads import ACCEPTED_SUFFIXES, MTL_SUFFIX, sort_upload
from spex.errors import SceneReadError, SpexWarning
from spex.io import MemoScene

__all__ = ["DEMO_NAME", "SceneLoading"]

log = logging.getLogger(__name__)


DEMO_NAME = "demo scene (Sentinel-2 L1C, Virginia coast, CC0; 10/20/60 m band files)"


class SceneLoading:
    """Opening scenes into a working state; mixed into :class:`~chat_app.dialogue.Dialogue`.

    Uses the dialogue's ``services``, ``max_file_size_bytes``, ``demo_dir``, ``_warnings_lock``,
    :meth:`session_dir`, :meth:`safe_map`, :meth:`respond` and :meth:`_fail`.
    """

    def _apply_hints(self, work: ChatState, hints: SceneHints, progress: Progress) -> str:
        """Reopen the pending upload (or the current scene) with the bands/sensor the user named."""
        ctx = work.scene
        if work.pending_upload:
            files, name, mtl, bands, sensor = list(work.pending_upload), None, None, None, None
        elif ctx is not None:
            files, name, mtl, bands, sensor = list(ctx.scene.paths), ctx.name, ctx.mtl, ctx.bands, ctx.sensor
        else:
            raise SceneReadError("No scene is loaded yet: upload the scene's files first, then tell me its bands "
                                 "(*the bands are blue, green, red, nir*) or its sensor (*this is Landsat 8 OLI*).")
        if hints.bands is None and hints.sensor is None:  # scaling only: said, not overridden
            scaling = ctx.scene.scaling if ctx is not None else "unknown until the scene loads"
            return (f"I cannot set the scaling by hand; it follows from the sensor and metadata. This scene is read "
                    f"as: {scaling}. For Landsat, upload the *_MTL.txt; or name the sensor (*this is Landsat 8 "
                    "OLI*).")
        bands = hints.bands if hints.bands is not None else bands
        sensor = hints.sensor if hints.sensor is not None else sensor
        loaded = self._load(work, files if mtl is None else [*files, mtl], progress, name, bands=bands,
                            sensor=sensor)
        said = "; ".join(x for x in (f"bands {', '.join(bands)}" if hints.bands else "",
                                     f"sensor {sensor}" if hints.sensor else "") if x)
        return f"Applied {said}, checked as `--bands`/`--sensor` are on the command line.\n\n{loaded}"

    def load_demo(self, state: ChatState, progress: Progress | None = None) -> ChatState:
        """Load the bundled demo scene as if its files had been uploaded."""
        files = self.demo_files()
        if not files:
            return self._fail(state, ChatEntry("user", "Load the demo scene"),
                              "The demo scene is not installed (expected its band files in "
                              f"`{self.demo_dir}`). Upload your own GeoTIFF instead.", turn=state.turn + 1)
        return self.respond(state, "", files, progress, scene_name=DEMO_NAME)

    def demo_files(self) -> list[Path]:
        if self.demo_dir is None or not self.demo_dir.is_dir():
            return []
        return sorted(p for p in self.demo_dir.iterdir()
                      if p.suffix.lower() in ACCEPTED_SUFFIXES or p.name.lower().endswith(MTL_SUFFIX))

    def _load(self, work: ChatState, files: Sequence[Path], progress: Progress, name: str | None = None, *,
              bands: Sequence[str] | None = None, sensor: str | None = None) -> str:
        upload = sort_upload(files, self.max_file_size_bytes)
        rasters, mtl = upload.rasters, upload.mtl
        if not rasters:  # an MTL sent after the scene: reopen the current scene with it
            source = list(work.pending_upload) or (list(work.scene.scene.paths) if work.scene else [])
            if not source:
                raise SceneReadError("Only a Landsat *_MTL.txt was uploaded; upload the band files too (it is "
                                     "used with the scene it describes).")
            rasters = [p for p in source if not p.name.lower().endswith(MTL_SUFFIX)]
            name = name or (work.scene.name if work.scene else None)
            bands = bands or (work.scene.bands if work.scene else None)
        s = self.services
        progress(0.1, "Reading the scene")
        kw = {k: v for k, v in (("bands", list(bands) if bands else None), ("sensor", sensor)) if v is not None}
        with self._warnings_lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SpexWarning)
            scene = s.open_scene(rasters if len(rasters) > 1 else rasters[0], mtl=mtl, **kw)
        try:
            number = work.scenes_loaded + 1
            out_dir = self.session_dir(work) / f"scene-{number:02d}"
            shutil.rmtree(out_dir, ignore_errors=True)
            out_dir.mkdir(parents=True)
            progress(0.5, "Rendering a preview")
            view = MemoScene(scene)
            preview = s.render_preview(view, out_dir / "preview.png", false_colour=False)
            cache = s.make_cache(scene)
            if name is None:
                name = rasters[0].name if len(rasters) == 1 else f"{len(rasters)} files ({rasters[0].name}, …)"
            info = scene_markdown(scene.info(), name)
            for w in caught:  # assumptions the scene notes do not already state
                if issubclass(w.category, SpexWarning) and str(w.message) not in info:
                    log.info("scene warning: %s", w.message)
            ctx = SceneContext(scene=scene, cache=cache, view=view, name=name, info_text=info, preview_png=preview,
                               out_dir=out_dir, number=number, mtl=mtl,
                               bands=tuple(bands) if bands else None, sensor=sensor)
            progress(0.8, "Drawing the map")
            map_html = self.safe_map(view, None, preview)
        except Exception:
            scene.close()
            raise
        old = work.scene
        work.scene, work.scenes_loaded = ctx, number
        work.failed_upload, work.pending_upload, work.downloads_pending = None, (), False
        work.extraction, work.false_colour = None, False
        work.undo.clear()
        work.redo.clear()
        work.panel = Panel(image=preview, map_html=map_html, downloads=())
        if old is not None:
            old.close()
        skipped = ("\n\n**Kept what I could:**\n" + upload.skipped_text()) if upload.skipped else ""
        return (f"{info}{skipped}\n\n"
                "Ask e.g. *extract the water bodies*, *extract the vegetation* or *show false colour*.")
