"""Text-pixel similarity head: a fast, strongly class-conditional mask term (LISA/CLIPSeg-style).

The SAM decoder only sees the stride-16 aggregated map and mixes the language prompts in
through attention, which on a small CPU budget learns "some mask" long before it learns
"the mask the instruction asked for". This head adds a direct term to the decoder's
stride-4 logits: per-pixel features built from the encoder's finer stages (S1 at stride 4,
S2 at stride 8, plus the aggregated stride-16 map) dotted with a projection of the
LayerNorm-ed mean condensed prompt. The prompt is normalised because the condensed tokens
start tiny (~1e-3) and differ between classes by even less; after LayerNorm the class
difference drives the logit sign from the first steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .encoder import LayerNorm2d

__all__ = ["SpexTextPixelHead"]


class SpexTextPixelHead(nn.Module):
    """``(stages, aggregated map, prompts) -> (B, 1, H/4, W/4)`` similarity logits."""

    def __init__(self, stage_channels: list[int], aggregator_channels: int, prompt_width: int,
                 width: int) -> None:
        super().__init__()
        self.proj_s1 = nn.Conv2d(stage_channels[0], width, kernel_size=1)
        self.proj_s2 = nn.Conv2d(stage_channels[1], width, kernel_size=1)
        self.proj_map = nn.Conv2d(aggregator_channels, width, kernel_size=1)
        self.norm = LayerNorm2d(width, eps=1e-6)
        self.mix = nn.Sequential(nn.Conv2d(width, width, kernel_size=3, padding=1), nn.GELU(),
                                 nn.Conv2d(width, width, kernel_size=1))
        self.prompt_norm = nn.LayerNorm(prompt_width)
        self.prompt_proj = nn.Sequential(nn.Linear(prompt_width, width), nn.GELU(), nn.Linear(width, width))
        self.bias = nn.Linear(prompt_width, 1)
        self.width = width

    def pixel_features(self, stages: list[torch.Tensor], fmap: torch.Tensor) -> torch.Tensor:
        """Per-pixel features at stride 4: ``(B, width, H/4, W/4)``."""
        dtype = self.proj_s1.weight.dtype
        s1 = self.proj_s1(stages[0].to(dtype))
        size = s1.shape[-2:]
        x = s1 + F.interpolate(self.proj_s2(stages[1].to(dtype)), size=size, mode="bilinear", align_corners=False)
        x = x + F.interpolate(self.proj_map(fmap.to(dtype)), size=size, mode="bilinear", align_corners=False)
        return self.mix(self.norm(x))

    def forward(self, stages: list[torch.Tensor], fmap: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        pix = self.pixel_features(stages, fmap)
        text = self.prompt_norm(prompts.to(pix.dtype).mean(dim=1))  # (B, W)
        query = self.prompt_proj(text)  # (B, width)
        logits = torch.einsum("bchw,bc->bhw", pix, query) / math.sqrt(self.width)
        return (logits + self.bias(text).view(-1, 1, 1)).unsqueeze(1)
