"""A small synthetic coastal scene for the constraint tests: sea, river, two lakes, bare soil, vegetation.

Float reflectance (0..1) in six bands (blue green red nir swir1 swir2), 10 m pixels, 200 x 200 px:
- sea: the 70 rightmost columns (1.4 km², touches the frame, 700 m wide);
- river: rows 40-42, columns 10-119 (3 px wide, 110 px long, inside the scene);
- lakes: a disk of radius 8 px centred at (row 60, col 60) (north) and one of radius 12 px at
  (150, 60) (south, the larger);
- bare soil: rows 150-169, columns 80-99, next to the southern lake;
- vegetation elsewhere, NDVI rising from ~0.4 (left) to ~0.8 (column 129).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import write_geotiff

BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
SIZE = 200
WATER = np.array([0.06, 0.07, 0.04, 0.02, 0.01, 0.005], dtype=np.float32)
BARE = np.array([0.15, 0.2, 0.25, 0.3, 0.4, 0.35], dtype=np.float32)


def masks(sea: bool = True) -> dict[str, np.ndarray]:
    rows, cols = np.mgrid[:SIZE, :SIZE]
    out = {
        "sea": cols >= SIZE - 70 if sea else np.zeros((SIZE, SIZE), dtype=bool),
        "river": (rows >= 40) & (rows <= 42) & (cols >= 10) & (cols < 120),
        "north_lake": (rows - 60) ** 2 + (cols - 60) ** 2 <= 8 ** 2,
        "south_lake": (rows - 150) ** 2 + (cols - 60) ** 2 <= 12 ** 2,
        "bare": (rows >= 150) & (rows < 170) & (cols >= 80) & (cols < 100),
    }
    return out


def cube(sea: bool = True, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = masks(sea)
    cols = np.mgrid[:SIZE, :SIZE][1]
    ndvi = 0.4 + 0.4 * np.clip(cols / 129.0, 0, 1)
    red = np.full((SIZE, SIZE), 0.05, dtype=np.float32)
    nir = (red * (1 + ndvi) / (1 - ndvi)).astype(np.float32)
    data = np.stack([np.full_like(red, 0.04), np.full_like(red, 0.08), red, nir, np.full_like(red, 0.2),
                     np.full_like(red, 0.1)])
    water = m["sea"] | m["river"] | m["north_lake"] | m["south_lake"]
    data[:, water] = WATER[:, None]
    data[:, m["bare"]] = BARE[:, None]
    data *= (1 + rng.normal(0, 0.01, data.shape)).astype(np.float32)
    return data.astype(np.float32)


def write_scene(path: Path, *, sea: bool = True, bands: tuple[str, ...] = BANDS) -> Path:
    data = cube(sea)
    keep = [BANDS.index(b) for b in bands]
    return write_geotiff(path, data[keep], descriptions=list(bands))
