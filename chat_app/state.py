"""Per-session dialogue state: the scene in use, the current result, undo/redo, transcript.

One :class:`ChatState` lives in each visitor's ``gr.State``. A turn never edits the
state it was given: it works on :meth:`ChatState.fork` and returns the fork, so an
exception half-way leaves the session exactly as it was (the "state unchanged"
guarantee the dialogue relies on).
"""

from __future__ import annotations

import html
import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from langchain_core.messages import BaseMessage

if TYPE_CHECKING:  # heavy imports only for type checkers; the state itself is plain data
    from spex.engine import Extraction, ExtractionRequest
    from spex.io import MemoScene, Scene
    from spex.spectral import IndexCache

__all__ = ["ChatEntry", "ChatState", "Panel", "SceneContext", "Snapshot"]

log = logging.getLogger(__name__)

#: MIME types of the pictures a bubble can show (chat copies are WebP, or JPEG/PNG without WebP support).
_IMAGE_TYPES: Final[dict[str, str]] = {
    ".png": "image/png", ".webp": "image/webp", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
}


@dataclass(eq=False)
class SceneContext:
    """An opened scene and its index cache, kept for the whole conversation about it.

    Refinements reuse ``cache`` (indices) and ``view`` (a read memo of the scene used for
    rendering and export), so a scene is read from disk once per upload.
    It holds open datasets, so it is shared (not copied) between forks of a state.
    """

    scene: Scene
    cache: IndexCache
    view: MemoScene
    name: str
    info_text: str
    preview_png: Path
    out_dir: Path
    number: int
    mtl: Path | None = None  # what the scene was opened with, so a hint can reopen it with one change
    bands: tuple[str, ...] | None = None
    sensor: str | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> SceneContext:
        return self  # a read-only resource: copies would reopen files for nothing

    def close(self) -> None:
        """Close the datasets and drop this scene's output files (downloads, maps)."""
        try:
            self.scene.close()
        except Exception:  # closing is best effort: the session goes on regardless
            log.warning("could not close scene %s", self.name, exc_info=True)
        shutil.rmtree(self.out_dir, ignore_errors=True)


@dataclass(frozen=True)
class Snapshot:
    """One undo/redo entry: the request (None = no result) and a one-line summary.

    Masks are not stored: they are recomputed from the cached indices on undo,
    which keeps the memory of 20 entries at a few kilobytes.
    """

    request: ExtractionRequest | None
    summary: str


@dataclass(frozen=True)
class ChatEntry:
    """One bubble of the transcript. ``image`` is a PNG/WebP/JPEG shown inline (browsers cannot show TIFF)."""

    role: str  # "user" | "assistant"
    text: str = ""
    image: Path | None = None
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Panel:
    """What the right-hand side shows: latest image, map HTML and downloadable files."""

    image: Path | None = None
    map_html: str = ""
    downloads: tuple[Path, ...] = ()


@dataclass(eq=False)
class ChatState:
    """Everything one visitor's conversation needs; plain data plus open scene handles."""

    session_id: str = ""
    scene: SceneContext | None = None
    extraction: Extraction | None = None
    undo: list[Snapshot] = field(default_factory=list)
    redo: list[Snapshot] = field(default_factory=list)
    entries: list[ChatEntry] = field(default_factory=list)
    messages: list[BaseMessage] = field(default_factory=list)
    panel: Panel = field(default_factory=Panel)
    false_colour: bool = False
    turn: int = 0
    scenes_loaded: int = 0
    failed_upload: str | None = None  # names of the last upload that did not load (replies then name the scene)
    pending_upload: tuple[Path, ...] = ()
    downloads_pending: bool = False  # the current result's files are written by Dialogue.write_downloads  # files whose bands could not be identified, kept for a band hint
    max_undo: int = 20
    max_history: int = 200

    # ------------------------------------------------------------------ copies
    def fork(self) -> ChatState:
        """A copy whose lists can be changed without touching ``self`` (scene shared)."""
        return replace(self, undo=list(self.undo), redo=list(self.redo),
                       entries=list(self.entries), messages=list(self.messages))

    def __hash__(self) -> int:
        return hash((self.session_id, self.turn, self.scenes_loaded, len(self.entries), self.request))

    # ---------------------------------------------------------------- queries
    @property
    def request(self) -> ExtractionRequest | None:
        """The request behind the current result (None when nothing is extracted)."""
        return None if self.extraction is None else self.extraction.request

    def snapshot(self, summary: str | None = None) -> Snapshot:
        """The current result as an undo entry."""
        if summary is None:
            summary = "no result" if self.request is None else self.request.describe()
        return Snapshot(self.request, summary)

    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) pairs of the conversation, for the Markdown report."""
        return [(e.role, e.text) for e in self.entries if e.text]

    # -------------------------------------------------------------- mutations
    def add(self, entry: ChatEntry) -> None:
        """Append a bubble, dropping the oldest beyond ``max_history``."""
        self.entries.append(entry)
        if len(self.entries) > self.max_history:
            del self.entries[: len(self.entries) - self.max_history]

    def add_message(self, message: BaseMessage) -> None:
        """Append a language-layer message, bounded like the transcript."""
        self.messages.append(message)
        if len(self.messages) > 2 * self.max_history:
            del self.messages[: len(self.messages) - 2 * self.max_history]

    def push_undo(self, snapshot: Snapshot) -> None:
        """Remember ``snapshot`` for undo; a new action invalidates redo."""
        self.undo.append(snapshot)
        if len(self.undo) > self.max_undo:
            del self.undo[: len(self.undo) - self.max_undo]
        self.redo.clear()

    # -------------------------------------------------------------- rendering
    def to_chatbot(self, last: int | None = None) -> list[dict[str, Any]]:
        """The transcript as Gradio ``messages`` (text and inline PNGs).

        ``last``: show only the newest ``last`` bubbles, after a note that the report has the rest;
        Gradio sends the whole chat value at every turn, so this bounds what a turn sends.
        """
        out: list[dict[str, Any]] = []
        entries = self.entries
        if last is not None and len(entries) > last:
            hidden = len(entries) - last
            entries = entries[hidden:]
            out.append({"role": "assistant", "content": f"*{hidden} earlier messages are not shown here; the whole "
                                                        "conversation is in `spex_report.md` (Downloads).*"})
        for e in entries:
            text = e.text
            if e.files:
                names = ", ".join(f"`{n}`" for n in e.files)
                text = f"Files: {names}" + (f"\n\n{text}" if text else "")
            if text:  # what the user typed is shown literally, never rendered as HTML
                out.append({"role": e.role, "content": html.escape(text, quote=False) if e.role == "user" else text})
            if e.image is not None and Path(e.image).exists():
                mime = _IMAGE_TYPES.get(Path(e.image).suffix.lower(), "image/png")
                out.append({"role": e.role, "content": {"path": str(e.image), "mime_type": mime}})
        return out
