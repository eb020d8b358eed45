"""The SPEX backend with the trained refiner: ``--backend spex`` and ``--backend auto``.

The engine's rules give each class its candidate mask and evidence; for the classes routed
to the model, the refiner (:mod:`spex.model.refiner`), conditioned on the LLM's [SEG]
hidden state of the user's words + SPIE attributes, re-decides every pixel; exclusions,
post-processing, region attributes and measured evidence stay the engine's, so every
number of the reply is still measured on the returned mask.

Routing per class:

* ``spex``: the refiner for every class it was trained on, the engine for the others;
* ``auto``: the refiner only where its held-out validation IoU in the model card beat the
  engine's (``assets/spex-refiner/config.json`` -> ``routing``), the engine elsewhere.

Each decision and its reason is returned by :meth:`RefinedBackend.routes` and written
into the extraction's caveats and ``backend`` name.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from spex.errors import ModelError

__all__ = ["DEFAULT_REFINER", "LoadedRefiner", "RefinedBackend", "Route", "load_refiner", "predict_mask",
           "save_refiner"]

logger = logging.getLogger(__name__)

DEFAULT_REFINER = Path(__file__).resolve().parents[2] / "assets" / "spex-refiner"
MODES = ("spex", "auto")
#: rows/cols per refiner tile and the halo around it (> the decoder's 3-pixel reach)
TILE, HALO = 512, 8


@dataclass(frozen=True)
class Route:
    """Which backend makes one class's mask, and why (shown to the user)."""

    target: str
    backend: str  # "model" | "engine"
    why: str


@dataclass
class LoadedRefiner:
    """Refiner weights with their card data (read-only, shareable between sessions)."""

    model: Any
    path: Path
    trained: tuple[str, ...]
    routing: dict[str, str]
    scores: dict
    info: dict = field(default_factory=dict)


