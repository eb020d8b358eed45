"""Load a SPEX checkpoint, optionally quantized with bitsandbytes, never hanging offline.

Only the language model's transformer layers are quantized. The vision encoder,
aggregator, projector, neck, condensers, mask decoder and ``lm_head`` stay in full
precision (``llm_int8_skip_modules``): quantizing the mask path is what produced blank
masks under 4-bit in LISA (user ask 4). bitsandbytes >= 0.49 has a CPU backend; when a
mode cannot load or run on the chosen device the loader falls back to an unquantized
model and records why on ``model.spex_quantization_note``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from transformers import BitsAndBytesConfig

from spex.errors import ModelError

from .modeling_spex import SpexForConditionalGeneration, _quiet_bnb

logger = logging.getLogger(__name__)

__all__ = ["QUANTIZATION_MODES", "SKIP_MODULES", "load_spex", "memory_report", "quantization_config"]

QUANTIZATION_MODES: tuple[str, ...] = ("4bit", "8bit", "none")

#: Top-level modules kept in full precision (matched from the start of the module name,
#: ``lm_head`` as a suffix).
SKIP_MODULES: tuple[str, ...] = ("vision_encoder", "aggregator", "projector", "mask_neck", "answer_condenser",
                                 "instruction_condenser", "mask_decoder", "text_pixel_head", "lm_head")


def quantization_config(mode: str | None) -> BitsAndBytesConfig | None:
    """BitsAndBytesConfig for ``"4bit"`` (NF4, double quant, bf16 compute) / ``"8bit"`` (int8)."""
    mode = _normalise_mode(mode)
    if mode == "none":
        return None
    if mode == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=torch.bfloat16, llm_int8_skip_modules=list(SKIP_MODULES))
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(SKIP_MODULES))


def _normalise_mode(mode: str | None) -> str:
    key = "none" if mode is None else str(mode).strip().lower().replace("-", "").replace("_", "")
    key = {"4": "4bit", "nf4": "4bit", "int4": "4bit", "8": "8bit", "int8": "8bit", "": "none",
           "fp32": "none", "full": "none"}.get(key, key)
    if key not in QUANTIZATION_MODES:
        raise ModelError(f"unknown quantization {mode!r}; use one of 4bit, 8bit or none")
    return key


def _resolve_device(device: str) -> str:
    dev = (device or "auto").strip().lower()
    if dev == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    if dev == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ModelError("device 'mps' requested but MPS is not available; use 'cpu' or 'auto'")
    if not (dev in ("cpu", "mps") or dev.startswith("cuda")):
        raise ModelError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")
    return dev


def _resolve_source(path_or_id: str | Path) -> tuple[str, bool]:
    """Return (source, local_files_only). Local directories win; hub ids only when online."""
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a SPEX checkpoint (no config.json); point to a save_pretrained() folder")
        return str(path), True
    text = str(path_or_id)
    looks_like_hub = text.count("/") == 1 and not text.startswith((".", "/", "~")) and not path.suffix
    if not looks_like_hub:
        raise ModelError(f"no SPEX checkpoint folder at {text!r}; give a local save_pretrained() folder "
                         "or a Hugging Face hub id (owner/name)")
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "0").lower() in ("1", "true", "yes")
    return text, offline


def load_spex(path_or_id: str | Path, quantization: str | None = None,
              device: str = "auto") -> SpexForConditionalGeneration:
    """Load a SPEX checkpoint for inference (eval mode).

    Args:
        path_or_id: a ``save_pretrained`` folder, or a hub id (downloaded only when the
            user passes one and ``HF_HUB_OFFLINE`` is not set; otherwise the local cache).
        quantization: ``"4bit"``, ``"8bit"`` or None / ``"none"``.
        device: ``"auto"`` (CUDA if present, else CPU), ``"cpu"``, ``"cuda[:N]"``, ``"mps"``.

    Returns:
        The model, with ``spex_quantization`` (effective mode) and ``spex_quantization_note``
        (None, or why the requested mode was not used) attributes.

    Raises:
        ModelError: bad arguments, missing or incompatible checkpoint.
    """
    mode = _normalise_mode(quantization)
    dev = _resolve_device(device)
    source, local_only = _resolve_source(path_or_id)
    note: str | None = None
    model: SpexForConditionalGeneration | None = None
    if mode != "none":
        if dev == "mps":
            note = f"{mode} quantization is not supported on MPS by bitsandbytes; loaded unquantized"
        else:
            try:
                model = SpexForConditionalGeneration.from_pretrained(
                    source, quantization_config=quantization_config(mode), device_map=dev,
                    dtype=torch.float32 if dev == "cpu" else torch.bfloat16, local_files_only=local_only)
                _smoke_test(model)
            except ModelError:
                raise
            except Exception as exc:  # noqa: BLE001 - any backend failure means: fall back
                note = f"{mode} quantization failed on {dev} ({type(exc).__name__}: {exc}); loaded unquantized"
                if mode == "4bit" and dev == "cpu":
                    note += (" (bitsandbytes' CPU 4-bit kernel needs every quantized layer's input width "
                             "to be a multiple of 64)")
                model = None
        if note:
            logger.warning(note)
    if model is None:
        dtype = torch.bfloat16 if dev.startswith("cuda") else torch.float32
        try:
            model = SpexForConditionalGeneration.from_pretrained(source, dtype=dtype, local_files_only=local_only)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"could not load a SPEX checkpoint from {source!r}: {exc}") from exc
        model.to(dev)
        mode_used = "none"
    else:
        mode_used = mode
    if getattr(model.config, "model_type", None) != "spex":
        raise ModelError(f"{source!r} holds a {model.config.model_type!r} model, not a SPEX checkpoint")
    model.eval()
    model.spex_quantization = mode_used
    model.spex_quantization_note = note
    logger.info("loaded SPEX from %s on %s (quantization: %s, %.1f MB)", source, dev, mode_used,
                model.get_memory_footprint() / 2**20)
    return model


def _smoke_test(model: SpexForConditionalGeneration) -> None:
    """Run one quantized LM layer on a dummy input so an unsupported backend fails at load time."""
    emb = model.get_input_embeddings()
    with torch.no_grad(), _quiet_bnb():
        ids = torch.zeros(1, 2, dtype=torch.long, device=emb.weight.device)
        out = model.language_model(input_ids=ids, use_cache=False).logits
    if not torch.isfinite(out).all():
        raise RuntimeError("quantized language model produced non-finite logits")


def memory_report(model: torch.nn.Module) -> dict[str, int]:
    """Bytes of parameters + buffers per top-level module, plus ``"total"``."""
    report: dict[str, int] = {}
    for name, child in model.named_children():
        n = sum(p.numel() * p.element_size() for p in child.parameters())
        n += sum(b.numel() * b.element_size() for b in child.buffers())
        report[name] = n
    report["total"] = sum(report.values())
    return report
