"""Chat formatting for SPEX: one function builds token ids, labels and spans for training and inference.

Template (ChatML, as the release)::

    <|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n<image>*N\\n{instruction}<|im_end|>\\n
    <|im_start|>assistant\\n{answer}<|im_end|>\\n

* ``<image>`` is repeated N = ``config.num_image_tokens(H, W)`` times (one per visual token).
* labels supervise only the answer tokens and the closing ``<|im_end|>`` (the model must
  learn to stop); everything else is -100.
* ``answer_mask`` marks the answer content tokens (no header, no ``<|im_end|>``) and
  ``instruction_mask`` the instruction tokens: the two spans that condition the mask.

Pieces are tokenized separately and concatenated, so spans are exact; inference uses
the same function with ``answer=None`` (the prompt then ends with the assistant header).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["IMAGE_TOKEN", "IM_END", "IM_START", "SPECIAL_TOKENS", "SYSTEM_PROMPT", "ChatExample",
           "collate", "decode_answers", "encode_chat", "special_token_id"]

IMAGE_TOKEN = "<image>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS: tuple[str, ...] = (IMAGE_TOKEN, IM_START, IM_END)
SYSTEM_PROMPT = "You are a helpful assistant."
IGNORE_INDEX = -100


@dataclass(frozen=True)
class ChatExample:
    """One tokenized conversation; all lists have the same length."""

    input_ids: list[int]
    labels: list[int]
    answer_mask: list[bool]
    instruction_mask: list[bool]

    def __post_init__(self) -> None:
        n = len(self.input_ids)
        if not (len(self.labels) == len(self.answer_mask) == len(self.instruction_mask) == n):
            raise ValueError("input_ids, labels and span masks must have equal lengths")


def special_token_id(tokenizer, token: str) -> int:
    """Id of a special token, with a clear error when the tokenizer lacks it."""
    tid = tokenizer.convert_tokens_to_ids(token)
    unk = tokenizer.unk_token_id
    if tid is None or (unk is not None and tid == unk and token != tokenizer.unk_token):
        raise ValueError(f"tokenizer has no {token!r} token; add {SPECIAL_TOKENS} as special tokens")
    return int(tid)


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def encode_chat(tokenizer, instruction: str, answer: str | None, num_image_tokens: int,
                system: str = SYSTEM_PROMPT) -> ChatExample:
    """Tokenize one (instruction, answer) turn with N image tokens.

    Args:
        tokenizer: a tokenizer with ``<image>``, ``<|im_start|>``, ``<|im_end|>`` special tokens.
        instruction: the user's text (SPIE prompt or plain request).
        answer: the target answer for training, or None for a generation prompt.
        num_image_tokens: ``config.num_image_tokens(H, W)``.
        system: system prompt.
    """
    if num_image_tokens < 1:
        raise ValueError(f"num_image_tokens must be >= 1, got {num_image_tokens}")
    image_id = special_token_id(tokenizer, IMAGE_TOKEN)
    start_id = special_token_id(tokenizer, IM_START)
    end_id = special_token_id(tokenizer, IM_END)
    nl = _ids(tokenizer, "\n")
    pieces: list[tuple[list[int], str]] = [
        ([start_id] + _ids(tokenizer, "system\n" + system) + [end_id] + nl + [start_id] + _ids(tokenizer, "user\n"),
         "prompt"),
        ([image_id] * num_image_tokens + nl, "prompt"),
        (_ids(tokenizer, instruction), "instruction"),
        ([end_id] + nl + [start_id] + _ids(tokenizer, "assistant\n"), "prompt"),
    ]
    if answer is not None:
        pieces += [(_ids(tokenizer, answer), "answer"), ([end_id], "eos"), (nl, "prompt")]
    ids: list[int] = []
    labels: list[int] = []
    ans: list[bool] = []
    ins: list[bool] = []
    for toks, kind in pieces:
        ids += toks
        labels += toks if kind in ("answer", "eos") else [IGNORE_INDEX] * len(toks)
        ans += [kind == "answer"] * len(toks)
        ins += [kind == "instruction"] * len(toks)
    return ChatExample(ids, labels, ans, ins)


def collate(examples: Sequence[ChatExample], pad_token_id: int, padding_side: str = "right"
            ) -> dict[str, torch.Tensor]:
    """Pad a batch: ``input_ids``, ``attention_mask``, ``labels``, ``answer_mask``, ``instruction_mask``.

    Use ``padding_side="right"`` for training and ``"left"`` for generation (either works
    with :meth:`SpexForConditionalGeneration.generate`, which re-aligns right padding).
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"invalid padding_side {padding_side!r}; expected 'left' or 'right'")
    if not examples:
        raise ValueError("cannot collate an empty batch")
    n = max(len(e.input_ids) for e in examples)
    out = {
        "input_ids": torch.full((len(examples), n), pad_token_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(examples), n), dtype=torch.long),
        "labels": torch.full((len(examples), n), IGNORE_INDEX, dtype=torch.long),
        "answer_mask": torch.zeros((len(examples), n), dtype=torch.bool),
        "instruction_mask": torch.zeros((len(examples), n), dtype=torch.bool),
    }
    for b, e in enumerate(examples):
        m = len(e.input_ids)
        sl = slice(0, m) if padding_side == "right" else slice(n - m, n)
        out["input_ids"][b, sl] = torch.tensor(e.input_ids, dtype=torch.long)
        out["attention_mask"][b, sl] = 1
        out["labels"][b, sl] = torch.tensor(e.labels, dtype=torch.long)
        out["answer_mask"][b, sl] = torch.tensor(e.answer_mask, dtype=torch.bool)
        out["instruction_mask"][b, sl] = torch.tensor(e.instruction_mask, dtype=torch.bool)
    return out


def decode_answers(tokenizer, sequences: torch.Tensor, answer_lengths: torch.Tensor) -> list[str]:
    """Text of each generated answer (tokens before the first EOS)."""
    return [tokenizer.decode(sequences[b, : int(answer_lengths[b])].tolist(), skip_special_tokens=True).strip()
            for b in range(sequences.shape[0])]
