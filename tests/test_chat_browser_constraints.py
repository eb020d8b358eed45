"""The constraint examples of issue 12 in a real browser (Debian chromium + Playwright), on the demo scene:
a threshold used as given, "water but not the sea", a class-share question, and a merged result whose
map has a class legend. Skipped without chromium (a failure under CI=true), like tests/test_chat_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import free_port
from test_chat_browser import TURN_TIMEOUT_MS, _page, _require_chromium, _serve

from chat_app.settings import Settings

pytestmark = pytest.mark.browser


def test_constraints_in_the_browser(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _require_chromium()
    demo, url = _serve(Settings(work_dir=tmp_path / "work", port=free_port()))
    try:
        with _page(url) as page:
            chat = page.locator("#spex-chat")
            box = page.locator("#spex-input textarea")
            expect(chat).to_contain_text("Scene loaded", timeout=TURN_TIMEOUT_MS)
            expect(box).to_be_editable(timeout=TURN_TIMEOUT_MS)

            def ask(text: str, expected: str) -> None:
                box.fill(text)
                box.press("Enter")
                expect(chat).to_contain_text(expected, timeout=TURN_TIMEOUT_MS)
                expect(box).to_be_editable(timeout=TURN_TIMEOUT_MS)

            ask("vegetation with NDVI above 0.6", "as you asked; this scene's adaptive threshold is")
            ask("now the water instead", "Filters on the class change")
            ask("water but not the sea", "Part rule, sea =")
            ask("which class covers most of the scene?", "covers most of the scene")
            ask("also add bare soil", "Per class")
            legend = page.frame_locator("#spex-map iframe").locator(".spex-legend")
            expect(legend).to_contain_text("bare soil", timeout=TURN_TIMEOUT_MS)
            expect(legend).to_contain_text("water bodies", timeout=TURN_TIMEOUT_MS)
    finally:
        demo.close()
