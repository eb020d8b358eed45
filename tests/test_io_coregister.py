"""Multi-file scenes are co-registered by georeference, never by array index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import VIRGINIA as VA
from helpers import write_geotiff

from spex.errors import SceneReadError
from spex.io import open_scene


def write(path: Path, data: np.ndarray, x0: float, y0: float, res: float, descriptions) -> Path:
    return write_geotiff(path, data, origin=(x0, y0), res=res, descriptions=descriptions)


def test_linear_ramp_lands_at_its_map_coordinates(tmp_path):
    """A 20 m band holding a linear function of x is warped exactly onto the offset 10 m grid."""
    x0_10, y0 = 500000.0, 4000000.0
    ten = np.full((4, 40, 40), 300, np.uint16)     # dark enough: no Sentinel-2 offset is inferred
    p10 = write(tmp_path / "t_10m_B02-B03-B04-B08.tif", ten, x0_10, y0, 10.0, ("B02", "B03", "B04", "B08"))
    x0_20 = x0_10 - 10.0                        # the 20 m grid starts 10 m west, as in the real scene
    cols = np.arange(22)
    centres = x0_20 + 20.0 * cols + 10.0
    ramp = (centres - 499900.0)                 # DN = metres east of 499 900 (1 DN per metre)
    twenty = np.broadcast_to(ramp.astype(np.uint16), (6, 22, 22)).copy()
    p20 = write(tmp_path / "t_20m_B05-B06-B07-B8A-B11-B12.tif", twenty, x0_20, y0, 20.0,
                ("B05", "B06", "B07", "B8A", "B11", "B12"))
    with open_scene([p10, p20]) as s:
        assert s.width == 40 and s.transform.c == x0_10
        re1 = s.read(["rededge1"])[0]
    x_centre_10 = x0_10 + 10.0 * np.arange(40) + 5.0
    expected = (x_centre_10 - 499900.0) * 1e-4
    inner = slice(2, 38)                        # away from the outer half pixel
    np.testing.assert_allclose(re1[10, inner], expected[inner], atol=2e-6)
    # stacking by array index (pixel-replicated 20 m) would be off by 5-15 m here
    by_index = np.repeat(ramp, 2)[:40] * 1e-4
    assert np.abs(by_index[inner] - expected[inner]).min() >= 5e-4 - 1e-9


def _bilinear(ds: rasterio.io.DatasetReader, band: int, x: float, y: float) -> float:
    """Bilinear value of ``band`` at map point (x, y) from the file itself (pixel centres)."""
    col, row = ~ds.transform @ (x, y)
    c, r = col - 0.5, row - 0.5
    c0, r0 = int(np.floor(c)), int(np.floor(r))
    fc, fr = c - c0, r - r0
    a = ds.read(band, window=((r0, r0 + 2), (c0, c0 + 2))).astype(np.float64)
    return float((a[0, 0] * (1 - fc) + a[0, 1] * fc) * (1 - fr) + (a[1, 0] * (1 - fc) + a[1, 1] * fc) * fr)


@pytest.mark.parametrize(("row", "col"), [(50, 51), (123, 77), (10, 180)])
def test_virginia_20m_pixel_lands_where_its_georeference_says(data_dir, row, col):
    with open_scene([data_dir / f for f in VA]) as s:
        swir1 = s.read(["swir1"])[0]
        x, y = s.transform @ (col + 0.5, row + 0.5)
    with rasterio.open(data_dir / VA[1]) as ds20:
        assert ds20.transform.c == s.transform.c - 10.0       # the real 10 m offset is kept
        expected = _bilinear(ds20, 5, x, y) * 1e-4
        naive = ds20.read(5)[row // 2, col // 2] * 1e-4       # what index stacking would give
    assert swir1[row, col] == pytest.approx(expected, abs=2e-5)
    assert swir1.shape == (200, 200)
    if abs(naive - expected) > 1e-3:
        assert abs(swir1[row, col] - naive) > 1e-3


def test_virginia_footprint_edges_and_validity(data_dir):
    with open_scene([data_dir / f for f in VA]) as s:
        assert s.pixel_size_m == pytest.approx((10.0, 10.0))
        ok = s.valid()
        cube = s.read()
        assert ok.mean() > 0.99
        assert np.isnan(cube[:, ~ok]).all()
        assert np.isfinite(cube[:10][:, ok]).all()     # 10/20 m bands complete where valid
        assert any("Co-registered" in n for n in s.notes)


def test_files_that_do_not_overlap(tmp_path):
    a = write(tmp_path / "a_B02-B03-B04-B08.tif", np.ones((4, 10, 10), np.uint16) * 500, 500000, 4000000, 10,
              ("B02", "B03", "B04", "B08"))
    b = write(tmp_path / "b_B05-B06-B07-B8A-B11-B12.tif", np.ones((6, 10, 10), np.uint16) * 500, 700000,
              4000000, 20, ("B05", "B06", "B07", "B8A", "B11", "B12"))
    with pytest.raises(SceneReadError, match="does not overlap"):
        open_scene([a, b])
