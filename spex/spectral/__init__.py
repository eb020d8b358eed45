"""Spectral indices (pure float32 numpy), cloud test, adaptive thresholds, per-scene cache."""

from spex.spectral.cache import IndexCache
from spex.spectral.cloud import cloud_mask
from spex.spectral.indices import (
    INDICES,
    SpectralIndex,
    available_indices,
    compute_index,
    normalized_difference,
    resolve_index,
)
from spex.spectral.thresholds import ThresholdResult, otsu_threshold

__all__ = [
    "INDICES",
    "IndexCache",
    "SpectralIndex",
    "ThresholdResult",
    "available_indices",
    "cloud_mask",
    "compute_index",
    "normalized_difference",
    "otsu_threshold",
    "resolve_index",
]
