"""``python -m spex info`` end to end (subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VA = ("s2l1c_virginia_small_10m_B02-B03-B04-B08.tif", "s2l1c_virginia_small_20m_B05-B06-B07-B8A-B11-B12.tif",
      "s2l1c_virginia_small_60m_B01-B09-B10.tif")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spex", "info", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


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
