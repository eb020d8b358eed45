"""SPIE dataset builder: scene + labels (or engine pseudo-labels) -> LLaVA-style records.

Each scene is tiled into square chips. For every chip and class a record holds

* the chip as float32 reflectance ``.npy`` (``(bands, chip, chip)``, NaN = invalid) with
  the canonical band names recorded beside it,
* the target mask as a ``.png`` (0 = not the class, 1 = the class, 255 = ignore: unlabelled,
  invalid or cloudy pixels, padding), so sparse polygon labels only supervise labelled pixels,
* a two-turn conversation: the human turn is ``"<image>\\n"`` plus either a plain request or
  the SPIE prompt whose attributes are measured on the **spectral engine's** mask (never on
  labels), the gpt turn is a templated description of the target regions.

Label codes 0 and the raster's nodata are "unlabelled" (ignored). Labels are warped onto the
scene grid by georeference (nearest), never matched by array index.
"""

from __future__ import annotations

import json
import logging
import random
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from spex.engine.request import TARGETS, ExtractionRequest
from spex.errors import BandError, SpexError
from spex.spie.templates import answer_text, class_words, instruction_plain

__all__ = [
    "IGNORE", "PROMPT_INDICES", "ClassMap", "BuildOptions", "BuildSummary",
    "build_scene", "chip_windows", "read_labels", "load_records",
]

logger = logging.getLogger(__name__)

#: Mask value for pixels that carry no supervision.
IGNORE = 255
#: Indices whose region means are attached to the regions (when the bands exist).
PROMPT_INDICES: tuple[str, ...] = ("NDVI", "NDWI", "MNDWI", "NDBI")


@dataclass(frozen=True)
class ClassMap:
    """Label codes per target class, e.g. ``{"water": (1,), "vegetation": (1, 2, 3)}``."""

    codes: Mapping[str, tuple[int, ...]]

    def __post_init__(self) -> None:
        for target, codes in self.codes.items():
            if target not in TARGETS:
                raise ValueError(f"unknown class {target!r}; supported: {', '.join(TARGETS)}")
            if not codes or any(c <= 0 for c in codes):
                raise ValueError(f"class {target!r} needs label codes > 0 (0 means unlabelled), got {codes}")

    @classmethod
    def parse(cls, text: str) -> ClassMap:
        """Parse ``"1=water,2=forest,2+3+4=vegetation"`` (codes joined by '+')."""
        codes: dict[str, tuple[int, ...]] = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            left, sep, right = (p.strip() for p in item.partition("="))
            if not sep:
                raise ValueError(f"bad class mapping {item!r}; expected CODE=NAME, e.g. 1=water or 2+3=vegetation")
            if not left.replace("+", "").isdigit() and right.replace("+", "").isdigit():
                left, right = right, left  # NAME=CODES accepted too
            try:
                values = tuple(int(v) for v in left.split("+"))
            except ValueError:
                raise ValueError(f"bad label codes in {item!r}; expected integers joined by '+'") from None
            name = right.strip().lower()
            codes[name] = tuple(sorted(set(codes.get(name, ()) + values)))
        if not codes:
            raise ValueError("no class mapping given; expected e.g. 1=water,2=forest")
        return cls(codes)


@dataclass(frozen=True)
class BuildOptions:
    """How a scene is tiled and how many records each chip yields."""

    chip: int = 64
    stride: int | None = None          # None = chip (no overlap)
    variants: int = 2                  # records per (chip, class) when the class is present
    negative_rate: float = 0.35        # chance of one record for a class absent from a chip
    min_labelled: int = 32             # records need this many supervised pixels
    min_valid_fraction: float = 0.5    # chips with fewer valid pixels are skipped
    prompt_regions: int = 3            # regions listed in a SPIE prompt (the release lists up to 10)
    pseudo_targets: tuple[str, ...] = ("water", "vegetation", "built", "bare")
    seed: int = 0
    split: str = "train"

    def __post_init__(self) -> None:
        if self.chip < 16:
            raise ValueError(f"chip must be >= 16 px, got {self.chip}")
        if self.stride is not None and not 1 <= self.stride <= self.chip:
            raise ValueError(f"stride must be in 1..chip ({self.chip}), got {self.stride}")
        unknown = [t for t in self.pseudo_targets if t not in TARGETS]
        if unknown:
            raise ValueError(f"unknown pseudo-label classes {unknown}; supported: {', '.join(TARGETS)}")


