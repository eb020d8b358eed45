"""SpexPreTrainedModel: the transformers base class of SPEX models (config class, weight init).

Split from :mod:`spex.model.modeling_spex` (one concept per module): the weight-init and
device-map conventions live apart from the model's data flow; ``modeling_spex`` re-exports it.
"""

from __future__ import annotations

import math

from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init

from .configuration_spex import SpexConfig
from .encoder import SpexConvNeXtBlock, SpexInternImageLayer
from .mask_decoder import SpexMaskDecoder

__all__ = ["SpexPreTrainedModel"]


class SpexPreTrainedModel(PreTrainedModel):
    """Weights init, config class and device-map hints shared by SPEX models."""

    config_class = SpexConfig
    base_model_prefix = "spex"
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True
    # Our own blocks (plain nn.Modules); the LLM's own layer classes are appended per instance.
    _no_split_modules = ["SpexStem", "SpexConvNeXtBlock", "SpexInternImageLayer", "SpexDownsample",
                         "SpexAggregator", "SpexProjector", "SpexMaskNeck", "SpexCondenser", "SpexMaskDecoder"]

    def _init_weights(self, module: nn.Module) -> None:
        # Linear/Conv layers outside the LLM (the LLM dispatches to its own _init_weights)
        # get PyTorch's default Kaiming-uniform init: under N(0, 0.02) SAM's hypernetwork x
        # upscaled-embedding product starts at ~1e-4 and the mask path barely learns (measured).
        # transformers.initialization functions leave weights loaded by from_pretrained alone.
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight.shape[1] * module.weight[0, 0].numel()
                if isinstance(module, nn.ConvTranspose2d):
                    fan_in = module.weight.shape[0] * module.weight[0, 0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                init.uniform_(module.bias, -bound, bound)
        else:
            super()._init_weights(module)
        if isinstance(module, SpexConvNeXtBlock):
            init.constant_(module.gamma, self.config.encoder_layer_scale)
        elif isinstance(module, SpexInternImageLayer):
            init.constant_(module.weight1, self.config.encoder_layer_scale)
            init.constant_(module.weight2, self.config.encoder_layer_scale)
        elif isinstance(module, SpexMaskDecoder):
            init.normal_(module.positional_embedding, mean=0.0, std=1.0)
