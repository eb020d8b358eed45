"""Spectral indices over canonical band names (pure float32 numpy).

Every index is a thin binding of canonical band names (:mod:`spex.bands`) to one
formula. Formulas, long names and references follow the Awesome Spectral Indices
catalogue as shipped with ``spyndex`` 0.12.0 (Montero et al. 2023,
https://doi.org/10.1038/s41597-023-02096-0); ``tests/test_spectral_indices.py``
checks our values against ``spyndex.computeIndex``. The one deliberate departure is
AWEInsh, where spyndex prints ``+2.75*S2`` but Feyisa et al. (2014) define
``- (0.25*nir + 2.75*swir2)``; we follow the paper.

Conventions: inputs are reflectance (0..1, NaN = invalid); outputs are float32 and
NaN wherever an input is NaN or a denominator is within ``_EPS`` of zero. Normalised
differences are clipped to [-1, 1]: slightly negative surface reflectance (atmospheric
over-correction over dark water) would otherwise produce values such as 9.0 that no
threshold can interpret.

The broad NIR band (``nir``) is preferred; when a scene only has the narrow one
(``nir08``, e.g. a Sentinel-2 stack without B08) it stands in for ``nir``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from spex.errors import BandError

__all__ = [
    "INDICES",
    "SpectralIndex",
    "available_indices",
    "band_substitutes",
    "compute_index",
    "get_band",
    "normalized_difference",
    "resolve_index",
]

#: Denominators with magnitude below this (reflectance units) give NaN, not +-inf.
_EPS: Final[float] = 1e-6

#: Canonical bands that may stand in for a missing one, in order of preference.
_SUBSTITUTES: Final[dict[str, tuple[str, ...]]] = {"nir": ("nir", "nir08")}

BandMap = Mapping[str, np.ndarray]


def band_substitutes(name: str) -> tuple[str, ...]:
    """Canonical bands accepted for ``name`` (itself first)."""
    return _SUBSTITUTES.get(name, (name,))


def get_band(bands: BandMap, name: str) -> np.ndarray:
    """Return band ``name`` (or its substitute) from ``bands`` as float32.

    Raises:
        BandError: when neither the band nor a substitute is present.
    """
    for candidate in band_substitutes(name):
        if candidate in bands:
            return np.asarray(bands[candidate], dtype=np.float32)
    raise BandError(f"band {name!r} is required but missing; available bands: {', '.join(sorted(bands)) or 'none'}")


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a - b) / (a + b)`` as float32, clipped to [-1, 1].

    NaN where ``a`` or ``b`` is NaN or where ``|a + b| < _EPS`` (both bands dark),
    because the ratio is then meaningless rather than extreme.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    out = _ratio(a - b, a + b)
    np.clip(out, -1.0, 1.0, out=out)
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """float32 ``num / den`` with NaN where ``|den| < _EPS`` or an input is NaN."""
    num = np.asarray(num, dtype=np.float32)
    den = np.asarray(den, dtype=np.float32)
    out = np.empty(np.broadcast_shapes(num.shape, den.shape), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(num, den, out=out)
    out[~(np.abs(den) >= _EPS)] = np.nan  # also catches NaN denominators
    return out


@dataclass(frozen=True)
class SpectralIndex:
    """One named spectral index bound to canonical band names.

    Attributes:
        name: short name, e.g. "NDVI".
        long_name: full name.
        formula: formula over canonical band names.
        bands: canonical bands the formula needs (``nir`` also accepts ``nir08``).
        reference: citation (DOI or URL) of the original definition.
        typical_range: physically plausible output range (display scales, threshold bounds).
        function: evaluates the formula on a band mapping (keyword-only; call the index instead).
    """

    name: str
    long_name: str
    formula: str
    bands: tuple[str, ...]
    reference: str
    typical_range: tuple[float, float] = (-1.0, 1.0)
    function: Callable[[BandMap], np.ndarray] = field(kw_only=True, repr=False, compare=False)

    def __call__(self, bands: BandMap) -> np.ndarray:
        """Evaluate on ``bands`` (canonical name -> array); float32, NaN-safe.

        Raises:
            BandError: when a required band is missing.
        """
        missing = [b for b in self.bands if not any(s in bands for s in band_substitutes(b))]
        if missing:
            raise BandError(
                f"{self.name} needs bands {', '.join(self.bands)}; missing: {', '.join(missing)} "
                f"(available: {', '.join(sorted(bands)) or 'none'})"
            )
        return np.asarray(self.function(bands), dtype=np.float32)

    def available(self, band_names: Iterable[str]) -> bool:
        """True when every band (or a substitute) is in ``band_names``."""
        names = set(band_names)
        return all(any(s in names for s in band_substitutes(b)) for b in self.bands)


def _nd(a: str, b: str) -> Callable[[BandMap], np.ndarray]:
    return lambda bands: normalized_difference(get_band(bands, a), get_band(bands, b))


def _evi(bands: BandMap) -> np.ndarray:
    nir, red, blue = get_band(bands, "nir"), get_band(bands, "red"), get_band(bands, "blue")
    return _ratio(np.float32(2.5) * (nir - red), nir + np.float32(6.0) * red - np.float32(7.5) * blue + np.float32(1.0))


def _savi(bands: BandMap) -> np.ndarray:
    nir, red = get_band(bands, "nir"), get_band(bands, "red")
    return _ratio(np.float32(1.5) * (nir - red), nir + red + np.float32(0.5))


def _bsi(bands: BandMap) -> np.ndarray:
    swir1, red, nir, blue = (get_band(bands, n) for n in ("swir1", "red", "nir", "blue"))
    return normalized_difference(swir1 + red, nir + blue)


def _awei_sh(bands: BandMap) -> np.ndarray:
    blue, green, nir, swir1, swir2 = (get_band(bands, n) for n in ("blue", "green", "nir", "swir1", "swir2"))
    return (blue + np.float32(2.5) * green - np.float32(1.5) * (nir + swir1) - np.float32(0.25) * swir2).astype(
        np.float32, copy=False
    )


def _awei_nsh(bands: BandMap) -> np.ndarray:
    green, swir1, nir, swir2 = (get_band(bands, n) for n in ("green", "swir1", "nir", "swir2"))
    return (np.float32(4.0) * (green - swir1) - (np.float32(0.25) * nir + np.float32(2.75) * swir2)).astype(
        np.float32, copy=False
    )


def _build() -> dict[str, SpectralIndex]:
    items = [
        SpectralIndex(
            "NDVI", "Normalized Difference Vegetation Index", "(nir - red) / (nir + red)", ("nir", "red"),
            "Rouse et al. 1974, https://ntrs.nasa.gov/citations/19740022614", function=_nd("nir", "red"),
        ),
        SpectralIndex(
            "NDWI", "Normalized Difference Water Index (McFeeters)", "(green - nir) / (green + nir)",
            ("green", "nir"), "McFeeters 1996, https://doi.org/10.1080/01431169608948714",
            function=_nd("green", "nir"),
        ),
        SpectralIndex(
            "MNDWI", "Modified Normalized Difference Water Index", "(green - swir1) / (green + swir1)",
            ("green", "swir1"), "Xu 2006, https://doi.org/10.1080/01431160600589179",
            function=_nd("green", "swir1"),
        ),
        SpectralIndex(
            "NDBI", "Normalized Difference Built-Up Index", "(swir1 - nir) / (swir1 + nir)", ("swir1", "nir"),
            "Zha et al. 2003, https://doi.org/10.1080/01431160304987", function=_nd("swir1", "nir"),
        ),
        SpectralIndex(
            "BSI", "Bare Soil Index", "((swir1 + red) - (nir + blue)) / ((swir1 + red) + (nir + blue))",
            ("swir1", "red", "nir", "blue"),
            "Rikimaru et al. 2002 (spyndex 'BI'), "
            "http://citeseerx.ist.psu.edu/viewdoc/download?doi=10.1.1.465.8749&rep=rep1&type=pdf",
            function=_bsi,
        ),
        SpectralIndex(
            "NDSI", "Normalized Difference Snow Index", "(green - swir1) / (green + swir1)", ("green", "swir1"),
            "Hall et al. 1995, https://doi.org/10.1109/IGARSS.1994.399618", function=_nd("green", "swir1"),
        ),
        SpectralIndex(
            "NDMI", "Normalized Difference Moisture Index", "(nir - swir1) / (nir + swir1)", ("nir", "swir1"),
            "Gao 1996 / Wilson & Sader 2002, https://doi.org/10.1016/S0034-4257(01)00318-2",
            function=_nd("nir", "swir1"),
        ),
        SpectralIndex(
            "EVI", "Enhanced Vegetation Index", "2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1)",
            ("nir", "red", "blue"), "Huete et al. 2002, https://doi.org/10.1016/S0034-4257(96)00112-5",
            typical_range=(-1.0, 1.0), function=_evi,
        ),
        SpectralIndex(
            "SAVI", "Soil-Adjusted Vegetation Index (L = 0.5)", "1.5 * (nir - red) / (nir + red + 0.5)",
            ("nir", "red"), "Huete 1988, https://doi.org/10.1016/0034-4257(88)90106-X",
            typical_range=(-1.5, 1.5), function=_savi,
        ),
        SpectralIndex(
            "AWEIsh", "Automated Water Extraction Index (shadow)",
            "blue + 2.5 * green - 1.5 * (nir + swir1) - 0.25 * swir2", ("blue", "green", "nir", "swir1", "swir2"),
            "Feyisa et al. 2014, https://doi.org/10.1016/j.rse.2013.08.029", typical_range=(-2.0, 2.0),
            function=_awei_sh,
        ),
        SpectralIndex(
            "AWEInsh", "Automated Water Extraction Index (no shadow)",
            "4 * (green - swir1) - (0.25 * nir + 2.75 * swir2)", ("green", "swir1", "nir", "swir2"),
            "Feyisa et al. 2014, https://doi.org/10.1016/j.rse.2013.08.029", typical_range=(-4.0, 4.0),
            function=_awei_nsh,
        ),
    ]
    return {i.name: i for i in items}


#: Every supported index by name. Read-only by convention; never mutate.
INDICES: Final[dict[str, SpectralIndex]] = _build()


def resolve_index(name: str) -> SpectralIndex:
    """Look up an index by name, case-insensitively ("ndvi" -> NDVI).

    Raises:
        ValueError: for an unknown name (the message lists the supported ones).
    """
    key = name.strip().lower()
    for idx_name, index in INDICES.items():
        if idx_name.lower() == key:
            return index
    raise ValueError(f"unknown spectral index {name!r}; supported: {', '.join(INDICES)}")


def compute_index(name: str, bands: BandMap) -> np.ndarray:
    """Compute index ``name`` on ``bands`` (canonical name -> reflectance array).

    Raises:
        ValueError: unknown index name.
        BandError: a required band is missing.
    """
    return resolve_index(name)(bands)


def available_indices(band_names: Iterable[str]) -> list[str]:
    """Names of the indices computable from ``band_names``, in catalogue order."""
    names = set(band_names)
    return [n for n, idx in INDICES.items() if idx.available(names)]
