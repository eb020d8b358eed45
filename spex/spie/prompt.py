"""The SPIE description prompt: fixed template + Python-literal attribute list.

Format (paper digest §3.4, §8 item 9): the sentence below, no space after the
colon, then ``repr`` of a list of attribute dicts (single quotes, 3 decimals), largest
region first. The ``<image>`` token is not included: the model's chat template adds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from spex.spie.regions import RegionAttributes

__all__ = ["SPIE_TEMPLATE", "spie_prompt"]

SPIE_TEMPLATE: Final[str] = (
    "Based on the provided image and the attributes of the {class_name} regions, "
    "please provide a detailed description of them:"
)


def spie_prompt(class_name: str, regions: Sequence[RegionAttributes], top_n: int = 10) -> str:
    """SPIE prompt text for ``class_name`` listing the ``top_n`` largest ``regions``.

    Regions are re-sorted by pixel count (descending, ties by label) so the list is
    "largest first" even if the caller passed them in another order.
    """
    if not class_name.strip():
        raise ValueError("class_name must be a non-empty phrase such as 'water bodies'")
    if top_n < 0:
        raise ValueError(f"top_n must be >= 0, got {top_n}")
    ordered = sorted(regions, key=lambda r: (-r.pixels, r.label))[:top_n]
    return SPIE_TEMPLATE.format(class_name=class_name.strip()) + repr([r.to_spie_dict() for r in ordered])
