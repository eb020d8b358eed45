"""Readers of dialogue commands (help, undo, redo, reset), questions about the result, class-share
questions and display requests.
"""

from __future__ import annotations

import re

from spex.engine.parse_state import EXTRACT_VERBS, ParseState
from spex.engine.phrases import is_shares_question
from spex.engine.request import TARGET_LABELS, ExtractionRequest, Intent
from spex.engine.vocabulary import TARGET_SYNONYMS

__all__ = ["question_key", "read_dialogue_command", "read_display", "read_question", "read_shares"]

def read_dialogue_command(state: ParseState) -> Intent | None:
    t = state.text.strip(" .?")
    if re.fullmatch(r"(?:please )?(?:help|\?|what can you do|what can i (?:say|ask|do)|commands|"
                    r"how (?:does this|do i use this) work|how do i use (?:this|it)|usage|examples?)", t) \
            or re.match(r"^help\b", t):
        return Intent("help", understood=("help",))
    if re.fullmatch(r"(?:please )?(?:undo|go back|revert|step back|undo (?:that|the last (?:step|change))|"
                    r"back|previous|take that back)(?: please)?", t):
        return Intent("undo", understood=("undo the last step",))
    if re.fullmatch(r"(?:please )?(?:redo|redo (?:that|it)|forward|go forward)(?: please)?", t):
        return Intent("redo", understood=("redo the undone step",))
    if re.fullmatch(r"(?:please )?(?:start (?:over|again|from scratch)|reset|restart|clear|clear (?:all|everything)|"
                    r"reset (?:all|everything)|new (?:request|start)|forget (?:it|that|everything))(?: please)?", t):
        return Intent("reset", understood=("start over",))
    return None


def read_question(state: ParseState, raw: str, current: ExtractionRequest | None) -> Intent | None:
    if EXTRACT_VERBS.search(state.text) and not re.match(r"^(?:what|which|how|where|why)\b", state.text):
        return None
    key = question_key(state.text, force=raw.strip().endswith("?"))
    if key is None:
        return None
    if key != "evidence":
        # "how many lakes are there?" before anything (or something else) was extracted
        # is an extraction of that class; the reply then answers with counts and areas.
        mentioned = {TARGET_SYNONYMS[p] for p in TARGET_SYNONYMS
                     if re.search(rf"\b{re.escape(p)}\b", state.text)}
        if mentioned and (current is None or not mentioned <= set(current.targets)):
            return None
    return Intent("question", question=key, understood=(f"question: {key.replace('_', ' ')}",))


def question_key(t: str, *, force: bool) -> str | None:
    """Map question wording to a key; ``force`` accepts it without an interrogative word."""
    interrogative = bool(re.match(r"^(?:what|which|how|where|why|tell me|list|count|show me the list|give me the list|"
                                  r"is|are|can you (?:tell|explain|list)|explain|describe)\b", t))
    if not (interrogative or force):
        return None
    if re.search(r"\b(?:why|evidence|how did you|how were|how was|explain|reason|which bands?|which ind(?:ex|ices)|"
                 r"what ind(?:ex|ices)|what threshold|which threshold|justify|based on what)\b", t):
        return "evidence"
    if re.search(r"\bhow many\b|\bnumber of\b|\bcount\b", t):
        return "count"
    if re.search(r"\b(?:how much|total|in total|altogether|overall|what (?:percentage|fraction|share)|"
                 r"what percent|how big are they|how large are they|covered)\b", t):
        return "total_area"
    if re.search(r"\b(?:smallest|tiniest)\b", t):
        return "smallest"
    if re.search(r"\b(?:largest|biggest|main|main one|largest one|big one)\b", t):
        return "largest"
    if re.search(r"^where\b|\bwhere are\b|\bwhere is\b|\blocation|\blocated\b", t):
        return "where"
    if re.search(r"^list\b|\blist (?:them|all|the)\b|\btable\b|\beach (?:one|region)\b|\bdetails\b", t):
        return "list"
    return None


def read_display(state: ParseState) -> None:
    m = re.search(r"\b(?:false[- ]?color(?: composite)?|color[- ]?infrared|cir|near[- ]?infrared composite|"
                  r"nir composite)\b", state.text)
    if m:
        state.display = "false_colour"
        state.understood.append("display: false colour (NIR-red-green)")
        state.consume(m)
        return
    m = re.search(r"\b(?:true[- ]?color|natural[- ]?color|real color|rgb view|normal color)\b", state.text)
    if m:
        state.display = "true_colour"
        state.understood.append("display: true colour")
        state.consume(m)


def _mentioned_classes(text: str) -> list[str]:
    phrases = sorted(TARGET_SYNONYMS, key=len, reverse=True)
    alternation = "|".join(re.escape(p).replace(r"\ ", r"[\s-]+") for p in phrases)
    out: list[str] = []
    for m in re.finditer(rf"\b(?:{alternation})\b", text):
        key = re.sub(r"[\s-]+", " ", m.group(0))
        target = TARGET_SYNONYMS.get(key) or TARGET_SYNONYMS.get(m.group(0))
        if target and target not in out:
            out.append(target)
    return out


def read_shares(state: ParseState) -> Intent | None:
    """'which class covers most of the scene?', 'how much is vegetation vs water?': measured per class."""
    classes = _mentioned_classes(state.text)
    if not is_shares_question(state.text, len(classes)):
        return None
    words = "compare " + " vs ".join(TARGET_LABELS[c] for c in classes) if classes else "every class"
    return Intent("question", question="shares", classes=tuple(classes),
                  understood=(f"question: class shares of the scene ({words}), measured",))
