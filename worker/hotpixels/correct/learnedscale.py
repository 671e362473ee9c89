"""How strongly this photo shows its learned hot pixels: one factor on the learned prediction.

A learned profile predicts each site's excess (DN) from the photo's tags, ``offset_dn + rate_dn x
exposure_s x ISO / 100 x 2 ** ((T - 20 °C) / doubling_c)``. Across a whole photo that prediction
is off by one common factor whenever the tags are: temperature sensors err by degrees (3 °C is
41 % at a 6 °C doubling), many bodies record no temperature at all (20 °C is then assumed), and a
camera's own long-exposure noise reduction removes the dark signal altogether (factor 0). As stage
1 does with a dark profile (:func:`hotpixels.correct.darkframe.estimate_scale`), the factor is
measured in the photo: the observed excess (site minus its same-colour ring mean, DN) of the
stable learned sites that stand well out of the noise in a plain neighbourhood, against their
prediction, a robust line through 0 (:func:`hotpixels.robustfit.robust_slope`; a star or an edge
on a few sites is rejected).

The spread of those sites around the line, beyond their noise, is the part of the prediction's
error that is not common to the photo (each site's own fit from a finite set of photos); stage 2
weighs the prediction against interpolation with it (:mod:`hotpixels.correct.learnedhot`).
Without enough such sites (a bright scene, a short exposure) the prediction is used as learned,
with a generous relative error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..robustfit import robust_slope

FIT_MIN_SIGMA = 5.0  # a site enters the fit when its prediction stands this many σ of the photo's noise out
PLAIN_TEXTURE = 2.0  # ... and its ring's robust spread is at most this many times that noise (no star, no edge)
MIN_FIT_SITES = 8
FIT_RELATIVE_ERROR = 0.1  # per-site relative error assumed while fitting (so the strongest sites do not decide alone)
UNFITTED_ERROR = 0.3  # relative error of a prediction the photo could not check (temperature sensors err by degrees)
MIN_ERROR = 0.03  # the per-site error found is never taken below this
MAX_ERROR = 1.0


@dataclass(frozen=True)
class PhotoScale:
    """``scale`` x the learned prediction is this photo's excess; ``relative_error`` the per-site
    error of the scaled prediction (a fraction of it); ``method`` "fit" or "as learned"."""

    scale: float
    relative_error: float
    method: str
    n_sites: int = 0
    n_inliers: int = 0
    stderr: float | None = None

    def to_json(self) -> dict:
        return {"scale": round(self.scale, 4), "relative_error": round(self.relative_error, 4), "method": self.method,
                "n_fit_sites": self.n_sites, "n_inliers": self.n_inliers,
                "stderr": None if self.stderr is None else round(self.stderr, 4)}


def photo_scale(observed_dn: np.ndarray, predicted_dn: np.ndarray, noise_sd_dn: np.ndarray, texture_sd_dn: np.ndarray,
                fittable: np.ndarray, shot_dn_per_dn: float, ring_size: np.ndarray) -> PhotoScale:
    """The photo's factor on the learned prediction, from per-site arrays (all (N,)).

    ``observed_dn``: site minus ring mean in this photo; ``predicted_dn``: the learned prediction
    at its tags; ``noise_sd_dn``: the photo's noise σ at the ring's level; ``texture_sd_dn``: the
    ring's robust spread; ``fittable``: sites that may enter at all (stable, not cold, centre and
    ring below saturation); ``shot_dn_per_dn``: the noise model's DN of variance per DN of signal
    (the excess's own shot noise); ``ring_size``: ring members, for the ring mean's noise.
    """
    pred = np.asarray(predicted_dn, dtype=np.float64)
    sd = np.asarray(noise_sd_dn, dtype=np.float64)
    sel = (fittable & np.isfinite(pred) & (pred >= FIT_MIN_SIGMA * sd)
           & (np.asarray(texture_sd_dn) <= PLAIN_TEXTURE * sd))
    n = int(np.count_nonzero(sel))
    if n < MIN_FIT_SITES:
        return PhotoScale(1.0, UNFITTED_ERROR, "as learned", n_sites=n)
    v, e = np.asarray(observed_dn, np.float64)[sel], pred[sel]
    noise2 = sd[sel] ** 2 * (1.0 + 1.0 / np.maximum(ring_size[sel], 1))
    b = max(float(shot_dn_per_dn), 0.0)

    def variance_at(s: float, rel: float = FIT_RELATIVE_ERROR) -> np.ndarray:
        q = max(s, 0.0) * e
        return noise2 + b * q + (rel * q) ** 2

    fit = robust_slope(v, e, variance_at)
    scale = max(fit.slope, 0.0)
    inl = fit.weights > 0
    rel = _relative_error(v[inl] - scale * e[inl], noise2[inl] + b * scale * e[inl], scale * e[inl])
    return PhotoScale(scale, rel, "fit", n_sites=n, n_inliers=fit.n_inliers, stderr=fit.stderr)


def _relative_error(residual: np.ndarray, noise2: np.ndarray, signal: np.ndarray) -> float:
    """The relative error ``r`` that makes the residuals' robust spread, normalised by
    ``sqrt(noise2 + (r x signal)²)``, equal 1 (bisection; clipped to [MIN_ERROR, MAX_ERROR])."""
    if not len(residual):
        return UNFITTED_ERROR

    def spread(r: float) -> float:
        return 1.4826 * float(np.median(np.abs(residual) / np.sqrt(noise2 + (r * signal) ** 2)))

    lo, hi = MIN_ERROR, MAX_ERROR
    if spread(lo) <= 1.0:
        return lo
    if spread(hi) >= 1.0:
        return hi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if spread(mid) > 1.0 else (lo, mid)
    return 0.5 * (lo + hi)
