"""Constraints through the chat and the CLI on the synthetic coastal scene: thresholds used as given,
parts of the water, class shares, the class-change note, merged results with per-class totals."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_spex
from synthetic_water import write_scene

from chat_app.dialogue import Dialogue, default_services
from chat_app.state import ChatState


@pytest.fixture()
def chat(tmp_path: Path) -> tuple[Dialogue, ChatState]:
    dialogue = Dialogue(default_services(), work_dir=tmp_path / "work")
    scene = write_scene(tmp_path / "coast.tif")
    state = dialogue.respond(dialogue.new_state("c"), "", [scene])
    assert state.scene is not None, state.entries[-1].text
    return dialogue, state


def say(dialogue: Dialogue, state: ChatState, text: str) -> tuple[ChatState, str]:
    state = dialogue.respond(state, text)
    return state, state.entries[-1].text


def test_threshold_part_and_share_turns(chat) -> None:  # noqa: ANN001
    dialogue, state = chat
    state, text = say(dialogue, state, "vegetation with NDVI above 0.6")
    assert "**Your thresholds:** NDVI > 0.60 (as you asked; this scene's adaptive threshold is" in text
    assert state.request is not None and state.request.index_limits
    state, text = say(dialogue, state, "now the water instead")
    assert text.startswith("**Filters on the class change:** Dropped") and "NDVI > 0.60" in text
    state, text = say(dialogue, state, "water but not the sea")
    assert "Part rule, sea = " in text and "removed" in text and "Found 3 regions" in text
    state, text = say(dialogue, state, "the largest lake")
    assert "Found 1 region" in text and "4.41 ha" in text
    before = state.extraction
    state, text = say(dialogue, state, "which class covers most of the scene?")
    assert "**vegetation** covers most of the scene" in text and "| water bodies |" in text
    assert state.extraction is before  # a question: the current result stays
    state, text = say(dialogue, state, "how much is vegetation vs water?")
    assert "times as much" in text


def test_refusals_keep_the_result(chat, tmp_path: Path) -> None:  # noqa: ANN001
    dialogue, state = chat
    state, _ = say(dialogue, state, "extract the water")
    kept = state.extraction
    state, text = say(dialogue, state, "vegetation with NDVI above 6")
    assert "lies between -1 and 1" in text and state.extraction is kept
    inland = write_scene(tmp_path / "inland.tif", sea=False)
    state = dialogue.respond(state, "", [inland])
    state, _ = say(dialogue, state, "extract the water")
    kept = state.extraction
    state, text = say(dialogue, state, "water but not the sea")
    assert "so I found no sea" in text and "Nothing was changed" in text and state.extraction is kept


def test_merged_result_reply_has_per_class_totals(chat) -> None:  # noqa: ANN001
    dialogue, state = chat
    state, _ = say(dialogue, state, "extract the water")
    state, text = say(dialogue, state, "also add bare soil")
    assert "Per class" in text and "| bare soil / sand |" in text and "| # | class |" in text


def test_cli_applies_constraints(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "coast.tif")
    out = run_spex("extract", str(scene), "--query", "vegetation with NDVI above 0.6", "--out", str(tmp_path / "a"))
    assert out.returncode == 0, out.stderr
    assert "NDVI > 0.60 (as you asked; this scene's adaptive threshold is" in out.stdout
    out = run_spex("extract", str(scene), "--query", "which class covers most of the scene?",
                   "--out", str(tmp_path / "b"))
    assert out.returncode == 0 and "**vegetation** covers most of the scene" in out.stdout, out.stderr
    inland = write_scene(tmp_path / "inland.tif", sea=False)
    out = run_spex("extract", str(inland), "--query", "water but not the sea", "--out", str(tmp_path / "c"))
    assert out.returncode == 2 and "so I found no sea" in out.stderr


def test_tool_calls_carry_the_constraints() -> None:
    from chat_app.tools import ExtractArgs, RefineArgs, apply_refinement, intent_to_call, request_from_args
    from spex.engine import parse_instruction

    fresh = parse_instruction("vegetation with NDVI between 0.3 and 0.5")
    call = intent_to_call(fresh, None)
    assert request_from_args(ExtractArgs(**call["args"])) == fresh.request
    water = parse_instruction("water but not the sea").request
    for text in ("only the rivers", "the largest lake", "make it MNDWI > 0.3", "include the sea again"):
        intent = parse_instruction(text, water)
        call = intent_to_call(intent, water)
        rebuilt = (apply_refinement(water, RefineArgs(**call["args"])) if call["name"] == "refine"
                   else request_from_args(ExtractArgs(**call["args"])))
        assert rebuilt == intent.request, text
    shares = intent_to_call(parse_instruction("how much is vegetation vs water?"), None)
    assert shares == {**shares, "name": "measure_shares", "args": {"classes": ["vegetation", "water"]}}


def test_hints_sent_with_the_upload_apply_to_it(tmp_path: Path) -> None:
    """'this is a Landsat 8 OLI scene, extract the water' with the band files: sensor applied, then the instruction."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    files = []
    for band in ("B2", "B3", "B4", "B5", "B6", "B7"):
        path = tmp_path / f"scene_{band}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=40, height=40, count=1, dtype="uint16",
                           crs="EPSG:32633", transform=from_origin(500000, 5000000, 30, 30)) as ds:
            ds.write(rng.integers(7000, 12000, (40, 40)).astype("uint16"), 1)
        files.append(path)
    dialogue = Dialogue(default_services(), work_dir=tmp_path / "work")
    state = dialogue.respond(dialogue.new_state("h"), "this is a Landsat 8 OLI scene, extract the water", files)
    texts = [e.text for e in state.entries if e.role == "assistant"]
    assert texts[0].startswith("Applied sensor landsat_oli from your message") and "Landsat 8/9 OLI" in texts[0]
    assert "Sorry" not in texts[-1] and "**Request:** water bodies" in texts[-1], texts[-1]
