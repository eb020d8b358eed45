"""Instruction parser: synonyms, modifiers with digits and units, refinements, dialogue, errors."""

from __future__ import annotations

import pytest

from spex.engine.parser import parse_instruction, parse_question
from spex.engine.request import ExtractionRequest
from spex.errors import InstructionError

WATER_2HA = ExtractionRequest(targets=("water",), min_area_m2=20_000.0)


@pytest.mark.parametrize("words, target", [
    ("lakes", "water"), ("rivers", "water"), ("ponds", "water"), ("the reservoir", "water"), ("sea", "water"),
    ("the ocean", "water"), ("trees", "forest"), ("woods", "forest"), ("forest", "forest"), ("canopy", "forest"),
    ("grass", "grass"), ("meadow", "grass"), ("shrubs", "cleared"), ("pasture", "cleared"), ("fallow fields", "fallow"), ("sparse vegetation", "grass"),
    ("fields", "cropland"), ("crops", "cropland"), ("farmland", "cropland"), ("agriculture", "cropland"),
    ("green", "vegetation"), ("plants", "vegetation"), ("vegetation", "vegetation"),
    ("buildings", "built"), ("urban", "built"), ("city", "built"), ("roads", "built"), ("impervious", "built"),
    ("settlement", "built"), ("village", "built"), ("built-up", "built"), ("houses", "built"),
    ("bare soil", "bare"), ("sand", "bare"), ("beach", "bare"), ("dunes", "bare"), ("gravel", "bare"),
    ("dry river bed", "bare"), ("marsh", "wetland"), ("swamp", "wetland"), ("wetland", "wetland"),
    ("clouds", "cloud"), ("snow", "snow"), ("ice", "snow"), ("glacier", "snow"),
])
def test_synonyms(words: str, target: str) -> None:
    intent = parse_instruction(f"extract the {words}")
    assert intent.kind == "extract"
    assert intent.request is not None and intent.request.targets == (target,)


@pytest.mark.parametrize("text, lo, hi", [
    ("lakes larger than 2 ha", 20_000, None),
    ("water bodies bigger than 5000 m2", 5_000, None),
    ("water bodies bigger than 5,000 m²", 5_000, None),
    ("forest under 1 km²", None, 1e6),
    ("forest smaller than 0.5 km2", None, 5e5),
    ("fields of at least 3 acres", 3 * 4046.8564224, None),
    ("ponds between 1 and 5 ha", 1e4, 5e4),
    ("buildings over 2.5 hectares", 25_000, None),
    ("lakes larger than a hectare", 1e4, None),
    ("lakes at most 300 square metres", None, 300),
])
def test_area_units(text: str, lo: float | None, hi: float | None) -> None:
    req = parse_instruction(text).request
    assert req is not None
    assert req.min_area_m2 == pytest.approx(lo) if lo is not None else req.min_area_m2 is None
    assert req.max_area_m2 == pytest.approx(hi) if hi is not None else req.max_area_m2 is None


def test_pixels_need_pixel_area() -> None:
    req = parse_instruction("water at least 100 pixels", pixel_area_m2=100.0).request
    assert req is not None and req.min_area_m2 == pytest.approx(10_000)
    with pytest.raises(InstructionError, match="pixel"):
        parse_instruction("water at least 100 pixels")


@pytest.mark.parametrize("text, n", [
    ("the 3 largest lakes", 3), ("the largest forest", 1), ("top 3 lakes", 3), ("the three largest lakes", 3),
    ("the biggest 2 fields", 2), ("the largest one of the lakes", 1),
])
def test_keep_largest(text: str, n: int) -> None:
    req = parse_instruction(text).request
    assert req is not None and req.keep_largest == n and req.region is None


@pytest.mark.parametrize("text, region", [
    ("water in the north", "north"), ("forest in the northern half", "north"),
    ("trees in the top-left quarter", "top-left"), ("water in the upper left", "top-left"),
    ("buildings in the center", "center"), ("buildings in the centre", "center"),
    ("lakes in the south-east", "bottom-right"), ("fields on the left side", "west"),
    ("water in the bottom half", "south"), ("forest in the eastern part", "east"),
])
def test_regions(text: str, region: str) -> None:
    req = parse_instruction(text).request
    assert req is not None and req.region == region


