"""The sensor simulator: seeded, physically consistent, with exact ground truth."""

import numpy as np
import pytest

from hotpixels.errors import InvalidOption
from hotpixels.simulate import (
    expected_hot_count, load_truth, make_dark_field, make_scene, make_sensor, render_dark, render_light, rng_for,
    simulate_session,
)


def _assert_truth_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            assert a[k] == b[k], k


def test_same_seed_gives_identical_frames_and_truth():
    a = simulate_session("small", seed=7, n_darks=2, n_lights=2, batch="tripod")
    b = simulate_session("small", seed=7, n_darks=2, n_lights=2, batch="tripod")
    for ra, rb in zip(a.darks + a.lights, b.darks + b.lights):
        np.testing.assert_array_equal(ra.cfa_dn, rb.cfa_dn)
        assert ra.metadata == rb.metadata
    _assert_truth_equal(a.truth, b.truth)


def test_different_seed_gives_a_different_body_and_frames():
    a = simulate_session("small", seed=7, n_darks=1, n_lights=1)
    b = simulate_session("small", seed=8, n_darks=1, n_lights=1)
    assert a.sensor.serial != b.sensor.serial
    assert not np.array_equal(a.darks[0].cfa_dn, b.darks[0].cfa_dn)
    assert not np.array_equal(a.truth["hot_yx"], b.truth["hot_yx"])
    assert a.truth["doubling_c"] != b.truth["doubling_c"]


def test_adding_light_frames_does_not_change_the_darks():
    a = simulate_session("small", seed=3, n_darks=2, n_lights=1)
    b = simulate_session("small", seed=3, n_darks=2, n_lights=3)
    np.testing.assert_array_equal(a.darks[1].cfa_dn, b.darks[1].cfa_dn)
    np.testing.assert_array_equal(a.lights[0].cfa_dn, b.lights[0].cfa_dn)


def test_frames_are_uint16_full_frame_within_white_level_with_session_metadata():
    s = simulate_session("small", seed=1, n_darks=1, n_lights=1, exposure_s=60, iso=800)
    sensor = s.sensor
    for raw in s.darks + s.lights:
        assert raw.cfa_dn.dtype == np.uint16 and raw.cfa_dn.shape == sensor.shape
        assert raw.cfa_dn.max() <= sensor.white_level_dn
        assert raw.active_area == (3, 5, 403, 605)
        m = raw.metadata
        assert (m.make, m.model, m.serial, m.iso, m.exposure_s) == ("HotPixels", "SimCam Mk1", sensor.serial, 800, 60)
        assert abs(m.temperature_c - 20.0) <= 3.5  # recorded = true + offset within ±3, rounded


def test_light_minus_clean_is_the_dark_signal_and_defects():
    s = simulate_session("small", seed=2, n_darks=0, n_lights=1, exposure_s=120)
    t = s.truth
    light = s.lights[0].cfa_dn.astype(np.float64)
    clean = t["clean_light_dn"][0].astype(np.float64)
    white = s.sensor.white_level_dn
    ok = (light < white) & (clean < white)
    ok[t["stuck_yx"][:, 0], t["stuck_yx"][:, 1]] = False
    diff = (light - clean)[ok]
    dark = s.light_frames[0].dark_expected_dn[ok]
    # mean of (light - clean) is the expected dark signal (shot noise averages out)
    assert abs(diff.mean() - dark.mean()) < 0.05 * dark.mean() + 0.1
    # hot pixels stand out by their expected dark signal (within shot noise + 1 DN rounding)
    hy, hx = t["hot_yx"].T
    strong = (t["hot_light_dn"][0] > 200) & ok[hy, hx] & ~t["hot_rts"]
    d = light[hy, hx][strong] - clean[hy, hx][strong]
    expect = t["hot_light_dn"][0][strong]
    gain = t["gain_e_per_dn"]
    assert np.all(np.abs(d - expect) < 6 * np.sqrt(expect / gain) + 2)


