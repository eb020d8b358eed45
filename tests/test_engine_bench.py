"""Benchmark helpers (the benchmark itself reads /work/shared and is not run here)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from spex.bench.accuracy import Row, format_table, iou, run_accuracy
from spex.errors import SpexError


def test_iou_inside_labelled_pixels_only() -> None:
    pred = np.array([[1, 1, 0, 0]], dtype=bool)
    gt = np.array([[1, 0, 0, 1]], dtype=bool)
    labelled = np.array([[1, 1, 1, 0]], dtype=bool)  # the last pixel is unlabelled: ignored
    assert iou(pred, gt, labelled) == pytest.approx(0.5)
    assert math.isnan(iou(np.zeros_like(pred), np.zeros_like(gt), labelled))


def test_format_table_flags_goals() -> None:
    rows = [Row("s", "water", "IoU", 0.97, 0.7, 10, goal=0.95), Row("s", "built", "IoU", 0.5, 0.6, 5, goal=0.85)]
    text = format_table(rows)
    assert " ok" in text.splitlines()[2] and "MISSED" in text.splitlines()[3]


def test_missing_data_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpexError, match="SPEX_DATA"):
        run_accuracy(tmp_path / "nope")


def test_water_label_note_counts_water_covered_pixels_of_other_classes(tmp_path: Path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    from spex.bench.accuracy import _water_label_note
    from spex.io import open_scene
    from spex.spectral import IndexCache

    cube = np.full((2, 4, 4), 0.3, dtype=np.float32)  # nir, swir1: dry land
    cube[1, 0, :2] = 0.02                              # two SWIR-dark (water-covered) pixels
    path = tmp_path / "s.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=2, dtype="float32",
                       crs="EPSG:32633", transform=from_origin(0, 40, 10, 10)) as ds:
        ds.write(cube)
    gt = np.zeros((4, 4), dtype=bool)
    gt[3] = True                                       # 4 labelled water pixels
    labelled = np.ones((4, 4), dtype=bool)
    pred = gt.copy()
    pred[0, :3] = True                                 # 3 false positives, 2 of them water-covered
    with open_scene(path, bands=["nir", "swir1"]) as scene:
        note = _water_label_note(IndexCache(scene), pred, gt, labelled)
    assert note.startswith("2 px") and note.endswith(f"{4 / 6:.3f}")
