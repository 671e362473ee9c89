"""Stars are pixel-integrated Gaussians: checked against math.erf and a per-pixel reference."""

import math

import numpy as np
import pytest

from hotpixels.simulate.psf import erf, render_stamps


def test_erf_approximation_matches_math_erf():
    x = np.linspace(-6, 6, 2001)
    ref = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(erf(x) - ref)) < 2e-7


def _reference(shape, yx, sigma, flux):
    """Per-pixel loop: the flux on pixel (i, j) = product of 1-D integrals over its area."""
    out = np.zeros(shape)
    s2 = math.sqrt(2) * sigma
    for i in range(shape[0]):
        fy = 0.5 * (math.erf((i + 0.5 - yx[0]) / s2) - math.erf((i - 0.5 - yx[0]) / s2))
        for j in range(shape[1]):
            fx = 0.5 * (math.erf((j + 0.5 - yx[1]) / s2) - math.erf((j - 0.5 - yx[1]) / s2))
            out[i, j] = flux * fy * fx
    return out


@pytest.mark.parametrize("sigma", [0.3, 0.5, 1.0, 1.5])
def test_stamp_matches_per_pixel_integration_and_conserves_flux(sigma):
    yx = np.array([[10.3, 12.8]])
    got = render_stamps((24, 26), yx, np.array([sigma]), np.array([1000.0]))
    ref = _reference((24, 26), yx[0], sigma, 1000.0)
    np.testing.assert_allclose(got, ref, atol=1e-2)  # stamps stop at ~4 sigma: < 1e-5 of the flux lost
    assert abs(got.sum() - 1000.0) < 0.5


def test_sharp_star_puts_most_flux_in_one_pixel_and_colour_weights_follow_the_site():
    colours = (np.indices((9, 9)).sum(axis=0) + 1) % 3  # a per-site colour column; centre is 0
    weights = np.array([[1.0, 0.0, 0.0]]) * 500  # a star seen by colour 0 only (narrowband)
    got = render_stamps((9, 9), np.array([[4.0, 4.0]]), np.array([0.3]), weights, colours)
    assert colours[4, 4] == 0 and got[4, 4] > 0.8 * 500  # erf(0.5 / (0.3 sqrt 2))^2 = 0.82
    assert np.all(got[colours != 0] == 0)


def test_stars_partly_outside_the_canvas_lose_the_outside_flux_only():
    got = render_stamps((10, 10), np.array([[0.0, 5.0]]), np.array([1.0]), np.array([100.0]))
    assert 45 < got.sum() < 75
