"""One turn's working state: the tool runner behind the chat operations (extract, undo, display ...).

Split from :mod:`chat_app.dialogue` (one concept per module): the dialogue decides *which*
turn to run; a :class:`Turn` carries it out on a fork of the state and publishes what is seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chat_app.state import ChatState, Panel, SceneContext, Snapshot

if TYPE_CHECKING:
    from chat_app.dialogue import Dialogue, Progress
    from spex.engine import Extraction, ExtractionRequest

__all__ = ["NoScene", "Turn"]


class Turn:
    """One turn's working state; implements :class:`chat_app.tools.ToolRunner`."""

    def __init__(self, dialogue: Dialogue, work: ChatState, progress: Progress) -> None:
        self.d = dialogue
        self.work = work
        self.progress = progress
        self.image: Path | None = None

    # -------------------------------------------------------------- helpers
    @property
    def current(self) -> ExtractionRequest | None:
        return self.work.request

    def _ctx(self) -> SceneContext:
        if self.work.scene is None:
            raise NoScene()
        return self.work.scene

    def _compute(self, request: ExtractionRequest) -> Extraction:
        ctx = self._ctx()
        self.progress(0.3, f"Extracting {request.describe()}")
        return self.d.services.extract(ctx.scene, request, ctx.cache)

    def _publish(self, reply: str) -> None:
        """Write downloads, overlay and map for the current result into a fresh turn folder."""
        ctx, ex, s = self._ctx(), self.work.extraction, self.d.services
        out = ctx.out_dir / f"turn-{self.work.turn:03d}"
        out.mkdir(parents=True, exist_ok=True)
        self.work.downloads_pending = False
        if ex is None:
            self.progress(0.7, "Rendering the preview")
            png = s.render_preview(ctx.view, out / "preview.png", false_colour=self.work.false_colour)
            self.work.panel = Panel(image=png, map_html=self.d.safe_map(ctx.view, None, png), downloads=())
        elif self.d.lazy_downloads:  # what is seen first: overlay and map; downloads in the next step
            self.progress(0.6, "Drawing the overlay")
            # on-screen JPEG over the scene's kept background: the lossless overlay.png comes with the downloads
            fc = self.work.false_colour
            preview = None if s.preview_image is None else ctx.cache.memo(
                f"chat-preview:{fc}", lambda: s.preview_image(ctx.view, false_colour=fc))
            png = s.render_overlay(ctx.view, ex, out / "overlay-view.jpg", false_colour=fc, preview=preview)
            # the map is redrawn with the downloads: until then it keeps the previous page
            self.work.panel = Panel(image=png, map_html=self.work.panel.map_html, downloads=())
            self.work.downloads_pending = True
            self.image = png  # the overlay itself in the chat (no second encoding on the critical path)
            return
        else:
            self.progress(0.6, "Writing mask, regions and overlay")
            o = s.write_outputs(ex, ctx.view, out, reply=reply, false_colour=self.work.false_colour)
            self.progress(0.85, "Drawing the map")
            self.work.panel = Panel(image=o.overlay_png, map_html=self.d.safe_map(ctx.view, ex, o.overlay_png),
                                    downloads=tuple(p for p in (o.mask_tif, o.geojson, o.gpkg, o.overlay_png) if p is not None))
            png = o.overlay_png
        self.image = self.d.keep_for_chat(self.work, png)

    def _set(self, extraction: Extraction | None, summary_prefix: str = "") -> str:
        self.work.extraction = extraction
        ctx = self._ctx()
        if extraction is None:
            reply = summary_prefix + "There is no result now; the scene stays loaded."
        else:
            reply = summary_prefix + self.d.services.explain(extraction, ctx.view)
        self._publish(reply)
        return reply

    def _restore(self, request: ExtractionRequest | None) -> Extraction | None:
        return None if request is None else self._compute(request)

    # ---------------------------------------------------------------- tools
    def run_extract(self, request: ExtractionRequest, *, refined: bool) -> str:
        self._ctx()
        before = self.work.snapshot()
        extraction = self._compute(request)
        self.work.push_undo(before)
        return self._set(extraction)

    def _travel(self, source: list[Snapshot], dest: list[Snapshot]) -> tuple[Snapshot, Extraction | None]:
        """One step through history: recompute ``source[-1]`` and remember the present in ``dest``.

        The recomputation comes first, so a failure leaves both stacks as they were.
        """
        target = source[-1]
        extraction = self._restore(target.request)
        source.pop()
        dest.append(self.work.snapshot())
        del dest[: max(0, len(dest) - self.work.max_undo)]
        return target, extraction

    def run_undo(self) -> str:
        if not self.work.undo:
            return "Nothing to undo."
        target, extraction = self._travel(self.work.undo, self.work.redo)
        return self._set(extraction, f"Undone: back to **{target.summary}**.\n\n")

    def run_redo(self) -> str:
        if not self.work.redo:
            return "Nothing to redo."
        target, extraction = self._travel(self.work.redo, self.work.undo)
        return self._set(extraction, f"Redone: **{target.summary}**.\n\n")

    def run_reset(self) -> str:
        self._ctx()
        if self.work.extraction is None:
            return "There is no result to clear; the scene stays loaded. " + "Try *extract the water bodies*."
        self.work.push_undo(self.work.snapshot())
        return self._set(None, "Started over (say *undo* to bring the result back). ")

    def run_question(self, question: str) -> str:
        ctx = self._ctx()
        if self.work.extraction is None:
            return "There is no result yet to answer that from. Ask me to extract something first, " \
                   "e.g. *extract the water bodies*."
        return self.d.services.answer_question(question, self.work.extraction, ctx.view)

    def run_shares(self, classes: tuple[str, ...]) -> str:
        """Scene-wide class shares, measured (spex.engine.shares); the current result is kept."""
        ctx = self._ctx()
        if self.d.services.measure_shares is None:
            return "Measuring class shares is not available with this backend."
        self.progress(0.3, "Measuring every class on the scene")
        return self.d.services.measure_shares(ctx.scene, classes, ctx.cache)

    def run_display(self, false_colour: bool) -> str:
        from spex.export.render import choose_display_bands

        ctx = self._ctx()
        self.work.false_colour = false_colour  # a fork: a failure below discards it
        bands, note = choose_display_bands(ctx.scene.band_names, false_colour=false_colour)
        reply = f"Showing **{'false' if false_colour else 'true'} colour**: R/G/B = {'/'.join(bands)}"
        if bands[:2] == ("nir", "red"):
            reply += " (vegetation appears red, water dark)"
        reply += "." + (f" Note: {note}." if note else "")
        self._publish(reply)
        return reply

    def run_help(self) -> str:
        return self.d.help_text


class NoScene(Exception):
    """Raised inside a turn when a tool needs a scene and none is loaded."""