@dataclass
class BuildSummary:
    """Counts of what one build wrote (per class: records, records with the class present, pixels)."""

    scene: str
    sensor: str
    pseudo: bool
    chips: int = 0
    records: int = 0
    records_per_class: dict[str, int] = field(default_factory=dict)
    positive_records_per_class: dict[str, int] = field(default_factory=dict)
    positive_pixels_per_class: dict[str, int] = field(default_factory=dict)
    records_file: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def chip_windows(height: int, width: int, chip: int, stride: int) -> list[Window]:
    """Windows of ``chip`` px covering the whole grid; the last row/column is flush with the edge.

    Grids smaller than ``chip`` give one window of the grid's size (padded by the caller).
    """
    def starts(n: int) -> list[int]:
        if n <= chip:
            return [0]
        s = list(range(0, n - chip + 1, stride))
        if s[-1] != n - chip:
            if len(s) > 1 and n - chip - s[-1] < stride // 2:
                s[-1] = n - chip  # avoid a near-duplicate last window
            else:
                s.append(n - chip)
        return s

    return [Window(c, r, min(chip, width), min(chip, height)) for r in starts(height) for c in starts(width)]


def read_labels(path: str | Path, scene) -> np.ndarray:
    """Label codes warped onto the scene grid (nearest); int32, 0 where unlabelled/outside."""
    path = Path(path)
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise SpexError(f"cannot read label raster {path}: {exc}") from exc
    with src:
        data = src.read(1).astype(np.int32)
        if src.nodata is not None:
            data[data == int(src.nodata)] = 0
        out = np.zeros((scene.height, scene.width), dtype=np.int32)
        if src.crs is None or scene.crs is None:
            if data.shape != out.shape:
                raise SpexError(f"label raster {path.name} has no georeference and its size {data.shape} "
                                f"differs from the scene's {out.shape}; give a georeferenced label raster")
            return data
        reproject(source=data, destination=out, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=scene.transform, dst_crs=scene.crs, src_nodata=0, dst_nodata=0,
                  resampling=Resampling.nearest)
    return out


def _scene_id(paths: Sequence[Path]) -> str:
    stem = paths[0].stem if len(paths) == 1 else paths[0].parent.name + "_" + paths[0].stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


def _pad(array: np.ndarray, size: int, fill: float) -> np.ndarray:
    """Pad the last two axes to ``size`` (bottom/right) with ``fill``."""
    h, w = array.shape[-2:]
    if h == size and w == size:
        return array
    pad = [(0, 0)] * (array.ndim - 2) + [(0, size - h), (0, size - w)]
    return np.pad(array, pad, constant_values=fill)


def _engine_masks(scene, cache, targets: Sequence[str]) -> dict[str, np.ndarray]:
    """The spectral engine's mask per target on the whole scene (thresholds are scene-adaptive)."""
    from spex.engine.extract import extract  # late: the engine imports spie

    masks: dict[str, np.ndarray] = {}
    for target in targets:
        try:
            masks[target] = extract(scene, ExtractionRequest(targets=(target,)), cache).mask
        except (BandError, SpexError) as exc:
            logger.info("engine cannot extract %s on %s: %s", target, scene.sensor, exc)
    return masks


def _target_masks(labels: np.ndarray | None, classes: ClassMap | None, engine: Mapping[str, np.ndarray],
                  valid: np.ndarray, cloud: np.ndarray | None, pseudo: bool) -> dict[str, np.ndarray]:
    """uint8 masks 0/1/IGNORE per target, from labels or (pseudo) from the engine."""
    out: dict[str, np.ndarray] = {}
    if pseudo:
        for target, mask in engine.items():
            m = mask.astype(np.uint8)
            m[~valid] = IGNORE
            out[target] = m
        return out
    assert labels is not None and classes is not None
    unlabelled = (labels <= 0) | ~valid
    for target, codes in classes.codes.items():
        m = np.isin(labels, codes).astype(np.uint8)
        ignore = unlabelled if (cloud is None or target == "cloud") else (unlabelled | cloud)
        m[ignore] = IGNORE
        out[target] = m
    return out


