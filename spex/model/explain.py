"""The generated explanation: the LLM writes it from the facts block, then it is fact-checked.

:func:`stream_explanation` yields the text as it is generated (transformers
``TextIteratorStreamer``, generation in a worker thread), so a chat can show it live after
the fast measured summary. :func:`check_explanation` then extracts every number and keeps
only sentences whose numbers are all measured facts; when nothing useful is left it falls
back, visibly, to the measured template. Greedy decoding: the same facts give the same text.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .constrain import VocabularyConstraint, allowed_token_ids
from .facts import Fact, facts_block, template_explanation, unverified_numbers

logger = logging.getLogger(__name__)

__all__ = ["Explanation", "check_explanation", "explanation_messages", "generate_explanation",
           "stream_explanation"]

SYSTEM = ("You are SPEX, a remote-sensing assistant. You explain a land-cover extraction to a domain expert. "
          "Use only the numbers listed under FACTS, written exactly as they appear there; never invent or compute "
          "other numbers. Say what was selected, why spectrally, where, and how much, in 2 to 4 plain sentences.")

#: One worked example (a class and numbers unlike any real result, so copying it is caught by the check):
#: a small model imitates the form of an example far better than it follows instructions.
EXAMPLE_USER = ("Request: find the reed beds\nFACTS:\n- selected area of reed beds: 12.40 ha\n"
                "- share of the valid scene: 3.1 %\n- number of separate regions: 4\n"
                "- region 1 by size: 7.20 ha, top-right of the scene\n- reed beds: selected where XI > 0.35\n"
                "- mean XI inside the mask: 0.52\n- mean XI outside the mask: 0.18")
EXAMPLE_ANSWER = ("I selected the reed beds: 12.40 ha in 4 regions, 3.1 % of the valid scene. The largest region, "
                  "7.20 ha, lies in the top-right of the scene. Spectrally, XI averages 0.52 inside the mask against "
                  "0.18 outside it, above the threshold of 0.35.")


@dataclass
class Explanation:
    """The reply text and how it was obtained.

    source: "llm" (all numbers verified), "llm-repaired" (sentences with unverified numbers
    dropped), "template" (generated text unusable; measured template shown).
    """

    text: str
    source: str
    raw: str = ""
    unverified: tuple[str, ...] = ()
    first_token_s: float | None = None
    total_s: float | None = None
    new_tokens: int = 0
    notes: list[str] = field(default_factory=list)


def explanation_messages(words: str, facts: Sequence[Fact], scene_text: str = "") -> list[dict[str, str]]:
    """Chat messages for the LLM: the user's own words and the facts block."""
    user = f"Request: {words.strip()}\n"
    if scene_text:
        user += f"Scene: {scene_text}\n"
    user += f"FACTS:\n{facts_block(facts)}\n\nExplain this result."
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": EXAMPLE_USER},
            {"role": "assistant", "content": EXAMPLE_ANSWER}, {"role": "user", "content": user}]


def stream_explanation(llm, words: str, facts: Sequence[Fact], *, scene_text: str = "",
                       max_new_tokens: int = 96, timings: dict | None = None, lead: str = "",
                       grounded: bool = True) -> Iterator[str]:
    """Yield text pieces as the LLM generates them (greedy). ``timings`` gets first_token_s/total_s.

    ``lead`` starts the assistant's answer (e.g. "I selected the water bodies"): it anchors a
    small LLM on the result instead of general knowledge, and is yielded first. ``grounded``
    restricts the words to those of the facts, the request and plain prose (:mod:`.constrain`).
    """
    import torch
    from transformers import TextIteratorStreamer

    tok = llm.tokenizer
    prompt = tok.apply_chat_template(explanation_messages(words, facts, scene_text), add_generation_prompt=True,
                                     tokenize=False) + lead
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    device = next(llm.model.parameters()).device
    enc = {k: v.to(device) for k, v in enc.items()}
    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True, timeout=300.0)
    errors: list[BaseException] = []
    processors = []
    if grounded:
        processors.append(VocabularyConstraint(allowed_token_ids(tok, [facts_block(facts), words, lead])))

    def work() -> None:
        try:
            from transformers import LogitsProcessorList

            with torch.no_grad():
                llm.model.generate(**enc, streamer=streamer, max_new_tokens=max_new_tokens, do_sample=False,
                                   repetition_penalty=1.15, pad_token_id=tok.pad_token_id,
                                   logits_processor=LogitsProcessorList(processors))
        except BaseException as exc:  # noqa: BLE001 - reported to the consumer below
            errors.append(exc)
            streamer.end()

    t0 = time.perf_counter()
    thread = threading.Thread(target=work, name="spex-explain", daemon=True)
    thread.start()
    first = None
    if lead:
        yield lead
    for piece in streamer:
        if first is None and piece:
            first = time.perf_counter() - t0
        yield piece
    thread.join()
    if timings is not None:
        timings["first_token_s"] = first
        timings["total_s"] = time.perf_counter() - t0
    if errors:
        raise errors[0]


