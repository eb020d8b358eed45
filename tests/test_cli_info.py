"""``python -m spex info`` end to end (subprocess)."""

from __future__ import annotations

import subprocess

from helpers import VIRGINIA as VA
from helpers import run_spex


def run(*args: str) -> subprocess.CompletedProcess:
    return run_spex("info", *args)


def test_info_multi_file_scene(data_dir):
    res = run(*(str(data_dir / f) for f in VA))
    assert res.returncode == 0, res.stderr
    assert "Sensor: Sentinel-2 L1C" in res.stdout
    assert "13 bands" in res.stdout and "swir2" in res.stdout and "10.00 x 10.00 m" in res.stdout


def test_info_bands_override_and_relative_warning(data_dir):
    res = run(str(data_dir / "l7_olinda_crop.tif"), "--bands", "blue,green,red,nir,skip,swir2")
    assert res.returncode == 0, res.stderr
    assert "swir1" not in res.stdout and "swir2" in res.stdout
    assert "warning:" in res.stderr and "relative" in res.stderr


def test_info_bad_input_is_one_line_exit_2(tmp_path, data_dir):
    bad = tmp_path / "notes.tif"
    bad.write_text("hello")
    for args in ([str(bad)], [str(tmp_path / "missing.tif")], [str(data_dir / "eolearn_lulc.tif")],
                 [str(data_dir / VA[0]), "--bands", "red,green"]):
        res = run(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
        assert "Traceback" not in res.stderr
