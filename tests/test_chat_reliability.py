"""Reliability of the chat under odd input: band hints, failed uploads, literal text, disk quota."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import VIRGINIA, write_geotiff

from chat_app.dialogue import Dialogue, default_services
from chat_app.hints import find_hints
from chat_app.lifecycle import KEEP_TURNS, SESSION_QUOTA_BYTES, folder_bytes, sweep_work_dir
from chat_app.state import ChatEntry, ChatState


@pytest.fixture()
def dialogue(tmp_path: Path) -> Dialogue:
    return Dialogue(default_services(), work_dir=tmp_path / "work")


def reply(state: ChatState) -> str:
    assert state.entries[-1].role == "assistant"
    return state.entries[-1].text


def _five_bands(path: Path) -> Path:
    """A 5-band uint16 file without descriptions: its bands cannot be identified."""
    with rasterio.open(Path(__file__).parent / "data" / VIRGINIA[0]) as ds:
        four = ds.read()
    data = np.concatenate([four[:3], four[3:4] // 2 + four[2:3] // 2, four[3:4]]).astype(np.uint16)
    return write_geotiff(path, data, nodata=0)


def test_hints_are_found() -> None:
    h = find_hints("the bands are blue, green, red, rededge1, nir")
    assert h.bands == ("blue", "green", "red", "rededge1", "nir") and h.rest == ""
    assert find_hints("this is a Landsat 8 OLI scene").sensor == "landsat_oli"
    h = find_hints("this is Sentinel-2 L2A, extract the water")
    assert h.sensor == "s2_l2a" and h.rest == "extract the water"
    assert not find_hints("extract the water bodies").any
    assert not find_hints("which class covers most of the scene?").any


def test_unidentified_bands_then_band_names_in_the_chat(dialogue: Dialogue, tmp_path: Path) -> None:
    f = _five_bands(tmp_path / "scene.tif")
    s = dialogue.respond(dialogue.new_state("t"), "", [f])
    if s.scene is not None:
        pytest.skip("identification found the bands of this file on its own")
    text = reply(s)
    assert "--bands" not in text and "the bands are" in text
    s = dialogue.respond(s, "the bands are blue, green, red, rededge1, nir")
    assert s.scene is not None, reply(s)
    assert s.scene.scene.band_names == ("blue", "green", "red", "rededge1", "nir")
    s = dialogue.respond(s, "extract the water bodies")
    assert s.extraction is not None, reply(s)
    bad = dialogue.respond(s, "the bands are blue, green, red")  # same validation as --bands: 3 names, 5 bands
    assert bad.scene is s.scene and "5 bands" in reply(bad)


def test_after_a_failed_upload_every_reply_names_the_scene(dialogue: Dialogue, data_dir: Path,
                                                             tmp_path: Path) -> None:
    s = dialogue.respond(dialogue.new_state("t"), "", [data_dir / n for n in VIRGINIA])
    broken = tmp_path / "l8_B4.tif"
    broken.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    s = dialogue.respond(s, "", [broken])
    assert "Still loaded" in reply(s)
    for text in ("extract the water bodies", "how much area in total?"):
        s = dialogue.respond(s, text)
        assert reply(s).startswith("*Working on **") and "`l8_B4.tif` was not loaded" in reply(s)
    s = dialogue.respond(s, "", [data_dir / n for n in VIRGINIA])
    s = dialogue.respond(s, "extract the water bodies")
    assert "was not loaded" not in reply(s)


def test_uploads_keep_what_they_can(dialogue: Dialogue, data_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    notes = tmp_path / "notes.docx"
    notes.write_bytes(b"x")
    s = dialogue.respond(dialogue.new_state("t"), "", [*(data_dir / n for n in VIRGINIA), png, notes])
    assert s.scene is not None
    assert "`photo.png` skipped: a PNG picture" in reply(s) and "`notes.docx` skipped" in reply(s)
    only_png = dialogue.respond(dialogue.new_state("u"), "", [png])
    assert "PNG picture" in reply(only_png) and "Invalid file type" not in reply(only_png)


def test_user_text_is_shown_literally() -> None:
    s = ChatState()
    s.add(ChatEntry("user", "<img src=x> water"))
    assert s.to_chatbot()[0]["content"] == "&lt;img src=x&gt; water"


def test_disk_stays_under_the_session_quota(dialogue: Dialogue, data_dir: Path) -> None:
    s = dialogue.respond(dialogue.new_state("t"), "", [data_dir / n for n in VIRGINIA])
    turns = ["extract the water bodies", "be stricter", "be looser", "undo", "redo", "just the three largest"] * 2
    for text in turns:
        s = dialogue.respond(s, text)
        assert not reply(s).startswith(("Sorry", "Something")), reply(s)
    folders = list(s.scene.out_dir.glob("turn-*"))
    assert len(folders) <= KEEP_TURNS + 1
    assert folder_bytes(dialogue.session_dir(s)) <= SESSION_QUOTA_BYTES
    assert all(p.exists() for p in s.panel.downloads)  # the current turn's downloads are never pruned


def test_start_up_sweep_removes_leftover_sessions(tmp_path: Path) -> None:
    (tmp_path / "old-session" / "scene-01").mkdir(parents=True)
    (tmp_path / "old-session" / "scene-01" / "mask.tif").write_bytes(b"x")
    assert sweep_work_dir(tmp_path) == 1 and not any(tmp_path.iterdir())
