"""Stage 2: interpolate the profile's hot pixels where subtraction cannot be trusted (DESIGN step 4).

Stage 1 removes ``scale x (field + excess)`` from every stable site, which restores the pixel's
own light on average but leaves two errors behind: the dark signal's *shot noise* (it grows as
the square root of the dark signal) and the *scale's uncertainty* times the excess. The
predicted error of the subtracted value at a site, in DN:

``sd_sub² = scale x ISO-ratio x dn_per_e x (field + excess) + (scale x temporal)² / N_darks
+ (δscale x excess)²``

(Poisson in the whole scaled dark signal, DN per electron measured from the profile, see
:func:`hotpixels.correct.noise.shot_variance_dn2`; ``δscale`` is the fit's standard error, at
least 1 % of the scale, 30 % when the scale is only the exposure/temperature prior: temperature
sensors err by degrees.)

A site is *interpolated* when ``sd_sub > trust_sigma x σ_noise`` (``trust_sigma`` 0.5; σ_noise
the pixel's own noise, read noise plus the light's shot noise, predicted from the profile by
:mod:`.noise`): its dark shot noise would stand out against its neighbours. The same-colour
interpolation (:func:`hotpixels.correct.interpolate.interpolate_sites`) has an error of its own,
``sd_interp² = t x max(σ_local² - σ_noise², 0) + σ_noise² / 4`` (σ_local: the MAD σ of the
same-colour neighbours, noise plus texture; a quarter of the noise variance for the averaging
of several neighbours; ``t = texture_factor`` = 0.5, because the edge-aware pairs follow part of
the texture: tuned on simulated star and foreground scenes, where 0.5 beat 0, 0.25, 1, 2 and 4). The two estimates are independent, so the new value is their
inverse-variance blend, ``(x_sub / sd_sub² + x_interp / sd_interp²) / (1 / sd_sub² +
1 / sd_interp²)``: in flat sky that is practically the interpolation; in texture (a star's
flank, the foreground), where interpolating would paint the neighbours' texture over the pixel,
the subtracted value keeps a share. On the simulator's foreground scenes this blend ends more
hot pixels within 3 σ than either estimate alone.

Interpolated outright (no blend: there is no trustworthy subtracted value), whatever that test says:

* sites flagged in the profile: saturated in the dark (value unknown), unstable (RTS: the level
  in this frame is unknown), cold (stuck low: does not scale with exposure), added from photos
  (batch evidence added to the profile, ``profiles.addSites``: the darks never measured them);
* sites saturated in *this* image (at or above 0.98 x WhiteLevel) while their same-colour
  neighbours are not: the defect clipped, the light under it is unknown.

Never touched: sites whose same-colour neighbourhood reaches 0.98 x WhiteLevel (inside a
saturated star core or highlight: there is nothing trustworthy to interpolate from, and
saturated image pixels stay bit-identical), and sites outside the ActiveArea.

When stage 1 did not subtract (not selected, or skipped) the rule becomes "interpolate where the
scaled dark signal left in place exceeds ``trust_sigma`` x σ"; when no scale is known at all
(no fit, no prior, or the camera's noise reduction already ran) only flagged sites are
interpolated. Neighbours never include other profile sites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..dng.rawimage import RawImage
from ..profiles.darkmodel import FLAG_ADDED, FLAG_COLD, FLAG_SATURATED, FLAG_UNSTABLE, DarkModel
from .darkframe import ScaleFit
from .interpolate import interpolate_sites
from .noise import pixel_noise_dn, shot_variance_dn2
from .sitestats import SiteStats

# the last two are stage 2 with a learned profile (:mod:`.learnedhot`)
REASONS = ("saturated_in_dark", "unstable", "cold", "saturated_in_image", "noisy_subtraction", "not_subtracted",
           "added_from_photos", "learned_excess", "learned_unstable")


@dataclass
class HotOptions:
    trust_sigma: float = 0.5  # interpolate when the subtraction's predicted error > this x σ
    saturation_fraction: float = 0.98
    min_relative_scale_error: float = 0.01
    prior_relative_scale_error: float = 0.3
    texture_factor: float = 0.5  # interpolation error per unit of texture variance (see docstring)


@dataclass
class Stage2Report:
    counts: dict[str, int]  # interpolated sites per reason
    n_untouched_saturated: int = 0  # sites inside saturated neighbourhoods, left alone
    yx: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    old_dn: np.ndarray = field(default_factory=lambda: np.zeros(0))
    new_dn: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reason: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # index into REASONS

    @property
    def n_interpolated(self) -> int:
        return int(len(self.yx))

    def to_json(self) -> dict[str, Any]:
        return {"n_interpolated": self.n_interpolated, "by_reason": dict(self.counts),
                "n_untouched_saturated": self.n_untouched_saturated}


@dataclass
class Selection:
    index: np.ndarray  # (K,) indices into the model's sites to correct
    reason: np.ndarray  # (K,) int8 index into REASONS
    sd_sub_dn: np.ndarray  # (K,) predicted error of the stage-1 value (inf: not usable)
    sd_interp_dn: np.ndarray  # (K,) predicted error of the interpolation
    n_untouched_saturated: int


def select_sites(
    raw: RawImage, model: DarkModel, fit: ScaleFit, stats: SiteStats, *, subtracted: bool,
    options: HotOptions | None = None,
) -> Selection:
    """Which model sites stage 2 corrects, why, and the predicted errors of both estimates."""
    options = options or HotOptions()
    n = model.n_hot
    if n == 0:
        empty = np.zeros(0)
        return Selection(np.zeros(0, np.int64), np.zeros(0, np.int8), empty, empty, 0)
    limit = options.saturation_fraction * float(raw.white_level_dn)
    yx = model.hot_yx
    t, l, b, r = raw.active_area
    inside = (yx[:, 0] >= t) & (yx[:, 0] < b) & (yx[:, 1] >= l) & (yx[:, 1] < r)
    in_white = stats.max_neighbour_dn >= limit
    usable = inside & ~in_white

    reason = np.full(n, -1, dtype=np.int8)
    sd_sub = np.full(n, np.inf)
    value = raw.cfa_dn[yx[:, 0], yx[:, 1]].astype(np.float64)
    sigma_noise = pixel_noise_dn(raw, model, stats, fit.iso_ratio) if fit.usable else stats.sigma_dn
    texture = np.maximum(stats.sigma_dn**2 - sigma_noise**2, 0.0)
    sd_interp = np.sqrt(options.texture_factor * texture + sigma_noise**2 / 4.0)
    if fit.usable:
        s = float(fit.scale)
        excess = np.abs(model.hot_excess_dn.astype(np.float64))
        if subtracted:
            rel = options.prior_relative_scale_error if fit.method == "prior" else options.min_relative_scale_error
            ds = max(fit.stderr or 0.0, rel * s)
            sd_sub = np.sqrt(shot_variance_dn2(model, np.arange(n), s, fit.iso_ratio) + (ds * excess) ** 2)
            reason[sd_sub > options.trust_sigma * sigma_noise] = REASONS.index("noisy_subtraction")
        else:
            reason[s * excess > options.trust_sigma * sigma_noise] = REASONS.index("not_subtracted")
    reason[value >= limit] = REASONS.index("saturated_in_image")
    for flag, name in ((FLAG_ADDED, "added_from_photos"), (FLAG_COLD, "cold"), (FLAG_UNSTABLE, "unstable"),
                       (FLAG_SATURATED, "saturated_in_dark")):
        reason[model.flagged(flag)] = REASONS.index(name)
    chosen = np.nonzero((reason >= 0) & usable)[0]
    noisy = reason[chosen] == REASONS.index("noisy_subtraction")
    return Selection(index=chosen, reason=reason[chosen], sd_sub_dn=np.where(noisy, sd_sub[chosen], np.inf),
                     sd_interp_dn=sd_interp[chosen], n_untouched_saturated=int(np.count_nonzero(inside & in_white)))


def interpolate_known(
    cfa_dn: np.ndarray, raw: RawImage, model: DarkModel, fit: ScaleFit, stats: SiteStats, *,
    subtracted: bool, options: HotOptions | None = None, copy: bool = True,
) -> tuple[np.ndarray, Stage2Report]:
    """Stage 2 on ``cfa_dn`` (the output of stage 1, or the raw frame): the corrected frame and the
    report.

    ``raw`` supplies the geometry, white level and the *input* image (saturation tests look at
    the image as recorded); ``stats`` are the image statistics at every model site. With
    ``copy=False`` ``cfa_dn`` itself is modified and returned (the pipeline passes stage 1's own
    new frame); it must then not be ``raw.cfa_dn``.
    """
    options = options or HotOptions()
    sel = select_sites(raw, model, fit, stats, subtracted=subtracted, options=options)
    counts = {name: int(np.count_nonzero(sel.reason == i)) for i, name in enumerate(REASONS)}
    if len(sel.index) == 0:
        return cfa_dn, Stage2Report(counts=counts, n_untouched_saturated=sel.n_untouched_saturated)
    yx = model.hot_yx[sel.index].astype(np.int64)
    interp = interpolate_sites(cfa_dn, raw.cfa, yx, white_level_dn=raw.white_level_dn,
                               bounds=tuple(raw.active_area), exclude_yx=model.hot_yx)
    old = cfa_dn[yx[:, 0], yx[:, 1]].astype(np.float64)
    # inverse-variance blend with the stage-1 value where that value exists (weight 0 when inf)
    w_sub = 1.0 / np.maximum(sel.sd_sub_dn, 1e-9) ** 2
    w_int = 1.0 / np.maximum(sel.sd_interp_dn, 1e-9) ** 2
    new = np.clip(np.rint((w_sub * old + w_int * interp) / (w_sub + w_int)), 0, raw.white_level_dn)
    out = cfa_dn.copy() if copy or cfa_dn is raw.cfa_dn else cfa_dn
    out[yx[:, 0], yx[:, 1]] = new.astype(out.dtype)
    return out, Stage2Report(counts=counts, n_untouched_saturated=sel.n_untouched_saturated, yx=yx, old_dn=old,
                             new_dn=new, reason=sel.reason)
