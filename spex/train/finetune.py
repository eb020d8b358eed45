"""Stage B: instruction tuning of the whole SPEX model on SPIE records.

Loss = LM cross-entropy on the answer (+ its ``<|im_end|>``) + 2·BCE + 1·Dice on the mask,
the mask terms restricted to supervised pixels (``mask_valid``): unlabelled pixels of sparse
polygon labels, cloudy and invalid pixels never count as background.
"""

from __future__ import annotations

import torch

from spex.train.data import collate_spie

__all__ = ["finetune_step"]


def finetune_step(model, items: list[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Losses of one stage-B batch (``items`` from :class:`spex.train.data.SpieDataset`)."""
    batch = collate_spie(items, pad_token_id)
    out = model(**batch)
    return {"loss": out.loss, "lm": out.lm_loss.detach(), "bce": out.bce_loss.detach(),
            "dice": out.dice_loss.detach()}
