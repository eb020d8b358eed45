"""Model-based reader: words outside the rule vocabulary map to a class, a composition or a refusal."""

from __future__ import annotations

import pytest

from spex.errors import InstructionError

reader_mod = pytest.importorskip("spex.model.reader")


@pytest.fixture(scope="module")
def reader():
    try:
        reader_mod.minilm_folder()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"MiniLM package not installed: {exc}")
    return reader_mod.ModelReader()


@pytest.mark.parametrize("text,target", [("show me the reservoir", "water"), ("the rainforest", "forest"),
                                         ("ponds", "water"), ("the town", "built"), ("extract the jungle", "forest")])
def test_words_map_to_class(reader, text: str, target: str) -> None:
    assert reader.read(text).request.targets == (target,)


def test_everything_except_water_is_composed(reader) -> None:
    req = reader.read("everything except water").request
    assert "water" not in req.targets and "vegetation" in req.targets and "built" in req.targets


def test_roads_refused_with_the_list(reader) -> None:
    with pytest.raises(InstructionError, match="I cannot extract roads from this scene; I can extract: water"):
        reader.read("roads")


def test_filters_kept_from_rule_parser(reader) -> None:
    req = reader.read("lakes larger than 2 ha in the north").request
    assert req.targets == ("water",) and req.min_area_m2 == 20000.0 and req.region == "north"
