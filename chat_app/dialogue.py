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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import ValidationError

from chat_app.help_text import EXAMPLES, HELP, NO_SCENE, _examples_text
from chat_app.hints import SceneHints, find_hints
from chat_app.lifecycle import prune_turns, trim_memory
from chat_app.scene_loading import DEMO_NAME, SceneLoading  # noqa: F401 - DEMO_NAME re-exported
from chat_app.services import Interpreter, Progress, Services, _no_progress, default_services
from chat_app.state import ChatEntry, ChatState, Panel
from chat_app.tools import RuleInterpreter, build_tools
from chat_app.turn import NoScene, Turn
from chat_app.uploads import ACCEPTED_SUFFIXES, chat_wording
from spex.errors import BandError, InstructionError, SpexError, clean_message, user_message

if TYPE_CHECKING:
    from spex.engine import Extraction
    from spex.io import Scene

# Services, Interpreter, Progress, default_services (services.py), EXAMPLES, HELP, NO_SCENE
# (help_text.py) and DEMO_NAME (scene_loading.py) are re-exported: imports from here keep working.
__all__ = ["ACCEPTED_SUFFIXES", "EXAMPLES", "Dialogue", "Interpreter", "Progress", "Services", "default_services"]

log = logging.getLogger(__name__)


class Dialogue(SceneLoading):
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
        # the lossless PNG from here on: the map reads its caption height, gr.Image offers it for download
        picture = o.overlay_png or work.panel.image
        map_html = self.safe_map(ctx.view, work.extraction, picture)
        work.panel = Panel(image=picture, map_html=map_html, downloads=files + report)
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
