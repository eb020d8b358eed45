"""SPIE builder: records, chips, masks, ignore pixels, no label leakage, template variety, CLI."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from spex.cli import main
from spex.spie.builder import IGNORE, BuildOptions, ClassMap, build_scene, chip_windows, load_records
from spex.spie.templates import PLAIN_TEMPLATES

EOLEARN = "eolearn_s2l1c_2015-07-11_13band.tif"
LULC = "eolearn_lulc.tif"
CLASSES = "2=forest,3=grass,8=built,1+2+3+4=vegetation"


def _relabel(src: Path, dst: Path, fn) -> Path:
    with rasterio.open(src) as ds:
        profile, data = ds.profile, ds.read(1)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(fn(data).astype(data.dtype), 1)
    return dst


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("spie")
    summary = build_scene(data_dir / EOLEARN, out, labels=data_dir / LULC, classes=ClassMap.parse(CLASSES),
                          options=BuildOptions(chip=64, stride=36, seed=3))
    return out, summary, load_records(out)


def test_records_schema_and_files(built):
    out, summary, records = built
    assert summary.records == len(records) > 0
    assert set(summary.records_per_class) == {"forest", "grass", "built", "vegetation"}
    for r in records:
        assert set(r) >= {"id", "image", "bands", "mask", "conversations", "class", "source", "pseudo", "ignore_value"}
        assert r["pseudo"] is False and r["split"] == "train"
        human, gpt = r["conversations"]
        assert human["from"] == "human" and human["value"].startswith("<image>\n")
        assert gpt["from"] == "gpt" and gpt["value"]
        chip = np.load(out / r["image"])
        assert chip.dtype == np.float32 and chip.shape == (len(r["bands"]), 64, 64)
        assert r["bands"][:4] == ["coastal", "blue", "green", "red"]
        mask = np.asarray(Image.open(out / r["mask"]))
        assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 1, IGNORE}
        assert int((mask == 1).sum()) == r["positive_pixels"]
        assert int((mask != IGNORE).sum()) == r["supervised_pixels"]
    assert len({r["id"] for r in records}) == len(records)


def test_answers_follow_the_labels(built, data_dir):
    out, _, records = built
    with rasterio.open(data_dir / LULC) as ds:
        lulc = ds.read(1)
    r = next(r for r in records if r["class"] == "forest" and r["positive_pixels"])
    row, col, h, w = r["window"]
    truth = lulc[row:row + h, col:col + w] == 2
    mask = np.asarray(Image.open(out / r["mask"]))[:h, :w]
    labelled = lulc[row:row + h, col:col + w] > 0
    assert np.array_equal((mask == 1)[labelled], truth[labelled])
    assert r["conversations"][1]["value"].lower().startswith(("forest", "mask of the forest"))


def test_instructions_do_not_leak_labels(built, data_dir, tmp_path):
    """Relabelling every forest pixel as grass changes answers and masks, never an instruction's attributes."""
    out, _, records = built
    fake = _relabel(data_dir / LULC, tmp_path / "fake.tif", lambda a: np.where(a == 2, 3, a))
    out2 = tmp_path / "spie2"
    build_scene(data_dir / EOLEARN, out2, labels=fake, classes=ClassMap.parse(CLASSES),
                options=BuildOptions(chip=64, stride=36, seed=3))
    other = load_records(out2)
    spie_a = {(r["image"], r["class"]): r["conversations"][0]["value"].split(":", 1)[1]
              for r in records if r["instruction"] == "spie"}
    spie_b = {(r["image"], r["class"]): r["conversations"][0]["value"].split(":", 1)[1]
              for r in other if r["instruction"] == "spie"}
    common = set(spie_a) & set(spie_b)
    assert common
    assert all(spie_a[k] == spie_b[k] for k in common)
    answers_a = {r["id"]: r["conversations"][1]["value"] for r in records if r["class"] == "forest"}
    answers_b = {r["id"]: r["conversations"][1]["value"] for r in other if r["class"] == "forest"}
    assert any(answers_a[k] != answers_b.get(k) for k in answers_a)
    for r in records:  # plain requests carry no numbers at all
        if r["instruction"] == "plain":
            assert not re.search(r"\d", r["conversations"][0]["value"])