def test_residual_hot_pixels_are_in_lights_only_and_never_in_the_darks():
    s = simulate_session("small", seed=4, n_darks=3, n_lights=1, exposure_s=30)
    t = s.truth
    ry, rx = t["residual_yx"].T
    assert len(ry) > 3
    bright = t["residual_dn"] > 100
    light = s.lights[0].cfa_dn.astype(float)
    clean = t["clean_light_dn"][0].astype(float)
    assert np.all(light[ry[bright], rx[bright]] - clean[ry[bright], rx[bright]] > 0.8 * t["residual_dn"][bright])
    hot_rate = s.field.rate_e_s[ry, rx]
    assert np.all(hot_rate < s.sensor.hot_max_e_s)
    for dark in s.darks:  # the sites are ordinary in the darks (unless they are hot pixels by chance)
        ordinary = hot_rate < 0.2
        assert np.all(dark.cfa_dn[ry[ordinary], rx[ordinary]] < dark.black_level_at(ry[ordinary], rx[ordinary]) + 60)


def test_hot_pixel_count_above_a_threshold_matches_the_distribution():
    sensor = make_sensor("small", seed=11, hot_fraction=0.01)
    field = make_dark_field(sensor)
    for threshold in (1.0, 5.0, 20.0):
        expect = expected_hot_count(sensor, threshold)
        got = int(np.sum(field.hot_rate_e_s > threshold))
        assert abs(got - expect) <= 0.1 * expect + 3 * np.sqrt(expect), (threshold, got, expect)
    # the lognormal floor never reaches the hot threshold
    assert int(np.sum(field.rate_e_s > sensor.hot_min_e_s + sensor.amp_glow_e_s)) <= len(field.hot_yx)


def test_dark_current_doubles_for_each_doubling_constant_of_warming():
    sensor = make_sensor("small", seed=5)
    d = sensor.doubling_c
    assert 5.0 <= d <= 9.0
    black = sensor.black_map()

    def mean_dark(temp_c, k):
        f = render_dark(sensor, rng_for(5, "t", k), exposure_s=300, temp_c=temp_c, iso=400)
        return f.cfa_dn.astype(np.float64) - black, f.cfa_dn >= sensor.white_level_dn

    cold, sat_c = mean_dark(15.0, 0)
    warm, sat_w = mean_dark(15.0 + d, 1)
    keep = ~(sat_c | sat_w)
    ratio = warm[keep].mean() / cold[keep].mean()
    assert abs(ratio - 2.0) < 0.1, ratio  # within 5 %


def test_long_warm_exposures_saturate_some_hot_pixels():
    s = simulate_session("small", seed=6, n_darks=1, n_lights=0, exposure_s=600, temp_dark_c=30)
    assert s.truth["hot_saturated_dark"].sum() >= 1
    hy, hx = s.truth["hot_yx"][s.truth["hot_saturated_dark"][0]].T
    assert np.all(s.darks[0].cfa_dn[hy, hx] == s.sensor.white_level_dn)


def test_rts_pixels_toggle_between_frames():
    s = simulate_session("small", seed=9, n_darks=12, n_lights=0, exposure_s=60)
    high = s.truth["rts_high_dark"]
    assert high.shape[1] > 0
    toggled = high.any(axis=0) & ~high.all(axis=0)
    assert toggled.mean() > 0.5
    y, x = s.truth["rts_yx"][toggled][0]
    values = np.array([d.cfa_dn[y, x] for d in s.darks], float)
    assert values[high[:, toggled][:, 0]].mean() > values[~high[:, toggled][:, 0]].mean()


def test_stuck_low_pixels_read_at_or_below_black_in_every_frame():
    s = simulate_session("small", seed=10, n_darks=2, n_lights=1, exposure_s=60)
    sy, sx = s.truth["stuck_yx"].T
    assert len(sy) > 0
    for raw in s.darks + s.lights:
        np.testing.assert_array_equal(raw.cfa_dn[sy, sx], s.truth["stuck_dn"])
        assert np.all(raw.cfa_dn[sy, sx] <= raw.black_level_at(sy, sx))


