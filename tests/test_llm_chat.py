"""The chat streams the LLM explanation after the measured summary (tiny local Llama, seconds)."""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import pytest
from helpers import VIRGINIA
from tiny_models import make_tiny_llama

from chat_app.dialogue import Dialogue, default_services
from chat_app.explain import Explainer
from spex.model.llm import LLMCache, load_llm, resolve_llm


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    folder = make_tiny_llama(tmp_path_factory.mktemp("tiny-llama-chat"))
    return load_llm(resolve_llm(str(folder)), cache=LLMCache(max_models=1))


@pytest.fixture()
def extracted(tmp_path: Path, data_dir: Path):
    dialogue = Dialogue(default_services(), work_dir=tmp_path / "work")
    loaded = dialogue.respond(dialogue.new_state("t"), "", [data_dir / n for n in VIRGINIA])
    after = dialogue.respond(loaded, "extract the water bodies")
    assert after.extraction is not None, after.entries[-1].text
    return dialogue, loaded, after


def test_explanation_streams_into_the_same_reply(tiny_llm, extracted) -> None:
    _, before, after = extracted
    explainer = Explainer("llm", loader=lambda: tiny_llm, max_new_tokens=24)
    explainer.start()
    assert explainer.wait(30) and explainer.status == "ready"
    summary = after.entries[-1].text
    states = list(explainer.stream(before, after))
    assert states, "a new result must get an explanation"
    texts = [s.entries[-1].text for s in states]
    assert all(t.startswith(summary) for t in texts)  # the measured summary stays first
    assert "**Explanation**" in texts[-1] and "writing" not in texts[-1] and "▌" not in texts[-1]
    assert len(after.entries) == len(states[-1].entries)  # the same bubble grows, no new one
    assert after.entries[-1].text == summary  # the given state is never modified
    final = states[-1]
    assert final.extraction is after.extraction and final.turn == after.turn
    # the check ran: source named in the heading
    assert any(w in texts[-1] for w in ("every number checked", "unmeasured numbers removed", "measured template"))


def test_no_explanation_without_a_new_result(tiny_llm, extracted) -> None:
    dialogue, _, after = extracted
    explainer = Explainer("llm", loader=lambda: tiny_llm)
    explainer.start()
    explainer.wait(30)
    question = dialogue.respond(after, "how much area in total?")
    assert list(explainer.stream(after, question)) == []  # a question keeps the same result
    assert list(Explainer("template").stream(question, after)) == []  # setting off: summary only


def test_first_reply_never_waits_for_a_loading_model(extracted) -> None:
    _, before, after = extracted

    def slow():
        time.sleep(5)
        raise RuntimeError("never ready")

    explainer = Explainer("llm", loader=slow)
    explainer.start()
    t0 = time.perf_counter()
    states = list(explainer.stream(before, after))
    assert time.perf_counter() - t0 < 1.0
    assert len(states) == 1 and "still loading" in states[0].entries[-1].text
    explainer.wait(10)
    assert explainer.status == "failed"
    failed = list(explainer.stream(before, after))
    assert "not available" in failed[0].entries[-1].text and "Traceback" not in failed[0].entries[-1].text


def test_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="llm"):
        Explainer("gpt")


def test_chat_handler_is_a_generator(tmp_path: Path, tiny_llm) -> None:
    """The UI's /chat handler yields the summary, then the streamed explanation."""
    from chat_app.settings import Settings
    from chat_app.ui import build_demo

    settings = Settings(work_dir=tmp_path / "w", open_demo=False)
    demo = build_demo(settings, explainer=Explainer("llm", loader=lambda: tiny_llm))
    chat = [f for f in demo.fns.values() if getattr(f, "api_name", None) == "chat"]
    assert chat and inspect.isgeneratorfunction(inspect.unwrap(chat[0].fn))
