"""Stage 3: residual hot pixels — candidates, CNN scoring, repair, batch evidence."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_module, sample
from hotpixels.correct.batch import detect_batch, propose_profile_additions
from hotpixels.candidates import NoiseModel, find_candidates, ring_offsets
from hotpixels.correct.residual import correct_residual, detect_residual
from hotpixels.dng.cfa import CfaPattern
from hotpixels.simulate.render import render_light
from hotpixels.simulate.scene import make_scene
from hotpixels.simulate.sensor import make_sensor, rng_for

CFAS = ["RGGB", "BGGR", "GRBG", "GBRG", "XTRANS"]


def _cfa(name, origin=(0, 0)):
    return CfaPattern.xtrans(origin) if name == "XTRANS" else CfaPattern.bayer(name, origin)


def _reference_candidates(img, cfa, box, noise, black, k_mean, k_max):
    """Slow per-site loop: the rule of hotpixels.candidates written out plainly."""
    t, l, b, r = box
    found = set()
    for y in range(t + 2, b - 2):
        for x in range(l + 2, r - 2):
            offs = ring_offsets(cfa, cfa.phase_of(y, x))
            ring = img[y + offs[:, 0], x + offs[:, 1]].astype(np.float64)
            v = float(img[y, x])
            sd = np.sqrt(max(noise.a_dn2 + noise.b_dn * max(ring.mean() - black, 0.0), noise.floor_dn2))
            if v - ring.mean() > k_mean * sd and v - ring.max() > k_max * sd:
                found.add((y, x))
    return found


@pytest.mark.parametrize("name", CFAS)
def test_candidate_detector_agrees_with_a_slow_per_site_loop(name):
    rng = np.random.default_rng(3)
    cfa = _cfa(name, (1, 3))
    h, w = 60, 70
    img = (200 + 40 * cfa.color_map((h, w)) + rng.normal(0, 4, (h, w))).astype(np.float32)
    img[rng.integers(4, h - 4, 15), rng.integers(4, w - 4, 15)] += rng.uniform(10, 80, 15).astype(np.float32)
    img = np.rint(img).astype(np.uint16)
    noise = NoiseModel(9.0, 0.05, 4.0)
    box = (1, 3, h - 1, w - 2)
    fast = find_candidates(img, cfa, box, noise, 100.0, k_mean=2.5, k_max=0.3)
    slow = _reference_candidates(img, cfa, box, noise, 100.0, 2.5, 0.3)
    assert {tuple(p) for p in fast.yx.tolist()} == slow
    assert len(slow) >= 10


@pytest.mark.parametrize("name", ["RGGB", "GBRG"])
def test_the_integer_ring_maximum_path_finds_exactly_what_the_float_path_finds(name):
    """Bayer frames stored as integers take the fast path (ring maximum on the integers, ring mean
    only where a site beats it); the same frame as float32 takes the general one: same sites, same figures."""
    sensor, fr = _star_frame("stars", seed=9, cfa=name)
    frame = fr.clean_dn.copy()
    rng = np.random.default_rng(2)
    t, l, b, r = sensor.active_area
    frame[rng.integers(t + 2, b - 2, 60), rng.integers(l + 2, r - 2, 60)] += rng.integers(30, 3000, 60).astype(np.uint16)
    noise = NoiseModel(30.0, 0.4, 9.0)
    fast = find_candidates(frame, sensor.cfa, sensor.active_area, noise, sensor.black_map())
    general = find_candidates(frame.astype(np.float32), sensor.cfa, sensor.active_area, noise, sensor.black_map())
    assert len(fast) > 60
    for field in ("yx", "excess_sigma", "sigma_dn", "ring_mean_dn"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(general, field))


def _star_frame(kind, seed=5, cfa=None, sigma_range=None):
    sensor = make_sensor("small", seed, cfa=cfa, height=263, width=395)
    scene = make_scene(sensor, kind, seed, sigma_range_px=sigma_range)
    fr = render_light(sensor, scene, rng_for(seed, "light", 0), exposure_s=60.0, temp_c=20.0, iso=1600,
                      residual=False)
    return sensor, fr


@pytest.mark.parametrize("kind,cfa,sigma,sensitivity", [
    ("stars", "RGGB", (0.5, 0.5), 0.5),  # sigma 0.5 px stars, default sensitivity
    ("stars", "XTRANS", None, 0.5),
    # red-only (Hα) stars, sigma 0.5-1.5 px: the faint sharp ones are single red spikes; the frame
    # context (resolved stars light red only) keeps the default cut off them
    ("narrowband", "GBRG", None, 0.5),
])
def test_synthetic_star_field_without_defects_is_left_unchanged(kind, cfa, sigma, sensitivity):
    sensor, fr = _star_frame(kind, cfa=cfa, sigma_range=sigma)
    frame = fr.clean_dn  # stars, sky and noise only: nothing to correct
    out, rep = correct_residual(frame, sensor.cfa, active_area=sensor.active_area,
                                white_level_dn=sensor.white_level_dn, black_level_dn=sensor.black_map(),
                                sensitivity=sensitivity)
    assert rep["candidates"] > 20  # star cores were proposed ...
    assert rep["count"] <= 1  # ... and (almost) all recognised as stars
    assert int((out != frame).sum()) == rep["count"]


def test_injected_hot_pixels_in_a_real_sample_dng_are_found_and_repaired():
    rawpy = require_module("rawpy")
    with rawpy.imread(str(sample("tinydng_colorchart.dng"))) as raw:
        img = raw.raw_image_visible[300:700, 500:1100].copy()
        colours = raw.raw_colors_visible[300:302, 500:502].copy()
        black = float(np.mean(raw.black_level_per_channel))
        white = float(raw.white_level)
    names = {0: "R", 1: "G", 2: "B", 3: "G"}
    cfa = CfaPattern.bayer("".join(names[int(c)] for c in colours.ravel()))
    rng = np.random.default_rng(11)
    ys, xs = rng.integers(10, img.shape[0] - 10, 25), rng.integers(10, img.shape[1] - 10, 25)
    local = img[ys, xs].astype(np.float64)
    hot = img.copy()
    hot[ys, xs] = np.minimum(local + rng.uniform(800, 4000, 25), white).astype(img.dtype)
    box = (0, 0) + img.shape
    # the real frame has its own single-site spikes (the body's hot pixels): found either way
    before = detect_residual(img, cfa, active_area=box, white_level_dn=white, black_level_dn=black)
    own = {tuple(p) for p in before["sites"].tolist()}
    out, rep = correct_residual(hot, cfa, active_area=box, white_level_dn=white, black_level_dn=black)
    found = {tuple(p) for p in rep["sites"].tolist()}
    injected = set(zip(ys.tolist(), xs.tolist()))
    assert len(found & injected) >= 23
    assert len(found - injected - own) <= 2
    fixed = np.abs(out[ys, xs].astype(float) - img[ys, xs].astype(float))
    assert np.median(fixed) < 0.1 * np.median(hot[ys, xs].astype(float) - img[ys, xs].astype(float))


def test_higher_sensitivity_detects_a_superset():
    sensor, fr = _star_frame("foreground", seed=8)
    frame = fr.clean_dn.copy()
    rng = np.random.default_rng(2)
    t, l, b, r = sensor.active_area
    ys, xs = rng.integers(t + 4, b - 4, 60), rng.integers(l + 4, r - 4, 60)
    frame[ys, xs] += rng.uniform(5, 200, 60).astype(np.uint16)
    sets = []
    for s in (0.1, 0.5, 0.9):
        rep = detect_residual(frame, sensor.cfa, active_area=sensor.active_area,
                              white_level_dn=sensor.white_level_dn, black_level_dn=sensor.black_map(), sensitivity=s)
        sets.append({tuple(p) for p in rep["sites"].tolist()})
    assert sets[0] <= sets[1] <= sets[2]
    assert len(sets[2]) > len(sets[0])


def test_batch_detector_finds_a_defect_present_in_every_frame_of_a_drifting_star_field():
    sensor = make_sensor("small", 21, height=263, width=395)
    scene = make_scene(sensor, "stars", 21)
    t, l, b, r = sensor.active_area
    defect = (t + 101, l + 150)
    gain = sensor.gain_e_per_dn(1600)
    frames = []
    for i in range(6):
        fr = render_light(sensor, scene, rng_for(21, "light", i), exposure_s=60.0, temp_c=20.0, iso=1600,
                          shift_yx=(2.5 * i, 1.5 * i), residual=False)
        sky_e = (fr.expected_dn[defect[0], defect[1] - 2] - sensor.black_map()[defect]) * gain
        sigma_dn = np.sqrt(sensor.read_noise_e ** 2 + sky_e) / gain
        f = fr.clean_dn.copy()
        f[defect] += np.uint16(round(6 * sigma_dn))  # a 6 σ defect in every frame
        frames.append(f)
    res = detect_batch(frames, sensor.cfa, active_area=sensor.active_area, black_level_dn=sensor.black_map(),
                       white_level_dn=sensor.white_level_dn)
    sites = {tuple(p) for p in res["sites"].tolist()}
    assert defect in sites
    assert len(sites) <= 2
    props = propose_profile_additions(res)
    assert any((p["y"], p["x"]) == defect and p["frames_hit"] >= 3 for p in props)


def test_scoring_only_candidates_above_the_gate_changes_no_detection():
    """detect_residual skips the features and CNN of candidates under the amplitude gate: same sites."""
    from hotpixels.candidates import estimate_noise
    from hotpixels.correct.residual import gate_for, threshold_for
    from hotpixels.model.features import patch_features
    from hotpixels.model.load import get_detector

    sensor, fr = _star_frame("stars", seed=12)
    frame = fr.clean_dn.copy()
    rng = np.random.default_rng(5)
    t, l, b, r = sensor.active_area
    ys, xs = rng.integers(t + 4, b - 4, 80), rng.integers(l + 4, r - 4, 80)
    frame[ys, xs] += rng.uniform(20, 300, 80).astype(np.uint16)
    kw = dict(active_area=sensor.active_area, black_level_dn=sensor.black_map())
    rep = detect_residual(frame, sensor.cfa, white_level_dn=sensor.white_level_dn, **kw)
    # the long way: every candidate of the default test scored, then both cuts
    noise = estimate_noise(frame, sensor.cfa, sensor.active_area, sensor.black_map())
    cand = find_candidates(frame, sensor.cfa, sensor.active_area, noise, sensor.black_map())
    det = get_detector()
    logits = det.logits(patch_features(frame, sensor.cfa, cand.yx, noise, white_level_dn=sensor.white_level_dn,
                                       **kw))
    hit = (logits > threshold_for(0.5, det.meta)) & (cand.excess_sigma >= gate_for(0.5))
    assert len(cand) > rep["candidates"]  # fewer patches scored ...
    assert {tuple(p) for p in rep["sites"].tolist()} == {tuple(p) for p in cand.yx[hit].tolist()}  # ... same sites
    assert len(rep["sites"]) >= 15  # a real comparison: many detections (the weak injections are not found)


def test_in_an_h_alpha_frame_green_and_blue_defects_are_repaired_and_red_spikes_are_spared():
    """Hα stars light red sites only, so a single red spike there may be a sharp star: it is left alone
    (batch evidence can still catch it); green and blue sites see no starlight at all, so every
    defect there is a defect, and all are found."""
    sensor, fr = _star_frame("narrowband", seed=5, cfa="RGGB")
    frame = fr.clean_dn.copy()
    t, l, b, r = sensor.active_area
    black = sensor.black_map()
    colour = sensor.cfa.color_at(*np.mgrid[0:frame.shape[0], 0:frame.shape[1]])
    inside = np.zeros(frame.shape, dtype=bool)
    inside[t + 5:b - 5, l + 5:r - 5] = True
    rng = np.random.default_rng(1)
    injected = {}
    for c in (0, 1, 2):
        ys, xs = np.nonzero((colour == c) & inside)
        k = rng.choice(len(ys), 30, replace=False)
        ys, xs = ys[k], xs[k]
        frame[ys, xs] += rng.uniform(200, 2000, 30).astype(np.uint16)  # 8-60 σ over the dark sky
        injected[c] = set(zip(ys.tolist(), xs.tolist()))
    rep = detect_residual(frame, sensor.cfa, active_area=sensor.active_area, white_level_dn=sensor.white_level_dn,
                          black_level_dn=black)
    found = {tuple(p) for p in rep["sites"].tolist()}
    assert len(found & injected[1]) >= 29 and len(found & injected[2]) >= 29
    assert len(found & injected[0]) <= 3
    assert len(found - injected[1] - injected[2]) <= 3  # no red star cores either


@pytest.mark.parametrize("cfa", ["RGGB", "XTRANS"])
def test_two_hot_pixels_in_each_others_ring_are_both_repaired(cfa):
    """Pairs are common defects. A candidate must exceed its same-colour ring's maximum, so of two
    hot pixels in each other's ring only the stronger is proposed at first; once it is repaired,
    the second look proposes its ring again and finds the weaker one."""
    from hotpixels.ringat import ring_members_at

    sensor = make_sensor("small", 3, cfa=cfa, height=263, width=395)
    scene = make_scene(sensor, "foreground", 3)
    clean = render_light(sensor, scene, rng_for(3, "light", 0), exposure_s=60.0, temp_c=20.0, iso=1600,
                         residual=False).clean_dn
    t, l, b, r = sensor.active_area
    rng = np.random.default_rng(3)
    ys, xs = rng.integers(t + 8, b - 8, 15), rng.integers(l + 8, r - 8, 15)
    ry, rx, _ = ring_members_at(sensor.cfa, np.stack([ys, xs], axis=1), sensor.active_area)
    py, px = ry[:, 0], rx[:, 0]  # a same-colour neighbour of each
    strong = rng.uniform(1500, 3000, 15)
    hot = clean.astype(np.float64)
    hot[ys, xs] += strong
    hot[py, px] += strong * rng.uniform(0.5, 0.9, 15)
    hot = np.clip(hot, 0, sensor.white_level_dn).astype(clean.dtype)
    out, rep = correct_residual(hot, sensor.cfa, active_area=sensor.active_area,
                                white_level_dn=sensor.white_level_dn, black_level_dn=sensor.black_map())
    found = {tuple(p) for p in rep["sites"].tolist()}
    assert sum(p in found for p in zip(ys.tolist(), xs.tolist())) >= 13
    assert sum(p in found for p in zip(py.tolist(), px.tolist())) >= 13  # the hidden partners too
    assert rep["n_second_look"] >= 13
    assert rep["count"] == len(found) <= 32  # nothing else in a plain foreground
    both = (np.r_[ys, py], np.r_[xs, px])
    assert np.median(np.abs(out[both].astype(float) - clean[both])) < 100  # from 750-3000 DN over


def test_the_second_look_adds_nothing_where_there_were_no_pairs():
    """Single hot pixels in a star field: once they are repaired their rings hold nothing hot, so
    the second look adds no site (no star core next to a repaired site is taken for a defect)."""
    sensor, fr = _star_frame("stars", seed=5, cfa="RGGB", sigma_range=(0.5, 0.5))
    frame = fr.clean_dn.copy()
    t, l, b, r = sensor.active_area
    rng = np.random.default_rng(4)
    ys, xs = rng.integers(t + 4, b - 4, 60), rng.integers(l + 4, r - 4, 60)
    frame[ys, xs] += rng.uniform(300, 3000, 60).astype(np.uint16)
    out, rep = correct_residual(frame, sensor.cfa, active_area=sensor.active_area,
                                white_level_dn=sensor.white_level_dn, black_level_dn=sensor.black_map())
    assert rep["count"] >= 50  # the first pass repaired many sites, so the second look had rings to check ...
    assert rep["n_second_look"] <= 1  # ... and found (almost) nothing in them


def test_the_fast_stable_argsort_equals_numpys_stable_sort():
    """Many ties (ring means are multiples of 1/8 DN), negative values, NaN (numpy's own path)."""
    from hotpixels.candidates import stable_argsort

    rng = np.random.default_rng(3)
    for v in (rng.integers(0, 400, 50_000) / 8.0 - 20.0, rng.normal(size=1000), np.zeros(7), np.array([1.0]),
              np.array([2.0, np.nan, 1.0, np.nan, 1.0]), rng.integers(0, 3, 999).astype(np.float32)):
        assert np.array_equal(stable_argsort(v), np.argsort(v, kind="stable"))
