"""``python -m spex.bench gpu``: the SPEX model on a CUDA device at none / 8-bit / 4-bit.

For each quantization mode of the LLM (bitsandbytes; the refiner and the engine stay in
full precision) it loads the LLM, runs one turn on one scene and prints: load time, weight
bytes, [SEG] + refiner mask time, mask pixels and IoU against the unquantized mask,
first-token and full-reply time of the explanation, and peak GPU memory.

Without a CUDA device it says so and exits 0; ``--device cpu`` measures the same steps on
the CPU (bitsandbytes' CPU backend), which is how it is tested. Default scene: the eo-learn
crop shipped in tests/data (no ../shared needed).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GpuRow", "format_rows", "main", "run_gpu"]

DEFAULT_SCENE = Path(__file__).resolve().parents[2] / "tests" / "data" / "eolearn_s2l1c_2015-07-11_13band.tif"


@dataclass
class GpuRow:
    """One quantization mode's measurements (seconds, bytes)."""

    mode: str
    device: str
    load_s: float
    weight_bytes: int
    mask_s: float
    mask_pixels: int
    mask_iou_vs_none: float
    first_token_s: float | None
    reply_s: float | None
    explanation_source: str
    peak_gpu_bytes: int | None
    error: str = ""


def _iou(a, b) -> float:
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0


def run_gpu(scene_paths: Sequence[str | Path], query: str, modes: Sequence[str], device: str, *,
            llm_option: str | None = None, backend: str = "spex", max_new_tokens: int = 64) -> list[GpuRow]:
    """Measure each mode in turn (one LLM in memory at a time)."""
    import torch

    from spex.engine import parse_instruction
    from spex.engine.request import TARGET_LABELS
    from spex.io import open_scene
    from spex.model.explain import generate_explanation
    from spex.model.facts import extraction_facts
    from spex.model.llm import LLMCache, load_llm, resolve_llm
    from spex.model.refined import RefinedBackend, load_refiner
    from spex.spectral import IndexCache

    refiner = load_refiner()
    rows: list[GpuRow] = []
    reference = None
    cuda = device.startswith("cuda")
    with open_scene(list(scene_paths) if len(scene_paths) > 1 else scene_paths[0]) as scene:
        request = parse_instruction(query, None, pixel_area_m2=scene.pixel_area_m2).request
        if request is None:
            raise ValueError(f"--query {query!r} does not ask for a class to extract")
        for mode in modes:
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            try:
                llm = load_llm(resolve_llm(llm_option, None if mode == "none" else mode), device,
                               cache=LLMCache(max_models=1))
                cache = IndexCache(scene)
                t0 = time.perf_counter()
                ex = RefinedBackend(backend, refiner, llm=llm).extract(scene, request, cache, words=query)
                mask_s = time.perf_counter() - t0
                reference = ex.mask if reference is None else reference
                facts = extraction_facts(ex)
                lead = "I selected the " + " and ".join(TARGET_LABELS[t] for t in request.targets)
                exp = generate_explanation(llm, query, facts, ex, scene_text=scene.sensor, lead=lead,
                                           ignore=[scene.sensor, llm.name, "SmolLM2"], max_new_tokens=max_new_tokens)
                rows.append(GpuRow(mode, device, llm.load_seconds, llm.weight_bytes, mask_s, int(ex.mask.sum()),
                                   _iou(ex.mask, reference), exp.first_token_s, exp.total_s, exp.source,
                                   int(torch.cuda.max_memory_allocated()) if cuda else None))
                del llm
            except Exception as exc:  # one mode failing (e.g. no bitsandbytes kernel) must not hide the others
                rows.append(GpuRow(mode, device, float("nan"), 0, float("nan"), 0, float("nan"), None, None, "",
                                   None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
    return rows


def format_rows(rows: Sequence[GpuRow]) -> str:
    def f(v, spec: str = ".2f") -> str:
        return "-" if v is None or v != v else format(v, spec)

    lines = [f"{'mode':6} {'device':7} {'load s':>7} {'weights MB':>10} {'mask s':>7} {'mask px':>8} "
             f"{'IoU/none':>8} {'1st tok s':>9} {'reply s':>8} {'text':>12} {'GPU peak MB':>11}"]
    for r in rows:
        if r.error:
            lines.append(f"{r.mode:6} {r.device:7} failed: {r.error}")
            continue
        peak = None if r.peak_gpu_bytes is None else r.peak_gpu_bytes / 2**20
        lines.append(f"{r.mode:6} {r.device:7} {f(r.load_s, '.1f'):>7} {r.weight_bytes / 2**20:>10.1f} "
                     f"{f(r.mask_s):>7} {r.mask_pixels:>8} {f(r.mask_iou_vs_none, '.3f'):>8} {f(r.first_token_s):>9} "
                     f"{f(r.reply_s):>8} {r.explanation_source:>12} {f(peak, '.0f'):>11}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spex.bench gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run_args(p.parse_args(argv))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scene", nargs="+", default=[str(DEFAULT_SCENE)], help="scene file(s) (default: eo-learn crop)")
    p.add_argument("--query", default="show me the forest")
    p.add_argument("--modes", default="none,8bit,4bit", help="comma-separated: none, 8bit, 4bit")
    p.add_argument("--device", default="cuda", help="cuda (default; exits with a message without one), cuda:N, cpu")
    p.add_argument("--backend", choices=("spex", "auto"), default="spex")
    p.add_argument("--llm", default=None, help="LLM folder / .gguf (default: the shipped SmolLM2)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("-v", "--verbose", action="store_true")


def run_args(args: argparse.Namespace) -> int:
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("No CUDA device on this machine: nothing measured. Run it where a GPU is present, or pass "
              "--device cpu to measure the same steps on the CPU.")
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("none", "8bit", "4bit")]
    if bad:
        print(f"error: unknown mode(s) {bad}; use none, 8bit, 4bit", file=sys.stderr)
        return 2
    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    t0 = time.perf_counter()
    rows = run_gpu(args.scene, args.query, modes, args.device, llm_option=args.llm, backend=args.backend,
                   max_new_tokens=args.max_new_tokens)
    print(format_rows(rows))
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
