"""Reliability of the chat: band hints, failed uploads, literal text, disk quota, start-up sweep, session files,
upload cap, turn time limit, GeoJSON across the antimeridian."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from helpers import VIRGINIA, write_geotiff
from shapely.geometry import MultiPolygon, Polygon, shape

from chat_app.access import SessionFiles
from chat_app.deadline import check_deadline, limited_services, run_limited
from chat_app.dialogue import Dialogue, default_services
from chat_app.hints import find_hints
from chat_app.lifecycle import KEEP_TURNS, LOCK_NAME, SESSION_QUOTA_BYTES, claim_work_dir, folder_bytes, sweep_work_dir
from chat_app.settings import Settings
from chat_app.state import ChatEntry, ChatState
from spex.errors import TurnTimeLimit
from spex.export.antimeridian import split_antimeridian, wrap_longitudes


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


_HOLD_LOCK = """
import sys, time
from pathlib import Path
from chat_app.lifecycle import claim_work_dir
lock = claim_work_dir(Path(sys.argv[1]))
print("ready", flush=True)
time.sleep(60)
"""


def test_start_up_sweep_spares_a_running_server(tmp_path: Path) -> None:
    """Two servers share Gradio's temp folder: a start only removes folders of stopped servers."""
    root = tmp_path / "spex_chat"
    live, dead, mine = root / "srv-live", root / "srv-dead", root / "srv-me"
    other = root / "someone-else"
    for d in (live, dead, mine, other):
        (d / "session" / "scene-01").mkdir(parents=True)
        (d / "session" / "scene-01" / "mask.tif").write_bytes(b"x")
    (dead / LOCK_NAME).write_text("")  # a stopped server: its lock file is there, nobody holds it
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(live)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        assert holder.stdout.readline().strip() == "ready"
        (live / "session" / "scene-01").mkdir(parents=True)  # the live server's session, made after its start
        (live / "session" / "scene-01" / "mask.tif").write_bytes(b"x")
        lock = claim_work_dir(mine)
        try:
            assert (live / "session" / "scene-01" / "mask.tif").exists()  # a live server's sessions are kept
            assert not dead.exists()  # a stopped server's folder is removed
            assert other.exists()  # not a server folder: not ours to judge
            assert [p.name for p in mine.iterdir()] == [LOCK_NAME] and not lock.shared
            again = claim_work_dir(live)  # the same folder as a live server: used, never swept
            assert again.shared and (live / "session").exists()
            again.release()
        finally:
            lock.release()
    finally:
        holder.kill()
        holder.wait()
    lock = claim_work_dir(mine)  # the holder died: its folder goes at the next start
    lock.release()
    assert not live.exists()


def test_default_work_folder_is_per_process() -> None:
    a, b = Settings(), Settings()
    assert a.work_dir == b.work_dir and a.work_dir.name == f"srv-{os.getpid()}"


# ----------------------------------------------------------------- session files and uploads

class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _upload(upload_dir: Path, name: str, size: int) -> str:
    d = upload_dir / f"sha-{name}"
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(b"x" * size)
    return str(d / name)


def test_session_files_are_served_only_to_the_browser_of_their_session(tmp_path: Path) -> None:
    work, uploads = tmp_path / "gradio" / "spex_chat" / "srv-1", tmp_path / "gradio"
    files = SessionFiles(work, uploads)
    folder = files.folder("hash-a")
    assert folder != "hash-a" and len(folder) >= 22 and folder == files.folder("hash-a")
    assert folder != SessionFiles(work, uploads).folder("hash-a")  # per-server secret
    mask = work / folder / "scene-01" / "turn-002" / "mask.tif"
    files.register("browser-a", "hash-a")
    files.register("browser-b", "hash-b")
    assert files.may_read("browser-a", str(mask)) is True
    assert files.may_read("browser-b", str(mask)) is False
    assert files.may_read("", str(mask)) is False  # no cookie
    assert files.may_read("browser-b", str(work / folder / ".." / folder / "mask.tif")) is False
    assert files.may_read("browser-a", str(work / "x.tif")) is False  # not in a session folder
    assert files.may_read("browser-a", str(tmp_path / "elsewhere.png")) is None  # Gradio's own rules apply
    up = _upload(uploads, "scene.tif", 10)
    files.record_uploads("browser-a", [up])
    assert files.may_read("browser-a", up) is True and files.may_read("browser-b", up) is False
    assert files.may_read("", up) is False
    files.release("hash-a")
    assert files.may_read("browser-a", str(mask)) is False  # a closed session's files are gone for all
    for i in range(300):  # a flood of made-up session hashes stays bounded; the newest are kept
        files.register("browser-c", f"made-up-{i}")
    assert files.may_read("browser-c", str(work / files.folder("made-up-299") / "x.tif")) is True
    assert files.may_read("browser-c", str(work / files.folder("made-up-0") / "x.tif")) is False


