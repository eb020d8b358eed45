"""DN -> reflectance: how each band's stored numbers become 0..1 reflectance.

Every band gets a :class:`BandScaling` (a linear ``gain * DN + offset``, or Planck's
brightness temperature for Landsat thermal bands with an MTL). :func:`plan_scaling`
chooses them from the sensor, data type, sampled value ranges and an optional MTL:

* Sentinel-2: integers are reflectance x 10000 (ESA product definition). When the
  darkest valid pixels of *every* band sit at or above ~0.08 reflectance (and the NIR/SWIR
  floor stays below 0.2, i.e. water/shadow + 0.1 rather than a cloud deck) the data still
  carry the L2A/L1C ``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` of +1000 DN (0.1): real
  scenes always contain something darker than that in the NIR/SWIR (water, shadow), so
  0.1 is removed and the evidence noted.
* Landsat with an MTL: TOA reflectance, either from ``REFLECTANCE_MULT/ADD_BAND_n``
  divided by sin(sun elevation), or via radiance (``RADIANCE_MULT/ADD`` or LMAX/LMIN/
  QCALMAX/QCALMIN) and pi * L * d^2 / (ESUN * sin(sun elevation)) with d from the date.
* Float data already in 0..1: used as reflectance.
* Anything else (uint8 DN, 4-band aerial DN, Landsat without MTL): a two-point relative
  normalisation per band -- the darkest 0.5 % of valid pixels are mapped to the
  reflectance of a typical dark target (clear water / deep shadow) at that wavelength and
  the brightest 0.5 % to a typical bright land surface. Index *signs* then behave
  (water NDWI > 0, vegetation NDVI > 0) but values are relative; ``calibrated=False``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from spex.io.mtl import MtlFile, earth_sun_distance
from spex.io.sensors import Sensor

__all__ = ["BandStats", "BandScaling", "ScalingPlan", "plan_scaling", "band_stats",
           "S2_OFFSET_FLOOR", "DARK_REFLECTANCE", "BRIGHT_REFLECTANCE"]

#: Darkest-pixel reflectance (all bands) above which a Sentinel-2 offset of 0.1 is assumed.
S2_OFFSET_FLOOR: Final[float] = 0.08
#: ... provided the darkest NIR/SWIR pixels stay below this (water/shadow + 0.1), else the scene is just bright.
S2_OFFSET_CEILING: Final[float] = 0.2
#: Landsat Collection 2 Level-2 scale factors (USGS, the same for every C2 L2 scene, Landsat 4-9):
#: surface reflectance = DN * 2.75e-5 - 0.2; surface temperature (K) = DN * 0.00341802 + 149.0.
C2_SR_GAIN: Final[float] = 2.75e-5
C2_SR_OFFSET: Final[float] = -0.2
C2_ST_GAIN: Final[float] = 0.00341802
C2_ST_OFFSET: Final[float] = 149.0
#: Low / high percentiles used for relative normalisation and range checks.
LOW_PCT: Final[float] = 0.5
HIGH_PCT: Final[float] = 99.5

#: Typical reflectance of the darkest targets of a scene (clear/turbid water, deep shadow).
DARK_REFLECTANCE: Final[dict[str, float]] = {
    "coastal": 0.04, "blue": 0.03, "green": 0.03, "red": 0.02, "rededge1": 0.02, "rededge2": 0.012,
    "rededge3": 0.01, "nir": 0.01, "nir08": 0.01, "watervapour": 0.005, "cirrus": 0.0,
    "swir1": 0.005, "swir2": 0.003, "pan": 0.02, "thermal": 0.0,
}
#: Typical reflectance of the brightest 0.5 % of a land scene (bright soil, roofs, dense canopy NIR).
BRIGHT_REFLECTANCE: Final[dict[str, float]] = {
    "coastal": 0.20, "blue": 0.22, "green": 0.25, "red": 0.30, "rededge1": 0.32, "rededge2": 0.40,
    "rededge3": 0.45, "nir": 0.48, "nir08": 0.48, "watervapour": 0.35, "cirrus": 0.02,
    "swir1": 0.45, "swir2": 0.38, "pan": 0.30, "thermal": 1.0,
}


@dataclass(frozen=True)
class BandStats:
    """Value summary of one band over its valid sampled pixels (stored units)."""

    count: int
    low: float      # LOW_PCT percentile
    high: float     # HIGH_PCT percentile
    minimum: float
    maximum: float
    median: float

    @classmethod
    def empty(cls) -> BandStats:
        nan = float("nan")
        return cls(0, nan, nan, nan, nan, nan)


def band_stats(values: np.ndarray) -> BandStats:
    """Summarise the finite values of ``values`` (any shape)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return BandStats.empty()
    low, med, high = np.percentile(v, [LOW_PCT, 50.0, HIGH_PCT])
    return BandStats(int(v.size), float(low), float(high), float(v.min()), float(v.max()), float(med))


