"""Cleared land and fallow: requestable, disjoint from forest, measured on real eo-learn labels (MIT)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from helpers import extract_each, write_geotiff

from spex.engine.parser import parse_instruction as parse

DATA = Path(__file__).parent / "data"


def test_cleared_land_matches_the_non_forest_labels_and_never_forest() -> None:
    with rasterio.open(DATA / "eolearn_lulc.tif") as ds:
        lab = ds.read(1)
    ex = extract_each(DATA / "eolearn_s2l1c_2015-07-11_13band.tif", "cleared", "forest", "grass")
    cleared, forest, grass = (ex[t].mask for t in ("cleared", "forest", "grass"))
    labelled, open_land = lab > 0, np.isin(lab, (1, 3, 4))   # cultivated, grassland, shrubland

    def iou(m: np.ndarray) -> float:
        return float((m & open_land & labelled).sum() / ((m | open_land) & labelled).sum())

    assert iou(cleared) >= 0.6 and iou(cleared) > iou(grass) + 0.3
    assert not (cleared & forest).any()


def test_fallow_is_dry_low_cover_and_needs_swir(tmp_path: Path) -> None:
    # blue, green, red, nir, swir1, swir2: forest | pasture | dry fallow field
    spectra = {"forest": (0.03, 0.05, 0.03, 0.35, 0.13, 0.06), "pasture": (0.04, 0.08, 0.06, 0.32, 0.22, 0.12),
               "fallow": (0.08, 0.11, 0.14, 0.22, 0.30, 0.24)}
    cube = np.zeros((6, 30, 90), dtype=np.float32)
    rng = np.random.default_rng(0)
    for k, v in enumerate(spectra.values()):
        for b in range(6):
            cube[b, :, 30 * k:30 * (k + 1)] = v[b] * (1 + 0.03 * rng.standard_normal((30, 30)))
    path = write_geotiff(tmp_path / "s.tif", cube, crs="EPSG:32622", origin=(600000, 9600000), res=30)
    ex = extract_each(path, "fallow", "cleared")
    fallow, cleared = ex["fallow"], ex["cleared"]
    assert fallow.mask[:, 60:].mean() > 0.9 and not fallow.mask[:, :60].any()
    assert cleared.mask[:, 30:60].mean() > 0.9 and not cleared.mask[:, :30].any()
    assert fallow.evidence[0].index == "NDMI"


def test_users_words_reach_the_new_classes() -> None:
    assert parse("extract the pastures").request.targets == ("cleared",)
    assert parse("show me the cleared land").request.targets == ("cleared",)
    assert parse("extract the fallow fields").request.targets == ("fallow",)
    assert parse("extract the cloud shadows").request.targets == ("shadow",)
    assert parse("extract the haze").request.targets == ("haze",)
    assert parse("vegetation without the haze").request.exclude == ("haze",)
