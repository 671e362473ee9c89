"""A robust line through the origin: how strongly one photo shows a known per-site signal.

Both ways of knowing a body's hot pixels predict an excess per site that is right up to one
factor for the whole photo: a dark profile's excess scaled to the photo (stage 1,
:func:`hotpixels.correct.darkframe.estimate_scale`) and a learned profile's
``offset + rate x dark factor`` (:mod:`hotpixels.correct.learnedscale`), whose temperature tag
may be off by degrees or missing. The factor is measured in the photo itself: ``observed = s x
predicted`` over many sites, by iteratively reweighted least squares with Tukey's biweight on
residuals normalised by each site's predicted noise, so a star, an edge or a cosmic ray on a
few sites is rejected. Units are the caller's (DN here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

TUKEY_C = 4.685  # 95 % efficiency at Gaussian residuals
ITERATIONS = 12


@dataclass(frozen=True)
class SlopeFit:
    """``observed ≈ slope x predicted``: the slope, its standard error, the robust scale of the
    normalised residuals (1.0 when the predicted noise is right) and the biweights (0 = rejected)."""

    slope: float
    stderr: float
    robust_sigma: float
    weights: np.ndarray

    @property
    def n_inliers(self) -> int:
        return int(np.count_nonzero(self.weights > 0))


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value where the cumulative weight (in ascending value order) reaches half."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def robust_slope(observed: np.ndarray, predicted: np.ndarray,
                 variance_at: Callable[[float], np.ndarray]) -> SlopeFit:
    """Slope through 0 of ``observed`` against ``predicted`` (both (N,), N >= 1, predicted > 0).

    ``variance_at(slope)`` gives each site's noise variance (same units squared) when the slope
    is ``slope`` (the signal's own shot noise grows with it). Starts from the median ratio
    weighted by ``predicted``, so half the sites may be outliers.
    """
    v = np.asarray(observed, dtype=np.float64)
    e = np.asarray(predicted, dtype=np.float64)
    s = weighted_median(v / e, e)
    weights = np.ones_like(e)
    r = 1.0
    for _ in range(ITERATIONS):
        sd = np.sqrt(variance_at(s))
        z = (v - s * e) / sd
        r = max(1.4826 * float(np.median(np.abs(z))), 1e-9)
        u = z / (TUKEY_C * r)
        weights = np.where(np.abs(u) < 1.0, (1.0 - u ** 2) ** 2, 0.0)
        a = weights * e * e / sd ** 2
        if a.sum() <= 0:
            break
        s_new = float(np.sum(weights * e * v / sd ** 2) / a.sum())
        converged = abs(s_new - s) <= 1e-6 * max(abs(s), 1e-6)
        s = s_new
        if converged:
            break
    sd = np.sqrt(variance_at(s))
    info = float(np.sum(weights * e * e / sd ** 2))
    stderr = r / math.sqrt(info) if info > 0 else float("inf")
    return SlopeFit(slope=s, stderr=stderr, robust_sigma=r, weights=weights)
