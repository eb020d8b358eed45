"""The standalone map page: offline resources, layers, pixel-space maps, and a headless-browser run."""

from __future__ import annotations

import base64
import html
import io
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image
from test_export_support import HEIGHT, WIDTH, make_extraction, open_test_scene

from spex.export import render_overlay
from spex.viz import map_html

CHROMIUM = Path("/usr/bin/chromium")
#: Hosts that may appear in the page text: tile template (the only thing fetched, online only),
#: attribution/credit links, the SVG namespace, and bug links in Leaflet's comments.
ALLOWED_HOSTS = {"tile.openstreetmap.org", "www.openstreetmap.org", "leafletjs.com", "www.w3.org",
                 "bugs.chromium.org", "bugzilla.mozilla.org"}


class _ResourceTags(HTMLParser):
    """Collects src/href of every tag that makes the browser load something."""

    LOADING = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src", "embed": "src"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = self.LOADING.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def _page(tmp_path: Path, **kwargs: object) -> tuple[str, int]:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        return map_html(scene, extraction, **kwargs), len(extraction.regions)


def test_map_page_is_complete_and_offline(tmp_path: Path) -> None:
    page, _ = _page(tmp_path)
    assert page.lstrip().lower().startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    parser = _ResourceTags()
    parser.feed(page)
    assert parser.urls == []  # every script and stylesheet is inline
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//[^"']*\.(?:js|css)""", page, re.I)
    for url in re.findall(r"https?://[^\s\"'\\)<>]+", page):
        assert urlparse(url).hostname in ALLOWED_HOSTS, url
    assert "Leaflet 1.9.4" in page or '"1.9.4"' in page  # the vendored copy is inlined
    assert ".leaflet-pane" in page and "url(data:image/png;base64," in page  # its CSS and icons too
    for cdn in ("cdn.jsdelivr.net", "code.jquery.com", "bootstrapcdn", "cdnjs.cloudflare.com"):
        assert cdn not in page
    assert "L.imageOverlay" in page and "data:image/" in page
    assert len(page) < 3_000_000


def test_map_regions_have_tooltips_and_fit_the_scene(tmp_path: Path) -> None:
    page, n_regions = _page(tmp_path)
    assert f"Regions ({n_regions})" in page
    for alias in ("Region #", "Area", "Size class", "Location", "Mean NDWI"):
        assert alias in page
    assert "fitBounds" in page
    assert "OpenStreetMap (online only)" in page


def test_map_uses_given_overlay_png_without_its_caption(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        png = render_overlay(scene, extraction, tmp_path / "overlay.png")
        page = map_html(scene, extraction, overlay_png=png)
    assert "picture: overlay image" in page
    first = re.search(r"L\.imageOverlay\(\s*\"data:image/(?:webp|png);base64,([A-Za-z0-9+/=]+)", page)
    with Image.open(io.BytesIO(base64.b64decode(first.group(1)))) as picture:
        # the scene is 160 x 120; with the caption strip the ratio would be far above 0.75
        assert picture.height / picture.width == pytest.approx(HEIGHT / WIDTH, abs=0.03)


def test_map_of_scene_only_and_of_non_georeferenced_scene(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        page = map_html(scene)
    assert "L.imageOverlay" in page and "Regions (" not in page
    with open_test_scene(tmp_path, georeferenced=False) as scene:
        extraction = make_extraction(scene)
        page = map_html(scene, extraction)
    assert "L.CRS.Simple" in page and "tile.openstreetmap.org" not in page
    assert "not georeferenced" in page and f"Regions ({len(extraction.regions)})" in page


@pytest.mark.browser
def test_map_runs_offline_in_headless_chromium(tmp_path: Path) -> None:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is required for browser tests when CI=true")
        pytest.skip(f"{CHROMIUM} not installed")
    playwright_api = pytest.importorskip("playwright.sync_api")
    sync_playwright, Route = playwright_api.sync_playwright, playwright_api.Route  # noqa: N806
    page_html, n_regions = _page(tmp_path)
    # as the chat app shows it: escaped into an iframe's srcdoc
    host = tmp_path / "host.html"
    host.write_text(f'<!DOCTYPE html><html><body><iframe id="m" style="width:900px;height:600px" '
                    f'srcdoc="{html.escape(page_html, quote=True)}"></iframe></body></html>', encoding="utf-8")
    remote: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        try:
            tab = browser.new_page(viewport={"width": 1000, "height": 700})

            def block_network(route: Route) -> None:  # offline: record and refuse every remote request
                remote.append(route.request.url)
                route.abort()

            tab.route(re.compile(r"^(https?|wss?)://"), block_network)
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            tab.goto(host.as_uri())
            frame = tab.frame_locator("#m")
            frame.locator(".leaflet-overlay-pane path").first.wait_for(timeout=15_000)
            inner = next(f for f in tab.frames if f != tab.main_frame)
            assert inner.evaluate("typeof L") == "object"
            assert inner.evaluate("L.version") == "1.9.4"
            assert frame.locator(".leaflet-image-layer").count() >= 1
            assert frame.locator(".leaflet-overlay-pane path").count() == n_regions
            assert frame.locator(".leaflet-control-layers").count() == 1
            frame.locator(".leaflet-overlay-pane path").first.hover(force=True)
            tooltip = frame.locator(".leaflet-tooltip")
            tooltip.first.wait_for(timeout=5_000)
            assert "Region #" in tooltip.first.inner_text()
        finally:
            browser.close()
    assert errors == []
    assert {urlparse(u).hostname for u in remote} <= {"tile.openstreetmap.org"}
