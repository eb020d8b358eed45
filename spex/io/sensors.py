"""Sensor band tables: which band id means which canonical band, per sensor.

Bands are class-level declarations (TorchGeo style), never magic positions. Each
:class:`Sensor` lists its band ids in product order (``all_bands``) and the canonical
role of each (:mod:`spex.bands` names; ``None`` = not a spectral band we use).
Solar irradiances (ESUN, W m-2 um-1) and thermal constants K1/K2 are the published
values of Chander, Markham & Helder (2009), Remote Sens. Environ. 113, 893-903, used
for the radiance -> TOA reflectance step of old (pre-Collection) Landsat MTL files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from spex.bands import WAVELENGTHS_NM

__all__ = ["Sensor", "SENSORS", "get_sensor", "generic_sensor"]


@dataclass(frozen=True)
class Sensor:
    """One sensor's band layout.

    Attributes:
        key: short identifier used in code and tests ("s2_l1c", "landsat5_tm", ...).
        name: human name shown to users.
        all_bands: band ids in product order (e.g. "B02", "B1").
        roles: canonical band name per id (``None`` = ignored, e.g. a second thermal band).
        family: "sentinel2" | "landsat" | "aerial" | "rgb" | "generic" (drives scaling rules).
        esun: band id -> mean exo-atmospheric solar irradiance (old Landsat MTL only).
        thermal_k: band id -> (K1, K2) for brightness temperature.
    """

    key: str
    name: str
    all_bands: tuple[str, ...]
    roles: tuple[str | None, ...]
    family: str
    esun: Mapping[str, float] = field(default_factory=dict)
    thermal_k: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.all_bands) != len(self.roles):
            raise ValueError(f"{self.key}: {len(self.all_bands)} band ids but {len(self.roles)} roles")
        for role in self.roles:
            if role is not None and role not in WAVELENGTHS_NM:
                raise ValueError(f"{self.key}: unknown canonical band {role!r}")

    def role(self, band_id: str) -> str | None:
        """Canonical name of ``band_id`` (e.g. "B4" -> "red" for TM)."""
        return self.roles[self.all_bands.index(band_id)]

    def index(self, band_id: str) -> int:
        """1-based position of ``band_id`` in a full product stack."""
        return self.all_bands.index(band_id) + 1


_S2_L1C_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
_S2_L1C_ROLES = ("coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
                 "watervapour", "cirrus", "swir1", "swir2")
_TM_IDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7")
_TM_ROLES = ("blue", "green", "red", "nir", "swir1", "thermal", "swir2")

_SENSOR_LIST: tuple[Sensor, ...] = (
    Sensor("s2_l1c", "Sentinel-2 L1C", _S2_L1C_IDS, _S2_L1C_ROLES, "sentinel2"),
    Sensor("s2_l2a", "Sentinel-2 L2A",
           tuple(b for b in _S2_L1C_IDS if b != "B10"),
           tuple(r for b, r in zip(_S2_L1C_IDS, _S2_L1C_ROLES) if b != "B10"), "sentinel2"),
    Sensor("landsat4_tm", "Landsat 4 TM", _TM_IDS, _TM_ROLES, "landsat",
           esun={"B1": 1983.0, "B2": 1795.0, "B3": 1539.0, "B4": 1028.0, "B5": 219.8, "B7": 83.49},
           thermal_k={"B6": (671.62, 1284.30)}),
    Sensor("landsat5_tm", "Landsat 5 TM", _TM_IDS, _TM_ROLES, "landsat",
           esun={"B1": 1983.0, "B2": 1796.0, "B3": 1536.0, "B4": 1031.0, "B5": 220.0, "B7": 83.44},
           thermal_k={"B6": (607.76, 1260.56)}),
    Sensor("landsat7_etm", "Landsat 7 ETM+", _TM_IDS + ("B8",), _TM_ROLES + ("pan",), "landsat",
           esun={"B1": 1970.0, "B2": 1842.0, "B3": 1547.0, "B4": 1044.0, "B5": 225.7, "B7": 82.06,
                 "B8": 1369.0},
           thermal_k={"B6": (666.09, 1282.71)}),
    Sensor("landsat_oli", "Landsat 8/9 OLI", ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11"),
           ("coastal", "blue", "green", "red", "nir", "swir1", "swir2", "pan", "cirrus", "thermal", None),
           "landsat"),
    Sensor("aerial_bgrn", "4-band aerial (BGRN)", ("B", "G", "R", "N"), ("blue", "green", "red", "nir"), "aerial"),
    Sensor("aerial_rgbn", "4-band aerial (RGBN)", ("R", "G", "B", "N"), ("red", "green", "blue", "nir"), "aerial"),
    Sensor("rgb", "RGB", ("R", "G", "B"), ("red", "green", "blue"), "rgb"),
)

#: Read-only registry of the sensors spex recognises, by key.
SENSORS: Mapping[str, Sensor] = MappingProxyType({s.key: s for s in _SENSOR_LIST})

#: Landsat TM/ETM+ 6-band stacks without the thermal band (bands 1,2,3,4,5,7).
TM_NO_THERMAL_IDS: tuple[str, ...] = ("B1", "B2", "B3", "B4", "B5", "B7")


def get_sensor(key: str) -> Sensor:
    """Return the sensor ``key`` (also accepts its human name, any case)."""
    wanted = key.strip().lower()
    for sensor in _SENSOR_LIST:
        if wanted in (sensor.key, sensor.name.lower()):
            return sensor
    names = ", ".join(s.key for s in _SENSOR_LIST)
    raise ValueError(f"unknown sensor {key!r}; expected one of: {names}")


def generic_sensor(roles: tuple[str | None, ...], name: str = "user-specified bands") -> Sensor:
    """A sensor made from explicit roles (user ``bands=`` override or file descriptions)."""
    ids = tuple(f"band{i + 1}" for i in range(len(roles)))
    return Sensor("generic", name, ids, roles, "generic")