def test_masked_border_holds_black_read_noise_and_dark_current_but_no_light():
    s = simulate_session("small", seed=12, n_darks=0, n_lights=1, exposure_s=30)
    raw, t = s.lights[0], s.truth
    excess = raw.cfa_dn[:3].astype(float) - raw.black_level_map()[:3]
    dark = s.light_frames[0].dark_expected_dn[:3]
    assert dark.min() > 0  # dark current (and amp glow near its corner) reaches the border
    assert abs(np.median(excess - dark)) < 1.0
    assert 0.8 * t["read_noise_dn"] < np.std(excess[:, 100:300] - dark[:, 100:300]) < 1.5 * t["read_noise_dn"]
    assert np.all(t["expected_light_dn"][0][:3] == raw.black_level_map()[:3])


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG", "XTRANS"])
def test_sky_colour_follows_the_cfa_anchored_at_the_active_area(cfa):
    sensor = make_sensor("small", seed=1, cfa=cfa)
    scene = make_scene(sensor, "narrowband", seed=1)
    f = render_light(sensor, scene, rng_for(1, "x"), exposure_s=30, temp_c=20, iso=1600, residual=False)
    signal = f.expected_dn - sensor.black_map()
    colours = sensor.cfa.color_map(sensor.shape)
    act = sensor.active_slices
    # narrowband: only red sites see the sky/stars; green and blue see nothing
    assert np.all(signal[act][colours[act] != 0] == 0)
    assert np.all(signal[act][colours[act] == 0] > 0)
    # a lookup that ignores the ActiveArea offset (odd 3, 5) gets the colours wrong
    wrong = sensor.cfa.with_origin((0, 0)).color_map(sensor.shape)
    assert np.any(signal[act][wrong[act] == 0] == 0)


def test_tripod_batch_moves_stars_and_tracked_batch_keeps_them():
    tri = simulate_session("small", seed=13, n_darks=0, n_lights=3, batch="tripod", scene="stars")
    trk = simulate_session("small", seed=13, n_darks=0, n_lights=3, batch="tracked", scene="stars")
    step = np.linalg.norm(np.diff(tri.truth["star_yx"][:, 0], axis=0), axis=1)
    assert np.all((step >= 2.0) & (step <= 4.0))
    assert np.all(np.abs(trk.truth["star_yx"][1:] - trk.truth["star_yx"][0]) < 0.5)


def test_noaa_scene_has_sharper_stars_and_some_star_cores_saturate():
    s = simulate_session("small", seed=14, n_darks=0, n_lights=1, scene="noaa", exposure_s=120)
    assert s.truth["star_sigma_px"].max() <= 0.6
    assert s.truth["star_saturated"][0].sum() >= 1


def test_truth_round_trips_through_json_and_npz_without_pickle(tmp_path):
    from hotpixels.simulate.session import write_truth

    s = simulate_session("small", seed=15, n_darks=1, n_lights=1)
    write_truth(tmp_path, s.truth)
    back = load_truth(tmp_path)
    for k, v in s.truth.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(back[k], v)


def test_unknown_preset_scene_or_batch_is_a_clear_error():
    with pytest.raises(InvalidOption):
        make_sensor("huge")
    with pytest.raises(InvalidOption):
        simulate_session("small", scene="moon")
    with pytest.raises(InvalidOption):
        simulate_session("small", batch="orbit")


def test_small_session_is_fast():
    import time

    t0 = time.perf_counter()
    simulate_session("small", seed=16, n_darks=1, n_lights=1)
    assert time.perf_counter() - t0 < 3.0  # generous on a shared 2-core machine; typically ~0.1 s


