"""Prompt padding for generation: move right padding to the left so the LM continues real tokens.

Split from :mod:`spex.model.modeling_spex` (one concept per module); used by
:meth:`SpexForConditionalGeneration.generate`.
"""

from __future__ import annotations

import torch

from spex.errors import ModelError


def _left_pad(input_ids: torch.Tensor, attention_mask: torch.Tensor, extra: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Move right padding to the left (row-wise roll) so generation continues real tokens."""
    if input_ids.shape != attention_mask.shape:
        raise ModelError(f"input_ids {tuple(input_ids.shape)} and attention_mask "
                         f"{tuple(attention_mask.shape)} differ in shape")
    if bool(attention_mask[:, -1].all()):
        return input_ids, attention_mask, extra
    ids, am = input_ids.clone(), attention_mask.clone()
    ex = None if extra is None else extra.clone()
    for b in range(ids.shape[0]):
        nz = attention_mask[b].nonzero()
        if nz.numel() == 0:
            raise ModelError(f"prompt {b} is empty (attention_mask all zero)")
        shift = ids.shape[1] - 1 - int(nz[-1])
        if shift:
            ids[b] = torch.roll(input_ids[b], shift)
            am[b] = torch.roll(attention_mask[b], shift)
            if ex is not None:
                ex[b] = torch.roll(extra[b], shift)
    return ids, am, ex
