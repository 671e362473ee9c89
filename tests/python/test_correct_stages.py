"""Stages 1 and 2 on simulated night frames with ground truth (in memory, no files).

Each scenario simulates darks of one body, builds the profile's dark model with the real builder,
simulates a light frame of the same body and corrects it. The truth gives the noiseless light
frame and the noise σ of every pixel, so "ends within 3 σ of the noiseless value" is exact.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest

from hotpixels.correct.darkframe import DarkOptions, check_geometry, estimate_scale, model_site_stats, subtract_dark
from hotpixels.correct.knownhot import interpolate_known
from hotpixels.correct.pipeline import CorrectOptions, check_profile_compatible, correct_raw
from hotpixels.correct.sitestats import neighbour_radius
from hotpixels.errors import ProfileIncompatible
from hotpixels.profiles.build import build_dark_model
from hotpixels.profiles.profile_file import Profile
from hotpixels.simulate import make_sensor, simulate_session

STAGES_1_2 = CorrectOptions(profile=None, stages=("dark", "hot"))


@lru_cache(maxsize=None)
def _darks(preset: str, seed: int, exposure_s: float, iso: float, temp_c: float = 20.0):
    sensor = make_sensor(preset, seed=seed)
    session = simulate_session(preset, seed, n_darks=8, n_lights=0, sensor=sensor, exposure_s=exposure_s, iso=iso,
                               temp_dark_c=temp_c)
    return sensor, build_dark_model(session.darks)


@lru_cache(maxsize=None)
def _light(preset: str, seed: int, exposure_s: float, iso: float, temp_c: float, scene: str = "stars"):
    sensor = make_sensor(preset, seed=seed)
    session = simulate_session(preset, seed, n_darks=0, n_lights=1, sensor=sensor, exposure_s=exposure_s, iso=iso,
                               temp_light_c=temp_c, scene=scene)
    return session.lights[0], session.truth


def _fresh(raw):
    return replace(raw, metadata=replace(raw.metadata))


def _noise_sigma_dn(truth, sensor) -> np.ndarray:
    """True σ (DN) of every pixel: read noise plus the light's shot noise, from the truth."""
    gain = truth["gain_e_per_dn"]
    signal_e = np.maximum(truth["expected_light_dn"][0] - sensor.black_map(), 0.0) * gain
    return np.sqrt(truth["read_noise_e"] ** 2 + signal_e) / gain


def _run(raw, model, options=STAGES_1_2):
    out, rep, _ = correct_raw(raw, options, model, {"name": "test"})
    return out, rep


def _same_colour_near_white(raw, yx, fraction=0.98):
    """Sites with a same-colour neighbour (the stages' neighbourhood) at or above the white level."""
    limit = fraction * raw.white_level_dn
    h, w = raw.shape
    hit = np.zeros(len(yx), bool)
    for i, (y, x) in enumerate(yx.tolist()):
        phase = raw.cfa.phase_of(y, x)
        for dy, dx in raw.cfa.same_color_offsets(phase, neighbour_radius(raw.cfa, phase)).tolist():
            if 0 <= y + dy < h and 0 <= x + dx < w and raw.cfa_dn[y + dy, x + dx] >= limit:
                hit[i] = True
    return hit


def _near_white(raw, yx, fraction=0.98):
    """Sites whose own value or a same-colour neighbour (radius 2) reaches the white level."""
    limit = fraction * raw.white_level_dn
    h, w = raw.shape
    hit = np.zeros(len(yx), bool)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            ys, xs = np.clip(yx[:, 0] + dy, 0, h - 1), np.clip(yx[:, 1] + dx, 0, w - 1)
            hit |= raw.cfa_dn[ys, xs] >= limit
    return hit