def test_real_scene_content_comes_from_a_sample_dng_with_or_without_rawpy(monkeypatch):
    from conftest import sample

    src = sample("tinydng_colorchart.dng")
    sensor = make_sensor("small", seed=1)
    with_rawpy = make_scene(sensor, "real", seed=1, scene_from=src).real_e_s
    monkeypatch.setitem(__import__("sys").modules, "rawpy", None)  # import rawpy -> ImportError
    with_tifffile = make_scene(sensor, "real", seed=1, scene_from=src).real_e_s
    assert with_rawpy.shape == sensor.active_shape + (3,)  # (h, w, R/G/B), mosaicked when rendered
    assert np.corrcoef(with_rawpy.ravel(), with_tifffile.ravel())[0, 1] > 0.98
    assert with_rawpy.std() > 0.1 * with_rawpy.mean()  # real texture, not a flat field


def test_real_scene_without_a_source_is_a_clear_error(tmp_path):
    from hotpixels.errors import FileNotFound

    with pytest.raises(InvalidOption):
        make_scene(make_sensor("small"), "real")
    with pytest.raises(FileNotFound):
        make_scene(make_sensor("small"), "real", scene_from=tmp_path / "missing.dng")


def test_fast_path_renders_small_training_frames_with_truth():
    sensor = make_sensor("small", seed=30, height=64, width=96)
    assert sensor.active_area == (3, 5, 60, 90)  # the preset's border is kept
    scene = make_scene(sensor, "stars", seed=30, star_density_per_mpx=5000)
    f = render_light(sensor, scene, rng_for(30, "patch", 0), exposure_s=60, temp_c=25, iso=1600, residual=5)
    assert f.cfa_dn.shape == (64, 96) and f.clean_dn.shape == (64, 96)
    assert 5 <= len(f.residual_yx) <= 10  # 5 seeds, some with an adjacent partner
    ry, rx = f.residual_yx.T
    assert np.all((ry >= 5) & (ry < 57) & (rx >= 7) & (rx < 87))  # inside the ActiveArea, off its edge


def test_hot_population_flags_are_consistent_with_the_frames():
    s = simulate_session("small", seed=31, n_darks=2, n_lights=1, exposure_s=300, temp_dark_c=25, temp_light_c=25)
    t = s.truth
    hy, hx = t["hot_yx"].T
    np.testing.assert_array_equal(s.field.rate_e_s[hy, hx] >= t["hot_rate_e_s"], True)
    np.testing.assert_array_equal(t["rts_yx"], t["hot_yx"][t["hot_rts"]])
    sat = t["hot_saturated_light"][0]
    assert np.all(s.lights[0].cfa_dn[hy[sat], hx[sat]] == s.sensor.white_level_dn)
    factor = s.sensor.temperature_factor(25)
    gain = t["gain_e_per_dn"]
    steady = ~t["hot_rts"]
    np.testing.assert_allclose(t["hot_light_dn"][0][steady],
                               s.field.rate_e_s[hy, hx][steady] * factor * 300 / gain, rtol=1e-4)


