"""The frame context the residual classifier reads: what the frame's bright candidates say about its stars."""

from __future__ import annotations

import numpy as np

from hotpixels.candidates import estimate_noise, find_candidates
from hotpixels.model.features import (BRIGHT_SIGMA, HALF, MIN_BRIGHT, N_CONTEXT, PATCH, QUANTILES, RESOLVED_RING,
                                      SINGLE_CROSS, frame_context, patch_features)
from hotpixels.simulate.render import render_light
from hotpixels.simulate.scene import make_scene
from hotpixels.simulate.sensor import make_sensor, rng_for


def _reference_context(x: np.ndarray) -> np.ndarray:
    """Slow per-candidate loop: the context of hotpixels.model.features written out plainly."""
    n = len(x)
    out = np.zeros((n, N_CONTEXT))
    colour = [int(np.argmax(x[i, 2:5, HALF, HALF])) for i in range(n)]
    bright = [i for i in range(n) if 2 * np.sinh(x[i, 0, HALF, HALF]) >= BRIGHT_SIGMA and x[i, 5, HALF, HALF] < 0.5]
    if len(bright) < MIN_BRIGHT:
        out[:, 0] = 1
        return out
    cross, ring = [], []
    for i in bright:
        shape = x[i, 1]
        cross.append(np.mean([shape[HALF + dy, HALF + dx] for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]))
        vals = [shape[y, xx] for y in range(PATCH) for xx in range(PATCH)
                if max(abs(y - HALF), abs(xx - HALF)) == 2 and np.argmax(x[i, 2:5, y, xx]) == colour[i]]
        ring.append(np.mean(vals))
    resolved = [k for k in range(len(bright)) if ring[k] >= RESOLVED_RING]
    single = [k for k in resolved if cross[k] < SINGLE_CROSS]
    for i in range(n):
        out[i, 1:4] = np.quantile(cross, QUANTILES)
        out[i, 4:7] = np.quantile(ring, QUANTILES)
        out[i, 7] = np.log1p(len(resolved)) / 5
        if resolved:
            out[i, 8] = len(single) / len(resolved)
            out[i, 9] = sum(colour[bright[k]] == colour[i] for k in single) / len(resolved)
    return out


def _candidates(kind: str, cfa: str | None = None, seed: int = 4):
    sensor = make_sensor("small", seed, cfa=cfa, height=200, width=300)
    scene = make_scene(sensor, kind, seed, star_density_per_mpx=6000)
    fr = render_light(sensor, scene, rng_for(seed, "ctx"), exposure_s=60.0, temp_c=20.0, iso=1600, residual=False)
    frame = fr.clean_dn
    black = sensor.black_map()
    noise = estimate_noise(frame, sensor.cfa, sensor.active_area, black)
    cand = find_candidates(frame, sensor.cfa, sensor.active_area, noise, black)
    return patch_features(frame, sensor.cfa, cand.yx, noise, active_area=sensor.active_area, black_level_dn=black,
                          white_level_dn=sensor.white_level_dn)


def test_frame_context_agrees_with_a_slow_per_candidate_loop():
    for kind, cfa in (("stars", None), ("narrowband", "GRBG"), ("noaa", "XTRANS")):
        x = _candidates(kind, cfa)
        assert len(x) > 20
        fast = frame_context(x)
        slow = _reference_context(x.astype(np.float64))
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-4)


def test_a_narrowband_frame_says_its_resolved_stars_light_red_only():
    """Hα stars light red sites only: the resolved ones spill onto the red ring, never onto other colours."""
    x = _candidates("narrowband")
    nb = frame_context(x)
    red = x[:, 2, HALF, HALF] > 0.5
    broad = frame_context(_candidates("stars"))
    assert nb[0, 0] == broad[0, 0] == 0  # both frames have enough bright candidates to say so
    assert nb[0, 8] > 0.8 and broad[0, 8] < 0.2  # resolved stars lighting one colour only
    assert np.all(nb[red, 9] > 0.8) and np.all(nb[~red, 9] < 0.05)  # ... and that colour is red


def test_hot_pixels_crowding_onto_one_colour_do_not_look_like_a_narrowband_frame():
    """30 bright hot pixels, all on red, in a starless foreground: what the context says of resolved and
    single-colour stars does not move (hot pixels are never resolved), only the spill quantiles do."""
    sensor = make_sensor("small", 3, height=200, width=300)
    scene = make_scene(sensor, "foreground", 3, star_density_per_mpx=0)
    fr = render_light(sensor, scene, rng_for(3, "ctx"), exposure_s=60.0, temp_c=20.0, iso=1600, residual=False)
    t, l, b, r = sensor.active_area
    colours = sensor.cfa.color_at(*np.mgrid[t + 4:b - 4, l + 4:r - 4])
    red = np.argwhere(colours == 0)[::401][:30] + np.array([t + 4, l + 4])
    black = sensor.black_map()

    def context(frame):
        noise = estimate_noise(frame, sensor.cfa, sensor.active_area, black)
        cand = find_candidates(frame, sensor.cfa, sensor.active_area, noise, black)
        x = patch_features(frame, sensor.cfa, cand.yx, noise, active_area=sensor.active_area, black_level_dn=black,
                           white_level_dn=sensor.white_level_dn)
        ctx = frame_context(x)
        own = {int(c): float(v) for c, v in zip(x[:, 2:5, HALF, HALF].argmax(1).tolist(), ctx[:, 9])}
        return ctx, own

    clean_ctx, clean_own = context(fr.clean_dn)
    hot = fr.clean_dn.copy()
    hot[red[:, 0], red[:, 1]] += np.uint16(3000)
    hot_ctx, hot_own = context(hot)
    assert hot_ctx[0, 0] == 0 and len(red) == 30
    # (a hot pixel in a texture peak's ring can knock that one peak out: near, not exactly equal)
    np.testing.assert_allclose(hot_ctx[0, 7:9], clean_ctx[0, 7:9], atol=0.05)
    assert abs(hot_own[0] - clean_own.get(0, 0.0)) < 0.05 and hot_own[0] < 0.5  # red is not "the Hα colour"
    assert hot_ctx[0, 1] < clean_ctx[0, 1]  # the spill quantiles do see 30 single-site spikes


def test_too_few_bright_candidates_say_no_information():
    x = _candidates("stars")[:0]
    assert frame_context(x).shape == (0, N_CONTEXT)
    dim = np.zeros((3, 6, PATCH, PATCH), np.float32)
    dim[:, 2, :, :] = 1  # red everywhere, nothing bright
    ctx = frame_context(dim)
    assert np.all(ctx[:, 0] == 1) and np.all(ctx[:, 1:] == 0)