def test_lone_position_words_are_not_regions() -> None:
    req = parse_instruction("top 3 lakes").request
    assert req is not None and req.region is None and req.keep_largest == 3


@pytest.mark.parametrize("text, excluded", [
    ("water, exclude clouds", ("cloud",)), ("forest without clouds", ("cloud",)),
    ("vegetation except forest", ("forest",)), ("water but not wetlands or snow", ("wetland", "snow")),
])
def test_exclusion(text: str, excluded: tuple[str, ...]) -> None:
    req = parse_instruction(text).request
    assert req is not None and req.exclude == excluded
    assert not set(req.exclude) & set(req.targets)


@pytest.mark.parametrize("text, strictness", [
    ("water, be stricter", 1), ("more conservative water", 1), ("water, looser", -1),
    ("water, more permissive", -1), ("water, much stricter", 2),
])
def test_strictness(text: str, strictness: int) -> None:
    req = parse_instruction(text).request
    assert req is not None and req.strictness == strictness


def test_shape_options() -> None:
    req = parse_instruction("water, fill the holes, smooth the edges and remove the ones touching the border").request
    assert req is not None and req.fill_holes and req.smooth and req.drop_border


def test_multiple_targets_and_digits() -> None:
    req = parse_instruction("extract lakes and forests larger than 12.5 ha in the north, top 10").request
    assert req is not None
    assert req.targets == ("water", "forest")
    assert req.min_area_m2 == pytest.approx(125_000)
    assert req.keep_largest == 10 and req.region == "north"


@pytest.mark.parametrize("text, check", [
    ("only keep the ones larger than 5 ha", lambda r: r.min_area_m2 == 50_000 and r.targets == ("water",)),
    ("just the three largest", lambda r: r.keep_largest == 3 and r.min_area_m2 == 20_000),
    ("also add wetlands", lambda r: r.targets == ("water", "wetland") and r.min_area_m2 == 20_000),
    ("now the vegetation instead", lambda r: r.targets == ("vegetation",)),
    ("remove the size filter", lambda r: r.min_area_m2 is None and r.targets == ("water",)),
    ("be stricter", lambda r: r.strictness == 1 and r.min_area_m2 == 20_000),
    ("looser", lambda r: r.strictness == -1),
    ("fill the holes", lambda r: r.fill_holes and r.min_area_m2 == 20_000),
    ("exclude clouds", lambda r: r.exclude == ("cloud",)),
    ("in the north", lambda r: r.region == "north" and r.min_area_m2 == 20_000),
])
def test_refinements(text: str, check) -> None:
    intent = parse_instruction(text, WATER_2HA)
    assert intent.kind == "refine"
    assert intent.request is not None and check(intent.request)
    assert intent.understood


def test_refinement_chain_and_removal() -> None:
    a = parse_instruction("water and wetlands in the north", None).request
    b = parse_instruction("remove the wetlands", a).request
    assert b is not None and b.targets == ("water",) and b.region == "north"
    c = parse_instruction("anywhere", b).request
    assert c is not None and c.region is None
    d = parse_instruction("stricter", parse_instruction("much stricter", c).request).request
    assert d is not None and d.strictness == 2  # clamped


def test_new_class_with_verb_starts_fresh() -> None:
    intent = parse_instruction("extract the forest", WATER_2HA)
    assert intent.kind == "extract"
    assert intent.request == ExtractionRequest(targets=("forest",))


def test_refinement_without_current_is_clear_error() -> None:
    with pytest.raises(InstructionError, match="ask for a class first") as info:
        parse_instruction("only keep the ones larger than 5 ha")
    assert "larger than 5 ha" in " ".join(info.value.understood)


