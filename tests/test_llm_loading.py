"""--llm resolution and the loader cache on a tiny local Llama (no download, seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spex.errors import ModelError
from spex.model.explain import generate_explanation
from spex.model.facts import Fact
from spex.model.llm import LLMCache, load_llm, resolve_llm


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-llama")
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *"abcdefghijklmnopqrstuvwxyz0123456789.: -"])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    tok.save_pretrained(out)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


def test_local_folder_loads_and_is_cached(tiny_llama: Path) -> None:
    spec = resolve_llm(str(tiny_llama))
    assert spec.gguf_file is None and spec.local_only
    cache = LLMCache(max_models=1)
    a = load_llm(spec, cache=cache)
    assert a is load_llm(spec, cache=cache) and a.parameters > 0 and a.hidden_size == 64
    facts = [Fact("regions", 2.0, "regions", "regions: 2")]
    exp = generate_explanation(a, "the lakes", facts, max_new_tokens=8)
    assert exp.source in ("llm", "llm-repaired", "template") and exp.text


def test_bad_llm_option_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="--llm"):
        resolve_llm(str(tmp_path / "nothing.gguf"))
