"""The refiner's conditioning: the SPIE prompt and the LLM hidden state at its [SEG] position.

The prompt carries the user's own words, the class, and the SPIE attribute list of the
engine's candidate regions on this scene (from indices, never labels), and ends with
``[SEG]``; the frozen LLM's last-layer hidden state at that last token is the vector the
mask decoder is conditioned on. :class:`HiddenStateCache` keeps computed vectors on disk
(one ``.npy`` per prompt, keyed by a hash of LLM name and prompt), so training reads each
prompt through the LLM once and then runs on CPU in seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["HiddenStateCache", "refiner_prompt", "seg_hidden_states"]

SEG = "[SEG]"


def refiner_prompt(words: str, target: str, regions: Sequence, top_n: int = 3) -> str:
    """Instruction + class + SPIE attributes of the ``top_n`` largest candidate regions, closed by [SEG].

    Three regions keep the prompt near 200 tokens: one LLM forward is most of the refiner's
    CPU latency.
    """
    from spex.engine.request import TARGET_LABELS
    from spex.spie import spie_prompt

    label = TARGET_LABELS[target]
    spie = spie_prompt(label, regions, top_n=top_n) if regions else f"No candidate regions of {label} were found."
    return f"Request: {words.strip()}\nClass: {label}\n{spie}\nSegment the {label}: {SEG}"


def seg_hidden_states(llm, prompts: Sequence[str], batch_size: int = 4) -> np.ndarray:
    """(len(prompts), hidden) float32: last-layer hidden state at each prompt's last token."""
    import torch

    tok, model = llm.tokenizer, llm.model
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(prompts), batch_size):
        for prompt in prompts[i:i + batch_size]:  # one at a time: no padding position to pick around
            enc = tok(prompt, return_tensors="pt")
            with torch.no_grad():
                res = model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                            output_hidden_states=True, use_cache=False)
            out.append(res.hidden_states[-1][0, -1].float().cpu().numpy())
    return np.stack(out).astype(np.float32) if out else np.zeros((0, llm.hidden_size), np.float32)


class HiddenStateCache:
    """Hidden states on disk, one file per (LLM, prompt)."""

    def __init__(self, folder: str | Path, llm_name: str) -> None:
        self.folder = Path(folder)
        self.llm_name = llm_name

    def _path(self, prompt: str) -> Path:
        digest = hashlib.sha1(f"{self.llm_name}\n{prompt}".encode()).hexdigest()[:20]
        return self.folder / f"{digest}.npy"

    def get(self, llm, prompts: Sequence[str]) -> np.ndarray:
        """Hidden states of ``prompts`` (computed with ``llm``, a LoadedLLM or a loader, only for those not on disk)."""
        missing = [p for p in dict.fromkeys(prompts) if not self._path(p).is_file()]
        if missing:
            if llm is None:
                raise FileNotFoundError(f"{len(missing)} hidden states are not cached and no LLM was given")
            if not hasattr(llm, "model"):  # a loader: the LLM is loaded only when something is missing
                llm = llm()
            self.folder.mkdir(parents=True, exist_ok=True)
            for prompt in missing:  # saved one by one: an interrupted run resumes where it stopped
                tmp = self._path(prompt).with_suffix(".tmp.npy")
                np.save(tmp, seg_hidden_states(llm, [prompt])[0])
                tmp.replace(self._path(prompt))
        return np.stack([np.load(self._path(p)) for p in prompts]).astype(np.float32)
