"""Scene hints in a chat message: "the bands are blue, green, red, nir", "this is Landsat 8 OLI".

The chat has no ``--bands`` / ``--sensor`` / ``--mtl`` options, so a user says them. This module
only *finds* them in the text (no validation): the dialogue passes them to
:func:`spex.io.open_scene`, which validates them exactly as the CLI does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SceneHints", "find_hints"]

#: (pattern, sensor key for spex.io.get_sensor); first match wins.
_SENSORS: tuple[tuple[str, str], ...] = (
    (r"sentinel[\s-]?2\w*\s*(?:l2a|level[\s-]?2a?|surface reflectance|boa)", "s2_l2a"),
    (r"sentinel[\s-]?2", "s2_l1c"),
    (r"landsat[\s-]?(?:8|9)|\boli\b", "landsat_oli"),
    (r"landsat[\s-]?7|\betm\+?", "landsat7_etm"),
    (r"landsat[\s-]?5", "landsat5_tm"),
    (r"landsat[\s-]?4", "landsat4_tm"),
    (r"\b(?:bgrn|blue[\s,-]+green[\s,-]+red[\s,-]+(?:nir|near[\s-]?infrared))\b.*aerial|aerial.*\bbgrn\b",
     "aerial_bgrn"),
    (r"\brgbn\b.*aerial|aerial.*\brgbn\b", "aerial_rgbn"),
    (r"\b(?:plain\s+)?rgb\s+(?:photo|image|picture)\b", "rgb"),
)
_SENSOR_CUE = re.compile(r"\b(?:this|it|that|the (?:scene|image|file|data))\s+(?:is|was|comes? from|are)\b|"
                         r"\b(?:sensor|satellite|taken by|acquired by|scene from)\b", re.IGNORECASE)
_BANDS = re.compile(r"\b(?:the\s+)?bands?\s*(?:are|is|:|=|in order(?: are)?)\s*(?P<list>[\w\s,;/+-]+?)"
                    r"(?:\.(?:\s|$)|$|\?|!|\bthen\b|\band (?:then|now)\b)", re.IGNORECASE)
_SCALING = re.compile(r"\b(?:scal(?:e|ing|ed)|reflectance\s*(?:x|\*|times)\s*\d+|dn\s*=|digital numbers?|"
                      r"surface reflectance|top[\s-]of[\s-]atmosphere|\btoa\b)", re.IGNORECASE)
_SPLIT = re.compile(r"\s*(?:,|;|/|\band\b|\s)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class SceneHints:
    """What a message says about the scene (None = not said) and the text left for an instruction."""

    bands: tuple[str, ...] | None = None
    sensor: str | None = None
    scaling: str | None = None  # the words used; scaling is reported, not overridden
    rest: str = ""

    @property
    def any(self) -> bool:
        return self.bands is not None or self.sensor is not None or self.scaling is not None


def find_hints(text: str) -> SceneHints:
    """The scene hints in ``text``; ``rest`` is the text without them (may hold an instruction)."""
    rest = text
    bands: tuple[str, ...] | None = None
    m = _BANDS.search(text)
    if m:
        words = [w for w in _SPLIT.split(m.group("list").strip()) if w]
        if words:
            bands = tuple(w.lower() for w in words)
            rest = rest.replace(m.group(0).rstrip(".?! "), " ")
    sensor = None
    if _SENSOR_CUE.search(text) or bands is None and re.match(r"\s*(?:it'?s|this is)\b", text, re.IGNORECASE):
        for pattern, key in _SENSORS:
            s = re.search(pattern, text, re.IGNORECASE)
            if s:
                sensor = key
                cue = re.search(r"[^.,;!?]*(?:" + pattern + r")[^.,;!?]*", rest, re.IGNORECASE)
                if cue:
                    rest = rest.replace(cue.group(0), " ")
                break
    scaling = None
    sc = _SCALING.search(rest if sensor is None else text)
    if sc and (sensor is not None or re.search(r"\b(?:values?|data|pixels?|it|this)\b", text, re.IGNORECASE)):
        scaling = sc.group(0)
        part = re.search(r"[^.,;!?]*" + re.escape(sc.group(0)) + r"[^.,;!?]*", rest, re.IGNORECASE)
        if part:
            rest = rest.replace(part.group(0), " ")
    rest = re.sub(r"^[\s,.;:!?-]*(?:and|then|now)?\b[\s,.;:!?-]*", "", rest.strip(), flags=re.IGNORECASE)
    return SceneHints(bands=bands, sensor=sensor, scaling=scaling, rest=rest.strip(" ,.;:!?-"))
