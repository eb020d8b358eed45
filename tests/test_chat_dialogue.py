"""The dialogue state machine on real test crops, without any UI.

``extract`` is wrapped with a counter so the tests can tell which turns recompute
the mask (extract/refine/undo/redo) and which must not (questions, display, errors).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from helpers import VIRGINIA, Counted
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from PIL import Image

from chat_app.dialogue import Dialogue, default_services
from chat_app.llm import LLMInterpreter, parse_tool_calls
from chat_app.state import ChatState
from chat_app.tools import build_tools
from spex.errors import ModelError


@pytest.fixture()
def counted(tmp_path: Path) -> tuple[Dialogue, Counted, Counted]:
    services = default_services()
    extract, opener = Counted(services.extract), Counted(services.open_scene)
    services = dataclasses.replace(services, extract=extract, open_scene=opener)
    return Dialogue(services, work_dir=tmp_path / "work"), extract, opener


@pytest.fixture()
def virginia(data_dir: Path) -> list[Path]:
    return [data_dir / name for name in VIRGINIA]


def loaded(dialogue: Dialogue, files: list[Path]) -> ChatState:
    state = dialogue.respond(dialogue.new_state("t"), "", files)
    assert state.scene is not None, state.entries[-1].text
    return state


def reply(state: ChatState) -> str:
    assert state.entries[-1].role == "assistant"
    return state.entries[-1].text


def test_upload_answers_with_what_was_read(counted, virginia) -> None:  # noqa: ANN001
    dialogue, extract, _ = counted
    state = loaded(dialogue, virginia)
    text = reply(state)
    for expected in ("Scene loaded", "Sentinel-2", "EPSG:32618", "10.00 × 10.00 m", "`nir`", "`swir1`", "Scaling"):
        assert expected in text
    assert state.panel.image is not None and state.panel.image.read_bytes()[:4] == b"\x89PNG"
    assert state.entries[-1].image is not None  # preview shown in the chat (browsers cannot show TIFF)
    assert "<html" in state.panel.map_html.lower()
    assert state.extraction is None and extract.calls == 0
    assert state.entries[0].files == VIRGINIA


def test_extract_refine_chain_applies_every_refinement(counted, virginia) -> None:  # noqa: ANN001
    dialogue, extract, opener = counted
    state = dialogue.respond(loaded(dialogue, virginia), "extract the water bodies")
    ex = state.extraction
    assert ex is not None and ex.request.targets == ("water",) and ex.mask.any()
    assert extract.calls == 1
    text = reply(state)
    assert any(ch.isdigit() for ch in text) and ("ha" in text or "m²" in text)
    names = {p.name for p in state.panel.downloads}
    assert names == {"mask.tif", "regions.geojson", "regions.gpkg", "overlay.png", "spex_report.md"}
    assert all(p.exists() for p in state.panel.downloads)
    assert state.entries[-1].image is not None and state.entries[-1].image.exists()
    chat_image, overlay = state.entries[-1].image, state.panel.image
    assert chat_image.suffix == ".webp" and overlay.name == "overlay.png"  # the panel keeps the full PNG
    assert chat_image.stat().st_size < 0.6 * overlay.stat().st_size  # ~8x smaller on full-size scenes
    with Image.open(chat_image) as light, Image.open(overlay) as full:
        assert light.size == full.size
    bubble = state.to_chatbot()[-1]["content"]
    assert bubble == {"path": str(chat_image), "mime_type": "image/webp"}

    checks = [
        ("only keep the ones larger than 5 ha",
         lambda r, e: r.min_area_m2 == 50_000 and all(g.area_m2 >= 50_000 for g in e.regions)),
        ("just the three largest", lambda r, e: r.keep_largest == 3 and len(e.regions) <= 3),
        ("only in the north half", lambda r, e: r.region == "north"),
        ("be stricter", lambda r, e: r.strictness == 1),
        ("also add wetlands", lambda r, e: r.targets == ("water", "wetland")),
        ("remove the ones touching the border",
         lambda r, e: r.drop_border and not any(g.touches_border for g in e.regions)),
        ("fill the holes", lambda r, e: r.fill_holes),
        ("now the vegetation instead", lambda r, e: r.targets == ("vegetation",)),
        ("exclude clouds", lambda r, e: r.exclude == ("cloud",)),
    ]
    for n, (text, ok) in enumerate(checks, start=2):
        state = dialogue.respond(state, text)
        assert state.extraction is not None, reply(state)
        assert ok(state.request, state.extraction), (text, state.request)
        assert extract.calls == n, text
        assert len(state.undo) == n  # the first entry is "no result"
    assert opener.calls == 1  # refinements never re-read the scene
    kinds = [type(m).__name__ for m in state.messages[-4:]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert state.messages[-3].tool_calls[0]["name"] == "refine"


def test_refinement_never_reads_the_scene_again(counted, virginia) -> None:  # noqa: ANN001
    """After the first extraction, filters and undo are served from the index cache and read memo."""
    dialogue, _, _ = counted
    state = dialogue.respond(loaded(dialogue, virginia), "extract the water bodies")
    scene = state.scene.scene
    reads = Counted(scene.read)
    valids = Counted(scene.valid)
    scene.read, scene.valid = reads, valids  # instance attributes shadow the methods
    try:
        for text in ("only keep the ones larger than 5 ha", "just the three largest", "undo", "fill the holes"):
            state = dialogue.respond(state, text)
            assert state.extraction is not None, reply(state)
    finally:
        del scene.read, scene.valid
    assert (reads.calls, valids.calls) == (0, 0)
    assert state.scene.view.hits > 0


def test_questions_and_display_do_not_recompute(counted, virginia) -> None:  # noqa: ANN001
    dialogue, extract, _ = counted
    state = dialogue.respond(loaded(dialogue, virginia), "extract the water bodies")
    ex = state.extraction
    for question in ("what is the largest one?", "how much area in total?", "how many are there?"):
        state = dialogue.respond(state, question)
        assert state.extraction is ex
        assert any(ch.isdigit() for ch in reply(state)), reply(state)
    assert isinstance(state.messages[-2], ToolMessage) and state.messages[-2].name == "answer_question"
    before = state.panel.image
    state = dialogue.respond(state, "show false colour")
    assert state.false_colour and state.panel.image != before and "false colour" in reply(state)
    assert extract.calls == 1 and state.extraction is ex


def test_undo_redo_and_start_over(counted, virginia) -> None:  # noqa: ANN001
    dialogue, extract, _ = counted
    s0 = loaded(dialogue, virginia)
    assert "Nothing to undo" in reply(dialogue.respond(s0, "undo"))
    s1 = dialogue.respond(s0, "extract the water bodies")
    s2 = dialogue.respond(s1, "only keep the ones larger than 5 ha")
    s3 = dialogue.respond(s2, "undo")
    assert s3.request == s1.request and np.array_equal(s3.extraction.mask, s1.extraction.mask)
    assert "Undone" in reply(s3) and len(s3.redo) == 1
    s4 = dialogue.respond(s3, "redo")
    assert s4.request == s2.request and np.array_equal(s4.extraction.mask, s2.extraction.mask)
    assert "Nothing to redo" in reply(dialogue.respond(s4, "redo"))
    s5 = dialogue.respond(s4, "start over")
    assert s5.extraction is None and s5.scene is s4.scene and s5.panel.downloads[-1].name == "spex_report.md"
    s6 = dialogue.respond(s5, "undo")
    assert s6.request == s2.request
    s7 = dialogue.respond(s3, "be stricter")  # a new action after undo drops the redo branch
    assert s7.redo == [] and s7.request.strictness == 1
    assert extract.calls == 6  # extract, refine, undo, redo, undo-of-reset, stricter
    assert s2.request.min_area_m2 == 50_000  # earlier states are never modified


def test_bad_instruction_leaves_state_unchanged(counted, virginia) -> None:  # noqa: ANN001
    dialogue, extract, _ = counted
    state = dialogue.respond(loaded(dialogue, virginia), "extract the water bodies")
    after = dialogue.respond(state, "blah blah")
    assert after.extraction is state.extraction and after.undo == state.undo and after.panel == state.panel
    text = reply(after)
    assert "Nothing was changed" in text and "extract the water bodies" in text
    assert extract.calls == 1
    assert dialogue.respond(after, "fill the holes").request.fill_holes  # still usable


def test_instruction_without_scene_explains_how_to_start(counted) -> None:  # noqa: ANN001
    dialogue, extract, _ = counted
    state = dialogue.respond(dialogue.new_state("t"), "extract the water bodies")
    assert "No scene is loaded" in reply(state) and state.extraction is None and extract.calls == 0
    assert state.entries[-2].text == "extract the water bodies"


def test_bad_uploads_keep_the_previous_scene(counted, virginia, tmp_path: Path) -> None:  # noqa: ANN001
    dialogue, _, _ = counted
    state = dialogue.respond(loaded(dialogue, virginia), "extract the water bodies")
    notes = tmp_path / "notes.docx"
    notes.write_text("hello")
    bad = dialogue.respond(state, "", [notes])
    assert "not a file type I read" in reply(bad) and ".tif" in reply(bad)
    corrupt = tmp_path / "broken.tif"
    corrupt.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    bad2 = dialogue.respond(bad, "", [corrupt])
    assert "could not read" in reply(bad2).lower()
    for s in (bad, bad2):
        assert s.scene is state.scene and s.extraction is state.extraction
    assert dialogue.respond(bad2, "what is the largest one?").extraction is state.extraction


def test_upload_size_limit_is_reported(virginia, tmp_path: Path) -> None:  # noqa: ANN001
    dialogue = Dialogue(default_services(), work_dir=tmp_path, max_file_size_bytes=1000)
    state = dialogue.respond(dialogue.new_state("t"), "", virginia[:1])
    assert "upload limit" in reply(state) and state.scene is None


def test_new_upload_starts_a_new_scene_context(counted, virginia, data_dir: Path) -> None:  # noqa: ANN001
    dialogue, _, opener = counted
    first = dialogue.respond(loaded(dialogue, virginia), "extract the water bodies")
    old_dir = first.scene.out_dir
    second = dialogue.respond(first, "extract the water bodies", [data_dir / "l7_olinda_crop.tif"])
    assert second.scene is not first.scene and "Landsat" in second.scene.info_text
    assert second.request.targets == ("water",) and second.undo[-1].request is None  # upload + ask in one go
    assert len(second.undo) == 1 and second.redo == []
    assert [e.text for e in second.entries[: len(first.entries)]] == [e.text for e in first.entries]
    assert not old_dir.exists() and opener.calls == 2
    assert "Scene loaded" in second.entries[-2].text and second.entries[-2].image is not None
    assert "water" in reply(second).lower() and second.entries[-1].image is not None


def test_llm_interpreter_json_choice_and_fallback(counted, virginia) -> None:  # noqa: ANN001
    dialogue, extract, _ = counted
    state = loaded(dialogue, virginia)
    model = FakeMessagesListChatModel(responses=[
        AIMessage(content='Sure. {"tool": "extract", "args": {"targets": ["water"], "min_area_m2": 20000}}'),
        AIMessage(content="I think you want lakes."),  # no tool: the rules take over
    ])
    dialogue.interpreter = LLMInterpreter(model)
    s1 = dialogue.respond(state, "please get me the lakes bigger than two hectares")
    assert s1.request.targets == ("water",) and s1.request.min_area_m2 == 20_000
    s2 = dialogue.respond(s1, "just the three largest")
    assert s2.request.keep_largest == 3 and s2.request.min_area_m2 == 20_000
    assert extract.calls == 2


def test_parse_tool_calls_formats() -> None:
    tagged = parse_tool_calls('<tool_call>{"name": "undo", "arguments": {}}</tool_call>')
    assert [(c["name"], c["args"]) for c in tagged] == [("undo", {})]
    bare = parse_tool_calls('{"tool": "answer_question", "args": {"question": "count"}}')
    assert bare[0]["args"] == {"question": "count"}
    assert parse_tool_calls("no json here") == [] and parse_tool_calls("{broken") == []


def test_local_chat_model_loads_offline_generates_and_falls_back(tmp_path: Path) -> None:
    """A tiny random causal LM saved locally: load (no network), generate, fall back to the rules."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from chat_app.llm import LocalChatModel

    words = ["<pad>", "<eos>", "<unk>", "user", "assistant", "system", ":", "extract", "the", "water", "{", "}"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    hf_tok.chat_template = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }}\n{% endfor %}"
                            "{% if add_generation_prompt %}assistant :{% endif %}")
    hf_tok.save_pretrained(tmp_path)
    config = LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=0, eos_token_id=1, bos_token_id=1)
    LlamaForCausalLM(config).save_pretrained(tmp_path)

    model = LocalChatModel(model_path=str(tmp_path), quantization="4bit", max_new_tokens=4).load()
    interp = LLMInterpreter(model)
    ai = interp.choose("extract the water", ChatState())
    assert [c["name"] for c in ai.tool_calls] == ["extract"]  # random weights: no valid call, rules decide
    assert ai.tool_calls[0]["args"]["targets"] == ["water"]
    raw = model.bind_tools(build_tools(None)).invoke("extract the water")
    assert isinstance(raw, AIMessage) and isinstance(raw.content, str)
    with pytest.raises(ModelError, match="nothing is downloaded"):
        LocalChatModel(model_path=str(tmp_path / "missing")).load()


def test_dialogue_with_the_shipped_spex_model(virginia, assets_dir: Path, tmp_path: Path) -> None:
    """`--backend spex`: extraction, refinement and undo run on the model, and the reply says so."""
    from spex.model.backend import SpexBackend

    dialogue = Dialogue(default_services(SpexBackend(assets_dir / "spex-small", device="cpu")),
                        work_dir=tmp_path / "work")
    state = loaded(dialogue, virginia)
    state = dialogue.respond(state, "extract the water bodies", [])
    first = reply(state)
    assert "SPEX model (spex-small" in first, first
    assert "selected where the model's probability > 0.50; MNDWI is measured as evidence" in first, first
    assert state.extraction is not None and state.extraction.selected_pixels > 0
    n_regions = len(state.extraction.regions)
    state = dialogue.respond(state, "only the ones larger than 1 ha", [])
    assert state.extraction is not None and 0 < len(state.extraction.regions) < n_regions
    assert all(r.area_m2 >= 10_000 for r in state.extraction.regions)
    state = dialogue.respond(state, "undo", [])
    assert len(state.extraction.regions) == n_regions
