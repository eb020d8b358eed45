"""The rule reader holds every example of the phrasing corpus (tests/corpus/phrasings.json)."""

from __future__ import annotations

from collections import Counter

import pytest

from spex.bench.corpus import check, load_corpus
from spex.engine.readers import RequestReader, RuleReader

EXAMPLES = load_corpus()


def test_corpus_size_and_kinds() -> None:
    kinds = Counter(e["kind"] for e in EXAMPLES)
    assert len(EXAMPLES) >= 150 and all(n >= 3 for n in kinds.values()), kinds


def test_rule_reader_is_a_request_reader() -> None:
    assert isinstance(RuleReader(), RequestReader)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e['kind']}:{e['text']}" for e in EXAMPLES])
def test_rule_reader_holds(example: dict) -> None:
    problem = check(RuleReader(), example)
    assert problem is None, problem
