"""Loading with bitsandbytes 4-bit / 8-bit on CPU: the mask path stays unquantized and still works."""

from __future__ import annotations

import logging

import pytest
import torch
from test_model_utils import make_batch, tiny_config, tiny_tokenizer
from transformers import Qwen2Config

from spex.errors import ModelError
from spex.model import SpexForConditionalGeneration, load_spex, memory_report, quantization_config
from spex.model.tokenization import collate, encode_chat


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Tiny checkpoint; LM width 64 because bnb's 4-bit CPU kernel needs rows of >= 64 values."""
    tok = tiny_tokenizer()
    text = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, pad_token_id=tok.pad_token_id,
                       eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = SpexForConditionalGeneration(tiny_config(tok, text_config=text))
    path = tmp_path_factory.mktemp("spex") / "tiny"
    model.save_pretrained(path)
    return path, tok


@pytest.mark.parametrize("mode, linear_cls", [("4bit", "Linear4bit"), ("8bit", "Linear8bitLt")])
def test_quantized_generate_on_cpu(checkpoint, mode, linear_cls) -> None:
    path, tok = checkpoint
    model = load_spex(path, quantization=mode, device="cpu")
    assert model.spex_quantization == mode, model.spex_quantization_note
    assert model.spex_quantization_note is None
    assert type(model.language_model.model.layers[0].mlp.up_proj).__name__ == linear_cls
    # Mask path, vision path and lm_head are kept in full precision.
    for name, mod in model.named_modules():
        if name.startswith(("vision_encoder", "aggregator", "projector", "mask_", "answer_", "instruction_")) \
                or name.endswith("lm_head"):
            assert "bit" not in type(mod).__name__, name
    assert model.mask_decoder.decoder.iou_token.weight.dtype == torch.float32
    n = model.config.num_image_tokens(64, 64)
    b = collate([encode_chat(tok, "extract the water bodies", None, n),
                 encode_chat(tok, "extract the vegetation regions", None, n)], tok.pad_token_id, "left")
    out = model.generate(torch.rand(2, 4, 64, 64), b["input_ids"], b["attention_mask"],
                         instruction_mask=b["instruction_mask"], max_new_tokens=4)
    assert out.sequences.shape[0] == 2 and out.pred_masks.shape == (2, 1, 64, 64)
    assert torch.isfinite(out.pred_masks).all() and out.pred_masks.abs().max() > 0
    full = load_spex(path, quantization=None, device="cpu")
    assert model.get_memory_footprint() < full.get_memory_footprint()


def test_quantized_mask_close_to_full_precision(checkpoint) -> None:
    """Quantizing only the LLM keeps the mask logits close to the fp32 model's."""
    path, tok = checkpoint
    full = load_spex(path, device="cpu")
    q8 = load_spex(path, quantization="8bit", device="cpu")
    batch = make_batch(tok, full.config)
    keys = ("pixel_values", "input_ids", "attention_mask", "answer_mask", "instruction_mask")
    with torch.no_grad():
        a = full(**{k: batch[k] for k in keys}).pred_masks
        b = q8(**{k: batch[k] for k in keys}).pred_masks
    assert torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1] > 0.9


def test_fallback_records_reason(checkpoint, caplog, monkeypatch) -> None:
    path, _ = checkpoint

    def broken(*args, **kwargs):
        raise RuntimeError("no kernel for this device")

    monkeypatch.setattr("spex.model.loading._smoke_test", broken)
    with caplog.at_level(logging.WARNING, logger="spex.model.loading"):
        model = load_spex(path, quantization="4bit", device="cpu")
    assert model.spex_quantization == "none"
    assert "no kernel for this device" in model.spex_quantization_note
    assert "4bit quantization failed" in caplog.text


def test_load_errors(tmp_path) -> None:
    with pytest.raises(ModelError, match="unknown quantization"):
        load_spex(tmp_path, quantization="3bit")
    with pytest.raises(ModelError, match="no config.json"):
        load_spex(tmp_path)
    with pytest.raises(ModelError, match="no SPEX checkpoint folder"):
        load_spex(tmp_path / "missing")
    with pytest.raises(ModelError, match="device"):
        load_spex(tmp_path, device="tpu")


def test_offline_hub_id_does_not_hang(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="could not load"):
        load_spex("nobody/no-such-spex-model", device="cpu")


def test_quantization_config_skips_mask_path() -> None:
    q4 = quantization_config("4bit")
    assert q4.load_in_4bit and q4.bnb_4bit_quant_type == "nf4" and q4.bnb_4bit_use_double_quant
    assert q4.bnb_4bit_compute_dtype == torch.bfloat16
    assert {"mask_decoder", "vision_encoder", "lm_head", "answer_condenser"} <= set(q4.llm_int8_skip_modules)
    assert quantization_config("8bit").load_in_8bit
    assert quantization_config(None) is None


def test_memory_report(checkpoint) -> None:
    path, _ = checkpoint
    model = load_spex(path, device="cpu")
    rep = memory_report(model)
    assert rep["total"] == sum(v for k, v in rep.items() if k != "total")
    assert rep["language_model"] > 0 and rep["mask_decoder"] > 0


def test_default_small_llm_is_4bit_friendly() -> None:
    """bitsandbytes' CPU 4-bit kernel needs input widths that are multiples of 64."""
    from spex.model import SpexConfig

    t = SpexConfig().text_config
    head_dim = t.hidden_size // t.num_attention_heads
    for width in (t.hidden_size, t.intermediate_size, t.num_attention_heads * head_dim):
        assert width % 64 == 0, width
