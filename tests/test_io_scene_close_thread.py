"""Closing a scene from another thread than the one that opened it is clean (chat sessions do that)."""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path

import pytest
from helpers import VIRGINIA

from chat_app.state import SceneContext
from spex.io import MemoScene, open_scene
from spex.io.scene import Scene
from spex.spectral import IndexCache

DATA = Path(__file__).parent / "data"


def _open() -> Scene:
    """The three-file Virginia crop (plain datasets and co-registration VRTs over them), opened in a
    fresh worker thread as a chat upload is: its thread-local GDAL state starts empty."""
    opened: list[Scene] = []

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scene = open_scene([DATA / name for name in VIRGINIA])
        scene.valid()   # read pixels in the opening thread, as a session does before closing
        opened.append(scene)

    assert _in_thread(run) == []
    return opened[0]


def _datasets(scene: Scene) -> list:
    """Every GDAL dataset the scene holds (VRT readers and the files under them)."""
    readers = {id(s.reader): s.reader for s in scene._sources}
    under = {id(r.src_dataset): r.src_dataset for r in readers.values() if hasattr(r, "src_dataset")}
    return [*readers.values(), *under.values()]


def _in_thread(fn) -> list[BaseException]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=60)
    return errors


def test_scene_closes_from_another_thread(caplog: pytest.LogCaptureFixture) -> None:
    scene = _open()
    held = _datasets(scene)
    assert held and not any(ds.closed for ds in held)
    with caplog.at_level(logging.DEBUG):
        assert _in_thread(scene.close) == []
    assert all(ds.closed for ds in held)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_session_scene_context_closes_cleanly_from_another_thread(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    scene = _open()
    held = _datasets(scene)
    ctx = SceneContext(scene=scene, cache=IndexCache(scene), view=MemoScene(scene), name="virginia",
                       info_text="", preview_png=tmp_path / "preview.png", out_dir=tmp_path / "scene-01", number=1)
    with caplog.at_level(logging.WARNING):
        assert _in_thread(ctx.close) == []
    assert all(ds.closed for ds in held)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
