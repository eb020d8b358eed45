"""ChatState bookkeeping and the tool layer, without scenes or Gradio."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from chat_app.settings import Settings, parse_settings
from chat_app.state import ChatEntry, ChatState, Snapshot
from chat_app.tools import (
    AnswerArgs, ExtractArgs, RefineArgs, RuleInterpreter, apply_refinement, build_tools, intent_to_call,
    request_from_args,
)
from spex.engine import ExtractionRequest, parse_instruction
from spex.errors import InstructionError

REFINEMENTS = [
    "only keep the ones larger than 5 ha", "just the three largest", "only in the north half", "be stricter",
    "also add wetlands", "remove the ones touching the border", "fill the holes", "now the vegetation instead",
    "exclude clouds", "remove the size filter",
]


def test_fork_is_independent_and_shares_the_scene() -> None:
    s = ChatState(session_id="a")
    s.add(ChatEntry("user", "hi"))
    s.push_undo(Snapshot(None, "no result"))
    f = s.fork()
    f.add(ChatEntry("assistant", "hello"))
    f.push_undo(Snapshot(ExtractionRequest(targets=("water",)), "water"))
    f.add_message(HumanMessage(content="x"))
    assert len(s.entries) == 1 and len(s.undo) == 1 and not s.messages
    assert len(f.entries) == 2 and len(f.undo) == 2
    assert f.scene is s.scene


def test_undo_stack_and_history_are_bounded() -> None:
    s = ChatState(max_undo=3, max_history=5)
    for i in range(10):
        s.push_undo(Snapshot(None, f"step {i}"))
        s.add(ChatEntry("user", f"turn {i}"))
    assert [u.summary for u in s.undo] == ["step 7", "step 8", "step 9"]
    assert [e.text for e in s.entries] == [f"turn {i}" for i in range(5, 10)]


def test_new_action_clears_redo() -> None:
    s = ChatState()
    s.redo.append(Snapshot(None, "x"))
    s.push_undo(Snapshot(None, "y"))
    assert s.redo == []


def test_to_chatbot_renders_text_files_and_existing_images(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG")
    s = ChatState()
    s.add(ChatEntry("user", "look", files=("scene.tif",)))
    s.add(ChatEntry("assistant", "done", image=png))
    s.add(ChatEntry("assistant", "gone", image=tmp_path / "deleted.png"))
    msgs = s.to_chatbot()
    assert msgs[0] == {"role": "user", "content": "Files: `scene.tif`\n\nlook"}
    assert msgs[1]["content"] == "done"
    assert msgs[2]["content"]["path"] == str(png)
    assert [m["content"] for m in msgs[3:]] == ["gone"]  # a deleted image is skipped, not an error
    assert s.transcript() == [("user", "look"), ("assistant", "done"), ("assistant", "gone")]


def test_state_is_deep_copyable_and_hashable() -> None:
    s = ChatState(session_id="x")
    s.add(ChatEntry("user", "hi"))
    c = copy.deepcopy(s)
    assert c.entries == s.entries and c is not s
    assert isinstance(hash(s), int)


def test_rule_interpreter_round_trips_every_refinement_through_the_tools() -> None:
    """parse_instruction's request == the request rebuilt from the tool call it maps to."""
    state = ChatState()
    current = None
    for text in ["extract the water bodies", *REFINEMENTS]:
        intent = parse_instruction(text, current, pixel_area_m2=100.0)
        call = intent_to_call(intent, current)
        if current is None:
            assert call["name"] == "extract"
            rebuilt = request_from_args(ExtractArgs(**call["args"]))
        else:
            assert call["name"] == "refine", text
            rebuilt = apply_refinement(current, RefineArgs(**call["args"]))
        assert rebuilt == intent.request, text
        current = rebuilt
    assert state.request is None


@pytest.mark.parametrize(("text", "tool", "args"), [
    ("undo", "undo", {}), ("redo", "redo", {}), ("start over", "start_over", {}), ("help", "help", {}),
    ("what is the largest one?", "answer_question", {"question": "largest"}),
    ("how much area in total?", "answer_question", {"question": "total_area"}),
    ("show false colour", "set_display", {"mode": "false_colour"}),
])
def test_rule_interpreter_maps_dialogue_commands(text: str, tool: str, args: dict) -> None:
    ai = RuleInterpreter().choose(text, ChatState())
    assert [(c["name"], c["args"]) for c in ai.tool_calls] == [(tool, args)]


def test_rule_interpreter_raises_on_nonsense() -> None:
    with pytest.raises(InstructionError):
        RuleInterpreter().choose("blah blah", ChatState())


def test_tool_schemas_validate_llm_style_arguments() -> None:
    tools = {t.name: t for t in build_tools(None)}
    assert set(tools) == {"extract", "refine", "undo", "redo", "start_over", "answer_question", "measure_shares",
                          "set_display", "help"}
    with pytest.raises(ValueError):
        ExtractArgs(targets=["lava"])
    with pytest.raises(ValueError):
        AnswerArgs(question="meaning of life")
    r = apply_refinement(ExtractionRequest(targets=("water",), strictness=2),
                         RefineArgs(stricter=1, add_targets=["wetland"]))
    assert r.strictness == 2 and r.targets == ("water", "wetland")
    with pytest.raises(RuntimeError):  # schema-only tools cannot act
        tools["undo"].invoke({})


def test_settings_from_cli_and_env() -> None:
    s = parse_settings(["--port", "8081"], env={"GRADIO_SERVER_NAME": "0.0.0.0", "SPEX_CHAT_MODEL": "/m"})
    assert (s.host, s.port, s.backend, s.chat_model) == ("0.0.0.0", 8081, "spectral", "/m")
    assert parse_settings([], env={"GRADIO_SERVER_PORT": "9000"}).port == 9000
    assert parse_settings([], env={}).host == "127.0.0.1"
    assert parse_settings([], env={}).open_demo
    assert not parse_settings(["--no-demo"], env={}).open_demo
    assert not parse_settings([], env={"SPEX_OPEN_DEMO": "0"}).open_demo
    assert Settings(backend="spex").explain_mode == "llm"  # the SPEX refiner; --model only for old checkpoints
    assert Settings(backend="auto", explain="template").explain_mode == "template"
    with pytest.raises(ValueError, match="explanation mode"):
        Settings(explain="always")
    with pytest.raises(ValueError, match="port"):
        Settings(port=0)
