"""Stage 2 with a learned profile: interpolate the learned sites that would show in this photo.

A learned profile (:mod:`hotpixels.profiles.learn`) knows, per site, a model of the excess in DN
against the photo's settings, ``offset_dn + rate_dn x dark factor`` (``exposure_s x ISO / 100 x
2 ** ((T - 20 °C) / doubling_c)``, :func:`hotpixels.profiles.learnstats.dark_factor`). It has no
dark field, so there is nothing to subtract (stage 1 needs a dark-frame profile): a site is
*interpolated* (same-colour, edge-aware, :func:`hotpixels.correct.interpolate.interpolate_sites`)
when its predicted excess is at least ``k_sigma`` (0.5, as stage 2's ``trust_sigma``) times the
photo's own noise at the site (the photo's noise model,
:func:`hotpixels.candidates.estimate_noise`, at the level of the site's same-colour
ring; at the edge of the ActiveArea the part of the ring inside it, :mod:`hotpixels.ringat`): a
smaller excess would not stand out of the noise. Sites flagged unstable (RTS: their level
in this photo is unknown) are interpolated whenever their mean predicted excess is that
significant, cold ones (dead, stuck low) always, and every site is when the photo records no exposure time or ISO (nothing to predict
from). A site clipped at 0.98 x WhiteLevel is interpolated outright (its recorded value says
nothing about the light under it); the others blend the interpolation with the value less its
prediction. Never touched: sites whose same-colour ring, or the wider same-colour neighbourhood
stage 2 with darks looks at (:mod:`hotpixels.correct.sitestats`), reaches 0.98 x WhiteLevel (no
trustworthy neighbours), sites outside the ActiveArea and ``skip_yx`` (the sites a dark-frame
profile's stages already own, when a dark and a learned profile are combined).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dng.rawimage import RawImage
from .interpolate import interpolate_sites
from .knownhot import REASONS, Stage2Report
from .learnedscale import photo_scale

K_SIGMA = 0.5
SATURATION_FRACTION = 0.98
TEXTURE_FACTOR = 0.5  # as stage 2 (:class:`hotpixels.correct.knownhot.HotOptions`)


@dataclass
class LearnedSites:
    """A learned profile's sites and model, as stage 2 needs them."""

    yx: np.ndarray  # (N, 2) int64 full frame
    offset_dn: np.ndarray  # (N,)
    rate_dn: np.ndarray  # (N,) DN per unit of dark factor
    unstable: np.ndarray  # (N,) bool
    doubling_c: float
    cold: np.ndarray | None = None  # (N,) bool: dead / stuck low, interpolated in every photo

    @classmethod
    def from_profile(cls, profile) -> "LearnedSites":
        from ..profiles.darkmodel import FLAG_COLD, FLAG_UNSTABLE
        from ..profiles.learnstats import DOUBLING_C

        la = profile.learned
        model = profile.model
        doubling = float((profile.meta.get("learned") or {}).get("doubling_c") or DOUBLING_C)
        return cls(yx=model.hot_yx.astype(np.int64), offset_dn=la["learned_offset_dn"].astype(np.float64),
                   rate_dn=la["learned_rate_dn"].astype(np.float64), unstable=model.flagged(FLAG_UNSTABLE),
                   doubling_c=doubling, cold=model.flagged(FLAG_COLD))

    def predicted_dn(self, raw: RawImage) -> np.ndarray:
        """Predicted excess at this photo's settings, DN (+inf when they are not recorded)."""
        from ..profiles.learnstats import dark_factor

        m = raw.metadata
        g = dark_factor(m.exposure_s, m.iso, m.temperature_c, self.doubling_c)
        if g is None:
            return np.full(len(self.yx), np.inf)
        return self.offset_dn + self.rate_dn * g


