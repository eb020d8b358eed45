"""pyogrio's raw OGR writer, imported without the data-frame packages it probes for.

Why: ``import pyogrio`` tries pandas, geopandas and pyarrow for its data-frame API, which spex never
calls: pandas alone maps ~30 MB into a CLI run whose exports are its memory peak on large scenes.
Where one of them is already loaded (the chat app: Gradio imports pandas), nothing is blocked.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

__all__ = ["pyogrio_raw"]

#: Optional packages pyogrio probes at import (``pyogrio._compat``) that its raw API does not use.
_PROBED = ("pandas", "geopandas", "pyarrow")
_lock = threading.Lock()


def pyogrio_raw() -> ModuleType:
    """``pyogrio.raw``; on its first import, the probed packages not yet loaded look absent to pyogrio."""
    with _lock:
        if "pyogrio" in sys.modules:
            return importlib.import_module("pyogrio.raw")
        blocked = [name for name in _PROBED if name not in sys.modules]
        for name in blocked:
            sys.modules[name] = None  # type: ignore[assignment]  # import of a None entry raises ImportError
        try:
            return importlib.import_module("pyogrio.raw")
        finally:
            for name in blocked:
                if sys.modules.get(name, 0) is None:
                    del sys.modules[name]
