"""End to end in a real browser: Debian chromium driven by Playwright at 1280×800.

Upload a scene through the multimodal textbox, ask, refine, and check that the
reply, the overlay image and the Leaflet map (inside the srcdoc iframe) appear.
Skipped when chromium is missing, except under CI=true where that is a failure.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import VIRGINIA, free_port

from chat_app.settings import Settings
from chat_app.ui import build_demo, launch_kwargs, make_dialogue

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
TURN_TIMEOUT_MS = 90_000

pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing but CI=true: install Debian's chromium package")
    pytest.skip(f"{CHROMIUM} not installed")


@contextmanager
def _page(url: str) -> Iterator[Any]:
    """A 1280x800 page of Debian's chromium, opened on ``url``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url, wait_until="load")
            yield page
        finally:
            browser.close()


def _settled_width(locator: Any, timeout_s: float = 10.0) -> float:
    """On-screen width of an element once it stops changing (Leaflet zooms with an animation)."""
    deadline, last = time.monotonic() + timeout_s, -1.0
    while time.monotonic() < deadline:
        box = locator.bounding_box()
        width = box["width"] if box else 0.0
        if width == last and width > 0:
            return width
        last = width
        time.sleep(0.5)
    return max(last, 0.0)


def _serve(settings: Settings, dialogue=None) -> tuple[object, str]:  # noqa: ANN001
    demo = build_demo(settings, dialogue)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=settings.port, quiet=True,
                            **launch_kwargs(settings))
    return demo, url


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require_chromium()
    port = free_port()
    # empty start, so the assertions below can only be met by the upload
    settings = Settings(work_dir=tmp_path_factory.mktemp("browser_work"), port=port, open_demo=False)
    dialogue = make_dialogue(settings)
    respond = dialogue.respond

    def respond_or_crash(state, text="", files=(), progress=None):  # noqa: ANN001, ANN202
        if text == "crash now":  # an unexpected bug inside a turn, to test the .failure path
            raise RuntimeError("injected failure")
        return respond(state, text, files, progress)

    dialogue.respond = respond_or_crash
    demo, url = _serve(settings, dialogue)
    try:
        yield url
    finally:
        demo.close()


def test_upload_ask_refine_in_the_browser(app_url: str, data_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with _page(app_url) as page:
        chat = page.locator("#spex-chat")
        box = page.locator("#spex-input textarea")
        expect(box).to_be_visible(timeout=30_000)

        page.locator("#spex-input input[type=file]").set_input_files([str(data_dir / n) for n in VIRGINIA])
        thumbs = page.locator("#spex-input").get_by_role("listitem", name="File thumbnail")
        expect(thumbs).to_have_count(3, timeout=30_000)
        box.fill("extract the water bodies")
        box.press("Enter")
        expect(chat).to_contain_text("Scene loaded", timeout=TURN_TIMEOUT_MS)
        expect(chat).to_contain_text("Sentinel-2", timeout=TURN_TIMEOUT_MS)
        expect(chat.locator("img").first).to_be_visible(timeout=TURN_TIMEOUT_MS)
        expect(box).to_be_editable(timeout=TURN_TIMEOUT_MS)
        n_images = chat.locator("img").count()
        assert n_images >= 2  # preview + overlay
        # the first map fills its panel with the scene (fitted once laid out), not a world view
        first_map = page.frame_locator("#spex-map iframe").locator(".leaflet-image-layer").first
        assert _settled_width(first_map) > 150

        box.fill("only keep the ones larger than 5 ha")
        box.press("Enter")
        expect(chat).to_contain_text("larger than 5 ha", timeout=TURN_TIMEOUT_MS)
        expect(box).to_be_editable(timeout=TURN_TIMEOUT_MS)

        frame = page.frame_locator("#spex-map iframe")
        expect(frame.locator(".leaflet-container")).to_be_visible(timeout=30_000)
        expect(frame.locator(".leaflet-image-layer").first).to_be_attached(timeout=30_000)
        downloads = page.locator("#spex-downloads")
        for name in ("mask", "regions", "overlay", "spex_report"):  # shown as "mask .tif" etc.
            expect(downloads).to_contain_text(re.compile(rf"{name}\s*\."), timeout=30_000)
        page.screenshot(path=str(tmp_path / "chat_1280x800.png"))
        if os.environ.get("SPEX_SCREENSHOT_DIR"):
            page.screenshot(path=str(Path(os.environ["SPEX_SCREENSHOT_DIR"]) / "chat_1280x800.png"))

        box.fill("crash now")
        box.press("Enter")
        expect(chat).to_contain_text("something went wrong", timeout=TURN_TIMEOUT_MS)
        expect(box).to_be_editable(timeout=TURN_TIMEOUT_MS)
        box.fill("what is the largest one?")
        box.press("Enter")
        expect(chat).to_contain_text("The largest", timeout=TURN_TIMEOUT_MS)  # state survived the crash

        page.get_by_role("tab", name="Image").click()
        expect(page.locator("#spex-image img")).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="↶ Undo").click()
        expect(chat).to_contain_text("Undone", timeout=TURN_TIMEOUT_MS)


def test_page_opens_on_the_demo_scene(tmp_path: Path) -> None:
    """`python app.py` opens on the bundled real scene: preview and map are there before any click."""
    from playwright.sync_api import expect

    _require_chromium()
    demo, url = _serve(Settings(work_dir=tmp_path / "work", port=free_port()))
    try:
        with _page(url) as page:
            chat = page.locator("#spex-chat")
            expect(chat).to_contain_text("Scene loaded", timeout=TURN_TIMEOUT_MS)
            expect(chat).to_contain_text("Sentinel-2", timeout=TURN_TIMEOUT_MS)
            frame = page.frame_locator("#spex-map iframe")
            expect(frame.locator(".leaflet-container")).to_be_visible(timeout=30_000)
            box = page.locator("#spex-input textarea")
            expect(box).to_be_editable(timeout=TURN_TIMEOUT_MS)
            box.fill("extract the water bodies")
            box.press("Enter")
            expect(chat).to_contain_text("Found", timeout=TURN_TIMEOUT_MS)
    finally:
        demo.close()
