"""Which scenes a batch run covers: files, band sets, list files and globs -> named scenes.

A scene is what ``python -m spex extract`` accepts: one raster, a folder of band files, or
several band files (plus an optional ``*_MTL.txt``). On the command line of ``batch`` each
argument is one scene, except:

- a glob (``tiles/*.tif``): every match is one scene, in sorted order;
- band files joined by commas (``a_B02.tif,a_B03.tif,...``): one scene;
- a text list (``.txt``/``.lst``/``.list`` that is not an ``*_MTL.txt``): one scene per line,
  its files separated by commas or spaces, globs allowed (a glob on a line = one scene of all
  matches), relative paths resolved against the list's folder, ``#`` starts a comment.

Each scene gets a file-system-safe, unique name: the output folder ``DIR/<name>/``.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from spex.errors import SpexError

__all__ = ["BatchScene", "LIST_SUFFIXES", "expand_scenes", "scene_name"]

#: Suffixes of a text file that lists scenes (an ``*_MTL.txt`` is Landsat metadata, never a list).
LIST_SUFFIXES: tuple[str, ...] = (".txt", ".lst", ".list")
_GLOB_CHARS = re.compile(r"[*?\[]")
_SEPARATORS = re.compile(r"[,\s]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Trailing band ids and separators dropped from a common file-name prefix ("LC08_..._B" -> "LC08_...").
_PREFIX_TAIL = re.compile(r"([_.\- ]+(B|band)?0*)+$", re.IGNORECASE)


@dataclass(frozen=True)
class BatchScene:
    """One scene of a batch: its unique name (the output folder) and its files."""

    name: str
    paths: tuple[str, ...]


def _is_list_file(item: str) -> bool:
    p = Path(item)
    return p.suffix.lower() in LIST_SUFFIXES and not p.name.upper().endswith("_MTL.TXT") and p.is_file()


def _glob(pattern: str) -> list[str]:
    matches = sorted(glob.glob(os.path.expanduser(pattern)))
    if not matches:
        raise SpexError(f"no file matches {pattern!r}; check the pattern (quote it so the shell does not expand it "
                        "differently) or list the scenes in a text file, one per line")
    return matches


def _line_paths(line: str, base: Path) -> list[str]:
    """Files of one list line: separated by commas/spaces, relative to the list's folder, globs expanded."""
    paths: list[str] = []
    for token in (t for t in _SEPARATORS.split(line.strip()) if t):
        path = token if os.path.isabs(os.path.expanduser(token)) else str(base / token)
        paths.extend(_glob(path) if _GLOB_CHARS.search(token) else [os.path.expanduser(path)])
    return paths


def _read_list(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpexError(f"cannot read the scene list {path}: {exc}") from exc
    scenes = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            scenes.append(_line_paths(line, path.parent))
    if not scenes:
        raise SpexError(f"the scene list {path} names no scene; write one scene per line (band files of one "
                        "scene separated by commas or spaces)")
    return scenes


def scene_name(paths: Sequence[str]) -> str:
    """A readable name for a scene: a file's stem, a folder's name, or the common prefix of band files."""
    stems = [Path(p).name if Path(p).is_dir() else Path(p).stem for p in paths
             if not Path(p).name.upper().endswith("_MTL.TXT")] or [Path(paths[0]).stem]
    if len(stems) == 1:
        name = stems[0]
    else:
        name = _PREFIX_TAIL.sub("", os.path.commonprefix(stems))
        if len(name) < 3:  # band files with unrelated names: their folder names the scene
            name = Path(paths[0]).resolve().parent.name or stems[0]
    return _UNSAFE.sub("_", name).strip("._") or "scene"


def _unique(names: Iterable[str]) -> list[str]:
    taken: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in taken:  # compared case-insensitively: case-insensitive file systems
            n += 1
            candidate = f"{name}-{n}"
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def expand_scenes(items: Sequence[str]) -> list[BatchScene]:
    """The scenes named by command-line ``items`` (see the module docstring), each with a unique name.

    Raises:
        SpexError: a glob matches nothing, a list file cannot be read or is empty, or nothing is given.
    """
    groups: list[list[str]] = []
    for item in items:
        item = str(item)
        if _GLOB_CHARS.search(item) and "," not in item:
            groups.extend([m] for m in _glob(item))
        elif _is_list_file(item):
            groups.extend(_read_list(Path(item)))
        elif "," in item:
            groups.append(_line_paths(item, Path.cwd()))
        else:
            groups.append([os.path.expanduser(item)])
    if not groups:
        raise SpexError("no scene given: name raster files, folders, comma-joined band files, globs or a text list")
    names = _unique(scene_name(g) for g in groups)
    return [BatchScene(name, tuple(g)) for name, g in zip(names, groups, strict=True)]
