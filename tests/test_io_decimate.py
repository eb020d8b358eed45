"""Block-wise decimated reads pick exactly the pixels GDAL's nearest resampling picks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from spex.io.decimate import can_decimate_by_blocks, decimated_read, nearest_picks


def _write(path: Path, arr: np.ndarray, **layout) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                       count=arr.shape[0], dtype=arr.dtype, transform=from_origin(0, 0, 10, 10),
                       compress="deflate", **layout) as ds:
        ds.write(arr)
    return path


@pytest.mark.parametrize("layout", [dict(tiled=True, blockxsize=256, blockysize=256), dict(tiled=False)])
@pytest.mark.parametrize("hw", [(1500, 1333), (700, 2100)])
def test_decimated_read_equals_gdal(tmp_path: Path, layout: dict, hw: tuple[int, int]) -> None:
    arr = np.random.default_rng(1).integers(0, 60000, (3, *hw), dtype=np.uint16)
    path = _write(tmp_path / "a.tif", arr, **layout)
    shape = (hw[0] // 3, hw[1] // 3)
    with rasterio.open(path) as ds:
        assert can_decimate_by_blocks(ds)
        np.testing.assert_array_equal(decimated_read(ds, [1, 2, 3], shape), ds.read(out_shape=(3, *shape)))
        win = Window(100, 50, 900, 600)
        np.testing.assert_array_equal(decimated_read(ds, [2], (200, 300), window=win),
                                      ds.read([2], window=win, out_shape=(1, 200, 300)))


def test_files_with_overviews_are_left_to_gdal(tmp_path: Path) -> None:
    path = _write(tmp_path / "o.tif", np.ones((1, 600, 600), np.uint16), tiled=True)
    with rasterio.open(path, "r+") as ds:
        ds.build_overviews([2, 4])
    with rasterio.open(path) as ds:
        assert not can_decimate_by_blocks(ds)


def test_nearest_picks_stay_in_range() -> None:
    picks = nearest_picks(10, 3)
    assert picks.tolist() == [1, 5, 8] and nearest_picks(5, 5).tolist() == [0, 1, 2, 3, 4]


def test_scene_decimated_reads_equal_gdal_and_decode_each_file_once(tmp_path, monkeypatch) -> None:
    """Scene.read/valid(out_shape=...) on a plain tiled file: GDAL's nearest pixels, one pass per file."""
    from helpers import write_geotiff

    from spex.io import decimate as decimate_module
    from spex.io import open_scene

    rng = np.random.default_rng(4)
    data = rng.integers(1, 4000, (4, 300, 260)).astype(np.uint16)
    data[:, :20, :30] = 0  # nodata corner
    path = write_geotiff(tmp_path / "t.tif", data, nodata=0, tiled=True, blockxsize=64, blockysize=64,
                         descriptions=("blue", "green", "red", "nir"))
    passes: list[int] = []
    real = decimate_module.decimated_read

    def counted(ds, indexes, *args, **kwargs):
        passes.append(len(indexes))
        return real(ds, indexes, *args, **kwargs)

    monkeypatch.setattr(decimate_module, "decimated_read", counted)
    with open_scene(path) as scene:
        cube = scene.read(["red", "nir"], out_shape=(70, 50))
        valid = scene.valid(out_shape=(70, 50))
        # the same bands through GDAL's own decimation (the path without the prefetch)
        gdal = [scene._raw_band(scene.band_names.index(b), None, (70, 50)) for b in ("red", "nir")]
    assert passes == [4, 4]  # read(): one pass for the bands and validity; valid(): one pass
    for k, (arr, bad) in enumerate(gdal):
        band = scene._sources[scene.band_names.index(("red", "nir")[k])].scaling.apply(arr)
        band[bad | ~valid] = np.nan
        assert np.array_equal(cube[k], band, equal_nan=True)
    assert not valid[:4, :5].any() and valid[20:, 10:].all()


def test_warped_bands_are_decimated_by_blocks_with_gdals_values(data_dir: Path) -> None:
    """The 20 m / 60 m files warped onto the 10 m grid: block by block, the pixels GDAL's per-band read gives
    (which re-warps blocks per output row once its cache is small: minutes on a 4096² 13-band scene)."""
    from helpers import VIRGINIA
    from rasterio.vrt import WarpedVRT

    from spex.io import open_scene

    with open_scene([data_dir / f for f in VIRGINIA]) as scene:
        warped = {id(s.reader): s.reader for s in scene._sources if isinstance(s.reader, WarpedVRT)}
        assert len(warped) == 2
        for vrt in warped.values():
            assert can_decimate_by_blocks(vrt)
            bands = list(range(1, vrt.count + 1))
            for window, shape in ((None, (61, 47)), (None, (200, 200)), (Window(13, 7, 150, 170), (50, 37))):
                got = decimated_read(vrt, bands, shape, window)
                per_band = np.stack([vrt.read(b, window=window, out_shape=shape) for b in bands])
                assert np.array_equal(got, per_band, equal_nan=True)
        names = [n for n in scene.band_names if n in ("swir1", "coastal", "red")]
        cube = scene.read(names, out_shape=(61, 47))
        valid = scene.valid(out_shape=(61, 47))
        assert np.array_equal(valid, ~scene._invalid(None, (61, 47), (61, 47), {}))  # GDAL's reads of each band
        for k, name in enumerate(names):  # what Scene.read gave before: GDAL's read of each band
            i = scene.band_names.index(name)
            arr, bad = scene._raw_band(i, None, (61, 47))
            band = scene._sources[i].scaling.apply(arr)
            band[bad | ~valid] = np.nan
            assert np.array_equal(cube[k], band, equal_nan=True), name
