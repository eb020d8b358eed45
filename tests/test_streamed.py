"""The streamed (tile-by-tile) extraction: same mask for any tile size, thresholds from the whole scene."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import VIRGINIA
from rasterio.windows import Window

from spex.cli import main as spex_main
from spex.engine import extract, parse_instruction
from spex.engine.streamed import extract_streamed, halo_pixels, streaming_pays
from spex.io import open_scene
from spex.io.views import SceneOverview, SceneWindow
from spex.spectral import IndexCache


def _request(scene, query: str):
    return parse_instruction(query, None, pixel_area_m2=scene.pixel_area_m2).request


@pytest.mark.parametrize(("files", "query", "tiles"), [
    (VIRGINIA, "extract the water bodies", (37, 64)),          # 10/20/60 m files, odd seams
    (VIRGINIA, "extract the wetlands", (24,)),                 # reaches 500 m from open water
    (VIRGINIA, "extract the forest and the built-up areas", (45,)),
    (("l7_olinda_crop.tif",), "extract the built-up areas", (29,)),
    (("eolearn_s2l1c_2015-07-31_13band.tif",), "extract the haze", (24,)),   # cloud model cut per tile
    (("eolearn_s2l1c_2015-07-31_13band.tif",), "extract the cleared land", (33,)),
])
def test_streamed_equals_the_whole_scene_for_any_tile_size(data_dir: Path, files, query: str, tiles) -> None:
    with open_scene([data_dir / f for f in files]) as scene:
        request = _request(scene, query)
        whole = extract(scene, request, IndexCache(scene))
        for tile in tiles:  # the overview is the scene itself here (smaller than its side): same thresholds
            streamed = extract_streamed(scene, request, tile_size=tile)
            np.testing.assert_array_equal(streamed.mask, whole.mask)
            np.testing.assert_array_equal(streamed.labels, whole.labels)
            assert [replace(r, mean_indices={}) for r in streamed.regions] == \
                [replace(r, mean_indices={}) for r in whole.regions]
            for a, b in zip(streamed.regions, whole.regions, strict=True):  # index maps are kept as float16
                assert a.mean_indices == pytest.approx(b.mean_indices, abs=2e-3, nan_ok=True)
            assert [e.threshold for e in streamed.evidence] == pytest.approx([e.threshold for e in whole.evidence],
                                                                             nan_ok=True)
            assert [e.mean_inside for e in streamed.evidence] == pytest.approx([e.mean_inside for e in whole.evidence], abs=2e-3, nan_ok=True)
        if whole.regions:
            r0, c0, r1, c1 = whole.regions[0].bbox
            assert max(r1 - r0, c1 - c0) > min(tiles), "the largest region must cross tile seams"


def test_overview_thresholds_match_the_whole_scene_and_every_tile_uses_them(data_dir: Path, caplog) -> None:
    with open_scene([data_dir / f for f in VIRGINIA]) as scene:
        request = _request(scene, "extract the water bodies")
        whole = extract(scene, request, IndexCache(scene))
        with caplog.at_level(logging.WARNING, logger="spex.engine.rules.calibration"):
            runs = [extract_streamed(scene, request, tile_size=t, overview_side=100) for t in (40, 200)]
    assert not [r for r in caplog.records if "not calibrated" in r.getMessage()]
    np.testing.assert_array_equal(runs[0].mask, runs[1].mask)   # tile size changes nothing
    assert runs[0].regions == runs[1].regions
    assert runs[0].evidence[0].threshold == pytest.approx(whole.evidence[0].threshold, abs=0.02)
    share = abs(int(runs[0].mask.sum()) - int(whole.mask.sum())) / max(int(whole.mask.sum()), 1)
    assert share < 0.02  # a half-resolution sample of the scene splits it where the whole scene does


def test_views_read_the_scene_pixels(data_dir: Path) -> None:
    with open_scene([data_dir / f for f in VIRGINIA]) as scene:
        view = SceneWindow(scene, Window(30, 20, 90, 70))
        np.testing.assert_array_equal(view.read(["nir"]), scene.read(["nir"], window=Window(30, 20, 90, 70)))
        np.testing.assert_array_equal(view.valid(Window(5, 5, 10, 10)), scene.valid(Window(35, 25, 10, 10)))
        kept = SceneWindow(scene, Window(30, 20, 90, 70), memo=True)  # reads each file once, same pixels
        np.testing.assert_array_equal(kept.read(["red", "nir"], window=Window(4, 3, 20, 10)),
                                      scene.read(["red", "nir"], window=Window(34, 23, 20, 10)))
        assert set(scene.companions(["nir"])) == {"blue", "green", "red", "nir"}   # the 10 m file's bands
        assert view.transform.c == scene.transform.c + 30 * scene.transform.a
        overview = SceneOverview(scene, side=64)
        assert (overview.height, overview.width, overview.factor) == (50, 50, 4)
        np.testing.assert_array_equal(overview.read(["green"]), scene.read(["green"], out_shape=(50, 50)))
        np.testing.assert_array_equal(overview.read(), scene.read(out_shape=(50, 50)))  # read file by file
        np.testing.assert_array_equal(overview.read(["green"])[0],
                                      scene.read(["green"])[0][np.ix_(overview.full_rows(), overview.full_cols())])
        assert overview.pixel_size_m[0] == pytest.approx(4 * scene.pixel_size_m[0])
        with pytest.raises(ValueError, match="inside the"):
            view.read(["nir"], window=Window(80, 0, 20, 20))


def test_halo_covers_the_farthest_rule_reach() -> None:
    assert halo_pixels(10.0) * 10.0 >= 500 + 60   # wetland distance to water plus the haze test
    assert halo_pixels(30.0) < halo_pixels(10.0)
    assert streaming_pays(10240, 10240, 10.0, 1024) and not streaming_pays(2048, 2048, 10.0, 1024)
    assert not streaming_pays(10240, 10240, 1.0, 1024)   # a 1 m scene's halo is wider than the tile
    with pytest.raises(ValueError, match="at least 16"):
        extract_streamed(None, None, tile_size=8)  # type: ignore[arg-type]


def test_cli_stream_on_and_off_write_the_same_mask(data_dir: Path, tmp_path: Path) -> None:
    paths = [str(data_dir / f) for f in VIRGINIA]
    for mode, tile, out in (("on", "40", "a"), ("off", "1024", "b")):
        assert spex_main(["extract", *paths, "--query", "lakes larger than 1 ha", "--out", str(tmp_path / out),
                          "--stream", mode, "--tile-size", tile]) == 0
    with rasterio.open(tmp_path / "a" / "mask.tif") as a, rasterio.open(tmp_path / "b" / "mask.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
    assert "Processed in tiles of 40 px" in (tmp_path / "a" / "reply.md").read_text(encoding="utf-8")


def test_tiles_on_a_dask_cluster_give_the_one_process_result(data_dir: Path) -> None:
    from functools import partial

    from dask.distributed import Client, LocalCluster

    from spex.pipeline.tiles import dask_tile_map

    paths = [data_dir / f for f in VIRGINIA]
    with open_scene(paths) as scene:
        request = _request(scene, "extract the water bodies and the forest")
        local = extract_streamed(scene, request, tile_size=64)
        with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            spread = extract_streamed(scene, request, tile_size=64, opener=partial(open_scene, paths),
                                      map_tiles=dask_tile_map(client))
    np.testing.assert_array_equal(spread.mask, local.mask)
    np.testing.assert_array_equal(spread.class_map, local.class_map)
    assert spread.regions == local.regions


def test_cli_rejects_a_cluster_without_streaming(data_dir: Path, tmp_path: Path, capsys) -> None:
    paths = [str(data_dir / f) for f in VIRGINIA]
    assert spex_main(["extract", *paths, "--query", "water", "--out", str(tmp_path), "--stream", "off",
                      "--workers", "2"]) == 2
    assert "needs the streamed extraction" in capsys.readouterr().err


def test_cli_splits_one_scene_over_local_workers(data_dir: Path, tmp_path: Path, capsys) -> None:
    paths = [str(data_dir / f) for f in VIRGINIA]
    assert spex_main(["extract", *paths, "--query", "water bodies", "--out", str(tmp_path / "a"), "--workers", "1",
                      "--tile-size", "100"]) == 0
    assert "Dask dashboard" in capsys.readouterr().err
    assert spex_main(["extract", *paths, "--query", "water bodies", "--out", str(tmp_path / "b"), "--stream",
                      "off"]) == 0
    with rasterio.open(tmp_path / "a" / "mask.tif") as a, rasterio.open(tmp_path / "b" / "mask.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_chat_streams_large_scenes_with_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app extracts scenes over the streaming size tile by tile (bounded memory), same regions as whole."""
    from synthetic_water import write_scene

    import spex.engine.streamed as streamed
    from chat_app.dialogue import Dialogue, default_services

    def water_reply(work: str) -> str:
        dialogue = Dialogue(default_services(), work_dir=tmp_path / work)
        state = dialogue.respond(dialogue.new_state(work), "", [write_scene(tmp_path / f"{work}.tif")])
        state = dialogue.respond(state, "extract the water bodies")
        assert state.extraction is not None, state.entries[-1].text
        return state.entries[-1].text

    whole = water_reply("whole")
    monkeypatch.setattr(streamed, "STREAM_MIN_PIXELS", 0)  # the synthetic coast counts as a large scene
    tiled = water_reply("tiled")
    assert "Processed in tiles of 1024 px" in tiled and "Processed in tiles" not in whole
    found = re.compile(r"Found \d+ regions? of water bodies[^\n]*")
    assert found.search(tiled).group(0) == found.search(whole).group(0)
