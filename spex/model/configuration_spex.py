"""Configuration of the SPEX multispectral vision-language segmentation model.

One config holds every hyper-parameter (transformers style): the language model is a
sub-config (any causal-LM config, default a tiny Qwen2), the vision side is described by
flat fields. Bands are declared by canonical name (see :mod:`spex.bands`) together with
per-band normalisation statistics in reflectance units, so the model never guesses band
order or scaling.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from transformers import AutoConfig, PretrainedConfig, Qwen2Config

from spex.bands import CANONICAL_BANDS

from .spectral_priors import validate_priors

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_BAND_STATS", "ENCODER_TYPES", "SpexConfig"]

#: Indicative surface-reflectance (0..1) mean / std per canonical band over mixed land
#: cover (rounded from typical Sentinel-2 L2A / Landsat SR scene statistics). They only
#: centre and scale the input; a trained checkpoint stores the statistics it used.
#: ``thermal`` is absent on purpose: it is not a reflectance and needs explicit stats.
DEFAULT_BAND_STATS: dict[str, tuple[float, float]] = {
    "coastal": (0.08, 0.06),
    "blue": (0.08, 0.06),
    "green": (0.10, 0.07),
    "red": (0.11, 0.09),
    "rededge1": (0.15, 0.09),
    "rededge2": (0.22, 0.10),
    "rededge3": (0.25, 0.11),
    "nir": (0.27, 0.12),
    "nir08": (0.28, 0.12),
    "watervapour": (0.09, 0.05),
    "cirrus": (0.01, 0.01),
    "swir1": (0.22, 0.11),
    "swir2": (0.15, 0.10),
    "pan": (0.12, 0.08),
}

#: ``convnext-ms``: ConvNeXt-style blocks (7x7 depthwise conv, pre-norm), cheap on CPU.
#: ``internimage-ms``: InternImage-L layer layout (post-norm, layer scale, input/output
#: projections around a 3x3 spatial core). DCNv3 is CUDA-only, so the deformable core is
#: replaced by a depthwise 3x3 convolution (what DCNv3 computes with zero offsets).
ENCODER_TYPES: tuple[str, ...] = ("convnext-ms", "internimage-ms")


def _tiny_text_config() -> Qwen2Config:
    """Tiny Qwen2 used by the small CPU model; vocab is resized to the real tokenizer."""
    return Qwen2Config(
        vocab_size=1024,
        hidden_size=128,
        intermediate_size=384,  # multiples of 64: bitsandbytes' CPU 4-bit kernel needs them
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        rms_norm_eps=1e-6,
    )


def _full_text_config(**overrides: Any) -> Qwen2Config:
    """Qwen2.5-1.5B-class text config (shapes only; weights come from a checkpoint)."""
    kwargs: dict[str, Any] = dict(
        vocab_size=151936,
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=151643,
        eos_token_id=151645,
    )
    kwargs.update(overrides)
    return Qwen2Config(**kwargs)


class SpexConfig(PretrainedConfig):
    """Hyper-parameters of :class:`~spex.model.SpexForConditionalGeneration`.

    Args:
        text_config: causal-LM config (config object or dict with ``model_type``);
            None gives a tiny Qwen2 (hidden 128, 2 layers) for the small CPU model.
        band_names: canonical band names, in the order of ``pixel_values`` channels.
        num_bands: optional redundancy check against ``len(band_names)``.
        band_mean / band_std: per-band reflectance statistics (same order as
            ``band_names``); None takes :data:`DEFAULT_BAND_STATS`.
        encoder_type: one of :data:`ENCODER_TYPES`.
        encoder_channels: channels of the 4 stages (strides 4/8/16/32).
        encoder_depths: blocks per stage.
        encoder_mlp_ratio / encoder_layer_scale / encoder_drop_path_rate: block settings.
        aggregator_channels: output channels of the multiscale aggregation (1024 in the
            release); also the visual token width before the projector.
        aggregator_groups: GroupNorm groups of the aggregation (16 in the release).
        aggregator_dropout: dropout on the shared aggregated map (0.5 in the release).
        image_token_id: id of the ``<image>`` token; the prompt holds one copy per
            visual token (see :meth:`num_image_tokens`).
        num_condensed_tokens: K prompt tokens per condensed span (4 in the release).
        condition_on_instruction: also condense the instruction span into K more
            prompt tokens (fixes release weakness 16: mask conditioned on answer only).
        decoder_hidden_size / decoder_num_layers / decoder_num_heads / decoder_mlp_dim:
            SAM two-way mask decoder (256 / 2 / 8 / 2048 for the full model).
        lm_loss_weight / bce_loss_weight / dice_loss_weight: total loss weights
            (release: 1.0 / 2.0 / 1.0).
        dice_eps: epsilon of the squared-denominator Dice (1e-3 in the release).
        mask_threshold: logit threshold for the binary mask (0.0 = probability 0.5).
        text_pixel_similarity: add a text-pixel similarity term (stride-4 features from the
            encoder's S1/S2 stages and the aggregated map, dotted with the LayerNorm-ed mean
            condensed prompt) to the decoder logits; False (old configs) = SAM decoder only.
        text_pixel_width: feature width of that term.
        spectral_priors: ``(a, b)`` band-name pairs whose normalised differences
            ``(a - b) / (a + b)`` are computed inside the model and fed to the encoder
            beside the bands (see :mod:`spex.model.spectral_priors`); empty = bands only.
        band_presence: also feed one 0/1 channel per band saying whether it was present.
        text_pixel_spectral: add a full-resolution per-pixel term to the text-pixel
            similarity (a pixel MLP over bands + priors dotted with the prompt), so mask
            edges follow pixels rather than the stride-4 grid. Needs ``text_pixel_similarity``.
    """

    model_type = "spex"
    sub_configs: ClassVar[dict[str, Any]] = {"text_config": AutoConfig}

    def __init__(
        self,
        text_config: PretrainedConfig | Mapping[str, Any] | None = None,
        band_names: Sequence[str] = ("blue", "green", "red", "nir"),
        num_bands: int | None = None,
        band_mean: Sequence[float] | None = None,
        band_std: Sequence[float] | None = None,
        encoder_type: str = "convnext-ms",
        encoder_channels: Sequence[int] = (32, 64, 128, 256),
        encoder_depths: Sequence[int] = (1, 1, 2, 1),
        encoder_mlp_ratio: float = 4.0,
        encoder_layer_scale: float = 1e-6,
        encoder_drop_path_rate: float = 0.0,
        aggregator_channels: int = 256,
        aggregator_groups: int = 16,
        aggregator_dropout: float = 0.1,
        image_token_id: int | None = None,
        num_condensed_tokens: int = 4,
        condition_on_instruction: bool = True,
        decoder_hidden_size: int = 64,
        decoder_num_layers: int = 2,
        decoder_num_heads: int = 4,
        decoder_mlp_dim: int = 256,
        decoder_attention_downsample_rate: int = 2,
        decoder_iou_head_depth: int = 3,
        decoder_iou_head_hidden_dim: int | None = None,
        lm_loss_weight: float = 1.0,
        bce_loss_weight: float = 2.0,
        dice_loss_weight: float = 1.0,
        dice_eps: float = 1e-3,
        mask_threshold: float = 0.0,
        text_pixel_similarity: bool = False,
        text_pixel_width: int = 64,
        spectral_priors: Sequence[Sequence[str]] = (),
        band_presence: bool = False,
        text_pixel_spectral: bool = False,
        initializer_range: float = 0.02,
        **kwargs: Any,
    ) -> None:
        if text_config is None:
            text_config = _tiny_text_config()
        elif isinstance(text_config, Mapping):
            text_config = dict(text_config)
            text_type = text_config.pop("model_type", "qwen2")
            text_config = AutoConfig.for_model(text_type, **text_config)
        elif not isinstance(text_config, PretrainedConfig):
            raise TypeError(f"text_config must be a config, a dict or None, not {type(text_config).__name__}")

        band_names = tuple(str(b) for b in band_names)
        unknown = [b for b in band_names if b not in CANONICAL_BANDS]
        if unknown:
            raise ValueError(f"unknown band names {unknown}; expected canonical names from {CANONICAL_BANDS}")
        if not band_names:
            raise ValueError("band_names is empty; at least one band is needed")
        if len(set(band_names)) != len(band_names):
            raise ValueError(f"duplicate band names in {band_names}")
        if num_bands is not None and num_bands != len(band_names):
            raise ValueError(f"num_bands={num_bands} but {len(band_names)} band_names {band_names}")
        band_mean, band_std = _band_stats(band_names, band_mean, band_std)

        if encoder_type not in ENCODER_TYPES:
            raise ValueError(f"invalid encoder_type {encoder_type!r}; expected one of {ENCODER_TYPES}")
        encoder_channels = tuple(int(c) for c in encoder_channels)
        encoder_depths = tuple(int(d) for d in encoder_depths)
        if len(encoder_channels) != 4 or len(encoder_depths) != 4:
            raise ValueError(
                f"encoder_channels and encoder_depths need 4 stages, got {encoder_channels} / {encoder_depths}")
        if any(c <= 0 or c % 2 for c in encoder_channels) or any(d < 1 for d in encoder_depths):
            raise ValueError(f"encoder channels must be positive even numbers and depths >= 1, got "
                             f"{encoder_channels} / {encoder_depths}")
        if aggregator_channels % aggregator_groups:
            raise ValueError(f"aggregator_channels={aggregator_channels} is not divisible by "
                             f"aggregator_groups={aggregator_groups}")
        for name, p in (("aggregator_dropout", aggregator_dropout), ("encoder_drop_path_rate", encoder_drop_path_rate)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        spectral_priors = validate_priors(spectral_priors, band_names)
        if text_pixel_spectral and not text_pixel_similarity:
            raise ValueError("text_pixel_spectral needs text_pixel_similarity=True")
        if text_pixel_width < 1:
            raise ValueError(f"text_pixel_width must be >= 1, got {text_pixel_width}")
        if num_condensed_tokens < 1:
            raise ValueError(f"num_condensed_tokens must be >= 1, got {num_condensed_tokens}")
        internal = decoder_hidden_size // decoder_attention_downsample_rate
        if decoder_hidden_size % 8 or internal % decoder_num_heads or decoder_hidden_size % decoder_num_heads:
            raise ValueError(
                f"decoder_hidden_size={decoder_hidden_size} must be a multiple of 8 and, also after the "
                f"attention downsample rate {decoder_attention_downsample_rate}, of "
                f"decoder_num_heads={decoder_num_heads}")
        if image_token_id is not None and not 0 <= image_token_id < text_config.vocab_size:
            raise ValueError(f"image_token_id={image_token_id} outside the text vocabulary "
                             f"(size {text_config.vocab_size})")
        for name, w in (("lm_loss_weight", lm_loss_weight), ("bce_loss_weight", bce_loss_weight),
                        ("dice_loss_weight", dice_loss_weight)):
            if w < 0:
                raise ValueError(f"{name} must be >= 0, got {w}")

        self.text_config = text_config
        self.band_names = list(band_names)
        self.num_bands = len(band_names)
        self.band_mean = list(band_mean)
        self.band_std = list(band_std)
        self.encoder_type = encoder_type
        self.encoder_channels = list(encoder_channels)
        self.encoder_depths = list(encoder_depths)
        self.encoder_mlp_ratio = float(encoder_mlp_ratio)
        self.encoder_layer_scale = float(encoder_layer_scale)
        self.encoder_drop_path_rate = float(encoder_drop_path_rate)
        self.aggregator_channels = int(aggregator_channels)
        self.aggregator_groups = int(aggregator_groups)
        self.aggregator_dropout = float(aggregator_dropout)
        self.image_token_id = image_token_id
        self.num_condensed_tokens = int(num_condensed_tokens)
        self.condition_on_instruction = bool(condition_on_instruction)
        self.decoder_hidden_size = int(decoder_hidden_size)
        self.decoder_num_layers = int(decoder_num_layers)
        self.decoder_num_heads = int(decoder_num_heads)
        self.decoder_mlp_dim = int(decoder_mlp_dim)
        self.decoder_attention_downsample_rate = int(decoder_attention_downsample_rate)
        self.decoder_iou_head_depth = int(decoder_iou_head_depth)
        self.decoder_iou_head_hidden_dim = int(decoder_iou_head_hidden_dim or decoder_hidden_size)
        self.lm_loss_weight = float(lm_loss_weight)
        self.bce_loss_weight = float(bce_loss_weight)
        self.dice_loss_weight = float(dice_loss_weight)
        self.dice_eps = float(dice_eps)
        self.mask_threshold = float(mask_threshold)
        self.text_pixel_similarity = bool(text_pixel_similarity)
        self.text_pixel_width = int(text_pixel_width)
        self.spectral_priors = spectral_priors
        self.band_presence = bool(band_presence)
        self.text_pixel_spectral = bool(text_pixel_spectral)
        self.initializer_range = float(initializer_range)
        kwargs.setdefault("tie_word_embeddings", bool(getattr(text_config, "tie_word_embeddings", False)))
        super().__init__(**kwargs)

    # ------------------------------------------------------------------ helpers
    @property
    def image_stride(self) -> int:
        """Input pixels per visual token side (the aggregated map is at stride 16)."""
        return 16

    @property
    def num_input_channels(self) -> int:
        """Encoder input channels: bands, then spectral priors, then presence flags."""
        return self.num_bands * (2 if self.band_presence else 1) + len(self.spectral_priors)

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (the deepest stride)."""
        return 32

    def num_image_tokens(self, height: int, width: int) -> int:
        """Number of ``<image>`` tokens the prompt must hold for an image of this size."""
        if height % self.size_multiple or width % self.size_multiple or height <= 0 or width <= 0:
            raise ValueError(f"image size {height}x{width} is not a positive multiple of {self.size_multiple}")
        return (height // self.image_stride) * (width // self.image_stride)

    @classmethod
    def full_size(cls, band_names: Sequence[str] = ("blue", "green", "red", "nir"), *,
                  text_overrides: Mapping[str, Any] | None = None,
                  encoder_depths: Sequence[int] = (5, 5, 22, 5), **kwargs: Any) -> SpexConfig:
        """Release-sized SPEX: Qwen2.5-1.5B-class LLM, InternImage-L-shaped encoder, SAM decoder.

        ``text_overrides`` (e.g. ``{"num_hidden_layers": 2}``) and ``encoder_depths`` allow a
        reduced-depth build with the same module types, for tests.
        """
        text = _full_text_config(**dict(text_overrides or {}))
        defaults: dict[str, Any] = dict(
            text_config=text,
            band_names=band_names,
            encoder_type="internimage-ms",
            encoder_channels=(160, 320, 640, 1280),
            encoder_depths=encoder_depths,
            encoder_layer_scale=1.0,
            encoder_drop_path_rate=0.4,
            aggregator_channels=1024,
            aggregator_groups=16,
            aggregator_dropout=0.5,
            image_token_id=151665,
            num_condensed_tokens=4,
            decoder_hidden_size=256,
            decoder_num_layers=2,
            decoder_num_heads=8,
            decoder_mlp_dim=2048,
            decoder_iou_head_hidden_dim=256,
            pad_token_id=151643,
            eos_token_id=151645,
        )
        defaults.update(kwargs)
        return cls(**defaults)


def _band_stats(band_names: tuple[str, ...], mean: Sequence[float] | None,
                std: Sequence[float] | None) -> tuple[list[float], list[float]]:
    """Fill and validate per-band statistics; explicit values win over the defaults."""
    if mean is None or std is None:
        missing = [b for b in band_names if b not in DEFAULT_BAND_STATS]
        if missing:
            raise ValueError(f"no default reflectance statistics for bands {missing}; pass band_mean and band_std")
    mean = [DEFAULT_BAND_STATS[b][0] for b in band_names] if mean is None else [float(v) for v in mean]
    std = [DEFAULT_BAND_STATS[b][1] for b in band_names] if std is None else [float(v) for v in std]
    if len(mean) != len(band_names) or len(std) != len(band_names):
        raise ValueError(f"band_mean/band_std need {len(band_names)} values (one per band), "
                         f"got {len(mean)} / {len(std)}")
    if any(s <= 0 for s in std):
        raise ValueError(f"band_std values must be > 0, got {std}")
    return mean, std
