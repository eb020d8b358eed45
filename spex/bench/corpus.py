"""``python -m spex.bench corpus [--reader rule|model]``: share of the phrasing corpus each reader holds, per kind.

The corpus (tests/corpus/phrasings.json) pairs real-user phrasings with the request fields they must
produce or a phrase their refusal must contain; :func:`check` is the one judgement used by both this
benchmark and tests/test_parser_corpus.py.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spex.engine.readers import Refusal, RequestReader, RuleReader
from spex.engine.request import ExtractionRequest, IndexLimit

__all__ = ["CORPUS_PATH", "check", "format_table", "load_corpus", "make_reader", "run_corpus"]

CORPUS_PATH = Path(__file__).resolve().parents[2] / "tests" / "corpus" / "phrasings.json"


def load_corpus(path: Path = CORPUS_PATH) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["examples"])


def _previous(spec: Mapping[str, Any] | None) -> ExtractionRequest | None:
    if spec is None:
        return None
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
    if "index_limits" in values:  # [[target, index, low, high], ...]
        values["index_limits"] = tuple(IndexLimit(*lim) for lim in values["index_limits"])
    return ExtractionRequest(**values)


def _plain(value: Any) -> Any:
    """Request values as the corpus writes them (IndexLimit -> [target, index, low, high])."""
    if isinstance(value, IndexLimit):
        return (value.target, value.index, value.low, value.high)
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    return value


def check(reader: RequestReader, example: Mapping[str, Any]) -> str | None:
    """None when ``reader`` handles ``example`` as the corpus says, else what went wrong (one line)."""
    try:
        out = reader.read(example["text"], _previous(example.get("previous")))
    except Exception as exc:  # a reader must refuse, not raise; count it as a miss
        return f"raised {type(exc).__name__}: {exc}"
    expect = dict(example["expect"])
    if "refusal" in expect:
        if not isinstance(out, Refusal):
            return f"expected a refusal containing {expect['refusal']!r}, got {out}"
        return None if expect["refusal"].lower() in out.reason.lower() else f"refusal was: {out.reason}"
    if isinstance(out, Refusal):
        return f"refused: {out.reason}"
    kind = expect.pop("kind", None)
    if kind is not None and out.kind != kind:
        return f"kind {out.kind!r}, expected {kind!r}"
    question = expect.pop("question", None)
    if question is not None and out.question != question:
        return f"question {out.question!r}, expected {question!r}"
    classes = expect.pop("classes", None)
    if classes is not None and tuple(out.classes) != tuple(classes):
        return f"classes {out.classes!r}, expected {tuple(classes)!r}"
    note = expect.pop("notes_contain", None)
    if note is not None and not any(note in n for n in out.notes):
        return f"no note containing {note!r} (notes: {out.notes})"
    if expect:
        if out.request is None:
            return f"no request (kind {out.kind!r})"
        for name, value in expect.items():
            got = _plain(getattr(out.request, name))
            want = _plain(value)
            if isinstance(want, float) and isinstance(got, float):
                if abs(got - want) > 1e-6 * max(1.0, abs(want)):
                    return f"{name} = {got}, expected {want}"
            elif got != want:
                return f"{name} = {got!r}, expected {want!r}"
    return None


def make_reader(name: str) -> RequestReader:
    """"rule" = the rule parser; "model" = spex.model.reader.ModelReader when that module provides one."""
    if name == "rule":
        return RuleReader()
    if name == "model":
        from spex.model import reader as model_reader  # written against spex.engine.readers (model issue)

        return model_reader.ModelReader()  # type: ignore[attr-defined]
    raise ValueError(f"unknown reader {name!r}; expected 'rule' or 'model'")


def run_corpus(reader: RequestReader, examples: list[dict[str, Any]] | None = None) -> dict[str, tuple[int, int]]:
    """Per kind: (held, total)."""
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ex in examples if examples is not None else load_corpus():
        row = table[ex["kind"]]
        row[1] += 1
        row[0] += check(reader, ex) is None
    return {k: (v[0], v[1]) for k, v in table.items()}


def format_table(name: str, table: Mapping[str, tuple[int, int]]) -> str:
    lines = [f"reader: {name}", "| kind | held | total | share |", "|---|---|---|---|"]
    for kind, (held, total) in table.items():
        lines.append(f"| {kind} | {held} | {total} | {100 * held / total:.0f} % |")
    held = sum(v[0] for v in table.values())
    total = sum(v[1] for v in table.values())
    lines.append(f"| **all** | {held} | {total} | {100 * held / max(total, 1):.1f} % |")
    return "\n".join(lines)


def main(reader_name: str = "rule") -> int:
    print(format_table(reader_name, run_corpus(make_reader(reader_name))))
    return 0
