"""Landsat ``*_MTL.txt`` metadata: parse and turn into per-band calibration.

Handles both the pre-Collection / Collection-1 keys (``RADIANCE_MULT_BAND_n``,
``RADIANCE_MAXIMUM_BAND_n`` / ``LMAX_BANDn``, ``QUANTIZE_CAL_MAX_BAND_n`` / ``QCALMAX_BANDn``)
and the OLI keys (``REFLECTANCE_MULT_BAND_n`` / ``REFLECTANCE_ADD_BAND_n``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from spex.errors import SceneReadError

__all__ = ["MtlFile", "parse_mtl", "read_mtl", "earth_sun_distance", "find_mtl"]

_LINE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class MtlFile:
    """Flat view of an MTL file: ``values[(group, KEY)]`` and ``first(KEY)`` lookups."""

    path: Path | None
    values: dict[tuple[str, str], str] = field(repr=False)

    def first(self, key: str, prefer_group: str | None = None) -> str | None:
        """Value of ``key`` (upper case), from ``prefer_group`` when it has it."""
        if prefer_group is not None and (prefer_group, key) in self.values:
            return self.values[(prefer_group, key)]
        for (_group, k), v in self.values.items():
            if k == key:
                return v
        return None

    def number(self, key: str, prefer_group: str | None = None) -> float | None:
        """Numeric value of ``key`` or None when absent / not a number."""
        raw = self.first(key, prefer_group)
        if raw is None:
            return None
        try:
            return float(raw)
        except ValueError:
            return None

    def has_group(self, group: str) -> bool:
        return any(g == group for g, _ in self.values)

    @property
    def spacecraft(self) -> str | None:
        """E.g. "LANDSAT_5"."""
        return self.first("SPACECRAFT_ID")

    @property
    def sensor_id(self) -> str | None:
        """E.g. "TM", "ETM", "OLI_TIRS"."""
        return self.first("SENSOR_ID")

    @property
    def acquisition_date(self) -> dt.date | None:
        raw = self.first("DATE_ACQUIRED") or self.first("ACQUISITION_DATE")
        if raw is None:
            return None
        try:
            return dt.date.fromisoformat(raw[:10])
        except ValueError:
            return None

    @property
    def sun_elevation(self) -> float | None:
        return self.number("SUN_ELEVATION")

    @property
    def sun_azimuth(self) -> float | None:
        """Sun azimuth at scene centre, degrees clockwise from north (shadow direction)."""
        return self.number("SUN_AZIMUTH")

    def band_files(self) -> dict[str, str]:
        """Band id ("B1", "B10") -> file name as listed in the MTL."""
        out: dict[str, str] = {}
        for (_g, key), value in self.values.items():
            m = re.fullmatch(r"FILE_NAME_BAND_(\d+)(?:_VCID_(\d))?|BAND(\d+)(?:_VCID_(\d))?_FILE_NAME", key)
            if m:
                num = m.group(1) or m.group(3)
                out.setdefault(f"B{num}", value)
        return out


def parse_mtl(text: str, path: Path | None = None) -> MtlFile:
    """Parse MTL ``GROUP = ... / KEY = value / END_GROUP`` text (quotes stripped)."""
    values: dict[tuple[str, str], str] = {}
    groups: list[str] = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        key, value = m.group(1).upper(), m.group(2).strip().strip('"')
        if key == "GROUP":
            groups.append(value)
        elif key == "END_GROUP":
            if groups:
                groups.pop()
        else:
            values[(groups[-1] if groups else "", key)] = value
    if not values:
        raise SceneReadError(f"{path or 'MTL text'} is not a Landsat MTL metadata file (no KEY = value lines)")
    return MtlFile(path, values)


def read_mtl(path: str | Path) -> MtlFile:
    """Read and parse an MTL file; raise :class:`SceneReadError` when unreadable."""
    p = Path(path)
    if not p.is_file():
        raise SceneReadError(f"MTL file not found: {p}")
    try:
        text = p.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise SceneReadError(f"cannot read MTL file {p}: {exc.strerror or exc}") from None
    mtl = parse_mtl(text, p)
    if mtl.first("SPACECRAFT_ID") is None:
        raise SceneReadError(f"{p} is not a Landsat MTL file (no SPACECRAFT_ID); give the *_MTL.txt of the scene")
    return mtl


def earth_sun_distance(date: dt.date) -> float:
    """Earth-Sun distance (AU) for ``date`` (eccentricity approximation, error < 0.0002 AU)."""
    doy = date.timetuple().tm_yday
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))


def find_mtl(paths: list[Path]) -> Path | None:
    """An ``*_MTL.txt`` beside the scene files whose product id prefixes a file name."""
    for p in paths:
        folder = p.parent
        m = re.match(r"^(.*?)(?:_B\d+|_SR_B\d+|_ST_B\d+)?\.[A-Za-z]+$", p.name)
        stem = m.group(1) if m else p.stem
        candidates = [folder / f"{stem}_MTL.txt", folder / f"{stem}_MTL.TXT"]
        candidates += sorted(folder.glob("*_MTL.txt"))
        for c in candidates:
            product = c.name[: -len("_MTL.txt")]
            if c.is_file() and (p.name.startswith(product) or product.startswith(stem)):
                return c
    return None
