"""SessionFiles: the per-server registry of which browser may read what, and of orphan uploads.

Split from :mod:`chat_app.access` (one concept per module; the scheme is described there):
this module holds the bookkeeping (session folders named by HMAC, browser -> sessions,
uploads, their TTL and byte caps), thread-safe because Gradio's handlers run in worker
threads and the middleware on the event loop. ``chat_app.access`` re-exports it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SessionFiles"]

log = logging.getLogger(__name__)

_MAX_SESSIONS_PER_BROWSER = 256  # tabs and reloads of one browser
_MAX_BROWSERS = 20_000  # the least recently active are forgotten first


def _real(path: str | Path) -> str:
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def _under(path: str, folder: str) -> str | None:
    """``path`` relative to ``folder`` when inside it, else None (both real paths)."""
    if path == folder or not path.startswith(folder.rstrip(os.sep) + os.sep):
        return None
    return path[len(folder.rstrip(os.sep)) + 1:]


@dataclass
class _Upload:
    size: int
    created: float  # time of the latest upload of this content
    sessions: set[str] = field(default_factory=set)  # session hashes whose turns used it
    owners: set[str] = field(default_factory=set)  # every cookie that posted this content
    claimed: float = 0.0  # time of the latest turn that used it


class SessionFiles:
    """Which browser may read which session folder and upload; orphan uploads and their cap."""

    def __init__(self, work_dir: Path, upload_dir: Path, *, orphan_ttl_s: float = 900.0,
                 orphan_cap_bytes: int = 2**30, anonymous_cap_bytes: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.work_dir = _real(work_dir)
        self.upload_dir = _real(upload_dir)
        self.orphan_ttl_s = orphan_ttl_s
        self.orphan_cap_bytes = orphan_cap_bytes
        self.anonymous_cap_bytes = orphan_cap_bytes // 4 if anonymous_cap_bytes is None else anonymous_cap_bytes
        self.clock = clock
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._browsers: dict[str, dict[str, None]] = {}  # cookie -> session hashes it opened (ordered set)
        self._uploads: dict[str, _Upload] = {}  # real path -> record

    # ------------------------------------------------------------- sessions
    def folder(self, session_hash: str) -> str:
        """The session's folder name: unguessable, and not the session hash itself."""
        mac = hmac.new(self._secret, session_hash.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()

    def new_browser_id(self) -> str:
        return secrets.token_urlsafe(24)

    def register(self, browser: str, session_hash: str) -> None:
        """``browser`` opened ``session_hash`` (its files become readable by it)."""
        if not browser or not session_hash or len(session_hash) > 128:
            return
        with self._lock:
            sessions = self._browsers.pop(browser, {})
            sessions.pop(session_hash, None)
            sessions[session_hash] = None  # an ordered set: most recently opened last
            self._browsers[browser] = sessions  # most recently active last
            while len(sessions) > _MAX_SESSIONS_PER_BROWSER:  # bounded against a flood of made-up hashes
                del sessions[next(iter(sessions))]
            while len(self._browsers) > _MAX_BROWSERS:
                del self._browsers[next(iter(self._browsers))]

    def release(self, session_hash: str) -> int:
        """A session closed: forget it; delete the uploads only it used. Returns uploads deleted."""
        with self._lock:
            for browser in [b for b, s in self._browsers.items() if session_hash in s]:
                self._browsers[browser].pop(session_hash, None)
                if not self._browsers[browser]:
                    del self._browsers[browser]
            gone = []
            for path, up in self._uploads.items():
                if session_hash in up.sessions:
                    up.sessions.discard(session_hash)
                    # posted again since its last use (Gradio stores equal content at one path): an orphan now
                    if not up.sessions and up.created <= up.claimed:
                        gone.append(path)
            for path in gone:
                del self._uploads[path]
        for path in gone:
            self._delete(path)
        return len(gone)

    # -------------------------------------------------------------- reading
    def may_read(self, browser: str, path: str) -> bool | None:
        """True/False for a session file or a recorded upload; None for any other path (Gradio decides)."""
        real = _real(path)
        rel = _under(real, self.work_dir)
        with self._lock:
            if rel is not None:
                folder = rel.split(os.sep, 1)[0]
                return any(self.folder(h) == folder for h in self._browsers.get(browser, ()))
            up = self._uploads.get(real)
            if up is not None:
                return bool(browser) and (browser in up.owners
                                          or any(h in up.sessions for h in self._browsers.get(browser, ())))
        return None

    # -------------------------------------------------------------- uploads
    def admit(self, browser: str, incoming: int) -> str | None:
        """Why an upload of ``incoming`` bytes is refused (None: accepted). Sweeps expired orphans first."""
        self.sweep()
        with self._lock:
            orphans = [u for u in self._uploads.values() if not u.sessions]
            total = sum(u.size for u in orphans)
            anonymous = sum(u.size for u in orphans if not u.owners)
        mb = 2**20
        if not browser and anonymous + incoming > self.anonymous_cap_bytes:
            return (f"Upload refused: uploads without a session are limited to {self.anonymous_cap_bytes / mb:.0f} MB "
                    "in all; open the app page (or let gradio_client fetch /config) first.")
        if total + incoming > self.orphan_cap_bytes:
            return (f"Upload refused: the server holds {total / mb:.0f} MB of uploads that no chat turn has used yet "
                    f"(limit {self.orphan_cap_bytes / mb:.0f} MB); send the files with a message, or try again in a "
                    f"few minutes (unused uploads are deleted after {self.orphan_ttl_s / 60:.0f} min).")
        return None

    def record_uploads(self, browser: str, paths: Iterable[str]) -> list[str]:
        """Remember fresh uploads; returns those that now break the cap (the caller refuses and deletes them)."""
        now, over = self.clock(), []
        with self._lock:
            for p in paths:
                real = _real(p)
                if _under(real, self.upload_dir) is None:
                    continue
                try:
                    size = os.stat(real).st_size
                except OSError:
                    size = 0
                up = self._uploads.get(real)
                if up is None:
                    self._uploads[real] = _Upload(size, now, owners={browser} if browser else set())
                else:  # the same content again (Gradio names uploads by hash): refresh, keep its users
                    up.created, up.size = now, size
                    if browser:
                        up.owners.add(browser)
            orphans = [u for u in self._uploads.values() if not u.sessions]
            total = sum(u.size for u in orphans)
            anonymous = sum(u.size for u in orphans if not u.owners)
            if total > self.orphan_cap_bytes or (not browser and anonymous > self.anonymous_cap_bytes):
                over = [_real(p) for p in paths if _real(p) in self._uploads
                        and not self._uploads[_real(p)].sessions]
                for real in over:
                    del self._uploads[real]
        for real in over:
            self._delete(real)
        return over

    def claim(self, session_hash: str, paths: Iterable[str | Path]) -> None:
        """A turn of ``session_hash`` uses these uploads: kept until that session closes."""
        if not session_hash:
            return
        with self._lock:
            for p in paths:
                up = self._uploads.get(_real(p))
                if up is not None:
                    up.sessions.add(session_hash)
                    up.claimed = self.clock()

    def sweep(self) -> int:
        """Delete orphan uploads older than ``orphan_ttl_s``. Returns how many."""
        now = self.clock()
        with self._lock:
            gone = [p for p, u in self._uploads.items() if not u.sessions and now - u.created >= self.orphan_ttl_s]
            for p in gone:
                del self._uploads[p]
        for p in gone:
            self._delete(p)
        return len(gone)

    def orphan_bytes(self) -> int:
        with self._lock:
            return sum(u.size for u in self._uploads.values() if not u.sessions)

    def start_sweeper(self, interval_s: float = 60.0) -> threading.Thread:
        """A daemon thread that sweeps every ``interval_s`` while this registry exists."""
        ref = weakref.ref(self)

        def loop() -> None:
            while True:
                time.sleep(interval_s)
                me = ref()
                if me is None:
                    return
                try:
                    me.sweep()
                except Exception:  # a failed sweep is retried at the next tick
                    log.warning("upload sweep failed", exc_info=True)
                del me

        t = threading.Thread(target=loop, name="spex-upload-sweeper", daemon=True)
        t.start()
        return t

    def _delete(self, real: str) -> None:
        """Remove an upload and its folder (Gradio puts each in a folder named by its hash)."""
        try:
            os.unlink(real)
        except OSError:
            pass
        parent = os.path.dirname(real)
        if _under(parent, self.upload_dir) is not None and os.path.isdir(parent) and not os.listdir(parent):
            shutil.rmtree(parent, ignore_errors=True)
