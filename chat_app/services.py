"""What a :class:`~chat_app.dialogue.Dialogue` is built from: library services, interpreter, progress.

Split from :mod:`chat_app.dialogue` (one concept per module): the injected dependencies of a
turn (the ``spex`` functions it calls, the message interpreter, the progress callback type)
live apart from the turn logic, so tests and :mod:`chat_app.deadline` can swap or wrap them.
``chat_app.dialogue`` re-exports every name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.messages import AIMessage

from chat_app.state import ChatState

if TYPE_CHECKING:
    from spex.engine import Extraction, ExtractionRequest
    from spex.io import Scene
    from spex.spectral import IndexCache

__all__ = ["Interpreter", "Progress", "Services", "default_services"]


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
    #: (scene, false_colour=) -> the stretched background picture, kept per scene for redraws; None = redraw
    preview_image: Callable[..., Any] | None = None


def default_services(backend: Any | None = None) -> Services:
    """The real spex functions; ``backend`` (e.g. SpexBackend) supplies ``extract`` if given."""
    from chat_app.deadline import check_deadline
    from spex import export, io, spectral, viz
    from spex.engine import answer_question, explain
    from spex.engine.reply import shares_reply
    from spex.engine.shares import class_shares
    from spex.engine.streamed import extract_auto

    def measure_shares(scene: Scene, classes: tuple[str, ...], cache: IndexCache) -> str:
        return shares_reply(class_shares(scene, classes, cache), scene)

    def engine_extract(scene: Scene, request: ExtractionRequest, cache: IndexCache) -> Extraction:
        # large scenes tile by tile in bounded memory; each tile checks the turn's time limit
        return extract_auto(scene, request, cache, progress=lambda _done, _total: check_deadline())

    def backend_extract(scene: Scene, request: ExtractionRequest, cache: IndexCache) -> Extraction:
        return backend.extract(scene, request, cache=cache)

    return Services(
        open_scene=io.open_scene, make_cache=spectral.IndexCache,
        extract=engine_extract if backend is None else backend_extract,
        explain=explain, answer_question=answer_question,
        render_preview=export.render_preview, render_overlay=export.render_overlay,
        write_outputs=export.write_outputs, write_report=export.write_report, map_html=viz.map_html,
        chat_image=export.write_lossy_copy, measure_shares=measure_shares, preview_image=export.preview_image,
    )

def _no_progress(fraction: float, desc: str) -> None:
    """Progress sink used when the caller shows none."""
