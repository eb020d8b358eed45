"""Token context condensation: a variable-length span of LLM states -> K decoder prompt tokens.

Each sample's span (answer, or instruction) is selected by a boolean mask, so padding is
never averaged in (release weakness 10), then ``AdaptiveAvgPool1d(K)`` takes the mean of K
contiguous segments and an MLP maps them to the mask-decoder width (release LLAMANECK:
Linear d->8w, ReLU, Linear 8w->2w, ReLU, Linear 2w->w).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SpexCondenser", "pool_spans"]


def pool_spans(hidden: torch.Tensor, span_mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average K contiguous segments of each sample's selected positions.

    Args:
        hidden: ``(B, L, D)`` hidden states.
        span_mask: ``(B, L)`` bool, True on the positions of the span.
        k: number of output tokens.

    Returns:
        ``(B, K, D)`` pooled states (zeros for empty spans) and ``(B,)`` bool, True where the
        span was empty. A span shorter than K repeats tokens (AdaptiveAvgPool1d semantics).
    """
    if span_mask.shape != hidden.shape[:2]:
        raise ValueError(f"span mask shape {tuple(span_mask.shape)} does not match hidden states "
                         f"{tuple(hidden.shape[:2])}")
    out = hidden.new_zeros(hidden.shape[0], k, hidden.shape[-1])
    empty = ~span_mask.any(dim=1)
    for b in range(hidden.shape[0]):
        if empty[b]:
            continue
        tokens = hidden[b, span_mask[b]]  # (T, D)
        out[b] = F.adaptive_avg_pool1d(tokens.t().unsqueeze(0), k).squeeze(0).t()
    return out, empty


class SpexCondenser(nn.Module):
    """MLP applied to the K pooled tokens (the LLAMANECK ``text_mlp``)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.text_mlp = nn.Sequential(
            nn.Linear(in_features, out_features * 8),
            nn.ReLU(),
            nn.Linear(out_features * 8, out_features * 2),
            nn.ReLU(),
            nn.Linear(out_features * 2, out_features),
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:  # (B, K, D) -> (B, K, W)
        dtype = self.text_mlp[0].weight.dtype
        return self.text_mlp(pooled.to(dtype))
