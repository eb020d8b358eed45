"""SPIE region attributes and prompt text (paper §3), computed from class masks."""

from spex.spie.prompt import SPIE_TEMPLATE, spie_prompt
from spex.spie.regions import (
    LOCATIONS,
    SIZE_CLASSES,
    SIZE_UPPER_FRACTIONS,
    RegionAttributes,
    describe_regions,
    label_regions,
    location_word,
    size_class,
)

__all__ = [
    "LOCATIONS",
    "SIZE_CLASSES",
    "SIZE_UPPER_FRACTIONS",
    "SPIE_TEMPLATE",
    "RegionAttributes",
    "describe_regions",
    "label_regions",
    "location_word",
    "size_class",
    "spie_prompt",
]
