"""Building the dark model from simulated darks, checked against the simulator's truth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotpixels.dng.cfa import CfaPattern
from hotpixels.errors import NotEnoughDarks
from hotpixels.profiles.build import build_profile_data
from hotpixels.profiles.darkmodel import FLAG_COLD, FLAG_SATURATED, FLAG_UNSTABLE
from hotpixels.profiles.neighbours import local_background, same_plane_offsets
from hotpixels.profiles.stack import stack_frames
from hotpixels.simulate.defects import amp_glow_e_s
from hotpixels.simulate.session import simulate_session

CFAS = ["RGGB", "BGGR", "GRBG", "GBRG", "XTRANS"]


def listed_mask(model) -> np.ndarray:
    mask = np.zeros(model.raw_shape, bool)
    mask[model.hot_yx[:, 0], model.hot_yx[:, 1]] = True
    return mask


def true_dark_excess_dn(session) -> np.ndarray:
    """Each truth hot site's mean dark signal over the darks minus the amp glow under it, DN."""
    t = session.truth
    glow = amp_glow_e_s(session.sensor) * t["dark_factor"][0] * t["dark_exposure_s"] / t["gain_e_per_dn"]
    return t["hot_dark_dn"].mean(axis=0) - glow[t["hot_yx"][:, 0], t["hot_yx"][:, 1]]


def defect_mask(session) -> np.ndarray:
    t = session.truth
    mask = np.zeros(session.sensor.shape, bool)
    mask[t["hot_yx"][:, 0], t["hot_yx"][:, 1]] = True
    mask[t["stuck_yx"][:, 0], t["stuck_yx"][:, 1]] = True
    return mask


@pytest.fixture(scope="module")
def rggb_session():
    return simulate_session("small", seed=11, n_darks=16, n_lights=0)


@pytest.fixture(scope="module")
def rggb_build(rggb_session):
    return build_profile_data(rggb_session.darks, 5.0, keep_master=True)


@pytest.mark.parametrize("cfa", CFAS)
def test_hot_pixel_map_finds_every_clear_hot_pixel_and_almost_nothing_else(cfa):
    session = simulate_session("small", seed=7, n_darks=12, n_lights=0, cfa=cfa)
    model = build_profile_data(session.darks, 5.0).model
    listed = listed_mask(model)
    t = session.truth
    clear = true_dark_excess_dn(session) >= 5 * t["read_noise_dn"]
    hy, hx = t["hot_yx"][clear, 0], t["hot_yx"][clear, 1]
    assert clear.sum() > 300
    assert listed[hy, hx].mean() >= 0.995
    false_pos = listed & ~defect_mask(session)
    assert false_pos.sum() <= 1e-4 * listed.size


def test_stuck_low_sites_are_listed_cold_with_negative_excess(rggb_session, rggb_build):
    model = rggb_build.model
    t = rggb_session.truth
    index = {(int(y), int(x)): i for i, (y, x) in enumerate(model.hot_yx)}
    black = rggb_session.sensor.black_map()[t["stuck_yx"][:, 0], t["stuck_yx"][:, 1]]
    far_below = black - t["stuck_dn"] > 10  # one stuck just under black looks like any dark site
    assert far_below.sum() >= 5
    stuck = [index.get((int(y), int(x))) for y, x in t["stuck_yx"][far_below]]
    assert all(i is not None for i in stuck)
    assert all(model.hot_flags[i] & FLAG_COLD for i in stuck)
    assert all(model.hot_excess_dn[i] < 0 for i in stuck)


def test_rts_pixels_that_toggled_within_the_darks_are_flagged_unstable(rggb_session, rggb_build):
    model = rggb_build.model
    t = rggb_session.truth
    high = t["rts_high_dark"]
    toggled = high.any(axis=0) & ~high.all(axis=0)
    unstable = np.zeros(model.raw_shape, bool)
    sel = model.flagged(FLAG_UNSTABLE)
    unstable[model.hot_yx[sel, 0], model.hot_yx[sel, 1]] = True
    ry, rx = t["rts_yx"][:, 0], t["rts_yx"][:, 1]
    assert toggled.sum() >= 10
    assert unstable[ry[toggled], rx[toggled]].mean() >= 0.9
    rts_mask = np.zeros(model.raw_shape, bool)
    rts_mask[ry, rx] = True
    assert (unstable & ~rts_mask).sum() <= 2  # stable sites are not called unstable


def test_amp_glow_lands_in_the_smooth_field_not_in_the_hot_table(rggb_session, rggb_build):
    model = rggb_build.model
    t = rggb_session.truth
    glow = amp_glow_e_s(rggb_session.sensor) * t["dark_factor"][0] * t["dark_exposure_s"] / t["gain_e_per_dn"]
    in_glow = glow > 3 * t["read_noise_dn"]
    assert in_glow.sum() > 1000
    false_pos = listed_mask(model) & ~defect_mask(rggb_session)
    assert (false_pos & in_glow).sum() == 0
    # the field follows the glow: the field's glow-corner level is within 15% of the truth there
    ys, xs = np.nonzero(in_glow & (glow > 0.5 * glow.max()))
    field = model.field_at(ys, xs)
    assert np.median(field / glow[ys, xs]) == pytest.approx(1.0, abs=0.15)


