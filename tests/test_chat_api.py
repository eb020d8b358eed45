"""The app served in-process and driven through gradio_client, like a remote user would."""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import rasterio
from gradio_client import Client, handle_file
from helpers import VIRGINIA, free_port
from shapely.geometry import shape

from chat_app.settings import Settings, gradio_temp_dir
from chat_app.ui import build_demo, launch_kwargs



@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = _work_dir("chat")
    settings = Settings(work_dir=work, port=free_port(), max_file_size_mb=20)
    demo = build_demo(settings)
    demo.queue(default_concurrency_limit=2)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=settings.port,
                            quiet=True, **launch_kwargs(settings))
    try:
        yield url
    finally:
        demo.close()
        shutil.rmtree(work, ignore_errors=True)


def _work_dir(name: str) -> Path:
    """A work folder inside Gradio's cache, as in production (outside it, Gradio serves copies of the outputs)."""
    return gradio_temp_dir() / "spex_chat" / f"test-{name}-{secrets.token_hex(4)}"


def client(url: str, tmp_path: Path) -> Client:
    return Client(url, verbose=False, download_files=str(tmp_path), analytics_enabled=False)


def chat(c: Client, text: str = "", files: tuple[Path, ...] = ()) -> dict:
    """One turn through the public ``/chat`` endpoint; returns the rendered outputs by name."""
    chatbot, image, map_html, downloads = c.predict(
        {"text": text, "files": [handle_file(str(f)) for f in files]}, api_name="/chat")
    # the reply shows the overlay first; the downloads are written by the chain's next step
    later_files, later_map = c.predict(api_name="/chat_downloads")
    if isinstance(later_files, list) and later_files:
        downloads = later_files
    if isinstance(later_map, str) and later_map:
        map_html = later_map
    texts = [part["text"] for m in chatbot if m["role"] == "assistant"
             for part in m["content"] if part.get("type") == "text"]
    return {"chatbot": chatbot, "last_text": texts[-1] if texts else "", "image": image, "map": map_html,
            "map_page": map_page(c, map_html),
            "files": [Path(f) for f in downloads or []]}


def map_page(c: Client, map_html: str) -> str:
    """The map page an iframe of ``map_html`` shows (fetched with ``c``'s cookie), or '' if none."""
    import html as html_lib
    import re

    import httpx

    m = re.search(r'src="([^"]+)"', map_html) if isinstance(map_html, str) else None
    if not m:
        return ""
    r = httpx.get(c.src.rstrip("/") + "/" + html_lib.unescape(m.group(1)), cookies=c.cookies)
    assert r.status_code == 200, r.status_code
    return r.text


def test_api_endpoints_are_listed(app_url: str, tmp_path: Path) -> None:
    info = client(app_url, tmp_path).view_api(print_info=False, return_format="dict")
    names = set(info["named_endpoints"])
    assert {"/chat", "/load_demo", "/undo", "/redo", "/start_over"} <= names


