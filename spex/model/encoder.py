"""Multispectral vision encoder: an N-band stem and four stages at strides 4/8/16/32.

Two block families share the stem / downsampler layout of InternImage (so released
InternImage weights map onto them, see :mod:`spex.model.convert_release`):

* ``convnext-ms`` — ConvNeXt blocks (7x7 depthwise conv, pre-norm, MLP, layer scale);
  the cheap CPU default of the small model.
* ``internimage-ms`` — InternImage-L layers (post-norm, layer scale, input/output
  projections around a 3x3 spatial core). DCNv3 has no CPU kernel, so the deformable
  core is a depthwise 3x3 convolution: exactly what DCNv3 computes with zero offsets,
  a learned per-channel 3x3 filter instead of content-dependent sampling.

Input: normalised bands (+ spectral priors) ``(B, C_in, H, W)``; output: 4 channels-first maps.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from .configuration_spex import SpexConfig

logger = logging.getLogger(__name__)

__all__ = ["LayerNorm2d", "SpexConvNeXtBlock", "SpexDownsample", "SpexInternImageLayer", "SpexStage",
           "SpexStem", "SpexVisionEncoder"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of a channels-first map (SAM / InternImage neck style)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop whole residual branches per sample during training."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    return x * x.new_empty(shape).bernoulli_(keep) / keep


class SpexStem(nn.Module):
    """Two 3x3 stride-2 convs (N -> C/2 -> C), LayerNorm after each, GELU between: stride 4.

    The first conv takes the N configured bands, which is what lets NIR/SWIR reach the
    network (the release's stem was fixed to 3 RGB channels).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels // 2, kernel_size=3, stride=2, padding=1)
        self.norm1 = LayerNorm2d(out_channels // 2, eps=1e-6)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(out_channels // 2, out_channels, kernel_size=3, stride=2, padding=1)
        self.norm2 = LayerNorm2d(out_channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))


class SpexDownsample(nn.Module):
    """3x3 stride-2 conv (no bias) + LayerNorm between stages (InternImage layout)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, bias=False)
        self.norm = LayerNorm2d(out_channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class _Mlp(nn.Module):
    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        hidden = int(channels * ratio)
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SpexConvNeXtBlock(nn.Module):
    """ConvNeXt block on a channels-first map: dw7x7 -> LN -> MLP -> layer scale, residual."""

    def __init__(self, channels: int, mlp_ratio: float, layer_scale: float, drop_path_rate: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, kernel_size=7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.mlp = _Mlp(channels, mlp_ratio)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale))
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.gamma * self.mlp(self.norm(y))
        return x + drop_path(y.permute(0, 3, 1, 2), self.drop_path_rate, self.training)


class _DepthwiseCore(nn.Module):
    """CPU replacement of DCNv3: input_proj -> depthwise 3x3 -> output_proj (channels-last)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.input_proj = nn.Linear(channels, channels)
        self.spatial = nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels, bias=False)
        self.output_proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        y = self.input_proj(x).permute(0, 3, 1, 2)
        y = self.spatial(y).permute(0, 2, 3, 1)
        return self.output_proj(y)


class SpexInternImageLayer(nn.Module):
    """InternImage-L layer (post-norm + layer scale) with the depthwise core; channels-first I/O."""

    def __init__(self, channels: int, mlp_ratio: float, layer_scale: float, drop_path_rate: float) -> None:
        super().__init__()
        self.dcn = _DepthwiseCore(channels)
        self.norm1 = nn.LayerNorm(channels, eps=1e-6)
        self.mlp = _Mlp(channels, mlp_ratio)
        self.norm2 = nn.LayerNorm(channels, eps=1e-6)
        self.weight1 = nn.Parameter(torch.full((channels,), layer_scale))
        self.weight2 = nn.Parameter(torch.full((channels,), layer_scale))
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = x + drop_path(self.weight1 * self.norm1(self.dcn(x)), self.drop_path_rate, self.training)
        x = x + drop_path(self.weight2 * self.norm2(self.mlp(x)), self.drop_path_rate, self.training)
        return x.permute(0, 3, 1, 2)


class SpexStage(nn.Module):
    """Blocks at one resolution; the stage output is taken before the downsampler."""

    def __init__(self, blocks: list[nn.Module], downsample: nn.Module | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        for block in self.blocks:
            x = block(x)
        return x, (self.downsample(x) if self.downsample is not None else None)


class SpexVisionEncoder(nn.Module):
    """N-band encoder producing stage maps S1..S4 at strides 4, 8, 16, 32."""

    def __init__(self, config: SpexConfig) -> None:
        super().__init__()
        channels, depths = config.encoder_channels, config.encoder_depths
        self.stem = SpexStem(config.num_input_channels, channels[0])
        total = sum(depths)
        rates = [config.encoder_drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # linear schedule
        block_cls = SpexConvNeXtBlock if config.encoder_type == "convnext-ms" else SpexInternImageLayer
        self.stages = nn.ModuleList()
        k = 0
        for i, (c, d) in enumerate(zip(channels, depths)):
            blocks = [block_cls(c, config.encoder_mlp_ratio, config.encoder_layer_scale, rates[k + j])
                      for j in range(d)]
            k += d
            down = SpexDownsample(c, channels[i + 1]) if i < 3 else None
            self.stages.append(SpexStage(blocks, down))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs: list[torch.Tensor] = []
        for stage in self.stages:
            out, x = stage(x)
            outs.append(out)
        return outs
