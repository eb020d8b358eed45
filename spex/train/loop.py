"""One generic, resumable, seeded optimisation loop shared by both training stages.

Data order is a pure function of (seed, epoch), so resuming at step ``s`` replays exactly
the batches a non-interrupted run would have seen; model, optimizer, scheduler and RNG
states come from the checkpoint. Losses go to ``<out>/<name>_log.jsonl`` and a PNG curve.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spex.train.checkpointing import TrainState, append_log, load_state, plot_losses, read_log, save_state, truncate_log

__all__ = ["LoopConfig", "seed_everything", "batches", "run_loop"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopConfig:
    """Optimisation settings of one stage."""

    steps: int
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    grad_clip: float = 1.0
    log_every: int = 10
    checkpoint_every: int = 50
    max_minutes: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps} / {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _epoch_batches(n_items: int, batch_size: int, seed: int, epoch: int,
                   groups: Sequence[int] | None) -> list[list[int]]:
    """The batches of one epoch: shuffled within each group (similar lengths), then batch order shuffled."""
    rng = np.random.default_rng(seed + 7919 * epoch)
    order = rng.permutation(n_items)
    if groups is None:
        keys = [0] * n_items
    else:
        keys = list(groups)
    by_group: dict[int, list[int]] = {}
    for i in order:
        by_group.setdefault(int(keys[i]), []).append(int(i))
    out: list[list[int]] = []
    for g in sorted(by_group):
        members = by_group[g]
        for k in range(0, len(members), batch_size):
            chunk = members[k:k + batch_size]
            if len(chunk) < batch_size:  # fill the last batch of a group from its start: fixed batch size
                chunk = chunk + members[: batch_size - len(chunk)]
            out.append(chunk)
    return [out[j] for j in rng.permutation(len(out))]


def batches(n_items: int, batch_size: int, seed: int, start_step: int,
            groups: Sequence[int] | None = None) -> Iterator[list[int]]:
    """Index batches over endless reshuffled epochs, starting at ``start_step``.

    ``groups`` (one key per item) keeps each batch within one group, e.g. short vs long
    prompts, so padding does not multiply the cost. Order depends only on (seed, epoch).
    """
    if n_items < 1:
        raise ValueError("no training items")
    epoch, step, cache = 0, 0, _epoch_batches(n_items, batch_size, seed, 0, groups)
    while step + len(cache) <= start_step:
        step += len(cache)
        epoch += 1
        cache = _epoch_batches(n_items, batch_size, seed, epoch, groups)
    k = start_step - step
    while True:
        while k < len(cache):
            yield cache[k]
            k += 1
        epoch, k = epoch + 1, 0
        cache = _epoch_batches(n_items, batch_size, seed, epoch, groups)


def _cosine(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def run_loop(name: str, cfg: LoopConfig, out_dir: Path, *, params: list,
             modules: dict[str, torch.nn.Module], step_fn: Callable[[list[int]], dict[str, torch.Tensor]],
             n_items: int, groups: Sequence[int] | None = None, resume: bool = False) -> TrainState:
    """Optimise ``params`` for ``cfg.steps`` steps of ``step_fn(batch_indices) -> losses``.

    ``params`` are tensors or AdamW parameter groups (dicts; a group's ``lr_mult`` scales
    ``cfg.lr``).

    ``losses["loss"]`` is back-propagated; every entry is logged. ``modules`` are saved in
    the checkpoint ``<out>/<name>_state.pt`` (with optimizer, scheduler, RNG).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt, log_path = out_dir / f"{name}_state.pt", out_dir / f"{name}_log.jsonl"
    param_groups = [{k: v for k, v in g.items() if k != "lr_mult"} | {"lr": cfg.lr * g.get("lr_mult", 1.0)}
                    if isinstance(g, dict) else g for g in params]
    opt = torch.optim.AdamW(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    flat = [p for g in param_groups for p in (g["params"] if isinstance(g, dict) else [g])]
    warm = int(cfg.warmup_ratio * cfg.steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, cfg.steps, warm))
    saved = {**modules, "optimizer": opt, "scheduler": sched}
    state = TrainState()
    seed_everything(cfg.seed)
    if resume and ckpt.exists():
        state = load_state(ckpt, saved)
        truncate_log(log_path, state.step)
        logger.info("%s: resumed at step %d", name, state.step)
    elif log_path.exists():
        log_path.unlink()
    for m in modules.values():
        m.train()
    t0, base, start = time.monotonic(), state.elapsed_s, state.step
    running: dict[str, list[float]] = {}
    it = batches(n_items, cfg.batch_size, cfg.seed, state.step, groups)
    while state.step < cfg.steps:
        losses = step_fn(next(it))
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(flat, cfg.grad_clip)
        opt.step()
        sched.step()
        state.step += 1
        state.elapsed_s = base + time.monotonic() - t0
        for k, v in losses.items():
            running.setdefault(k, []).append(float(v.detach()))
        last = state.step == cfg.steps
        out_of_time = cfg.max_minutes is not None and state.elapsed_s > 60 * cfg.max_minutes
        if state.step % cfg.log_every == 0 or last or out_of_time:
            row = {"step": state.step, "elapsed_s": round(state.elapsed_s, 1), "lr": sched.get_last_lr()[0],
                   **{k: sum(v) / len(v) for k, v in running.items()}}
            append_log(log_path, row)
            logger.info("%s %s", name, " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                 for k, v in row.items()))
            running.clear()
        if state.step % cfg.checkpoint_every == 0 or last or out_of_time:
            save_state(ckpt, state, saved)
        if out_of_time and not last:
            logger.warning("%s: time budget of %.1f min reached at step %d/%d; stopping",
                           name, cfg.max_minutes, state.step, cfg.steps)
            break
    state.advanced = state.step > start
    rows = read_log(log_path)
    keys = [k for k in (rows[-1] if rows else {}) if k not in ("step", "elapsed_s", "lr")]
    plot_losses(rows, keys, out_dir / f"{name}_loss.png", title=f"{name} losses")
    return state
