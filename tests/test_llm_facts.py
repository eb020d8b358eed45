"""The explanation's fact check: invented numbers are caught, measured ones pass (no model needed)."""

from __future__ import annotations

from spex.model.explain import check_explanation
from spex.model.facts import Fact, numbers_in, unverified_numbers

FACTS = [
    Fact("area_ha", 12.47, "ha", "selected area: 12.47 ha"),
    Fact("share_pct", 3.2, "%", "share: 3.2 %"),
    Fact("regions", 4.0, "regions", "regions: 4"),
    Fact("water_mean_inside", 0.41, "MNDWI", "mean MNDWI inside: 0.41"),
]


def test_numbers_in_reads_digits_words_and_skips_names() -> None:
    found = [v for _, v, _ in numbers_in("Sentinel-2 shows three lakes of 1,250.5 ha and 0.41", ["Sentinel-2"])]
    assert found == [1250.5, 0.41, 3.0]


def test_measured_numbers_pass_with_rounding() -> None:
    assert unverified_numbers("About 12.5 ha (3.2 %) in four regions; MNDWI 0.41.", FACTS) == []


def test_invented_number_is_caught() -> None:
    assert unverified_numbers("The lake covers 57 ha in 4 regions.", FACTS) == ["57 ha"]
    assert unverified_numbers("There are seven regions.", FACTS) == ["seven"]


def test_check_repairs_or_falls_back() -> None:
    ok = check_explanation("The water covers 12.47 ha in 4 regions. It is bright in MNDWI.", FACTS)
    assert ok.source == "llm"
    rep = check_explanation("The water covers 12.47 ha in 4 regions, mostly open lakes. "
                            "The biggest lake is 99 ha wide.", FACTS)
    assert rep.source == "llm-repaired" and "99 ha" in rep.unverified and "12.47 ha" in rep.text
    assert "99 ha" not in rep.text.split("(Fact check")[0]
    bad = check_explanation("It is 77 ha.", FACTS)
    assert bad.source == "template" and "not used" in bad.text


def test_number_in_wrong_unit_is_caught() -> None:
    assert unverified_numbers("a depth of 4 meters", FACTS) == ["4 meters"]
    assert unverified_numbers("4 regions, 3.2 % of the scene", FACTS) == []
    assert unverified_numbers("4 % of the scene", FACTS) == ["4 %"]


def test_region_counts_and_places_are_checked() -> None:
    facts = [*FACTS, Fact("region1_ha", 8.0, "ha", "region 1 by size: 8.00 ha, top-left of the scene")]
    assert unverified_numbers("The water lies in 6 regions.", facts) == ["6 regions"]
    bad = check_explanation("The water covers 12.47 ha. The largest lies in the bottom-right of the scene.", facts)
    assert bad.source == "template" and "bottom-right" in bad.unverified
    ok = check_explanation("The water covers 12.47 ha in 4 regions. The largest lies in the top-left of the scene.",
                           facts)
    assert ok.source == "llm"
    # place words that name no 3x3 cell at all are never facts
    nonsense = check_explanation("The water covers 12.47 ha in 4 regions. It lies between the top-bottom edge and "
                                 "the middle-top of the scene.", facts)
    assert {"top-bottom", "middle-top"} <= set(nonsense.unverified) and "the top-bottom edge" not in nonsense.text


def test_repeated_sentences_are_kept_once() -> None:
    one = "The water covers 12.47 ha in 4 regions of the scene."
    text = f"{one} {one}"
    assert check_explanation(text, FACTS).text == one


def test_vocabulary_constraint_masks_unlisted_tokens() -> None:
    import torch

    from spex.model.constrain import VocabularyConstraint

    scores = torch.zeros(1, 6)
    out = VocabularyConstraint([1, 4])(torch.zeros(1, 2, dtype=torch.long), scores)
    assert torch.isfinite(out[0]).tolist() == [False, True, False, False, True, False]


def test_ordinal_rank_must_be_a_measured_number() -> None:
    """'the 12nd region' on a 4-region result is invented; 'the 2nd region' is within the measured count."""
    assert unverified_numbers("the 12nd region lies in the north", FACTS) == ["12nd"]
    assert unverified_numbers("the 4th region is small", FACTS) == []
