"""Batch extraction on a 1-worker Dask LocalCluster: masks equal single extract runs, failures, reruns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from helpers import VIRGINIA

from spex.cli import main as spex_main
from spex.errors import SpexError
from spex.pipeline import DONE_MARKER, BatchOptions, expand_scenes, run_batch
from spex.pipeline.summary import SUMMARY_LAYER, write_summary_gpkg

distributed = pytest.importorskip("dask.distributed")

QUERY = "extract the water bodies"


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
        with distributed.Client(cl) as c:
            yield c


@pytest.fixture()
def scene_list(data_dir: Path, tmp_path: Path) -> Path:
    """A list file: the three Virginia band files on one line, the Olinda crop, and a corrupt 'raster'."""
    bad = tmp_path / "broken.tif"
    bad.write_text("not a raster at all\n")
    listing = tmp_path / "scenes.txt"
    listing.write_text("# scenes of the batch test\n"
                       + ", ".join(str(data_dir / f) for f in VIRGINIA) + "\n"
                       + f"{data_dir / 'l7_olinda_crop.tif'}   # Landsat 7\n"
                       + "broken.tif\n")  # relative: resolved against the list's folder
    return listing


def _mask(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_expand_scenes_list_glob_and_comma_sets(scene_list: Path, data_dir: Path) -> None:
    scenes = expand_scenes([str(scene_list)])
    assert [len(s.paths) for s in scenes] == [3, 1, 1]
    assert scenes[0].name == "s2l1c_virginia_small" and scenes[1].name == "l7_olinda_crop"
    assert scenes[2].paths == (str(scene_list.parent / "broken.tif"),)
    globbed = expand_scenes([str(data_dir / "s2l1c_virginia_small_*m_*.tif")])
    assert len(globbed) == 3 and len({s.name for s in globbed}) == 3
    joined = expand_scenes([",".join(str(data_dir / f) for f in VIRGINIA), str(data_dir / "l7_olinda_crop.tif"),
                            str(data_dir / "l7_olinda_crop.tif")])
    assert [s.name for s in joined] == ["s2l1c_virginia_small", "l7_olinda_crop", "l7_olinda_crop-2"]
    with pytest.raises(SpexError, match="no file matches"):
        expand_scenes([str(data_dir / "nothing_*.tif")])


def test_batch_masks_equal_single_extract_failure_reported_rerun_skips(client, scene_list: Path, tmp_path: Path
                                                                      ) -> None:
    scenes = expand_scenes([str(scene_list)])
    out = tmp_path / "batch"
    rows = run_batch(client, scenes, BatchOptions(query=QUERY), out)
    assert [r.status for r in rows] == ["done", "done", "failed"]
    bad = rows[2]
    assert "broken.tif" in bad.error or "raster" in bad.error.lower()
    assert not (out / bad.name / DONE_MARKER).exists()

    for scene, row in zip(scenes[:2], rows[:2], strict=True):
        single = tmp_path / f"single-{scene.name}"
        assert spex_main(["extract", *scene.paths, "--query", QUERY, "--out", str(single)]) == 0
        batch_dir = out / scene.name
        names = sorted(p.name for p in single.iterdir())
        assert names == sorted(p.name for p in batch_dir.iterdir() if p.name != DONE_MARKER)
        np.testing.assert_array_equal(_mask(batch_dir / "mask.tif"), _mask(single / "mask.tif"))
        assert (batch_dir / "reply.md").read_text() == (single / "reply.md").read_text()
        features = json.loads((single / "regions.geojson").read_text())["features"]
        assert row.regions == len(features)
        assert row.footprint_wkt.startswith("POLYGON") and row.crs and row.seconds > 0
        assert row.area_ha["water"] == pytest.approx(row.selected_ha)
        assert row.selected_ha == pytest.approx(sum(f["properties"]["area_ha"] for f in features), rel=1e-6)

    gpkg = write_summary_gpkg(rows, tmp_path / "summary.gpkg")
    info = pyogrio.read_info(gpkg, layer=SUMMARY_LAYER)
    assert info["features"] == 3 and "area_ha_water" in list(info["fields"])
    table = pyogrio.read_dataframe(gpkg, layer=SUMMARY_LAYER) if _has_geopandas() else None
    if table is not None:
        assert list(table["status"]) == ["done", "done", "failed"]

    mtime = (out / scenes[0].name / "mask.tif").stat().st_mtime_ns
    again = run_batch(client, scenes, BatchOptions(query=QUERY), out)
    assert [r.status for r in again] == ["skipped", "skipped", "failed"]
    assert again[0].regions == rows[0].regions
    assert (out / scenes[0].name / "mask.tif").stat().st_mtime_ns == mtime
    changed = run_batch(client, scenes[:1], BatchOptions(query="extract the vegetation"), out)
    assert changed[0].status == "done"  # another query is not "already done"


def _has_geopandas() -> bool:
    try:
        import geopandas  # noqa: F401
    except ImportError:
        return False
    return True


def test_batch_cli_in_process(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    argv = ["batch", str(data_dir / "l7_olinda_crop.tif"), str(tmp_path / "missing.tif"), "--query", QUERY,
            "--out", str(out), "--workers", "1", "--in-process"]
    assert spex_main(argv) == 1  # one scene failed, the other was done
    captured = capsys.readouterr()
    assert "Dask dashboard" in captured.err and "missing" in captured.out
    assert (out / "l7_olinda_crop" / "mask.tif").exists() and (out / "summary.gpkg").exists()
    lines = (out / "summary.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("scene,status,error")
