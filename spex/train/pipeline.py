"""Train a SPEX model from a SPIE folder: tokenizer -> stage A -> stage B -> save_pretrained.

Stage A (:mod:`spex.train.pretrain`) trains the vision encoder alone on every unique chip;
stage B (:mod:`spex.train.finetune`) tunes the whole model on the instruction records with
LM + BCE + Dice losses (ignored pixels masked out). Both stages are resumable from
``work_dir``; the checkpoint folder receives only the model, tokenizer, logs and curves.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
import zlib
from pathlib import Path

import torch

from spex.errors import SpexError
from spex.spie.builder import load_records
from spex.train.config import TrainConfig
from spex.train.data import ChipDataset, SpieDataset
from spex.train.finetune import MASK_MODULES, PromptClassHead, answer_head_step, finetune_step
from spex.train.loop import run_loop, seed_everything
from spex.train.pretrain import ReconstructionHead, pretrain_step
from spex.train.tokenizer import IM_END, IMAGE, PAD, train_tokenizer

__all__ = ["balance_classes", "build_model", "train", "write_model_card", "count_parameters"]

logger = logging.getLogger(__name__)


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Parameters per top-level module and in total."""
    out = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    out["total"] = sum(p.numel() for p in model.parameters())
    return out


def build_model(cfg: TrainConfig, tokenizer):
    """A freshly initialised SPEX model whose vocabulary and special ids match ``tokenizer``."""
    from spex.model import SpexConfig, SpexForConditionalGeneration

    kwargs = dict(cfg.model)
    text = dict(kwargs.pop("text_config", {}) or {})
    pad_id, eos_id = tokenizer.convert_tokens_to_ids(PAD), tokenizer.convert_tokens_to_ids(IM_END)
    text.update(vocab_size=len(tokenizer), pad_token_id=pad_id, eos_token_id=eos_id, bos_token_id=None)
    config = SpexConfig(text_config=text, image_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
                        pad_token_id=pad_id, eos_token_id=eos_id, **kwargs)
    config.chip_size = cfg.chip
    config.input_zoom = cfg.zoom
    seed_everything(cfg.seed)
    # The mask path's PyTorch-default (Kaiming-uniform) init is done by the model's own
    # _init_weights (under N(0, 0.02) SAM's hypernetwork product starts at ~1e-4).
    model = SpexForConditionalGeneration(config)
    if cfg.text_embedding_std:
        # A from-scratch LM with N(0, 0.02) token embeddings: the O(1) visual tokens reach every
        # text position through attention and drown the instruction's own tokens (~2 % of the
        # state), so the condensed prompt hardly depends on what was asked (a linear probe of
        # the requested class stayed at chance for 75 steps; measured). O(1) embeddings fix that.
        torch.nn.init.normal_(model.get_input_embeddings().weight, std=cfg.text_embedding_std)
    return model


def balance_classes(records: list[dict], strength: float) -> list[dict]:
    """Repeat records of rare classes: class ``c`` gets ``(n_max / n_c) ** strength`` copies (rounded).

    Why: with one class per record the loss is dominated by the most frequent classes (here
    engine pseudo-labels of vegetation and built-up), and rare ones (grass, forest) end up
    as an empty mask. ``strength`` 0 keeps the list, 1 equalises the classes.
    """
    if strength <= 0 or not records:
        return records
    counts: dict[str, int] = {}
    for r in records:
        counts[r["class"]] = counts.get(r["class"], 0) + 1
    top = max(counts.values())
    reps = {c: max(1, round((top / n) ** strength)) for c, n in counts.items()}
    logger.info("class balance (strength %.2f): %s", strength,
                ", ".join(f"{c} {counts[c]} x{reps[c]}" for c in sorted(counts)))
    return [r for r in records for _ in range(reps[r["class"]])]