def build_scene(paths: str | Path | Sequence[str | Path], out_dir: str | Path, *,
                labels: str | Path | None = None, classes: ClassMap | None = None,
                pseudo: bool = False, mtl: str | Path | None = None, bands: Sequence[str] | None = None,
                options: BuildOptions | None = None) -> BuildSummary:
    """Tile one scene into SPIE records under ``out_dir`` and return the counts.

    Either ``labels`` + ``classes`` (supervised) or ``pseudo=True`` (targets from the
    spectral engine, records flagged ``"pseudo": true``) must be given. Files written:
    ``chips/*.npy``, ``masks/*.png``, ``records/<scene>.json`` (a JSON list), and the
    summary in ``records/<scene>.summary.json``.
    """
    from spex.io import open_scene
    from spex.spectral import IndexCache, available_indices
    from spex.spie import describe_regions, spie_prompt

    opts = options or BuildOptions()
    if pseudo == (labels is not None):
        raise ValueError("give either labels (with classes) or pseudo=True, not both or neither")
    if labels is not None and classes is None:
        raise ValueError("labels need a class mapping, e.g. 1=water,2=forest")
    path_list = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    out = Path(out_dir)
    for sub in ("chips", "masks", "records"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    sid = _scene_id(path_list)
    rng = random.Random(opts.seed * 1_000_003 + zlib.crc32(sid.encode()))
    stride = opts.stride or opts.chip

    with open_scene(path_list if len(path_list) > 1 else path_list[0], mtl=mtl, bands=bands) as scene:
        cache = IndexCache(scene)
        valid = cache.valid()
        try:
            cloud = cache.cloud()
        except (BandError, SpexError):
            cloud = None
        targets = list(opts.pseudo_targets) if pseudo else list(classes.codes)  # type: ignore[union-attr]
        engine = _engine_masks(scene, cache, targets)
        label_arr = None if labels is None else read_labels(labels, scene)
        tmasks = _target_masks(label_arr, classes, engine, valid, cloud, pseudo)
        index_maps = {n: cache.index(n) for n in PROMPT_INDICES if n in set(available_indices(scene.band_names))}
        area = float(scene.pixel_area_m2)
        summary = BuildSummary(scene=sid, sensor=scene.sensor, pseudo=pseudo)
        records: list[dict] = []
        for win in chip_windows(scene.height, scene.width, opts.chip, stride):
            sl = win.toslices()
            if valid[sl].mean() < opts.min_valid_fraction:
                continue
            chip_name = f"{sid}_r{win.row_off}_c{win.col_off}"
            chip_written = False
            crops = {n: _pad(a[sl], opts.chip, np.nan) for n, a in index_maps.items()}
            for target, full in tmasks.items():
                tm = _pad(full[sl], opts.chip, IGNORE)
                supervised = int((tm != IGNORE).sum())
                if supervised < opts.min_labelled:
                    continue
                pos = tm == 1
                n_pos = int(pos.sum())
                if n_pos == 0 and rng.random() >= opts.negative_rate:
                    continue
                if not chip_written:
                    chip = _pad(scene.read(window=win), opts.chip, np.nan).astype(np.float32)
                    np.save(out / "chips" / f"{chip_name}.npy", chip)
                    chip_written = True
                    summary.chips += 1
                mask_rel = f"masks/{chip_name}_{target}.png"
                Image.fromarray(tm).save(out / mask_rel)
                answer_regions = describe_regions(pos, pixel_area_m2=area, index_maps=crops) if n_pos else []
                eng = engine.get(target)
                eng_regions = None
                if eng is not None:
                    em = _pad(eng[sl] & valid[sl], opts.chip, False)
                    eng_regions = describe_regions(em, pixel_area_m2=area, index_maps=crops) if em.any() else []
                spie_first = rng.random() < 0.5
                for k in range(opts.variants if n_pos else 1):
                    use_spie = eng_regions is not None and (k % 2 == 0) == spie_first
                    if use_spie:
                        question = spie_prompt(class_words(target), eng_regions, top_n=opts.prompt_regions)
                    else:
                        question = instruction_plain(target, rng)
                    answer = answer_text(target, answer_regions, n_pos / supervised, rng)
                    records.append({
                        "id": f"{chip_name}_{target}_{k}",
                        "image": f"chips/{chip_name}.npy",
                        "bands": list(scene.band_names),
                        "mask": mask_rel,
                        "ignore_value": IGNORE,
                        "conversations": [
                            {"from": "human", "value": "<image>\n" + question},
                            {"from": "gpt", "value": answer},
                        ],
                        "class": target,
                        "instruction": "spie" if use_spie else "plain",
                        "source": ",".join(p.name for p in path_list),
                        "sensor": scene.sensor,
                        "calibrated": bool(scene.calibrated),
                        "pseudo": pseudo,
                        "split": opts.split,
                        "window": [int(win.row_off), int(win.col_off), int(win.height), int(win.width)],
                        "pixel_area_m2": area,
                        "supervised_pixels": supervised,
                        "positive_pixels": n_pos,
                    })
                    summary.records += 1
                    summary.records_per_class[target] = summary.records_per_class.get(target, 0) + 1
                    if n_pos:
                        summary.positive_records_per_class[target] = (
                            summary.positive_records_per_class.get(target, 0) + 1)
                if n_pos:
                    summary.positive_pixels_per_class[target] = (
                        summary.positive_pixels_per_class.get(target, 0) + n_pos)
    rec_path = out / "records" / f"{sid}.json"
    rec_path.write_text(json.dumps(records, indent=1))
    summary.records_file = str(rec_path.relative_to(out))
    (out / "records" / f"{sid}.summary.json").write_text(json.dumps(summary.to_dict(), indent=1))
    logger.info("%s: %d chips, %d records %s", sid, summary.chips, summary.records, summary.records_per_class)
    return summary


def load_records(data_dir: str | Path, splits: Sequence[str] | None = None) -> list[dict]:
    """All records of a dataset folder (every ``records/*.json`` except summaries), optionally by split."""
    root = Path(data_dir)
    files = sorted(p for p in (root / "records").glob("*.json") if not p.name.endswith(".summary.json"))
    if not files:
        raise SpexError(f"no SPIE records in {root / 'records'}; build them with `python -m spex spie build`")
    records: list[dict] = []
    for f in files:
        records.extend(r for r in json.loads(f.read_text()) if splits is None or r.get("split") in splits)
    return records
