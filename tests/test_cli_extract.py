"""``python -m spex extract`` end to end (subprocess) on a tests/data crop."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import rasterio
from helpers import ROOT, VIRGINIA, run_spex


def _run(*args: str) -> subprocess.CompletedProcess:
    return run_spex("extract", *args, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_extract_writes_four_files(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run(*(str(data_dir / f) for f in VIRGINIA), "--query", "water bodies larger than 1 ha", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for name in ("mask.tif", "regions.geojson", "regions.gpkg", "overlay.png", "reply.md"):
        assert (out / name).stat().st_size > 0, name
    reply = (out / "reply.md").read_text(encoding="utf-8")
    assert "Found" in reply and reply.strip() in proc.stdout
    with rasterio.open(out / "mask.tif") as ds:
        mask = ds.read(1)
        assert ds.crs is not None and mask.shape == (200, 200)
    features = json.loads((out / "regions.geojson").read_text())["features"]
    assert f"Found {len(features)} region" in reply


def test_bad_query_is_one_line_and_nonzero(data_dir: Path, tmp_path: Path) -> None:
    proc = _run(str(data_dir / "l7_olinda_crop.tif"), "--query", "make it pretty", "--out", str(tmp_path / "o"))
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "query" in lines[0]
    assert not (tmp_path / "o" / "mask.tif").exists()


def test_bad_input_file_is_one_line_and_nonzero(tmp_path: Path) -> None:
    bogus = tmp_path / "not_a_raster.tif"
    bogus.write_text("hello")
    proc = _run(str(bogus), "--query", "water", "--out", str(tmp_path / "o"))
    assert proc.returncode != 0
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) == 1


def test_missing_bands_for_class(data_dir: Path, tmp_path: Path) -> None:
    proc = _run(str(data_dir / "solaris_ms1_BGRN_uint16.tif"), "--query", "snow", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "swir1" in proc.stderr and proc.stderr.count("error:") == 1


def test_spex_backend_bad_llm_is_a_clear_error(data_dir: Path, tmp_path: Path) -> None:
    # --backend spex without --model runs the LLM reader + explanation (issue 8); a bad --llm fails fast
    proc = _run(str(data_dir / "l7_olinda_crop.tif"), "--query", "water", "--out", str(tmp_path / "o"),
                "--backend", "spex", "--llm", str(tmp_path / "missing.gguf"))
    assert proc.returncode == 2 and "--llm" in proc.stderr
