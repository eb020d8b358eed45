"""Stage B (mask instruction tuning) and stage C (answer-text head) of the SPEX model.

Stage B tunes the whole model on SPIE records with 2·BCE + Dice on the mask (restricted to
supervised pixels: unlabelled polygon gaps, cloud and nodata never count as background),
the mask conditioned on the *instruction* span. Stage C then trains only the LM output
head on the answers (cross-entropy), so the hidden states that condition the mask do not
move. Why separate: in this 2-M-parameter model, joint LM + mask training (LM weight 1.0
or 0.1) left the mask decoder at a spatially constant output (BCE stuck at ln 2 on a
64-chip overfit test), while mask-only training learned spatial masks; see the model card.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spex.train.data import collate_spie

__all__ = ["PromptClassHead", "finetune_step", "answer_head_step", "MASK_MODULES"]

#: Modules of the mask path (get ``mask_lr_mult`` x the base learning rate in stage B).
MASK_MODULES: tuple[str, ...] = ("mask_decoder", "mask_neck", "answer_condenser", "instruction_condenser",
                                 "text_pixel_head")


class PromptClassHead(nn.Module):
    """Training-only probe: which class did the instruction ask for, read from the condensed prompt.

    Why: with several classes per chip, the mask loss alone is minimised early by predicting
    "the average target" and ignoring the prompt (BCE stalls near 0.6; measured). A cross-
    entropy on the prompt's class makes the language states carry the requested class from
    the first steps, which the text-pixel term then turns into a class-specific mask. The
    head is not part of the shipped model; at inference the mask depends on text only.
    """

    def __init__(self, width: int, classes: list[str]) -> None:
        super().__init__()
        self.classes = list(classes)
        self.norm = nn.LayerNorm(width)
        self.linear = nn.Linear(width, len(classes))

    def forward(self, prompts: torch.Tensor) -> torch.Tensor:  # (B, P, W) -> (B, n_classes)
        return self.linear(self.norm(prompts.float().mean(dim=1)))

    def targets(self, items: list[dict]) -> torch.Tensor:
        return torch.tensor([self.classes.index(it["class"]) for it in items], dtype=torch.long)


def finetune_step(model, items: list[dict], pad_token_id: int, class_head: PromptClassHead | None = None,
                  class_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Stage-B losses of one batch: mask terms conditioned on the instruction span (+ prompt-class probe)."""
    batch = collate_spie(items, pad_token_id)
    batch["answer_mask"] = torch.zeros_like(batch["answer_mask"])
    batch.pop("labels")  # no LM loss in stage B
    out = model(**batch)
    losses = {"loss": out.loss, "bce": out.bce_loss.detach(), "dice": out.dice_loss.detach()}
    if class_head is not None and class_weight > 0:
        logits = class_head(out.prompt_embeds)
        target = class_head.targets(items)
        ce = F.cross_entropy(logits, target)
        losses["loss"] = out.loss + class_weight * ce
        losses["prompt_ce"] = ce.detach()
        losses["prompt_acc"] = (logits.argmax(1) == target).float().mean()
    return losses


def answer_head_step(model, items: list[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Stage-C loss of one batch: answer cross-entropy (only the LM head has gradients)."""
    batch = collate_spie(items, pad_token_id)
    for key in ("masks", "mask_valid"):
        batch.pop(key)
    out = model(**batch)
    return {"loss": out.lm_loss, "lm": out.lm_loss.detach()}