def test_orphan_uploads_are_deleted_quickly_and_capped(tmp_path: Path) -> None:
    clock = _Clock()
    uploads = tmp_path / "gradio"
    files = SessionFiles(tmp_path / "gradio" / "spex_chat" / "srv-1", uploads, orphan_ttl_s=600,
                         orphan_cap_bytes=1000, anonymous_cap_bytes=300, clock=clock)
    used, unused = _upload(uploads, "used.tif", 400), _upload(uploads, "unused.tif", 400)
    files.record_uploads("browser-a", [used, unused])
    assert "no chat turn has used" in files.admit("browser-b", 300)
    assert files.admit("browser-b", 100) is None
    files.claim("hash-a", [used])  # a turn used it: no longer an orphan
    assert files.admit("browser-b", 300) is None
    assert "without a session" in files.admit("", 301)
    anonymous = _upload(uploads, "anon.tif", 200)
    assert files.record_uploads("", [anonymous]) == []
    too_many = _upload(uploads, "anon2.tif", 200)
    assert files.record_uploads("", [too_many]) == [str(Path(too_many).resolve())]  # refused and deleted
    assert not Path(too_many).exists()
    clock.now += 599
    assert files.sweep() == 0
    clock.now += 2
    assert files.sweep() == 2  # the unused and the anonymous upload: gone after 10 min, not 2 h
    assert not Path(unused).exists() and not Path(unused).parent.exists() and not Path(anonymous).exists()
    assert Path(used).exists() and files.orphan_bytes() == 0
    files.release("hash-a")  # the session that used it closed
    assert not Path(used).exists()


# ----------------------------------------------------------------------------- turn time limit

def test_a_turn_past_its_limit_stops_at_the_next_check() -> None:
    calls: list[str] = []

    def slow() -> str:
        for _ in range(200):
            check_deadline()
            time.sleep(0.01)
        calls.append("finished")
        return "done"

    t0 = time.perf_counter()
    with pytest.raises(TurnTimeLimit, match=r"0\.2 s per turn"):
        run_limited(slow, 0.2, lambda: "fallback", grace_s=5.0)
    assert time.perf_counter() - t0 < 2.0 and not calls
    assert run_limited(lambda: "quick", 5.0, lambda: "fallback") == "quick"


def test_a_step_that_overruns_gets_the_fallback_at_the_limit() -> None:
    t0 = time.perf_counter()
    assert run_limited(lambda: time.sleep(3) or "late", 0.2, lambda: "fallback", grace_s=0.1) == "fallback"
    assert time.perf_counter() - t0 < 1.5
    check_deadline()  # outside a turn: no limit


def test_dialogue_turn_over_the_limit_keeps_the_previous_result(dialogue: Dialogue, data_dir: Path) -> None:
    """The dialogue's own error path: a library call past the deadline is answered and changes nothing."""
    services = dialogue.services
    slow_extract = services.extract

    def extract(scene, request, cache):  # noqa: ANN001, ANN202 - the Services signature
        out = slow_extract(scene, request, cache)
        if "vegetation" in request.targets:
            time.sleep(0.6)
        return out

    dialogue.services = limited_services(replace(services, extract=extract))
    s = dialogue.respond(dialogue.new_state("t"), "", [data_dir / n for n in VIRGINIA])
    s = dialogue.respond(s, "extract the water bodies")
    assert s.extraction is not None
    water = s.extraction
    out = run_limited(lambda: dialogue.respond(s, "now the vegetation instead"), 0.5, lambda: s, grace_s=30)
    assert "0.5 s per turn" in reply(out) and "Nothing was changed" in reply(out)
    assert out.extraction is water and out.scene is s.scene
    assert "water" in reply(dialogue.respond(out, "how much area in total?")).lower()


