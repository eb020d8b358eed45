"""Gradio layout and event wiring; the turn logic lives in :mod:`chat_app.dialogue`.

Every action follows the same chain: a fast step shows the user's bubble and locks
the textbox, a slow step runs the turn (with progress), an unlock step frees the
textbox; if the slow step raises, ``.failure`` re-renders the kept state with an
apology and unlocks (Gradio 6 does not run ``.then`` steps after an error), so the
chat stays usable after anything.
"""

from __future__ import annotations

import hashlib
import html
import logging
import shutil
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from chat_app.access import SessionFileMiddleware, SessionFiles
from chat_app.deadline import limit_message, limited_progress, limited_services, run_limited
from chat_app.dialogue import EXAMPLES, Dialogue, default_services
from chat_app.explain import Explainer
from chat_app.lifecycle import WorkDirLock, claim_work_dir, release_session
from chat_app.settings import Settings, gradio_temp_dir
from chat_app.spaces_compat import gpu
from chat_app.state import ChatEntry, ChatState

__all__ = ["CSS", "SpexBlocks", "build_demo", "launch_kwargs", "map_iframe", "make_dialogue"]

log = logging.getLogger(__name__)

MAP_HEIGHT_PX = 400

CSS = """
#spex-map iframe {display: block;}
.spex-actions button {min-width: 0;}
#spex-downloads tr.file {padding: 1px 4px !important;}
#spex-downloads td {padding-top: 2px !important; padding-bottom: 2px !important;}
"""

HEADER = (
    "<div id='spex-header' style='display:flex;align-items:baseline;gap:12px;margin:0 0 -8px 4px;"
    "white-space:nowrap;overflow:hidden;text-overflow:ellipsis'>"
    "<b style='font-size:1.25rem'>SPEX chat</b>"
    "<span style='font-size:.85rem;opacity:.75'>talk to a multispectral scene: upload a GeoTIFF or load the demo, "
    "ask what to extract, refine turn by turn, download the results</span></div>"
)

PLACEHOLDER = (
    "**Start:** the demo scene (Sentinel-2 L1C, Virginia) loads here; click **Load demo scene** to reload it, "
    "or upload your own GeoTIFF with the paperclip, then ask e.g. *extract the water bodies*."
)

MAP_EMPTY = "<p style='padding:1em;opacity:.7'>The map appears here once a scene is loaded.</p>"

FAILURE = ("Sorry, something went wrong with that request. Uploads must be GeoTIFF (.tif, .tiff), JPEG 2000 "
           "(.jp2) or Landsat *_MTL.txt files of at most {limit} MB each. Your previous scene and result are kept; "
           "please try again.")


# Gradio's autoscroll stops once late-loading images push the bottom away; instead show the
# latest user message at the top, so each reply is read from its start.
SCROLL_JS = """() => {
  const go = () => {
    const wrap = document.querySelector('#spex-chat .bubble-wrap');
    if (!wrap) return;
    const rows = wrap.querySelectorAll('.message-row.user-row');
    const last = rows[rows.length - 1];
    if (!last) return;
    wrap.scrollTop += last.getBoundingClientRect().top - wrap.getBoundingClientRect().top - 44;  // below the toolbar
  };
  [60, 500, 1500].forEach((t) => setTimeout(go, t));
}"""


#: Map pages kept per session (the one shown and the one before; older ones are deleted).
MAP_PAGES_KEPT = 2


