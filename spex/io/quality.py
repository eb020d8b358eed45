"""Quality layers supplied with a scene: Landsat QA_PIXEL / BQA bits, Sentinel-2 cloud masks.

Why: the data provider's own cloud, shadow and snow flags (CFMask for Landsat, Sen2Cor /
s2cloudless for Sentinel-2) use information a pixel test cannot (cloud height matching,
temporal context, thermal). When the user uploads them, they decide what is cloud and
shadow, and the reply says so.

Decoding (bit 0 = least significant; "confidence" is a 2-bit field 0 none, 1 low,
2 medium, 3 high):

- Landsat Collection 2 ``QA_PIXEL`` (USGS LSDS-1619/1328): bit 0 fill, 1 dilated cloud,
  2 cirrus, 3 cloud, 4 cloud shadow, 5 snow, 7 water, 8-9 cloud conf., 10-11 shadow conf.,
  12-13 snow conf., 14-15 cirrus conf.
- Landsat Collection 1 ``BQA``: bit 0 fill, 4 cloud, 5-6 cloud conf., 7-8 shadow conf.,
  9-10 snow conf., 11-12 cirrus conf. (OLI); a flag counts at high confidence.
- Pre-collection Landsat 8 ``BQA`` (scene ids like ``LC80140322013...``): 0 fill,
  4-5 water conf., 10-11 snow conf., 12-13 cirrus conf., 14-15 cloud conf.
- Sentinel-2 ``SCL`` (Sen2Cor): 0 no data, 3 cloud shadow, 6 water, 8/9 cloud medium/high
  probability, 10 thin cirrus, 11 snow.
- Sentinel-2 ``MSK_CLDPRB`` (cloud probability 0-100): cloud at >= ``S2_CLOUD_PROB``;
  ``MSK_CLASSI`` (L1C baseline >= 04.00): band 1 opaque cloud, 2 cirrus, 3 snow.
- ``CLM`` (eo-learn / Sentinel Hub s2cloudless mask): 1 cloud.

Each file is resampled by nearest neighbour onto the scene grid (a flag is never blended).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject

from spex.errors import SceneReadError

__all__ = ["QualityLayer", "QA_LAYERS", "S2_CLOUD_PROB", "qa_kind", "decode_qa", "read_quality"]

#: Layers a quality file may provide (True = flagged).
QA_LAYERS: Final[tuple[str, ...]] = ("cloud", "cirrus", "shadow", "snow", "water", "fill")
#: Cloud probability (percent) at which MSK_CLDPRB counts as cloud (Sen2Cor's medium-probability class).
S2_CLOUD_PROB: Final[int] = 50
#: Description of each quality product, for the reply.
_KINDS: Final[dict[str, str]] = {
    "qa_pixel": "Landsat Collection 2 QA_PIXEL bits (CFMask)",
    "bqa_c1": "Landsat Collection 1 BQA bits (CFMask, high confidence)",
    "bqa_pre": "pre-collection Landsat 8 BQA bits (high confidence)",
    "scl": "Sentinel-2 scene classification (SCL, Sen2Cor)",
    "cldprb": f"Sentinel-2 cloud probability (MSK_CLDPRB >= {S2_CLOUD_PROB} %)",
    "classi": "Sentinel-2 L1C cloud mask (MSK_CLASSI)",
    "clm": "cloud mask CLM (s2cloudless, 1 = cloud)",
}


@dataclass(frozen=True)
class QualityLayer:
    """Flags from the supplied quality files on the scene grid; ``sources`` names each product used."""

    layers: dict[str, np.ndarray] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def get(self, name: str) -> np.ndarray | None:
        """Bool (H, W) layer ``name`` ("cloud", "shadow"...), None when no supplied file has it."""
        return self.layers.get(name)

    @property
    def description(self) -> str:
        return "; ".join(self.sources)


def qa_kind(path: Path) -> str | None:
    """Which quality product ``path`` holds, from its name (None: not one spex can decode)."""
    name = path.name.upper()
    if "QA_PIXEL" in name:
        return "qa_pixel"
    if re.search(r"(^|_)BQA", name):
        return "bqa_pre" if re.match(r"^L[CO]8\d{13}", name) else "bqa_c1"
    if re.search(r"(^|_)SCL", name):
        return "scl"
    if "MSK_CLDPRB" in name:
        return "cldprb"
    if "MSK_CLASSI" in name:
        return "classi"
    if re.search(r"(^|_)CLM", name):
        return "clm"
    return None


def _bit(qa: np.ndarray, b: int) -> np.ndarray:
    return ((qa >> b) & 1).astype(bool)


def _high(qa: np.ndarray, b: int) -> np.ndarray:
    return ((qa >> b) & 3) == 3


def decode_qa(kind: str, data: np.ndarray) -> dict[str, np.ndarray]:
    """Decode one quality raster (bands, H, W) of product ``kind`` into bool layers.

    Raises:
        ValueError: unknown ``kind``.
    """
    first = data[0]
    if kind in ("qa_pixel", "bqa_c1", "bqa_pre"):
        qa = first.astype(np.uint16)
        if kind == "qa_pixel":
            return {"fill": _bit(qa, 0), "cloud": _bit(qa, 3) | _high(qa, 8), "cirrus": _bit(qa, 2) | _high(qa, 14),
                    "shadow": _bit(qa, 4), "snow": _bit(qa, 5), "water": _bit(qa, 7)}
        if kind == "bqa_c1":
            return {"fill": _bit(qa, 0), "cloud": _bit(qa, 4) | _high(qa, 5), "shadow": _high(qa, 7),
                    "snow": _high(qa, 9), "cirrus": _high(qa, 11)}
        return {"fill": _bit(qa, 0), "water": _high(qa, 4), "snow": _high(qa, 10), "cirrus": _high(qa, 12),
                "cloud": _high(qa, 14)}
    if kind == "scl":
        c = first.astype(np.int32)
        return {"fill": c == 0, "shadow": c == 3, "water": c == 6, "cloud": (c == 8) | (c == 9),
                "cirrus": c == 10, "snow": c == 11}
    if kind == "cldprb":
        return {"cloud": first.astype(np.int32) >= S2_CLOUD_PROB}
    if kind == "classi":
        out = {"cloud": first > 0}
        if data.shape[0] >= 2:
            out["cirrus"] = data[1] > 0
        if data.shape[0] >= 3:
            out["snow"] = data[2] > 0
        return out
    if kind == "clm":
        return {"cloud": first == 1}
    raise ValueError(f"unknown quality product {kind!r}; known: {', '.join(_KINDS)}")


def _on_grid(path: Path, crs: object, transform: object, shape: tuple[int, int]) -> np.ndarray:
    """All bands of ``path`` resampled (nearest) onto the scene grid; same grid: read as is."""
    with rasterio.open(path) as ds:
        if ds.crs == crs and ds.transform == transform and (ds.height, ds.width) == shape:
            return ds.read()
        if ds.crs is None or crs is None:
            if (ds.height, ds.width) == shape:
                return ds.read()
            raise SceneReadError(f"{path.name} has no georeference and a different size ({ds.width}x{ds.height}) "
                                 f"from the scene ({shape[1]}x{shape[0]}), so its flags cannot be placed")
        out = np.zeros((ds.count, *shape), dtype=ds.dtypes[0])
        for b in range(ds.count):
            reproject(rasterio.band(ds, b + 1), out[b], dst_transform=transform, dst_crs=crs,
                      resampling=Resampling.nearest, dst_nodata=0)
        return out


def read_quality(paths: Sequence[Path], crs: object, transform: object,
                 shape: tuple[int, int]) -> tuple[QualityLayer | None, list[str]]:
    """Decode the quality files ``paths`` onto the scene grid.

    Returns (layer or None when nothing could be used, notes for the scene description). A
    file that cannot be decoded or placed is named in the notes and left out; the others are
    still used. Several files combine by union of each flag.
    """
    layers: dict[str, np.ndarray] = {}
    sources: list[str] = []
    notes: list[str] = []
    for path in paths:
        kind = qa_kind(path)
        if kind is None:
            notes.append(f"{path.name}: a quality file spex cannot decode (known: QA_PIXEL, BQA, SCL, MSK_CLDPRB, "
                         "MSK_CLASSI, CLM); left out")
            continue
        try:
            decoded = decode_qa(kind, _on_grid(path, crs, transform, shape))
        except (rasterio.errors.RasterioError, SceneReadError) as exc:
            notes.append(f"{path.name}: could not be read as {_KINDS[kind]} ({exc}); left out")
            continue
        for name, mask in decoded.items():
            layers[name] = layers[name] | mask if name in layers else mask
        sources.append(f"{_KINDS[kind]} from {path.name}")
        flags = ", ".join(f"{n} {100 * float(m.mean()):.1f} %" for n, m in decoded.items() if n != "fill")
        notes.append(f"{path.name}: {_KINDS[kind]} used for cloud/shadow/snow ({flags}).")
    if not layers:
        return None, notes
    return QualityLayer(layers, tuple(sources)), notes
