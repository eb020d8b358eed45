"""Errors and warnings raised by :mod:`spex`.

One root (:class:`SpexError`) so that the chat app and the CLI can catch every
expected failure in one place; each subclass also derives from the matching
builtin so ordinary ``except OSError`` / ``except ValueError`` code keeps working.
Messages are written for an end user: they say what was wrong and what is accepted.
"""

from __future__ import annotations

__all__ = [
    "BandError",
    "ExportError",
    "InstructionError",
    "ModelError",
    "NotGeoreferencedWarning",
    "RelativeScalingWarning",
    "SceneReadError",
    "SpexError",
    "SpexWarning",
]


class SpexError(Exception):
    """Raised for any expected failure in spex; the message is user-facing."""


class SceneReadError(SpexError, OSError):
    """Raised when a file cannot be read as a scene (not a raster, corrupt, empty...)."""


class BandError(SpexError, ValueError):
    """Raised when bands are missing, unknown, or inconsistent with the request."""


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


class ModelError(SpexError, RuntimeError):
    """Raised when a SPEX model cannot be loaded or run."""


class SpexWarning(UserWarning):
    """Base class of spex warnings (assumptions the user should know about)."""


class NotGeoreferencedWarning(SpexWarning):
    """Warned when a scene has no CRS or transform: areas are in pixels only."""


class RelativeScalingWarning(SpexWarning):
    """Warned when values could not be calibrated to reflectance (indices are relative)."""
