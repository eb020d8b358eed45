"""A small byte-level BPE tokenizer trained offline on SPIE text.

Why our own: the SPEX model's text decoder is tiny (a few hundred thousand embedding
parameters), so a 150k-entry Qwen vocabulary would dwarf it; and no tokenizer may be
downloaded at run time. Digits are split one by one so region coordinates
("0.854") tokenise the same way whatever their value. The ChatML special tokens and
``<image>`` are atomic.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from spex.spie.templates import CLASS_WORDS, PLAIN_TEMPLATES

__all__ = ["PAD", "IM_START", "IM_END", "IMAGE", "SPECIAL_TOKENS", "SYSTEM_PROMPT", "CHAT_TEMPLATE",
           "train_tokenizer", "seed_corpus"]

PAD = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
IMAGE = "<image>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, IM_START, IM_END, IMAGE)
SYSTEM_PROMPT = "You are a helpful assistant."

#: ChatML, as Qwen2 (paper §1.5): system, user (with ``<image>\n``), assistant.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def seed_corpus() -> list[str]:
    """Every plain request template with every class phrase, so no class word is rare."""
    lines = [SYSTEM_PROMPT, "system", "user", "assistant"]
    for words in CLASS_WORDS.values():
        for w in words:
            lines.extend(t.format(c=w) for t in PLAIN_TEMPLATES)
    return lines


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train the BPE on ``texts`` (plus :func:`seed_corpus`) and wrap it for transformers."""
    if vocab_size < 300:
        raise ValueError(f"vocab_size must be >= 300 (256 bytes + specials + merges), got {vocab_size}")
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    corpus = list(seed_corpus()) + [t for t in texts if t]
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=IM_END, bos_token=None, unk_token=None,
        additional_special_tokens=[IM_START, IMAGE], model_max_length=1024,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "right"
    return fast
