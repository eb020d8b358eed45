"""The GeoPackage writer's pyogrio is imported without pandas (spex.export.ogr), which stays importable."""

from __future__ import annotations

import subprocess
import sys


def test_pyogrio_is_imported_without_pandas_and_pandas_still_imports() -> None:
    code = (
        "import sys\n"
        "from spex.export.ogr import pyogrio_raw\n"
        "raw = pyogrio_raw()\n"
        "assert hasattr(raw, 'write') and 'pandas' not in sys.modules and 'pyogrio' in sys.modules\n"
        "assert pyogrio_raw() is raw\n"
        "import pandas\n"
        "assert pandas.DataFrame({'a': [1]}).shape == (1, 1)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
