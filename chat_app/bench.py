"""Measured chat latencies on the demo scene: ``python -m chat_app.bench [--runs 3]``.

Each run starts a fresh session and times the turns a user waits for:
upload → scene info, first extraction, a refinement, a question, and undo.
The figures are the medians over the runs (wall clock, this machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chat_app.settings import Settings

__all__ = ["TURNS", "main", "run_bench"]

#: (label, message); None = upload the demo scene.
TURNS: tuple[tuple[str, str | None], ...] = (
    ("first reply (upload -> scene info)", None),
    ("first extraction ('extract the water bodies')", "extract the water bodies"),
    ("refinement ('only keep the ones larger than 5 ha')", "only keep the ones larger than 5 ha"),
    ("question ('what is the largest one?')", "what is the largest one?"),
    ("undo (recomputed from the cache)", "undo"),
    ("redo", "redo"),
    ("refinement ('be stricter')", "be stricter"),
)
#: Label of the downloads step that follows each result turn (written after the overlay is shown).
DOWNLOADS = "downloads after a result turn (mask COG, GeoJSON, GPKG; after the overlay shows)"


#: Labels of the streamed explanation after each result turn (``--backend auto``: the LLM writes it).
EXPLAIN_FIRST = "explanation: first words, after the summary shows"
EXPLAIN_DONE = "explanation: complete and fact-checked"


def _time_explanation(explainer: Any, before: Any, after: Any, times: dict[str, list[float]]) -> Any:
    """Stream the explanation the chat would stream after ``after``; record first words and the end."""
    if explainer is None or not explainer.applies(before, after):
        return after
    t0 = time.perf_counter()
    first = None
    state = after
    for state in explainer.stream(before, after):
        if first is None:  # the stream's first update carries the first generated words
            first = time.perf_counter() - t0
    times[EXPLAIN_DONE].append(time.perf_counter() - t0)
    times[EXPLAIN_FIRST].append(first if first is not None else times[EXPLAIN_DONE][-1])
    return state


def run_bench(runs: int = 3, demo_dir: Path | None = None, backend: object | None = None,
              explainer: Any = None) -> dict[str, list[float]]:
    """Seconds per turn label, one value per run (plus the explanation's, with an ``explainer``)."""
    from chat_app.ui import make_dialogue

    with tempfile.TemporaryDirectory(prefix="spex_bench_") as tmp:
        settings = Settings(work_dir=Path(tmp), **({"demo_dir": demo_dir} if demo_dir else {}))
        dialogue = make_dialogue(settings, backend=backend)
        if not dialogue.demo_files():
            raise SystemExit(f"demo scene not found in {settings.demo_dir}")
        times: dict[str, list[float]] = {label: [] for label, _ in TURNS}
        times[DOWNLOADS] = []
        if explainer is not None:
            times[EXPLAIN_FIRST], times[EXPLAIN_DONE] = [], []
        for run in range(runs):
            state = dialogue.new_state(f"bench-{run}")
            for label, message in TURNS:
                t0 = time.perf_counter()  # until the reply, overlay and map are ready to show
                before = state
                state = dialogue.load_demo(state) if message is None else dialogue.respond(state, message)
                times[label].append(time.perf_counter() - t0)
                state = _time_explanation(explainer, before, state, times)
                reply = state.entries[-1].text
                if reply.startswith(("Sorry", "Something", "I could not")):
                    raise SystemExit(f"turn {label!r} failed: {reply[:300]}")
                if state.downloads_pending:
                    t0 = time.perf_counter()
                    state = dialogue.write_downloads(state)
                    times[DOWNLOADS].append(time.perf_counter() - t0)
            dialogue.close(state)
    return times


def run_bench_api(runs: int = 3, demo_dir: Path | None = None) -> dict[str, list[float]]:
    """Like :func:`run_bench`, but through the served app and gradio_client (HTTP, queue, rendering)."""
    import socket

    from gradio_client import Client, handle_file

    from chat_app.ui import build_demo, launch_kwargs, make_dialogue

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="spex_bench_api_") as tmp:
        settings = Settings(work_dir=Path(tmp) / "work", port=port,
                            **({"demo_dir": demo_dir} if demo_dir else {}))
        demo_files = make_dialogue(settings).demo_files()
        if not demo_files:
            raise SystemExit(f"demo scene not found in {settings.demo_dir}")
        demo = build_demo(settings)
        demo.queue()
        _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                                **launch_kwargs(settings))
        try:
            times: dict[str, list[float]] = {label: [] for label, _ in TURNS}
            for run in range(runs):
                # files stay on the server (a browser fetches only the new picture; the client would download them all)
                client = Client(url, verbose=False, download_files=False,
                                analytics_enabled=False)
                for label, message in TURNS:
                    t0 = time.perf_counter()
                    if message is None:  # a real upload of the demo band files over HTTP
                        files = [handle_file(str(f)) for f in demo_files]
                        client.predict({"text": "", "files": files}, api_name="/chat")
                    else:
                        client.predict({"text": message, "files": []}, api_name="/chat")
                    times[label].append(time.perf_counter() - t0)
        finally:
            demo.close()
    return times


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["stress"]:  # python -m chat_app.bench stress [--sessions N] [--turns M]
        from chat_app.stress import print_stress, run_stress

        sp = argparse.ArgumentParser(prog="python -m chat_app.bench stress")
        sp.add_argument("--sessions", type=int, default=8)
        sp.add_argument("--turns", type=int, default=10)
        sp.add_argument("--settle", type=float, default=60.0, help="seconds to wait after the sessions close")
        a = sp.parse_args(argv[1:])
        print_stress(run_stress(a.sessions, a.turns, a.settle))
        return 0
    p = argparse.ArgumentParser(prog="python -m chat_app.bench", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="fresh sessions to time (median reported)")
    p.add_argument("--demo-dir", type=Path, default=None, help="folder of the scene's band files")
    p.add_argument("--backend", choices=("spectral", "spex", "auto"), default="spectral",
                   help="auto: the SPEX refiner where it measured better, and the LLM explanation streamed after "
                        "each result (timed too; the LLM is loaded before the timing starts)")
    p.add_argument("--model", default=None, help="SPEX checkpoint folder for --backend spex")
    p.add_argument("--quantization", choices=("none", "8bit", "4bit"), default=None)
    p.add_argument("--via-api", action="store_true",
                   help="also time the turns through the served app (gradio_client over HTTP)")
    args = p.parse_args(argv)
    backend = explainer = None
    if args.backend == "auto":
        from chat_app.explain import Explainer
        from spex.model.refined import RefinedBackend

        explainer = Explainer("llm", quantization=args.quantization if args.quantization != "none" else None,
                              preload=True)
        explainer.start()
        t0 = time.perf_counter()
        if not explainer.wait():
            raise SystemExit(f"the language model could not be loaded: {explainer.status}")
        print(f"language model loaded in {time.perf_counter() - t0:.1f} s (in the app this runs in the background)")
        backend = RefinedBackend("auto", llm=explainer.loaded)
    elif args.backend == "spex":
        if not args.model:
            p.error("--backend spex needs --model PATH")
        from spex.model import SpexBackend

        backend = SpexBackend(args.model, quantization=args.quantization)
    _print(f"dialogue ({args.backend} backend)", run_bench(args.runs, args.demo_dir, backend=backend,
                                                          explainer=explainer), args.runs)
    if args.via_api:
        _print("served app via gradio_client (spectral backend)", run_bench_api(args.runs, args.demo_dir), args.runs)
    return 0


def _print(title: str, times: dict[str, list[float]], runs: int) -> None:
    width = max(len(label) for label in times)
    print(f"SPEX chat latency on the demo scene, {title}, median of {runs} run(s) [s]")
    for label, values in times.items():
        print(f"  {label:<{width}}  {statistics.median(values):7.2f}   (runs: "
              + ", ".join(f"{v:.2f}" for v in values) + ")")


if __name__ == "__main__":
    sys.exit(main())
