"""Edge-aware interpolation of hot sites: the vectorised code against a slow per-pixel reference,
and the behaviour a photographer sees (edges kept, clusters and frame borders handled)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hotpixels.correct.interpolate import interpolate_sites
from hotpixels.dng.cfa import CfaPattern

# odd ActiveArea offsets: the pattern is anchored at (3, 5), not at (0, 0)
PATTERNS = [
    pytest.param(CfaPattern.bayer("RGGB", (3, 5)), id="RGGB"),
    pytest.param(CfaPattern.bayer("BGGR", (3, 5)), id="BGGR"),
    pytest.param(CfaPattern.bayer("GRBG", (3, 5)), id="GRBG"),
    pytest.param(CfaPattern.bayer("GBRG", (3, 5)), id="GBRG"),
    pytest.param(CfaPattern.xtrans((3, 5)), id="X-Trans"),
]


# --- the slow, obvious reference -------------------------------------------------------------------
def _reference_pairs(cfa: CfaPattern, y: int, x: int, level: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    colour = cfa.color_at(y, x)

    def same(dy, dx):
        return (dy, dx) != (0, 0) and cfa.color_at(y + dy, x + dx) == colour

    def offsets(r):
        return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if same(dy, dx)]

    def exact(r):
        return [((dy, dx), (-dy, -dx)) for dy, dx in offsets(r) if (dy > 0 or (dy == 0 and dx > 0)) and same(-dy, -dx)]

    if len(exact(2)) >= 4:
        pairs = exact(2 + 2 * level)
    else:
        offs = offsets(3 + 2 * level)
        pairs = []
        for i, a in enumerate(offs):
            for b in offs[i + 1:]:
                cos = (a[0] * b[0] + a[1] * b[1]) / (math.hypot(*a) * math.hypot(*b))
                if cos <= -0.9:
                    pairs.append((a, b))
    for uy, ux in ((0, 1), (1, 0), (1, 1), (1, -1)):
        def on_line(d):
            return d[0] * ux - d[1] * uy == 0

        if any(on_line(a) and on_line(b) for a, b in pairs):
            continue
        line = [d for d in offsets(6) if on_line(d)]
        pos = [d for d in line if d[0] * uy + d[1] * ux > 0]
        neg = [d for d in line if d[0] * uy + d[1] * ux < 0]
        if pos and neg:
            pairs.append((min(pos, key=lambda d: max(abs(d[0]), abs(d[1]))), min(neg, key=lambda d: max(abs(d[0]), abs(d[1])))))
    return pairs


def _reference(cfa_dn, cfa, sites, bad_mask, bounds, white):
    top, left, bottom, right = bounds
    bad = {tuple(s) for s in sites.tolist()}

    def good(y, x):
        inside = top <= y < bottom and left <= x < right
        return inside and (y, x) not in bad and not (bad_mask is not None and bad_mask[y, x])

    out = []
    for y, x in sites.tolist():
        value = None
        for level in (0, 1):
            usable = []
            for a, b in _reference_pairs(cfa, y, x, level):
                if good(y + a[0], x + a[1]) and good(y + b[0], x + b[1]):
                    va, vb = float(cfa_dn[y + a[0], x + a[1]]), float(cfa_dn[y + b[0], x + b[1]])
                    na, nb = math.hypot(*a), math.hypot(*b)
                    usable.append(((nb * va + na * vb) / (na + nb), abs(va - vb), (na + nb) / 2))
            if usable:
                g_min = min(u[1] for u in usable)
                weights = [1.0 / ((g + g_min + 1.0) ** 2 * d) for _, g, d in usable]
                value = sum(w * e for w, (e, _, _) in zip(weights, usable)) / sum(weights)
                break
        if value is None:
            colour = cfa.color_at(y, x)
            singles = [
                float(cfa_dn[y + dy, x + dx])
                for dy in range(-4, 5)
                for dx in range(-4, 5)
                if (dy, dx) != (0, 0) and cfa.color_at(y + dy, x + dx) == colour and good(y + dy, x + dx)
            ]
            value = float(np.median(singles)) if singles else float(cfa_dn[y, x])
        out.append(min(max(value, 0.0), white))
    return np.array(out)


def _textured_frame(shape, rng):
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    frame = 800 + 3 * yy + 2 * xx + 400 * (np.sin(xx / 3.0) * np.cos(yy / 5.0) > 0.3)
    frame = frame + rng.normal(0, 6, shape)
    return np.clip(frame, 0, 4095).astype(np.uint16)


@pytest.mark.parametrize("cfa", PATTERNS)
def test_vectorised_interpolation_matches_per_pixel_reference(cfa):
    rng = np.random.default_rng(7)
    shape = (64, 75)
    bounds = (3, 5, 61, 71)
    frame = _textured_frame(shape, rng)
    ys = rng.integers(bounds[0], bounds[2], 120)
    xs = rng.integers(bounds[1], bounds[3], 120)
    extra = [(3, 5), (3, 70), (60, 5), (60, 70), (30, 5), (3, 40)]  # ActiveArea corners and borders
    cluster = [(20 + dy, 30 + dx) for dy in range(-2, 3) for dx in range(-2, 3)]  # 5x5: every colour
    sites = np.unique(np.concatenate([np.stack([ys, xs], 1), extra, cluster]), axis=0)
    frame[sites[:, 0], sites[:, 1]] = 4000  # hot
    bad_mask = np.zeros(shape, bool)
    bad_mask[rng.integers(0, shape[0], 40), rng.integers(0, shape[1], 40)] = True

    fast = interpolate_sites(frame, cfa, sites, bad_mask, white_level_dn=4095, bounds=bounds)
    slow = _reference(frame, cfa, sites, bad_mask, bounds, 4095.0)

    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("cfa", PATTERNS)
def test_hot_sites_in_a_flat_noisy_field_get_the_background_level(cfa):
    rng = np.random.default_rng(3)
    frame = np.clip(rng.normal(1000, 10, (60, 60)), 0, None).astype(np.uint16)
    sites = np.stack([rng.integers(0, 60, 200), rng.integers(0, 60, 200)], 1)
    frame[sites[:, 0], sites[:, 1]] = 15000

    values = interpolate_sites(frame, cfa, sites)

    assert np.all(np.abs(values - 1000) < 40)  # a few σ of the background, not the hot value


@pytest.mark.parametrize("cfa", PATTERNS)
@pytest.mark.parametrize("orientation", ["vertical", "horizontal", "diagonal", "antidiagonal"])
def test_an_edge_through_a_hot_site_is_preserved(cfa, orientation):
    rng = np.random.default_rng(11)
    n = 72
    yy, xx = np.mgrid[0:n, 0:n]
    side = {"vertical": xx - 36, "horizontal": yy - 36, "diagonal": yy - xx, "antidiagonal": yy + xx - 71}[orientation]
    low, high = 1000.0, 3000.0
    truth = np.where(side >= 0, high, low)
    frame = (truth + rng.normal(0, 3, truth.shape)).astype(np.uint16)
    # sparse sites (every 7th along the edge) on both sides of it, away from the frame border
    on_edge = np.argwhere((np.abs(side) <= 0) | (side == -1))
    on_edge = on_edge[(on_edge.min(axis=1) >= 8) & (on_edge.max(axis=1) < n - 8)][::7]
    frame[on_edge[:, 0], on_edge[:, 1]] = 60000

    values = interpolate_sites(frame, cfa, on_edge, white_level_dn=65535)

    expected = truth[on_edge[:, 0], on_edge[:, 1]]
    error = np.abs(values - expected)
    assert np.all(error < 0.1 * (high - low)), f"edge blurred: worst error {error.max():.0f} DN"


@pytest.mark.parametrize("cfa", PATTERNS)
def test_adjacent_pairs_and_clusters_do_not_feed_each_other(cfa):
    frame = np.full((50, 50), 500, np.uint16)
    block = np.array([(y, x) for y in range(20, 24) for x in range(20, 24)])  # 4x4 cluster, all colours
    frame[block[:, 0], block[:, 1]] = 9000

    values = interpolate_sites(frame, cfa, block)

    np.testing.assert_allclose(values, 500.0)


@pytest.mark.parametrize("cfa", PATTERNS)
def test_sites_at_the_frame_corners_use_the_neighbours_that_exist(cfa):
    frame = np.full((30, 40), 700, np.uint16)
    corners = np.array([(0, 0), (0, 39), (29, 0), (29, 39), (0, 20), (15, 0)])
    frame[corners[:, 0], corners[:, 1]] = 30000

    values = interpolate_sites(frame, cfa, corners)

    np.testing.assert_allclose(values, 700.0)


def test_neighbours_outside_the_active_area_are_not_used():
    cfa = CfaPattern.bayer("RGGB", (3, 5))
    frame = np.full((40, 40), 600, np.uint16)
    frame[:3, :] = 0  # masked border rows: black, not image
    frame[:, :5] = 0
    site = np.array([(3, 5)])

    inside = interpolate_sites(frame, cfa, site, bounds=(3, 5, 40, 40))

    assert inside[0] == pytest.approx(600.0)


def test_result_is_clipped_to_the_white_level_and_input_is_untouched():
    cfa = CfaPattern.bayer("RGGB")
    frame = np.full((20, 20), 4095, np.uint16)
    before = frame.copy()
    values = interpolate_sites(frame, cfa, np.array([(10, 10)]), white_level_dn=4000)
    assert values[0] == 4000.0
    np.testing.assert_array_equal(frame, before)
