"""The model card (README.md) of a trained checkpoint, written from measured numbers only."""

from __future__ import annotations

from spex.train.evaluate import format_table

__all__ = ["model_card"]


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def _dataset_table(dataset: dict) -> str:
    lines = ["| class (targets) | records | records with the class present | class pixels |", "|---|---:|---:|---:|"]
    for name, t in sorted(dataset.get("totals", {}).items()):
        lines.append(f"| {name} | {t['records']} | {t['positive_records']} | {t['positive_pixels']:,} |")
    return "\n".join(lines)


def _scenes(dataset: dict) -> str:
    return "\n".join(f"- `{s['scene']}` ({s['sensor']}, {'pseudo-labels' if s['pseudo'] else 'labels'}): "
                     f"{s['chips']} chips, {s['records']} records" for s in dataset.get("scenes", []))


def _verdict(rows) -> str:
    if not rows:
        return "Not evaluated."
    better = [r for r in rows if r.model_iou is not None and r.engine_iou is not None and r.model_iou > r.engine_iou]
    worse = [r for r in rows if r.model_iou is not None and r.engine_iou is not None and r.model_iou < r.engine_iou]
    def names(rs):
        return ", ".join(f"{r.target} ({r.scene})" for r in rs) or "none"
    text = (f"The model beats the spectral engine on: {names(better)}. "
            f"It is worse on: {names(worse)}.")
    scored = [r.model_iou for r in rows if r.model_iou is not None]
    if scored and max(scored) == 0.0:
        text += (" **The model's masks are empty on every held-out class: this checkpoint does not work as an "
                 "extractor.** It ships as a tested, loadable demonstration of the model pipeline; use the "
                 "spectral engine (the default backend) for results.")
    return text


def _text_pixel_line(cfg: dict) -> str:
    """Architecture bullet for the text-pixel similarity term (only when the config enables it)."""
    model = cfg.get("model", {})
    if not model.get("text_pixel_similarity"):
        return ""
    return (f"- Text-pixel similarity term (LISA/CLIPSeg-style), added to the SAM decoder's stride-4 logits:\n"
            f"  per-pixel features (width {model.get('text_pixel_width', 64)}) from encoder stages S1 (stride 4), "
            "S2 (stride 8) and the aggregated map,\n  dotted with a projection of the LayerNorm-ed mean condensed "
            "prompt, plus a prompt-dependent bias: a fine-stride,\n  directly class-conditional path that the "
            "SAM decoder refines.\n")


