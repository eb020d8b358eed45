"""Errors and warnings raised by :mod:`spex`, and the one place that words them for users.

One root (:class:`SpexError`) so that the chat app and the CLI can catch every
expected failure in one place; each subclass also derives from the matching
builtin so ordinary ``except OSError`` / ``except ValueError`` code keeps working.
Messages are written for an end user: they say what was wrong and what is accepted.

``str()`` of every :class:`SpexError` passes through :func:`clean_message`, so a raise
site that quotes a GDAL message or a server path still keeps the contract: GDAL's
wording becomes what happened to the file, absolute paths become file names.
:func:`user_message` does the same for *any* exception (MemoryError, a raw rasterio
error, a bug), so the chat and the CLI never show internals.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "BandError",
    "ExportError",
    "InstructionError",
    "LimitError",
    "ModelError",
    "NotGeoreferencedWarning",
    "RelativeScalingWarning",
    "SceneReadError",
    "SpexError",
    "SpexWarning",
    "TurnTimeLimit",
    "clean_message",
    "user_message",
]


class SpexError(Exception):
    """Raised for any expected failure in spex; the message is user-facing."""

    def __str__(self) -> str:
        return clean_message(super().__str__())


class SceneReadError(SpexError, OSError):
    """Raised when a file cannot be read as a scene (not a raster, corrupt, empty...)."""

    def __str__(self) -> str:  # OSError's own __str__ would bypass the cleaning
        return clean_message(" ".join(str(a) for a in self.args) if self.args else "")


class BandError(SpexError, ValueError):
    """Raised when bands are missing, unknown, or inconsistent with the request."""


class LimitError(SpexError, ValueError):
    """Raised when an input would need more memory, disk or time than this deployment allows.

    The message states the limit, what the input needs, and what to do (crop, fewer bands, a window).
    """


class TurnTimeLimit(LimitError):
    """Raised inside a chat turn that ran past its time limit (the turn is abandoned, state kept)."""


class InstructionError(SpexError, ValueError):
    """Raised when a plain-language instruction cannot be understood.

    ``understood`` lists what was recognised, ``supported`` what could have been said.
    """

    def __init__(self, message: str, understood: list[str] | None = None,
                 supported: list[str] | None = None) -> None:
        super().__init__(message)
        self.understood = list(understood or [])
        self.supported = list(supported or [])


class ExportError(SpexError, OSError):
    """Raised when results cannot be written."""

    def __str__(self) -> str:
        return clean_message(" ".join(str(a) for a in self.args) if self.args else "")


class ModelError(SpexError, RuntimeError):
    """Raised when a SPEX model cannot be loaded or run."""


class SpexWarning(UserWarning):
    """Base class of spex warnings (assumptions the user should know about)."""


class NotGeoreferencedWarning(SpexWarning):
    """Warned when a scene has no CRS or transform: areas are in pixels only."""


class RelativeScalingWarning(SpexWarning):
    """Warned when values could not be calibrated to reflectance (indices are relative)."""


# ----------------------------------------------------------------------------- wording

#: GDAL/libtiff wording -> what happened to the file (first match wins; case-insensitive).
_GDAL_MEANINGS: Final[tuple[tuple[str, str], ...]] = (
    (r"not recogni[sz]ed as (?:being in )?a supported (?:file )?format|not a supported file format",
     "it is not a raster format that can be read (give a GeoTIFF or JPEG 2000 file)"),
    (r"no such file or directory|does not exist in the file system",
     "the file was not found (upload it again)"),
    (r"permission denied", "the file cannot be opened (permission denied)"),
    (r"cannot allocate|out of memory|memory allocation",
     "reading it needs more memory than this server has free (crop the scene or use fewer bands)"),
    (r"TIFFFetchNormalTag|TIFFReadDirectory|Incorrect count for|Bogus|ExtraSamples|"
     r"tag (?:ignored|value)|directory (?:count|offset)|Sanity check on directory",
     "its header is damaged (a tag that describes the image cannot be read); re-export or upload it again"),
    (r"decod|decompress|inflate|zlib|ZIPDecode|LZWDecode|JPEGLib|OJPEG|Read error|read failed|IReadBlock|"
     r"TIFFRead\w*|short read|truncat|IO error|Read or write failed|unexpected end|premature end",
     "part of its pixel data cannot be decoded: the file is damaged or was cut short; upload it again or "
     "re-export it"),
)
#: Fragments that identify text as GDAL/rasterio internals (where a message starts to be internal).
_INTERNAL: Final = re.compile(
    r"(?:\bTIFF\w+\s*(?:\(\))?\s*:|\bTIFF\w+\(\)|\bCPLE_\w+|\bGDAL\w*Error\b|\bRasterio\w*Error\b|"
    r"See previous exception(?: for details)?\.?|IReadBlock failed|Read or write failed|"
    r"IO error during reading|not recogni[sz]ed as (?:being in )?a supported|No such file or directory|"
    r"Traceback \(most recent call last\)|ZIPDecode|LZWDecode|\bat row \d+|\bat offset \d+)",
    re.IGNORECASE)
#: Absolute POSIX paths (two or more components) and Windows drive paths.
_POSIX_PATH: Final = re.compile(r"(?<![\w.:/\\~])/(?:[^\s/'\"`,;()<>|*?]+/)+([^\s/'\"`,;()<>|*?]*)")
_WINDOWS_PATH: Final = re.compile(r"\b[A-Za-z]:\\(?:[^\s\\'\"`,;()<>|*?]+\\)*([^\s\\'\"`,;()<>|*?]*)")


def _meaning(text: str) -> str:
    for pattern, meaning in _GDAL_MEANINGS:
        if re.search(pattern, text, re.IGNORECASE):
            return meaning
    return "the file could not be read (it may be damaged or in a variant this reader does not support)"


def _strip_paths(text: str) -> str:
    def name(m: re.Match[str]) -> str:
        last = m.group(1) or m.group(0).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
        return last.rstrip(".") or "the file"
    return _WINDOWS_PATH.sub(name, _POSIX_PATH.sub(name, text))


def clean_message(text: str) -> str:
    """``text`` as a user may see it: GDAL internals replaced by their meaning, paths by file names.

    Text before the first internal fragment is kept (it is ours and names the file); the
    internal tail is replaced by one plain sentence about what happened to the file.
    """
    text = _strip_paths(str(text))
    m = _INTERNAL.search(text)
    if m is None:
        return text
    head = text[: m.start()].rstrip(" :;,-([")
    meaning = _meaning(text[m.start():])
    if not head:
        return meaning[0].upper() + meaning[1:] + "."
    # "x.tif cannot be read (corrupt or truncated?)" + meaning: drop the guess the meaning replaces
    head = re.sub(r":\s*[^\s:]+\.\w{2,4}$", "", head)  # GDAL repeats the file name before its message
    head = re.sub(r"\s*\((?:corrupt or truncated[^)]*)\)?\s*$", "", head)
    return f"{head}: {meaning}."


def user_message(exc: BaseException, *, action: str = "that request") -> str:
    """One user-facing sentence (or a few) for any exception; never internals or server paths.

    Args:
        exc: what was raised.
        action: what was being done, for the generic fallback ("reading the upload").
    """
    if isinstance(exc, SpexError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return (f"{action[0].upper() + action[1:]} needed more memory than this server has free. Crop the scene "
                "(e.g. `gdal_translate -srcwin`), use fewer bands, or try a smaller window.")
    module = type(exc).__module__ or ""
    if module.startswith("rasterio") or type(exc).__name__.startswith("CPLE_"):
        return "The file could not be read: " + _meaning(str(exc)) + "."
    if isinstance(exc, FileNotFoundError):
        return "A file this needs was not found (it may have been removed); upload it again."
    if isinstance(exc, PermissionError):
        return "A file this needs cannot be opened (permission denied)."
    if isinstance(exc, TimeoutError):
        return f"{action[0].upper() + action[1:]} took too long and was stopped; try a smaller scene or window."
    return (f"Something unexpected went wrong with {action}. Nothing was changed; please try again, or try "
            "another file or phrasing.")
