"""Mask path: SAM-style neck on the aggregated map and the SAM two-way mask decoder.

Both the small and the full model use the transformers ``SamMaskDecoder`` (two-way
transformer, hypernetwork mask head); only the widths differ. It is always called with
``attention_similarity=None``: the release passed ``False``, which in transformers 4.46
applied a second softmax to the token->image attention (weakness 8). Weights trained
under that quirk therefore need fine-tuning here.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import SamMaskDecoderConfig
from transformers.models.sam.modeling_sam import SamMaskDecoder

from .configuration_spex import SpexConfig
from .encoder import LayerNorm2d

__all__ = ["SpexMaskDecoder", "SpexMaskNeck"]


class SpexMaskNeck(nn.Module):
    """1x1 conv (no bias) -> LN2d -> 3x3 conv (no bias) -> LN2d: aggregated map -> decoder width."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.layer_norm1 = LayerNorm2d(out_channels, eps=1e-6)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.layer_norm2 = LayerNorm2d(out_channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_norm2(self.conv2(self.layer_norm1(self.conv1(x))))


class SpexMaskDecoder(nn.Module):
    """Sparse language prompts + image embedding -> low-resolution mask logits (stride 4).

    Uses SAM's random-Fourier positional code on cell centres and the learned
    ``no_mask_embed`` as dense prompt; no point or box prompts.
    """

    def __init__(self, config: SpexConfig) -> None:
        super().__init__()
        width = config.decoder_hidden_size
        sam_config = SamMaskDecoderConfig(
            hidden_size=width,
            num_hidden_layers=config.decoder_num_layers,
            num_attention_heads=config.decoder_num_heads,
            mlp_dim=config.decoder_mlp_dim,
            attention_downsample_rate=config.decoder_attention_downsample_rate,
            num_multimask_outputs=3,
            iou_head_depth=config.decoder_iou_head_depth,
            iou_head_hidden_dim=config.decoder_iou_head_hidden_dim,
        )
        sam_config._attn_implementation = "sdpa"
        self.decoder = SamMaskDecoder(sam_config)
        self.positional_embedding = nn.Parameter(torch.randn(2, width // 2))
        self.no_mask_embed = nn.Embedding(1, width)

    def image_positional_embeddings(self, height: int, width: int) -> torch.Tensor:
        """SAM Fourier code of the cell centres of a ``height x width`` grid: ``(1, C, h, w)``."""
        pe = self.positional_embedding
        ys = (torch.arange(height, device=pe.device, dtype=pe.dtype) + 0.5) / height
        xs = (torch.arange(width, device=pe.device, dtype=pe.dtype) + 0.5) / width
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
        coords = 2 * math.pi * ((2 * grid - 1) @ pe)
        return torch.cat([coords.sin(), coords.cos()], dim=-1).permute(2, 0, 1).unsqueeze(0)

    def forward(self, image_embeddings: torch.Tensor, prompts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode one mask per sample.

        Args:
            image_embeddings: ``(B, C, h, w)`` neck output.
            prompts: ``(B, P, C)`` condensed language prompt tokens.

        Returns:
            ``(B, 1, 4h, 4w)`` mask logits and ``(B, 1)`` predicted IoU.
        """
        b, c, h, w = image_embeddings.shape
        dtype = self.no_mask_embed.weight.dtype
        image_embeddings = image_embeddings.to(dtype)
        pos = self.image_positional_embeddings(h, w).to(dtype).expand(b, -1, -1, -1)
        dense = self.no_mask_embed.weight.reshape(1, c, 1, 1).expand(b, c, h, w)
        masks, iou = self.decoder(
            image_embeddings=image_embeddings,
            image_positional_embeddings=pos,
            sparse_prompt_embeddings=prompts.to(dtype).unsqueeze(1),
            dense_prompt_embeddings=dense,
            multimask_output=False,
            attention_similarity=None,
            target_embedding=None,
        )
        return masks[:, 0], iou[:, 0]
