"""Session lifecycle: free a visitor's state, memos and files when they leave; bound disk per session.

Why: Gradio keeps a closed session's state for an hour (``STATE_TTL_WHEN_CLOSED`` = 3600 s),
so a scene, its index cache and read memo (hundreds of MB) outlived the visitor; and every
turn's downloads stayed on disk for the whole session.

Disk quota: a session keeps the folders of its current turn and of the last
:data:`KEEP_TURNS` turns (what undo/redo can show again without a recomputation); older turn
folders are removed and regenerated on demand (undo recomputes from the request). With a
few MB per turn this holds a session under :data:`SESSION_QUOTA_BYTES`; a session over the
quota drops its oldest turn folders first.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import shutil
import time
from pathlib import Path
from typing import Any

__all__ = ["KEEP_TURNS", "SESSION_QUOTA_BYTES", "folder_bytes", "prune_turns", "release_session", "sweep_work_dir",
           "trim_memory"]

log = logging.getLogger(__name__)

#: Turn folders kept per scene besides the current one.
KEEP_TURNS = 3
#: Per-session disk quota (downloads, maps, chat pictures), 64 MiB.
SESSION_QUOTA_BYTES = 64 * 2**20


def trim_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so RSS falls after a session."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def release_session(demo: Any, session_hash: str) -> None:
    """Delete a closed session's Gradio state now (each gr.State's delete_callback runs), then trim memory."""
    holder = getattr(demo, "state_holder", None)
    if holder is None or session_hash not in holder:
        return
    try:
        holder.delete_state(session_hash)
        holder.session_data.pop(session_hash, None)
        holder.time_last_used.pop(session_hash, None)
    except Exception:  # cleaning up is best effort: the expiry sweep will catch what is left
        log.warning("could not release session %s", session_hash[:8], exc_info=True)
    trim_memory()


def folder_bytes(path: Path) -> int:
    """Bytes of all files under ``path`` (0 if missing)."""
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prune_turns(scene_dir: Path, current: int, *, keep: int = KEEP_TURNS, quota: int = SESSION_QUOTA_BYTES,
                session_dir: Path | None = None) -> list[Path]:
    """Remove turn folders older than the last ``keep`` (and more while the session is over ``quota``).

    Returns the folders removed. The current turn's folder is never removed.
    """
    turns = sorted((p for p in scene_dir.glob("turn-*") if p.is_dir()), key=lambda p: p.name)
    current_name = f"turn-{current:03d}"
    old = [p for p in turns if p.name < current_name]
    removed = old[: max(0, len(old) - keep)]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    rest = [p for p in old if p not in removed]
    root = session_dir or scene_dir
    while rest and folder_bytes(root) > quota:
        p = rest.pop(0)
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    chat = root / "chat"
    if chat.is_dir():  # inline chat pictures: light copies; keep the newest ones under a quarter of the quota
        pics = sorted(chat.iterdir(), key=lambda p: p.name)
        total = sum(p.stat().st_size for p in pics)
        while pics and total > quota // 4:
            p = pics.pop(0)
            total -= p.stat().st_size
            p.unlink(missing_ok=True)
    return removed


def sweep_work_dir(work_dir: Path, *, older_than_s: float = 0.0) -> int:
    """Remove session folders left by a stopped server (at start-up: all of them). Returns how many."""
    work_dir.mkdir(parents=True, exist_ok=True)
    now, n = time.time(), 0
    for p in work_dir.iterdir():
        try:
            if now - p.stat().st_mtime >= older_than_s:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
                n += 1
        except OSError:
            continue
    if n:
        log.info("swept %d leftover session folder(s) from %s", n, work_dir)
    return n
