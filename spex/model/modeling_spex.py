"""SPEX model: multispectral encoder + LLM + condensed-language-prompted SAM mask decoder.

Data flow (one convention for training and inference, no ``image_newline``)::

    pixel_values (B, N, H, W) reflectance in config.band_names order
      -> per-band normalisation (NaN -> band mean)
         [+ SpexSpectralPriors: normalised differences, band-presence flags, when configured]
      -> SpexVisionEncoder -> S1..S4
      -> SpexAggregator -> F (B, C, H/16, W/16)
           |-> flatten -> SpexProjector -> visual tokens, spliced at the ``<image>`` tokens
           |   (the prompt holds exactly (H/16)*(W/16) of them) -> causal LM
           |-> SpexMaskNeck -> image embedding for the mask decoder
    last-layer LLM states of the answer span  -> pool to K -> answer_condenser      \\
    last-layer LLM states of the instruction  -> pool to K -> instruction_condenser -> prompts
      -> SpexMaskDecoder (SAM two-way, attention_similarity=None) -> logits (B, 1, H/4, W/4)
      [+ SpexTextPixelHead: bounded cosine of S1/S2/F per-pixel features with LayerNorm(mean prompt),
         when ``config.text_pixel_similarity``] -> bilinear to (H, W)
      [+ full-resolution spectral term of the same head, when ``config.text_pixel_spectral``]
      = ``pred_masks``

Spans are boolean masks over the token sequence (True = token belongs to the span); the
answer span covers the answer's content tokens (not the chat header, not ``<|im_end|>``).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from spex.errors import ModelError

from .aggregator import SpexAggregator, SpexProjector
from .bnb_logging import _quiet_bnb
from .condenser import SpexCondenser, pool_spans
from .configuration_spex import SpexConfig
from .encoder import SpexVisionEncoder
from .loss import bce_loss, dice_loss, lm_loss
from .mask_decoder import SpexMaskDecoder, SpexMaskNeck
from .outputs import SpexGenerateOutput, SpexOutput
from .padding import _left_pad
from .pretrained import SpexPreTrainedModel
from .spectral_priors import SpexSpectralPriors
from .text_pixel import SpexTextPixelHead

logger = logging.getLogger(__name__)

# SpexOutput, SpexGenerateOutput (outputs.py), SpexPreTrainedModel (pretrained.py) and _quiet_bnb
# (bnb_logging.py, also used by loading.py) are re-exported: imports through this module keep working.
__all__ = ["SpexForConditionalGeneration", "SpexGenerateOutput", "SpexOutput", "SpexPreTrainedModel"]


class SpexForConditionalGeneration(SpexPreTrainedModel):
    """SPEX: answers in text and returns one binary mask per (image, instruction) pair.

    Generation is delegated to the wrapped causal LM's ``GenerationMixin.generate``; this
    class's :meth:`generate` adds the vision input and the mask.
    """

    def __init__(self, config: SpexConfig) -> None:
        super().__init__(config)
        text_hidden = config.text_config.hidden_size
        self.spectral_priors = (SpexSpectralPriors(config.band_names, config.spectral_priors, config.band_presence)
                                if config.spectral_priors or config.band_presence else None)
        self.vision_encoder = SpexVisionEncoder(config)
        self.aggregator = SpexAggregator(config.encoder_channels, config.aggregator_channels,
                                         config.aggregator_groups, config.aggregator_dropout)
        self.projector = SpexProjector(config.aggregator_channels, text_hidden)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.mask_neck = SpexMaskNeck(config.aggregator_channels, config.decoder_hidden_size)
        self.answer_condenser = SpexCondenser(text_hidden, config.decoder_hidden_size)
        self.instruction_condenser = (SpexCondenser(text_hidden, config.decoder_hidden_size)
                                      if config.condition_on_instruction else None)
        self.mask_decoder = SpexMaskDecoder(config)
        self.text_pixel_head = (SpexTextPixelHead(config.encoder_channels, config.aggregator_channels,
                                                  config.decoder_hidden_size, config.text_pixel_width,
                                                  config.num_input_channels if config.text_pixel_spectral else 0)
                                if config.text_pixel_similarity else None)
        lm_no_split = getattr(self.language_model, "_no_split_modules", None) or []
        self._no_split_modules = list(type(self)._no_split_modules) + [n for n in lm_no_split]
        self.post_init()

    # ------------------------------------------------------------ plumbing
    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module | None:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    def num_image_tokens(self, height: int, width: int) -> int:
        """``<image>`` tokens a prompt must hold for an ``height x width`` input."""
        return self.config.num_image_tokens(height, width)

    def _eos_ids(self, eos_token_id: int | list[int] | None) -> list[int]:
        for cand in (eos_token_id, getattr(self.config, "eos_token_id", None),
                     getattr(self.config.text_config, "eos_token_id", None)):
            if cand is not None:
                return [cand] if isinstance(cand, int) else list(cand)
        return []

    # ------------------------------------------------------------ vision
    def normalize_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Validate ``(B, N, H, W)`` reflectance and normalise per band; NaN -> band mean (0)."""
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 4:
            shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values)
            raise ModelError(f"pixel_values must be a (batch, bands, height, width) tensor, got {shape}")
        b, n, h, w = pixel_values.shape
        if n != self.config.num_bands:
            raise ModelError(f"pixel_values has {n} bands but this model expects {self.config.num_bands} "
                             f"({', '.join(self.config.band_names)})")
        if h % self.config.size_multiple or w % self.config.size_multiple:
            raise ModelError(f"image size {h}x{w} is not a multiple of {self.config.size_multiple}; "
                             "pad or crop the chip (e.g. to 64, 128 or 512 pixels)")
        dtype = self.vision_encoder.stem.conv1.weight.dtype
        x = pixel_values.to(device=self.vision_encoder.stem.conv1.weight.device, dtype=torch.float32)
        mean = torch.tensor(self.config.band_mean, device=x.device).view(1, n, 1, 1)
        std = torch.tensor(self.config.band_std, device=x.device).view(1, n, 1, 1)
        return torch.nan_to_num((x - mean) / std, nan=0.0, posinf=0.0, neginf=0.0).to(dtype)

    def encoder_input(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Normalised bands, then the spectral priors and presence flags when configured."""
        x = self.normalize_pixels(pixel_values)
        if self.spectral_priors is None:
            return x
        priors = self.spectral_priors(pixel_values.to(x.device))
        return torch.cat([x, priors.to(x.dtype)], dim=1)

    def get_image_features(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Visual tokens for the LLM ``(B, h*w, D_llm)`` and the aggregated map ``(B, C, h, w)``."""
        tokens, fmap, _ = self._vision(pixel_values)
        return tokens, fmap

    def _vision(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Visual tokens, aggregated map and [encoder input, S1..S4] (the input feeds the pixel term)."""
        x = self.encoder_input(pixel_values)
        stages = self.vision_encoder(x)
        fmap = self.aggregator(stages)
        tokens = self.projector(fmap.flatten(2).transpose(1, 2).to(self.projector.linear_1.weight.dtype))
        return tokens, fmap, [x, *stages]

    def _splice(self, input_ids: torch.Tensor, image_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings with visual tokens written at the ``<image>`` positions."""
        image_id = self.config.image_token_id
        if image_id is None:
            raise ModelError("config.image_token_id is not set; set it to the tokenizer's <image> id")
        is_image = input_ids == image_id
        counts = is_image.sum(dim=1)
        n_feats = image_tokens.shape[1]
        if input_ids.shape[0] != image_tokens.shape[0]:
            raise ModelError(f"{input_ids.shape[0]} token sequences but {image_tokens.shape[0]} images")
        bad = (counts != n_feats).nonzero().flatten().tolist()
        if bad:
            raise ModelError(f"sample {bad[0]} has {int(counts[bad[0]])} <image> tokens but the image gives "
                             f"{n_feats} visual tokens; expand <image> with config.num_image_tokens(H, W)")
        embeds = self.get_input_embeddings()(input_ids)
        embeds = embeds.masked_scatter(is_image.unsqueeze(-1), image_tokens.to(embeds.dtype))
        return embeds, is_image

    # ------------------------------------------------------------ language
    def _language_states(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last-layer (post-final-norm) states; positions count only attended tokens (padding-safe)."""
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        with _quiet_bnb():
            out = self.language_model.get_decoder()(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                                    position_ids=position_ids, use_cache=False)
        return out.last_hidden_state

    # ------------------------------------------------------------ mask
    def _prompts(self, hidden: torch.Tensor, answer_mask: torch.Tensor, instruction_mask: torch.Tensor,
                 fallback_mask: torch.Tensor) -> torch.Tensor:
        """Condensed prompt tokens ``(B, K or 2K, W)``; empty answers use the instruction."""
        k = self.config.num_condensed_tokens
        ins, ins_empty = pool_spans(hidden, instruction_mask, k)
        if ins_empty.any():
            fb, _ = pool_spans(hidden, fallback_mask, k)
            ins = torch.where(ins_empty.view(-1, 1, 1), fb, ins)
        ans, ans_empty = pool_spans(hidden, answer_mask, k)
        if ans_empty.any():
            ans = torch.where(ans_empty.view(-1, 1, 1), ins, ans)
        prompts = self.answer_condenser(ans)
        if self.instruction_condenser is not None:
            prompts = torch.cat([prompts, self.instruction_condenser(ins)], dim=1)
        return prompts

    def _decode_masks(self, fmap: torch.Tensor, prompts: torch.Tensor, size: tuple[int, int],
                      stages: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask logits at ``size``; ``stages`` is ``[encoder input, S1..S4]`` from :meth:`_vision`."""
        emb = self.mask_neck(fmap.to(self.mask_neck.conv1.weight.dtype))
        low, iou = self.mask_decoder(emb, prompts)
        full = None
        if self.text_pixel_head is not None:
            sim, full = self.text_pixel_head(stages[1:], fmap, prompts, stages[0])
            low = low.float() + F.interpolate(sim.float(), size=low.shape[-2:], mode="bilinear", align_corners=False)
        logits = F.interpolate(low.float(), size=size, mode="bilinear", align_corners=False)
        if full is not None:  # already at the input size: the spectral term works per input pixel
            logits = logits + full.float()
        return logits, iou

    def _spans(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, is_image: torch.Tensor,
               labels: torch.Tensor | None, answer_mask: torch.Tensor | None,
               instruction_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        attended = attention_mask.bool() & ~is_image
        if answer_mask is None:
            if labels is not None:
                answer_mask = labels != -100
                for eos in self._eos_ids(None):
                    answer_mask &= labels != eos
            else:
                answer_mask = torch.zeros_like(attended)
        answer_mask = answer_mask.bool().to(attended.device) & attended
        if instruction_mask is None:
            instruction_mask = attended & ~answer_mask
            if labels is not None:
                instruction_mask &= labels == -100
        instruction_mask = instruction_mask.bool().to(attended.device) & attended
        return answer_mask, instruction_mask, attended

    # ------------------------------------------------------------ forward
    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        masks: torch.Tensor | None = None,
        mask_valid: torch.Tensor | None = None,
        answer_mask: torch.Tensor | None = None,
        instruction_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SpexOutput:
        """Teacher-forced pass; returns losses when ``labels`` and/or ``masks`` are given.

        Args:
            pixel_values: ``(B, N, H, W)`` reflectance (NaN allowed) in ``config.band_names`` order.
            input_ids: ``(B, L)`` with ``num_image_tokens(H, W)`` image tokens per sample.
            attention_mask: ``(B, L)`` 1 = real token; padding may be on either side.
            labels: ``(B, L)`` target ids, -100 where not supervised (image, prompt, padding).
            masks: ``(B, H, W)`` or ``(B, 1, H, W)`` ground truth, 1 = selected.
            mask_valid: like ``masks``, True where the pixel counts in the mask loss.
            answer_mask / instruction_mask: ``(B, L)`` bool spans conditioning the mask. When
                absent: answer = supervised labels except EOS, instruction = the other
                attended text tokens (the whole prompt, system prompt included).
        """
        if kwargs:
            logger.debug("ignored forward arguments: %s", sorted(kwargs))
        dev = self.get_input_embeddings().weight.device
        input_ids = input_ids.to(dev)
        attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.to(dev)
        labels = None if labels is None else labels.to(dev)
        answer_mask = None if answer_mask is None else answer_mask.to(dev)
        instruction_mask = None if instruction_mask is None else instruction_mask.to(dev)
        height, width = pixel_values.shape[-2:]
        image_tokens, fmap, stages = self._vision(pixel_values)
        embeds, is_image = self._splice(input_ids, image_tokens)
        hidden = self._language_states(embeds, attention_mask)
        logits = self.language_model.get_output_embeddings()(hidden)
        ans, ins, attended = self._spans(input_ids, attention_mask, is_image, labels, answer_mask, instruction_mask)
        prompts = self._prompts(hidden, ans, ins, attended)
        pred_masks, iou = self._decode_masks(fmap, prompts, (height, width), stages)

        cfg = self.config
        out = SpexOutput(logits=logits, pred_masks=pred_masks, iou_scores=iou, last_hidden_state=hidden,
                         prompt_embeds=prompts)
        total = None
        if labels is not None:
            labels = labels.masked_fill(is_image, -100)
            out.lm_loss = lm_loss(logits, labels)
            total = cfg.lm_loss_weight * out.lm_loss
        if masks is not None:
            target = masks.reshape(pred_masks.shape[0], *masks.shape[-2:]).to(pred_masks.device)
            if target.shape[-2:] != (height, width):
                raise ModelError(f"masks are {tuple(target.shape[-2:])} but the image is {(height, width)}")
            valid = None if mask_valid is None else mask_valid.reshape(target.shape).to(target.device)
            logit_2d = pred_masks[:, 0]
            out.bce_loss = bce_loss(logit_2d, target, valid)
            out.dice_loss = dice_loss(logit_2d, target, valid, eps=cfg.dice_eps)
            out.mask_loss = cfg.bce_loss_weight * out.bce_loss + cfg.dice_loss_weight * out.dice_loss
            total = out.mask_loss if total is None else total + out.mask_loss
        out.loss = total
        return out

    # ------------------------------------------------------------ generate
    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        instruction_mask: torch.Tensor | None = None,
        max_new_tokens: int = 256,
        eos_token_id: int | list[int] | None = None,
        pad_token_id: int | None = None,
        mask_threshold: float | None = None,
        **generate_kwargs: Any,
    ) -> SpexGenerateOutput:
        """Generate the answer and the mask in one call (greedy unless ``do_sample=True``).

        The mask is conditioned on clean last-layer states of a forward pass over prompt +
        answer (the same computation as in training) for the answer span and the
        instruction span. An empty answer conditions on the instruction only. Prompts may
        be padded on either side; right padding is moved to the left before generating.

        Args:
            pixel_values / input_ids / attention_mask: as in :meth:`forward` (prompt ends with
                the assistant header).
            instruction_mask: ``(B, L)`` bool span of the user's instruction text.
            max_new_tokens: answer length cap (0 gives a mask from the instruction only).
            eos_token_id / pad_token_id: default to the config's (``<|im_end|>`` / pad).
            mask_threshold: logit threshold for ``masks``; default ``config.mask_threshold``.
            **generate_kwargs: passed to the LM's ``generate`` (``do_sample``, ``temperature``...).
        """
        dev = self.get_input_embeddings().weight.device
        input_ids = input_ids.to(dev)
        attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.to(dev)
        instruction_mask = None if instruction_mask is None else instruction_mask.to(dev)
        input_ids, attention_mask, instruction_mask = _left_pad(input_ids, attention_mask, instruction_mask)
        eos = self._eos_ids(eos_token_id)
        pad = pad_token_id if pad_token_id is not None else getattr(self.config, "pad_token_id", None)
        if pad is None:
            pad = getattr(self.config.text_config, "pad_token_id", None)
        if pad is None:
            pad = eos[0] if eos else 0
        height, width = pixel_values.shape[-2:]
        image_tokens, fmap, stages = self._vision(pixel_values)
        embeds, is_image = self._splice(input_ids, image_tokens)
        bsz = input_ids.shape[0]
        if max_new_tokens > 0:
            generate_kwargs.setdefault("do_sample", False)
            with _quiet_bnb():
                gen = self.language_model.generate(
                    inputs_embeds=embeds, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                    eos_token_id=eos or None, pad_token_id=pad, **generate_kwargs)
            if gen.shape[1] > max_new_tokens:  # some versions prepend the prompt ids
                gen = gen[:, input_ids.shape[1]:]
        else:
            gen = input_ids.new_zeros(bsz, 0)
        steps = torch.arange(gen.shape[1], device=gen.device)
        is_eos = torch.zeros_like(gen, dtype=torch.bool)
        for e in eos:
            is_eos |= gen == e
        if gen.shape[1]:
            first_eos = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full_like(gen[:, 0], gen.shape[1]))
        else:
            first_eos = torch.zeros(bsz, dtype=torch.long, device=gen.device)
        answer_new = steps.unsqueeze(0) < first_eos.unsqueeze(1)
        keep_new = steps.unsqueeze(0) <= first_eos.unsqueeze(1)  # answer + its EOS are attended
        sequences = gen.masked_fill(~keep_new, pad)

        full_ids = torch.cat([input_ids, sequences], dim=1)
        full_attn = torch.cat([attention_mask.to(keep_new.dtype), keep_new], dim=1).long()
        new_embeds = self.get_input_embeddings()(sequences)
        full_embeds = torch.cat([embeds, new_embeds.to(embeds.dtype)], dim=1)
        full_is_image = torch.cat([is_image, torch.zeros_like(answer_new)], dim=1)
        ans_full = torch.cat([torch.zeros_like(is_image), answer_new], dim=1)
        ins_full = None if instruction_mask is None else torch.cat(
            [instruction_mask.bool().to(ans_full.device), torch.zeros_like(answer_new)], dim=1)
        hidden = self._language_states(full_embeds, full_attn)
        ans, ins, attended = self._spans(full_ids, full_attn, full_is_image, None, ans_full, ins_full)
        prompts = self._prompts(hidden, ans, ins, attended)
        pred_masks, iou = self._decode_masks(fmap, prompts, (height, width), stages)
        thr = self.config.mask_threshold if mask_threshold is None else mask_threshold
        return SpexGenerateOutput(sequences=sequences, answer_lengths=first_eos.long(), pred_masks=pred_masks,
                                  masks=pred_masks[:, 0] > thr, iou_scores=iou)


AutoConfig.register("spex", SpexConfig, exist_ok=True)
AutoModel.register(SpexConfig, SpexForConditionalGeneration, exist_ok=True)
