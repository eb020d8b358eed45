"""Grounded decoding: the language model may only write words found in the facts, the request or plain prose.

Why: a 135 M-parameter model asked to explain a result drifts into general knowledge within a
sentence ("mangrove swamps", "machine learning algorithms", "21.2 m³"), measured on the Landsat 5
and Sentinel-2 scenes. Restricting the next token to those that spell words of the facts block,
the user's words and a short list of function words keeps it on this result; the fact check then
verifies the numbers and places it combined. A larger model (``--llm``) keeps the same rule, so a
reply never names what was not measured.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["PROSE_WORDS", "VocabularyConstraint", "allowed_token_ids"]

#: Function words and plain explanatory words any reply may use.
PROSE_WORDS = tuple("""
a an the of in on at to and or with from by is are was were be been it its this these those that which as than
for against into over under between inside outside lies lie lying covers cover covering where here there most
mostly mainly largely together separate total all each both other another second third first next largest
smallest larger smaller main biggest selected select selecting I we pixels pixel region regions scene valid
mask averages average mean area share spectrally because so while whereas high low higher lower strong weak
bright dark above below threshold index value values signal shows show showing indicates indicating means
typical consistent clearly well about only also found part parts of edge
""".split())

_WORD = re.compile(r"[A-Za-z]+(?:[-/][A-Za-z]+)*|[-−]?\d+(?:[.,]\d+)?|[^\sA-Za-z\d]")


def allowed_token_ids(tokenizer, texts: Iterable[str], extra_words: Iterable[str] = PROSE_WORDS) -> set[int]:
    """Token ids that spell the words of ``texts`` and ``extra_words`` (with and without a leading space,
    lower and capitalised), digits, punctuation and the end-of-turn tokens."""
    words: set[str] = set(extra_words)
    for text in texts:
        for w in _WORD.findall(text):
            words.add(w)
            words.update(re.split(r"[-/]", w))
    ids: set[int] = set()
    for w in words:
        for v in {w, w.lower(), w.capitalize()}:
            for spaced in (v, " " + v):
                ids.update(tokenizer(spaced, add_special_tokens=False)["input_ids"])
    for piece in list("0123456789.,:;()%-/") + [" ", "²"]:
        ids.update(tokenizer(piece, add_special_tokens=False)["input_ids"])
    for special in (tokenizer.eos_token_id, getattr(tokenizer, "pad_token_id", None)):
        if special is not None:
            ids.add(int(special))
    end = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None
    if isinstance(end, int) and end >= 0:
        ids.add(end)
    return ids


class VocabularyConstraint:
    """A transformers ``LogitsProcessor``: every token outside ``allowed`` gets −inf."""

    def __init__(self, allowed: Iterable[int]) -> None:
        self.allowed = sorted(set(int(i) for i in allowed))
        self._mask = None

    def __call__(self, input_ids, scores):
        import torch

        if self._mask is None or self._mask.shape[-1] != scores.shape[-1] or self._mask.device != scores.device:
            mask = torch.full((scores.shape[-1],), float("-inf"), device=scores.device, dtype=scores.dtype)
            ids = torch.tensor([i for i in self.allowed if i < scores.shape[-1]], device=scores.device)
            mask[ids] = 0.0
            self._mask = mask
        return scores + self._mask