def test_multi_turn_conversation_with_downloads(app_url: str, data_dir: Path, tmp_path: Path) -> None:
    c = client(app_url, tmp_path)
    up = chat(c, files=tuple(data_dir / n for n in VIRGINIA))
    assert "Scene loaded" in up["last_text"] and "Sentinel-2" in up["last_text"]
    assert up["image"] and Path(up["image"]).read_bytes()[:4] == b"\x89PNG"
    # the map page is loaded by URL (a turn does not carry the ~1 MB page), only with this client's cookie
    assert "<iframe" in up["map"] and 'src="gradio_api/file=' in up["map"] and len(up["map"]) < 2000
    assert "leaflet" in up["map_page"].lower()
    import html as html_lib
    import re

    import httpx

    page_url = c.src.rstrip("/") + "/" + html_lib.unescape(re.search(r'src="([^"]+)"', up["map"]).group(1))
    assert httpx.get(page_url).status_code == 404  # another client, even with the URL

    ex = chat(c, "extract the water bodies")
    assert "water" in ex["last_text"].lower() and any(ch.isdigit() for ch in ex["last_text"])
    names = {f.name for f in ex["files"]}
    assert names == {"mask.tif", "regions.geojson", "regions.gpkg", "overlay.png", "spex_report.md"}
    assert "leaflet" in ex["map_page"].lower() and ex["map_page"] != up["map_page"]

    ref = chat(c, "only keep the ones larger than 5 ha")
    assert "5 ha" in ref["last_text"]
    und = chat(c, "undo")
    assert "Undone" in und["last_text"]

    files = {f.name: f for f in und["files"]}
    with rasterio.open(files["mask.tif"]) as ds:
        assert ds.crs is not None and ds.count == 1 and ds.dtypes[0] == "uint8"
        mask = ds.read(1)
        assert ((mask == 1) | (mask == 0) | (mask == 255)).all() and (mask == 1).any()
    gj = json.loads(files["regions.geojson"].read_text())
    assert gj["features"]
    lon, lat = shape(gj["features"][0]["geometry"]).representative_point().coords[0]
    assert -80 < lon < -74 and 36 < lat < 39  # Virginia, in EPSG:4326 degrees
    report = files["spex_report.md"].read_text()
    assert "extract the water bodies" in report and "undo" in report
    # a result turn shows a fast on-screen JPEG; the downloads step then brings the lossless PNG
    assert Path(und["image"]).read_bytes()[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0")


def test_errors_are_replies_and_the_chat_goes_on(app_url: str, data_dir: Path, tmp_path: Path) -> None:
    c = client(app_url, tmp_path)
    assert "No scene is loaded" in chat(c, "extract the water bodies")["last_text"]
    chat(c, files=(data_dir / "l7_olinda_crop.tif",))
    assert "Nothing was changed" in chat(c, "blah blah")["last_text"]
    assert "water" in chat(c, "extract the water bodies")["last_text"].lower()


def test_two_clients_at_once_keep_their_own_scenes(app_url: str, data_dir: Path, tmp_path: Path) -> None:
    results: dict[str, dict] = {}
    errors: list[BaseException] = []

    def session(key: str, files: tuple[Path, ...]) -> None:
        try:
            c = client(app_url, tmp_path / key)
            results[key + "-info"] = chat(c, files=files)
            results[key] = chat(c, "how many water bodies are there?")
            results[key + "-q"] = chat(c, "what is the largest one?")
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=session, args=("s2", tuple(data_dir / n for n in VIRGINIA))),
               threading.Thread(target=session, args=("l7", (data_dir / "l7_olinda_crop.tif",)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert "Sentinel-2" in results["s2-info"]["last_text"] and "Landsat" not in results["s2-info"]["last_text"]
    assert "Landsat" in results["l7-info"]["last_text"]
    # each session's files come from its own folder and its own scene
    s2_files = {f.name for f in results["s2"]["files"]}
    assert "mask.tif" in s2_files
    with rasterio.open(next(f for f in results["s2"]["files"] if f.name == "mask.tif")) as a, \
            rasterio.open(next(f for f in results["l7"]["files"] if f.name == "mask.tif")) as b:
        assert a.crs.to_epsg() == 32618 and b.crs.to_epsg() == 31985
    assert results["s2-q"]["last_text"] != results["l7-q"]["last_text"]


# ------------------------------------------------------------------ session-scoped files, upload cap

def _server_files(c: Client, text: str, files: tuple[Path, ...] = ()) -> list[dict]:
    """One turn plus its downloads step; the server-side FileData of every file it sent."""
    out = c.predict({"text": text, "files": [handle_file(str(f)) for f in files]}, api_name="/chat")
    later = c.predict(api_name="/chat_downloads")
    found: list[dict] = []

    def walk(x: object) -> None:
        if isinstance(x, dict):
            if isinstance(x.get("path"), str) and x.get("url"):
                found.append(x)
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk([out, later])
    return found


def test_outputs_and_uploads_are_served_only_to_their_session(app_url: str, data_dir: Path) -> None:
    import httpx

    owner = Client(app_url, verbose=False, download_files=False, analytics_enabled=False)
    other = Client(app_url, verbose=False, download_files=False, analytics_enabled=False)
    _server_files(owner, "", tuple(data_dir / n for n in VIRGINIA))
    sent = _server_files(owner, "extract the water bodies")
    mask = next(f for f in sent if f["path"].endswith("mask.tif"))
    picture = next(f for f in sent if f["path"].endswith((".webp", ".png", ".jpg")))
    _server_files(other, "help")  # a second, unrelated session with its own cookie
    assert owner.cookies and other.cookies and owner.cookies != other.cookies
    for f in (mask, picture):
        url = f"{app_url.rstrip('/')}/gradio_api/file={f['path']}"
        assert httpx.get(url, cookies=owner.cookies).status_code == 200
        assert httpx.get(url).status_code == 404  # a plain client that knows the path
        assert httpx.get(url, cookies=other.cookies).status_code == 404  # another session
        assert httpx.get(url, cookies={"spex_browser": "guessed"}).status_code == 404
    # the folder name is not the session hash (which an attacker might learn) and cannot be derived from it
    assert owner.session_hash not in mask["path"]
    # an upload: only the client that posted it may read it back
    up = httpx.post(f"{app_url.rstrip('/')}/gradio_api/upload", cookies=owner.cookies,
                    files={"files": ("mine.tif", (data_dir / VIRGINIA[0]).read_bytes())})
    assert up.status_code == 200
    path = up.json()[0]
    url = f"{app_url.rstrip('/')}/gradio_api/file={path}"
    assert httpx.get(url, cookies=owner.cookies).status_code == 200
    assert httpx.get(url).status_code == 404 and httpx.get(url, cookies=other.cookies).status_code == 404
    owner.close()
    other.close()


def test_anonymous_uploads_are_capped(app_url: str) -> None:
    import httpx

    url = f"{app_url.rstrip('/')}/gradio_api/upload"
    first = httpx.post(url, files={"files": ("a.tif", b"\0" * (12 * 2**20))})  # no cookie: anonymous
    assert first.status_code == 200 and "spex_browser" in first.cookies
    second = httpx.post(url, files={"files": ("b.tif", b"\1" * (12 * 2**20))})
    assert second.status_code == 413 and "without a session" in second.text and "20 MB" in second.text
    # nobody can read an anonymous upload back, not even with the cookie it was just given
    path = first.json()[0]
    assert httpx.get(f"{app_url.rstrip('/')}/gradio_api/file={path}", cookies=first.cookies).status_code == 404


# --------------------------------------------------------------------------------- turn time limit

@pytest.fixture(scope="module")
def slow_app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with a 4 s turn limit whose vegetation extraction takes 10 s longer than it should."""
    from dataclasses import replace

    from chat_app.ui import make_dialogue

    settings = Settings(work_dir=_work_dir("slow"), port=free_port(), max_file_size_mb=20,
                        turn_limit_s=4.0, open_demo=False)
    dialogue = make_dialogue(settings)
    fast = dialogue.services.extract

    def extract(scene, request, cache):  # noqa: ANN001, ANN202 - the Services signature
        if "vegetation" in request.targets:
            time.sleep(10)
        return fast(scene, request, cache)

    dialogue.services = replace(dialogue.services, extract=extract)
    demo = build_demo(settings, dialogue)
    demo.queue(default_concurrency_limit=2)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=settings.port,
                            quiet=True, **launch_kwargs(settings))
    try:
        yield url
    finally:
        demo.close()
        shutil.rmtree(settings.work_dir, ignore_errors=True)


def test_a_turn_past_the_time_limit_ends_with_a_message_and_keeps_the_state(slow_app_url: str, data_dir: Path,
                                                                                tmp_path: Path) -> None:
    c = client(slow_app_url, tmp_path)
    chat(c, files=tuple(data_dir / n for n in VIRGINIA))
    water = chat(c, "extract the water bodies")
    assert "water" in water["last_text"].lower()
    t0 = time.perf_counter()
    late = chat(c, "now the vegetation instead")
    took = time.perf_counter() - t0
    assert "4 s per turn" in late["last_text"] and "Nothing was changed" in late["last_text"]
    assert took < 9.0  # answered at the limit, not after the 10 s step
    total = chat(c, "how much area in total?")["last_text"].lower()
    assert "water" in total and "vegetation" not in total  # the previous result is still the one in use