# ------------------------------------------------------------------------------ antimeridian

def test_polygons_across_the_antimeridian_are_cut_into_range() -> None:
    inside = Polygon([(170, 0), (171, 0), (171, 1), (170, 1)])
    assert split_antimeridian(inside) is inside
    past = Polygon([(179.5, 0), (180.5, 0), (180.5, 1), (179.5, 1)])  # what a UTM zone-60 scene gave
    jumped = Polygon([(179.5, 0), (-179.5, 0), (-179.5, 1), (179.5, 1)])  # the same area, wrapped
    for geom in (past, jumped):
        out = split_antimeridian(geom)
        assert isinstance(out, MultiPolygon) and len(out.geoms) == 2
        xy = shapely.get_coordinates(out)
        assert xy[:, 0].min() >= -180 and xy[:, 0].max() <= 180
        assert out.area == pytest.approx(1.0)  # 1 x 1 degree, not a band around the globe
        assert sorted(round(g.bounds[0], 6) for g in out.geoms) == [-180.0, 179.5]
    holed = Polygon([(179, 0), (181, 0), (181, 2), (179, 2)], [[(179.8, 0.5), (180.2, 0.5), (180.2, 1.5),
                                                                  (179.8, 1.5)]])
    out = split_antimeridian(holed)
    assert out.area == pytest.approx(4.0 - 0.4) and out.is_valid
    assert wrap_longitudes([180.39, -180.5, 12.0, 180.0]) == pytest.approx([-179.61, 179.5, 12.0, 180.0])


def test_geojson_of_a_scene_across_180_degrees_keeps_longitudes_in_range(tmp_path: Path) -> None:
    """A lake in UTM zone 60N (EPSG:32660) that straddles 180 degrees at ~52 N (the Aleutians)."""
    import rasterio.warp
    from rasterio.transform import from_origin
    from test_export_support import make_extraction

    from spex.export import write_regions_geojson
    from spex.io import open_scene

    (east,), (north,) = rasterio.warp.transform("EPSG:4326", "EPSG:32660", [180.0], [52.0])
    res, (h, w) = 100.0, (120, 160)
    water = np.zeros((h, w), dtype=bool)
    water[20:60, 40:100] = True  # 40 x 60 px; 180 degrees runs through column ~70
    refl = {"blue": (0.06, 0.04), "green": (0.07, 0.08), "red": (0.04, 0.05), "nir": (0.02, 0.40)}
    data = np.stack([np.where(water, wv, veg) for wv, veg in refl.values()])
    data = (data * 10000 + np.random.default_rng(0).normal(0, 40, (4, h, w))).clip(1, 10000).astype(np.uint16)
    path = write_geotiff(tmp_path / "aleutians.tif", data, crs="EPSG:32660",
                         transform=from_origin(east - 70 * res, north + 40 * res, res, res),
                         descriptions=("B02", "B03", "B04", "B08"))
    with open_scene(path, bands=["blue", "green", "red", "nir"]) as scene:
        extraction = make_extraction(scene)
        doc = json.loads(write_regions_geojson(extraction, scene, tmp_path / "regions.geojson").read_text())
    lake = doc["features"][0]
    geom = shape(lake["geometry"])
    xy = shapely.get_coordinates(geom)
    assert xy[:, 0].min() >= -180.0 and xy[:, 0].max() <= 180.0, xy[:, 0].max()  # was up to 180.39
    assert isinstance(geom, MultiPolygon) and geom.is_valid
    assert {np.sign(g.centroid.x) for g in geom.geoms} == {-1.0, 1.0}  # one piece each side of 180
    assert max(g.bounds[2] - g.bounds[0] for g in geom.geoms) < 1.0  # no piece spans the globe
    laea = "+proj=laea +lat_0=52 +lon_0=180 +datum=WGS84 +units=m"
    area = shape(rasterio.warp.transform_geom("EPSG:4326", laea, lake["geometry"])).area
    assert area == pytest.approx(water.sum() * res**2, rel=0.01)
    assert -180.0 <= lake["properties"]["centroid_lon"] <= 180.0