def map_iframe(map_document: str, height: int = MAP_HEIGHT_PX, folder: Path | None = None) -> str:
    """Embed a standalone map page; gr.HTML does not run scripts, an iframe does.

    With ``folder`` (the session's own), the page is written there and the iframe loads it by
    URL: a turn then sends ~300 bytes instead of the ~1 MB page, and the file is served only to
    this session's browser (:mod:`chat_app.access`). Without one, or if writing fails, the page
    is inlined (``srcdoc``).
    """
    if not map_document:
        return MAP_EMPTY
    if not map_document.lstrip().lower().startswith(("<!doctype", "<html")):
        return map_document  # a short notice (e.g. scene without CRS), shown as is
    frame = (f'<iframe title="Map of the scene and the extracted regions" sandbox="allow-scripts" '
             f'style="width:100%;height:{height}px;border:0;border-radius:8px" ')
    if folder is not None:
        try:
            page = _write_map_page(map_document, folder)
        except OSError:
            log.warning("map page not written to %s; sent inline", folder, exc_info=True)
        else:  # relative to the app's page, so it also works under a mount path
            src = "gradio_api/file=" + urllib.parse.quote(str(page))
            return frame + f'src="{html.escape(src, quote=True)}"></iframe>'
    return frame + f'srcdoc="{html.escape(map_document, quote=True)}"></iframe>'


