"""Pure turn logic: (state, text, files) in, new state with reply and artefacts out.

No Gradio here: the UI only renders what :meth:`Dialogue.respond` returns, so the
whole conversation can be tested without a browser. Every expected failure
(:class:`~spex.errors.SpexError`) becomes a friendly reply and leaves the previous
scene and result untouched, because a turn works on a fork of the state.
"""

from __future__ import annotations

import logging
import shutil
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import ValidationError

from chat_app.formatting import scene_markdown
from chat_app.hints import SceneHints, find_hints
from chat_app.lifecycle import prune_turns, trim_memory
from chat_app.state import ChatEntry, ChatState, Panel, SceneContext
from chat_app.tools import RuleInterpreter, build_tools
from chat_app.turn import NoScene, Turn
from chat_app.uploads import ACCEPTED_SUFFIXES, MTL_SUFFIX, chat_wording, sort_upload
from spex.errors import BandError, InstructionError, SceneReadError, SpexError, SpexWarning, clean_message, user_message
from spex.io import MemoScene

if TYPE_CHECKING:
    from spex.engine import Extraction, ExtractionRequest
    from spex.io import Scene
    from spex.spectral import IndexCache

__all__ = ["ACCEPTED_SUFFIXES", "EXAMPLES", "Dialogue", "Interpreter", "Progress", "Services", "default_services"]

log = logging.getLogger(__name__)


EXAMPLES = (
    "extract the water bodies",
    "only keep the ones larger than 5 ha",
    "just the three largest",
    "only in the north half",
    "be stricter",
    "also add wetlands",
    "vegetation with NDVI above 0.6",
    "water but not the sea",
    "which class covers most of the scene?",
    "remove the ones touching the border",
    "fill the holes",
    "now the vegetation instead",
    "exclude clouds",
    "what is the largest one?",
    "how much area in total?",
    "show false colour",
    "undo / redo / start over",
)

Progress = Callable[[float, str], None]


class Interpreter(Protocol):
    """Turns a user message into tool calls (rule-based parser or an LLM)."""

    name: str

    def choose(self, text: str, state: ChatState) -> AIMessage: ...


@dataclass(frozen=True)
class Services:
    """The library functions a turn calls, gathered so tests can count or swap one.

    Defaults (see :func:`default_services`) are the real ``spex`` functions; the SPEX
    model backend replaces ``extract`` only.
    """

    open_scene: Callable[..., Scene]
    make_cache: Callable[[Scene], IndexCache]
    extract: Callable[[Scene, ExtractionRequest, IndexCache], Extraction]
    explain: Callable[[Extraction, Scene], str]
    answer_question: Callable[[str, Extraction, Scene], str]
    render_preview: Callable[..., Path]
    render_overlay: Callable[..., Path]
    write_outputs: Callable[..., Any]
    write_report: Callable[..., Path]
    map_html: Callable[..., str]
    chat_image: Callable[[Path, Path], Path] | None = None  # (picture, destination) -> light copy; None = copy as is
    #: (scene, classes, cache) -> Markdown table of measured class shares (spex.engine.shares)
    measure_shares: Callable[[Scene, tuple[str, ...], IndexCache], str] | None = None


def default_services(backend: Any | None = None) -> Services:
    """The real spex functions; ``backend`` (e.g. SpexBackend) supplies ``extract`` if given."""
    from spex import export, io, spectral, viz
    from spex.engine import answer_question, explain
    from spex.engine import extract as spectral_extract
    from spex.engine.reply import shares_reply
    from spex.engine.shares import class_shares

    def measure_shares(scene: Scene, classes: tuple[str, ...], cache: IndexCache) -> str:
        return shares_reply(class_shares(scene, classes, cache), scene)

    def engine_extract(scene: Scene, request: ExtractionRequest, cache: IndexCache) -> Extraction:
        return spectral_extract(scene, request, cache=cache)

    def backend_extract(scene: Scene, request: ExtractionRequest, cache: IndexCache) -> Extraction:
        return backend.extract(scene, request, cache=cache)

    return Services(
        open_scene=io.open_scene, make_cache=spectral.IndexCache,
        extract=engine_extract if backend is None else backend_extract,
        explain=explain, answer_question=answer_question,
        render_preview=export.render_preview, render_overlay=export.render_overlay,
        write_outputs=export.write_outputs, write_report=export.write_report, map_html=viz.map_html,
        chat_image=export.write_lossy_copy, measure_shares=measure_shares,
    )


