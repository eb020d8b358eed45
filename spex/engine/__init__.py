"""The extraction engine: request, English parser, class rules, extraction and reply.

``parse_instruction`` turns one user turn into an :class:`Intent`; ``extract`` runs an
:class:`ExtractionRequest` on a scene with the spectral rules (the default backend);
``explain`` / ``answer_question`` write the reply from the resulting mask.
"""

from __future__ import annotations

from spex.engine.extract import BACKEND_NAME, extract
from spex.engine.parser import QUESTION_KINDS, parse_instruction, parse_question
from spex.engine.reply import answer_question, explain, help_text
from spex.engine.request import REGIONS, TARGET_LABELS, TARGETS, ExtractionRequest, Intent
from spex.engine.result import ClassEvidence, Extraction

__all__ = [
    "TARGETS", "TARGET_LABELS", "REGIONS", "ExtractionRequest", "Intent", "QUESTION_KINDS", "BACKEND_NAME",
    "parse_instruction", "parse_question", "extract", "Extraction", "ClassEvidence",
    "explain", "answer_question", "help_text",
]
