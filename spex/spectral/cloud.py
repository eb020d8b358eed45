"""Physically based per-pixel cloud test (Fmask-style spectral rules, sensor-aware).

Clouds are bright and spectrally flat ("white") across the visible, brighter in blue
than the haze-free soil line predicts, and, where the bands exist, darker in SWIR
than in NIR, not snow-like, cold, and visible in the 1.38 um cirrus band. The rules
and constants follow Fmask (Zhu & Woodcock 2012, https://doi.org/10.1016/j.rse.2011.10.028):

1. Brightness: blue > ``BLUE_MIN`` (clear land rarely exceeds 0.2 in blue; snow,
   white roofs and some sand do, hence the next tests).
2. Whiteness: sum(|b - m|) / m < ``WHITENESS_MAX`` over blue, green, red with m their mean.
3. HOT, haze-optimised transform (Zhang et al. 2002,
   https://doi.org/10.1016/S0034-4257(02)00034-2): blue - 0.5 * red - 0.08 > 0. Bright
   sand and soil are red-dominated and fail it.
4. With swir1: NDSI = (green - swir1) / (green + swir1) < ``NDSI_SNOW`` (Hall et al. 1995:
   snow and ice have NDSI > 0.4) and nir > swir1 (water and ice clouds reflect less in
   SWIR than in NIR; concrete, sand and rock reflect more, i.e. NDBI > 0). Fmask's
   looser nir / swir1 > 0.75 keeps a few more clouds but also bright roofs.
5. Without swir1 (RGB, 4-band aerial) the spectrum cannot separate cloud from snow or
   white roofs, so the visible mean must exceed ``BRIGHT_NO_SWIR`` as well (thin cloud is
   missed; snow and exceptionally bright roofs can still be flagged).
6. With thermal in kelvin: brightness temperature < ``BT_MAX_K`` (27 degC, Fmask).
   Thermal bands not in kelvin (median outside 150-350) are ignored.
7. Cirrus (S2 B10, OLI B9): reflectance > ``CIRRUS_MIN`` flags thin cirrus on its own
   (Sen2Cor uses 0.012; a bit higher here to spare dry high-altitude ground).

Inputs are reflectance (0..1). Result True = cloud; NaN pixels are never cloud.
Cloud shadows are not detected.

Spatial step (:func:`cloud_objects`, applied by the rule engine on the whole mask): the
spectral tests are also met by small bright, white, SWIR-dark surfaces (white roofs, wet
beach sand, surf). Clouds are extended objects, so, as Fmask 4.0 does with its erosion of
potential cloud pixels (Qiu et al. 2019, https://doi.org/10.1016/j.rse.2019.05.024), a
cloud object is kept only if it contains a core at least ``CORE_RADIUS_M`` from clear
pixels; kept objects keep their full extent (opening by reconstruction), so cloud
edges are not lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
from scipy import ndimage

from spex.errors import BandError
from spex.spectral.indices import get_band, normalized_difference

__all__ = ["CLOUD_BANDS", "CORE_RADIUS_M", "cloud_mask", "cloud_objects"]

BLUE_MIN: Final[float] = 0.20
WHITENESS_MAX: Final[float] = 0.7
HOT_OFFSET: Final[float] = 0.08
NDSI_SNOW: Final[float] = 0.4
BRIGHT_NO_SWIR: Final[float] = 0.35
BT_MAX_K: Final[float] = 300.15
CIRRUS_MIN: Final[float] = 0.015
#: A cloud object must contain pixels this far (ground metres) from any clear pixel: 2 Landsat
#: pixels, as Fmask 4.0's erosion of potential clouds; i.e. objects narrower than ~130 m are
#: dropped (cumulus smaller than that is sub-pixel at 30 m and rarely matters at 10 m).
CORE_RADIUS_M: Final[float] = 60.0
#: Core radius in pixels when the pixel size is unknown (not georeferenced).
CORE_RADIUS_PX_UNKNOWN: Final[int] = 2
_KELVIN_RANGE: Final[tuple[float, float]] = (150.0, 350.0)

#: Bands the test can use; blue, green and red are required, the rest refine it.
CLOUD_BANDS: Final[tuple[str, ...]] = ("blue", "green", "red", "nir", "swir1", "cirrus", "thermal")


def cloud_mask(bands: Mapping[str, np.ndarray]) -> np.ndarray:
    """Boolean cloud mask (True = cloud) from canonical bands, see module notes.

    Raises:
        BandError: when blue, green or red is missing.
    """
    missing = [b for b in ("blue", "green", "red") if b not in bands]
    if missing:
        raise BandError(
            f"cloud detection needs the blue, green and red bands; missing: {', '.join(missing)} "
            f"(available: {', '.join(sorted(bands)) or 'none'})"
        )
    blue, green, red = (get_band(bands, b) for b in ("blue", "green", "red"))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_vis = (blue + green + red) / np.float32(3.0)
        whiteness = (np.abs(blue - mean_vis) + np.abs(green - mean_vis) + np.abs(red - mean_vis)) / mean_vis
        cloud = (blue > BLUE_MIN) & (whiteness < WHITENESS_MAX) & (blue - np.float32(0.5) * red > HOT_OFFSET)
        if "swir1" in bands:
            swir1 = get_band(bands, "swir1")
            cloud &= normalized_difference(green, swir1) < NDSI_SNOW
            if any(b in bands for b in ("nir", "nir08")):
                cloud &= get_band(bands, "nir") > swir1
        else:
            cloud &= mean_vis > BRIGHT_NO_SWIR
        if "thermal" in bands:
            thermal = get_band(bands, "thermal")
            finite = thermal[np.isfinite(thermal)]
            if finite.size and _KELVIN_RANGE[0] < float(np.median(finite)) < _KELVIN_RANGE[1]:
                cloud &= ~(thermal >= BT_MAX_K)  # NaN thermal does not veto
        if "cirrus" in bands:
            cloud |= (get_band(bands, "cirrus") > CIRRUS_MIN) & np.isfinite(blue)
    cloud &= np.isfinite(blue) & np.isfinite(green) & np.isfinite(red)
    return cloud


def cloud_objects(mask: np.ndarray, pixel_size_m: float | None) -> np.ndarray:
    """Keep the cloud objects of ``mask`` that have a core ``CORE_RADIUS_M`` from clear pixels.

    Small or thin bright objects (roofs, beaches, surf lines) that pass the spectral test
    are removed; the kept objects are returned whole (8-connected). The image border is
    not treated as clear: a cloud cut by the edge continues outside the scene.

    Args:
        mask: boolean per-pixel cloud test (e.g. :func:`cloud_mask`).
        pixel_size_m: ground pixel size in metres; None or <= 0 when unknown.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"cloud mask must be 2-D, got shape {mask.shape}")
    if not mask.any():
        return mask.copy()
    if pixel_size_m is not None and pixel_size_m > 0:
        radius = max(1, int(round(CORE_RADIUS_M / float(pixel_size_m))))
    else:
        radius = CORE_RADIUS_PX_UNKNOWN
    # repeated 3x3 erosions: cost independent of the radius' area (octagonal core)
    core = ndimage.binary_erosion(mask, _ERODE, iterations=radius, border_value=1)
    if not core.any():
        return np.zeros_like(mask)
    labels, n = ndimage.label(mask, structure=_EIGHT)
    keep = np.zeros(n + 1, dtype=bool)
    keep[np.unique(labels[core])] = True
    keep[0] = False
    return keep[labels]


_EIGHT: Final[np.ndarray] = ndimage.generate_binary_structure(2, 2)
_ERODE: Final[np.ndarray] = ndimage.generate_binary_structure(2, 1)
