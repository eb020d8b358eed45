"""SPEX model backend: the same request -> Extraction contract as the spectral engine.

The scene is cut into overlapping square chips (the checkpoint's training size, zoomed by
its ``input_zoom`` with nearest neighbours exactly as in training); each
chip gets the plain instruction for one class ("Extract the water bodies."), the model
returns the mask logits conditioned on the instruction (optionally after generating a short
answer), and the chip
probabilities are blended with linear ramps in the overlaps, so results do not depend on
where the chip grid falls. The mask lives on the scene grid, so the scene's
georeference applies unchanged. Post-processing (area / region / border filters, hole
filling) and region attributes are the engine's own functions.

Multi-class requests are the union of one model pass per class; excluded classes are a
model pass each and are removed. Strictness moves the probability threshold by 0.1 per
level (0.3 .. 0.7).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from spex.engine.postprocess import postprocess
from spex.engine.request import ExtractionRequest
from spex.engine.result import ClassEvidence, Extraction
from spex.engine.rules.context import MASK_FEATURES
from spex.errors import BandError, ModelError
from spex.spie.builder import chip_windows
from spex.spie.regions import describe_regions

from .loading import load_spex
from .tokenization import collate, decode_answers, encode_chat

__all__ = ["SpexBackend", "STRICTNESS_PROB_STEP"]

logger = logging.getLogger(__name__)

#: Probability threshold shift per strictness level (0.5 at strictness 0).
STRICTNESS_PROB_STEP = 0.1


def _ramp(size: int, overlap: int) -> np.ndarray:
    """1-D blending weight: linear ramp over the overlap at both ends, 1 inside (never 0)."""
    w = np.ones(size, dtype=np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        w[:overlap] = ramp
        w[size - overlap:] = ramp[::-1]
    return w


class SpexBackend:
    """Run a SPEX checkpoint on whole scenes.

    Args:
        model_path: a ``save_pretrained`` folder holding the model and its tokenizer.
        quantization: None / "none", "8bit" or "4bit" (language model only; the mask path
            stays in full precision).
        device: "auto", "cpu", "cuda[:N]" or "mps".
        chip: chip size in pixels (default: the checkpoint's training chip size).
        overlap: overlap between chips in pixels (default: a quarter of the chip).
        batch_size: chips per forward pass.
        max_new_tokens: answer tokens generated per chip. 0 (default) conditions the mask on the
            instruction only, which is how the shipped checkpoint was trained (see its card).
    """

    def __init__(self, model_path: str | Path, quantization: str | None = None, device: str = "auto", *,
                 chip: int | None = None, overlap: int | None = None, batch_size: int = 16,
                 max_new_tokens: int = 0) -> None:
        from transformers import AutoTokenizer

        self.model_path = Path(model_path)
        self.model = load_spex(model_path, quantization=quantization, device=device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{model_path} has no usable tokenizer next to the weights: {exc}") from exc
        config = self.model.config
        self.chip = int(chip or getattr(config, "chip_size", 64))
        self.zoom = int(getattr(config, "input_zoom", 1) or 1)
        if (self.chip * self.zoom) % config.size_multiple:
            raise ModelError(f"chip size {self.chip} x zoom {self.zoom} must be a multiple of {config.size_multiple}")
        self.overlap = int(self.chip // 4 if overlap is None else overlap)
        if not 0 <= self.overlap < self.chip // 2 + 1:
            raise ModelError(f"overlap must be in 0..{self.chip // 2}, got {self.overlap}")
        self.batch_size = max(1, int(batch_size))
        self.max_new_tokens = int(max_new_tokens)
        self.quantization = getattr(self.model, "spex_quantization", "none")
        self.name = f"SPEX model ({self.model_path.name}, {self.quantization})"

    # ------------------------------------------------------------------ per class
    def instruction(self, target: str) -> str:
        """The plain request the model was trained with, for one class."""
        from spex.spie.templates import PLAIN_TEMPLATES, class_words

        return PLAIN_TEMPLATES[0].format(c=class_words(target))

    def _bands_used(self, scene) -> list[str]:
        """The model's bands this scene has (BandError without red, green and blue)."""
        used = [band for band in self.model.config.band_names if scene.has(band)]
        if not {"red", "green", "blue"} <= set(used):
            raise BandError(f"the SPEX model needs at least red, green and blue; this scene has "
                            f"{', '.join(scene.band_names)}")
        return used

    def _cube(self, scene, cache) -> np.ndarray:
        """Model-band reflectance (N, H, W), NaN where the band is missing or the pixel invalid."""
        names = list(self.model.config.band_names)
        used = set(self._bands_used(scene))
        cube = np.full((len(names), scene.height, scene.width), np.nan, dtype=np.float32)
        valid = cache.valid()
        for j, band in enumerate(names):
            if band in used:
                cube[j] = np.where(valid, cache.band(band), np.nan)
        return cube

    def probability(self, scene, target: str, cache=None) -> tuple[np.ndarray, list[str]]:
        """Stitched class probability (H, W) float32 and one generated answer per chip.

        Memoised in ``cache`` (per scene), so refinements and undo only re-threshold it.
        """
        from spex.spectral import IndexCache

        cache = cache or IndexCache(scene)
        key = (f"spex-probability:{self.model_path}:{self.quantization}:{self.chip}:{self.overlap}:"
               f"{self.max_new_tokens}:{target}")
        return cache.memo(key, lambda: self._probability(self._cube(scene, cache), target))

    def _probability(self, cube: np.ndarray, target: str) -> tuple[np.ndarray, list[str]]:
        n, h, w = cube.shape
        c = self.chip
        stride = max(1, c - self.overlap)
        wins = chip_windows(h, w, c, stride)
        acc = np.zeros((h, w), dtype=np.float32)
        wsum = np.zeros((h, w), dtype=np.float32)
        weight = np.outer(_ramp(c, self.overlap), _ramp(c, self.overlap))
        z = self.zoom
        n_img = self.model.num_image_tokens(c * z, c * z)
        example = encode_chat(self.tokenizer, self.instruction(target), None, n_img)
        device = next(self.model.parameters()).device
        answers: list[str] = []
        for k in range(0, len(wins), self.batch_size):
            group = wins[k:k + self.batch_size]
            pixels = np.full((len(group), n, c, c), np.nan, dtype=np.float32)
            for b, win in enumerate(group):
                r0, c0 = int(win.row_off), int(win.col_off)
                pixels[b, :, : win.height, : win.width] = cube[:, r0:r0 + win.height, c0:c0 + win.width]
            batch = collate([example] * len(group), self.tokenizer.pad_token_id or 0, padding_side="left")
            if z > 1:  # nearest-neighbour zoom, as in training (spex.train.data.zoom)
                pixels = np.repeat(np.repeat(pixels, z, axis=-2), z, axis=-1)
            with torch.no_grad():
                out = self.model.generate(
                    torch.from_numpy(pixels).to(device), batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    instruction_mask=batch["instruction_mask"].to(device), max_new_tokens=self.max_new_tokens)
            prob = torch.sigmoid(out.pred_masks[:, 0].float())
            if z > 1:  # back to the native grid: mean probability of each z x z block
                prob = torch.nn.functional.avg_pool2d(prob.unsqueeze(1), z).squeeze(1)
            prob = prob.cpu().numpy()
            answers.extend(decode_answers(self.tokenizer, out.sequences.cpu(), out.answer_lengths.cpu()))
            for b, win in enumerate(group):
                r0, c0, hh, ww = int(win.row_off), int(win.col_off), int(win.height), int(win.width)
                acc[r0:r0 + hh, c0:c0 + ww] += prob[b, :hh, :ww] * weight[:hh, :ww]
                wsum[r0:r0 + hh, c0:c0 + ww] += weight[:hh, :ww]
        return acc / np.maximum(wsum, 1e-6), answers

    # ------------------------------------------------------------------ request
    def extract(self, scene, request: ExtractionRequest, cache=None) -> Extraction:
        """Extract ``request`` from ``scene`` with the model (mask True = selected)."""
        from spex.spectral import IndexCache

        if not isinstance(request, ExtractionRequest):
            raise TypeError(f"request must be an ExtractionRequest, got {type(request).__name__}")
        if request.index_limits or request.parts or request.drop_parts:  # refused, never silently dropped
            raise ModelError("The SPEX model backend does not apply your own index thresholds or parts of the water "
                             "(sea, rivers, lakes); the spectral engine (--backend spectral) does.")
        cache = cache or IndexCache(scene)
        valid = cache.valid()
        used = self._bands_used(scene)
        threshold = 0.5 + STRICTNESS_PROB_STEP * request.strictness
        union = np.zeros(valid.shape, dtype=bool)
        per_class: dict[str, np.ndarray] = {}
        answers: dict[str, str] = {}
        for target in request.targets:
            prob, texts = self.probability(scene, target, cache)
            per_class[target] = (prob > threshold) & valid
            union |= per_class[target]
            answers[target] = texts[0] if texts else ""
        allowed = valid.copy()
        caveats: list[str] = []
        for x in request.exclude:
            prob, _ = self.probability(scene, x, cache)
            ex = (prob > 0.5) & valid
            caveats.append(f"Excluded {x}: {int((union & ex).sum())} px of the class mask overlapped the model's "
                           f"{x} mask and were removed.")
            allowed &= ~ex
        area = float(scene.pixel_area_m2)
        mask, labels, _, report = postprocess(union, request, allowed=allowed, valid=valid, pixel_area_m2=area)
        evidence, index_maps = self._evidence(cache, request, per_class, mask, valid, threshold)
        regions = describe_regions(mask, pixel_area_m2=area, index_maps=index_maps, labels=labels)
        missing = [b for b in self.model.config.band_names if b not in used]
        if missing:
            caveats.append(f"The model's {', '.join(missing)} band(s) are missing in this scene and were filled "
                           "with the training mean (the model saw such gaps in training, but accuracy drops).")
        if not scene.calibrated:
            caveats.append("Values are relatively scaled, not calibrated reflectance; the model was trained mostly "
                           "on calibrated Sentinel-2 and on a few relatively scaled scenes.")
        caveats.append(f"Model: {self.name}, chips of {self.chip} px with {self.overlap} px overlap, "
                       f"probability threshold {threshold:.2f}.")
        if report.steps:
            caveats.append("Post-processing: " + "; ".join(report.steps) + ".")
        logger.info("model answers: %s", answers)
        return Extraction(request=request, mask=mask, labels=labels, regions=regions, evidence=evidence,
                          caveats=caveats, backend=self.name, valid_pixels=int(valid.sum()), pixel_area_m2=area)

    def _evidence(self, cache, request, per_class, mask, valid, threshold):
        """Per target: the engine's primary index for that class, measured inside/outside the model mask."""
        from spex.engine.rules import RuleContext, evaluate_rule

        ctx = RuleContext(cache, strictness=0)
        evidence: list[ClassEvidence] = []
        index_maps: dict[str, np.ndarray] = {}
        for target in request.targets:
            inside = mask & per_class[target]
            try:
                rule = evaluate_rule(target, ctx)
                index, formula, bands = rule.index, rule.formula, rule.bands
                values = ctx.feature(index) if index not in MASK_FEATURES else rule.mask.astype(np.float32)
                if index not in MASK_FEATURES:
                    index_maps[index] = values
            except (BandError, KeyError) as exc:
                logger.info("no spectral evidence for %s: %s", target, exc)
                index, formula, bands, values = "none", "", tuple(self.model.config.band_names), None
            mean_in = _nanmean(values[inside]) if values is not None else math.nan
            mean_out = _nanmean(values[valid & ~mask]) if values is not None else math.nan
            evidence.append(ClassEvidence(target=target, index=index, formula=formula, bands=tuple(bands),
                                          threshold=float(threshold), threshold_method="model", direction=">",
                                          mean_inside=mean_in, mean_outside=mean_out, pixels=int(inside.sum())))
        return evidence, index_maps


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean(dtype=np.float64)) if finite.size else math.nan