_SENT = re.compile(r"(?<=[.!?])\s+")
#: Any two place words joined by a hyphen: the 3x3 cells ("top-left" ... "bottom-right") and the
#: nonsense pairs a small model also writes ("top-bottom", "middle-top"), which no fact ever holds.
_PLACE = re.compile(r"\b(?:(?:top|middle|bottom|left|right|center|centre)-(?:top|middle|bottom|left|right|center|"
                    r"centre)|center|centre)\b", re.IGNORECASE)


def unsupported_claims(sentence: str, facts: Sequence[Fact]) -> list[str]:
    """Places a sentence names that no fact holds: a 3x3 cell with no selected region, or no cell at all."""
    known = " ".join(f.text.lower() for f in facts).replace("centre", "center")
    return [m.group(0) for m in _PLACE.finditer(sentence)
            if not re.search(r"(?<![a-z-])" + re.escape(m.group(0).lower().replace("centre", "center"))
                             + r"(?![a-z-])", known)]


def _sentence_ok(sentence: str, facts: Sequence[Fact], ignore: Sequence[str]) -> bool:
    return not unverified_numbers(sentence, facts, ignore) and not unsupported_claims(sentence, facts)


def check_explanation(raw: str, facts: Sequence[Fact], extraction=None, *, ignore: Sequence[str] = (),
                      min_chars: int = 40) -> Explanation:
    """Keep only sentences whose numbers are all facts; fall back to the template if too little is left."""
    text = " ".join(raw.split())
    if text and text[-1] not in ".!?":  # cut at max_new_tokens: drop the unfinished sentence
        cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
        text = text[:cut + 1] if cut > 0 else text
    sentences, seen = [], set()
    for s in _SENT.split(text):  # a small model repeats itself: keep each sentence once
        key = " ".join(s.lower().split())
        if s and key not in seen:
            seen.add(key)
            sentences.append(s)
    text = " ".join(sentences)
    bad = unverified_numbers(text, facts, ignore)
    places = unsupported_claims(text, facts)
    if not bad and not places and len(text) >= min_chars:
        return Explanation(text=text, source="llm", raw=raw)
    kept = [s for s in sentences if _sentence_ok(s, facts, ignore)]
    repaired = " ".join(kept).strip()
    if (bad or places) and len(repaired) >= min_chars and repaired[-1:] in ".!?":
        what = [f"unmeasured numbers ({', '.join(bad[:4])})"] if bad else []
        what += [f"places with no selected region ({', '.join(places[:3])})"] if places else []
        note = (f"(Fact check: {len(text.split()) - len(repaired.split())} words with "
                f"{' and '.join(what)} were removed.)")
        return Explanation(text=f"{repaired} {note}", source="llm-repaired", raw=raw, unverified=tuple(bad + places),
                           notes=[note])
    fallback = template_explanation(extraction, facts) if extraction is not None else facts_block(facts)
    why = (f"it stated numbers that are not measured facts ({', '.join(bad[:4])})" if bad
           else f"it named places with no selected region ({', '.join(places[:3])})" if places
           else "it was too short")
    note = f"(The language model's text was not used because {why}; this is the measured summary.)"
    return Explanation(text=f"{fallback} {note}", source="template", raw=raw, unverified=tuple(bad + places),
                       notes=[note])


def generate_explanation(llm, words: str, facts: Sequence[Fact], extraction=None, *, scene_text: str = "",
                         ignore: Sequence[str] = (), max_new_tokens: int = 96, lead: str = "") -> Explanation:
    """Generate, time and check the explanation (non-streaming convenience)."""
    timings: dict = {}
    raw = "".join(stream_explanation(llm, words, facts, scene_text=scene_text, max_new_tokens=max_new_tokens,
                                     timings=timings, lead=lead))
    result = check_explanation(raw, facts, extraction, ignore=ignore)
    result.first_token_s = timings.get("first_token_s")
    result.total_s = timings.get("total_s")
    result.new_tokens = len(llm.tokenizer(raw)["input_ids"]) if raw else 0
    return result