@dataclass(frozen=True)
class BandScaling:
    """How one band becomes reflectance: ``gain * DN + offset`` or a brightness temperature.

    ``kind`` is "linear" or "brightness_temperature" (then radiance = gain * DN + offset and
    the result is K2 / ln(K1 / radiance + 1) in kelvin).
    """

    gain: float = 1.0
    offset: float = 0.0
    kind: str = "linear"
    k1: float | None = None
    k2: float | None = None

    def apply(self, dn: np.ndarray) -> np.ndarray:
        """Return float32 physical values; NaN stays NaN."""
        x = dn.astype(np.float32, copy=False)
        out = x * np.float32(self.gain) + np.float32(self.offset)
        if self.kind == "brightness_temperature" and self.k1 is not None and self.k2 is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.float32(self.k2) / np.log(np.float32(self.k1) / out + np.float32(1.0))
            out[~np.isfinite(out)] = np.nan
        return out.astype(np.float32, copy=False)


@dataclass
class ScalingPlan:
    """Scaling of every band plus the user-facing sentence and notes."""

    bands: list[BandScaling]
    description: str
    calibrated: bool
    notes: list[str] = field(default_factory=list)
    relative: bool = False


def _relative_band(role: str | None, st: BandStats) -> tuple[BandScaling, str | None]:
    dark = DARK_REFLECTANCE.get(role or "", 0.02)
    bright = BRIGHT_REFLECTANCE.get(role or "", 0.30)
    if st.count == 0 or not math.isfinite(st.low) or st.high <= st.low:
        return BandScaling(0.0, dark), f"band {role or '?'} is constant; relative values set to {dark}"
    gain = (bright - dark) / (st.high - st.low)
    return BandScaling(gain, dark - st.low * gain), None


def _relative_plan(roles: Sequence[str | None], stats: Sequence[BandStats], why: str) -> ScalingPlan:
    bands, notes = [], []
    for role, st in zip(roles, stats):
        sc, note = _relative_band(role, st)
        bands.append(sc)
        if note:
            notes.append(note)
    notes.insert(0, f"{why} Each band was normalised on its own: its darkest 0.5% of valid pixels were "
                    "mapped to the reflectance of a typical dark target (water/shadow, 0.01-0.04) and its "
                    "brightest 0.5% to a typical bright land surface (0.2-0.5). Index values are relative, "
                    "not physical; thresholds adapt to the scene.")
    return ScalingPlan(bands, "relative per-band normalisation (dark/bright percentiles), not calibrated",
                       calibrated=False, notes=notes, relative=True)


def _float_is_reflectance(stats: Sequence[BandStats]) -> bool:
    highs = [s.high for s in stats if s.count]
    lows = [s.low for s in stats if s.count]
    return bool(highs) and max(highs) <= 1.5 and min(lows) >= -0.2


