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

from spex.train.data import collate_spie

__all__ = ["finetune_step", "answer_head_step", "MASK_MODULES"]

#: Modules of the mask path (get ``mask_lr_mult`` x the base learning rate in stage B).
MASK_MODULES: tuple[str, ...] = ("mask_decoder", "mask_neck", "answer_condenser", "instruction_condenser",
                                 "text_pixel_head")


def finetune_step(model, items: list[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Stage-B losses of one batch: mask terms only, conditioned on the instruction span."""
    batch = collate_spie(items, pad_token_id)
    batch["answer_mask"] = torch.zeros_like(batch["answer_mask"])
    batch.pop("labels")  # no LM loss in stage B
    out = model(**batch)
    return {"loss": out.loss, "bce": out.bce_loss.detach(), "dice": out.dice_loss.detach()}


def answer_head_step(model, items: list[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Stage-C loss of one batch: answer cross-entropy (only the LM head has gradients)."""
    batch = collate_spie(items, pad_token_id)
    for key in ("masks", "mask_valid"):
        batch.pop(key)
    out = model(**batch)
    return {"loss": out.lm_loss, "lm": out.lm_loss.detach()}
