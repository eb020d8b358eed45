"""The SPIE prompt text: exact template, Python-literal list, 3 decimals, largest first."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from spex.spie import describe_regions, spie_prompt


@pytest.fixture()
def regions():
    m = np.zeros((100, 200), dtype=bool)
    m[10:20, 0:25] = True
    m[50, 100] = True
    m[70:73, 150:153] = True
    return describe_regions(m, pixel_area_m2=1.0)


def test_exact_prompt_text(regions):
    text = spie_prompt("water bodies", regions[::-1], top_n=2)  # order of input does not matter
    assert text == (
        "Based on the provided image and the attributes of the water bodies regions, please provide a "
        "detailed description of them:[{'Size of area': 'somewhat large', 'Centroid': [0.06, 0.145], "
        "'Location': 'top-left', 'Bounding box': [[0.0, 0.1], [0.12, 0.1], [0.12, 0.19], [0.0, 0.19]]}, "
        "{'Size of area': 'very tiny', 'Centroid': [0.755, 0.71], 'Location': 'bottom-right', "
        "'Bounding box': [[0.75, 0.7], [0.76, 0.7], [0.76, 0.72], [0.75, 0.72]]}]"
    )


def test_prompt_parses_back_and_caps_at_top_n(regions):
    text = spie_prompt("vegetation", regions)
    head, _, tail = text.partition("them:")
    items = ast.literal_eval(tail)
    assert head.endswith("please provide a detailed description of ") and len(items) == 3
    assert [set(d) for d in items] == [{"Size of area", "Centroid", "Location", "Bounding box"}] * 3
    for d in items:
        for v in [*d["Centroid"], *[c for xy in d["Bounding box"] for c in xy]]:
            assert type(v) is float and round(v, 3) == v
    assert spie_prompt("vegetation", [], top_n=10).endswith("them:[]")
    assert len(ast.literal_eval(spie_prompt("x", regions, top_n=1).partition("them:")[2])) == 1
    with pytest.raises(ValueError):
        spie_prompt(" ", regions)
