"""Convert the released SPEX checkpoint (MiliLab/SPEX, LLaVA-OneVision fork) to this layout.

The release stores one ``LlavaQwenForCausalLM`` state dict. Its key layout (read from the
released sources) and where each part goes:

==========================================================================  ==============================
release key                                                                 here
==========================================================================  ==============================
``model.embed_tokens / model.layers.* / model.norm``, ``lm_head``           ``language_model.model.* / .lm_head``
``model.mm_projector.{0,2}`` (mlp2x_gelu)                                   ``projector.linear_{1,2}``
``model.vision_tower.vision_tower.vision_model.patch_embed.*`` (stem)       ``vision_encoder.stem.*``
``...vision_model.levels.i.blocks.j.{norm1.0,norm2.0,mlp,weight1,weight2}`` ``vision_encoder.stages.i.blocks.j.*``
``...levels.i.blocks.j.dcn.{input_proj,output_proj}``                       ``...blocks.j.dcn.{input_proj,output_proj}``
``...levels.i.downsample.{conv,norm.1}``                                    ``vision_encoder.stages.i.downsample.{conv,norm}``
``...vision_model.feat_aggregator.fuse_all.{0,1}`` (FeatureAggregator)      ``aggregator.{proj,norm}``
``...vision_model.visionneck.*`` (VisionTowerNeck)                          ``mask_neck.*``
``model.vision_tower.lan_neck.text_mlp.*`` (LLAMANECK)                      ``answer_condenser.text_mlp.*``
``model.vision_tower.sampromptencoder.no_mask_embed``                       ``mask_decoder.no_mask_embed``
``model.vision_tower.sampromptencoder.shared_embedding.positional_embedding`` ``mask_decoder.positional_embedding``
``model.vision_tower.mask_decoder.*`` (HF SamMaskDecoder)                   ``mask_decoder.decoder.*``
==========================================================================  ==============================

What cannot map, honestly:

* **Stem**: the release stem sees 3 ImageNet-normalised RGB channels. Its filters are
  copied to this model's ``red``/``green``/``blue`` input channels and every other band
  (NIR, SWIR...) gets zero weights; the input statistics differ too (reflectance vs
  ImageNet), so the encoder must be fine-tuned before NIR/SWIR carry any signal.
* **DCNv3**: ``dcn.offset``, ``dcn.mask`` and ``dcn.dw_conv`` (the offset/mask branch) are
  dropped; the CPU core's depthwise 3x3 ``dcn.spatial`` is set to the 1/9 box filter,
  which is exactly DCNv3 with zero offsets and uniform mask (its initial state), not
  the trained deformable sampling. Fine-tuning is required.
* **Mask decoder**: weights were trained with ``attention_similarity=False`` (a double
  softmax in token->image attention); this implementation uses the correct single
  softmax, so decoder outputs differ until fine-tuned.
* ``model.image_newline`` is dropped (one convention: no newline token); SAM prompt
  encoder point/mask embeddings are unused and dropped; ``instruction_condenser`` is new
  and stays randomly initialised.
* The aggregation here resamples with anti-aliasing (release: ``align_corners=True``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from spex.errors import ModelError

from .configuration_spex import SpexConfig

logger = logging.getLogger(__name__)

__all__ = ["DROPPED_PATTERNS", "RELEASE_KEY_MAPPING", "ConversionResult", "convert_release_checkpoint",
           "convert_release_state_dict", "map_release_key"]

_VM = r"model\.vision_tower\.vision_tower\.vision_model\."
_VT = r"model\.vision_tower\."

#: Regex -> replacement, tried in order; first match wins.
RELEASE_KEY_MAPPING: dict[str, str] = {
    r"^model\.(embed_tokens|layers|norm)\.(.*)$": r"language_model.model.\1.\2",
    r"^lm_head\.(.*)$": r"language_model.lm_head.\1",
    r"^model\.mm_projector\.0\.(.*)$": r"projector.linear_1.\1",
    r"^model\.mm_projector\.2\.(.*)$": r"projector.linear_2.\1",
    rf"^{_VM}patch_embed\.conv([12])\.(.*)$": r"vision_encoder.stem.conv\1.\2",
    rf"^{_VM}patch_embed\.norm([12])\.1\.(.*)$": r"vision_encoder.stem.norm\1.\2",
    rf"^{_VM}levels\.(\d+)\.blocks\.(\d+)\.norm([12])\.0\.(.*)$": r"vision_encoder.stages.\1.blocks.\2.norm\3.\4",
    rf"^{_VM}levels\.(\d+)\.blocks\.(\d+)\.mlp\.(fc[12])\.(.*)$": r"vision_encoder.stages.\1.blocks.\2.mlp.\3.\4",
    rf"^{_VM}levels\.(\d+)\.blocks\.(\d+)\.(weight[12])$": r"vision_encoder.stages.\1.blocks.\2.\3",
    rf"^{_VM}levels\.(\d+)\.blocks\.(\d+)\.dcn\.(input_proj|output_proj)\.(.*)$":
        r"vision_encoder.stages.\1.blocks.\2.dcn.\3.\4",
    rf"^{_VM}levels\.(\d+)\.downsample\.conv\.(.*)$": r"vision_encoder.stages.\1.downsample.conv.\2",
    rf"^{_VM}levels\.(\d+)\.downsample\.norm\.1\.(.*)$": r"vision_encoder.stages.\1.downsample.norm.\2",
    rf"^{_VM}feat_aggregator\.fuse_all\.0\.(.*)$": r"aggregator.proj.\1",
    rf"^{_VM}feat_aggregator\.fuse_all\.1\.(.*)$": r"aggregator.norm.\1",
    rf"^{_VM}visionneck\.(conv[12]|layer_norm[12])\.(.*)$": r"mask_neck.\1.\2",
    rf"^{_VT}lan_neck\.text_mlp\.(\d+)\.(.*)$": r"answer_condenser.text_mlp.\1.\2",
    rf"^{_VT}sampromptencoder\.no_mask_embed\.weight$": r"mask_decoder.no_mask_embed.weight",
    rf"^{_VT}sampromptencoder\.shared_embedding\.positional_embedding$": r"mask_decoder.positional_embedding",
    rf"^{_VT}mask_decoder\.(.*)$": r"mask_decoder.decoder.\1",
}

#: Release keys dropped on purpose (see module docstring).
DROPPED_PATTERNS: tuple[str, ...] = (
    rf"^{_VM}levels\.\d+\.blocks\.\d+\.dcn\.(offset|mask|dw_conv)\.",
    rf"^{_VM}levels\.\d+\.norm\.",
    rf"^{_VT}sampromptencoder\.(point_embed|not_a_point_embed|mask_embed)",
    r"^model\.image_newline$",
)

_RGB = ("red", "green", "blue")  # release channel order (PIL RGB)


@dataclass
class ConversionResult:
    """Converted state dict plus an account of everything that did not map one-to-one."""

    state_dict: dict[str, torch.Tensor]
    dropped: list[str] = field(default_factory=list)      # release keys intentionally unused
    unmapped: list[str] = field(default_factory=list)     # release keys with no rule (unexpected)
    synthesised: list[str] = field(default_factory=list)  # our keys set by the converter
    notes: list[str] = field(default_factory=list)


def map_release_key(key: str) -> str | None:
    """Our key for a release key, or None when no rule applies."""
    for pattern, repl in RELEASE_KEY_MAPPING.items():
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def _expand_stem(weight: torch.Tensor, band_names: list[str]) -> torch.Tensor:
    """(C, 3, k, k) RGB filters -> (C, N, k, k): RGB to their bands, zeros elsewhere."""
    if weight.shape[1] != 3:
        raise ModelError(f"release stem has {weight.shape[1]} input channels; expected 3 (RGB)")
    out = weight.new_zeros(weight.shape[0], len(band_names), *weight.shape[2:])
    for i, band in enumerate(_RGB):
        if band in band_names:
            out[:, band_names.index(band)] = weight[:, i]
    return out


def convert_release_state_dict(state_dict: Mapping[str, torch.Tensor], config: SpexConfig) -> ConversionResult:
    """Rename and adapt release weights for :class:`SpexForConditionalGeneration` built from ``config``.

    ``config`` should be ``SpexConfig.full_size(band_names=...)`` (encoder_type
    ``internimage-ms``) with the release's depths; shapes are checked by ``load_state_dict``.
    """
    if config.encoder_type != "internimage-ms":
        raise ModelError(f"release weights need encoder_type 'internimage-ms', config has {config.encoder_type!r}")
    result = ConversionResult(state_dict={})
    missing_rgb = [b for b in _RGB if b not in config.band_names]
    if missing_rgb:
        result.notes.append(f"bands {missing_rgb} absent: their RGB stem filters are dropped")
    for key, value in state_dict.items():
        if any(re.match(p, key) for p in DROPPED_PATTERNS):
            result.dropped.append(key)
            continue
        new = map_release_key(key)
        if new is None:
            result.unmapped.append(key)
            continue
        if new == "vision_encoder.stem.conv1.weight":
            value = _expand_stem(value, list(config.band_names))
        result.state_dict[new] = value
    for key in list(result.state_dict):
        m = re.match(r"^(vision_encoder\.stages\.\d+\.blocks\.\d+\.dcn\.)input_proj\.weight$", key)
        if m:
            channels = result.state_dict[key].shape[0]
            spatial = m.group(1) + "spatial.weight"
            result.state_dict[spatial] = torch.full((channels, 1, 3, 3), 1.0 / 9.0,
                                                    dtype=result.state_dict[key].dtype)
            result.synthesised.append(spatial)
    result.notes.append("instruction_condenser is new: randomly initialised, needs training")
    result.notes.append("mask decoder trained under a double softmax; fine-tune before use")
    if result.unmapped:
        logger.warning("%d release keys have no mapping, e.g. %s", len(result.unmapped), result.unmapped[:3])
    return result


def _read_state_dict(src: Path) -> dict[str, torch.Tensor]:
    files = [src] if src.is_file() else sorted(src.glob("*.safetensors")) or sorted(src.glob("*.bin"))
    if not files:
        raise ModelError(f"no *.safetensors or *.bin weights in {src}")
    out: dict[str, torch.Tensor] = {}
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            out.update(load_file(str(f)))
        else:
            out.update(torch.load(f, map_location="cpu", weights_only=True))
    return out


def convert_release_checkpoint(src: str | Path, out_dir: str | Path, config: SpexConfig) -> Path:
    """Read release weights (file or folder), convert, and ``save_pretrained`` to ``out_dir``."""
    from .modeling_spex import SpexForConditionalGeneration

    result = convert_release_state_dict(_read_state_dict(Path(src)), config)
    model = SpexForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(result.state_dict, strict=False)
    if unexpected:
        raise ModelError(f"converted weights have keys this model lacks: {unexpected[:5]}")
    logger.info("converted; %d keys left at init: %s", len(missing), missing[:10])
    out = Path(out_dir)
    model.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m spex.model.convert_release SRC OUT --bands blue green red nir``."""
    import argparse

    parser = argparse.ArgumentParser(description="Convert released SPEX weights to this implementation.")
    parser.add_argument("src", help="release weights: a .safetensors/.bin file or a folder of them")
    parser.add_argument("out", help="output folder (save_pretrained layout)")
    parser.add_argument("--bands", nargs="+", default=["blue", "green", "red", "nir"],
                        help="canonical band names of the converted model's input, in order")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    convert_release_checkpoint(args.src, args.out, SpexConfig.full_size(band_names=args.bands))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
