"""Opening a scene: files checked, bands identified, scaled, co-registered, quality files decoded.

Why a module of its own: :class:`spex.io.scene.Scene` is the lazy reader; everything decided once,
when the files are first opened (identification sample, fill rules, scaling plan, grid alignment),
lives here, so each part stays small and testable.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError

from spex.errors import NotGeoreferencedWarning, RelativeScalingWarning, SceneReadError
from spex.io.coregister import GridSpec, align, check_overlap, reference_index
from spex.io.decimate import can_decimate_by_blocks, decimated_read
from spex.io.files import sort_scene_files
from spex.io.identify import FileMeta, Identification, identify_bands
from spex.io.mtl import MtlFile, find_mtl, read_mtl
from spex.io.quality import read_quality
from spex.io.scaling import BandScaling, BandStats, band_stats, plan_scaling
from spex.io.validate import check_dtype, check_size, expand_paths, is_georeferenced, open_raster

from spex.io.scene import ATMOSPHERIC_BANDS, SAMPLE_SIZE, Scene, _BandSource

__all__ = ["open_scene"]

log = logging.getLogger("spex.io.scene")


def _allzero_fill(ds: rasterio.io.DatasetReader) -> bool:
    """Integer files without a nodata value: pixels that are 0 in every band are padding."""
    return ds.nodata is None and ds.count > 1 and np.issubdtype(np.dtype(ds.dtypes[0]), np.integer)


def _sample(ds: rasterio.io.DatasetReader, zero_fill: bool = False) -> np.ndarray:
    """Decimated float32 (count, h, w) copy of ``ds`` with NaN where invalid (native grid)."""
    f = max(1, math.ceil(max(ds.width, ds.height) / SAMPLE_SIZE))
    shape = (ds.count, max(1, ds.height // f), max(1, ds.width // f))
    try:
        if f > 1 and can_decimate_by_blocks(ds):
            arr = decimated_read(ds, list(range(1, ds.count + 1)), shape[1:]).astype(np.float32)
        else:
            arr = ds.read(out_shape=shape).astype(np.float32)
        flags = ds.mask_flag_enums
        if any(MaskFlags.per_dataset in fl or MaskFlags.alpha in fl for fl in flags):
            arr[ds.read_masks(out_shape=shape) == 0] = np.nan
    except RasterioError as exc:
        raise SceneReadError(f"{Path(ds.name).name} cannot be read (corrupt or truncated file?): {exc}") from None
    if ds.nodata is not None and not math.isnan(ds.nodata):
        arr[arr == np.float32(ds.nodata)] = np.nan
    if zero_fill:
        arr[arr == 0] = np.nan
    elif _allzero_fill(ds):
        arr[:, (arr == 0).all(axis=0)] = np.nan
    return arr


def _meta(path: Path, ds: rasterio.io.DatasetReader, sample: np.ndarray) -> FileMeta:
    stats = tuple(band_stats(sample[b]) for b in range(ds.count))
    return FileMeta(path, ds.count, ds.dtypes[0], tuple(ds.descriptions), dict(ds.tags()), stats, sample)


def _zero_fill(ident: Identification, ds: rasterio.io.DatasetReader) -> bool:
    """Landsat L1 (QCALMIN = 1) and Sentinel-2 integer products reserve DN 0 for fill."""
    return (ident.sensor.family in ("landsat", "sentinel2")
            and np.issubdtype(np.dtype(ds.dtypes[0]), np.integer))


def _open_files(rasters: Sequence[Path], stack: ExitStack, max_pixels: int) -> tuple[list, int, list[str]]:
    """Open and validate every file; return (datasets, index of the finest grid, notes)."""
    datasets = [open_raster(p, stack) for p in rasters]
    for ds in datasets:
        check_dtype(ds)
        check_size(ds, max_pixels)
    notes: list[str] = []
    if not all(is_georeferenced(ds) for ds in datasets):
        if len(datasets) > 1:
            raise SceneReadError("several files without georeference cannot be combined (their alignment "
                                 "is unknown); give georeferenced GeoTIFFs or one multi-band file")
        warnings.warn(f"{rasters[0].name} has no georeference: areas will be in pixels and no map can be "
                      "drawn", NotGeoreferencedWarning, stacklevel=3)
        notes.append("The file has no georeference (CRS/transform); areas are in pixels.")
    ref = reference_index([GridSpec.of(ds) for ds in datasets])
    check_overlap(datasets, ref, rasters)
    return datasets, ref, notes


def _resolve_mtl(mtl: str | Path | None, listed: Path | None, rasters: Sequence[Path],
                 notes: list[str]) -> MtlFile | None:
    """The MTL given (argument or among the paths), else one found beside the files."""
    given = Path(mtl) if mtl is not None else listed
    if given is not None:
        return read_mtl(given)
    found = find_mtl(list(rasters))
    if found is None:
        return None
    try:
        mtl_file = read_mtl(found)
    except SceneReadError as exc:
        notes.append(f"Ignored {found.name}: {exc}")
        return None
    notes.append(f"Calibration metadata {found.name} found beside the scene and used.")
    return mtl_file


def _apply_fill_rules(datasets: Sequence, rasters: Sequence[Path], samples: list[np.ndarray],
                      zero: Sequence[bool], notes: list[str]) -> list[np.ndarray]:
    """Re-sample files whose DN 0 is fill; note how much fill/padding was found."""
    out = list(samples)
    for k, ds in enumerate(datasets):
        before = float(np.mean(np.isnan(samples[k])))
        if zero[k]:
            out[k] = samples[k].copy()  # == _sample(ds, True) (all-zero pixels are NaN already) without
            out[k][out[k] == 0] = np.nan  # a second decimated read: a full decode on files without overviews
            extra = float(np.mean(np.isnan(out[k]))) - before
            if extra > 0:
                notes.append(f"{rasters[k].name}: DN 0 is fill in Landsat/Sentinel-2 products; "
                             f"{100 * extra:.2f}% of sampled values were 0 and are treated as no data.")
        elif _allzero_fill(ds):
            frac = float(np.mean(np.isnan(samples[k]).all(axis=0)))
            if frac > 0:
                notes.append(f"{rasters[k].name}: {100 * frac:.1f}% of pixels are 0 in every band; treated as "
                             "no data (padding outside the image), never as dark land or water.")
    return out


def _build_sources(datasets: Sequence, readers: Sequence, rasters: Sequence[Path], ident: Identification,
                   scalings: Sequence[BandScaling], zero: Sequence[bool]) -> tuple[_BandSource, ...]:
    """One :class:`_BandSource` per kept (non-skipped) band, in file order."""
    sources: list[_BandSource] = []
    i = 0
    for k, ds in enumerate(datasets):
        reader, warped = readers[k]
        use_mask = (not warped) and any(MaskFlags.per_dataset in f or MaskFlags.alpha in f
                                        for f in ds.mask_flag_enums)
        for b in range(ds.count):
            if ident.roles[i] is not None:
                sources.append(_BandSource(
                    reader, b + 1, scalings[i], None if warped else ds.nodata, zero[k] and not warped, use_mask,
                    rasters[k], ident.band_ids[i], warped, k, _allzero_fill(ds) and not zero[k]))
            i += 1
    return tuple(sources)


def _sun(mtl: MtlFile | None) -> tuple[float, float] | None:
    if mtl is None or mtl.sun_azimuth is None or mtl.sun_elevation is None:
        return None
    return float(mtl.sun_azimuth), float(mtl.sun_elevation)


def open_scene(paths: str | Path | Sequence[str | Path], *, bands: Sequence[str] | None = None,
               mtl: str | Path | None = None, sensor: str | None = None,
               max_pixels: int = 400_000_000) -> Scene:
    """Open one scene made of one or several raster files.

    Args:
        paths: a GeoTIFF, several files of one scene (co-registered by georeference onto the
            finest grid, never by array index), or a folder of band files. An ``*_MTL.txt`` among
            them is used as ``mtl``.
        bands: override identification: one canonical name/alias per band in file order,
            concatenated over files; "skip" or "-" ignores a band.
        mtl: Landsat MTL metadata for TOA reflectance (found beside the files when omitted).
        sensor: force a sensor layout ("s2_l1c", "landsat5_tm", "aerial_rgbn"...).
        max_pixels: refuse grids larger than this (width x height).

    Raises:
        SceneReadError: missing, empty, corrupt, non-raster, unsupported, all-nodata,
            oversized or non-overlapping files.
        BandError: bands cannot be identified or ``bands`` does not fit.

    Notes:
        Opening reads only a decimated sample (<= 512 px a side per file) for identification
        and scaling statistics; pixel data are read later, window by window.
    """
    rasters, mtl_listed = expand_paths(paths)
    qa_files = sort_scene_files(rasters).qa
    if qa_files and len(qa_files) < len(rasters):
        # quality bands (QA_PIXEL, BQA, S2 cloud masks) are not reflectance: keep them out of the cube
        rasters = [r for r in rasters if r not in qa_files]
    else:
        qa_files = []
    stack = ExitStack()
    try:
        datasets, ref, notes = _open_files(rasters, stack, max_pixels)
        mtl_file = _resolve_mtl(mtl, mtl_listed, rasters, notes)
        samples = [_sample(ds) for ds in datasets]
        ident = identify_bands([_meta(p, ds, s) for p, ds, s in zip(rasters, datasets, samples)],
                               bands=bands, sensor=sensor, mtl=mtl_file)
        if mtl_file is not None and ident.sensor.family != "landsat":
            notes.append(f"{mtl_file.path.name if mtl_file.path else 'MTL'} ignored: the scene is not Landsat.")
            mtl_file = None
        zero = [_zero_fill(ident, ds) for ds in datasets]
        samples = _apply_fill_rules(datasets, rasters, samples, zero, notes)

        stats: list[BandStats] = [band_stats(s[b]) for s in samples for b in range(s.shape[0])]
        dtypes = [ds.dtypes[b] for ds in datasets for b in range(ds.count)]
        kept = [i for i, r in enumerate(ident.roles) if r is not None]
        core = [i for i in kept if ident.roles[i] not in ATMOSPHERIC_BANDS] or kept
        if all(stats[i].count == 0 for i in core):
            raise SceneReadError(f"{', '.join(p.name for p in rasters)} contains no valid pixels (everything is "
                                 "nodata, NaN or masked)")

        surface = any("_SR_B" in p.name.upper() for p in rasters)
        plan = plan_scaling(ident.sensor, ident.band_ids, ident.roles, dtypes, stats, mtl_file, surface)
        if plan.relative:
            warnings.warn(f"{rasters[0].name}: values are not calibrated reflectance; using a relative per-band "
                          "normalisation (index values are relative)", RelativeScalingWarning, stacklevel=2)

        fill = [0.0 if z else ds.nodata for ds, z in zip(datasets, zero)]
        readers = align(datasets, ref, stack, rasters, fill) if len(datasets) > 1 else [(datasets[0], False)]
        sources = _build_sources(datasets, readers, rasters, ident, plan.bands, zero)
        warped_names = [rasters[k].name for k, (_, w) in enumerate(readers) if w]
        if warped_names:
            notes.append(f"Co-registered by georeference onto the grid of {rasters[ref].name} (bilinear "
                         f"resampling of {', '.join(warped_names)}); pixels outside a file's footprint are no data.")
        skipped = [ident.band_ids[i] for i, r in enumerate(ident.roles) if r is None]
        if skipped:
            notes.append(f"Ignored bands: {', '.join(skipped)}.")

        ref_ds = datasets[ref]
        pos = [(k, b) for k, ds in enumerate(datasets) for b in range(ds.count)]
        ref_core = [samples[ref][pos[i][1]] for i in core if pos[i][0] == ref] or list(samples[ref])
        valid_fraction = float(np.mean(np.all(np.isfinite(np.stack(ref_core)), axis=0)))
        nodata = ref_ds.nodata
        scene = Scene(
            band_names=tuple(ident.roles[i] for i in kept),  # type: ignore[misc]
            sensor=ident.sensor.name,
            crs=ref_ds.crs if is_georeferenced(ref_ds) else None,
            transform=ref_ds.transform,
            width=ref_ds.width, height=ref_ds.height,
            nodata=None if nodata is None or math.isnan(nodata) else nodata,
            scaling=plan.description, calibrated=plan.calibrated,
            notes=list(ident.notes) + notes + plan.notes,
            paths=tuple(rasters), quality_paths=tuple(qa_files), sun=_sun(mtl_file), _sources=sources, _stack=stack,
            _valid_fraction=valid_fraction)
        if qa_files:
            layer, qa_notes = read_quality(qa_files, scene.crs, scene.transform, (scene.height, scene.width))
            scene._quality_memo = (layer,)
            scene.notes.extend(qa_notes)
            if layer is not None:
                scene.notes.append("Cloud, cloud shadow and snow follow the supplied quality flags "
                                   f"({layer.description}) instead of spex's spectral tests.")
    except BaseException:
        stack.close()
        raise
    log.info("opened %s: %s, %d bands, %dx%d", rasters[0].name, scene.sensor, len(scene.band_names),
             scene.width, scene.height)
    return scene