def _tokenizer(records: list[dict], cfg: TrainConfig, work: Path, resume: bool):
    from transformers import AutoTokenizer

    path = work / "tokenizer"
    if resume and (path / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(path)
    texts = [turn["value"].replace(IMAGE, "") for r in records for turn in r["conversations"]]
    tok = train_tokenizer(texts, vocab_size=cfg.vocab_size)
    tok.save_pretrained(path)
    return tok


def train(cfg: TrainConfig, data_dir: str | Path, out_dir: str | Path, *, work_dir: str | Path | None = None,
          resume: bool = False) -> dict:
    """Run both stages and save the model; returns a summary (times, parameters, sizes)."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    work = Path(work_dir) if work_dir else data_dir / "_train_state"
    work.mkdir(parents=True, exist_ok=True)
    records = load_records(data_dir, cfg.splits)
    if not records:
        raise SpexError(f"no records with split {list(cfg.splits)} in {data_dir}")
    records = [r for r in records for _ in range(1 if r.get("pseudo") else max(1, cfg.labelled_repeat))
               if r.get("instruction") != "spie" or zlib.crc32(r["id"].encode()) % 1000 < 1000 * cfg.spie_keep]
    records = balance_classes(records, cfg.class_balance)
    (work / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    t0 = time.monotonic()
    tokenizer = _tokenizer(records, cfg, work, resume)
    model = build_model(cfg, tokenizer)
    config = model.config
    logger.info("model: %s parameters", f"{count_parameters(model)['total']:,}")

    # Stage A: masked band / patch reconstruction on the unique chips.
    chips = ChipDataset.from_records(records, data_dir, config.band_names, zoom=cfg.zoom)
    head = ReconstructionHead(list(config.encoder_channels), config.num_bands)
    params_a = list(model.vision_encoder.parameters()) + list(head.parameters())
    state_a = run_loop("pretrain", cfg.pretrain, work, params=params_a, modules={"model": model, "head": head},
                       step_fn=lambda idx: pretrain_step(model, head, [chips[i] for i in idx]),
                       n_items=len(chips), resume=resume)

    if state_a.advanced:
        _drop_states(work, ("finetune", "answer_head"))

    # Stage B: mask instruction tuning of the whole model (mask path at a higher rate).
    n_img = config.num_image_tokens(cfg.chip * cfg.zoom, cfg.chip * cfg.zoom)
    ds = SpieDataset(records, data_dir, tokenizer, config.band_names, n_img, band_dropout=cfg.band_dropout,
                     max_length=cfg.max_length + n_img, zoom=cfg.zoom)
    groups = [r.get("instruction") == "spie" for r in records]
    mask_params = [p for n, p in model.named_parameters() if n.split(".")[0] in MASK_MODULES]
    other_params = [p for n, p in model.named_parameters() if n.split(".")[0] not in MASK_MODULES]
    probe = PromptClassHead(config.decoder_hidden_size, sorted({r["class"] for r in records}))
    state_b = run_loop("finetune", cfg.finetune, work,
                       params=[{"params": other_params}, {"params": mask_params, "lr_mult": cfg.mask_lr_mult},
                               {"params": list(probe.parameters())}],
                       modules={"model": model, "probe": probe},
                       step_fn=lambda idx: finetune_step(model, [ds[i] for i in idx], config.pad_token_id,
                                                         probe, cfg.prompt_class_weight),
                       n_items=len(ds), groups=groups, resume=resume)

    if state_b.advanced:
        _drop_states(work, ("answer_head",))

    # Stage C: the answer text: only the LM output head learns, the mask conditioning stays put.
    head_params = list(model.get_output_embeddings().parameters())
    frozen = [p for p in model.parameters() if all(p is not q for q in head_params)]
    for p in frozen:
        p.requires_grad_(False)
    try:
        state_c = run_loop("answer_head", cfg.answer_head, work, params=head_params, modules={"model": model},
                           step_fn=lambda idx: answer_head_step(model, [ds[i] for i in idx], config.pad_token_id),
                           n_items=len(ds), groups=groups, resume=resume)
    finally:
        for p in frozen:
            p.requires_grad_(True)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    logs = out_dir / "training"
    logs.mkdir(exist_ok=True)
    for name in ("pretrain_log.jsonl", "pretrain_loss.png", "finetune_log.jsonl", "finetune_loss.png",
                 "answer_head_log.jsonl", "answer_head_loss.png", "train_config.json"):
        if (work / name).exists():
            shutil.copy2(work / name, logs / name)
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return {
        "parameters": count_parameters(model),
        "config": cfg.to_dict(), "vocab_size": len(tokenizer),
        "records": len(records), "chips": len(chips),
        "pretrain": {"steps": state_a.step, "seconds": round(state_a.elapsed_s, 1)},
        "finetune": {"steps": state_b.step, "seconds": round(state_b.elapsed_s, 1)},
        "answer_head": {"steps": state_c.step, "seconds": round(state_c.elapsed_s, 1)},
        "wall_s": round(time.monotonic() - t0, 1),
        "threads": torch.get_num_threads(), "machine": platform.machine(), "torch": torch.__version__,
        "checkpoint_bytes": size,
    }


def _drop_states(work: Path, names: tuple[str, ...]) -> None:
    """Later stages started from an older model: their saved states must not be resumed."""
    for name in names:
        for suffix in ("_state.pt", "_log.jsonl"):
            (work / f"{name}{suffix}").unlink(missing_ok=True)


def write_model_card(out_dir: Path, summary: dict, rows) -> Path:
    """README.md of the checkpoint: from the measured summary (the card module formats it)."""
    from spex.train.card import model_card

    path = Path(out_dir) / "README.md"
    path.write_text(model_card(summary, rows))
    return path
