"""Stage 1: subtract the profile's dark *model*, scaled to the image (docs/design.md, data path step 3).

What is subtracted, where (the "model" and its footprint)
-----------------------------------------------------------
The :class:`~hotpixels.profiles.darkmodel.DarkModel` has two parts; both are dark signal in DN
above the black level at the profile's exposure/temperature, multiplied here by one ``scale``:

* **Sparse sites** (``hot_yx``, unflagged): ``scale x (w·field + excess)`` is subtracted, where
  ``w·field`` is the smooth field as subtracted around the site (below), so the site lands at
  the level of its neighbours. Flagged sites (saturated in the dark, unstable/RTS, cold) are not
  subtracted: a scaled value is meaningless there and stage 2 interpolates them.
* **Smooth field** (amp glow, gradients): subtracted only where it matters. With
  ``f = scale x field`` (DN) and σ the profile's noise of one dark frame (median over the CFA
  planes of ``read_noise_dn``), the weight is
  ``w = clip((f - 0.25 σ) / (1.0 σ - 0.25 σ), 0, 1)`` and ``w x f`` is subtracted. Where the
  scaled field is below 0.25 σ (most of a typical frame) pixels are untouched, bit for bit;
  above 1 σ (glow corners, a strong floor in warm long exposures) the whole field is removed; the
  ramp between keeps the result continuous (a hard threshold would leave a visible step of 0.25 σ
  over a large area once an astro image is stretched). Subtracting the model, not a master,
  adds no noise: it is smooth.

All other pixels, everything outside the ActiveArea, and any pixel at or above
``saturation_fraction`` (0.98) x WhiteLevel are untouched; so is a sparse site whose same-colour
neighbourhood reaches that level (a hot pixel inside a saturated star core: its true value is
unknown and subtracting would dig a hole). The field is subtracted as whole DN,
``new = old - rint(w x f)``, so a pixel whose share rounds to 0 is untouched; values are clipped
to ``[0, WhiteLevel]`` only at pixels this stage changed.

The scale
---------
``prior = exposure ratio x ISO ratio x 2 ** ((T_image - T_profile) / temp_doubling_c)`` (each
factor only when both values are known; ``temp_doubling_c`` 6 °C by default). Dark signal in DN
grows with exposure and, through the gain, with ISO. The prior is refined per image by
:func:`estimate_scale`, a robust fit on the profile's bright, stable, unflagged sites:
``observed = image - local same-colour background`` against ``excess`` (a line through 0),
iteratively reweighted least squares with Tukey's biweight on residuals normalised by each
site's predicted noise (image σ plus the scaled dark shot noise), so a star on a hot pixel is
rejected. The fit absorbs temperature-sensor errors, a wrong doubling constant and ISO changes.

* Fewer than ``min_fit_sites`` usable sites: the prior is used ("prior"); no prior either: stage
  1 is skipped ("too few hot pixels to fit and no exposure tags").
* A fitted scale not significantly above 0 (< 3 standard errors) or below 10 % of the prior:
  the camera's own long-exposure noise reduction already subtracted a dark frame, so stage 1 is
  skipped and the report says so ("skipped").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..dng.rawimage import RawImage
from ..errors import ProfileIncompatible
from ..parallel import map_chunks
from ..profiles.darkmodel import DarkModel
from ..robustfit import robust_slope
from .noise import dn_per_electron, shot_variance_dn2
from .sitestats import SiteStats, site_stats

FIELD_THREADS = 2
FIELD_BAND_PX = 192  # rows per band of the dark field's subtraction (a few MB of temporaries)


@dataclass
class DarkOptions:
    temp_doubling_c: float = 6.0  # dark current doubles every this many °C (prior only)
    saturation_fraction: float = 0.98  # pixels at or above this x WhiteLevel are never modified
    field_low_sigma: float = 0.25  # scaled field below this many σ: not subtracted
    field_high_sigma: float = 1.0  # scaled field above this many σ: subtracted in full
    fit_min_excess_sigma: float = 10.0  # fit only on sites with excess >= this many σ (profile)
    fit_max_sites: int = 4000  # the brightest this many sites take part in the fit
    min_fit_sites: int = 8
    nr_fraction_of_prior: float = 0.1  # fitted scale below this x prior: in-camera NR ran


@dataclass
class ScaleFit:
    """How the dark scale of one image was found."""

    scale: float | None  # None: stage 1 cannot run (no fit, no prior)
    prior: float | None
    method: str  # "fit" | "prior" | "skipped"
    reason: str
    n_sites: int = 0  # sites that took part in the fit
    n_inliers: int = 0  # of which kept by the robust weights
    stderr: float | None = None  # standard error of the fitted scale
    robust_sigma: float | None = None  # spread of normalised residuals (1.0 = as noisy as predicted)
    fitted: float | None = None  # the fitted value even when not used
    iso_ratio: float | None = None  # image ISO / profile ISO when both known

    @property
    def usable(self) -> bool:
        return self.method in ("fit", "prior") and self.scale is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "scale": self.scale, "prior": self.prior, "method": self.method, "reason": self.reason,
            "n_sites": self.n_sites, "n_inliers": self.n_inliers, "stderr": self.stderr,
            "robust_sigma": self.robust_sigma, "fitted": self.fitted, "iso_ratio": self.iso_ratio,
        }


@dataclass
class Stage1Report:
    fit: ScaleFit
    applied: bool
    n_sites_subtracted: int = 0
    n_field_pixels: int = 0  # pixels changed by the smooth field (not listed one by one)
    n_untouched_saturated: int = 0  # sites left alone because at/near the white level
    # sites moved by more than 1 σ (for the sites file): full-frame (y, x), old and new DN
    moved_yx: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    moved_old_dn: np.ndarray = field(default_factory=lambda: np.zeros(0))
    moved_new_dn: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def to_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied, **self.fit.to_json(), "n_sites_subtracted": self.n_sites_subtracted,
            "n_field_pixels": self.n_field_pixels, "n_untouched_saturated": self.n_untouched_saturated,
            "n_sites_moved_over_1_sigma": int(len(self.moved_yx)),
        }


# --- compatibility -------------------------------------------------------------------------------
def check_geometry(raw: RawImage, model: DarkModel) -> None:
    """Raise :class:`ProfileIncompatible` when the model was made on another frame geometry/CFA."""
    problems = []
    if tuple(raw.shape) != tuple(model.raw_shape):
        problems.append(f"raw size {raw.shape[1]}x{raw.shape[0]} vs profile {model.raw_shape[1]}x{model.raw_shape[0]}")
    if tuple(raw.active_area) != tuple(model.active_area):
        problems.append(f"ActiveArea {list(raw.active_area)} vs profile {list(model.active_area)}")
    if raw.cfa.pattern != model.cfa.pattern or tuple(raw.cfa.origin_yx) != tuple(model.cfa.origin_yx):
        problems.append(f"CFA {raw.cfa.name} at {list(raw.cfa.origin_yx)} vs profile {model.cfa.name} at {list(model.cfa.origin_yx)}")
    if problems:
        raise ProfileIncompatible(
            "this profile was made on a different sensor layout and cannot correct this image: " + "; ".join(problems),
            path=raw.path, data={"problems": problems},
        )


# --- per-site statistics, shared by stages 1 and 2 ------------------------------------------------
def model_site_stats(raw: RawImage, model: DarkModel) -> SiteStats:
    """Local background and σ of the *image* at every model site (other model sites excluded)."""
    planes = model.cfa.plane_at(model.hot_yx[:, 0], model.hot_yx[:, 1])
    floor = np.asarray(model.read_noise_dn, dtype=np.float64)[planes] if model.n_hot else 0.0
    return site_stats(raw.cfa_dn, raw.cfa, model.hot_yx, bounds=_bounds(raw), floor_dn=floor)


# --- the scale -----------------------------------------------------------------------------------
def prior_scale(raw: RawImage, model: DarkModel, temp_doubling_c: float = 6.0) -> tuple[float | None, float | None, str]:
    """(prior or None, ISO ratio or None, sentence saying what it is made of)."""
    meta = raw.metadata
    if not (meta.exposure_s and model.exposure_s):
        return None, None, "no exposure time on the image or the profile"
    prior = float(meta.exposure_s) / float(model.exposure_s)
    parts = [f"exposure {meta.exposure_s:g} s / {model.exposure_s:g} s"]
    iso_ratio = None
    if meta.iso and model.iso:
        iso_ratio = float(meta.iso) / float(model.iso)
        prior *= iso_ratio
        parts.append(f"ISO {meta.iso:g} / {model.iso:g}")
    if meta.temperature_c is not None and model.temperature_c is not None:
        dt = float(meta.temperature_c) - float(model.temperature_c)
        prior *= 2.0 ** (dt / float(temp_doubling_c))
        parts.append(f"{dt:+.1f} °C (doubling every {temp_doubling_c:g} °C)")
    return prior, iso_ratio, ", ".join(parts)


def estimate_scale(raw: RawImage, model: DarkModel, stats: SiteStats, options: DarkOptions | None = None) -> ScaleFit:
    """The dark scale of this image: a robust fit on bright stable sites, the prior as fallback."""
    options = options or DarkOptions()
    prior, iso_ratio, prior_text = prior_scale(raw, model, options.temp_doubling_c)
    sel = _fit_sites(raw, model, stats, options)
    n = int(len(sel))
    if n < options.min_fit_sites:
        if prior is not None:
            return ScaleFit(prior, prior, "prior", f"only {n} hot pixels usable for a fit; prior from {prior_text}",
                            n_sites=n, iso_ratio=iso_ratio)
        return ScaleFit(None, None, "skipped", f"only {n} hot pixels usable for a fit and {prior_text}: dark subtraction skipped",
                        n_sites=n, iso_ratio=iso_ratio)

    s, stderr, r, inliers = _robust_slope(raw, model, stats, sel, iso_ratio)
    common = dict(prior=prior, n_sites=n, n_inliers=inliers, stderr=stderr, robust_sigma=r, fitted=s, iso_ratio=iso_ratio)
    if s <= 3.0 * stderr or (prior is not None and s < options.nr_fraction_of_prior * prior):
        why = f"fitted scale {s:.3g} ± {stderr:.2g}"
        if prior is not None:
            why += f" against a prior of {prior:.3g}"
        return ScaleFit(None, method="skipped", reason=why + ": no dark signal in this image (the camera's "
                        "long-exposure noise reduction already ran?); dark subtraction skipped", **common)
    reason = f"robust fit on {inliers} of {n} bright stable hot pixels"
    if prior is not None:
        reason += f"; prior {prior:.3g} from {prior_text}"
    return ScaleFit(s, method="fit", reason=reason, **common)


def _fit_sites(raw: RawImage, model: DarkModel, stats: SiteStats, options: DarkOptions) -> np.ndarray:
    if model.n_hot == 0:
        return np.zeros(0, dtype=np.int64)
    planes = model.cfa.plane_at(model.hot_yx[:, 0], model.hot_yx[:, 1])
    sigma_profile = np.asarray(model.read_noise_dn, dtype=np.float64)[planes]
    limit = options.saturation_fraction * float(raw.white_level_dn)
    value = raw.cfa_dn[model.hot_yx[:, 0], model.hot_yx[:, 1]].astype(np.float64)
    ok = (
        (model.hot_flags == 0)
        & (model.hot_excess_dn >= options.fit_min_excess_sigma * np.maximum(sigma_profile, 1e-6))
        & (value < limit)
        & (stats.max_neighbour_dn < limit)
        & (stats.n_neighbours >= 3)
    )
    idx = np.nonzero(ok)[0]
    if len(idx) > options.fit_max_sites:
        idx = idx[np.argsort(model.hot_excess_dn[idx])[::-1][: options.fit_max_sites]]
    return idx


def _robust_slope(raw, model, stats, sel, iso_ratio) -> tuple[float, float, float, int]:
    """Tukey-biweight slope through 0 of (image - background) vs excess (:func:`hotpixels.robustfit.robust_slope`)."""
    yx = model.hot_yx[sel]
    e = model.hot_excess_dn[sel].astype(np.float64)
    v = raw.cfa_dn[yx[:, 0], yx[:, 1]].astype(np.float64) - stats.background_dn[sel]
    var_image = stats.sigma_dn[sel] ** 2
    dn_per_e = dn_per_electron(model)
    fit = robust_slope(v, e, lambda s: var_image + shot_variance_dn2(model, sel, s, iso_ratio, dn_per_e))
    return fit.slope, fit.stderr, fit.robust_sigma, fit.n_inliers


# --- the subtraction -----------------------------------------------------------------------------
def subtract_dark(
    raw: RawImage,
    model: DarkModel,
    options: DarkOptions | None = None,
    *,
    fit: ScaleFit | None = None,
    stats: SiteStats | None = None,
) -> tuple[np.ndarray, Stage1Report]:
    """Stage 1: a new (H, W) uint16 frame with the scaled dark model removed, and the report.

    ``fit`` and ``stats`` may be passed in when the caller already computed them (the pipeline
    shares them with stage 2); the input frame is never modified.
    """
    options = options or DarkOptions()
    check_geometry(raw, model)
    stats = stats if stats is not None else model_site_stats(raw, model)
    fit = fit if fit is not None else estimate_scale(raw, model, stats, options)
    if not fit.usable:
        return raw.cfa_dn, Stage1Report(fit=fit, applied=False)

    scale = float(fit.scale)
    limit = options.saturation_fraction * float(raw.white_level_dn)
    out = raw.cfa_dn.copy()
    n_field = _subtract_field(out, raw, model, scale, limit, options)
    site_idx, n_saturated = _subtractable_sites(raw, model, stats, limit)
    yx = model.hot_yx[site_idx]
    old = raw.cfa_dn[yx[:, 0], yx[:, 1]].astype(np.float64)
    field_at_site = model.field_at(yx[:, 0], yx[:, 1])
    field_part = _field_weight(model, scale, field_at_site, options) * field_at_site
    new = np.clip(np.rint(old - scale * (field_part + model.hot_excess_dn[site_idx])), 0, raw.white_level_dn)
    out[yx[:, 0], yx[:, 1]] = new.astype(out.dtype)
    moved = np.abs(new - old) > stats.sigma_dn[site_idx]
    report = Stage1Report(
        fit=fit, applied=True, n_sites_subtracted=int(len(site_idx)), n_field_pixels=n_field,
        n_untouched_saturated=n_saturated, moved_yx=yx[moved].astype(np.int64), moved_old_dn=old[moved],
        moved_new_dn=new[moved],
    )
    return out, report


def _subtractable_sites(raw: RawImage, model: DarkModel, stats: SiteStats, limit: float) -> tuple[np.ndarray, int]:
    if model.n_hot == 0:
        return np.zeros(0, dtype=np.int64), 0
    value = raw.cfa_dn[model.hot_yx[:, 0], model.hot_yx[:, 1]]
    near_white = (value >= limit) | (stats.max_neighbour_dn >= limit)
    ok = (model.hot_flags == 0) & ~near_white & _inside(raw, model.hot_yx)
    return np.nonzero(ok)[0], int(np.count_nonzero(near_white & (model.hot_flags == 0)))


def _field_weight(model: DarkModel, scale: float, field_dn: np.ndarray, options: DarkOptions) -> np.ndarray:
    """Ramp weight in [0, 1] of the scaled field (see the module docstring)."""
    sigma = float(np.median(model.read_noise_dn))
    lo = options.field_low_sigma * sigma
    hi = options.field_high_sigma * sigma
    return np.clip((scale * field_dn - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)


def _subtract_field(out: np.ndarray, raw: RawImage, model: DarkModel, scale: float, limit: float, options: DarkOptions) -> int:
    """Subtract ``rint(w x scale x field)`` inside the ActiveArea, in place; returns pixels changed.

    Work is confined to the bounding box of the grid cells where the scaled field is significant
    (often just an amp-glow corner) and done phase by phase on strided float32 views; when every
    cell of the box is above ``field_high_sigma`` the ramp weight is 1 and is not computed.
    """
    sigma = float(np.median(model.read_noise_dn))
    lo, hi = options.field_low_sigma * sigma, options.field_high_sigma * sigma
    scaled = scale * model.field_dn.astype(np.float64)
    cells = np.any(scaled > lo, axis=0)
    if not cells.any():
        return 0  # nothing significant anywhere: no full-frame work
    box = _pixel_box(cells, model.field_block_px, raw.active_area)
    if box is None:
        return 0
    rows_of = np.nonzero(cells.any(axis=1))[0]
    cols_of = np.nonzero(cells.any(axis=0))[0]
    sub_grid = scaled[:, max(rows_of[0] - 1, 0):rows_of[-1] + 2, max(cols_of[0] - 1, 0):cols_of[-1] + 2]
    full_weight = bool(np.all(sub_grid >= hi))
    y0, x0, y1, x1 = box
    rows, cols = raw.cfa.repeat
    oy, ox = raw.cfa.origin_yx
    weight = None if full_weight else (lo, hi)

    def band(rows_of_band: tuple[int, int]) -> int:  # every phase of a band of rows: small temporaries
        b0, b1 = rows_of_band
        k_map = np.zeros((b1 - b0, x1 - x0), dtype=out.dtype)  # DN to subtract
        for py, px in raw.cfa.phases():
            ys = np.arange(b0 + (oy + py - b0) % rows, b1, rows)
            xs = np.arange(x0 + (ox + px - x0) % cols, x1, cols)
            if len(ys) and len(xs):
                k = _rounded_field(model, int(raw.cfa.plane_of_phase[py, px]), ys, xs, scale, weight)
                k_map[ys[0] - b0::rows, xs[0] - x0::cols] = k
        region = out[b0:b1, x0:x1]
        np.minimum(k_map, region, out=k_map)  # never below 0
        np.copyto(k_map, 0, where=region >= limit)  # at/near white: untouched
        np.subtract(region, k_map, out=region)
        return int(np.count_nonzero(k_map))

    height = max(rows, FIELD_BAND_PX - FIELD_BAND_PX % rows)
    return sum(map_chunks(band, [(b, min(b + height, y1)) for b in range(y0, y1, height)], FIELD_THREADS))


def _rounded_field(model: DarkModel, plane: int, ys, xs, scale: float, weight) -> np.ndarray:
    """``rint(w x scale x field)`` (uint16, >= 0) of one phase at rows ``ys`` and columns ``xs``."""
    if weight is None:  # the whole box is above the ramp: w = 1, round by truncating f + 0.5 (f > 0)
        g = field_separable_f32(model, plane, ys, xs, scale, offset=0.5)
        return g.astype(np.uint16)
    lo, hi = weight
    g = field_separable_f32(model, plane, ys, xs, scale)
    w = (g - np.float32(lo)) * np.float32(1.0 / max(hi - lo, 1e-9))
    np.clip(w, 0.0, 1.0, out=w)
    g *= w
    g += np.float32(0.5)
    np.maximum(g, 0.0, out=g)
    return g.astype(np.uint16)


def _pixel_box(cells: np.ndarray, block: int, active_area) -> tuple[int, int, int, int] | None:
    """Pixel box (y0, x0, y1, x1) covering the significant cells plus one cell around (bilinear
    interpolation reaches half a cell into the neighbours), clipped to the ActiveArea."""
    t, l, b, r = active_area
    rows = np.nonzero(cells.any(axis=1))[0]
    cols = np.nonzero(cells.any(axis=0))[0]
    y0, y1 = max(t, (rows[0] - 1) * block), min(b, (rows[-1] + 2) * block)
    x0, x1 = max(l, (cols[0] - 1) * block), min(r, (cols[-1] + 2) * block)
    if y0 >= y1 or x0 >= x1:
        return None
    return int(y0), int(x0), int(y1), int(x1)


def field_separable_f32(model: DarkModel, plane: int, ys: np.ndarray, xs: np.ndarray, scale: float = 1.0,
                        offset: float = 0.0) -> np.ndarray:
    """(len(ys), len(xs)) float32 ``scale x field + offset`` of one plane at full-frame rows ``ys``
    (ascending) and columns ``xs``: the model's bilinear interpolation between cell centres
    (``DarkModel.field_at``), computed separably in float32, one band of rows between two cell
    centres at a time (two passes over the output)."""
    _, gh, gw = model.field_dn.shape

    def coords(v, n):
        g = np.clip(v / model.field_block_px - 0.5, 0, n - 1)
        i0 = np.floor(g).astype(np.int64)
        return i0, np.minimum(i0 + 1, n - 1), (g - i0).astype(np.float32)

    y0, y1, fy = coords(ys.astype(np.float64), gh)
    x0, x1, fx = coords(xs.astype(np.float64), gw)
    first, last = int(y0.min()), int(y1.max()) + 1  # only the grid rows these rows need
    y0, y1 = y0 - first, y1 - first
    grid = model.field_dn[plane, first:last].astype(np.float32) * np.float32(scale)
    across = grid[:, x0] * (1 - fx)[None, :] + grid[:, x1] * fx[None, :] + np.float32(offset)  # (rows, nx)
    out = np.empty((len(ys), len(xs)), dtype=np.float32)
    starts = np.flatnonzero(np.r_[True, (y0[1:] != y0[:-1]) | (y1[1:] != y1[:-1])])
    ends = np.r_[starts[1:], len(ys)]
    for a, b in zip(starts.tolist(), ends.tolist()):
        top, step = across[y0[a]], across[y1[a]] - across[y0[a]]
        band = out[a:b]
        np.multiply(fy[a:b, None], step[None, :], out=band)
        band += top[None, :]
    return out


def _inside(raw: RawImage, yx: np.ndarray) -> np.ndarray:
    t, l, b, r = raw.active_area
    return (yx[:, 0] >= t) & (yx[:, 0] < b) & (yx[:, 1] >= l) & (yx[:, 1] < r)


def _bounds(raw: RawImage) -> tuple[int, int, int, int]:
    return tuple(int(v) for v in raw.active_area)  # type: ignore[return-value]
