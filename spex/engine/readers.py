"""The contract every instruction reader meets (rule-based parser, model-based reader).

A reader turns one user turn (plus the request currently shown) into an :class:`Intent`, or refuses
with a :class:`Refusal` whose reason is written for the user. Readers never raise for words they
cannot use: they refuse, so the chat and the corpus benchmark treat every reader the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from spex.engine.request import ExtractionRequest, Intent
from spex.errors import InstructionError

__all__ = ["Refusal", "RequestReader", "RuleReader"]


@dataclass(frozen=True)
class Refusal:
    """A turn the reader will not act on; ``reason`` is user-facing, ``understood`` what was recognised."""

    reason: str
    understood: tuple[str, ...] = ()


@runtime_checkable
class RequestReader(Protocol):
    """Reads one turn; ``previous`` is the request currently shown (None before the first extraction)."""

    name: str

    def read(self, text: str, previous: ExtractionRequest | None) -> Intent | Refusal: ...


class RuleReader:
    """The rule-based English parser (:func:`spex.engine.parser.parse_instruction`) as a RequestReader."""

    name = "rule"

    def __init__(self, pixel_area_m2: float | None = None) -> None:
        self.pixel_area_m2 = pixel_area_m2

    def read(self, text: str, previous: ExtractionRequest | None) -> Intent | Refusal:
        from spex.engine.parser import parse_instruction

        try:
            return parse_instruction(text, previous, pixel_area_m2=self.pixel_area_m2)
        except InstructionError as exc:
            return Refusal(str(exc).splitlines()[0], tuple(exc.understood))
