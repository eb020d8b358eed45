"""Multiscale feature aggregation and the visual-token projector.

The aggregated map F (stride 16) is the single visual representation shared by the
language path (flattened to tokens, projected to the LLM width) and the mask path
(through the SAM-style neck in :mod:`spex.model.mask_decoder`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SpexAggregator", "SpexProjector"]


class SpexAggregator(nn.Module):
    """Resample S1..S4 to the stride-16 grid, concat [S3, S1, S2, S4], 1x1 conv, GN, GELU, dropout.

    Unlike the release (plain bilinear with ``align_corners=True``), the finer maps are
    downsampled with anti-aliasing so thin features (rivers, roads) do not alias; S4 is
    upsampled bilinearly.
    """

    def __init__(self, stage_channels: list[int], out_channels: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Conv2d(sum(stage_channels), out_channels, kernel_size=1)
        self.norm = nn.GroupNorm(groups, out_channels)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        s1, s2, s3, s4 = stages
        size = s3.shape[-2:]
        s1 = F.interpolate(s1, size=size, mode="bilinear", align_corners=False, antialias=True)
        s2 = F.interpolate(s2, size=size, mode="bilinear", align_corners=False, antialias=True)
        s4 = F.interpolate(s4, size=size, mode="bilinear", align_corners=False)
        x = torch.cat([s3, s1, s2, s4], dim=1)
        return self.dropout(self.act(self.norm(self.proj(x))))


class SpexProjector(nn.Module):
    """``mlp2x_gelu``: Linear(d_vis -> d_llm), GELU, Linear(d_llm -> d_llm)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_features, out_features)
        self.act = nn.GELU()
        self.linear_2 = nn.Linear(out_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))
