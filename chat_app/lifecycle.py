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

import contextlib
import fcntl
import gc
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spex.memory import limit_malloc_arenas, return_freed_heap

__all__ = ["KEEP_TURNS", "LOCK_NAME", "SESSION_QUOTA_BYTES", "WorkDirLock", "claim_work_dir", "folder_bytes",
           "limit_malloc_arenas", "prune_turns", "release_session", "sweep_work_dir", "trim_memory"]

log = logging.getLogger(__name__)

#: Turn folders kept per scene besides the current one.
KEEP_TURNS = 3
#: Per-session disk quota (downloads, maps, chat pictures), 64 MiB.
SESSION_QUOTA_BYTES = 64 * 2**20


def trim_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so RSS falls after a session."""
    gc.collect()
    return_freed_heap()


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


#: Lock file a serving process holds (``flock``) on its work folder for its whole life.
LOCK_NAME = ".server.lock"
#: Prefix of the per-process work folders the default settings create (``srv-<pid>``).
SERVER_PREFIX = "srv-"


def _locked_by_live_process(folder: Path) -> bool:
    """True when another live process holds the lock of ``folder`` (the lock dies with its process)."""
    lock = folder / LOCK_NAME
    if not lock.exists():
        return False
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return True  # cannot tell: keep it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _remove(p: Path) -> bool:
    try:
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        return True
    except OSError:
        return False


@dataclass
class WorkDirLock:
    """This server's hold on its work folder: an ``flock`` kept open until :meth:`release` or exit.

    Why: two servers on one machine share Gradio's temp folder; a start-up sweep must remove
    what a *stopped* server left, never the folders of one that is still serving.
    """

    folder: Path
    fd: int | None = None
    shared: bool = False  # another live server holds this same folder: nothing of it was swept

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
            self.fd = None


def claim_work_dir(work_dir: Path) -> WorkDirLock:
    """Lock ``work_dir`` for this process and sweep what stopped servers left (start-up).

    - ``work_dir`` itself: emptied when no other live process holds its lock (a previous run's
      session folders); left alone (``shared``) when one does.
    - Sibling ``srv-*`` folders (the per-process default layout) whose lock no live process
      holds: removed. Folders of live servers and anything else beside ``work_dir`` are kept.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    shared = _locked_by_live_process(work_dir)
    lock = WorkDirLock(work_dir, shared=shared)
    fd = os.open(work_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not shared:  # exclusive only long enough to sweep; then shared, so a later server can see us
            sweep_work_dir(work_dir)
            fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        lock.shared = True
        fcntl.flock(fd, fcntl.LOCK_SH)
    lock.fd = fd
    if shared:
        log.warning("work folder %s is in use by another running server: not swept", work_dir)
    parent, n = work_dir.parent, 0
    if work_dir.name.startswith(SERVER_PREFIX):
        for p in parent.iterdir():
            if p != work_dir and p.name.startswith(SERVER_PREFIX) and p.is_dir() and not _locked_by_live_process(p):
                n += _remove(p)
    if n:
        log.info("removed %d work folder(s) of stopped servers from %s", n, parent)
    return lock


def sweep_work_dir(work_dir: Path, *, older_than_s: float = 0.0) -> int:
    """Remove the session folders in ``work_dir`` (not its lock). Returns how many.

    Call it only on a folder this process holds (:func:`claim_work_dir` does, at start-up).
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    now, n = time.time(), 0
    for p in work_dir.iterdir():
        if p.name == LOCK_NAME:
            continue
        try:
            if now - p.lstat().st_mtime >= older_than_s:
                n += _remove(p)
        except OSError:
            continue
    if n:
        log.info("swept %d leftover session folder(s) from %s", n, work_dir)
    return n
