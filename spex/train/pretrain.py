"""Stage A: multispectral visual pretraining by masked band / patch reconstruction.

Unlabelled chips teach the N-band encoder what reflectance spectra look like before any
instruction data is seen. Per sample, random square patches (all bands) and random whole
bands are hidden (set to 0 = the band mean after normalisation, the same value used for
bands a sensor lacks); a light head on the four stage maps reconstructs every band that was
originally present, and the MSE is taken only on the hidden values. Predicting a hidden
SWIR band from visible VNIR is exactly the spectral relation the extraction needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ReconstructionHead", "hide", "reconstruction_loss", "pretrain_step"]


class ReconstructionHead(nn.Module):
    """Stage maps (strides 4/8/16/32) -> per-pixel band values (train-only, not shipped)."""

    def __init__(self, stage_channels: list[int], num_bands: int, width: int = 64) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in stage_channels)
        self.fuse = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.GELU(), nn.Conv2d(width, num_bands, 1))

    def forward(self, stages: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        base = stages[0].shape[-2:]
        x = sum(F.interpolate(lat(s), size=base, mode="bilinear", align_corners=False)
                for lat, s in zip(self.lateral, stages))
        return F.interpolate(self.fuse(x), size=size, mode="bilinear", align_corners=False)


def hide(pixels: torch.Tensor, present: torch.Tensor, *, patch: int = 8, patch_ratio: float = 0.4,
         band_ratio: float = 0.25, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide random patches and bands.

    Args:
        pixels: ``(B, C, H, W)`` normalised input.
        present: ``(B, C)`` bool, bands the chip really has.

    Returns:
        The corrupted input and a ``(B, C, H, W)`` bool map of hidden (present) values.
    """
    b, c, h, w = pixels.shape
    gh, gw = max(1, h // patch), max(1, w // patch)
    patches = torch.rand(b, 1, gh, gw, generator=generator) < patch_ratio
    patches = F.interpolate(patches.float(), size=(h, w), mode="nearest").bool()
    bands = (torch.rand(b, c, 1, 1, generator=generator) < band_ratio) & present[:, :, None, None]
    hidden = (patches | bands) & present[:, :, None, None]
    return pixels.masked_fill(hidden, 0.0), hidden


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, hidden: torch.Tensor,
                        valid: torch.Tensor) -> torch.Tensor:
    """MSE over hidden values on valid pixels (0 when nothing was hidden)."""
    sel = hidden & valid[:, None]
    if not sel.any():
        return pred.sum() * 0.0
    return F.mse_loss(pred[sel], target[sel])


def pretrain_step(model, head: ReconstructionHead, items: list[dict]) -> dict[str, torch.Tensor]:
    """Losses of one stage-A batch (``items`` from :class:`spex.train.data.ChipDataset`)."""
    pixels = torch.stack([it["pixels"] for it in items])
    valid = torch.stack([it["valid"] for it in items])
    present = torch.stack([it["present"] for it in items])
    target = model.normalize_pixels(pixels)
    _, hidden = hide(target, present)
    # Hidden values become NaN reflectance: the same path as a band the sensor lacks
    # (0 after normalisation, spectral priors and presence flags switched off there).
    corrupted = model.encoder_input(pixels.masked_fill(hidden, float("nan")))
    pred = head(model.vision_encoder(corrupted), tuple(target.shape[-2:]))
    loss = reconstruction_loss(pred, target, hidden, valid)
    return {"loss": loss, "recon_mse": loss.detach()}