def interpolate_learned(cfa_dn: np.ndarray, raw: RawImage, learned: LearnedSites, *, skip_yx: np.ndarray | None = None,
                        exclude_yx: np.ndarray | None = None, k_sigma: float = K_SIGMA,
                        copy: bool = True) -> tuple[np.ndarray, Stage2Report, dict[str, Any]]:
    """Interpolate the learned sites that stand out at this photo's settings (module docstring).

    ``cfa_dn`` is the frame to correct (the raw frame or an earlier stage's output); ``raw`` gives
    the geometry, levels and settings, and the photo as recorded for the noise and saturation
    tests. ``exclude_yx``: more sites never used as neighbours (a combined dark profile's).
    Returns the frame, the stage report (reasons ``learned_excess``/``learned_unstable``) and
    ``{"predicted": "settings" | "unknown settings", "n_learned", "n_significant"}``.
    """
    from ..candidates import estimate_noise, mean_black
    from ..ringat import ring_mean_max, ring_members_at, ring_robust_sd
    from .sitestats import site_stats

    n = len(learned.yx)
    counts = {name: 0 for name in REASONS}
    info = {"n_learned": int(n), "predicted": "settings", "n_significant": 0}
    if n == 0:
        return cfa_dn, Stage2Report(counts=counts), info
    pred = learned.predicted_dn(raw)
    if not np.all(np.isfinite(pred)):
        info["predicted"] = "unknown settings: every learned site interpolated"
    yx = learned.yx
    t, l, b, r = raw.active_area  # up to the edge: the ring there is the part inside the ActiveArea
    inside = (yx[:, 0] >= t) & (yx[:, 0] < b) & (yx[:, 1] >= l) & (yx[:, 1] < r)
    if skip_yx is not None and len(skip_yx):
        mask = np.zeros(raw.shape, bool)
        mask[skip_yx[:, 0], skip_yx[:, 1]] = True
        inside &= ~mask[yx[:, 0], yx[:, 1]]
    idx = np.nonzero(inside)[0]
    black = mean_black(raw.black_repeat_dn)
    noise = estimate_noise(raw.cfa_dn, raw.cfa, raw.active_area, black)
    members = ring_members_at(raw.cfa, yx[idx], raw.active_area)
    ring, ring_max = ring_mean_max(raw.cfa_dn, members)
    sd = noise.sigma_dn(ring - black)
    texture_sd = ring_robust_sd(raw.cfa_dn, members)
    saturation = SATURATION_FRACTION * float(raw.white_level_dn)
    # as stage 2 with darks: nothing saturated among the same-colour neighbours (the ring, and the
    # wider neighbourhood stage 2 looks at, which on X-Trans reaches a star core the ring misses)
    wide = site_stats(raw.cfa_dn, raw.cfa, yx[idx], bounds=tuple(raw.active_area))
    usable = (ring_max < saturation) & (wide.max_neighbour_dn < saturation)
    cold = learned.cold[idx] if learned.cold is not None else np.zeros(len(idx), bool)
    centre = raw.cfa_dn[yx[idx, 0], yx[idx, 1]].astype(np.float64)
    scale = photo_scale(centre - ring, pred[idx], sd, texture_sd, usable & (centre < saturation)
                        & ~learned.unstable[idx] & ~cold, noise.b_dn, members[2].sum(axis=1))
    info["photo_scale"] = scale.to_json()
    pred = pred * scale.scale
    significant = (pred[idx] >= k_sigma * sd) | cold
    chosen = idx[significant & usable]
    info["n_significant"] = int(np.count_nonzero(significant))
    reason = np.where(learned.unstable[chosen], REASONS.index("learned_unstable"),
                      REASONS.index("learned_excess")).astype(np.int8)
    reason[cold[significant & usable]] = REASONS.index("cold")
    clipped = (centre >= saturation)[significant & usable]  # the light under the defect is unknown
    reason[clipped] = REASONS.index("saturated_in_image")
    for i, name in enumerate(REASONS):
        counts[name] = int(np.count_nonzero(reason == i))
    n_sat = int(np.count_nonzero(significant & ~usable))
    if not len(chosen):
        return cfa_dn, Stage2Report(counts=counts, n_untouched_saturated=n_sat), info
    sites = yx[chosen]
    neighbours_not = yx if exclude_yx is None or not len(exclude_yx) else np.concatenate([yx, exclude_yx.astype(np.int64)])
    interp = interpolate_sites(cfa_dn, raw.cfa, sites, white_level_dn=raw.white_level_dn, bounds=tuple(raw.active_area),
                               exclude_yx=neighbours_not)
    old = cfa_dn[sites[:, 0], sites[:, 1]].astype(np.float64)
    # blend with the value less its predicted excess, by inverse variance (as stage 2 does with stage 1's value)
    keep = significant & usable
    p = pred[chosen]
    trusted = np.isfinite(p) & ~learned.unstable[chosen] & ~cold[keep] & ~clipped
    p = np.where(trusted, p, 0.0)
    sigma_noise = sd[keep]
    texture = np.maximum(texture_sd[keep] ** 2 - sigma_noise ** 2, 0.0)
    sd_interp = np.sqrt(TEXTURE_FACTOR * texture + sigma_noise ** 2 / 4.0)
    sd_sub = np.where(trusted, np.sqrt((scale.relative_error * p) ** 2 + noise.b_dn * np.maximum(p, 0.0)), np.inf)
    w_sub = 1.0 / np.maximum(sd_sub, 1e-9) ** 2
    w_int = 1.0 / np.maximum(sd_interp, 1e-9) ** 2
    new = np.clip(np.rint((w_sub * (old - p) + w_int * interp) / (w_sub + w_int)), 0, raw.white_level_dn)
    out = cfa_dn.copy() if copy or cfa_dn is raw.cfa_dn else cfa_dn
    out[sites[:, 0], sites[:, 1]] = new.astype(out.dtype)
    return out, Stage2Report(counts=counts, n_untouched_saturated=n_sat, yx=sites, old_dn=old, new_dn=new,
                             reason=reason), info


