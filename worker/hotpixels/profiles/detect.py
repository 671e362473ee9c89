"""The dark model's two parts from a master dark: the smooth field and the sparse hot-site table.

Input: ``dark_dn``, the master dark *above the black level* (H, W) float32 DN, full raw frame.

Smooth field
    Per CFA plane, the median of the plane's sites in each ``field_block_px`` cell (16 px on
    Bayer, 18 on X-Trans: an amp glow that falls off over a few tens of pixels is followed to
    ~10%). No further smoothing: a cell median already pools ~B²/4 sites (64 on Bayer), so its
    noise is ~1.25 σ_master / 8, far below σ, and smoothing would flatten an amp-glow corner.

Significance (one σ, as in the design)
    ``residual = flat - median of the site's same-plane neighbours`` (radius 2) where
    ``flat = dark - field`` (continued linearly to the frame edges): the field takes out the
    glow's gradient first; sites at the frame edge use in-frame neighbours only. Its noise σ is
    measured, not assumed: per plane and cell, MAD x 1.4826 of the residuals, and because shot
    noise grows with the dark level (amp glow) a line ``σ² = a + b · level`` is fitted per plane
    over the cells (robust: two passes dropping cells > 4 MADs off). At each site
    ``σ_site = sqrt(a + b · local level)``: the threshold follows the glow site by site, so a glow
    corner does not fill the table with noise. For N darks this σ is the master's, about
    σ_single / sqrt(N) (a bit more with the neighbour median), i.e. a site is listed when its
    master excess exceeds ``threshold_sigma · σ_single / sqrt(N)``, measured.

Table
    Sites with ``residual > k σ_site`` (hot), ``residual < -k σ_site`` (cold: stuck low), every
    RTS site (unstable, whatever its mean) and every site that reached the white level
    (saturated). Each carries ``excess_dn = dark - field`` at the site — what stage 1 must
    subtract on top of the field — so ``field + excess`` reproduces the master at the site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dng.cfa import CfaPattern
from .cells import cell_mad_sigma, cell_median, cell_samples, grid_model
from .darkmodel import FLAG_COLD, FLAG_SATURATED, FLAG_UNSTABLE
from .neighbours import local_background


@dataclass
class SiteTable:
    yx: np.ndarray  # (K, 2) int32 full-frame
    excess_dn: np.ndarray  # (K,) float32 dark - field at the site, DN
    flags: np.ndarray  # (K,) uint8 FLAG_*
    significance: np.ndarray  # (K,) float32 residual / σ_site (for reports and histograms)
    noise_fit: list[dict]  # per plane {"a_dn2", "b_dn"}: σ² = a + b · level


def field_grid(dark_dn: np.ndarray, cfa: CfaPattern, block_px: int) -> np.ndarray:
    """(n_planes, gh, gw) float32: per-plane cell medians of the dark signal (DN)."""
    return np.stack([cell_median(s) for s in cell_samples(dark_dn, cfa, block_px)]).astype(np.float32)


def fit_noise_line(level: np.ndarray, var: np.ndarray) -> tuple[float, float]:
    """Robust least-squares ``var = a + b * level`` over cells; ``b >= 0``, ``a > 0``."""
    lv, vv = level.ravel().astype(np.float64), var.ravel().astype(np.float64)
    ok = np.isfinite(lv) & np.isfinite(vv)
    lv, vv = lv[ok], vv[ok]
    a, b = float(np.median(vv)) if vv.size else 1.0, 0.0
    for _ in range(3):
        if lv.size < 3 or np.ptp(lv) <= 0:
            break
        design = np.stack([np.ones_like(lv), lv], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, vv, rcond=None)
        res = vv - (a + b * lv)
        mad = 1.4826 * np.median(np.abs(res - np.median(res)))
        keep = np.abs(res) <= 4 * max(mad, 1e-6)
        if keep.all():
            break
        lv, vv = lv[keep], vv[keep]
    b = max(float(b), 0.0)
    if b == 0.0 and vv.size:
        a = float(np.median(vv))
    return max(float(a), 1e-6), b


def detect_sites(flat_dn: np.ndarray, cfa: CfaPattern, field_dn: np.ndarray, block_px: int, *,
                 unstable: np.ndarray, saturated: np.ndarray, threshold_sigma: float) -> SiteTable:
    """The sparse table of :mod:`this module <hotpixels.profiles.detect>` (see its docstring).

    ``flat_dn`` is the master dark above black *minus the smooth field* (``field_dn`` upsampled,
    continued linearly to the frame edges: :func:`~.cells.extrapolated_field_full`): with the
    glow's gradient taken out, a site's neighbours measure its background without the bias a steep
    amp-glow corner gives a ring of neighbours (all inward at a frame edge). The table's
    ``excess_dn`` is then ``flat`` at the site; callers re-reference it to the model's field.
    """
    h, w = flat_dn.shape
    residual = local_background(flat_dn, cfa)  # neighbour medians, turned into residuals in place
    np.subtract(flat_dn, residual, out=residual)
    fits = [fit_noise_line(field_dn[p], cell_mad_sigma(samples) ** 2)
            for p, samples in enumerate(cell_samples(residual, cfa, block_px))]

    a_min = min(a for a, _ in fits)
    cand = (np.abs(residual) > threshold_sigma * np.sqrt(a_min)) | unstable | saturated
    ys, xs = np.nonzero(cand)
    planes = cfa.plane_at(ys, xs)
    a = np.array([f[0] for f in fits])[planes]
    b = np.array([f[1] for f in fits])[planes]
    res = residual[ys, xs].astype(np.float64)
    field_at_sites = grid_model(field_dn, cfa, block_px, (h, w)).field_at(ys, xs)
    level = np.maximum(field_at_sites + flat_dn[ys, xs] - res, 0.0)  # the background's dark level
    signif = res / np.sqrt(a + b * level)
    hot = signif > threshold_sigma
    cold = signif < -threshold_sigma
    flags = np.zeros(len(ys), np.uint8)
    flags[unstable[ys, xs]] |= FLAG_UNSTABLE
    flags[saturated[ys, xs]] |= FLAG_SATURATED
    flags[cold] |= FLAG_COLD
    keep = hot | cold | (flags != 0)
    ys, xs = ys[keep], xs[keep]
    return SiteTable(yx=np.stack([ys, xs], axis=1).astype(np.int32), excess_dn=flat_dn[ys, xs].astype(np.float32),
                     flags=flags[keep], significance=signif[keep].astype(np.float32),
                     noise_fit=[{"a_dn2": float(a_), "b_dn": float(b_)} for a_, b_ in fits])