def _s2_plan(sensor: Sensor, roles: Sequence[str | None], dtypes: Sequence[str],
             stats: Sequence[BandStats]) -> ScalingPlan:
    notes: list[str] = []
    is_int = all(np.issubdtype(np.dtype(d), np.integer) for d in dtypes)
    if is_int or not _float_is_reflectance(stats):
        gain, desc = 1e-4, "Sentinel-2 DN x 0.0001 (ESA quantification value 10000)"
    else:
        gain, desc = 1.0, "Sentinel-2 float values used as reflectance (already 0..1)"
    floors = [(s.low * gain, r) for s, r in zip(stats, roles) if s.count and r not in ("thermal", None)]
    offset = 0.0
    ir_floors = [f for f, r in floors if r in ("nir", "nir08", "swir1", "swir2")]
    if floors:
        floor, band = min(floors)
        # offset = +0.1 on top of water/shadow (< ~0.1): the darkest NIR/SWIR pixels then sit in 0.08..0.2;
        # a bright scene without dark targets (cloud deck, desert) has NIR/SWIR floors above 0.2
        dark_ir = not ir_floors or min(ir_floors) <= S2_OFFSET_CEILING
        if floor >= S2_OFFSET_FLOOR and dark_ir:
            offset = -0.1
            desc += ", minus the +0.1 (1000 DN) processing-baseline offset"
            notes.append(
                f"Offset removed: the darkest 0.5% of valid pixels sit at {floor:.3f} or more in every band "
                f"(lowest: {band}). Real surfaces (water, shadow) reach below 0.05 in the NIR/SWIR, so the "
                "values still carry the Sentinel-2 BOA_ADD_OFFSET/RADIO_ADD_OFFSET of +0.1 (1000 DN); "
                "0.1 was subtracted from every band.")
        elif floor >= S2_OFFSET_FLOOR:
            notes.append(f"Every band's darkest 0.5% sit at {floor:.3f} or more, but the NIR/SWIR floor "
                         f"({min(ir_floors):.3f}) is too bright for water/shadow plus the 0.1 Sentinel-2 offset; "
                         "taken as a bright scene (cloud, desert) and left unchanged.")
        else:
            notes.append(f"No Sentinel-2 +0.1 offset detected (darkest 0.5% reach {floor:.3f} in {band}).")
    return ScalingPlan([BandScaling(gain, offset) for _ in roles], desc, calibrated=True, notes=notes)


def _mtl_band_scaling(mtl: MtlFile, sensor: Sensor, band_id: str, role: str | None,
                      surface: bool) -> tuple[BandScaling | None, str]:
    """Scaling of one Landsat band from the MTL, or (None, reason)."""
    n = band_id[1:]
    sun = mtl.sun_elevation
    if surface:
        if role == "thermal":  # Level-2 surface temperature (ST_B6 / ST_B10) is linear kelvin
            m = mtl.number(f"TEMPERATURE_MULT_BAND_ST_B{n}", "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS")
            a = mtl.number(f"TEMPERATURE_ADD_BAND_ST_B{n}", "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS")
            m, a = (C2_ST_GAIN, C2_ST_OFFSET) if m is None or a is None else (m, a)
            return BandScaling(m, a), "st"
        m = mtl.number(f"REFLECTANCE_MULT_BAND_{n}", "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS")
        a = mtl.number(f"REFLECTANCE_ADD_BAND_{n}", "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS")
        if m is not None and a is not None:
            return BandScaling(m, a), "surface"
        return BandScaling(C2_SR_GAIN, C2_SR_OFFSET), "surface"
    if role == "thermal":
        ml = mtl.number(f"RADIANCE_MULT_BAND_{n}") or mtl.number(f"RADIANCE_MULT_BAND_{n}_VCID_1")
        al = mtl.number(f"RADIANCE_ADD_BAND_{n}") or mtl.number(f"RADIANCE_ADD_BAND_{n}_VCID_1")
        if ml is None or al is None:
            ml, al = _radiance_from_minmax(mtl, n)
        k1 = mtl.number(f"K1_CONSTANT_BAND_{n}")
        k2 = mtl.number(f"K2_CONSTANT_BAND_{n}")
        if k1 is None or k2 is None:
            k1, k2 = sensor.thermal_k.get(band_id, (None, None))
        if ml is None or al is None or k1 is None or k2 is None:
            return None, f"no thermal constants for {band_id}"
        return BandScaling(ml, al, "brightness_temperature", k1, k2), "bt"
    if sun is None or sun <= 0:
        return None, "no usable SUN_ELEVATION"
    sin_e = math.sin(math.radians(sun))
    mr = mtl.number(f"REFLECTANCE_MULT_BAND_{n}", "RADIOMETRIC_RESCALING")
    ar = mtl.number(f"REFLECTANCE_ADD_BAND_{n}", "RADIOMETRIC_RESCALING")
    if mr is None:
        mr = mtl.number(f"REFLECTANCE_MULT_BAND_{n}", "LEVEL1_RADIOMETRIC_RESCALING")
        ar = mtl.number(f"REFLECTANCE_ADD_BAND_{n}", "LEVEL1_RADIOMETRIC_RESCALING")
    if mr is not None and ar is not None:
        return BandScaling(mr / sin_e, ar / sin_e), "reflectance"
    ml = mtl.number(f"RADIANCE_MULT_BAND_{n}")
    al = mtl.number(f"RADIANCE_ADD_BAND_{n}")
    if ml is None or al is None:
        ml, al = _radiance_from_minmax(mtl, n)
    esun = sensor.esun.get(band_id)
    date = mtl.acquisition_date
    d = mtl.number("EARTH_SUN_DISTANCE") or (earth_sun_distance(date) if date else None)
    if ml is None or al is None or esun is None or d is None:
        return None, f"no radiance rescaling/ESUN/date for {band_id}"
    k = math.pi * d * d / (esun * sin_e)
    return BandScaling(ml * k, al * k), "radiance"