def _write_map_page(map_document: str, folder: Path) -> Path:
    """The page as ``map-<hash>.html`` in ``folder`` (a new name per content: never a stale cached page)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = map_document.encode("utf-8")
    page = folder / f"map-{hashlib.sha256(data).hexdigest()[:16]}.html"
    if not page.exists():
        tmp = page.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(page)
    else:
        page.touch()
    for old in sorted(folder.glob("map-*.html"), key=lambda p: p.stat().st_mtime)[:-MAP_PAGES_KEPT]:
        old.unlink(missing_ok=True)
    return page


def make_dialogue(settings: Settings, backend: Any | None = None, interpreter: Any | None = None) -> Dialogue:
    """The shared conversation engine for these settings (``backend``: e.g. a loaded SpexBackend).

    Its library calls check the turn deadline (:mod:`chat_app.deadline`; a no-op outside a turn).
    """
    return Dialogue(limited_services(default_services(backend)), interpreter, work_dir=settings.work_dir,
                    max_file_size_bytes=settings.max_file_size_bytes, demo_dir=settings.demo_dir,
                    lazy_downloads=True)


def launch_kwargs(settings: Settings) -> dict[str, Any]:
    """Arguments for ``demo.launch`` that belong to the app rather than to the caller.

    The session-file middleware and the start-up sweep are added by :meth:`SpexBlocks.launch` itself.
    """
    return {
        "max_file_size": settings.max_file_size,
        "allowed_paths": [str(settings.work_dir)],
        "css": CSS,
        # system fonts: the default theme fonts would be fetched from a web font service
        "theme": gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                                font_mono=["ui-monospace", "Consolas", "monospace"]),
        "footer_links": ["api", "settings"],
    }


class SpexBlocks(gr.Blocks):
    """``gr.Blocks`` whose ``launch`` claims the work folder and puts the session-file guard in front.

    Why a subclass: the guard must be in the FastAPI app Gradio creates at launch
    (``app_kwargs["middleware"]``), for every caller of ``launch`` (app.py, tests, benchmarks).
    """

    spex_settings: Settings
    spex_files: SessionFiles
    spex_lock: WorkDirLock | None = None

    def launch(self, *args: Any, app_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if self.spex_lock is not None:
            self.spex_lock.release()
        # session folders of a stopped server are removed at the next start; a live server's are kept
        self.spex_lock = claim_work_dir(self.spex_settings.work_dir)
        app_kwargs = dict(app_kwargs or {})
        app_kwargs["middleware"] = [*(app_kwargs.get("middleware") or []),
                                    Middleware(SessionFileMiddleware, files=self.spex_files)]
        return super().launch(*args, app_kwargs=app_kwargs, **kwargs)


def build_demo(settings: Settings | None = None, dialogue: Dialogue | None = None,
               explainer: Explainer | None = None) -> SpexBlocks:
    """The SPEX chat app. ``dialogue`` and ``explainer`` (the streamed LLM explanation, chat_app.explain)
    are shared by all sessions; state is per session."""
    settings = settings or Settings()
    explainer = explainer or Explainer("template")
    dialogue = dialogue or make_dialogue(settings)
    if not getattr(dialogue.services.extract, "__wrapped_deadline__", False):
        dialogue.services = limited_services(dialogue.services)
    files_guard = SessionFiles(settings.work_dir, gradio_temp_dir(), orphan_ttl_s=settings.upload_orphan_ttl_s,
                               orphan_cap_bytes=settings.upload_orphan_cap_mb * 2**20,
                               anonymous_cap_bytes=settings.max_file_size_bytes)
    files_guard.start_sweeper(min(60.0, settings.upload_orphan_ttl_s / 4))
    if not _inside(settings.work_dir, gradio_temp_dir()):
        log.warning("work folder %s is outside Gradio's cache %s: Gradio serves copies of the outputs from its "
                    "cache, which are not limited to their session", settings.work_dir, gradio_temp_dir())
    limit_s = settings.turn_limit_s
    # turns run here (threads reused, like Gradio's own pool); room for abandoned turns still stopping
    turn_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="spex-turn")
    shown = settings.shown_history
    limit = settings.max_file_size_mb
    # No server-side type filter: Gradio's own check answers "Invalid file type: None"; the dialogue
    # sorts every upload itself and says which file was skipped and why.
    file_types = None

    with SpexBlocks(title="SPEX chat", delete_cache=settings.delete_cache, fill_width=True) as demo:
        demo.spex_settings, demo.spex_files = settings, files_guard
        state = gr.State(ChatState(max_undo=settings.max_undo, max_history=settings.max_history),
                         time_to_live=settings.state_ttl_s, delete_callback=dialogue.close)
        gr.HTML(HEADER, js_on_load=None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=11, min_width=420):
                chatbot = gr.Chatbot(label="Conversation", show_label=False, height=530, placeholder=PLACEHOLDER,
                                     layout="bubble", buttons=["copy", "copy_all"], elem_id="spex-chat",
                                     feedback_options=None, group_consecutive_messages=False)
                box = gr.MultimodalTextbox(
                    placeholder=f"Ask, or attach a scene (.tif/.tiff/.jp2, Landsat *_MTL.txt; ≤ {limit} MB per file)",
                    file_types=file_types, file_count="multiple", sources=["upload"], show_label=False,
                    elem_id="spex-input", autofocus=True)
                with gr.Row(elem_classes="spex-actions"):
                    demo_btn = gr.Button("Load demo scene", variant="primary", size="sm", elem_id="spex-demo")
                    undo_btn = gr.Button("↶ Undo", size="sm")
                    redo_btn = gr.Button("↷ Redo", size="sm")
                    reset_btn = gr.Button("Start over", size="sm")
                with gr.Accordion("Example requests (click one to fill in the box)", open=False):
                    gr.Examples(examples=[[{"text": e, "files": []}] for e in EXAMPLES if "/" not in e],
                                inputs=[box], label=None, examples_per_page=13)
            with gr.Column(scale=10, min_width=380):
                with gr.Tabs(selected="map") as tabs:
                    with gr.Tab("Map", id="map"):
                        map_box = gr.HTML(MAP_EMPTY, elem_id="spex-map", js_on_load=None,
                                          min_height=MAP_HEIGHT_PX)
                    with gr.Tab("Image", id="image"):
                        image = gr.Image(label="Preview / overlay", type="filepath", interactive=False,
                                         height=MAP_HEIGHT_PX, buttons=["download", "fullscreen"],
                                         elem_id="spex-image")
                files = gr.File(label="Downloads: mask COG · regions GeoJSON (EPSG:4326) · GeoPackage · overlay · report",
                                file_count="multiple", interactive=False, height=175,
                                elem_id="spex-downloads")

        view_outputs = [state, chatbot, image, map_box, files, tabs]

        def view(new: ChatState, old: ChatState | None = None) -> dict[Any, Any]:
            """Render a state; switch to the map tab when the map changed."""
            panel = new.panel
            out: dict[Any, Any] = {
                state: new,
                chatbot: new.to_chatbot(shown),
                image: str(panel.image) if panel.image else None,
                files: [str(p) for p in panel.downloads] or None,
            }
            if old is None or panel.map_html != old.panel.map_html:
                out[map_box] = map_iframe(panel.map_html, folder=maps_folder(new))
                out[tabs] = gr.Tabs(selected="map")
            else:  # unchanged: do not resend a ~1 MB page (questions, failed turns)
                out[map_box] = gr.skip()
            return out

        def maps_folder(s: ChatState) -> Path | None:
            return dialogue.session_dir(s) / "maps" if s.session_id else None

        def with_session(s: ChatState, request: gr.Request | None) -> ChatState:
            """The session's folder is named by ``files_guard`` (unguessable; only its browser may read it)."""
            if not s.session_id and request is not None and request.session_hash:
                s = s.fork()
                s.session_id = files_guard.folder(request.session_hash)
            return s

        def progress_cb(progress: gr.Progress) -> Callable[[float, str], None]:
            return limited_progress(lambda fraction, desc: progress(fraction, desc=desc))

        def limited(s: ChatState, text: str, names: list[str], work: Callable[[], ChatState]) -> ChatState:
            """``work()`` under the turn time limit; past it, ``s`` plus the user's bubble and a clear reply."""
            def timed_out() -> ChatState:
                out = s.fork()
                out.turn += 1
                out.add(ChatEntry("user", text, files=tuple(Path(n).name for n in names)))
                out.add(ChatEntry("assistant", limit_message(limit_s)
                                  + "\n\nNothing was changed; your previous scene and result are kept."))
                return out
            return run_limited(work, limit_s, timed_out, executor=turn_pool)

        def show_user(s: ChatState, message: dict[str, Any] | str | None) -> dict[Any, Any]:
            """Fast step: the user's bubble appears at once and the textbox locks."""
            text, names = _split(message)
            bubble = ("Files: " + ", ".join(f"`{Path(n).name}`" for n in names) + ("\n\n" if text else "")
                      if names else "") + html.escape(text, quote=False)  # literal, never rendered as HTML
            history = s.to_chatbot(shown) + ([{"role": "user", "content": bubble}] if bubble else [])
            return {chatbot: history, box: gr.MultimodalTextbox(interactive=False)}

        def show_fixed(text: str) -> Callable[[ChatState], dict[Any, Any]]:
            return lambda s: show_user(s, {"text": text, "files": []})

        @gpu
        def respond(s: ChatState, message: dict[str, Any] | str | None, request: gr.Request,
                    progress: gr.Progress = gr.Progress()) -> Iterator[dict[Any, Any]]:
            """Slow step: one turn of the dialogue (API name ``/chat``): the measured summary first, then
            the language model's explanation streamed into the same reply."""
            text, names = _split(message)
            s = with_session(s, request)
            if names and request is not None:  # kept while this session lives; deleted when it closes
                files_guard.claim(request.session_hash, names)
            cb = progress_cb(progress)
            new = limited(s, text, names, lambda: dialogue.respond(s, text, names, progress=cb))
            yield view(new, s)
            for streamed in explainer.stream(s, new):
                yield view(streamed, new)

        def fixed(text: str) -> Callable[..., dict[Any, Any]]:
            @gpu
            def run(s: ChatState, request: gr.Request, progress: gr.Progress = gr.Progress()) -> dict[Any, Any]:
                s = with_session(s, request)
                cb = progress_cb(progress)
                return view(limited(s, text, [], lambda: dialogue.respond(s, text, (), progress=cb)), s)
            return run

        @gpu
        def load_demo(s: ChatState, request: gr.Request, progress: gr.Progress = gr.Progress()) -> dict[Any, Any]:
            s = with_session(s, request)
            cb = progress_cb(progress)
            return view(limited(s, "Load the demo scene", [], lambda: dialogue.load_demo(s, progress=cb)), s)

        def downloads(s: ChatState) -> dict[Any, Any]:
            """Write the current result's files (mask COG, GeoJSON, GeoPackage, overlay, report)."""
            new = dialogue.write_downloads(s)
            if new is s:
                return {state: gr.skip(), files: gr.skip(), map_box: gr.skip()}
            return {state: new, files: [str(p) for p in new.panel.downloads] or None,
                    map_box: map_iframe(new.panel.map_html, folder=maps_folder(new))}

        def unlock() -> dict[Any, Any]:
            return {box: gr.MultimodalTextbox(value=None, interactive=True)}

        def restore(s: ChatState) -> dict[Any, Any]:
            """After an unexpected error: the kept state plus an apology, and a usable textbox."""
            return {chatbot: s.to_chatbot(shown) + [{"role": "assistant", "content": FAILURE.format(limit=limit)}],
                    box: gr.MultimodalTextbox(value=None, interactive=True)}

        def chain(trigger: Any, fast: Callable[..., Any], fast_inputs: list[Any], slow: Callable[..., Any],
                  slow_inputs: list[Any], api_name: str) -> None:
            first = trigger(fast, fast_inputs, [chatbot, box], queue=False, api_visibility="private")
            work = first.then(slow, slow_inputs, view_outputs, api_name=api_name, concurrency_id="turn",
                              concurrency_limit=2, show_progress="minimal", show_progress_on=[chatbot])
            # downloads after the overlay and map are shown; before the unlock, so no newer turn can be
            # overwritten by them (never stale)
            files_step = work.then(downloads, [state], [state, files, map_box], concurrency_id="turn",
                                   concurrency_limit=2,
                                   api_name=f"{api_name}_downloads", show_progress="hidden")
            files_step.failure(unlock, None, [box], queue=False, api_visibility="private")
            files_step.then(unlock, None, [box], queue=False, api_visibility="private").then(
                None, None, None, js=SCROLL_JS, queue=False, api_visibility="private")
            # Gradio 6 skips .then steps after an error, so the failure step unlocks too
            work.failure(restore, [state], [chatbot, box], queue=False, api_visibility="private")

        chain(box.submit, show_user, [state, box], respond, [state, box], "chat")
        chain(demo_btn.click, show_fixed("Load the demo scene"), [state], load_demo, [state], "load_demo")
        chain(undo_btn.click, show_fixed("undo"), [state], fixed("undo"), [state], "undo")
        chain(redo_btn.click, show_fixed("redo"), [state], fixed("redo"), [state], "redo")
        chain(reset_btn.click, show_fixed("start over"), [state], fixed("start over"), [state], "start_over")

        def clear_all(s: ChatState) -> dict[Any, Any]:
            """The chat's trash button: a new conversation (scene closed, files deleted)."""
            dialogue.close(s)
            fresh = dialogue.new_state(s.session_id, max_undo=settings.max_undo, max_history=settings.max_history)
            return view(fresh)

        chatbot.clear(clear_all, [state], view_outputs, queue=False, api_visibility="private")

        async def cleanup(request: gr.Request) -> None:
            """Tab closed: free the session now, not an hour later (Gradio keeps a closed session's state 3600 s).

            Runs on the event loop (async), like Gradio's own expiry sweep, so the two never race.
            """
            if request is None or not request.session_hash:
                return
            release_session(demo, request.session_hash)
            shutil.rmtree(settings.work_dir / files_guard.folder(request.session_hash), ignore_errors=True)
            files_guard.release(request.session_hash)  # its uploads too, unless another session uses them

        demo.unload(cleanup)
        if settings.open_demo and dialogue.demo_files():
            # Every new page opens on the bundled real scene, ready for a question (about 1 s).
            demo.load(load_demo, [state], view_outputs, api_visibility="private", show_progress="minimal",
                      show_progress_on=[chatbot], concurrency_id="turn", concurrency_limit=2)
    return demo


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


def _split(message: dict[str, Any] | str | None) -> tuple[str, list[str]]:
    """Text and file paths of a multimodal message (``{"text": ..., "files": [...]}``)."""
    if message is None:
        return "", []
    if isinstance(message, str):
        return message, []
    files = []
    for f in message.get("files") or []:
        files.append(f if isinstance(f, str) else (f.get("path") if isinstance(f, dict) else str(f)))
    return str(message.get("text") or ""), [f for f in files if f]