@pytest.mark.parametrize("text, kind", [
    ("undo", "undo"), ("Undo!", "undo"), ("redo", "redo"), ("start over", "reset"), ("reset", "reset"),
    ("help", "help"), ("what can you do?", "help"),
])
def test_dialogue_commands(text: str, kind: str) -> None:
    assert parse_instruction(text, WATER_2HA).kind == kind


@pytest.mark.parametrize("text, key", [
    ("what is the largest one?", "largest"), ("how much area in total?", "total_area"), ("how many?", "count"),
    ("list them", "list"), ("where are they?", "where"), ("why?", "evidence"), ("what evidence?", "evidence"),
    ("which is the smallest?", "smallest"), ("how many lakes are there?", "count"),
])
def test_questions(text: str, key: str) -> None:
    intent = parse_instruction(text, WATER_2HA)
    assert intent.kind == "question" and intent.question == key
    assert parse_question(text) == key


def test_question_about_new_class_extracts_it() -> None:
    intent = parse_instruction("how many lakes are there?")
    assert intent.kind == "extract" and intent.request is not None and intent.request.targets == ("water",)


@pytest.mark.parametrize("text, display", [
    ("show false colour", "false_colour"), ("false color", "false_colour"), ("true colour", "true_colour"),
])
def test_display(text: str, display: str) -> None:
    intent = parse_instruction(text, WATER_2HA)
    assert intent.kind == "display" and intent.display == display


def test_display_with_extraction() -> None:
    intent = parse_instruction("show the water in false colour")
    assert intent.kind == "extract" and intent.display == "false_colour"


@pytest.mark.parametrize("text", ["blah blah", "", "   ", "make it nice"])
def test_unparseable_lists_understood_and_supported(text: str) -> None:
    with pytest.raises(InstructionError) as info:
        parse_instruction(text)
    message = str(info.value)
    assert "Understood:" in message and "I can handle:" in message and "Examples:" in message
    assert info.value.supported


def test_ambiguous_size_and_smallest_are_errors() -> None:
    with pytest.raises(InstructionError, match="larger or smaller"):
        parse_instruction("lakes of 2 ha")
    with pytest.raises(InstructionError, match="smallest"):
        parse_instruction("the 3 smallest lakes")
    with pytest.raises(InstructionError, match="minimum size"):
        parse_instruction("lakes larger than 5 ha and smaller than 1 ha")


def test_only_class_cannot_be_removed() -> None:
    with pytest.raises(InstructionError, match="only class"):
        parse_instruction("remove the water", WATER_2HA)


@pytest.mark.parametrize("text, lo", [("water > 1 ha", 1e4), ("lakes >= 3ha", 3e4), ("fields > 10,000 m2", 1e4)])
def test_comparison_symbols(text: str, lo: float) -> None:
    req = parse_instruction(text).request
    assert req is not None and req.min_area_m2 == pytest.approx(lo)


def test_instead_of_replaces_without_excluding() -> None:
    req = parse_instruction("now show forest instead of water", WATER_2HA).request
    assert req is not None and req.targets == ("forest",) and req.exclude == () and req.min_area_m2 is None
    intent = parse_instruction("now show forest instead of water", WATER_2HA)
    assert any("Dropped" in n and "larger than 2 ha" in n for n in intent.notes)


def test_more_dialogue_phrasings() -> None:
    assert parse_instruction("drop the border ones", WATER_2HA).request.drop_border
    assert parse_instruction("count them", WATER_2HA).question == "count"
    assert parse_instruction("which bands did you use?", WATER_2HA).question == "evidence"
    with pytest.raises(InstructionError, match="needs a size"):
        parse_instruction("get rid of the small ones", WATER_2HA)


@pytest.mark.parametrize("text", ["show me the reservoir", "detect the reservoirs", "extract the dam reservoir"])
def test_a_reservoir_is_the_water_class_not_the_lake_part(text: str) -> None:
    # a dammed valley is dendritic and, cut by the frame, sea-sized: the shape rules would drop it
    request = parse_instruction(text).request
    assert request.targets == ("water",) and request.parts == () and request.drop_parts == ()