def _radiance_from_minmax(mtl: MtlFile, n: str) -> tuple[float | None, float | None]:
    """Old MTL: gain/bias from LMAX/LMIN and QCALMAX/QCALMIN."""
    lmax = mtl.number(f"RADIANCE_MAXIMUM_BAND_{n}") or mtl.number(f"LMAX_BAND{n}")
    lmin = mtl.number(f"RADIANCE_MINIMUM_BAND_{n}")
    if lmin is None:
        lmin = mtl.number(f"LMIN_BAND{n}")
    qmax = mtl.number(f"QUANTIZE_CAL_MAX_BAND_{n}") or mtl.number(f"QCALMAX_BAND{n}")
    qmin = mtl.number(f"QUANTIZE_CAL_MIN_BAND_{n}")
    if qmin is None:
        qmin = mtl.number(f"QCALMIN_BAND{n}")
    if None in (lmax, lmin, qmax, qmin) or qmax == qmin:  # type: ignore[comparison-overlap]
        return None, None
    gain = (lmax - lmin) / (qmax - qmin)  # type: ignore[operator]
    return gain, lmin - gain * qmin  # type: ignore[operator]


def _landsat_c2_l2_plan(roles: Sequence[str | None]) -> ScalingPlan:
    """Collection 2 Level-2 files without an MTL: the scale factors are fixed for the whole collection."""
    bands = [BandScaling(C2_ST_GAIN, C2_ST_OFFSET) if r == "thermal" else BandScaling(C2_SR_GAIN, C2_SR_OFFSET)
             for r in roles]
    notes = [f"Landsat Collection 2 Level-2 product (file names *_SR_B* / *_ST_B*): surface reflectance = "
             f"DN x {C2_SR_GAIN:g} {C2_SR_OFFSET:+g}, surface temperature = DN x {C2_ST_GAIN:g} + {C2_ST_OFFSET:g} K "
             "(the collection's fixed factors; no MTL needed)."]
    return ScalingPlan(bands, "Landsat Collection 2 surface reflectance (fixed Level-2 scale factors)",
                       calibrated=True, notes=notes)


