"""GGUF loading on a tiny Llama written here with gguf's GGUFWriter (no download, seconds).

The file has the same layout as the shipped SmolLM2 GGUF (``general.architecture llama``,
a byte-level ``gpt2`` tokenizer with merges and a chat template, Q8_0 matrices, F32 norms),
so it goes through the exact code path of the default LLM: ``resolve_llm`` (a .gguf path)
-> ``load_llm`` (transformers de-quantizes it) -> streamed, fact-checked explanation, and
the bitsandbytes 4-bit path (GGUF -> cached safetensors -> quantized load).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import HIDDEN, LAYERS, write_tiny_gguf

from spex.model.explain import generate_explanation
from spex.model.facts import Fact
from spex.model.llm import LLMCache, load_llm, resolve_llm


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny-llama.Q8_0.gguf")


def test_tiny_gguf_loads_through_the_default_path(tiny_gguf: Path) -> None:
    spec = resolve_llm(str(tiny_gguf))
    assert spec.gguf_file == tiny_gguf.name and spec.local_only
    llm = load_llm(spec, cache=LLMCache(max_models=1))
    assert type(llm.model).__name__ == "LlamaForCausalLM"
    assert llm.hidden_size == HIDDEN and llm.model.config.num_hidden_layers == LAYERS
    assert llm.parameters == sum(p.numel() for p in llm.model.parameters()) > 0
    ids = llm.tokenizer("the cat")["input_ids"]
    assert ids and max(ids) < llm.model.config.vocab_size
    assert "<|im_start|>assistant" in llm.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    # de-quantized Q8_0 weights: close to what was written (|w| ~ 0.05, Q8_0 error < 1 %)
    emb = llm.model.get_input_embeddings().weight.detach().numpy()
    assert emb.shape == (llm.model.config.vocab_size, HIDDEN) and 0.03 < float(np.std(emb)) < 0.07
    facts = [Fact("regions", 2.0, "regions", "regions: 2"), Fact("area_ha", 4.5, "ha", "area: 4.50 ha")]
    exp = generate_explanation(llm, "the lakes", facts, max_new_tokens=12, lead="I selected the water")
    assert exp.source in ("llm", "llm-repaired", "template") and exp.text
    assert exp.first_token_s is not None and exp.total_s is not None


def test_tiny_gguf_4bit_gives_nonempty_masks(tiny_gguf: Path, tmp_path: Path, monkeypatch) -> None:
    """bitsandbytes 4-bit of the LLM (CPU backend): hidden states stay finite, masks non-empty."""
    pytest.importorskip("bitsandbytes")
    import torch

    from spex.model.conditioning import seg_hidden_states
    from spex.model.refiner import MaskRefiner, RefinerConfig

    monkeypatch.setenv("SPEX_CACHE_DIR", str(tmp_path / "cache"))
    full = load_llm(resolve_llm(str(tiny_gguf)), cache=LLMCache(max_models=1))
    q4 = load_llm(resolve_llm(str(tiny_gguf), "4bit"), cache=LLMCache(max_models=1))
    assert q4.weight_bytes < full.weight_bytes
    assert any("4bit" in type(m).__name__ for m in q4.model.modules())
    prompts = ["Request: the forest\nClass: forest\nSegment: [SEG]"]
    h_full, h_q4 = seg_hidden_states(full, prompts), seg_hidden_states(q4, prompts)
    assert h_q4.shape == h_full.shape and np.isfinite(h_q4).all()
    torch.manual_seed(0)
    refiner = MaskRefiner(RefinerConfig(cond_dim=HIDDEN)).eval()
    x = torch.zeros(1, refiner.config.in_channels, 16, 16)
    from spex.model.refiner import MARGIN_CHANNEL

    x[:, MARGIN_CHANNEL, 4:12, 4:12] = 0.8
    x[:, MARGIN_CHANNEL][x[:, MARGIN_CHANNEL] == 0] = -0.8
    with torch.no_grad():
        m_full = refiner(x, torch.from_numpy(h_full)) > 0
        m_q4 = refiner(x, torch.from_numpy(h_q4)) > 0
    assert m_q4.any() and m_full.any()
    assert (m_full != m_q4).float().mean() < 0.05
