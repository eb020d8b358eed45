"""The SPEX mask refiner: the LLM's [SEG] hidden state drives a small per-pixel decoder that corrects the engine.

As in SPEX (and LISA), the mask is decoded from the language model's hidden state at a
segmentation position: here the last token of a prompt holding the user's words, the
class and the SPIE attribute list of the engine's candidate regions (measured from indices,
never from labels), closed by ``[SEG]``. That vector (frozen SmolLM2, 576 wide) goes
through a projection to FiLM scales/shifts of a small convolutional decoder whose inputs
are the scene's normalised bands, spectral indices and the engine's evidence for the class
(its mask and signed index margin to the adaptive threshold). The decoder's output is
added to a learned multiple of the engine margin, with its last layer initialised to zero,
so an untrained refiner reproduces the engine and training learns corrections.

:func:`refiner_features` is a pure function of the rule context and the engine result.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["FEATURE_BANDS", "FEATURE_INDICES", "MaskRefiner", "RefinerConfig", "refiner_features",
           "N_FEATURES", "MARGIN_CHANNEL"]

FEATURE_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
FEATURE_INDICES = ("NDVI", "NDWI", "MNDWI", "NDBI", "BSI")
#: channels: bands, indices, engine mask (-1/+1), engine margin, band presence (one per band)
N_FEATURES = len(FEATURE_BANDS) * 2 + len(FEATURE_INDICES) + 2
MARGIN_CHANNEL = len(FEATURE_BANDS) + len(FEATURE_INDICES) + 1
#: index units per unit of tanh argument in the margin channel (0.25 index units ~ saturation)
MARGIN_SCALE = 8.0


@dataclass(frozen=True)
class RefinerConfig:
    """Shape of the refiner (saved as config.json next to the weights)."""

    cond_dim: int = 576
    width: int = 24
    layers: int = 3
    cond_hidden: int = 64
    in_channels: int = N_FEATURES

    def to_dict(self) -> dict:
        return asdict(self)


def refiner_features(ctx, rule, window: tuple[slice, slice] | None = None) -> np.ndarray:
    """(N_FEATURES, h, w) float32 inputs of the refiner for one class; zeros on invalid pixels.

    ``window`` (row slice, column slice) limits the output to a tile of the scene grid.

    Bands are reflectance centred on 0.15 and scaled by 0.15 (clipped), indices clipped to
    [-1, 1], missing bands / indices are 0 with a 0 presence flag, the margin is
    ``tanh(8 * s * (index - threshold))`` with s = +1 for ">" rules, -1 for "<".
    """
    from spex.errors import BandError, SpexError
    from spex.engine.rules.context import MASK_FEATURES

    win = window or (slice(None), slice(None))
    valid = ctx.valid()[win]
    h, w = valid.shape
    out = np.zeros((N_FEATURES, h, w), dtype=np.float32)
    nb = len(FEATURE_BANDS)
    for i, name in enumerate(FEATURE_BANDS):
        if not ctx.has(name):
            continue
        b = ctx.band(name)[win]
        with np.errstate(invalid="ignore"):
            out[i] = np.clip((np.nan_to_num(b, nan=0.15) - 0.15) / 0.15, -3.0, 6.0)
        out[nb + len(FEATURE_INDICES) + 2 + i] = 1.0
    for j, name in enumerate(FEATURE_INDICES):
        try:
            v = ctx.feature(name)[win]
        except (BandError, SpexError, KeyError, ValueError):
            continue
        out[nb + j] = np.clip(np.nan_to_num(v, nan=0.0), -1.0, 1.0)
    mask = np.asarray(rule.mask, dtype=bool)[win]
    out[nb + len(FEATURE_INDICES)] = np.where(mask, 1.0, -1.0)
    margin = None
    if rule.index not in (*MASK_FEATURES, "none", "") and math.isfinite(rule.threshold):
        try:
            v = ctx.feature(rule.index)[win]
            sign = 1.0 if rule.direction == ">" else -1.0
            with np.errstate(invalid="ignore"):
                margin = np.tanh(MARGIN_SCALE * sign * (np.nan_to_num(v, nan=rule.threshold) - rule.threshold))
        except (BandError, SpexError, KeyError, ValueError):
            margin = None
    if margin is None:
        margin = np.where(mask, 0.5, -0.5)
    # the rule's other tests (cloud, dark-NIR, exclusions) decide too: outside the mask the margin stays <= 0
    out[MARGIN_CHANNEL] = np.where(mask, np.maximum(margin, 0.05), np.minimum(margin, -0.05))
    out[:, ~valid] = 0.0
    return out


class MaskRefiner(nn.Module):
    """FiLM-conditioned residual conv decoder: (features, [SEG] hidden state) -> mask logits."""

    def __init__(self, config: RefinerConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or RefinerConfig()
        self.cond = nn.Sequential(nn.LayerNorm(c.cond_dim), nn.Linear(c.cond_dim, c.cond_hidden), nn.GELU(),
                                  nn.Linear(c.cond_hidden, 2 * c.width * c.layers))
        nn.init.zeros_(self.cond[-1].weight)
        nn.init.zeros_(self.cond[-1].bias)
        self.stem = nn.Conv2d(c.in_channels, c.width, 3, padding=1, padding_mode="replicate")
        self.blocks = nn.ModuleList(nn.Conv2d(c.width, c.width, 3, padding=1, padding_mode="replicate")
                                    for _ in range(c.layers - 1))
        self.head = nn.Conv2d(c.width, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.engine_gain = nn.Parameter(torch.tensor(4.0))

    def parts(self) -> dict[str, int]:
        """Parameters per part (model card)."""
        return {"projection (LLM hidden -> FiLM)": sum(p.numel() for p in self.cond.parameters()),
                "decoder convolutions": sum(p.numel() for m in (self.stem, self.blocks, self.head)
                                            for p in m.parameters()),
                "engine prior gain": 1}

    def forward(self, features: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """features (B, C, H, W), hidden (B, cond_dim) -> logits (B, H, W)."""
        c = self.config
        film = self.cond(hidden).view(-1, c.layers, 2, c.width, 1, 1)
        y = self.stem(features)
        y = nn.functional.gelu(y * (1 + film[:, 0, 0]) + film[:, 0, 1])
        for i, conv in enumerate(self.blocks, start=1):
            y = y + nn.functional.gelu(conv(y) * (1 + film[:, i, 0]) + film[:, i, 1])
        return self.head(y)[:, 0] + self.engine_gain * features[:, MARGIN_CHANNEL]