def test_field_plus_excess_gives_back_the_master_at_every_listed_site(rggb_build):
    model, master = rggb_build.model, rggb_build.master_dn
    ys, xs = model.hot_yx[:, 0], model.hot_yx[:, 1]
    np.testing.assert_allclose(model.field_at(ys, xs) + model.hot_excess_dn, master[ys, xs], atol=1e-2)


def test_sites_that_clip_at_the_white_level_are_flagged_saturated():
    session = simulate_session("small", seed=5, n_darks=6, n_lights=0, exposure_s=300, temp_dark_c=30)
    model = build_profile_data(session.darks, 5.0).model
    t = session.truth
    clipped = t["hot_saturated_dark"].all(axis=0)
    assert clipped.sum() >= 3
    sat = np.zeros(model.raw_shape, bool)
    sel = model.flagged(FLAG_SATURATED)
    sat[model.hot_yx[sel, 0], model.hot_yx[sel, 1]] = True
    assert sat[t["hot_yx"][clipped, 0], t["hot_yx"][clipped, 1]].all()


def test_per_frame_statistics_follow_each_dark(rggb_session, rggb_build):
    stats = rggb_build.frame_stats
    assert len(stats) == 16
    recorded = rggb_session.truth["temp_dark_recorded_c"]
    assert [s["temperature_c"] for s in stats] == recorded
    for s in stats:
        assert set(s["mean_dn"]) == {"R", "G", "B"}
        assert 0 < s["mean_dn"]["G"] < 20  # dark signal above black, glow and hot pixels included
        assert s["iso"] == 1600 and s["exposure_s"] == 30
        assert 0.8 * rggb_build.model.n_hot < s["hot_count"] <= rggb_build.model.n_hot


def test_no_dark_is_not_enough():
    with pytest.raises(NotEnoughDarks):
        build_profile_data([])


def test_a_single_dark_is_accepted_and_finds_the_hot_pixels_but_no_rts(rggb_session):
    result = build_profile_data(rggb_session.darks[:1])
    model = result.model
    truth = {tuple(v) for v in rggb_session.truth["hot_yx"].tolist()}
    found = {tuple(v) for v in model.hot_yx.tolist()}
    assert len(found & truth) > 0.6 * len(truth)
    assert not model.flagged(FLAG_UNSTABLE).any()  # RTS needs two or more darks


