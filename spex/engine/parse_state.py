"""Shared state of one parse: the scratch :class:`ParseState`, shared word patterns, and :func:`fail`.

The readers in :mod:`spex.engine.parse_filters`, :mod:`spex.engine.parse_dialogue` and
:mod:`spex.engine.parse_classes` all consume phrases from one ``ParseState`` (see
:mod:`spex.engine.parser` for the order), so that one phrase never gets two meanings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from spex.engine.vocabulary import EXAMPLES, SUPPORTED_SUMMARY
from spex.errors import InstructionError

__all__ = ["EXTRACT_VERBS", "NEGATION", "ParseState", "fail"]

EXTRACT_VERBS = re.compile(
    r"\b(?:extract|find|map|detect|segment|show(?: me)?|highlight|delineate|give me|get|select|"
    r"identify|locate|outline|mask|classify|mark|display|where are|i want|i need)\b")

NEGATION = re.compile(r"\b(?:without|except(?: for)?|excluding|exclude|but not|not|no|minus|remove|"
                       r"drop|discard|ignore|mask out|leave out|omit|apart from|other than|instead of|rather than|"
                       r"get rid of)\b")


@dataclass
class ParseState:
    """Mutable scratch state of one parse (never escapes the parser)."""

    text: str
    understood: list[str] = field(default_factory=list)
    updates: dict[str, object] = field(default_factory=dict)
    strict_delta: int = 0
    strict_reset: bool = False
    targets: list[str] = field(default_factory=list)
    negated: list[str] = field(default_factory=list)
    display: str | None = None
    clear_all: bool = False
    index_limits: list[tuple[str, float | None, float | None]] = field(default_factory=list)
    keep_parts: tuple[str, ...] = ()
    drop_parts: tuple[str, ...] = ()

    def consume(self, match: re.Match[str]) -> None:
        """Blank out a recognised span so that later rules cannot re-use it."""
        start, end = match.span()
        self.text = self.text[:start] + " " * (end - start) + self.text[end:]


def fail(reason: str, understood: list[str]) -> None:
    """Raise an InstructionError that says what was understood and what is supported."""
    lines = [reason]
    lines.append("Understood: " + ("; ".join(understood) if understood else "nothing"))
    lines.append("I can handle: " + " | ".join(SUPPORTED_SUMMARY))
    lines.append("Examples: " + "; ".join(f"'{e}'" for e in EXAMPLES[:6]))
    raise InstructionError("\n".join(lines), understood, list(SUPPORTED_SUMMARY))