SCENARIOS = {
    # name: (preset, ISO of the darks, ISO of the light, light temperature, error of its temperature tag)
    "rggb-same-temperature": ("small", 1600, 1600, 20.0, 0.0),
    "rggb-6C-warmer": ("small", 1600, 1600, 26.0, 0.0),
    "rggb-6C-warmer-temperature-tag-3C-off": ("small", 1600, 1600, 26.0, 3.0),
    "rggb-darks-at-iso-800": ("small", 800, 1600, 20.0, 0.0),
    "xtrans-6C-warmer": ("small-xtrans", 1600, 1600, 26.0, 0.0),
    "gbrg-12bit-6C-warmer": ("small-gbrg", 200, 200, 26.0, 0.0),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_profile_hot_pixels_end_within_3_sigma_of_the_noiseless_value(scenario):
    preset, dark_iso, light_iso, temp_light, tag_offset = SCENARIOS[scenario]
    sensor, model = _darks(preset, 3, 120.0, dark_iso)
    raw, truth = _light(preset, 3, 120.0, light_iso, temp_light)
    raw = _fresh(raw)
    raw.metadata.temperature_c = raw.metadata.temperature_c + tag_offset

    out, rep = _run(raw, model)

    sigma = _noise_sigma_dn(truth, sensor)
    noiseless = truth["expected_light_dn"][0]
    in_profile = {tuple(v) for v in model.hot_yx.tolist()}
    yx = truth["hot_yx"].astype(np.int64)
    listed = np.array([tuple(v) in in_profile for v in yx.tolist()])
    strong = truth["hot_light_dn"][0] >= 5 * sigma[yx[:, 0], yx[:, 1]]
    t, l, b, r = raw.active_area
    inside = (yx[:, 0] >= t) & (yx[:, 0] < b) & (yx[:, 1] >= l) & (yx[:, 1] < r)
    judged = listed & strong & inside & ~_near_white(raw, yx)
    error = np.abs(out[yx[:, 0], yx[:, 1]].astype(float) - noiseless[yx[:, 0], yx[:, 1]]) / sigma[yx[:, 0], yx[:, 1]]
    before = np.abs(raw.cfa_dn[yx[:, 0], yx[:, 1]].astype(float) - noiseless[yx[:, 0], yx[:, 1]]) / sigma[yx[:, 0], yx[:, 1]]

    assert judged.sum() > 150
    assert np.mean(before[judged] <= 3) < 0.05  # the defects were really there
    share = np.mean(error[judged] <= 3)
    assert share >= 0.99, f"{share:.2%} of {judged.sum()} hot pixels within 3 σ ({rep['stages']['dark']['reason']})"


def test_dark_scale_is_fitted_from_the_hot_pixels_when_the_temperature_tag_is_wrong():
    sensor, model = _darks("small", 3, 120.0, 1600)
    raw, truth = _light("small", 3, 120.0, 1600, 26.0)
    raw = _fresh(raw)
    raw.metadata.temperature_c += 3.0
    true_scale = truth["light_factor"][0] / (2 ** ((20.0 - sensor.ref_temp_c) / sensor.doubling_c))

    fit = estimate_scale(raw, model, model_site_stats(raw, model), DarkOptions())

    assert fit.method == "fit"
    assert fit.scale == pytest.approx(true_scale, rel=0.03)
    assert abs(fit.prior - true_scale) / true_scale > 0.1  # the prior alone would have been wrong


def test_pixels_outside_the_dark_model_are_bit_identical():
    # 15 s at ISO 1600: the dark floor is below a quarter σ, only the amp-glow corner is in the model
    sensor, model = _darks("small", 4, 15.0, 1600)
    raw, _ = _light("small", 4, 15.0, 1600, 20.0)

    out, rep = _run(raw, model)

    scale = rep["stages"]["dark"]["scale"]
    options = DarkOptions()
    in_field = scale * model.field_full() > options.field_low_sigma * float(np.median(model.read_noise_dn))
    in_model = in_field.copy()
    in_model[model.hot_yx[:, 0], model.hot_yx[:, 1]] = True
    changed = out != raw.cfa_dn
    assert not np.any(changed & ~in_model)
    assert np.mean(~in_model) > 0.8  # most of the frame is outside the model
    assert np.any(changed & in_field)  # the glow corner was corrected


def test_saturated_image_pixels_are_untouched():
    sensor, model = _darks("small", 3, 120.0, 1600)
    raw, truth = _light("small", 3, 120.0, 1600, 26.0)
    assert truth["star_saturated"].sum() > 3

    out, rep = _run(raw, model)

    saturated = raw.cfa_dn >= 0.98 * raw.white_level_dn
    sites = np.zeros(raw.shape, bool)
    sites[model.hot_yx[:, 0], model.hot_yx[:, 1]] = True
    # scene saturation (star cores): never changed; a known hot site inside a saturated core neither
    keep = saturated & ~sites
    keep[model.hot_yx[:, 0], model.hot_yx[:, 1]] |= _same_colour_near_white(raw, model.hot_yx)
    assert keep.sum() > 20
    np.testing.assert_array_equal(out[keep], raw.cfa_dn[keep])
    assert out.max() <= raw.white_level_dn


def test_star_fluxes_change_by_less_than_one_percent():
    sensor, model = _darks("small", 3, 120.0, 1600)
    raw, truth = _light("small", 3, 120.0, 1600, 26.0)

    out, _ = _run(raw, model)

    clean = truth["clean_light_dn"][0].astype(float)
    stars = truth["star_yx"][0]
    usable = truth["star_visible"][0] & ~truth["star_saturated"][0]
    yx = np.rint(stars[usable]).astype(int)
    t, l, b, r = raw.active_area
    inside = (yx[:, 0] >= t + 6) & (yx[:, 0] < b - 6) & (yx[:, 1] >= l + 6) & (yx[:, 1] < r - 6)
    yx = yx[inside]

    def flux(img, y, x):
        box = img[y - 3:y + 4, x - 3:x + 4]
        ring = np.concatenate([img[y - 5, x - 5:x + 6], img[y + 5, x - 5:x + 6], img[y - 4:y + 5, x - 5], img[y - 4:y + 5, x + 5]])
        return box.sum() - box.size * np.median(ring)

    f_clean = np.array([flux(clean, y, x) for y, x in yx])
    f_in = np.array([flux(raw.cfa_dn.astype(float), y, x) for y, x in yx])
    f_out = np.array([flux(out.astype(float), y, x) for y, x in yx])
    measurable = f_clean > 2000  # DN: faint stars' fluxes drown in the background noise
    assert measurable.sum() > 20
    # the correction itself changes star fluxes by < 1 % (median) …
    assert np.median(np.abs(f_out - f_in)[measurable] / f_in[measurable]) < 0.01
    # … and brings them closer to the dark-free truth, not further
    assert np.median(np.abs(f_out - f_clean)[measurable]) <= np.median(np.abs(f_in - f_clean)[measurable])


def test_camera_noise_reduction_already_ran_so_stage_1_is_skipped_and_says_so():
    sensor, model = _darks("small", 3, 120.0, 1600)
    raw, truth = _light("small", 3, 120.0, 1600, 20.0)
    nr = replace(_fresh(raw), cfa_dn=truth["clean_light_dn"][0].copy())  # the camera subtracted its own dark

    out, rep = _run(nr, model)

    dark = rep["stages"]["dark"]
    assert dark["method"] == "skipped" and not dark["ran"]
    assert "noise reduction" in dark["reason"]
    flagged = model.hot_flags != 0
    changed = np.argwhere(out != nr.cfa_dn)
    assert {tuple(v) for v in changed.tolist()} <= {tuple(v) for v in model.hot_yx[flagged].tolist()}


def test_missing_exposure_and_iso_tags_mean_fit_only():
    sensor, model = _darks("small", 3, 120.0, 1600)
    raw, truth = _light("small", 3, 120.0, 1600, 26.0)
    raw = _fresh(raw)
    raw.metadata.exposure_s = None
    raw.metadata.iso = None

    fit = estimate_scale(raw, model, model_site_stats(raw, model))

    assert fit.prior is None and fit.method == "fit"
    assert fit.scale == pytest.approx(truth["light_factor"][0] / 2 ** ((20.0 - sensor.ref_temp_c) / sensor.doubling_c), rel=0.03)


def test_a_profile_from_another_sensor_layout_is_refused_with_a_clear_message():
    _, other = _darks("small-gbrg", 3, 120.0, 1600)
    raw, _ = _light("small", 3, 120.0, 1600, 20.0)

    with pytest.raises(ProfileIncompatible) as err:
        check_geometry(raw, other)
    assert "raw size" in err.value.message and "different sensor layout" in err.value.message


def test_a_profile_from_another_body_of_the_same_model_is_refused():
    _, model = _darks("small", 4, 120.0, 1600)  # seed 4: another body, another serial
    raw, _ = _light("small", 3, 120.0, 1600, 20.0)
    profile = Profile(name="other body", model=model, meta={"camera": {"make": "HotPixels", "model": "SimCam Mk1",
                                                                       "serial": make_sensor("small", 4).serial}})
    with pytest.raises(ProfileIncompatible) as err:
        check_profile_compatible(raw, profile)
    assert "another camera body" in err.value.message and "serial" in err.value.message


def test_stage_2_alone_interpolates_what_stage_1_would_have_subtracted():
    sensor, model = _darks("small", 3, 120.0, 1600)
    raw, truth = _light("small", 3, 120.0, 1600, 20.0)
    stats = model_site_stats(raw, model)
    fit = estimate_scale(raw, model, stats)

    out, rep = interpolate_known(raw.cfa_dn, raw, model, fit, stats, subtracted=False)

    assert rep.counts["not_subtracted"] > 100
    yx = rep.yx
    noiseless = truth["expected_light_dn"][0][yx[:, 0], yx[:, 1]]
    sigma = _noise_sigma_dn(truth, sensor)[yx[:, 0], yx[:, 1]]
    assert np.median(np.abs(out[yx[:, 0], yx[:, 1]] - noiseless) / sigma) < 1.5


def test_stages_never_modify_the_input_frame():
    sensor, model = _darks("small-xtrans", 3, 120.0, 1600)
    raw, _ = _light("small-xtrans", 3, 120.0, 1600, 26.0)
    before = raw.cfa_dn.copy()

    out, _ = _run(raw, model)
    subtract_dark(raw, model)

    np.testing.assert_array_equal(raw.cfa_dn, before)
    assert np.any(out != before)


@pytest.mark.parametrize("pattern", ["RGGB", "X-Trans"])
def test_field_subtraction_follows_the_models_bilinear_field_with_its_ramp(pattern):
    from hotpixels.dng.cfa import CfaPattern
    from hotpixels.dng.rawimage import RawImage
    from hotpixels.profiles.darkmodel import DarkModel

    shape, area = (203, 307), (3, 5, 201, 303)
    cfa = CfaPattern.bayer("RGGB", area[:2]) if pattern == "RGGB" else CfaPattern.xtrans(area[:2])
    block = 32 if pattern == "RGGB" else 36
    gh, gw = -(-shape[0] // block), -(-shape[1] // block)
    yy, xx = np.mgrid[0:gh, 0:gw]
    glow = 400.0 * np.exp(-np.hypot(yy, xx) / 1.5)  # a strong corner, a ramp, then nothing
    field = np.stack([glow * (1 + 0.1 * p) for p in range(cfa.n_planes)]).astype(np.float32)
    model = DarkModel(raw_shape=shape, active_area=area, cfa=cfa, field_block_px=block, field_dn=field,
                      hot_yx=np.zeros((0, 2), np.int32), hot_excess_dn=np.zeros(0, np.float32),
                      hot_flags=np.zeros(0, np.uint8), hot_temporal_sigma_dn=np.zeros(0, np.float32),
                      read_noise_dn=np.full(cfa.n_planes, 4.0, np.float32), white_level_dn=4095.0)
    rng = np.random.default_rng(0)
    img = rng.integers(100, 4095, shape).astype(np.uint16)
    img[50:60, 50:60] = 4095  # saturated: untouched
    raw = RawImage(cfa_dn=img, cfa=cfa, active_area=area, white_level_dn=4095.0)
    fit = estimate_scale(raw, model, model_site_stats(raw, model))
    fit.scale, fit.method = 1.5, "prior"

    out, rep = subtract_dark(raw, model, fit=fit)

    options = DarkOptions()
    sigma = 4.0
    f = 1.5 * model.field_full(np.float64)
    w = np.clip((f - options.field_low_sigma * sigma) / ((options.field_high_sigma - options.field_low_sigma) * sigma), 0, 1)
    k = np.rint(w * f)
    expected = img.astype(np.float64)
    inside = np.zeros(shape, bool)
    inside[area[0]:area[2], area[1]:area[3]] = True
    apply = inside & (img < 0.98 * 4095)
    expected[apply] = np.maximum(expected[apply] - k[apply], 0)
    diff = np.abs(out.astype(np.float64) - expected)
    assert diff.max() <= 1 and np.mean(diff == 0) > 0.9999
    assert rep.n_field_pixels > 1000 and np.any((w > 0) & (w < 1) & apply & (out != img))
    np.testing.assert_array_equal(out[~inside], img[~inside])
    np.testing.assert_array_equal(out[50:60, 50:60], 4095)


def test_too_few_usable_hot_pixels_fall_back_to_the_exposure_and_temperature_prior():
    sensor, model = _darks("small", 3, 120.0, 1600)
    raw, truth = _light("small", 3, 120.0, 1600, 26.0)
    stable = np.nonzero(model.hot_flags == 0)[0][:5]
    few = replace(model, hot_yx=model.hot_yx[stable], hot_excess_dn=model.hot_excess_dn[stable],
                  hot_flags=model.hot_flags[stable], hot_temporal_sigma_dn=model.hot_temporal_sigma_dn[stable])

    out, rep = _run(raw, few)

    dark = rep["stages"]["dark"]
    assert dark["method"] == "prior" and dark["ran"]
    assert dark["scale"] == pytest.approx(2 ** ((raw.metadata.temperature_c - few.temperature_c) / 6.0))
    assert "prior" in dark["reason"]