def _no_progress(fraction: float, desc: str) -> None:
    """Progress sink used when the caller shows none."""


def _examples_text() -> str:
    return "\n".join(f"- *{e}*" for e in EXAMPLES)


HELP = (
    "I extract land cover from multispectral scenes and explain the result with measured spectral evidence.\n\n"
    "**1.** Upload one GeoTIFF (`.tif`/`.tiff`/`.jp2`) or all band files of one scene "
    "(Landsat: add the `*_MTL.txt`), or click **Load demo scene**.\n"
    "**2.** Ask, then refine turn by turn:\n" + _examples_text()
)


DEMO_NAME = "demo scene (Sentinel-2 L1C, Virginia coast, CC0; 10/20/60 m band files)"

NO_SCENE = ("No scene is loaded yet. Upload a GeoTIFF (or the band files of one scene) with the paperclip button, "
            "or click **Load demo scene**; then ask e.g. *extract the water bodies*.")


class Dialogue:
    """The conversation engine shared by all sessions (holds no per-session data)."""

    help_text = HELP

    def __init__(self, services: Services, interpreter: Interpreter | None = None, *,
                 work_dir: Path, max_file_size_bytes: int = 500 * 1024 * 1024,
                 demo_dir: Path | None = None, lazy_downloads: bool = False) -> None:
        self.services = services
        self.interpreter: Interpreter = interpreter or RuleInterpreter()
        self.work_dir = Path(work_dir)
        self.max_file_size_bytes = max_file_size_bytes
        self.demo_dir = demo_dir
        #: True: a turn renders only the overlay and map; :meth:`write_downloads` writes the files after
        self.lazy_downloads = lazy_downloads
        # warnings.catch_warnings swaps process-wide state: two sessions loading at once must take turns,
        # or one restores the other's recorder and the warnings leak (or vanish for good)
        self._warnings_lock = threading.Lock()

    # ----------------------------------------------------------- public API
    def new_state(self, session_id: str, *, max_undo: int = 20, max_history: int = 200) -> ChatState:
        """An empty conversation for one visitor."""
        return ChatState(session_id=session_id, max_undo=max_undo, max_history=max_history)

    def session_dir(self, state: ChatState) -> Path:
        return self.work_dir / (state.session_id or "anonymous")

    def respond(self, state: ChatState, text: str = "", files: Sequence[str | Path] = (),
                progress: Progress | None = None, *, scene_name: str | None = None) -> ChatState:
        """One user turn; returns the new state (``state`` itself is never modified).

        ``files`` (if any) replace the scene first; ``scene_name`` labels them in the reply.
        """
        progress = progress or _no_progress
        text = (text or "").strip()
        files = [Path(f) for f in files]
        work = state.fork()
        work.turn += 1
        user = ChatEntry("user", text, files=tuple(f.name for f in files))
        work.add(user)
        work.add_message(HumanMessage(content=text or "(uploaded files)",
                                      additional_kwargs={"files": [f.name for f in files]}))
        hints = find_hints(text) if text else SceneHints()
        if files:
            try:  # hints sent with the files ("this is Landsat 8 OLI") apply to this very upload
                loaded = self._load(work, files, progress, scene_name, bands=hints.bands, sensor=hints.sensor)
            except SpexError as exc:
                return self._failed_upload(state, user, exc, files, work.turn)
            except Exception as exc:  # an unexpected bug must not kill the chat
                log.exception("loading %s failed", [f.name for f in files])
                return self._failed_upload(state, user, exc, files, work.turn)
            preview = self.keep_for_chat(work, work.panel.image) if work.panel.image else None
            if hints.bands is not None or hints.sensor is not None:
                said = "; ".join(x for x in (f"bands {', '.join(hints.bands)}" if hints.bands else "",
                                             f"sensor {hints.sensor}" if hints.sensor else "") if x)
                loaded = f"Applied {said} from your message, checked as `--bands`/`--sensor` are.\n\n{loaded}"
            if hints.any:
                text = hints.rest
            if not text:
                return self._finish(work, loaded, preview, progress)
            self._say(work, loaded, preview)  # the scene info stays even if the instruction fails
        elif not text:
            return self._finish(work, HELP, None, progress)
        if hints.any and not files:  # "the bands are ...", "this is Landsat 8 OLI": reopen with them
            try:
                applied = self._apply_hints(work, hints, progress)
            except (SpexError, ValueError) as exc:
                return self._failed_upload(state, user, exc, work.pending_upload, work.turn, keep_pending=True)
            preview = self.keep_for_chat(work, work.panel.image) if work.panel.image else None
            if not hints.rest:
                return self._finish(work, applied, preview, progress)
            self._say(work, applied, preview)
            text, files = hints.rest, [Path("(hint)")]  # the hint stays applied if the instruction fails
        base = work.fork() if files else state
        try:
            reply, image = self._instruct(work, text, progress)
        except (SpexError, NoScene, ValidationError, ValueError) as exc:
            return self._fail(base, user, self._friendly(exc), turn=work.turn, has_user=bool(files))
        except Exception:
            log.exception("turn %r failed", text)
            return self._fail(base, user, "Something unexpected went wrong; your previous result is kept. "
                                          "Please rephrase or try *help*.", turn=work.turn, has_user=bool(files))
        return self._finish(work, reply, image, progress)

    def _failed_upload(self, state: ChatState, user: ChatEntry, exc: BaseException, files: Sequence[Path],
                       turn: int, *, keep_pending: bool = False) -> ChatState:
        """The previous state plus a reply saying what failed; following replies name the scene used."""
        out = self._fail(state, user, self._friendly(exc, upload=True, kept=state), turn=turn)
        names = ", ".join(f"`{f.name}`" for f in files) or "the last upload"
        out.failed_upload = names
        if isinstance(exc, BandError):  # the files are fine but their bands need naming: keep them for a hint
            out.pending_upload = tuple(files)
        elif not keep_pending:
            out.pending_upload = ()
        return out

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

    def write_downloads(self, state: ChatState) -> ChatState:
        """The downloads (mask COG, GeoJSON, GeoPackage, overlay, report) of the current result, if pending.

        Written into the current turn's folder from the current extraction, so they are never
        stale; a state without pending downloads is returned unchanged.
        """
        if not state.downloads_pending or state.scene is None or state.extraction is None:
            return state
        work = state.fork()
        work.downloads_pending = False
        ctx = work.scene
        out = ctx.out_dir / f"turn-{work.turn:03d}"
        out.mkdir(parents=True, exist_ok=True)
        reply = next((e.text for e in reversed(work.entries) if e.role == "assistant"), "")
        o = self.services.write_outputs(work.extraction, ctx.view, out, reply=reply, false_colour=work.false_colour)
        files = tuple(p for p in (o.mask_tif, o.geojson, o.gpkg, o.overlay_png) if p is not None)
        report = tuple(p for p in work.panel.downloads if p.name == "spex_report.md")
        map_html = self.safe_map(ctx.view, work.extraction, work.panel.image)
        work.panel = Panel(image=work.panel.image, map_html=map_html, downloads=files + report)
        return work

    def close(self, state: ChatState) -> None:
        """Release a session: close its scene and delete its files."""
        if state.scene is not None:
            state.scene.close()
        if state.session_id:
            shutil.rmtree(self.session_dir(state), ignore_errors=True)
        trim_memory()

    # ------------------------------------------------------------- internals
    def safe_map(self, scene: Scene, extraction: Extraction | None, png: Path | None) -> str:
        """Map HTML, or a short note when the scene cannot be mapped (e.g. no CRS)."""
        try:
            return self.services.map_html(scene, extraction, overlay_png=png)
        except SpexError as exc:
            return f"<p>No map for this scene: {exc}</p>"

    def keep_for_chat(self, state: ChatState, png: Path) -> Path:
        """A light copy of a PNG next to the transcript, so it outlives the scene's output folder.

        The chat shows every turn's picture inline, so it gets the lossy copy
        (``services.chat_image``, ~10x smaller); the panel and downloads keep the full PNG.
        """
        chat_dir = self.session_dir(state) / "chat"
        chat_dir.mkdir(parents=True, exist_ok=True)
        dest = chat_dir / f"turn-{state.turn:03d}-{Path(png).name}"
        if self.services.chat_image is not None:
            return self.services.chat_image(Path(png), dest)
        if Path(png) != dest:
            shutil.copyfile(png, dest)
        return dest

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

    def _instruct(self, work: ChatState, text: str, progress: Progress) -> tuple[str, Path | None]:
        progress(0.05, "Understanding the request")
        ai = self.interpreter.choose(text, work)
        work.add_message(ai)
        turn = Turn(self, work, progress)
        tools = {t.name: t for t in build_tools(turn)}
        outputs: list[str] = []
        for call in ai.tool_calls:
            tool = tools.get(call["name"])
            if tool is None:
                raise InstructionError(f"unknown operation {call['name']!r}",
                                       supported=sorted(tools))
            result = tool.invoke(call["args"])  # exceptions propagate: the turn is abandoned as a whole
            work.add_message(ToolMessage(content=str(result), tool_call_id=call["id"], name=call["name"]))
            outputs.append(str(result))
        if not outputs:
            raise InstructionError("no operation chosen")
        notes = ai.additional_kwargs.get("notes") or []  # filters kept/dropped on a class change
        if notes:
            outputs.insert(0, "**Filters on the class change:** " + " ".join(notes))
        return "\n\n".join(outputs), turn.image

    @staticmethod
    def _say(work: ChatState, reply: str, image: Path | None) -> None:
        work.add(ChatEntry("assistant", reply, image=image))
        work.add_message(AIMessage(content=reply))

    def _finish(self, work: ChatState, reply: str, image: Path | None, progress: Progress) -> ChatState:
        if work.failed_upload and work.scene is not None:  # nobody analyses the old scene by mistake
            reply = (f"*Working on **{work.scene.name}**: your upload {work.failed_upload} was not loaded.*\n\n"
                     + reply)
        self._say(work, reply, image)
        if work.scene is not None:
            self._write_report(work)
            prune_turns(work.scene.out_dir, work.turn, session_dir=self.session_dir(work))  # disk quota
        progress(1.0, "Done")
        return work

    def _write_report(self, work: ChatState) -> None:
        """Refresh the Markdown report of the conversation (a download at every turn)."""
        ctx = work.scene
        assert ctx is not None
        out = ctx.out_dir / f"turn-{work.turn:03d}"
        out.mkdir(parents=True, exist_ok=True)
        try:
            report = self.services.write_report(work.transcript(), work.extraction, ctx.view,
                                                out / "spex_report.md")
        except SpexError as exc:
            log.warning("report not written: %s", exc)
            return
        downloads = tuple(p for p in work.panel.downloads if p.name != "spex_report.md") + (Path(report),)
        work.panel = Panel(image=work.panel.image, map_html=work.panel.map_html, downloads=downloads)

    def _fail(self, base: ChatState, user: ChatEntry, message: str, *, turn: int,
              has_user: bool = False) -> ChatState:
        """``base`` plus the user's bubble and a friendly reply; scene, result and undo unchanged."""
        out = base.fork()
        out.turn = turn
        if not has_user:
            out.add(user)
            out.add_message(HumanMessage(content=user.text or "(uploaded files)"))
        self._say(out, message, None)
        return out

    def _friendly(self, exc: BaseException, *, upload: bool = False, kept: ChatState | None = None) -> str:
        """A chat reply for an expected failure: what went wrong and what works."""
        if isinstance(exc, NoScene):
            return NO_SCENE
        if isinstance(exc, InstructionError):
            text = str(exc).strip()
            if "example" not in text.lower():
                text += "\n\nYou can say for example:\n" + _examples_text()
            return f"Sorry, I could not turn that into an operation.\n\n{text}\n\nNothing was changed."
        if isinstance(exc, ValidationError):
            return f"That request had invalid settings ({exc.error_count()} problem(s)); nothing was changed."
        if upload:
            scene = kept.scene.name if kept is not None and kept.scene is not None else None
            still = (f"Still loaded: **{scene}** (the following replies work on it until a new upload loads)."
                     if scene else "No scene is loaded.")
            return f"I could not read that upload: {chat_wording(user_message(exc, action='reading the upload'))}\n\n{still}"
        if isinstance(exc, SpexError):
            return f"{chat_wording(str(exc))}\n\nNothing was changed; your previous result is kept."
        return f"That request is not valid: {clean_message(str(exc))}. Nothing was changed."
