"""SPEX model: config/modeling pair (transformers style), loading with quantization, backend.

``SpexBackend`` lives in :mod:`spex.model.backend` and is imported lazily, so that using the
model classes does not pull in the scene / engine stack.
"""

from __future__ import annotations

from typing import Any

from .configuration_spex import DEFAULT_BAND_STATS, ENCODER_TYPES, SpexConfig
from .loading import QUANTIZATION_MODES, load_spex, memory_report, quantization_config
from .modeling_spex import SpexForConditionalGeneration, SpexGenerateOutput, SpexOutput, SpexPreTrainedModel

__all__ = [
    "DEFAULT_BAND_STATS",
    "ENCODER_TYPES",
    "QUANTIZATION_MODES",
    "SpexBackend",
    "SpexConfig",
    "SpexForConditionalGeneration",
    "SpexGenerateOutput",
    "SpexOutput",
    "SpexPreTrainedModel",
    "load_spex",
    "memory_report",
    "quantization_config",
]


def __getattr__(name: str) -> Any:
    if name == "SpexBackend":
        from .backend import SpexBackend

        return SpexBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
