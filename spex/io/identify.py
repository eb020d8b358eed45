"""Band identification: which canonical band each band of the input files holds.

Order of evidence (first that applies wins, every decision is written to ``notes``):

1. the user's ``bands=`` list (canonical names/aliases, "skip"/"-" to ignore a band);
2. an explicit ``sensor=``;
3. band descriptions (``B02``, ``blue``, ``B4_dn``...), file names (``..._B02-B03-B04-B08.tif``,
   Landsat ``..._B4.TIF``) and an MTL's spacecraft;
4. band count, data type and value ranges of common sensors (13 = S2 L1C, 12 = S2 L2A,
   7 = Landsat TM/ETM+ with thermal at 6 or OLI, 6 = TM/ETM+ without thermal, 4 = BGRN/RGBN
   decided from spectral evidence, 3 = RGB).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spex.bands import CANONICAL_BANDS, canonical_band
from spex.errors import BandError, SpexWarning
from spex.io.mtl import MtlFile
from spex.io.scaling import BandStats
from spex.io.sensors import SENSORS, TM_NO_THERMAL_IDS, Sensor, generic_sensor, get_sensor

__all__ = ["FileMeta", "Identification", "identify_bands", "parse_band_list", "SKIP"]

SKIP = ("skip", "-", "none", "ignore")
_S2_ID = re.compile(r"^B(0[1-9]|1[0-2]|8A)$", re.IGNORECASE)
_NUM_ID = re.compile(r"^(?:SR_|ST_|TOA_)?B(\d{1,2}|8A)(?:[_\-\s.].*)?$", re.IGNORECASE)
_NAME_IDS = re.compile(r"(B(?:8A|\d{1,2})(?:-B(?:8A|\d{1,2}))+)(?![0-9A-Za-z])", re.IGNORECASE)
#: one band per file: Landsat "..._B4.TIF" / "_SR_B4.TIF", Sentinel-2 SAFE "T33UUP_..._B8A.jp2" and L2A
#: "T33UUP_..._B04_10m.jp2" (the resolution suffix of the L2A IMG_DATA folders)
_BAND_FILE = re.compile(r"^(?:.*[_\-.])?(?:SR_|ST_|TOA_)?B(8A|\d{1,2})(?:_[1-6]0m)?\.(?:tiff?|jp2)$", re.IGNORECASE)
_LANDSAT_PREFIX = {"lt4": "landsat4_tm", "lt04": "landsat4_tm", "lt5": "landsat5_tm", "lt05": "landsat5_tm",
                   "le7": "landsat7_etm", "le07": "landsat7_etm", "lc8": "landsat_oli", "lc08": "landsat_oli",
                   "lc9": "landsat_oli", "lc09": "landsat_oli", "lo8": "landsat_oli", "lo08": "landsat_oli",
                   "lo9": "landsat_oli", "lo09": "landsat_oli"}


@dataclass(frozen=True)
class FileMeta:
    """What identification may look at for one file (no open dataset needed)."""

    path: Path
    count: int
    dtype: str
    descriptions: tuple[str | None, ...]
    tags: dict[str, str]
    stats: tuple[BandStats, ...]
    sample: np.ndarray = dataclasses.field(repr=False)   # float32 (count, h, w), NaN = invalid


@dataclass(frozen=True)
class Identification:
    """Result: one band id and one role (canonical name or None = skipped) per band, over all files."""

    sensor: Sensor
    band_ids: tuple[str, ...]
    roles: tuple[str | None, ...]
    notes: tuple[str, ...]


def parse_band_list(names: Sequence[str], total: int) -> tuple[str | None, ...]:
    """Validate a user band list against ``total`` bands; return canonical roles (None = skip)."""
    if isinstance(names, str):
        names = [n for n in re.split(r"[,\s]+", names) if n]
    if len(names) != total:
        raise BandError(f"{len(names)} band names were given ({', '.join(names)}) but the scene has {total} "
                        f"bands; give one name per band in file order, or 'skip' for bands to ignore")
    roles: list[str | None] = []
    for name in names:
        if name.strip().lower() in SKIP:
            roles.append(None)
            continue
        role = canonical_band(name)
        if role is None:
            raise BandError(f"unknown band name {name!r}; use one of: {', '.join(CANONICAL_BANDS)} "
                            "(or an alias such as B04, nir, swir16), or 'skip'")
        roles.append(role)
    _check_duplicates(roles, "the given band list")
    if not any(roles):
        raise BandError("every band was skipped; keep at least one band")
    return tuple(roles)


def _check_duplicates(roles: Sequence[str | None], where: str) -> None:
    seen = [r for r in roles if r is not None]
    dup = sorted({r for r in seen if seen.count(r) > 1})
    if dup:
        raise BandError(f"{where} names {', '.join(dup)} more than once; each band may appear once "
                        "(use 'skip' for extra bands)")


def _looks_thermal(st: BandStats, others: Sequence[BandStats]) -> bool:
    """Thermal DN have a tiny relative spread (a few K over a scene) compared with reflective bands."""
    if not st.count or not st.median:
        return False
    spread = (st.high - st.low) / abs(st.median)
    other = [(o.high - o.low) / abs(o.median) for o in others if o.count and o.median]
    return bool(other) and spread < 0.25 and spread < 0.5 * float(np.median(other))


def _ids_from_descriptions(meta: FileMeta) -> tuple[list[str] | None, list[str] | None]:
    """(band ids like "B02"/"B4", or canonical roles) from band descriptions, when all bands have one."""
    desc = [d.strip() if d else "" for d in meta.descriptions]
    if not desc or not all(desc):
        return None, None
    ids = []
    for d in desc:
        m = _NUM_ID.match(d)
        if not m:
            break
        ids.append("B" + m.group(1).upper())
    else:
        return ids, None
    roles = [canonical_band(d) for d in desc]
    if all(roles):
        return None, roles  # type: ignore[return-value]
    return None, None


def _ids_from_filename(meta: FileMeta) -> list[str] | None:
    m = _BAND_FILE.match(meta.path.name)
    if m and meta.count == 1:    # one band per file: Landsat "..._B4.TIF", Sentinel-2 "..._B8A.jp2"
        return ["B" + m.group(1).upper()]
    found = _NAME_IDS.findall(meta.path.stem)
    for group in found:
        ids = [p.upper() for p in group.split("-")]
        if len(ids) == meta.count:
            return ids
    return None


def _is_s2_ids(ids: Sequence[str], files: Sequence[FileMeta]) -> bool:
    """Sentinel-2 band ids rather than Landsat band numbers?

    Zero padding (B02), B8A, 12+ bands, a Sentinel-2 hint in file names/tags, or B8 with B2-B4 but no
    B5 (the S2 10 m set; on Landsat B8 is the 15 m panchromatic band) say Sentinel-2.
    """
    # B10/B11 exist on Landsat 8/9 too (thermal), so only zero padding, B8A or B12 are Sentinel-2-only ids
    if any(re.fullmatch(r"B0\d|B8A|B12", i) for i in ids) or len(ids) >= 12:
        return True
    text = " ".join([f.path.name for f in files] + [" ".join(f.tags.values()) for f in files]).lower()
    if re.search(r"sentinel|\bs2|\bmsi\b", text):
        return True
    return "B8" in ids and {"B2", "B3", "B4"} <= set(ids) and "B5" not in ids


def _s2_id(i: str) -> str:
    return "B8A" if i == "B8A" else f"B{int(i[1:]):02d}"


def _landsat_sensor_from_hints(paths: Sequence[Path], mtl: MtlFile | None) -> Sensor | None:
    if mtl is not None and mtl.spacecraft:
        sc = mtl.spacecraft.upper()
        if sc.endswith("_4"):
            return SENSORS["landsat4_tm"]
        if sc.endswith("_5"):
            return SENSORS["landsat5_tm"]
        if sc.endswith("_7"):
            return SENSORS["landsat7_etm"]
        if sc.endswith("_8") or sc.endswith("_9"):
            return SENSORS["landsat_oli"]
    for p in paths:
        m = re.match(r"^(L[CEOT]0?[4-9])", p.name, re.IGNORECASE)
        if m and m.group(1).lower() in _LANDSAT_PREFIX:
            return SENSORS[_LANDSAT_PREFIX[m.group(1).lower()]]
    return None


def _s2_sensor(ids: Sequence[str], files: Sequence[FileMeta]) -> tuple[Sensor, str]:
    text = " ".join([f.path.name for f in files] + [" ".join(f.tags.values()) for f in files]).lower()
    if "l2a" in text or "boa" in text:
        return SENSORS["s2_l2a"], "the file name/tags say L2A"
    if "l1c" in text or "toa" in text:
        return SENSORS["s2_l1c"], "the file name/tags say L1C"
    if "B10" in ids:
        return SENSORS["s2_l1c"], "band B10 (cirrus) is present, which only L1C carries"
    if len(ids) == 12:
        return SENSORS["s2_l2a"], "12 bands without B10 is the L2A band set"
    return dataclasses.replace(SENSORS["s2_l1c"], name="Sentinel-2"), "processing level unknown"


def _four_band_order(meta: FileMeta) -> tuple[Sensor, str]:
    """Decide BGRN vs RGBN from two gain-independent spectral tests (see notes text)."""
    s = meta.sample.reshape(meta.count, -1)
    ok = np.isfinite(s).all(axis=0) & (s > 0).all(axis=0)
    b1, g, b3, n = (s[i, ok].astype(np.float64) for i in range(4))
    if b1.size < 100:
        return SENSORS["aerial_bgrn"], ("too few valid pixels to test the band order; assumed blue, green, red, "
                                        "NIR (the usual ascending-wavelength order)")
    # 1) haze: atmospheric path radiance lifts the dark floor of blue more than red (relative to the median)
    floor1 = np.percentile(b1, 1) / max(np.median(b1), 1e-9)
    floor3 = np.percentile(b3, 1) / max(np.median(b3), 1e-9)
    haze_says_b1_blue = floor1 > floor3
    # 2) vegetation vs bright bare surface: chlorophyll absorbs red far more than soil does, so the
    #    red/green ratio drops more from soil to vegetation than blue/green does (gains cancel in ratios)
    #    vegetation = top 20% NIR/green; bare bright surface = NIR-bright (not water) with the lowest NIR/green
    ng = n / np.maximum(g, 1e-9)
    veg = ng >= np.percentile(ng, 80)
    bright = n >= np.percentile(n, 50)
    soil = bright & (ng <= np.percentile(ng[bright], 25))
    r1 = np.median(b1[veg] / g[veg]) / max(np.median(b1[soil] / g[soil]), 1e-9)
    r3 = np.median(b3[veg] / g[veg]) / max(np.median(b3[soil] / g[soil]), 1e-9)
    veg_says_b1_blue = r3 < r1
    evidence = (f"dark-floor/median band 1 {floor1:.2f} vs band 3 {floor3:.2f} (haze lifts blue); "
                f"vegetation/soil change of band/green ratio band 1 {r1:.2f} vs band 3 {r3:.2f} "
                "(red drops most over vegetation)")
    if haze_says_b1_blue and veg_says_b1_blue:
        return SENSORS["aerial_bgrn"], f"4 bands read as blue, green, red, NIR: both tests agree ({evidence})"
    if not haze_says_b1_blue and not veg_says_b1_blue:
        return SENSORS["aerial_rgbn"], f"4 bands read as red, green, blue, NIR: both tests agree ({evidence})"
    return SENSORS["aerial_bgrn"], (f"4-band order uncertain, assumed blue, green, red, NIR (the usual order); the "
                                    f"tests disagree ({evidence}). Override with --bands if wrong")


def _by_count(meta: FileMeta, mtl: MtlFile | None) -> tuple[Sensor, tuple[str, ...], str]:
    """Sensor and band ids of a single file from its band count, dtype and value ranges."""
    c, dtype = meta.count, meta.dtype
    hint = _landsat_sensor_from_hints([meta.path], mtl)
    if c == 13:
        return SENSORS["s2_l1c"], SENSORS["s2_l1c"].all_bands, "13 bands: taken as Sentinel-2 L1C (B01..B12 with B8A)"
    if c == 12:
        return SENSORS["s2_l2a"], SENSORS["s2_l2a"].all_bands, "12 bands: taken as Sentinel-2 L2A (no B10)"
    if c == 7:
        st = meta.stats
        if hint is not None and hint.key != "landsat_oli" or _looks_thermal(st[5], st[:5] + st[6:]):
            sensor = hint if hint is not None and hint.key != "landsat_oli" else dataclasses.replace(
                SENSORS["landsat5_tm"], name="Landsat 5/7 TM/ETM+")
            return sensor, _TM_IDS, (f"7 bands with band 6 behaving like a thermal band (narrow DN spread): "
                                     f"taken as {sensor.name} bands 1-7 (6 = thermal)")
        return SENSORS["landsat_oli"], SENSORS["landsat_oli"].all_bands[:7], (
            "7 bands without a thermal-like band 6: taken as Landsat 8/9 OLI bands 1-7 (coastal..SWIR2)")
    if 8 <= c <= 11 and np.dtype(dtype).itemsize >= 2:
        return SENSORS["landsat_oli"], SENSORS["landsat_oli"].all_bands[:c], (
            f"{c} bands of {dtype}: taken as Landsat 8/9 OLI bands 1-{c}")
    if c == 6:
        sensor = hint if hint is not None and hint.key != "landsat_oli" else dataclasses.replace(
            SENSORS["landsat7_etm"], name="Landsat 5/7 TM/ETM+")
        return sensor, TM_NO_THERMAL_IDS, (f"6 bands: taken as {sensor.name} bands 1, 2, 3, 4, 5, 7 "
                                           "(blue, green, red, NIR, SWIR1, SWIR2; thermal band 6 left out)")
    if c == 4:
        sensor, note = _four_band_order(meta)
        return sensor, sensor.all_bands, note
    if c == 3:
        warnings.warn("3-band image taken as RGB: spectral indices need NIR/SWIR bands, so only colour-based "
                      "extraction is possible", SpexWarning, stacklevel=4)
        return SENSORS["rgb"], SENSORS["rgb"].all_bands, (
            "3 bands taken as red, green, blue; spectral indices (NDVI, NDWI...) need NIR/SWIR and are unavailable")
    if c == 1:
        raise BandError(f"{meta.path.name} has a single band; spex needs a multispectral scene (at least red, "
                        "green, blue; NIR/SWIR for spectral indices). Give all band files of the scene together")
    raise BandError(f"cannot tell which bands the {c} bands of {meta.path.name} ({dtype}) are; give them "
                    f"with --bands / bands=, e.g. --bands blue,green,red,nir,...")


_TM_IDS = SENSORS["landsat5_tm"].all_bands


def _landsat_from_numbers(ids: Sequence[str], files: Sequence[FileMeta]) -> Sensor:
    """Landsat generation from band numbers alone (no MTL, no product id).

    A thermal-looking B6 means TM/ETM+ (on OLI, B6 is SWIR1); otherwise 8-bit data mean TM/ETM+
    (their Level-1 products are 8-bit, OLI's 16-bit).
    """
    stats = [s for f in files for s in f.stats]
    if "B6" in ids:
        k = list(ids).index("B6")
        if _looks_thermal(stats[k], stats[:k] + stats[k + 1:]):
            return dataclasses.replace(SENSORS["landsat5_tm"], name="Landsat 5/7 TM/ETM+")
        return SENSORS["landsat_oli"]
    if all(np.dtype(f.dtype).itemsize == 1 for f in files):
        return dataclasses.replace(SENSORS["landsat7_etm"], name="Landsat 5/7 TM/ETM+")
    return SENSORS["landsat_oli"]


def _roles_for(sensor: Sensor, ids: Sequence[str]) -> tuple[str | None, ...]:
    out: list[str | None] = []
    for i in ids:
        if i in sensor.all_bands:
            out.append(sensor.role(i))
        else:
            raise BandError(f"band {i} does not exist for {sensor.name} (bands: {', '.join(sensor.all_bands)})")
    return tuple(out)


def _auto(files: Sequence[FileMeta], mtl: MtlFile | None) -> Identification:
    total = sum(f.count for f in files)
    notes: list[str] = []
    per_file_ids: list[list[str] | None] = []
    per_file_roles: list[list[str] | None] = []
    for f in files:
        ids, roles = _ids_from_descriptions(f)
        src = "band descriptions"
        if ids is None and roles is None:
            ids, src = _ids_from_filename(f), "file name"
        per_file_ids.append(ids)
        per_file_roles.append(roles)
        if ids is not None:
            notes.append(f"{f.path.name}: bands {', '.join(ids)} read from the {src}")
        elif roles is not None:
            notes.append(f"{f.path.name}: bands {', '.join(roles)} read from the band descriptions")

    if all(r is not None for r in per_file_roles):
        roles_all = tuple(r for rs in per_file_roles for r in rs)  # type: ignore[union-attr]
        _check_duplicates(roles_all, "the band descriptions")
        for s in SENSORS.values():
            if s.roles == roles_all:
                return Identification(s, s.all_bands, roles_all, tuple(notes))
        sensor = generic_sensor(roles_all, "bands named in the file")
        return Identification(sensor, sensor.all_bands, roles_all, tuple(notes))

    if all(i is not None for i in per_file_ids):
        ids_all = [i for ids in per_file_ids for i in ids]  # type: ignore[union-attr]
        if _is_s2_ids(ids_all, files) and not _landsat_sensor_from_hints([f.path for f in files], mtl):
            ids_all = [_s2_id(i) for i in ids_all]
            sensor, why = _s2_sensor(ids_all, files)
            notes.append(f"Sensor {sensor.name}: {why}")
        else:
            sensor = _landsat_sensor_from_hints([f.path for f in files], mtl)
            if sensor is None:
                sensor = _landsat_from_numbers(ids_all, files)
                notes.append(f"Band numbers read as {sensor.name} (no MTL/product id to confirm the satellite)")
            else:
                notes.append(f"Sensor {sensor.name} from the MTL/product id")
        roles_all = _roles_for(sensor, ids_all)
        _check_duplicates(roles_all, "the band ids")
        return Identification(sensor, tuple(ids_all), roles_all, tuple(notes))

    if len(files) > 1:
        unknown = [f.path.name for f, i, r in zip(files, per_file_ids, per_file_roles) if i is None and r is None]
        if not unknown:
            raise BandError("the files mix band names (blue, nir...) and sensor band ids (B02, B4...), so their "
                            "sensor is unclear; give the bands with --bands / bands= in file order")
        raise BandError(f"cannot tell which bands {', '.join(unknown)} hold (no band descriptions or band ids in "
                        "the file names); give them with --bands / bands= in file order")
    sensor, ids, note = _by_count(files[0], mtl)
    notes.append(note)
    return Identification(sensor, tuple(ids), _roles_for(sensor, ids), tuple(notes))


def _ids_by_name(files: Sequence[FileMeta], sens: Sensor) -> tuple[str, ...] | None:
    """Band ids from descriptions/file names when every band has one valid for ``sens`` (ids beat position)."""
    ids: list[str] = []
    for f in files:
        found, _ = _ids_from_descriptions(f)
        found = found if found is not None else _ids_from_filename(f)
        if found is None:
            return None
        ids.extend(found)
    if sens.key.startswith("s2"):
        ids = [_s2_id(i) for i in ids]
    if len(ids) != len(set(ids)) or not all(i in sens.all_bands for i in ids):
        return None
    return tuple(ids)


def identify_bands(files: Sequence[FileMeta], *, bands: Sequence[str] | str | None = None,
                   sensor: str | None = None, mtl: MtlFile | None = None) -> Identification:
    """Identify every band of ``files`` (see module docstring); raise :class:`BandError` when impossible."""
    total = sum(f.count for f in files)
    if bands is not None:
        roles = parse_band_list(bands, total)
        auto: Identification | None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SpexWarning)
                auto = identify_bands(files, sensor=sensor, mtl=mtl)
        except BandError:
            auto = None
        note = "Band roles given by the user: " + ", ".join(r or "skip" for r in roles)
        if auto is not None and len(auto.band_ids) == total:
            sens = auto.sensor if auto.sensor.family != "rgb" else generic_sensor(roles)
            return Identification(sens, auto.band_ids, roles, (note,) + tuple(
                n for n in auto.notes if n.startswith("Sensor")))
        gen = generic_sensor(roles)
        return Identification(gen, gen.all_bands, roles, (note,))
    if sensor is not None:
        try:
            sens = get_sensor(sensor)
        except ValueError as exc:
            raise BandError(str(exc)) from None
        named = _ids_by_name(files, sens)
        if named is not None:
            ids = named
        elif total == len(sens.all_bands):
            ids = sens.all_bands
        elif sens.key.startswith("landsat") and sens.key != "landsat_oli" and total == 6:
            ids = TM_NO_THERMAL_IDS
        elif sens.key == "landsat_oli" and 7 <= total <= 11:
            ids = sens.all_bands[:total]
        else:
            raise BandError(f"{sens.name} has {len(sens.all_bands)} bands but the scene has {total}; "
                            "give the bands with --bands instead")
        return Identification(sens, tuple(ids), _roles_for(sens, ids), (f"Sensor {sens.name} given by the user",))
    return _auto(files, mtl)
