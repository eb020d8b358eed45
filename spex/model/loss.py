"""Loss terms of SPEX: causal-LM cross-entropy, pixel BCE and V-Net Dice (release recipe).

Total = w_lm * CE + w_bce * BCE + w_dice * Dice, with defaults 1.0 / 2.0 / 1.0.
``valid`` masks (True = pixel counts) let nodata / outside-footprint pixels drop out,
so invalid pixels are never taught as background.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bce_loss", "dice_loss", "lm_loss"]

IGNORE_INDEX = -100


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy, mean over positions whose label is not -100."""
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:].to(logits.device)
    if not (shift_labels != IGNORE_INDEX).any():
        return shift_logits.sum() * 0.0
    return F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1),
                           ignore_index=IGNORE_INDEX)


def bce_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy with logits, mean over valid pixels. Shapes ``(B, H, W)``."""
    logits = logits.float()
    target = target.float()
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if valid is None:
        return per_pixel.mean()
    weight = valid.float()
    return (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
              eps: float = 1e-3) -> torch.Tensor:
    """V-Net Dice with squared denominator: mean over samples of ``1 - 2Σpt / ((Σp²+ε)+(Σt²+ε))``."""
    p = torch.sigmoid(logits.float()).flatten(1)
    t = target.float().flatten(1)
    if valid is not None:
        w = valid.float().flatten(1)
        p, t = p * w, t * w
    inter = (p * t).sum(1)
    denom = ((p * p).sum(1) + eps) + ((t * t).sum(1) + eps)
    d = 2 * inter / denom
    return (1 - d).sum() / (p.shape[0] + torch.finfo(torch.float32).eps)
