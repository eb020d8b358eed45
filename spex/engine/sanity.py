"""Degenerate-scene checks: what the pixels can and cannot support, said before a class is claimed.

Why: adaptive thresholds always find *some* split, so without these checks a constant image
was "100 % water" and pixels clipped at 65535 were called water. Each check counts what it
found and says what was done:

- **clipped / saturated** pixels (a band at the largest DN its integer type can store, e.g. 65535,
  in files on the scene grid) are invalid: excluded from every class.
- calibrated reflectance above :data:`MAX_REFLECTANCE` is invalid too (counted separately).
- **negative reflectance** below :data:`MIN_REFLECTANCE` is invalid too; slightly negative values
  (down to that floor, typical of dark water after atmospheric correction) are kept and flagged.
- **no spectral contrast** (every band constant over the usable pixels) or too few usable pixels:
  no class is claimed at all.
- a class that would cover (nearly) the whole usable scene on *relative* (uncalibrated) values is
  refused: relative thresholds always split a scene, so they cannot say that everything is one class.

The scan reads the scene window by window once and is memoised in the scene's
:class:`~spex.spectral.IndexCache` (refinements and undo reuse it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from spex.io import ATMOSPHERIC_BANDS

__all__ = ["MAX_REFLECTANCE", "MIN_REFLECTANCE", "SceneSanity", "check_scene", "unsupported_claims"]

#: Calibrated reflectance above this is not a surface (TOA of bright cloud/snow stays below ~1.3).
MAX_REFLECTANCE = 1.6
#: Reflectance below this is an artefact; between it and 0 it is kept (dark water after correction).
MIN_REFLECTANCE = -0.05
#: Share of usable pixels above which a class claim on relative values is refused.
WHOLE_SCENE_SHARE = 0.99
#: Fewer usable pixels than this: nothing can be claimed.
MIN_USABLE_PIXELS = 50


@dataclass
class SceneSanity:
    """What the degenerate-scene checks found on one scene (counts in valid pixels)."""

    n_valid: int
    n_clipped: int = 0
    n_out_of_range: int = 0
    n_slightly_negative: int = 0
    no_contrast: bool = False
    usable: np.ndarray | None = None  # bool (H, W), True = valid and usable; None = every valid pixel
    caveats: list[str] = field(default_factory=list)

    @property
    def n_usable(self) -> int:
        return self.n_valid if self.usable is None else int(self.usable.sum())

    @property
    def refusal(self) -> str | None:
        """Why no class at all can be claimed on this scene, or None."""
        if self.n_usable < MIN_USABLE_PIXELS:
            return (f"only {self.n_usable} usable pixels remain after removing invalid ones, too few to "
                    "identify any class")
        if self.no_contrast:
            return ("the scene has no spectral contrast (every band has the same value over all usable pixels), "
                    "so no class can be told from any other; nothing was selected")
        return None


def _core_bands(names: Sequence[str]) -> list[str]:
    core = [b for b in names if b not in ATMOSPHERIC_BANDS and b != "thermal"]
    return core or list(names)


def _saturation_sources(scene: object) -> list[tuple[object, int]]:
    """The scene's integer files on its grid (:meth:`~spex.io.Scene.grid_files`, its own open handles, so
    their blocks are decoded once for both reads), with their dtype's maximum DN; none for a view."""
    grid_files = getattr(scene, "grid_files", None)
    out = []
    for ds in grid_files() if grid_files is not None else ():
        dtype = np.dtype(ds.dtypes[0])
        if np.issubdtype(dtype, np.integer):
            out.append((ds, int(np.iinfo(dtype).max)))
    return out


