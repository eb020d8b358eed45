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