def model_card(summary: dict, rows) -> str:
    """Markdown card: what it is, data, recipe, size, scores vs the engine, limits."""
    params = summary.get("parameters", {})
    cfg = summary.get("config", {})
    dataset = summary.get("dataset", {})
    pre, fine, head = summary.get("pretrain", {}), summary.get("finetune", {}), summary.get("answer_head", {})
    bands = ", ".join(cfg.get("model", {}).get("band_names", []))
    mem = summary.get("memory", {})
    mem_lines = "\n".join(f"| {k} | {_mb(v['bytes'])} | {v.get('note') or ''} |" for k, v in mem.items())
    return f"""---
license: apache-2.0
library_name: transformers
tags: [remote-sensing, multispectral, segmentation, vision-language, spex]
---

# spex-small

A small SPEX model (multispectral vision-language land-cover extraction, after Si, Wang et al.,
"SPEX", IEEE TGRS 2026) trained from scratch on a 2-core CPU. It answers a plain request such as
"Extract the water bodies." with a short description and a binary mask. It is a demonstration of the
full SPEX pipeline (SPIE data, N-band encoder, LLM, condensed language prompts, SAM-style mask
decoder), **not** a replacement for the spectral engine: see the scores below.

Load it with `spex.model.load_spex("assets/spex-small")`, or run it on a scene with
`spex.model.SpexBackend("assets/spex-small").extract(scene, request)` (CLI: `--backend spex`).

## Architecture

| part | parameters |
|---|---:|
""" + "\n".join(f"| {k} | {v:,} |" for k, v in params.items() if k != "total") + f"""
| **total** | **{params.get('total', 0):,}** |

- Input: {len(cfg.get('model', {}).get('band_names', []))} bands **{bands}** (reflectance, normalised per band in the
  model). Bands a scene lacks and invalid pixels are passed as NaN and become the band mean (0 after
  normalisation); training dropped NIR/SWIR at random (p = {cfg.get('band_dropout')}) so that 4-band and RGB scenes
  still work. There is no separate presence channel: a missing band looks like an average one.
- Chips of {cfg.get('chip')} × {cfg.get('chip')} px, zoomed ×{cfg.get('zoom')} (nearest neighbour) before the model so
  that its stride-16 visual tokens cover {16 // max(1, cfg.get('zoom') or 1)} native pixels; whole scenes are tiled with a
  quarter-chip overlap and the probabilities blended with linear ramps.
- Encoder: ConvNeXt-style N-band stem + 4 stages; multiscale aggregation; tiny Qwen2 text model
  ({cfg.get('model', {}).get('text_config', {}).get('num_hidden_layers')} layers, hidden
  {cfg.get('model', {}).get('text_config', {}).get('hidden_size')}); byte-level BPE tokenizer ({summary.get('vocab_size', '?')}
  tokens) trained offline on the SPIE text. The mask is conditioned on the condensed **instruction** (the
  backend calls `generate(max_new_tokens=0)`); see "Recipe" for why not on the generated answer.
{_text_pixel_line(cfg)}
## Training data (SPIE records built with `python -m spex spie build`)

{_scenes(dataset)}

{_dataset_table(dataset)}

Instructions never contain labels: they are either plain requests (varied templates and synonyms) or
the SPIE attribute prompt measured on the **spectral engine's** mask. Answers and target masks come from
labels (eo-learn land use; unlabelled, nodata and cloudy pixels are ignored in the loss) or, for
pseudo-labelled scenes, from the engine (flagged `pseudo: true`). The rstoolbox scenes (GPL-3) were not used
for training.

## Recipe

`python -m spex.train.recipe --data-root ../shared/data --out assets/spex-small` (one command: builds the
dataset outside the repository, trains, saves, evaluates, writes this card). Configuration:
`spex/train/spex_small.json`.

- Stage A (masked band / patch reconstruction of the encoder on {summary.get('chips')} unlabelled chips):
  {pre.get('steps')} steps, {pre.get('seconds')} s.
- Stage B (instruction tuning of the whole model on the mask: 2·BCE + Dice with the ignore mask, mask path at
  {cfg.get('mask_lr_mult')}× the learning rate, mask conditioned on the instruction span): {fine.get('steps')} steps,
  {fine.get('seconds')} s.
- Stage C (answer text: LM cross-entropy on the answers, only the LM output head trainable, so the states
  that condition the mask do not move): {head.get('steps')} steps, {head.get('seconds')} s.
- Why B and C are separate (measured on small overfit tests of 160–240 steps, Pearson correlation of mask
  logits with the target): one class (vegetation, 64 chips) with the LM loss in the objective (weight 1.0 or
  0.1, or with the LM states detached) gave a spatially constant mask (correlation ≈ 0.00); mask loss alone
  0.57, with the language prompts zeroed 0.76. Two classes, mask loss alone: 0.48. Six classes (256 chips),
  mask loss alone, varied or canonical instructions: ≈ 0.01. So in this tiny model the language prompt is
  what the SAM-style decoder fails to learn from in minutes, and more classes make it worse. The mask path
  uses PyTorch's default initialisation instead of N(0, 0.02), under which SAM's hypernetwork product starts
  at ~1e-4 and receives almost no gradient. Even so, on a synthetic two-class task (water vs vegetation
  chosen by the instruction) the SAM decoder alone stayed at IoU 0 for both classes after 120 steps, and the
  previous checkpoint (SAM decoder only) returned empty masks everywhere (held-out IoU 0.000). Adding the
  text-pixel similarity term (see Architecture) reached IoU 0.94 / 0.91 (water / vegetation) on that task
  in 135 steps. Stage B is short on purpose: a 1,600-step run of the same recipe (same rates, cosine decay)
  ended with empty masks on every held-out class again, while 360 steps gave the scores below.
- Total training wall time {summary.get('wall_s')} s on {summary.get('threads')} CPU threads (torch
  {summary.get('torch')}), shared with other jobs. Seeded; resumable with `--resume`.
- Loss curves: `training/pretrain_loss.png`, `training/finetune_loss.png`.

Checkpoint size: {_mb(summary.get('checkpoint_bytes', 0))}.

## Evaluation (held-out data, IoU inside labelled pixels)

{format_table(rows) if rows else 'Not evaluated.'}

- *rstoolbox sen2*: a Sentinel-2 L2A scene in Pará, Brazil, never used in training (not even for the
  tokenizer); labels are sparse polygons, so IoU is computed on labelled pixels only.
- *eo-learn 2015-09-09*: a date held out from the eo-learn training dates; it is the **same place and the
  same label map** as training, so it only measures temporal generalisation and flatters the model.

{_verdict(rows)}

{('| quantization | weights in memory | note |' + chr(10) + '|---|---:|---|' + chr(10) + mem_lines) if mem_lines else ''}

## Limits (honest)

- Trained for minutes on a few small scenes; most targets are pseudo-labels from the spectral engine, so
  the model mostly imitates the engine and cannot be more accurate than it on those classes.
- The generated text comes from a linear head on frozen states: it is templated and short and not a
  reliable description (counts and locations can be wrong); the mask does not depend on it. Use the
  measured regions in the engine's reply instead.
- One class per pass; multi-class requests run one pass per class.
- Chips are {cfg.get('chip')} px: objects larger than a chip are seen piecewise.
- Relatively scaled (uncalibrated DN) scenes were only seen as pseudo-labelled data.
"""
