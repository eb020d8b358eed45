"""Text-pixel similarity head: a fast, strongly class-conditional mask term (LISA/CLIPSeg-style).

The SAM decoder only sees the stride-16 aggregated map and mixes the language prompts in
through attention, which on a small CPU budget learns "some mask" long before it learns
"the mask the instruction asked for". This head adds a direct term to the decoder's
stride-4 logits: per-pixel features built from the encoder's finer stages (S1 at stride 4,
S2 at stride 8, plus the aggregated stride-16 map) dotted with a projection of the
LayerNorm-ed mean condensed prompt. The prompt is normalised because the condensed tokens
start tiny (~1e-3) and differ between classes by even less; after LayerNorm the class
difference drives the logit sign from the first steps.

With ``spectral_channels`` (config ``text_pixel_spectral``) a second, full-resolution term
is added: a per-pixel MLP over the encoder input (normalised bands + spectral priors)
dotted with its own projection of the prompt. Land-cover classes are largely decided by a
pixel's spectrum; this term lets the mask follow pixel edges instead of the stride-4 grid,
and its features are also pooled into the stride-4 path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .encoder import LayerNorm2d

__all__ = ["SpexTextPixelHead"]


class SpexTextPixelHead(nn.Module):
    """``(stages, aggregated map, prompts[, pixels])`` -> similarity logits at stride 4 [and full size]."""

    def __init__(self, stage_channels: list[int], aggregator_channels: int, prompt_width: int,
                 width: int, spectral_channels: int = 0) -> None:
        super().__init__()
        self.spectral = (nn.Sequential(nn.Conv2d(spectral_channels, width, kernel_size=1), nn.GELU(),
                                       nn.Conv2d(width, width, kernel_size=1), nn.GELU(),
                                       nn.Conv2d(width, width, kernel_size=1), LayerNorm2d(width, eps=1e-6))
                         if spectral_channels else None)  # normalised like the stride-4 path: bounded logits
        self.spectral_query = (nn.Sequential(nn.Linear(prompt_width, width), nn.GELU(), nn.Linear(width, width))
                               if spectral_channels else None)
        # same bounded form as the stride-4 term: |logit| <= exp(spectral_log_scale)
        self.spectral_log_scale = nn.Parameter(torch.tensor(math.log(5.0))) if spectral_channels else None
        self.proj_s1 = nn.Conv2d(stage_channels[0], width, kernel_size=1)
        self.proj_s2 = nn.Conv2d(stage_channels[1], width, kernel_size=1)
        self.proj_map = nn.Conv2d(aggregator_channels, width, kernel_size=1)
        self.norm = LayerNorm2d(width, eps=1e-6)
        self.mix = nn.Sequential(nn.Conv2d(width, width, kernel_size=3, padding=1), nn.GELU(),
                                 nn.Conv2d(width, width, kernel_size=1))
        self.prompt_norm = nn.LayerNorm(prompt_width)
        self.prompt_proj = nn.Sequential(nn.Linear(prompt_width, width), nn.GELU(), nn.Linear(width, width))
        self.bias = nn.Linear(prompt_width, 1)
        # Bounded, CLIP-style logits: scale * (cosine + tanh(bias)). With a raw dot product the
        # query grew without limit and the BCE exploded (to ~90 at lr 1e-2; long runs ended with
        # empty masks), measured on the tiny training test.
        self.log_scale = nn.Parameter(torch.tensor(math.log(5.0)))
        self.width = width

    def pixel_features(self, stages: list[torch.Tensor], fmap: torch.Tensor,
                       spectral: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel features at stride 4: ``(B, width, H/4, W/4)``."""
        dtype = self.proj_s1.weight.dtype
        s1 = self.proj_s1(stages[0].to(dtype))
        size = s1.shape[-2:]
        x = s1 + F.interpolate(self.proj_s2(stages[1].to(dtype)), size=size, mode="bilinear", align_corners=False)
        x = x + F.interpolate(self.proj_map(fmap.to(dtype)), size=size, mode="bilinear", align_corners=False)
        if spectral is not None:
            x = x + F.adaptive_avg_pool2d(spectral, size)
        return self.mix(self.norm(x))

    def forward(self, stages: list[torch.Tensor], fmap: torch.Tensor, prompts: torch.Tensor,
                pixels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stride-4 logits ``(B, 1, H/4, W/4)`` and, with the spectral term, full-size ``(B, 1, H, W)``.

        ``pixels`` is the encoder input (normalised bands + priors); needed by the spectral term.
        """
        spectral = None
        if self.spectral is not None:
            if pixels is None:
                raise ValueError("this text-pixel head has a spectral term: pass the encoder input as pixels")
            spectral = self.spectral(pixels.to(self.proj_s1.weight.dtype))
        pix = self.pixel_features(stages, fmap, spectral)
        text = self.prompt_norm(prompts.to(pix.dtype).mean(dim=1))  # (B, W)
        query = self.prompt_proj(text)  # (B, width)
        scale = self.log_scale.clamp(max=math.log(50.0)).exp()
        cos = torch.einsum("bchw,bc->bhw", F.normalize(pix, dim=1), F.normalize(query, dim=-1))
        low = (scale * (cos + torch.tanh(self.bias(text)).view(-1, 1, 1))).unsqueeze(1)
        if spectral is None:
            return low, None
        q = F.normalize(self.spectral_query(text), dim=-1)
        s_full = self.spectral_log_scale.clamp(max=math.log(50.0)).exp()
        full = s_full * torch.einsum("bchw,bc->bhw", F.normalize(spectral, dim=1), q)
        return low, full.unsqueeze(1)
