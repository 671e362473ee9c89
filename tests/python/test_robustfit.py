"""The robust line through 0 shared by stage 1 (dark scale) and stage 2 (learned photo scale).

Stories: a photo's scale is recovered when a quarter of its sites sit under stars; the slope's
standard error is honest; the weighted median agrees with the slow definition (each value repeated
by its weight).
"""

from __future__ import annotations

import numpy as np

from hotpixels.robustfit import robust_slope, weighted_median


def _sites(rng, n: int, slope: float, read_var: float = 25.0, shot: float = 0.5):
    predicted = rng.uniform(20.0, 2000.0, n)  # DN

    def variance_at(s: float) -> np.ndarray:
        return read_var + shot * max(s, 0.0) * predicted

    observed = slope * predicted + rng.normal(0.0, 1.0, n) * np.sqrt(variance_at(slope))
    return observed, predicted, variance_at


def test_the_slope_is_recovered_when_a_quarter_of_the_sites_sit_under_stars():
    rng = np.random.default_rng(7)
    observed, predicted, variance_at = _sites(rng, 400, 1.7)
    stars = rng.choice(400, 100, replace=False)
    observed[stars] += rng.uniform(500.0, 5000.0, 100)  # starlight on top of the excess
    fit = robust_slope(observed, predicted, variance_at)
    assert abs(fit.slope - 1.7) < 4 * fit.stderr
    assert fit.stderr < 0.01
    assert np.mean(fit.weights[stars] == 0) > 0.9  # the stars were rejected ...
    assert fit.n_inliers >= 290  # ... and the clean sites kept
    naive = float(np.sum(observed * predicted) / np.sum(predicted ** 2))
    assert naive - 1.7 > 10 * fit.stderr  # (least squares would have been fooled)


def test_the_standard_error_matches_the_scatter_of_repeated_fits():
    rng = np.random.default_rng(3)
    fits = [robust_slope(*_sites(rng, 200, 0.8)) for _ in range(60)]
    slopes = np.array([f.slope for f in fits])
    stderr = np.median([f.stderr for f in fits])
    assert abs(slopes.mean() - 0.8) < 3 * stderr / np.sqrt(len(fits)) + 1e-4
    assert 0.7 < slopes.std() / stderr < 1.4
    assert all(0.8 < f.robust_sigma < 1.25 for f in fits)  # normalised residuals ~ N(0, 1)


def test_a_photo_without_the_signal_gets_slope_zero():
    """In-camera dark subtraction: the sites show noise only."""
    rng = np.random.default_rng(5)
    observed, predicted, variance_at = _sites(rng, 300, 0.0)
    fit = robust_slope(observed, predicted, variance_at)
    assert abs(fit.slope) < 4 * fit.stderr < 0.02


def test_the_weighted_median_agrees_with_repeating_each_value_by_its_weight():
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        values = rng.normal(0.0, 1.0, n)
        weights = rng.integers(1, 6, n)
        slow = np.sort(np.repeat(values, weights))
        # the lower median of the repeated list: the first value whose cumulative weight reaches half
        want = slow[int(np.ceil(0.5 * len(slow))) - 1]
        assert weighted_median(values, weights.astype(float)) == want
