"""Large-scene benchmark (``python -m spex.bench scale``) at a tiny size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from spex.bench.__main__ import main
from spex.bench.scale import STEPS, _mirror_index, demo_files, synthesise_scene


def test_mirror_index_reflects_at_the_source_edges() -> None:
    assert _mirror_index(7, 3).tolist() == [0, 1, 2, 2, 1, 0, 0]
    assert _mirror_index(3, 3, start=4).tolist() == [1, 0, 0]


def test_synthetic_scene_keeps_grids_offsets_and_pixels(tmp_path: Path, assets_dir: Path) -> None:
    src = demo_files(assets_dir / "demo")
    files = synthesise_scene(1500, tmp_path, sources=src)
    assert [f.name for f in files] == [f.name for f in src]
    with rasterio.open(files[0]) as big, rasterio.open(src[0]) as small:
        assert (big.width, big.height) == (1500, 1500)
        assert big.transform == small.transform and big.crs == small.crs
        assert big.profile["tiled"] and big.profile["compress"] == "deflate"
        assert big.descriptions == small.descriptions
        a, b = big.read(1), small.read(1)
        assert np.array_equal(a[:1020, :1020], b)                      # the original tile, unchanged
        assert np.array_equal(a[:1020, 1020:1500], b[:, ::-1][:, :480])  # then its mirror image
    with rasterio.open(files[1]) as c20, rasterio.open(src[1]) as s20:
        assert c20.transform == s20.transform                          # the 10 m offset of the 20 m grid is kept
        right = c20.transform.c + c20.width * c20.transform.a
        assert right >= 438230 + 1500 * 10                              # covers the 10 m footprint
    only10 = synthesise_scene(64, tmp_path / "b4", bands=4, sources=src)
    assert len(only10) == 1


def test_synthesise_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bands"):
        synthesise_scene(100, tmp_path, bands=7)
    with pytest.raises(ValueError, match="size"):
        synthesise_scene(4, tmp_path)


def test_scale_command_prints_its_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scale", "--size", "300", "--bands", "13", "--steps", ",".join(STEPS), "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Scene 300 x 300 px @ 10 m, 13 bands in 3 file(s)" in out
    assert "naive float64 cube: 9 MiB" in out and "CPU s" in out
    for step in STEPS:
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(step + " "))
        assert "ERROR" not in line and "MiB" in line
    assert "regions" in out and (tmp_path / "out_300_13b" / "write_outputs" / "mask.tif").exists()


def test_scale_command_step_subset_and_gdal_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scale", "--size", "64", "--bands", "4", "--steps", "info", "--gdal-cache", "64",
                 "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "4 bands in 1 file(s)" in out and "GDAL block cache: 64 MB" in out
    steps = [ln.split()[0] for ln in out.splitlines() if ln.startswith("  ") and "MiB" in ln and "cube" not in ln]
    assert steps == ["info"]


def test_scale_command_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scale", "--size", "100", "--steps", "extract:lava"]) == 2
    assert "unknown steps" in capsys.readouterr().err


def test_scale_command_rejects_tiny_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scale", "--size", "8"]) == 2
    assert "--size" in capsys.readouterr().err


def test_six_band_scene_floor_and_cli_ratio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scale", "--size", "256", "--workdir", str(tmp_path)])  # defaults: 6 bands, floor + cli
    out = capsys.readouterr().out
    assert code == 0, out
    assert "6 bands in 1 file(s)" in out
    steps = [ln.split()[0] for ln in out.splitlines() if ln.startswith("  ") and "MiB" in ln and "cube" not in ln]
    assert steps == ["floor", "cli"]
    verdict = next(ln for ln in out.splitlines() if "=> extract CLI" in ln)
    assert "x the floor" in verdict and "peak RSS" in verdict and "CPU time (getrusage)" in verdict
    (scene,) = (tmp_path / "scene_256_6b").glob("*.tif")
    with rasterio.open(scene) as ds:
        assert ds.count == 6 and ds.descriptions == ("B02", "B03", "B04", "B08", "B11", "B12")
    assert (tmp_path / "out_256_6b" / "cli" / "mask.tif").exists()


def test_tiles_command_compares_tile_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["tiles", "--size", "300", "--tile-size", "300", "64", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("64 "))
    assert line.count("identical") == 2
