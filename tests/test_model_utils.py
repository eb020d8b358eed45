"""Shared builders for the model tests (tiny tokenizer, tiny config, batches) + chat-format tests."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config

from spex.model import SpexConfig
from spex.model.tokenization import IM_END, SPECIAL_TOKENS, collate, encode_chat

SENTENCES = [
    "extract the water bodies", "extract the vegetation regions", "the large water body is in the center",
    "there is a small lake at the top left", "dense forest covers most of the scene",
    "buildings are in the bottom right", "please describe the regions", "system user assistant",
    "You are a helpful assistant.", "only the ones larger than 2 ha",
]
PAD = "<pad>"


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer trained in-test on a few sentences (no downloads)."""
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split("\n", behavior="isolated"),
                                                 pre_tokenizers.Whitespace()])
    trainer = trainers.WordLevelTrainer(special_tokens=[PAD, "<unk>", *SPECIAL_TOKENS])
    tok.train_from_iterator(SENTENCES + ["\n"], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token=PAD, eos_token=IM_END,
                                   additional_special_tokens=list(SPECIAL_TOKENS))
    return fast


def tiny_config(tokenizer: PreTrainedTokenizerFast, **kwargs) -> SpexConfig:
    """Smallest sensible SPEX config for CPU tests."""
    text = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    defaults = dict(text_config=text, band_names=("blue", "green", "red", "nir"),
                    encoder_channels=(8, 16, 32, 32), encoder_depths=(1, 1, 1, 1), aggregator_channels=32,
                    aggregator_groups=4, aggregator_dropout=0.0, decoder_hidden_size=32, decoder_num_layers=1,
                    decoder_num_heads=2, decoder_mlp_dim=64, image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    defaults.update(kwargs)
    return SpexConfig(**defaults)


def make_batch(tokenizer, config: SpexConfig, size: int = 64, answers=("the large water body is in the center",
               "dense forest covers most of the scene"), padding_side: str = "right", seed: int = 0):
    """Synthetic reflectance cubes + masks (water = low NIR) and tokenized chats."""
    g = torch.Generator().manual_seed(seed)
    bsz = len(answers)
    pix = torch.rand(bsz, config.num_bands, size, size, generator=g) * 0.3
    masks = torch.zeros(bsz, size, size)
    masks[0, size // 4: size // 2, size // 4: 3 * size // 4] = 1
    if bsz > 1:
        masks[1:, size // 2:, :] = 1
    nir = config.band_names.index("nir")
    pix[:, nir] = torch.where(masks.bool(), 0.02, 0.35)
    n_img = config.num_image_tokens(size, size)
    instructions = ["extract the water bodies", "extract the vegetation regions only the ones larger than 2 ha"]
    examples = [encode_chat(tokenizer, instructions[i % 2], a, n_img) for i, a in enumerate(answers)]
    batch = collate(examples, tokenizer.pad_token_id, padding_side)
    batch["pixel_values"] = pix
    batch["masks"] = masks
    return batch


def test_encode_chat_spans() -> None:
    tok = tiny_tokenizer()
    ex = encode_chat(tok, "extract the water bodies", "the large water body", 4)
    ids = ex.input_ids
    assert ids.count(tok.convert_tokens_to_ids("<image>")) == 4
    ans = [t for t, m in zip(ids, ex.answer_mask) if m]
    assert tok.decode(ans) == "the large water body"
    ins = [t for t, m in zip(ids, ex.instruction_mask) if m]
    assert tok.decode(ins) == "extract the water bodies"
    supervised = [t for t, lab in zip(ids, ex.labels) if lab != -100]
    assert supervised == ans + [tok.convert_tokens_to_ids(IM_END)]
    prompt = encode_chat(tok, "extract the water bodies", None, 4)
    assert ids[: len(prompt.input_ids)] == prompt.input_ids
    assert all(lab == -100 for lab in prompt.labels)


def test_collate_padding_sides() -> None:
    tok = tiny_tokenizer()
    a = encode_chat(tok, "extract the water bodies", "small lake", 4)
    b = encode_chat(tok, "extract", "dense forest covers most of the scene", 4)
    right = collate([a, b], tok.pad_token_id, "right")
    left = collate([a, b], tok.pad_token_id, "left")
    short = 0 if len(a.input_ids) < len(b.input_ids) else 1
    assert right["attention_mask"][short, 0] == 1 and right["attention_mask"][short, -1] == 0
    assert left["attention_mask"][short, 0] == 0 and left["attention_mask"][short, -1] == 1
    assert right["attention_mask"].sum() == left["attention_mask"].sum() == len(a.input_ids) + len(b.input_ids)