def test_cli_writes_darks_lights_and_truth_and_prints_json(tmp_path, capsys):
    import json

    from hotpixels.cli import main

    out = tmp_path / "sim"
    rc = main(["simulate", str(out), "--preset", "small-xtrans", "--seed", "5", "--darks", "2", "--lights", "2",
               "--batch", "tripod", "--temp-dark", "15", "--temp-light", "21", "--exposure", "60", "--iso", "800",
               "--layout", "ljpeg-tiles", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert [p.split("/")[-1] for p in summary["darks"]] == ["dark_0001.dng", "dark_0002.dng"]
    assert len(summary["lights"]) == 2 and summary["camera"]["cfa"] == "X-Trans"
    truth = load_truth(out)
    assert truth["temp_dark_true_c"] == [15.0, 15.0] and truth["temp_light_true_c"] == [21.0, 21.0]
    assert truth["clean_light_dn"].shape == (2, 423, 607)
    assert (out / "darks" / "dark_0002.dng").stat().st_size > 0


def test_cli_writes_a_learning_set_without_temperature_tags_as_most_bodies(tmp_path, capsys):
    import json

    from hotpixels.cli import main
    from hotpixels.dng.reader import read_dng

    rc = main(["simulate", str(tmp_path / "set"), "--batch", "varied", "--darks", "0", "--lights", "2",
               "--no-temperature", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert [p["temperature_c"] for p in summary["photos"]] == [None, None]
    assert all(read_dng(p, pixels=False).metadata.temperature_c is None for p in summary["lights"])
    assert len(load_truth(tmp_path / "set")["temp_true_c"]) == 2  # the truth keeps the true temperatures
    assert main(["simulate", str(tmp_path / "tagged"), "--batch", "varied", "--darks", "0", "--lights", "1"]) == 0
    tagged = read_dng(tmp_path / "tagged" / "lights" / "light_0001.dng", pixels=False).metadata
    assert tagged.temperature_c is not None  # the same reader finds the tag when it is written


def test_cli_refuses_an_unknown_preset(tmp_path, capsys):
    from hotpixels.cli import main

    with pytest.raises(SystemExit):
        main(["simulate", str(tmp_path), "--preset", "huge"])
    assert "invalid choice" in capsys.readouterr().err


def test_written_files_follow_the_umask_not_private_temp_permissions(tmp_path):
    import os
    import stat

    s = simulate_session("small", seed=32, n_darks=1, n_lights=0)
    old = os.umask(0o022)
    try:
        written = s.write(tmp_path)
    finally:
        os.umask(old)
    for p in written["darks"] + [written["truth_json"], written["truth_npz"]]:
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o644
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_cancelled_write_leaves_no_dng_or_truth_behind(tmp_path):
    import threading

    from hotpixels.errors import Cancelled

    s = simulate_session("small", seed=33, n_darks=3, n_lights=1)
    cancel = threading.Event()

    def progress(done, total, message):
        if done == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        s.write(tmp_path, progress=progress, cancel=cancel)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_sensor_warming_during_a_burst_raises_the_dark_signal_frame_by_frame():
    s = simulate_session("small", seed=34, n_darks=3, n_lights=0, temp_dark_c=10, temp_drift_c_per_frame=2.0,
                         exposure_s=120, serial="BODY-42")
    assert s.truth["temp_dark_true_c"] == [10.0, 12.0, 14.0]
    assert s.darks[0].metadata.serial == "BODY-42"
    hy, hx = s.truth["hot_yx"].T
    means = [d.cfa_dn[hy, hx].astype(float).mean() for d in s.darks]
    assert means[0] < means[1] < means[2]
    rec = np.array(s.truth["temp_dark_recorded_c"])
    assert np.all(np.abs(rec - np.array(s.truth["temp_dark_true_c"])) <= 3.5)


def test_simulate_session_can_write_as_it_goes(tmp_path):
    s = simulate_session("small", seed=35, n_darks=1, n_lights=1, outdir=tmp_path, layout="packed")
    assert s.written["lights"] == [str(tmp_path / "lights" / "light_0001.dng")]
    assert (tmp_path / "truth.npz").is_file()


def test_hot_pixels_seen_in_a_dark_frame_match_the_rate_distribution():
    """End to end: count sites whose dark signal exceeds a DN threshold in a real dark frame."""
    sensor = make_sensor("small", seed=36, hot_fraction=0.01, amp_glow_e_s=0.0, rts_fraction=0.0)
    exposure_s, temp_c, iso = 120.0, 26.0, 1600
    f = render_dark(sensor, rng_for(36, "count"), exposure_s=exposure_s, temp_c=temp_c, iso=iso)
    excess_dn = f.cfa_dn.astype(float) - sensor.black_map()
    gain = sensor.gain_e_per_dn(iso)
    for threshold_dn in (100.0, 1000.0):
        rate_threshold = threshold_dn * gain / (sensor.temperature_factor(temp_c) * exposure_s)
        expect = expected_hot_count(sensor, rate_threshold)
        got = int(np.sum(excess_dn > threshold_dn))
        assert abs(got - expect) <= 0.1 * expect + 2 * np.sqrt(expect), (threshold_dn, got, expect)
