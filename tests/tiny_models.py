"""Tiny language models made on the fly for the LLM tests (no download, a second each).

``write_tiny_gguf``: a 2-layer, 64-wide Llama in the layout of the shipped SmolLM2 GGUF
(``llama`` architecture, byte-level ``gpt2`` tokenizer with merges and a chat template,
Q8_0 matrices, F32 norms), written with gguf's GGUFWriter. ``make_tiny_llama``: the same
size as a Hugging Face folder (config.json + safetensors + tokenizer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS = 64, 128, 2, 4, 2
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _byte_chars() -> list[str]:
    """GPT-2's byte -> printable character table (the byte-level BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """A 2-layer, 64-wide Llama with a byte-level BPE vocabulary of ~270 tokens, as GGUF."""
    import gguf

    rng = np.random.default_rng(seed)
    chars = _byte_chars()
    merges = ["Ġ t", "Ġ a", "h e", "i n", "Ġt he"]
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *chars, "Ġt", "Ġa", "he", "in", "Ġthe"]
    types = [gguf.TokenType.CONTROL] * 3 + [gguf.TokenType.NORMAL] * (len(tokens) - 3)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama-test")
    w.add_block_count(LAYERS)
    w.add_context_length(512)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(TEMPLATE)

    def mat(name: str, rows: int, cols: int) -> None:
        arr = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
        q = gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)  # shape from the bytes

    def vec(name: str, n: int) -> None:
        w.add_tensor(name, np.ones(n, dtype=np.float32))

    kv = HIDDEN // HEADS * KV_HEADS
    mat("token_embd.weight", len(tokens), HIDDEN)
    for i in range(LAYERS):
        vec(f"blk.{i}.attn_norm.weight", HIDDEN)
        vec(f"blk.{i}.ffn_norm.weight", HIDDEN)
        mat(f"blk.{i}.attn_q.weight", HIDDEN, HIDDEN)
        mat(f"blk.{i}.attn_k.weight", kv, HIDDEN)
        mat(f"blk.{i}.attn_v.weight", kv, HIDDEN)
        mat(f"blk.{i}.attn_output.weight", HIDDEN, HIDDEN)
        mat(f"blk.{i}.ffn_gate.weight", FFN, HIDDEN)
        mat(f"blk.{i}.ffn_up.weight", FFN, HIDDEN)
        mat(f"blk.{i}.ffn_down.weight", HIDDEN, FFN)
    vec("output_norm.weight", HIDDEN)
    mat("output.weight", len(tokens), HIDDEN)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def make_tiny_llama(out: Path) -> Path:
    """A 2-layer, 64-wide LlamaForCausalLM folder with a character-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *"abcdefghijklmnopqrstuvwxyz0123456789.: -"])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    tok.save_pretrained(out)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=LAYERS,
                      num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=2048)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out
