"""Output dataclasses of the SPEX model: what ``forward`` and ``generate`` return.

Split from :mod:`spex.model.modeling_spex` (one concept per module) so the result types can be
read and imported without the model class; ``modeling_spex`` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput

__all__ = ["SpexGenerateOutput", "SpexOutput"]


@dataclass
class SpexOutput(ModelOutput):
    """Output of :meth:`SpexForConditionalGeneration.forward`.

    Attributes:
        loss: scalar, ``w_lm*lm_loss + mask_loss`` over the terms whose targets were given.
        lm_loss: scalar next-token cross-entropy (labels given).
        mask_loss: scalar ``w_bce*bce_loss + w_dice*dice_loss`` (masks given).
        bce_loss / dice_loss: the unweighted mask terms.
        logits: ``(B, L, V)`` LM logits.
        pred_masks: ``(B, 1, H, W)`` mask logits at input resolution (> threshold = selected).
        iou_scores: ``(B, 1)`` decoder's predicted IoU.
        last_hidden_state: ``(B, L, D)`` last-layer (post-norm) LLM states.
        prompt_embeds: ``(B, K or 2K, W)`` condensed prompt tokens that conditioned the mask.
    """

    loss: torch.FloatTensor | None = None
    lm_loss: torch.FloatTensor | None = None
    mask_loss: torch.FloatTensor | None = None
    bce_loss: torch.FloatTensor | None = None
    dice_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    pred_masks: torch.FloatTensor | None = None
    iou_scores: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    prompt_embeds: torch.FloatTensor | None = None


@dataclass
class SpexGenerateOutput(ModelOutput):
    """Output of :meth:`SpexForConditionalGeneration.generate` (text and mask in one call).

    Attributes:
        sequences: ``(B, T)`` generated token ids only (no prompt), padded after EOS.
        answer_lengths: ``(B,)`` answer tokens before the first EOS.
        pred_masks: ``(B, 1, H, W)`` mask logits at input resolution.
        masks: ``(B, H, W)`` bool, True = selected (``pred_masks > config.mask_threshold``).
        iou_scores: ``(B, 1)`` predicted IoU.
    """

    sequences: torch.LongTensor | None = None
    answer_lengths: torch.LongTensor | None = None
    pred_masks: torch.FloatTensor | None = None
    masks: torch.BoolTensor | None = None
    iou_scores: torch.FloatTensor | None = None
