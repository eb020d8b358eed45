"""Scene-wide statistics of the class rules, recorded once and replayed on every tile.

Why: the rules threshold each scene at its own Otsu split. A tile of a large scene holds only part
of the histogram, so thresholding it on its own would make the mask depend on where the tiles fall.
The streamed extraction (:mod:`spex.engine.streamed`) records every statistic on an overview of the
whole scene (a nearest-neighbour sample of its pixels), freezes the record and lets each tile read
it, so every tile applies the same thresholds whatever the tile size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

__all__ = ["Calibration"]

log = logging.getLogger(__name__)


@dataclass
class Calibration:
    """Named statistics (key = rule, strictness, statistic, its parameters) and whether new ones may be added."""

    values: dict[tuple[Hashable, ...], object] = field(default_factory=dict)
    frozen: bool = False
    #: keys asked for after freezing that were never recorded (computed locally: tiles may then disagree)
    missed: set[tuple[Hashable, ...]] = field(default_factory=set)

    def get(self, key: tuple[Hashable, ...], compute: Callable[[], object]) -> object:
        """The recorded statistic ``key``; computed and recorded while not frozen."""
        if key in self.values:
            return self.values[key]
        value = compute()
        if self.frozen:
            if key not in self.missed:
                log.warning("statistic %r was not calibrated on the whole scene; computed on one tile", key)
            self.missed.add(key)
        else:
            self.values[key] = value
        return value

    def freeze(self) -> Calibration:
        """This record, closed to new statistics (the tiles' view of it)."""
        self.frozen = True
        return self
