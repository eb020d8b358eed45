"""Release-checkpoint converter, tested on random weights laid out like the MiliLab/SPEX release."""

from __future__ import annotations

import torch
from safetensors.torch import save_file
from test_model_utils import make_batch, tiny_config, tiny_tokenizer
from transformers import AutoModelForCausalLM, SamMaskDecoderConfig
from transformers.models.sam.modeling_sam import SamMaskDecoder

from spex.model import SpexForConditionalGeneration
from spex.model.convert_release import convert_release_checkpoint, convert_release_state_dict, map_release_key

VM = "model.vision_tower.vision_tower.vision_model."
VT = "model.vision_tower."


def release_state_dict(cfg) -> dict[str, torch.Tensor]:
    """Random tensors under the release's key names and shapes (InternImage + LLaVA-Qwen + SAM)."""
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    sd: dict[str, torch.Tensor] = {}
    ch, depths = cfg.encoder_channels, cfg.encoder_depths
    sd[VM + "patch_embed.conv1.weight"], sd[VM + "patch_embed.conv1.bias"] = r(ch[0] // 2, 3, 3, 3), r(ch[0] // 2)
    sd[VM + "patch_embed.conv2.weight"], sd[VM + "patch_embed.conv2.bias"] = r(ch[0], ch[0] // 2, 3, 3), r(ch[0])
    for k, c in (("norm1", ch[0] // 2), ("norm2", ch[0])):
        sd[VM + f"patch_embed.{k}.1.weight"], sd[VM + f"patch_embed.{k}.1.bias"] = r(c), r(c)
    for i, (c, d) in enumerate(zip(ch, depths)):
        groups = max(c // 16, 1)
        for j in range(d):
            p = VM + f"levels.{i}.blocks.{j}."
            for name, shape in (("norm1.0", (c,)), ("norm2.0", (c,))):
                sd[p + name + ".weight"], sd[p + name + ".bias"] = r(*shape), r(*shape)
            for name, (o, n) in {"dcn.input_proj": (c, c), "dcn.output_proj": (c, c), "dcn.offset": (groups * 18, c),
                                 "dcn.mask": (groups * 9, c), "mlp.fc1": (4 * c, c), "mlp.fc2": (c, 4 * c)}.items():
                sd[p + name + ".weight"], sd[p + name + ".bias"] = r(o, n), r(o)
            sd[p + "dcn.dw_conv.0.weight"], sd[p + "dcn.dw_conv.0.bias"] = r(c, 1, 3, 3), r(c)
            sd[p + "dcn.dw_conv.1.1.weight"], sd[p + "dcn.dw_conv.1.1.bias"] = r(c), r(c)
            sd[p + "weight1"], sd[p + "weight2"] = r(c), r(c)
        if i < 3:
            sd[VM + f"levels.{i}.downsample.conv.weight"] = r(ch[i + 1], c, 3, 3)
            sd[VM + f"levels.{i}.downsample.norm.1.weight"] = r(ch[i + 1])
            sd[VM + f"levels.{i}.downsample.norm.1.bias"] = r(ch[i + 1])
    a, dd, h = cfg.aggregator_channels, cfg.decoder_hidden_size, cfg.text_config.hidden_size
    sd[VM + "feat_aggregator.fuse_all.0.weight"], sd[VM + "feat_aggregator.fuse_all.0.bias"] = r(a, sum(ch), 1, 1), r(a)
    sd[VM + "feat_aggregator.fuse_all.1.weight"], sd[VM + "feat_aggregator.fuse_all.1.bias"] = r(a), r(a)
    sd[VM + "visionneck.conv1.weight"], sd[VM + "visionneck.conv2.weight"] = r(dd, a, 1, 1), r(dd, dd, 3, 3)
    for k in ("layer_norm1", "layer_norm2"):
        sd[VM + f"visionneck.{k}.weight"], sd[VM + f"visionneck.{k}.bias"] = r(dd), r(dd)
    for idx, (o, n) in {0: (8 * dd, h), 2: (2 * dd, 8 * dd), 4: (dd, 2 * dd)}.items():
        sd[VT + f"lan_neck.text_mlp.{idx}.weight"], sd[VT + f"lan_neck.text_mlp.{idx}.bias"] = r(o, n), r(o)
    sd[VT + "sampromptencoder.no_mask_embed.weight"] = r(1, dd)
    sd[VT + "sampromptencoder.shared_embedding.positional_embedding"] = r(2, dd // 2)
    sd[VT + "sampromptencoder.point_embed.0.weight"] = r(1, dd)
    sd[VT + "sampromptencoder.not_a_point_embed.weight"] = r(1, dd)
    sd[VT + "sampromptencoder.mask_embed.conv1.weight"] = r(4, 1, 2, 2)
    sam = SamMaskDecoder(SamMaskDecoderConfig(hidden_size=dd, num_hidden_layers=cfg.decoder_num_layers,
                                              num_attention_heads=cfg.decoder_num_heads, mlp_dim=cfg.decoder_mlp_dim,
                                              iou_head_hidden_dim=cfg.decoder_iou_head_hidden_dim))
    sd.update({VT + "mask_decoder." + k: torch.randn_like(v) for k, v in sam.state_dict().items()})
    sd["model.mm_projector.0.weight"], sd["model.mm_projector.0.bias"] = r(h, a), r(h)
    sd["model.mm_projector.2.weight"], sd["model.mm_projector.2.bias"] = r(h, h), r(h)
    sd["model.image_newline"] = r(h)
    llm = AutoModelForCausalLM.from_config(cfg.text_config)
    sd.update({k: torch.randn_like(v) for k, v in llm.state_dict().items()})
    return sd


def test_key_map_examples() -> None:
    assert map_release_key("model.layers.3.self_attn.q_proj.weight") == \
        "language_model.model.layers.3.self_attn.q_proj.weight"
    assert map_release_key("lm_head.weight") == "language_model.lm_head.weight"
    assert map_release_key(VM + "levels.2.blocks.7.dcn.input_proj.bias") == \
        "vision_encoder.stages.2.blocks.7.dcn.input_proj.bias"
    assert map_release_key(VT + "mask_decoder.transformer.layers.0.mlp.lin1.weight") == \
        "mask_decoder.decoder.transformer.layers.0.mlp.lin1.weight"
    assert map_release_key("model.some_unknown.weight") is None


def test_convert_random_release_weights(tmp_path) -> None:
    tok = tiny_tokenizer()
    cfg = tiny_config(tok, encoder_type="internimage-ms", band_names=("blue", "green", "red", "nir", "swir1"))
    release = release_state_dict(cfg)
    result = convert_release_state_dict(release, cfg)
    assert not result.unmapped
    assert VT + "sampromptencoder.point_embed.0.weight" in result.dropped
    assert "model.image_newline" in result.dropped
    assert any(".dcn.offset." in k for k in result.dropped) and any(".dcn.dw_conv." in k for k in result.dropped)

    model = SpexForConditionalGeneration(cfg)
    missing, unexpected = model.load_state_dict(result.state_dict, strict=False)
    assert not unexpected
    assert missing and all(k.startswith("instruction_condenser.") for k in missing), missing

    stem = model.vision_encoder.stem.conv1.weight
    rgb = release[VM + "patch_embed.conv1.weight"]
    for i, band in enumerate(("red", "green", "blue")):
        assert torch.equal(stem[:, cfg.band_names.index(band)], rgb[:, i])
    assert stem[:, cfg.band_names.index("nir")].abs().sum() == 0
    assert stem[:, cfg.band_names.index("swir1")].abs().sum() == 0
    spatial = model.vision_encoder.stages[0].blocks[0].dcn.spatial.weight
    assert torch.allclose(spatial, torch.full_like(spatial, 1 / 9))
    assert torch.equal(model.mask_decoder.decoder.iou_token.weight, release[VT + "mask_decoder.iou_token.weight"])
    assert torch.equal(model.answer_condenser.text_mlp[4].weight, release[VT + "lan_neck.text_mlp.4.weight"])
    assert torch.equal(model.language_model.model.layers[1].mlp.down_proj.weight,
                       release["model.layers.1.mlp.down_proj.weight"])

    # End to end through a safetensors file and save_pretrained.
    save_file({k: v.contiguous() for k, v in release.items()}, str(tmp_path / "model.safetensors"))
    out = convert_release_checkpoint(tmp_path / "model.safetensors", tmp_path / "converted", cfg)
    loaded = SpexForConditionalGeneration.from_pretrained(out).eval()
    assert torch.equal(loaded.projector.linear_2.weight, release["model.mm_projector.2.weight"])
    batch = make_batch(tok, cfg)
    with torch.no_grad():
        res = loaded(pixel_values=batch["pixel_values"], input_ids=batch["input_ids"],
                     attention_mask=batch["attention_mask"])
    assert torch.isfinite(res.pred_masks).all()