def save_refiner(model, out: str | Path, *, scores: dict, routing: dict[str, str], info: dict) -> Path:
    """refiner.safetensors + config.json (shape, routing, recipe) + heldout.json (scores)."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out / "refiner.safetensors"))
    cfg = {"refiner": model.config.to_dict(), "trained_classes": sorted(scores), "routing": routing,
           "parameters": sum(p.numel() for p in model.parameters()), "parts": model.parts(), "info": info}
    (out / "config.json").write_text(json.dumps(cfg, indent=1, default=str), encoding="utf-8")
    (out / "heldout.json").write_text(json.dumps(scores, indent=1), encoding="utf-8")
    return out


def load_refiner(path: str | Path | None = None) -> LoadedRefiner:
    """Load the shipped (or given) refiner folder."""
    from safetensors.torch import load_file

    from .refiner import MaskRefiner, RefinerConfig

    path = Path(path) if path is not None else DEFAULT_REFINER
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
        model = MaskRefiner(RefinerConfig(**cfg["refiner"]))
        model.load_state_dict(load_file(str(path / "refiner.safetensors")))
        scores = json.loads((path / "heldout.json").read_text(encoding="utf-8"))
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise ModelError(f"the SPEX refiner in {path} could not be loaded ({type(exc).__name__}: {exc}); "
                         "expected refiner.safetensors, config.json and heldout.json") from exc
    model.eval().requires_grad_(False)
    return LoadedRefiner(model, path, tuple(cfg["trained_classes"]), dict(cfg["routing"]), scores, cfg.get("info", {}))


def predict_mask(model, ctx, rule, hidden: np.ndarray) -> np.ndarray:
    """Refined bool mask of one class on the whole scene grid, tile by tile (bounded memory)."""
    import torch

    from .refiner import refiner_features

    valid = ctx.valid()
    h, w = valid.shape
    out = np.zeros((h, w), dtype=bool)
    vec = torch.from_numpy(np.asarray(hidden, np.float32)[None])
    for r0 in range(0, h, TILE):
        for c0 in range(0, w, TILE):
            a0, b0 = max(0, r0 - HALO), max(0, c0 - HALO)
            a1, b1 = min(h, r0 + TILE + HALO), min(w, c0 + TILE + HALO)
            x = refiner_features(ctx, rule, (slice(a0, a1), slice(b0, b1)))
            with torch.no_grad():
                logits = model(torch.from_numpy(x[None]), vec)[0].numpy()
            r1, c1 = min(h, r0 + TILE), min(w, c0 + TILE)
            out[r0:r1, c0:c1] = logits[r0 - a0:r1 - a0, c0 - b0:c1 - b0] > 0
    return out & valid


class RefinedBackend:
    """``extract(scene, request, cache)`` with the refiner for the routed classes.

    Args:
        mode: "spex" (refiner wherever trained) or "auto" (per-class routing from the card).
        refiner: a :class:`LoadedRefiner` or its folder (default: assets/spex-refiner).
        llm: a loaded LLM, or a callable returning one or None (None: still loading; the
            engine is used for that turn and the reply says so).
        words: the user's request text may be passed per call (``extract(..., words=...)``, the CLI);
            without it the prompt says "extract the <class>" (the chat; the prompt the table was measured with).
    """

    def __init__(self, mode: str = "auto", refiner: LoadedRefiner | str | Path | None = None,
                 llm: Any | Callable[[], Any] | None = None) -> None:
        if mode not in MODES:
            raise ModelError(f"unknown SPEX backend mode {mode!r}; expected one of {MODES}")
        self.mode = mode
        self.refiner = refiner if isinstance(refiner, LoadedRefiner) else load_refiner(refiner)
        self._llm = llm
        # [SEG] vectors by prompt (read-only results, bounded): refinement turns skip the LLM forward
        self._hidden: OrderedDict[str, np.ndarray] = OrderedDict()
        self._hidden_lock = threading.Lock()

    def llm(self) -> Any | None:
        if self._llm is None:
            from .llm import load_llm

            self._llm = load_llm()
        return self._llm if hasattr(self._llm, "model") else self._llm()

    def route(self, target: str) -> Route:
        """The backend for ``target`` and the reason, from the model card's held-out table."""
        r = self.refiner
        if target not in r.trained:
            return Route(target, "engine", "the refiner has no training labels for this class")
        val = r.scores.get(target, {}).get("val", {})
        m, e = val.get("model", float("nan")), val.get("engine", float("nan"))
        table = f"held-out validation IoU model {m:.3f} vs engine {e:.3f}"
        if self.mode == "spex":
            return Route(target, "model", f"--backend spex ({table})")
        if r.routing.get(target) == "model":
            return Route(target, "model", f"the model measured better on held-out data ({table})")
        return Route(target, "engine", f"the engine measured at least as well on held-out data ({table})")

    def _seg(self, llm, prompt: str) -> np.ndarray:
        from .conditioning import seg_hidden_states

        key = f"{getattr(llm, 'name', '')}\n{prompt}"
        with self._hidden_lock:
            if key in self._hidden:
                self._hidden.move_to_end(key)
                return self._hidden[key]
        vec = seg_hidden_states(llm, [prompt])[0]
        with self._hidden_lock:
            self._hidden[key] = vec
            while len(self._hidden) > 64:
                self._hidden.popitem(last=False)
        return vec

    def routes(self, request) -> list[Route]:
        return [self.route(t) for t in request.targets]

    def extract(self, scene, request, cache=None, *, words: str | None = None):
        """The engine's extraction with the routed classes' masks from the refiner."""
        from spex.engine.extract import extract as engine_extract
        from spex.engine.request import TARGET_LABELS
        from spex.engine.rules.context import OBSTRUCTION_CLASSES
        from spex.spie import describe_regions

        from .conditioning import refiner_prompt

        used: dict[str, Route] = {}

        def refine(rule, ctx):
            route = self.route(rule.target)
            if route.backend == "model":
                llm = self.llm()
                if llm is None:
                    route = Route(rule.target, "engine", "the language model is still loading")
            used[rule.target] = route
            if route.backend == "engine":
                return rule
            want = self.refiner.model.config.cond_dim
            if getattr(llm, "hidden_size", want) != want:
                raise ModelError(f"the SPEX refiner was trained on a {want}-wide language model (SmolLM2-135M); "
                                 f"{getattr(llm, 'name', 'this LLM')} is {llm.hidden_size} wide. Use the default "
                                 "--llm, retrain the refiner (python -m spex.train.refiner --llm ...), or "
                                 "--backend spectral")
            regions = describe_regions(rule.mask, pixel_area_m2=float(scene.pixel_area_m2))
            prompt = refiner_prompt(words or f"extract the {TARGET_LABELS[rule.target]}", rule.target, regions)
            hidden = self._seg(llm, prompt)
            mask = predict_mask(self.refiner.model, ctx, rule, hidden)
            if rule.target not in OBSTRUCTION_CLASSES:
                mask &= ~ctx.obstructed()
            return replace(rule, mask=mask, threshold_method="model")

        ex = engine_extract(scene, request, cache, refine=refine)
        names = "; ".join(f"{TARGET_LABELS[t]}: {'SPEX refiner' if r.backend == 'model' else 'spectral engine'}"
                          for t, r in used.items())
        ex.backend = f"SPEX {self.mode} ({names})"
        for t, r in used.items():
            who = "the SPEX refiner (LLM [SEG] state + engine evidence)" if r.backend == "model" else "the spectral engine"
            ex.caveats.append(f"Mask of {TARGET_LABELS[t]} from {who}: {r.why}.")
        return ex