def test_spie_prompt_is_parsable_and_templates_vary(built):
    _, _, records = built
    spie = [r for r in records if r["instruction"] == "spie"]
    plain = [r for r in records if r["instruction"] == "plain"]
    assert spie and plain
    for r in spie:
        text = r["conversations"][0]["value"]
        assert "Based on the provided image and the attributes of the" in text
        attrs = ast.literal_eval(text.split("please provide a detailed description of them:", 1)[1])
        assert isinstance(attrs, list) and len(attrs) <= 3
        assert all(set(a) == {"Size of area", "Centroid", "Location", "Bounding box"} for a in attrs)
    questions = {r["conversations"][0]["value"] for r in plain}
    assert len(questions) >= 5
    used = {t for t in PLAIN_TEMPLATES for q in questions if q[len("<image>\n"):].lower().startswith(
        t.split("{c}")[0].lower()) and t.split("{c}")[0]}
    assert len(used) >= 3
    assert len({r["conversations"][1]["value"].split(":")[0] for r in records}) >= 4


def test_sparse_labels_are_ignored_not_negative(data_dir, tmp_path):
    """Only a 20x20 labelled block: everything else must be IGNORE, never background."""
    def sparse(a):
        b = np.zeros_like(a)
        b[10:30, 10:30] = a[10:30, 10:30]
        return b
    labels = _relabel(data_dir / LULC, tmp_path / "sparse.tif", sparse)
    out = tmp_path / "sp"
    summary = build_scene(data_dir / EOLEARN, out, labels=labels, classes=ClassMap.parse("2=forest,3=grass"),
                          options=BuildOptions(chip=64, stride=36, min_labelled=16))
    recs = load_records(out)
    assert summary.records == len(recs) > 0
    for r in recs:
        mask = np.asarray(Image.open(out / r["mask"]))
        assert r["supervised_pixels"] <= 400
        assert (mask == IGNORE).sum() >= 64 * 64 - 400


def test_pseudo_mode_flags_records(data_dir, tmp_path):
    out = tmp_path / "pseudo"
    summary = build_scene(data_dir / "l7_olinda_crop.tif", out, pseudo=True,
                          options=BuildOptions(chip=64, pseudo_targets=("water", "vegetation")))
    recs = load_records(out)
    assert summary.pseudo and recs
    assert all(r["pseudo"] is True for r in recs)
    assert {r["class"] for r in recs} <= {"water", "vegetation"}
    assert "water" in summary.positive_records_per_class  # the crop has ocean in the east


def test_class_map_and_windows():
    assert ClassMap.parse("1=water, 2+3=vegetation,forest=2").codes == {
        "water": (1,), "vegetation": (2, 3), "forest": (2,)}
    for bad in ("", "1=lava", "water", "0=water", "x=water"):
        with pytest.raises(ValueError):
            ClassMap.parse(bad)
    wins = chip_windows(101, 100, 64, 36)
    assert {(w.row_off, w.col_off) for w in wins} == {(0, 0), (0, 36), (37, 0), (37, 36)}
    assert chip_windows(40, 30, 64, 64)[0].height == 40
    cover = np.zeros((247, 237), bool)
    for w in chip_windows(247, 237, 64, 48):
        cover[w.toslices()] = True
    assert cover.all()


def test_cli_spie_build_end_to_end(data_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["spie", "build", "--scene", str(data_dir / EOLEARN), "--labels", str(data_dir / LULC),
                 "--classes", "2=forest,8=built", "--out", str(out), "--chip", "64", "--stride", "36"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"] == len(load_records(out)) > 0
    assert (out / "records" / f"{Path(EOLEARN).stem}.summary.json").exists()
    assert main(["spie", "build", "--scene", str(data_dir / EOLEARN), "--out", str(out)]) == 2
    assert main(["spie", "build", "--scene", str(data_dir / EOLEARN), "--labels", str(data_dir / LULC),
                 "--classes", "2=lava", "--out", str(out)]) == 2
