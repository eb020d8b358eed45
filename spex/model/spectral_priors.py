"""Spectral priors as model input: normalised-difference indices and band-presence flags.

SPEX's premise is that spectral priors (NDVI, NDWI, NDBI...) carry the class evidence a
remote-sensing expert reads first. Feeding them to the network explicitly, next to the
normalised bands, matters most where a small model trained on a few scenes must
generalise: a normalised difference ``(a - b) / (a + b)`` is invariant to a common gain
(illumination, sun angle, L1C vs L2A brightness), so "water" or "vegetation" looks the
same on a scene the model never saw. Band-presence flags tell the network *which* bands
the scene had (a missing SWIR band is NaN, normalised to 0, otherwise indistinguishable
from an average SWIR value), so it can switch evidence on 4-band or RGB input.

No parameters: the layer is a pure function of the reflectance, so it adds nothing to
the checkpoint and quantization cannot touch it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["DEFAULT_SPECTRAL_PRIORS", "SpexSpectralPriors", "validate_priors"]

#: (a, b) pairs giving (a - b) / (a + b): NDVI, NDWI (McFeeters), MNDWI, NDBI, NBR,
#: the SWIR ratio (clays / dry soil), and two visible-only ones that RGB input still has.
DEFAULT_SPECTRAL_PRIORS: tuple[tuple[str, str], ...] = (
    ("nir", "red"), ("green", "nir"), ("green", "swir1"), ("swir1", "nir"), ("nir", "swir2"),
    ("swir1", "swir2"), ("green", "red"), ("blue", "red"),
)

#: Normalised differences of land covers span about [-0.6, 0.9]; x2 brings them near unit scale.
PRIOR_SCALE = 2.0


def validate_priors(priors: Sequence[Sequence[str]], band_names: Sequence[str]) -> list[list[str]]:
    """Pairs as lists of two distinct configured band names (ValueError otherwise)."""
    out: list[list[str]] = []
    for pair in priors:
        pair = [str(b) for b in pair]
        if len(pair) != 2 or pair[0] == pair[1]:
            raise ValueError(f"a spectral prior is a pair of two different band names, got {pair}")
        missing = [b for b in pair if b not in band_names]
        if missing:
            raise ValueError(f"spectral prior {pair} uses bands {missing} that are not in band_names {list(band_names)}")
        out.append(pair)
    return out


class SpexSpectralPriors(nn.Module):
    """``(B, N, H, W)`` reflectance (NaN = missing) -> ``(B, P [+ N], H, W)`` prior channels.

    Each prior is ``PRIOR_SCALE * (a - b) / (a + b)``, 0 where a band is missing or the sum
    is not positive. With ``presence``, N more channels hold 1 where the band is finite.
    """

    def __init__(self, band_names: Sequence[str], priors: Sequence[Sequence[str]], presence: bool) -> None:
        super().__init__()
        index = {b: i for i, b in enumerate(band_names)}
        pairs = validate_priors(priors, band_names)
        # Plain lists, not buffers: from_pretrained materialises modules from the meta device
        # and would leave non-persistent index buffers uninitialised.
        self.index_a = [index[a] for a, _ in pairs]
        self.index_b = [index[b] for _, b in pairs]
        self.presence = bool(presence)

    def forward(self, reflectance: torch.Tensor) -> torch.Tensor:
        x = reflectance.float()
        parts: list[torch.Tensor] = []
        if self.index_a:
            a = x[:, self.index_a]
            b = x[:, self.index_b]
            total = a + b
            nd = (a - b) / torch.where(total > 0, total, torch.ones_like(total))
            ok = torch.isfinite(nd) & (total > 0)
            parts.append(PRIOR_SCALE * torch.where(ok, nd.clamp(-1.0, 1.0), torch.zeros_like(nd)))
        if self.presence:
            parts.append(torch.isfinite(x).float())
        if not parts:
            return x.new_zeros(x.shape[0], 0, *x.shape[-2:])
        return torch.cat(parts, dim=1)