def _reference_clipped_mean(values: np.ndarray, sig: float, clip: float = 3.5) -> float:
    v = np.sort(values.astype(np.float64))
    n = len(v)
    med = 0.5 * (v[(n - 1) // 2] + v[n // 2])
    q1, q3 = v[int(round(0.25 * (n - 1)))], v[int(round(0.75 * (n - 1)))]
    width = max((q3 - q1) / 1.349, sig) * clip
    return float(v[np.abs(v - med) <= width].mean())


def test_master_dark_matches_a_per_pixel_reference_and_rejects_a_cosmic_ray():
    rng = np.random.default_rng(3)
    frames = [(rng.normal(600, 5, (12, 16))).astype(np.uint16) for _ in range(9)]
    frames[4][5, 7] = 4000  # a cosmic-ray hit in one dark
    cfa = CfaPattern.bayer("RGGB")
    noise = (25.0, 0.0)
    result = stack_frames(frames, cfa, noise, np.zeros(4), 16383)
    for y in range(12):
        for x in range(16):
            ref = _reference_clipped_mean(np.array([f[y, x] for f in frames]), 5.0)
            assert result.master_dn[y, x] == pytest.approx(ref, abs=1e-3)
    assert result.master_dn[5, 7] < 620
    # one jump in one dark cannot be told from a single RTS toggle: flagged, so it is interpolated
    assert np.argwhere(result.unstable).tolist() == [[5, 7]]


@pytest.mark.parametrize("cfa", [CfaPattern.bayer("GRBG", (1, 0)), CfaPattern.xtrans((1, 3))])
def test_local_background_is_the_median_of_same_plane_neighbours(cfa):
    rng = np.random.default_rng(1)
    arr = rng.normal(100, 10, (23, 29)).astype(np.float32)
    fast = local_background(arr, cfa, rows_per_block=7)
    rows, cols = cfa.repeat
    for y in range(23):
        for x in range(29):
            phase = ((y - cfa.origin_yx[0]) % rows, (x - cfa.origin_yx[1]) % cols)
            def ring(radius):  # in-frame neighbours only
                return [arr[y + dy, x + dx] for dy, dx in same_plane_offsets(cfa, phase, radius)
                        if 0 <= y + dy < 23 and 0 <= x + dx < 29]
            near = ring(2)  # fewer than 3 at an edge: one CFA period farther
            ref = np.median(near if len(near) >= 3 else ring(2 + max(rows, cols)))
            assert fast[y, x] == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("layout", ["strip", "ljpeg-tiles"])
def test_profile_from_dng_files_equals_profile_from_memory(tmp_path, layout):
    from hotpixels.profiles.build import build_dark_model

    session = simulate_session("small", seed=13, n_darks=4, n_lights=0)
    written = session.write(tmp_path, layout=layout)
    from_files = build_dark_model(written["darks"])
    in_memory = build_dark_model(session.darks)
    np.testing.assert_array_equal(from_files.hot_yx, in_memory.hot_yx)
    np.testing.assert_array_equal(from_files.hot_excess_dn, in_memory.hot_excess_dn)
    np.testing.assert_array_equal(from_files.field_dn, in_memory.field_dn)
    assert from_files.cfa == in_memory.cfa and from_files.active_area == in_memory.active_area


@pytest.mark.parametrize("preset", ["small", "small-xtrans"])
def test_frame_edge_sites_in_a_bright_glow_corner_are_not_called_hot(preset):
    session = simulate_session(preset, seed=2, n_darks=16, n_lights=0, iso=6400, exposure_s=120, temp_dark_c=28)
    model = build_profile_data(session.darks, 5.0).model
    t = session.truth
    glow = amp_glow_e_s(session.sensor) * t["dark_factor"][0] * t["dark_exposure_s"] / t["gain_e_per_dn"]
    assert glow.max() > 100 * t["read_noise_dn"] / 4  # a corner far brighter than the noise
    corner = glow > 0.5 * glow.max()
    listed = listed_mask(model) & ~defect_mask(session)
    assert (listed & corner).sum() == 0


@pytest.mark.parametrize("cfa", [CfaPattern.bayer("GBRG", (3, 5)), CfaPattern.xtrans((1, 3))])
def test_detection_field_equals_the_model_field_inside_and_continues_past_the_edge(cfa):
    from hotpixels.profiles.cells import extrapolated_field_full, grid_model

    block = 18 if cfa.is_xtrans else 16
    shape = (100, 150)
    gy, gx = np.mgrid[0:-(-shape[0] // block), 0:-(-shape[1] // block)].astype(np.float32)
    grid = np.stack([10 + 3 * gy + 2 * gx + p for p in range(cfa.n_planes)])  # a plane: exact under bilinear
    model_field = grid_model(grid, cfa, block, shape).field_full()
    extrap = extrapolated_field_full(grid, cfa, block, shape)
    inner = (slice(block // 2, shape[0] - block), slice(block // 2, shape[1] - block))
    np.testing.assert_allclose(extrap[inner], model_field[inner], rtol=1e-6)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    plane = cfa.plane_map(shape)
    expected = 10 + 3 * (ys / block - 0.5) + 2 * (xs / block - 0.5) + plane
    np.testing.assert_allclose(extrap, expected, rtol=1e-5)  # the plane continues to the corner


def test_temporal_sigma_of_hot_sites_is_read_plus_shot_noise(rggb_session, rggb_build):
    model = rggb_build.model
    t = rggb_session.truth
    index = {(int(y), int(x)): i for i, (y, x) in enumerate(model.hot_yx)}
    stable = ~t["hot_rts"] & ~t["hot_saturated_dark"].any(axis=0)
    rows = [(index[(int(y), int(x))], k) for k, (y, x) in enumerate(t["hot_yx"])
            if stable[k] and (int(y), int(x)) in index]
    listed, truth_k = np.array(rows).T
    dark_e = t["hot_dark_dn"].mean(axis=0)[truth_k] * t["gain_e_per_dn"]
    expected_dn = np.sqrt(t["read_noise_e"] ** 2 + dark_e) / t["gain_e_per_dn"]
    ratio = model.hot_temporal_sigma_dn[listed] / expected_dn
    assert len(ratio) > 300
    assert np.median(ratio) == pytest.approx(1.0, abs=0.1)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 20), seed=st.integers(0, 2**16), spread=st.floats(0.5, 50))
def test_master_level_matches_the_reference_for_any_number_of_darks(n, seed, spread):
    rng = np.random.default_rng(seed)
    frames = [np.clip(rng.normal(300, spread, (4, 6)), 0, 65535).astype(np.uint16) for _ in range(n)]
    result = stack_frames(frames, CfaPattern.bayer("RGGB"), (9.0, 0.0), np.zeros(4), 65535)
    for y in range(4):
        for x in range(6):
            values = np.array([f[y, x] for f in frames], dtype=np.float64)
            ref = np.median(values) if n < 5 else _reference_clipped_mean(values, 3.0)
            assert result.master_dn[y, x] == pytest.approx(ref, abs=1e-3)


@pytest.mark.parametrize("cfa", ["RGGB", "XTRANS"])
def test_per_colour_means_subtract_each_sites_own_black_level(cfa):
    from hotpixels.profiles.frames import colour_means_dn

    raw = simulate_session("small", seed=3, n_darks=1, n_lights=0, cfa=cfa).darks[0]
    t, l, b, r = raw.active_area
    above = (raw.cfa_dn.astype(np.float64) - raw.black_level_map(np.float64))[t:b, l:r]
    colours = raw.cfa.color_map(raw.shape)[t:b, l:r]
    means = colour_means_dn(raw)
    for c, name in enumerate("RGB"):
        assert means[name] == pytest.approx(above[colours == c].mean(), abs=1e-6)