@dataclass
class CombinedProfile:
    """A dark-frame profile and a learned profile of the same body, applied together: stages 1-2
    as the dark profile says, then the learned sites the dark profile lacks (defects that developed
    since the darks, or that they missed)."""

    dark: Any  # Profile (kind "dark")
    learned: Any  # Profile (kind "learned")

    @property
    def name(self) -> str:
        return f"{self.dark.name} + {self.learned.name}"

    @property
    def model(self):
        return self.dark.model

    @property
    def meta(self) -> dict:
        return self.dark.meta


def split_profile(profile) -> tuple[Any, LearnedSites | None]:
    """``(dark profile or model or None, learned sites or None)`` of what ``correct`` was given."""
    if profile is None:
        return None, None
    if isinstance(profile, CombinedProfile):
        return profile.dark, LearnedSites.from_profile(profile.learned)
    if getattr(profile, "kind", "dark") == "learned" and getattr(profile, "learned", None) is not None:
        return None, LearnedSites.from_profile(profile)
    return profile, None


@dataclass
class SiteSet:
    """The sites earlier stages own (stage 3 leaves them alone; batch proposals skip them)."""

    hot_yx: np.ndarray

    @property
    def n_hot(self) -> int:
        return int(len(self.hot_yx))


def owned_sites(model, learned: LearnedSites | None):
    """The dark model's sites plus the learned ones (None when there are none)."""
    parts = [np.asarray(m, np.int64).reshape(-1, 2) for m in
             (getattr(model, "hot_yx", None), learned.yx if learned is not None else None) if m is not None]
    if not parts:
        return None
    return SiteSet(np.concatenate(parts)) if len(parts) > 1 else (model if learned is None else SiteSet(parts[0]))


def run_learned(cfa_dn: np.ndarray, raw: RawImage, learned: LearnedSites, dark_model, hot_stage: dict,
                changes) -> tuple[np.ndarray, dict[str, Any]]:
    """Stage 2's learned part inside ``correct``: the new frame and the merged ``hot`` stage entry.

    ``dark_model``: the dark profile's model when its stage 2 ran (its sites are then skipped and
    never used as neighbours); ``hot_stage`` its stage entry so far.
    """
    skip = dark_model.hot_yx.astype(np.int64) if dark_model is not None and dark_model.n_hot else None
    new, rep, info = interpolate_learned(cfa_dn, raw, learned, skip_yx=skip, exclude_yx=skip,
                                         copy=cfa_dn is raw.cfa_dn)
    changes.add("hot", rep.yx, rep.old_dn, rep.new_dn, [REASONS[k] for k in rep.reason])
    out = dict(hot_stage) if hot_stage.get("ran") else {"ran": True, "n_interpolated": 0, "by_reason": {},
                                                          "n_untouched_saturated": 0}
    out["n_interpolated"] = int(out.get("n_interpolated", 0)) + rep.n_interpolated
    by = dict(out.get("by_reason") or {})
    for k, v in rep.counts.items():
        by[k] = int(by.get(k, 0)) + int(v)
    out["by_reason"] = by
    out["n_untouched_saturated"] = int(out.get("n_untouched_saturated", 0)) + rep.n_untouched_saturated
    out["learned"] = {**info, "n_interpolated": rep.n_interpolated}
    return new, out
