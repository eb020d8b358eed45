"""The language model's explanation in the chat, streamed after the fast measured summary.

Dialogue-side glue only (no numerics): a turn first answers with the engine's measured
summary; then, when that turn produced a new result, :meth:`Explainer.stream` yields forks
of the state whose last reply grows as the LLM writes (``spex.model.explain``), and ends
with the fact-checked text (sentences with unmeasured numbers removed, or a visible
fallback). The UI handler is a generator that yields the summary, then these states.

The LLM (default: the shipped SmolLM2-135M-Instruct) loads once, in a background thread
started with the app, and is shared read-only by all sessions; until it is ready a turn
keeps its summary and says that the explanation is still loading, so the first reply
never waits for it. ``SPEX_CHAT_EXPLAIN=template`` turns the LLM off (summary only).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from chat_app.state import ChatState

__all__ = ["EXPLAIN_MODES", "Explainer"]

log = logging.getLogger(__name__)

EXPLAIN_MODES = ("llm", "template")
#: Seconds between two streamed updates of the reply (each update re-sends the transcript).
UPDATE_EVERY_S = 0.15
_HEADING = "**Explanation**"


def _default_loader(llm: str | None, quantization: str | None) -> Callable[[], Any]:
    def load() -> Any:
        from spex.model.llm import load_llm, resolve_llm

        return load_llm(resolve_llm(llm, quantization))
    return load


class Explainer:
    """One per app: the background-loaded LLM and the streaming of an explanation.

    Args:
        mode: "llm" (stream the generated explanation) or "template" (measured summary only).
        llm: ``--llm`` option (None: ``SPEX_LLM`` or the shipped SmolLM2 GGUF).
        quantization: "4bit" / "8bit" / None for the LLM (bitsandbytes).
        loader: returns a loaded LLM (``spex.model.llm.LoadedLLM``); tests pass a tiny one.
        max_new_tokens: length bound of one explanation.
        preload: load the LLM even in template mode (the SPEX refiner of ``--backend auto`` needs it).
    """

    def __init__(self, mode: str = "llm", llm: str | None = None, quantization: str | None = None, *,
                 loader: Callable[[], Any] | None = None, max_new_tokens: int = 96, preload: bool = False) -> None:
        if mode not in EXPLAIN_MODES:
            raise ValueError(f"invalid explanation mode {mode!r}; expected one of {EXPLAIN_MODES}")
        self.mode = mode
        self.max_new_tokens = max_new_tokens
        self.preload = preload
        self._loader = loader or _default_loader(llm, quantization)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._llm: Any = None
        self._error: str | None = None
        self._started: float | None = None
        self.load_seconds: float | None = None

    # ------------------------------------------------------------ loading
    def start(self) -> None:
        """Begin loading the LLM in the background (idempotent; nothing in template mode)."""
        if self.mode != "llm" and not self.preload:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._started = time.perf_counter()
            self._thread = threading.Thread(target=self._load, name="spex-llm-load", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            llm = self._loader()
        except Exception as exc:  # a broken model must never break the chat: summaries go on
            from spex.errors import user_message

            log.warning("the explanation LLM could not be loaded", exc_info=True)
            with self._lock:
                self._error = user_message(exc, action="loading the language model")
            return
        with self._lock:
            self._llm = llm
            self.load_seconds = time.perf_counter() - (self._started or time.perf_counter())
        log.info("explanation LLM %s ready after %.1f s", getattr(llm, "name", "?"), self.load_seconds)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until loading ended (tests, benchmarks); True when the LLM is ready."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._llm is not None

    def loaded(self) -> Any | None:
        """The LLM when ready, else None (never blocks: a provider for the SPEX refiner)."""
        with self._lock:
            return self._llm

    @property
    def status(self) -> str:
        """"off", "idle" (not started), "loading", "ready" or "failed"."""
        with self._lock:
            if self.mode != "llm" and not self.preload:
                return "off"
            if self._llm is not None:
                return "ready"
            if self._error is not None:
                return "failed"
            return "loading" if self._thread is not None else "idle"

    # ---------------------------------------------------------- streaming
    def applies(self, before: ChatState, after: ChatState) -> bool:
        """True when ``after`` is a turn that produced a new result with a reply to extend."""
        return (self.mode == "llm" and after.extraction is not None and after.extraction is not before.extraction
                and after.turn > before.turn and bool(after.entries) and after.entries[-1].role == "assistant"
                and after.scene is not None)

    def stream(self, before: ChatState, after: ChatState) -> Iterator[ChatState]:
        """Forks of ``after`` whose last reply carries the explanation as it is written.

        Yields nothing when the turn has no new result (questions, display changes, failures).
        The last state yielded holds the checked explanation; a generation error keeps the
        summary and says so.
        """
        if not self.applies(before, after):
            return
        status = self.status
        if status == "idle":
            self.start()
            status = self.status
        if status in ("loading", "failed"):
            note = (f"*(The language model's explanation is not available: {self._error} The measured summary "
                    "above is complete.)*" if status == "failed" else
                    f"*(The language model is still loading ({self._elapsed():.0f} s so far); its explanation "
                    "follows from the next result on. The measured summary above is complete.)*")
            yield self._with_reply(after, f"{after.entries[-1].text}\n\n{note}")
            return
        yield from self._generate(after)

    def _generate(self, after: ChatState) -> Iterator[ChatState]:
        from spex.engine.request import TARGET_LABELS
        from spex.model.explain import check_explanation, stream_explanation
        from spex.model.facts import extraction_facts

        llm, ex, scene = self._llm, after.extraction, after.scene.scene
        summary = after.entries[-1].text
        words = next((e.text for e in reversed(after.entries) if e.role == "user" and e.text), "")
        words = f"{words} (current result: {ex.request.describe()})" if words else ex.request.describe()
        facts = extraction_facts(ex)
        lead = "I selected the " + " and ".join(TARGET_LABELS[t] for t in ex.request.targets)
        ignore = [scene.sensor, llm.name, "SmolLM2", "SmolLM2-135M"]
        head = f"{summary}\n\n{_HEADING} *({llm.name}, writing…)*: "
        timings: dict = {}
        raw, last = "", 0.0
        try:
            for piece in stream_explanation(llm, words, facts, scene_text=scene.sensor, timings=timings,
                                            max_new_tokens=self.max_new_tokens, lead=lead):
                raw += piece
                now = time.perf_counter()
                if now - last >= UPDATE_EVERY_S:
                    last = now
                    yield self._with_reply(after, head + raw + " ▌")
        except Exception:  # generation failed half-way: the summary stands, said plainly
            log.warning("explanation generation failed", exc_info=True)
            yield self._with_reply(after, f"{summary}\n\n*(The language model's explanation failed; the measured "
                                          "summary above is complete.)*")
            return
        checked = check_explanation(raw, facts, ex, ignore=ignore)
        how = {"llm": "every number checked against the measured facts",
               "llm-repaired": "sentences with unmeasured numbers removed",
               "template": "generated text rejected; measured template"}[checked.source]
        took = timings.get("total_s")
        first = timings.get("first_token_s")
        timing = f"; first words {first:.1f} s, {took:.1f} s in all" if first is not None and took else ""
        log.info("explanation %s: first token %s s, total %s s", checked.source, first, took)
        yield self._with_reply(after, f"{summary}\n\n{_HEADING} *({llm.name}: {how}{timing})*: {checked.text}")

    def _elapsed(self) -> float:
        return time.perf_counter() - self._started if self._started is not None else 0.0

    @staticmethod
    def _with_reply(state: ChatState, text: str) -> ChatState:
        """A fork of ``state`` whose last (assistant) entry says ``text``."""
        out = state.fork()
        out.entries[-1] = replace(out.entries[-1], text=text)
        if out.messages and getattr(out.messages[-1], "type", "") == "ai":
            from langchain_core.messages import AIMessage

            out.messages[-1] = AIMessage(content=text)
        return out

