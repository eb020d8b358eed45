"""The chat's fixed wording: example requests, the help reply and the no-scene reply.

Split from :mod:`chat_app.dialogue` (one concept per module): the texts a visitor reads
before any scene or operation, kept together so they stay consistent; the UI shows
:data:`EXAMPLES` too. ``chat_app.dialogue`` re-exports them.
"""

from __future__ import annotations

__all__ = ["EXAMPLES", "HELP", "NO_SCENE"]


EXAMPLES = (
    "extract the water bodies",
    "only keep the ones larger than 5 ha",
    "just the three largest",
    "only in the north half",
    "be stricter",
    "also add wetlands",
    "vegetation with NDVI above 0.6",
    "water but not the sea",
    "which class covers most of the scene?",
    "remove the ones touching the border",
    "fill the holes",
    "now the vegetation instead",
    "exclude clouds",
    "what is the largest one?",
    "how much area in total?",
    "show false colour",
    "undo / redo / start over",
)

def _examples_text() -> str:
    return "\n".join(f"- *{e}*" for e in EXAMPLES)


HELP = (
    "I extract land cover from multispectral scenes and explain the result with measured spectral evidence.\n\n"
    "**1.** Upload one GeoTIFF (`.tif`/`.tiff`/`.jp2`) or all band files of one scene "
    "(Landsat: add the `*_MTL.txt`), or click **Load demo scene**.\n"
    "**2.** Ask, then refine turn by turn:\n" + _examples_text()
)


NO_SCENE = ("No scene is loaded yet. Upload a GeoTIFF (or the band files of one scene) with the paperclip button, "
            "or click **Load demo scene**; then ask e.g. *extract the water bodies*.")
