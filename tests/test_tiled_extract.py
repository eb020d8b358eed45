"""The tile size (read/compute window) changes neither a pixel of the mask nor the region list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import VIRGINIA

from spex.cli import main as spex_main
from spex.engine import extract, parse_instruction
from spex.io import open_scene
from spex.spectral import IndexCache

WHOLE = 4096  # larger than every test crop: one window


def _run(paths: list[Path], query: str, tile: int):
    with open_scene(paths) as scene:
        request = parse_instruction(query, None, pixel_area_m2=scene.pixel_area_m2).request
        return extract(scene, request, IndexCache(scene, window_size=tile))


@pytest.mark.parametrize(("files", "query", "tile"), [
    (VIRGINIA, "extract the water bodies", 37),           # three co-registered files (10/20/60 m), odd seams
    (VIRGINIA, "extract the vegetation", 64),
    (("l7_olinda_crop.tif",), "extract the water bodies", 29),
    (("l7_olinda_crop.tif",), "extract the built-up areas", 50),
])
def test_tile_size_changes_nothing(data_dir: Path, files: tuple[str, ...], query: str, tile: int) -> None:
    paths = [data_dir / f for f in files]
    whole, tiled = _run(paths, query, WHOLE), _run(paths, query, tile)
    largest = whole.regions[0]
    r0, c0, r1, c1 = largest.bbox
    assert max(r1 - r0, c1 - c0) > tile, "the largest region must cross tile seams"
    np.testing.assert_array_equal(tiled.mask, whole.mask)
    np.testing.assert_array_equal(tiled.labels, whole.labels)
    assert tiled.regions == whole.regions
    assert [e.threshold for e in tiled.evidence] == [e.threshold for e in whole.evidence]
    assert tiled.caveats == whole.caveats


def test_cli_tile_size_gives_the_same_mask(data_dir: Path, tmp_path: Path) -> None:
    paths = [str(data_dir / f) for f in VIRGINIA]
    for tile, out in ((48, "a"), (1024, "b")):
        assert spex_main(["extract", *paths, "--query", "water bodies", "--out", str(tmp_path / out),
                          "--tile-size", str(tile)]) == 0
    with rasterio.open(tmp_path / "a" / "mask.tif") as a, rasterio.open(tmp_path / "b" / "mask.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
    assert (tmp_path / "a" / "regions.geojson").read_text() == (tmp_path / "b" / "regions.geojson").read_text()
    assert spex_main(["extract", *paths, "--query", "water", "--out", str(tmp_path / "c"), "--tile-size", "4"]) == 2
