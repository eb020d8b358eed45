"""Full-size SPEX configuration: exact release shapes, and a reduced-depth build that runs."""

from __future__ import annotations

import torch

from spex.model import SpexConfig, SpexForConditionalGeneration
from spex.model.encoder import SpexInternImageLayer


def test_full_size_config_matches_release_shapes() -> None:
    cfg = SpexConfig.full_size()
    t = cfg.text_config
    assert (t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads, t.vocab_size) == \
        (1536, 28, 12, 2, 151936)
    assert cfg.encoder_type == "internimage-ms"
    assert cfg.encoder_channels == [160, 320, 640, 1280] and cfg.encoder_depths == [5, 5, 22, 5]
    assert (cfg.aggregator_channels, cfg.aggregator_groups, cfg.aggregator_dropout) == (1024, 16, 0.5)
    assert (cfg.decoder_hidden_size, cfg.decoder_num_layers, cfg.decoder_num_heads, cfg.decoder_mlp_dim) == \
        (256, 2, 8, 2048)
    assert (cfg.lm_loss_weight, cfg.bce_loss_weight, cfg.dice_loss_weight, cfg.dice_eps) == (1.0, 2.0, 1.0, 1e-3)
    assert cfg.num_image_tokens(512, 512) == 1024


def test_full_size_parameter_budget_on_meta_device() -> None:
    with torch.device("meta"):
        model = SpexForConditionalGeneration(SpexConfig.full_size())
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    assert 1.50e9 < counts["language_model"] < 1.56e9     # Qwen2.5-1.5B, tied embeddings
    assert abs(counts["projector"] - 3.93e6) < 0.01e6      # 1024*1536 + 1536*1536 + biases
    assert abs(counts["answer_condenser"] - 4.33e6) < 0.01e6   # LLAMANECK
    assert abs(counts["aggregator"] - 2.46e6) < 0.01e6     # 2400 -> 1024 1x1 conv + GN
    assert 3.5e6 < counts["mask_decoder"] < 4.5e6          # SAM decoder (~4.1 M)
    assert 1.6e9 < sum(counts.values()) < 2.0e9


def test_full_size_reduced_depth_forward_and_generate() -> None:
    """Same module types and widths as the full model, 1 block per stage / 1 LM layer, small vocab."""
    torch.manual_seed(0)
    cfg = SpexConfig.full_size(
        band_names=("blue", "green", "red", "nir", "swir1", "swir2"),
        text_overrides={"num_hidden_layers": 1, "vocab_size": 512, "bos_token_id": 500, "eos_token_id": 501},
        encoder_depths=(1, 1, 1, 1), image_token_id=510, pad_token_id=502, eos_token_id=501)
    model = SpexForConditionalGeneration(cfg)
    assert isinstance(model.vision_encoder.stages[3].blocks[0], SpexInternImageLayer)
    assert model.mask_decoder.decoder.transformer.layers[1].mlp.lin1.out_features == 2048
    n_img = cfg.num_image_tokens(32, 32)
    ids = torch.cat([torch.tensor([[1, 2, 3]]), torch.full((1, n_img), 510), torch.tensor([[4, 5, 6, 7]])], dim=1)
    ids = ids.repeat(2, 1)
    labels = ids.masked_fill(ids == 510, -100)
    pix = torch.rand(2, 6, 32, 32) * 0.4
    masks = (torch.rand(2, 32, 32) > 0.5).float()
    out = model(pixel_values=pix, input_ids=ids, labels=labels, masks=masks)
    assert out.pred_masks.shape == (2, 1, 32, 32) and torch.isfinite(out.loss)
    model.eval()
    gen = model.generate(pix, ids, max_new_tokens=2)
    assert gen.sequences.shape == (2, 2) and gen.masks.shape == (2, 32, 32)
    assert torch.isfinite(gen.pred_masks).all()
