"""SPIE records -> model tensors: band mapping, augmentation, prompt tokens, collation.

The model has a fixed band set (``config.band_names``). A chip's bands are matched by
canonical name; bands the scene lacks and invalid pixels are passed as NaN, which the
model's normalisation fills with the band mean (0 after normalisation), so "missing" looks
like "average" rather than "black". Training randomly drops optional bands the same way,
so the model also works on 4-band and RGB scenes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from spex.model.tokenization import IMAGE_TOKEN, ChatExample, collate, encode_chat

__all__ = ["OPTIONAL_BANDS", "to_model_bands", "zoom", "chip_valid", "question_text", "SpieDataset", "collate_spie",
           "ChipDataset"]

#: Bands that real inputs often lack; training drops them at random (core bands: RGB).
OPTIONAL_BANDS: tuple[str, ...] = ("nir", "swir1", "swir2", "rededge1", "rededge2", "rededge3", "nir08", "coastal")


def to_model_bands(chip: np.ndarray, chip_bands: Sequence[str], band_names: Sequence[str],
                   drop: Sequence[str] = ()) -> np.ndarray:
    """Reflectance ``(len(band_names), H, W)`` float32 in the model's band order.

    Bands the chip lacks, ``drop``-ped bands and invalid pixels are NaN; the model's
    per-band normalisation turns NaN into the band mean (0 after normalisation).
    """
    index = {b: i for i, b in enumerate(chip_bands)}
    h, w = chip.shape[-2:]
    out = np.full((len(band_names), h, w), np.nan, dtype=np.float32)
    for j, band in enumerate(band_names):
        i = index.get(band)
        if i is not None and band not in drop:
            out[j] = chip[i]
    return out


def zoom(array: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling of the last two axes by an integer factor (spectra unchanged).

    Why: the model's visual tokens and mask embedding sit at stride 16 of its input; feeding
    a chip zoomed x2 halves that to 8 native pixels, which land-cover boundaries need.
    """
    if factor == 1:
        return array
    return np.repeat(np.repeat(array, factor, axis=-2), factor, axis=-1)


def chip_valid(chip: np.ndarray) -> np.ndarray:
    """bool (H, W): every band of the chip is finite."""
    return np.isfinite(chip).all(axis=0)


def _augment(pixels: np.ndarray, mask: np.ndarray, rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """Random rotation by 90° steps and flip; only for stage A, where no text names locations."""
    k = rng.randrange(4)
    pixels, mask = np.rot90(pixels, k, axes=(-2, -1)), np.rot90(mask, k, axes=(-2, -1))
    if rng.random() < 0.5:
        pixels, mask = pixels[..., ::-1], mask[..., ::-1]
    return np.ascontiguousarray(pixels), np.ascontiguousarray(mask)


def question_text(record: dict) -> str:
    """The human turn without its leading ``<image>`` line (the chat encoder adds the image tokens)."""
    text = record["conversations"][0]["value"]
    return text[len(IMAGE_TOKEN):].lstrip("\n") if text.startswith(IMAGE_TOKEN) else text


@dataclass
class SpieDataset(torch.utils.data.Dataset):
    """Records of a SPIE folder as model inputs (stage B: instruction tuning).

    Each item: ``pixels`` (N, H, W) reflectance with NaN, the tokenized chat
    (:class:`spex.model.tokenization.ChatExample`), ``mask`` (H, W) {0,1} and
    ``mask_valid`` (H, W) bool (False on ignored pixels). No geometric augmentation:
    the answer text names locations.
    """

    records: list[dict]
    root: Path
    tokenizer: object
    band_names: Sequence[str]
    num_image_tokens: int
    band_dropout: float = 0.0
    max_length: int = 1024
    zoom: int = 1

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        rec = self.records[i]
        rng = random.Random(random.getrandbits(32))  # global RNG: seeded and checkpointed by the loop
        chip = np.load(self.root / rec["image"])
        drop = [b for b in OPTIONAL_BANDS if b in rec["bands"] and rng.random() < self.band_dropout]
        pixels = to_model_bands(chip, rec["bands"], self.band_names, drop)
        mask = np.asarray(Image.open(self.root / rec["mask"]))
        valid = (mask != rec.get("ignore_value", 255)) & chip_valid(chip)
        chat = encode_chat(self.tokenizer, question_text(rec), rec["conversations"][1]["value"],
                           self.num_image_tokens)
        if len(chat.input_ids) > self.max_length:  # keep the image, answer and end: trim the instruction's tail
            chat = _trim(chat, self.max_length)
        target = (mask == 1).astype(np.float32)
        z = self.zoom
        return {"pixels": torch.from_numpy(zoom(pixels, z)), "chat": chat, "class": rec.get("class"),
                "mask": torch.from_numpy(zoom(target, z)), "mask_valid": torch.from_numpy(zoom(valid, z))}


def _trim(chat: ChatExample, max_length: int) -> ChatExample:
    """Drop instruction tokens from the end of the instruction span until the example fits."""
    excess = len(chat.input_ids) - max_length
    ins = [k for k, v in enumerate(chat.instruction_mask) if v]
    drop = set(ins[-excess:]) if excess <= len(ins) - 1 else set(ins[1:])
    keep = [k for k in range(len(chat.input_ids)) if k not in drop]
    return ChatExample([chat.input_ids[k] for k in keep], [chat.labels[k] for k in keep],
                       [chat.answer_mask[k] for k in keep], [chat.instruction_mask[k] for k in keep])


def collate_spie(items: list[dict], pad_token_id: int) -> dict:
    """Batch for :meth:`SpexForConditionalGeneration.forward` (right padding)."""
    batch = collate([it["chat"] for it in items], pad_token_id, padding_side="right")
    batch["pixel_values"] = torch.stack([it["pixels"] for it in items])
    batch["masks"] = torch.stack([it["mask"] for it in items])
    batch["mask_valid"] = torch.stack([it["mask_valid"] for it in items])
    return batch


@dataclass
class ChipDataset(torch.utils.data.Dataset):
    """Unique chips of a SPIE folder (stage A: unlabelled masked-band pretraining)."""

    chips: list[tuple[str, list[str]]]   # (relative .npy path, band names)
    root: Path
    band_names: Sequence[str]
    zoom: int = 1

    @classmethod
    def from_records(cls, records: list[dict], root: Path, band_names: Sequence[str], zoom: int = 1) -> ChipDataset:
        seen: dict[str, list[str]] = {}
        for r in records:
            seen.setdefault(r["image"], r["bands"])
        return cls(sorted(seen.items()), root, band_names, zoom)

    def __len__(self) -> int:
        return len(self.chips)

    def __getitem__(self, i: int) -> dict:
        rng = random.Random(random.getrandbits(32))
        path, bands = self.chips[i]
        chip = np.load(self.root / path)
        pixels = to_model_bands(chip, bands, self.band_names)
        present = np.array([b in bands for b in self.band_names], dtype=bool)
        pixels, valid = _augment(zoom(pixels, self.zoom), zoom(chip_valid(chip), self.zoom), rng)
        return {"pixels": torch.from_numpy(pixels), "valid": torch.from_numpy(valid),
                "present": torch.from_numpy(present)}
