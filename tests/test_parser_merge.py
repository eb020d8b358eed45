"""Carry-over on class change: spex.engine.merge.merge is pure and says what it kept and dropped."""

from __future__ import annotations

from spex.engine.merge import FollowUp, merge
from spex.engine.request import ExtractionRequest

PREV = ExtractionRequest(targets=("water",), exclude=("cloud",), min_area_m2=5e4, keep_largest=3, region="north",
                         strictness=1, fill_holes=True)


def test_replace_drops_class_bound_filters_and_keeps_scene_choices() -> None:
    req, notes = merge(PREV, FollowUp(("forest",), "replace"))
    assert (req.targets, req.min_area_m2, req.keep_largest, req.strictness) == (("forest",), None, None, 0)
    assert (req.region, req.exclude, req.fill_holes) == ("north", ("cloud",), True)
    assert "larger than 5 ha" in notes[0] and "the 3 largest" in notes[0] and "stricter" in notes[0]
    assert "in the north" in notes[1] and "excluding clouds" in notes[1]


def test_explicit_fields_are_not_reported_and_add_keeps_everything() -> None:
    _, notes = merge(PREV, FollowUp(("forest",), "replace", frozenset({"min_area_m2"})))
    assert "5 ha" not in " ".join(notes)
    req, notes = merge(PREV, FollowUp(("bare",), "add"))
    assert req.targets == ("water", "bare") and req.min_area_m2 == 5e4 and req.keep_largest == 3
    assert notes and notes[0].startswith("Kept for all classes")
    assert merge(PREV, FollowUp(("water",), "replace")) == (PREV, ())