def _landsat_mtl_plan(sensor: Sensor, band_ids: Sequence[str], roles: Sequence[str | None],
                      stats: Sequence[BandStats], mtl: MtlFile, surface: bool) -> ScalingPlan:
    bands: list[BandScaling] = []
    kinds: set[str] = set()
    fallback: list[int] = []
    reasons: list[str] = []
    for i, (bid, role) in enumerate(zip(band_ids, roles)):
        sc, kind = _mtl_band_scaling(mtl, sensor, bid, role, surface)
        if sc is None:
            fallback.append(i)
            reasons.append(kind)
            bands.append(BandScaling())
        else:
            kinds.add(kind)
            bands.append(sc)
    notes: list[str] = []
    name = mtl.path.name if mtl.path else "MTL"
    date = mtl.acquisition_date
    if surface:
        desc = f"Landsat surface reflectance from {name} (REFLECTANCE_MULT/ADD of the Level-2 product)"
    elif "radiance" in kinds:
        d = mtl.number("EARTH_SUN_DISTANCE") or (earth_sun_distance(date) if date else float("nan"))
        desc = (f"Landsat TOA reflectance from {name}: DN -> radiance (gain/bias) -> "
                f"pi*L*d^2/(ESUN*sin(sun elevation)), sun elevation {mtl.sun_elevation:.2f} deg, "
                f"Earth-Sun distance {d:.4f} AU ({date})")
    else:
        desc = (f"Landsat TOA reflectance from {name}: REFLECTANCE_MULT/ADD / sin(sun elevation "
                f"{mtl.sun_elevation:.2f} deg)")
    if "bt" in kinds:
        notes.append("The thermal band holds brightness temperature in kelvin (not reflectance).")
    if "st" in kinds:
        notes.append("The thermal band holds Level-2 surface temperature in kelvin (ST_B*).")
    if fallback:
        rel = _relative_plan([roles[i] for i in fallback], [stats[i] for i in fallback], "")
        for j, i in enumerate(fallback):
            bands[i] = rel.bands[j]
        notes.append("Bands " + ", ".join(band_ids[i] for i in fallback) + " could not be calibrated from the "
                     f"MTL ({'; '.join(sorted(set(reasons)))}); they were normalised relatively.")
    return ScalingPlan(bands, desc, calibrated=not any(roles[i] != "thermal" for i in fallback), notes=notes)


def plan_scaling(sensor: Sensor, band_ids: Sequence[str], roles: Sequence[str | None],
                 dtypes: Sequence[str], stats: Sequence[BandStats], mtl: MtlFile | None = None,
                 surface_product: bool = False) -> ScalingPlan:
    """Choose the scaling of every band (see module docstring for the rules).

    Args:
        sensor: identified sensor.
        band_ids: the sensor's band id per band (e.g. "B4"), used for MTL keys.
        roles: canonical name per band (None = skipped band; scaled anyway, never read).
        dtypes: stored data type per band.
        stats: sampled value summary per band (stored units).
        mtl: parsed Landsat MTL, if any.
        surface_product: the files are Landsat Level-2 surface reflectance (``*_SR_B*``).
    """
    if sensor.family == "landsat" and mtl is not None:
        return _landsat_mtl_plan(sensor, band_ids, roles, stats, mtl, surface_product)
    if sensor.family == "landsat" and surface_product:
        return _landsat_c2_l2_plan(roles)
    if sensor.family == "sentinel2":
        return _s2_plan(sensor, roles, dtypes, stats)
    is_float = all(np.issubdtype(np.dtype(d), np.floating) for d in dtypes)
    if is_float and _float_is_reflectance(stats):
        return ScalingPlan([BandScaling() for _ in roles], "float values used as reflectance (already 0..1)",
                           calibrated=True,
                           notes=["Values are floating point within 0..1.5, so they were taken as reflectance."])
    if sensor.family == "landsat":
        why = ("Landsat digital numbers without an MTL file (give --mtl / mtl= for TOA reflectance).")
    elif is_float:
        why = "Floating-point values outside 0..1.5 with no known scale."
    else:
        why = f"{', '.join(sorted(set(dtypes)))} digital numbers with no known calibration."
    return _relative_plan(roles, stats, why)
