"""Parser: explicit index thresholds, parts of the water and class-share questions become request fields."""

from __future__ import annotations

import pytest

from spex.engine import parse_instruction
from spex.engine.phrases import PhraseError, find_index_limits, find_parts, is_shares_question
from spex.engine.request import ExtractionRequest, IndexLimit
from spex.errors import InstructionError


def request(text: str, current: ExtractionRequest | None = None) -> ExtractionRequest:
    intent = parse_instruction(text, current)
    assert intent.request is not None, intent
    return intent.request


@pytest.mark.parametrize(("text", "index", "low", "high"), [
    ("ndvi above 0.6", "NDVI", 0.6, None), ("mndwi > 0.3", "MNDWI", 0.3, None),
    ("ndvi between 0.3 and 0.5", "NDVI", 0.3, 0.5), ("ndvi between 0.5 and 0.3", "NDVI", 0.3, 0.5),
    ("ndvi less than 0.2", "NDVI", None, 0.2), ("mndwi values above -0.1", "MNDWI", -0.1, None),
    ("ndvi of 0.4 or more", "NDVI", 0.4, None), ("ndbi>=0.1", "NDBI", 0.1, None),
])
def test_index_phrases(text: str, index: str, low: float | None, high: float | None) -> None:
    (found,) = find_index_limits(text)
    assert (found.index, found.low, found.high) == (index, low, high)


@pytest.mark.parametrize(("text", "why"), [
    ("ndvi above 6", "between -1 and 1"), ("ndvi 0.6", "above or below"), ("nbr above 0.2", "cannot compute NBR"),
    ("ndvi between 0.4 and 0.4", "empty interval"),
])
def test_index_phrases_refused(text: str, why: str) -> None:
    with pytest.raises(PhraseError, match=why):
        find_index_limits(text)


def test_threshold_is_scoped_to_the_named_class() -> None:
    r = request("vegetation with NDVI above 0.6")
    assert r.targets == ("vegetation",) and r.index_limits == (IndexLimit("vegetation", "NDVI", 0.6, None),)
    assert "NDVI > 0.60" in r.describe()
    assert request("MNDWI > 0.3").targets == ("water",)  # the class whose own index it is
    assert request("water with NDVI below 0").index_limits == (IndexLimit("water", "NDVI", None, 0.0),)


def test_threshold_follow_ups() -> None:
    veg = request("vegetation with NDVI above 0.6")
    assert request("make it NDVI > 0.7 instead", veg).index_limits == (IndexLimit("vegetation", "NDVI", 0.7, None),)
    added = request("also add bare soil", veg)
    assert added.targets == ("vegetation", "bare") and added.index_limits == veg.index_limits  # stays with vegetation
    intent = parse_instruction("now the water instead", veg)
    assert intent.request is not None and intent.request.index_limits == ()
    assert any("NDVI > 0.60" in n and "Dropped" in n for n in intent.notes)


@pytest.mark.parametrize(("text", "keep", "drop"), [
    ("water but not the sea", (), ("sea",)), ("only the rivers", ("rivers",), ()),
    ("the lakes and rivers", ("lakes", "rivers"), ()), ("without the ocean or the creeks", (), ("sea", "rivers")),
    ("show the dry river bed", (), ()), ("sea ice", (), ()),
])
def test_part_phrases(text: str, keep: tuple[str, ...], drop: tuple[str, ...]) -> None:
    found = find_parts(text)
    assert (found.keep, found.drop) == (keep, drop)


def test_parts_in_requests() -> None:
    assert request("water but not the sea").drop_parts == ("sea",)
    r = request("the lake in the north")
    assert (r.targets, r.parts, r.region) == (("water",), ("lakes",), "north")
    r = request("the largest lake")
    assert (r.parts, r.keep_largest) == (("lakes",), 1)
    water = ExtractionRequest(("water",))
    assert request("only the rivers", water).parts == ("rivers",)
    assert request("remove the sea", water).drop_parts == ("sea",)
    assert request("show the dry river bed").targets == ("bare",)
    changed = parse_instruction("now the forest instead", ExtractionRequest(("water",), drop_parts=("sea",)))
    assert changed.request is not None and changed.request.drop_parts == ()
    assert any("not the sea" in n for n in changed.notes)


def test_contradictions_still_refused() -> None:
    with pytest.raises(InstructionError, match="both asked for and excluded"):
        parse_instruction("water excluding water")
    with pytest.raises(InstructionError, match="part of the water class"):
        parse_instruction("lakes but no water")
    with pytest.raises(InstructionError, match="lies between -1 and 1"):
        parse_instruction("vegetation with NDVI above 6")


@pytest.mark.parametrize(("text", "classes"), [
    ("which class covers most of the scene?", ()), ("how much is vegetation vs water?", ("vegetation", "water")),
    ("what is the dominant land cover?", ()), ("compare water and vegetation", ("water", "vegetation")),
])
def test_shares_questions(text: str, classes: tuple[str, ...]) -> None:
    intent = parse_instruction(text, ExtractionRequest(("water",)))
    assert (intent.kind, intent.question, intent.classes) == ("question", "shares", classes)


def test_result_questions_are_not_shares() -> None:
    assert not is_shares_question("what is the largest one?", 0)
    assert parse_instruction("what is the largest one?", ExtractionRequest(("water",))).question == "largest"
    assert not is_shares_question("water and vegetation", 2)  # two classes without 'vs' is an extraction


def test_thresholds_and_parts_can_be_cleared() -> None:
    veg = ExtractionRequest(("vegetation",), index_limits=(IndexLimit("vegetation", "NDVI", 0.6),))
    assert request("remove the NDVI threshold", veg).index_limits == ()
    assert request("back to the scene's adaptive threshold", veg).index_limits == ()
    assert request("remove all filters", veg).index_limits == ()
    water = ExtractionRequest(("water",), drop_parts=("sea",))
    assert request("include the sea again", water).drop_parts == ()
    assert request("extract all the water").targets == ("water",)


def test_threshold_goes_to_the_class_its_index_describes() -> None:
    r = request("water and vegetation with NDVI above 0.3")
    assert r.index_limits == (IndexLimit("vegetation", "NDVI", 0.3, None),)
    r = request("forest and water with ndvi above 0.7")
    assert r.index_limits == (IndexLimit("forest", "NDVI", 0.7, None),)
    r = request("water and bare soil with NDVI below 0.1")  # NDVI describes neither: both get it
    assert {lim.target for lim in r.index_limits} == {"water", "bare"}