def _scan(scene: object, valid: np.ndarray, calibrated: bool, window_size: int) -> SceneSanity:
    bands = _core_bands(scene.band_names)  # type: ignore[attr-defined]
    n_valid = int(valid.sum())
    k = len(bands)
    usable: np.ndarray | None = None  # made at the first unusable pixel: most scenes have none (100 MB at 10240²)
    n_clip = n_oor = n_neg = 0
    s = np.zeros(k)
    s2 = np.zeros(k)
    count = 0
    lo = np.full(k, np.inf)
    hi = np.full(k, -np.inf)
    raw = _saturation_sources(scene)
    for w in scene.windows(window_size):  # type: ignore[attr-defined]
        rs, cs = slice(w.row_off, w.row_off + w.height), slice(w.col_off, w.col_off + w.width)
        block = scene.read(bands=bands, window=w)  # type: ignore[attr-defined]
        ok = np.array(valid[rs, cs], dtype=bool)
        clipped = np.zeros_like(ok)
        for ds, top in raw:  # a band at its data type's ceiling: the sensor (or a conversion) clipped it
            clipped |= np.any(ds.read(window=w) == top, axis=0)
        clipped &= ok
        bad = np.zeros_like(ok)
        if calibrated:
            with np.errstate(invalid="ignore"):
                bad = np.any((block > MAX_REFLECTANCE) | (block < MIN_REFLECTANCE), axis=0) & ok & ~clipped
                n_neg += int((np.any(block < 0, axis=0) & ok & ~clipped & ~bad).sum())
        n_clip += int(clipped.sum())
        n_oor += int(bad.sum())
        if clipped.any() or bad.any():
            if usable is None:
                usable = np.array(valid, dtype=bool)
            ok = ok & ~clipped & ~bad
            usable[rs, cs] = ok
        n_ok = int(np.count_nonzero(ok))
        if n_ok:
            for b, band in enumerate(block):  # a float64 copy of one band at a time (row sums, same values)
                v = band[ok].astype(np.float64)
                s[b] += v.sum()
                s2[b] += (v * v).sum()
                lo[b] = np.fmin(lo[b], v.min())
                hi[b] = np.fmax(hi[b], v.max())
            count += n_ok
    out = SceneSanity(n_valid=n_valid, n_clipped=n_clip, n_out_of_range=n_oor, n_slightly_negative=n_neg)
    if count:
        mean = s / count
        std = np.sqrt(np.maximum(s2 / count - mean * mean, 0.0))
        # constant to within 1e-4 reflectance (about one DN of a 1/10000-scaled product) or 0.1 % relative
        out.no_contrast = bool(np.all((hi - lo <= 0) | (std <= np.maximum(1e-4, 1e-3 * np.abs(mean)))))
    out.usable = None if (n_clip + n_oor) == 0 else usable
    out.caveats = _caveats(out, calibrated)
    return out


def _pct(n: int, total: int) -> str:
    return f"{n:,} px ({100 * n / max(total, 1):.1f} % of the valid pixels)"


def _caveats(r: SceneSanity, calibrated: bool) -> list[str]:
    out: list[str] = []
    if r.n_clipped:
        out.append(f"Saturated or clipped pixels: {_pct(r.n_clipped, r.n_valid)} have a band at the largest value "
                   "its data type can store; their true reflectance is unknown, so they were treated as invalid "
                   "and excluded from every class.")
    if r.n_out_of_range:
        out.append(f"Out-of-range reflectance: {_pct(r.n_out_of_range, r.n_valid)} have a band below "
                   f"{MIN_REFLECTANCE} or above {MAX_REFLECTANCE}, which no surface reflects; they were treated as "
                   "invalid and excluded from every class (check the scaling or the calibration metadata).")
    if r.n_slightly_negative:
        out.append(f"Slightly negative reflectance (between {MIN_REFLECTANCE} and 0) in "
                   f"{_pct(r.n_slightly_negative, r.n_valid)}; kept as is (typical of dark water after "
                   "atmospheric correction).")
    if r.refusal:
        out.append("No class claimed: " + r.refusal + ".")
    return out


def check_scene(cache: object, window_size: int = 1024) -> SceneSanity:
    """The degenerate-scene checks for the scene of ``cache`` (an IndexCache), computed once per scene."""
    scene = cache.scene  # type: ignore[attr-defined]
    calibrated = bool(getattr(scene, "calibrated", False))
    return cache.memo("sanity:v1", lambda: _scan(scene, cache.valid(), calibrated, window_size))  # type: ignore


def unsupported_claims(masks: dict[str, np.ndarray], sanity: SceneSanity, calibrated: bool) -> dict[str, str]:
    """Targets whose mask the evidence cannot support, with the reason (target -> reason).

    Args:
        masks: class mask per target (bool (H, W)).
        sanity: the scene's checks.
        calibrated: whether values are absolute reflectance (fixed physical thresholds apply).
    """
    if sanity.refusal:
        return {t: sanity.refusal for t in masks}
    out: dict[str, str] = {}
    if calibrated:
        return out
    n = max(sanity.n_usable, 1)
    for target, mask in masks.items():
        sel = mask if sanity.usable is None else (mask & sanity.usable)
        share = float(np.count_nonzero(sel)) / n
        if share >= WHOLE_SCENE_SHARE:
            out[target] = (f"it would cover {100 * share:.1f} % of the usable scene, but the values are relative "
                           "(not calibrated reflectance) and a relative threshold always splits a scene, so it "
                           "cannot show that the whole scene is one class; nothing was selected for it")
    return out
