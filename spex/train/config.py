"""The training configuration file (JSON) of ``python -m spex train``.

One file says everything a run depends on: the model hyper-parameters (passed to
:class:`spex.model.SpexConfig`), the tokenizer size, and both stages' optimisation
settings. Unknown keys are rejected so that a typo never silently falls back to a default.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from spex.errors import SpexError
from spex.train.loop import LoopConfig

__all__ = ["TrainConfig", "SMALL_MODEL", "DEFAULT_CONFIG_PATH"]

DEFAULT_CONFIG_PATH = Path(__file__).with_name("spex_small.json")

#: The shipped small model: 6 bands (zero-filled when absent), tiny Qwen2 text decoder.
SMALL_MODEL: dict[str, Any] = {
    "band_names": ["blue", "green", "red", "nir", "swir1", "swir2"],
    "encoder_type": "convnext-ms",
    "encoder_channels": [32, 64, 128, 256],
    "encoder_depths": [1, 1, 2, 1],
    "aggregator_channels": 128,
    "aggregator_groups": 16,
    "aggregator_dropout": 0.1,
    "decoder_hidden_size": 64,
    "decoder_num_layers": 2,
    "decoder_num_heads": 4,
    "decoder_mlp_dim": 256,
    "text_config": {"model_type": "qwen2", "hidden_size": 128, "intermediate_size": 384,
                    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                    "max_position_embeddings": 2048, "tie_word_embeddings": False, "rms_norm_eps": 1e-6},
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (see :data:`DEFAULT_CONFIG_PATH` for the shipped one)."""

    model: dict[str, Any] = field(default_factory=lambda: dict(SMALL_MODEL))
    vocab_size: int = 1024
    chip: int = 64
    zoom: int = 2                      # chips are upsampled x zoom before the model (see data.zoom)
    band_dropout: float = 0.3
    max_length: int = 640
    spie_keep: float = 0.5             # share of SPIE-prompt records used (they are ~4x longer than plain ones)
    labelled_repeat: int = 2           # labelled records are seen this many times per pseudo-labelled one
    splits: tuple[str, ...] = ("train",)
    pretrain: LoopConfig = field(default_factory=lambda: LoopConfig(steps=300, batch_size=16, lr=2e-3))
    finetune: LoopConfig = field(default_factory=lambda: LoopConfig(steps=600, batch_size=8, lr=1e-3))
    answer_head: LoopConfig = field(default_factory=lambda: LoopConfig(steps=100, batch_size=8, lr=5e-3))
    mask_lr_mult: float = 5.0          # stage B: the mask path learns this much faster
    prompt_class_weight: float = 0.0   # stage B: weight of the prompt-class probe (see finetune.PromptClassHead)
    text_embedding_std: float | None = None  # re-initialise the LM token embeddings with this std (None: LM's own)
    class_balance: float = 0.0         # 0 = records as built; 1 = every class repeated up to the largest one
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpexError(f"unknown training config keys {unknown}; accepted: {sorted(known)}")
        kwargs = dict(data)
        for stage in ("pretrain", "finetune", "answer_head"):
            if stage in kwargs and isinstance(kwargs[stage], dict):
                try:
                    kwargs[stage] = LoopConfig(**kwargs[stage])
                except TypeError as exc:
                    raise SpexError(f"bad {stage} settings: {exc}") from exc
        if "splits" in kwargs:
            kwargs["splits"] = tuple(kwargs["splits"])
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SpexError(f"cannot read training config {path}: {exc}") from exc
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["splits"] = list(self.splits)
        return d
