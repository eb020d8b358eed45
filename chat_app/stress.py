"""Bounded load test: ``python -m chat_app.bench stress --sessions 8 --turns 10``.

Starts ``app.py`` on 127.0.0.1 (a free port, its own temp folders) in a subprocess, runs N
concurrent sessions x M turns through gradio_client, and reports errors, cross-talk (a reply
naming another session's class), per-turn client latency, the server's peak RSS, its RSS
60 s after every session closed against its idle RSS, and the disk the sessions used.
Only 127.0.0.1 is contacted; every loop is bounded by N x M.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["StressResult", "run_stress"]

#: Each session keeps to one class, so a reply naming another session's class is cross-talk.
CLASSES = ("water bodies", "vegetation", "built-up areas", "bare soil")
TURNS = ("extract the {c}", "be stricter", "just the three largest", "undo", "redo", "how much area in total?",
         "only keep the ones larger than 1 ha", "be looser", "undo", "what is the largest one?")


@dataclass
class StressResult:
    """What one stress run measured."""

    sessions: int
    turns: int
    errors: list[str] = field(default_factory=list)
    cross_talk: int = 0
    latencies: list[float] = field(default_factory=list)
    reply_latencies: list[float] = field(default_factory=list)  # until the reply (overlay) only
    first_half: list[float] = field(default_factory=list)
    second_half: list[float] = field(default_factory=list)
    cold_rss_mb: float = 0.0
    idle_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    after_close_rss_mb: float = 0.0
    disk_peak_mb: float = 0.0
    disk_after_mb: float = 0.0
    #: per turn index: client-seen seconds (the reply plus its downloads step, as a browser waits for both)
    #: and bytes received (JSON of both steps' outputs), over all sessions
    by_turn: dict[int, list[float]] = field(default_factory=dict)
    payload_by_turn: dict[int, list[int]] = field(default_factory=dict)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _du_mb(path: Path) -> float:
    """MB of the files under ``path``; files and folders the server deletes meanwhile are skipped."""
    total = 0
    for root, _, names in os.walk(path):  # os.walk ignores folders that vanish while it runs
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total / 2**20


def _session(url: str, idx: int, turns: int, res: StressResult, lock: threading.Lock, dl: Path) -> None:
    from gradio_client import Client

    cls = CLASSES[idx % len(CLASSES)]
    # download_files=False: what a browser receives per turn (FileData with URLs), not the file bodies
    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    try:
        client.predict(api_name="/load_demo")
        for t in range(turns):
            text = TURNS[t % len(TURNS)].format(c=cls)
            t0 = time.perf_counter()
            out = client.predict({"text": text, "files": []}, api_name="/chat")
            reply_s = time.perf_counter() - t0
            later = client.predict(api_name="/chat_downloads")  # the browser runs this step after each reply
            dt = time.perf_counter() - t0
            size = len(json.dumps([out, later], default=str).encode())
            parts = out if isinstance(out, (list, tuple)) else [out]
            history = next((p for p in parts if isinstance(p, list) and p and isinstance(p[0], dict)), [])
            content = ""
            for m in reversed(history):  # the newest assistant text (pictures are separate messages)
                if m.get("role") != "assistant":
                    break
                c = m.get("content")
                text_ = c if isinstance(c, str) else " ".join(
                    p.get("text", "") for p in (c or []) if isinstance(p, dict) and p.get("type") == "text")
                if text_:
                    content = text_
                    break
            with lock:
                res.latencies.append(dt)
                res.reply_latencies.append(reply_s)
                res.by_turn.setdefault(t, []).append(dt)
                res.payload_by_turn.setdefault(t, []).append(size)
                (res.first_half if t < turns / 2 else res.second_half).append(dt)
                if content.startswith(("Sorry", "Something")) or not content:
                    res.errors.append(f"session {idx} turn {t} ({text!r}): {content[:120]}")
                line = next((ln for ln in content.splitlines() if ln.startswith("**Request:**")), "")
                if line and any(c.split()[0] in line for c in CLASSES if c != cls):
                    res.cross_talk += 1
    except Exception as exc:  # a transport failure is an error of the run, reported, not raised
        with lock:
            res.errors.append(f"session {idx}: {type(exc).__name__}: {str(exc)[:160]}")
    finally:
        client.close()


def run_stress(sessions: int = 8, turns: int = 10, settle_s: float = 60.0) -> StressResult:
    """Run the load test against a fresh local server and return its measurements."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="spex_stress_"))
    env = dict(os.environ, TMPDIR=str(tmp), GRADIO_TEMP_DIR=str(tmp / "gradio"), GRADIO_ANALYTICS_ENABLED="False",
               HF_HUB_OFFLINE="1", SPEX_OPEN_DEMO="0")
    app = Path(__file__).resolve().parent.parent / "app.py"
    server = subprocess.Popen([sys.executable, str(app), "--host", "127.0.0.1", "--port", str(port), "--no-demo"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res = StressResult(sessions, turns)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):  # wait (bounded) for the server to answer
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(1)
        time.sleep(2)
        res.cold_rss_mb = _rss_mb(server.pid)
        # warm-up: one short session loads the libraries a turn imports (kept for the process's life),
        # then closes; "idle" is the RSS after it, so the comparison measures what sessions hold
        lock = threading.Lock()
        dl = Path(tempfile.mkdtemp(prefix="spex_stress_dl_"))
        warm = StressResult(1, 2)
        _session(url, 0, 2, warm, lock, dl)
        time.sleep(min(settle_s, 45.0))
        res.idle_rss_mb = _rss_mb(server.pid)
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                res.peak_rss_mb = max(res.peak_rss_mb, _rss_mb(server.pid))
                res.disk_peak_mb = max(res.disk_peak_mb, _du_mb(tmp))
                stop.wait(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        workers = [threading.Thread(target=_session, args=(url, i, turns, res, lock, dl)) for i in range(sessions)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        stop.set()
        watcher.join()
        time.sleep(settle_s)
        res.after_close_rss_mb = _rss_mb(server.pid)
        res.disk_after_mb = _du_mb(tmp / "gradio" / "spex_chat")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return res


def print_stress(res: StressResult) -> None:
    """The result as a small table."""
    lat = res.latencies or [float("nan")]
    rep_ = res.reply_latencies or [float("nan")]
    rows = [
        ("sessions x turns", f"{res.sessions} x {res.turns}"),
        ("errors", str(len(res.errors))),
        ("cross-talk replies", str(res.cross_talk)),
        ("client turn time (reply + downloads step) median / p95 [s]",
         f"{statistics.median(lat):.2f} / {sorted(lat)[int(0.95 * (len(lat) - 1))]:.2f}"),
        ("client time to the reply only (/chat) median / p95 [s]",
         f"{statistics.median(rep_):.2f} / {sorted(rep_)[int(0.95 * (len(rep_) - 1))]:.2f}"),
        ("client turn time, first half / second half median [s]",
         f"{statistics.median(res.first_half or [0]):.2f} / {statistics.median(res.second_half or [0]):.2f}"),
        ("server RSS at start / idle after a warm-up session [MB]", f"{res.cold_rss_mb:.0f} / {res.idle_rss_mb:.0f}"),
        ("server RSS peak / after all sessions closed + settle [MB]",
         f"{res.peak_rss_mb:.0f} / {res.after_close_rss_mb:.0f}"),
        ("disk peak (temp + uploads + outputs) / session folders after close [MB]",
         f"{res.disk_peak_mb:.1f} / {res.disk_after_mb:.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print("SPEX chat stress test (local server, gradio_client)")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    if res.turns >= 20:  # growth over a long conversation: the first and the last ten turns
        def med(d: dict, ts: range) -> float:
            return statistics.median([v for t in ts for v in d.get(t, [])] or [0])
        first, last = range(10), range(res.turns - 10, res.turns)
        print(f"  {'client turn time, turns 1-10 / last 10 median [s]':<{width}}  "
              f"{med(res.by_turn, first):.2f} / {med(res.by_turn, last):.2f}")
        print(f"  {'bytes received per turn, turns 1-10 / last 10 median [KB]':<{width}}  "
              f"{med(res.payload_by_turn, first) / 1024:.1f} / {med(res.payload_by_turn, last) / 1024:.1f}")
    else:
        sizes = [v for vs in res.payload_by_turn.values() for v in vs] or [0]
        print(f"  {'bytes received per turn, median / max [KB]':<{width}}  "
              f"{statistics.median(sizes) / 1024:.1f} / {max(sizes) / 1024:.1f}")
    for e in res.errors[:10]:
        print("  error:", e)
