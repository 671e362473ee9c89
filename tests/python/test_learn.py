"""Learned profiles: a body's hot pixels learned from its ordinary photos, no dark frames.

Stories: a photographer learns a profile from a varied set of one body's photos (the hot pixels
are found, stars and scenes are not); adds photos later without keeping the old ones; corrects a
new photo with the learned profile picked automatically; feeds a batch's evidence into the
library; builds a profile from a single dark; is stopped from building one from photos; and the
same over the worker, with progress and cancel.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from hotpixels.errors import Cancelled, NotADarkFrame
from hotpixels.profiles.darkmodel import FLAG_COLD
from hotpixels.profiles.learn import learn_profile
from hotpixels.profiles.learnstats import LearnEvidence
from hotpixels.profiles.library import ProfileLibrary
from hotpixels.simulate.defects import make_dark_field
from hotpixels.simulate.sensor import make_sensor
from hotpixels.simulate.varied import simulate_varied

SEED = 5151


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    """12 photos of one small Bayer body: different scenes, exposures, ISO and temperatures."""
    root = tmp_path_factory.mktemp("varied")
    sensor = make_sensor("small", SEED)
    out = simulate_varied(root / "set", sensor=sensor, seed=SEED, n_lights=12)
    return {"lights": out["lights"], "truth": out["truth"], "sensor": sensor, "root": root}


@pytest.fixture(scope="module")
def learned(varied):
    lib = ProfileLibrary(varied["root"] / "lib")
    out = learn_profile(varied["lights"], "body learned", lib)
    return {"lib": lib, "out": out, "profile": lib.get("body learned")}


def _strong_hot(varied) -> set:
    """Hot pixels >= 8 σ (read noise, electrons) at the set's median settings, 3 px inside the ActiveArea."""
    t = varied["truth"]
    s = varied["sensor"]
    fld = make_dark_field(s)
    e = float(np.median(t["exposure_s"]))
    f = s.temperature_factor(float(np.median(t["temp_true_c"])))
    strong = fld.hot_rate_e_s * f * e >= 8 * s.read_noise_e
    top, left, bottom, right = s.active_area
    y, x = fld.hot_yx[:, 0], fld.hot_yx[:, 1]
    inside = (y >= top + 3) & (y < bottom - 3) & (x >= left + 3) & (x < right - 3)
    return {tuple(v) for v in fld.hot_yx[strong & inside].tolist()}


def test_learned_from_a_varied_set_the_defects_are_found_and_scenes_are_not(varied, learned):
    out, prof = learned["out"], learned["profile"]
    assert out["photos_used"] == 12 and out["skipped"] == []
    sites = {tuple(v) for v in prof.model.hot_yx.tolist()}
    strong = _strong_hot(varied)
    assert len(strong) > 50
    assert len(strong & sites) >= 0.9 * len(strong)
    defects = {tuple(v) for k in ("hot_yx", "stuck_yx") for v in varied["truth"][k].tolist()}
    assert len(sites - defects) <= 1  # stars, foreground texture and noise are not learned
    cold = {tuple(v) for v in prof.model.hot_yx[prof.model.flagged(FLAG_COLD)].tolist()}
    assert cold and cold <= {tuple(v) for v in varied["truth"]["stuck_yx"].tolist()}  # dead sites learned as cold
    s = out["profile"]
    assert s["kind"] == "learned" and s["learned"]["photos"] == 12
    assert s["learned"]["iso"][0] < s["learned"]["iso"][1]  # the settings it was learned from
    assert s["learned"]["first_capture"] < s["learned"]["last_capture"]


def test_update_streams_new_photos_into_the_stored_sums(varied, tmp_path):
    lib = ProfileLibrary(tmp_path)
    first = learn_profile(varied["lights"][:8], "grown", lib)
    grown = learn_profile(varied["lights"][8:], "grown", lib, update=True)
    once = learn_profile(varied["lights"], "at once", lib)
    assert first["photos_used"] == 8 and grown["photos_used"] == 4
    assert grown["profile"]["learned"]["photos"] == 12
    a, b = lib.get("grown").model.hot_yx, lib.get("at once").model.hot_yx
    assert {tuple(v) for v in a.tolist()} == {tuple(v) for v in b.tolist()}
    from hotpixels.errors import InvalidOption

    with pytest.raises(InvalidOption) as err:  # photos already learned are not counted twice
        learn_profile(varied["lights"][8:], "grown", lib, update=True)
    assert "already in this learned profile" in str(err.value)


def test_memory_does_not_grow_with_the_number_of_photos(varied):
    from hotpixels.dng.reader import read_dng

    raw = read_dng(varied["lights"][0], metadata=False)
    ev = LearnEvidence(raw.cfa, raw.active_area, raw.shape)
    sizes = []
    for p in varied["lights"][:4]:
        r = read_dng(p, metadata=False)
        ev.add(r.cfa_dn, black_level_dn=r.black_repeat_dn, white_level_dn=r.white_level_dn, factor=10.0)
        sizes.append(ev.nbytes)
    assert len(set(sizes)) == 1
    assert sizes[0] < 50 * raw.shape[0] * raw.shape[1]  # tens of bytes per site


def test_the_stored_sums_gathered_block_by_block_match_the_whole_frame_reference():
    """``sufficient`` picks and gathers per block of rows (no full-frame temporary); the result is
    the whole-frame selection's, site for site, and ``load_sufficient`` puts it back exactly."""
    from hotpixels.dng.cfa import CfaPattern
    from hotpixels.profiles.learnstats import COUNTS, SUMS, Z_KEEP, robust_z

    ev = LearnEvidence(CfaPattern.bayer("RGGB"), (2, 4, 2402, 604), (2404, 610), tracked=True)
    rng = np.random.default_rng(7)
    for k in ev.sums:
        ev.sums[k][:] = rng.normal(0.0, 8.0, ev.box)
    ev.counts["counted"][:] = rng.integers(0, 30, ev.box)
    ev.counts["hit"][:] = rng.poisson(0.4, ev.box)
    ev.counts["high"][:] = rng.poisson(0.1, ev.box)
    got = ev.sufficient()
    keep = (robust_z(ev.sums["zc"], ev.counts["counted"]) >= Z_KEEP) | (ev.counts["hit"] >= 2)
    iy, ix = np.nonzero(keep)
    assert 0 < len(iy) < keep.size
    np.testing.assert_array_equal(got["yx"], np.stack([iy + 2, ix + 4], axis=1))
    np.testing.assert_array_equal(got["sums"], np.stack([ev.sums[k][iy, ix] for k in SUMS], axis=1))
    np.testing.assert_array_equal(got["counts"], np.stack([ev.counts[k][iy, ix] for k in COUNTS], axis=1))
    back = LearnEvidence(ev.cfa, ev.active_area, ev.shape, tracked=True)
    back.load_sufficient(got["yx"], got["sums"], got["counts"], 5)
    np.testing.assert_array_equal(back.sums["we"][keep], ev.sums["we"][keep])
    assert not back.sums["we"][~keep].any()


def test_fewer_than_8_photos_or_a_corrected_photo_are_refused(varied, tmp_path):
    from hotpixels.errors import InvalidOption

    with pytest.raises(InvalidOption) as err:
        learn_profile(varied["lights"][:5], "few", ProfileLibrary(tmp_path))
    assert err.value.data["param"] == "paths"


def test_a_learned_profile_is_auto_matched_and_corrects_a_new_photo(varied, learned, tmp_path):
    from hotpixels.correct.engine import correct_files
    from hotpixels.correct.pipeline import CorrectOptions
    from hotpixels.profiles.match import match_profiles
    from hotpixels.simulate.session import simulate_session

    s = simulate_session(sensor=varied["sensor"], seed=SEED + 99, n_darks=0, n_lights=1, scene="stars", exposure_s=30,
                         iso=1600, temp_light_c=20, outdir=tmp_path / "new")
    path = s.written["lights"][0]
    m = match_profiles(s.lights[0], learned["lib"])
    assert m["best"] == "body learned" and m["candidates"][0]["kind"] == "learned"
    assert "learned from 12 photos" in m["candidates"][0]["explanation"]
    opts = CorrectOptions(profile="auto", library_dir=str(learned["lib"].dir), output_dir=str(tmp_path / "out"),
                          previews=False, batch="off")
    [r] = correct_files([path], opts)
    assert r["ok"] and r["profile"]["name"] == "body learned"
    assert not r["stages"]["dark"]["ran"] and "needs a dark-frame profile" in r["stages"]["dark"]["reason"]
    hot = r["stages"]["hot"]
    assert hot["ran"] and hot["n_interpolated"] > 0.5 * hot["learned"]["n_learned"]
    assert hot["learned"]["photo_scale"]["method"] == "fit"  # measured in the photo, reported
    # the strong hot pixels are gone: back within 4 σ of the clean frame
    from hotpixels.dng.reader import read_dng

    out = read_dng(r["output"], metadata=False).cfa_dn.astype(float)
    clean = s.truth["clean_light_dn"][0].astype(float)
    t = s.truth
    strong = t["hot_light_dn"][0] >= 10 * t["read_noise_dn"]
    yx = t["hot_yx"][strong]
    inside = {tuple(v) for v in learned["profile"].model.hot_yx.tolist()}
    yx = np.array([v for v in yx.tolist() if tuple(v) in inside])
    err = np.abs(out[yx[:, 0], yx[:, 1]] - clean[yx[:, 0], yx[:, 1]])
    before = np.abs(s.lights[0].cfa_dn[yx[:, 0], yx[:, 1]].astype(float) - clean[yx[:, 0], yx[:, 1]])
    assert np.median(err) < 0.25 * np.median(before)


def _new_photo(varied, seed: int, temp_c: float):
    from hotpixels.simulate.session import simulate_session

    return simulate_session(sensor=varied["sensor"], seed=seed, n_darks=0, n_lights=1, scene="foreground",
                            exposure_s=60, iso=1600, temp_light_c=temp_c)


def _hot_error_dn(out, s, learned) -> float:
    """RMS error (DN) against the clean frame at the learned sites that are >= 10 σ hot in the photo."""
    t = s.truth
    strong = t["hot_light_dn"][0] >= 10 * t["read_noise_dn"]
    inside = {tuple(v) for v in learned["profile"].model.hot_yx.tolist()}
    yx = np.array([v for v in t["hot_yx"][strong].tolist() if tuple(v) in inside])
    clean = t["clean_light_dn"][0].astype(float)
    return float(np.sqrt(np.mean((out[yx[:, 0], yx[:, 1]].astype(float) - clean[yx[:, 0], yx[:, 1]]) ** 2)))


def test_a_photo_whose_temperature_tag_is_off_by_degrees_is_corrected_at_its_own_scale(varied, learned):
    """Temperature sensors err by degrees and many bodies record none: the learned prediction is then
    off by one factor for the whole photo (8 °C is 2.5x at a 6 °C doubling). Stage 2 measures that
    factor on the photo's own hot pixels and corrects as well as with an honest tag."""
    from hotpixels.correct.learnedhot import LearnedSites, interpolate_learned
    from hotpixels.profiles.learnstats import dark_factor

    sites = LearnedSites.from_profile(learned["profile"])
    s = _new_photo(varied, SEED + 41, temp_c=28.0)
    raw = s.lights[0]
    honest_c = raw.metadata.temperature_c
    out_honest, _, info_honest = interpolate_learned(raw.cfa_dn, raw, sites)
    raw.metadata.temperature_c = honest_c - 8.0  # the tag says 8 °C colder than the sensor was
    out, _, info = interpolate_learned(raw.cfa_dn, raw, sites)
    want = dark_factor(60, 1600, honest_c, sites.doubling_c) / dark_factor(60, 1600, honest_c - 8.0, sites.doubling_c)
    got = info["photo_scale"]["scale"] / info_honest["photo_scale"]["scale"]
    assert info["photo_scale"]["method"] == "fit" and info["photo_scale"]["n_fit_sites"] >= 8
    assert abs(got / want - 1.0) < 0.15
    before = _hot_error_dn(raw.cfa_dn, s, learned)
    assert _hot_error_dn(out, s, learned) < min(0.1 * before, 1.1 * _hot_error_dn(out_honest, s, learned))


def test_a_photo_the_camera_already_dark_subtracted_is_left_alone(varied, learned):
    """In-camera long-exposure noise reduction removes the dark signal: the photo shows none of the
    learned excess, its scale is measured as ~0 and no learned site is dug into the background."""
    from hotpixels.correct.learnedhot import LearnedSites, interpolate_learned

    s = _new_photo(varied, SEED + 42, temp_c=20.0)
    raw = s.lights[0]
    raw.cfa_dn = s.truth["clean_light_dn"][0].copy()  # the same photo without its hot pixels
    sites = LearnedSites.from_profile(learned["profile"])
    out, rep, info = interpolate_learned(raw.cfa_dn, raw, sites)
    assert info["photo_scale"]["method"] == "fit" and info["photo_scale"]["scale"] < 0.1
    n_cold = int(np.count_nonzero(sites.cold)) if sites.cold is not None else 0
    assert int(np.count_nonzero(out != raw.cfa_dn)) <= n_cold  # at most the dead sites, which every photo has


def test_a_learned_hot_pixel_clipped_at_white_is_interpolated_not_blended_from_its_clipped_value(varied, learned):
    """A hot pixel that clipped at the white level: its recorded value says nothing about the light
    under it, so it is interpolated outright (reason saturated_in_image), as stage 2 does with darks."""
    from hotpixels.correct.learnedhot import LearnedSites, interpolate_learned

    sites = LearnedSites.from_profile(learned["profile"])
    s = _new_photo(varied, SEED + 43, temp_c=20.0)
    raw = s.lights[0]
    clean = s.truth["clean_light_dn"][0].astype(float)
    _, first, _ = interpolate_learned(raw.cfa_dn, raw, sites)
    t, l, b, r = raw.active_area
    yx = first.yx[(first.yx[:, 0] > t + 3) & (first.yx[:, 0] < b - 3) & (first.yx[:, 1] > l + 3) & (first.yx[:, 1] < r - 3)]
    yx = yx[np.abs(first.new_dn[np.isin(first.yx[:, 0] * 10 ** 5 + first.yx[:, 1], yx[:, 0] * 10 ** 5 + yx[:, 1])]
                   - clean[yx[:, 0], yx[:, 1]]) < 30][:20]  # sites corrected well in the photo as taken
    assert len(yx) == 20
    raw.cfa_dn = raw.cfa_dn.copy()
    raw.cfa_dn[yx[:, 0], yx[:, 1]] = int(raw.white_level_dn)  # now they clip
    out, rep, _ = interpolate_learned(raw.cfa_dn, raw, sites)
    assert rep.counts["saturated_in_image"] >= 20
    err = np.abs(out[yx[:, 0], yx[:, 1]].astype(float) - clean[yx[:, 0], yx[:, 1]])
    assert np.median(err) < 30 and err.max() < 200  # the neighbours' level, not white less a prediction


def test_a_body_that_records_no_temperature_is_learned_without_calling_its_hot_pixels_unstable(tmp_path):
    """Most bodies record no sensor temperature, so each photo's dark signal is off the tags' model
    by a factor (x2 every few °C over a 0-30 °C season). Learning measures each photo's own factor
    on the hot pixels the photos before it showed: the strong stable sites are not flagged RTS
    (with the tags' factor alone nearly all were) and a new photo is corrected."""
    from hotpixels.correct.learnedhot import LearnedSites, interpolate_learned
    from hotpixels.profiles.darkmodel import FLAG_UNSTABLE
    from hotpixels.simulate.session import simulate_session

    sensor = make_sensor("small", SEED + 60)
    out = simulate_varied(tmp_path / "set", sensor=sensor, seed=SEED + 60, n_lights=12, record_temperature=False)
    lib = ProfileLibrary(tmp_path / "lib")
    learn_profile(out["lights"], "no temperature", lib)
    prof = lib.get("no temperature")
    assert prof.meta["temperature_range_c"] is None  # the photos really had none
    assert any(f["photo_scale"] != 1.0 for f in prof.meta["frames"])  # factors were measured
    fld = make_dark_field(sensor)
    rts = {tuple(v) for v in fld.rts_yx.tolist()}
    unstable = prof.model.flagged(FLAG_UNSTABLE)
    strong = {v for v in _strong_hot({"truth": out["truth"], "sensor": sensor}) if v not in rts}
    learned = [i for i, v in enumerate(prof.model.hot_yx.tolist()) if tuple(v) in strong]
    assert len(learned) > 0.9 * len(strong)
    assert np.mean(unstable[learned]) < 0.15

    s = simulate_session(sensor=sensor, seed=SEED + 61, n_darks=0, n_lights=1, scene="foreground", exposure_s=60,
                         iso=1600, temp_light_c=27.0)
    raw = s.lights[0]
    raw.metadata.temperature_c = None
    fixed, _, info = interpolate_learned(raw.cfa_dn, raw, LearnedSites.from_profile(prof))
    assert info["photo_scale"]["method"] == "fit"
    t = s.truth
    hot = t["hot_light_dn"][0] >= 10 * t["read_noise_dn"]
    inside = {tuple(v) for v in prof.model.hot_yx.tolist()}
    yx = np.array([v for v in t["hot_yx"][hot].tolist() if tuple(v) in inside])
    clean = t["clean_light_dn"][0][yx[:, 0], yx[:, 1]].astype(float)
    before = np.abs(raw.cfa_dn[yx[:, 0], yx[:, 1]] - clean)
    after = np.abs(fixed[yx[:, 0], yx[:, 1]] - clean)
    assert np.median(after) < 0.1 * np.median(before)


def _rewritten_copy(profile, lib: ProfileLibrary, name: str, change):
    """A copy of ``profile``'s file in ``lib`` as ``name``, its meta and arrays passed through
    ``change(meta, arrays)`` (a damaged or an older file)."""
    import shutil

    lib.dir.mkdir(parents=True, exist_ok=True)
    path = lib.dir / f"{name}.hpprofile"
    shutil.copy(profile.path, path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["name"] = name
    change(meta, arrays)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


@pytest.mark.parametrize("change", [
    lambda m: m["learned"].update(doubling_c="six"),
    lambda m: m["learned"].update(doubling_c=-3),
    lambda m: m.update(frames=["not a frame"]),
    lambda m: m["frames"][0].update(photo_scale="x"),
    lambda m: m["frames"][0].update(dark_factor=-1.0),
])
def test_a_learned_profile_with_damaged_numbers_in_its_meta_is_corrupt_not_a_crash(learned, tmp_path, change):
    """A profile file is untrusted input: numbers learning and correction feed on are checked on
    reading (every read of a profile, for correct and for --update, goes through it), so a damaged
    one is profile_corrupt, never error 1000."""
    from hotpixels.errors import ProfileCorrupt
    from hotpixels.profiles.profile_file import load_profile

    path = _rewritten_copy(learned["profile"], ProfileLibrary(tmp_path / "lib"), "damaged",
                           lambda meta, arrays: change(meta))
    with pytest.raises(ProfileCorrupt):
        load_profile(path)


def test_a_learned_profile_written_before_surprises_were_counted_still_loads_and_updates(varied, learned, tmp_path):
    """Profiles store 4 counts per site since flicker "surprises" are counted; a version-2 file with
    the 3 older counts reads with 0 surprises and takes more photos."""
    from hotpixels.profiles.learnstats import COUNTS

    def older(meta, arrays):
        assert arrays["stat_counts"].shape[1] == len(COUNTS) == 4
        arrays["stat_counts"] = arrays["stat_counts"][:, :3]
        meta["version"] = 2

    lib = ProfileLibrary(tmp_path / "lib")
    _rewritten_copy(learned["profile"], lib, "old", older)
    old = lib.get("old")
    assert old.learned["stat_counts"].shape[1] == 4 and not old.learned["stat_counts"][:, 3].any()
    s = simulate_varied(tmp_path / "more", sensor=varied["sensor"], seed=SEED + 70, n_lights=2,
                        capture_start="2026-06-01T22:00:00")
    out = learn_profile(s["lights"], "old", lib, update=True)
    assert out["photos_used"] == 2 and out["profile"]["learned"]["photos"] == 14


def test_photos_taken_with_in_camera_noise_reduction_are_named_and_left_out(tmp_path):
    """With long-exposure noise reduction on, the camera subtracts its own dark frame: such a photo
    shows no hot pixel at all. Its own factor measures ~0, it is named in ``no_dark_signal`` and left
    out of the evidence (kept in, it would dilute every site and, among the first photos, make the
    running model flag strong sites as flickering); the others teach the hot pixels."""
    import datetime as dt

    from hotpixels.simulate.session import simulate_session, write_raw
    from hotpixels.simulate.varied import varied_settings

    sensor = make_sensor("small", SEED + 80)
    (tmp_path / "set").mkdir()
    paths, reduced = [], set()
    for i, st in enumerate(varied_settings(SEED + 80, 12)):
        s = simulate_session(sensor=sensor, seed=st["scene_seed"], n_darks=0, n_lights=1, scene=st["scene"],
                             exposure_s=st["exposure_s"], iso=st["iso"], temp_light_c=st["temp_c"],
                             capture_start=(dt.datetime(2026, 1, 1) + dt.timedelta(days=i)).isoformat())
        raw = s.lights[0]
        if i % 3 == 1:  # every third photo with the camera's noise reduction on
            raw.cfa_dn = s.truth["clean_light_dn"][0]
            reduced.add(f"p{i:02d}.dng")
        write_raw(tmp_path / "set" / f"p{i:02d}.dng", raw, "strip")
        paths.append(str(tmp_path / "set" / f"p{i:02d}.dng"))
    lib = ProfileLibrary(tmp_path / "lib")
    out = learn_profile(paths, "with lenr", lib)
    named = set(out["no_dark_signal"])
    assert named <= reduced and len(named) >= len(reduced) // 2  # only those; a short exposure under it measures loosely
    prof = lib.get("with lenr")
    frames = {f["name"]: f for f in prof.meta["frames"]}
    assert all(frames[n]["photo_scale"] < 0.1 and frames[n]["counted_share"] == 0 for n in named)
    fld = make_dark_field(sensor)
    strong = [tuple(v) for v, r in zip(fld.hot_yx.tolist(), fld.hot_rate_e_s) if r * 30 >= 10 * sensor.read_noise_e]
    learned = {tuple(v) for v in prof.model.hot_yx.tolist()}
    assert np.mean([v in learned for v in strong]) > 0.75
    assert out["rts"] < 0.15 * out["sites"]  # strong sites are not taken for flickering ones


def test_a_dark_profile_and_a_learned_one_of_the_same_body_are_combined(varied, learned, tmp_path):
    from hotpixels.correct.engine import correct_files
    from hotpixels.correct.pipeline import CorrectOptions
    from hotpixels.profiles.build import create_profile
    from hotpixels.simulate.session import simulate_session

    s = simulate_session(sensor=varied["sensor"], seed=SEED + 7, n_darks=3, n_lights=1, scene="stars",
                         outdir=tmp_path / "s")
    create_profile(s.written["darks"], "body darks", learned["lib"])
    try:
        opts = CorrectOptions(profile="auto", library_dir=str(learned["lib"].dir), output_dir=str(tmp_path / "o"),
                              previews=False, batch="off")
        [r] = correct_files(s.written["lights"], opts)
        assert r["ok"] and r["profile"]["kind"] == "dark+learned"
        assert r["profile"]["name"] == "body darks" and r["profile"]["learned"] == "body learned"
        assert r["stages"]["dark"]["ran"] and "learned" in r["stages"]["hot"]
    finally:
        learned["lib"].delete("body darks")


def test_correct_learn_into_feeds_the_batch_evidence_into_the_library(tmp_path, capsys):
    from hotpixels.cli import main
    from hotpixels.simulate.session import simulate_session

    s = simulate_session("small", seed=SEED + 3, n_darks=0, n_lights=4, batch="tripod", scene="stars",
                         outdir=tmp_path / "b")
    lib = tmp_path / "lib"
    rc = main(["correct", *s.written["lights"], "--profile", "none", "--library", str(lib), "--learn-into", "from batch",
               "--output-dir", str(tmp_path / "o"), "--no-previews"])
    assert rc == 0
    assert "added" in capsys.readouterr().err
    prof = ProfileLibrary(lib).get("from batch")
    assert prof.kind == "learned" and prof.model.n_hot > 50
    hot = {tuple(v) for v in s.truth["hot_yx"].tolist()}
    assert sum(tuple(v) in hot for v in prof.model.hot_yx.tolist()) >= 0.9 * prof.model.n_hot


def test_add_sites_to_a_dark_profile_flags_them_for_interpolation(tmp_path):
    from hotpixels.profiles.addsites import add_sites
    from hotpixels.profiles.build import create_profile
    from hotpixels.profiles.darkmodel import FLAG_ADDED
    from hotpixels.simulate.session import simulate_session

    s = simulate_session("small", seed=SEED + 4, n_darks=2, n_lights=1, outdir=tmp_path / "s")
    lib = ProfileLibrary(tmp_path / "lib")
    create_profile(s.written["darks"], "d", lib)
    before = lib.get("d").model.n_hot
    known = lib.get("d").model.hot_yx[0].tolist()
    out = add_sites("d", [{"y": 200, "x": 300, "excess_dn": 40.0, "frames_hit": 5},
                          {"y": known[0], "x": known[1]}, {"y": 0, "x": 0}], lib, paths=s.written["lights"])
    assert out["added"] == 1 and out["profile"]["kind"] == "dark"
    m = lib.get("d").model
    assert m.n_hot == before + 1 and m.hot_flags[-1] & FLAG_ADDED


def test_a_single_dark_is_accepted_and_four_lights_are_refused_as_darks(tmp_path):
    from hotpixels.profiles.build import create_profile
    from hotpixels.simulate.session import simulate_session

    s = simulate_session("small", seed=SEED + 5, n_darks=1, n_lights=4, scene="stars", outdir=tmp_path / "s")
    lib = ProfileLibrary(tmp_path / "lib")
    one = create_profile(s.written["darks"], "one dark", lib)
    assert one["n_frames"] == 1 and any("two or more" in n for n in one["notes"])
    with pytest.raises(NotADarkFrame) as err:
        create_profile(s.written["lights"], "four lights", lib, allow_mismatch=True)
    assert err.value.CODE == 2011 and err.value.data["path"] == s.written["lights"][0]
    assert "light_0001.dng" in err.value.message and err.value.data["reason"]
    assert not lib.exists("four lights")


def test_learning_is_cancelled_between_photos_and_writes_nothing(varied, tmp_path):
    cancel = threading.Event()
    seen = []

    def progress(done, total, message=""):
        seen.append(message)
        if done >= 2:
            cancel.set()

    lib = ProfileLibrary(tmp_path)
    with pytest.raises(Cancelled):
        learn_profile(varied["lights"], "stopped", lib, progress=progress, cancel=cancel)
    assert not lib.exists("stopped") and any("2/12" in m for m in seen)


def test_profiles_learn_over_the_worker_with_progress_then_cancel(varied, tmp_path):
    from hotpixels.rpc.client import WorkerClient
    from test_worker_process import WORKERS, worker_env

    source = WORKERS[0].values[0]  # the worker from source
    client = WorkerClient.spawn([str(source), "--stdio"], env=worker_env(tmp_path))
    try:
        lib = str(tmp_path / "lib")
        rid = client.request("profiles.learn", {"paths": varied["lights"], "name": "over rpc", "library": lib})
        r = client.wait(rid, 240)["result"]
        assert r["photos_used"] == 12 and r["profile"]["kind"] == "learned" and r["sites"] > 50
        assert len(client.progress_of(rid)) >= 3
        listed = client.result("profiles.list", {"library": lib})
        assert listed["profiles"][0]["learned"]["photos"] == 12
        added = client.result("profiles.addSites", {"name": "over rpc", "sites": [{"y": 100, "x": 101}],
                                                    "library": lib}, timeout_s=60)
        assert added["added"] in (0, 1) and added["profile"]["kind"] == "learned"
        bad = client.call("profiles.learn", {"paths": varied["lights"][:3], "name": "few", "library": lib}, 60)
        assert bad["error"]["code"] == -32602
        rid = client.request("profiles.learn", {"paths": varied["lights"], "name": "cancelled", "library": lib})
        client.wait_for(lambda m: m.get("method") == "$/progress" and m["params"]["id"] == rid, 120)
        client.cancel(rid)
        assert client.wait(rid, 120)["error"]["code"] == -32800
        assert "cancelled" not in json.dumps([p["name"] for p in client.result("profiles.list", {"library": lib})["profiles"]])
    finally:
        client.kill()


def _tracked_frames(n: int, star_peak_dn: float, seed: int):
    """``n`` photos of a tracked series (160 x 160 RGGB, black 512, σ 3 DN): a hot pixel at (60, 61)
    standing 40 DN out, and a faint star of σ 0.45-0.9 px (seeing varies; half as bright on red and
    blue sites) peaking ``star_peak_dn`` over the sky on the green site (100, 101), the same in
    every photo but for a 0.05 px tracking jitter."""
    from math import erf, sqrt

    rng = np.random.default_rng(seed)
    erf_v = np.vectorize(erf)
    frames = []
    for _ in range(n):
        frame = 512.0 + 40.0 + rng.normal(0.0, 3.0, (160, 160))
        frame[60, 61] += 40.0
        cy, cx = 100 + rng.normal(0, 0.05), 101 + rng.normal(0, 0.05)
        ys, xs = np.arange(95, 106), np.arange(96, 107)
        sigma_px = rng.uniform(0.45, 0.9)  # seeing and focus vary from photo to photo

        def profile(c, s):
            return 0.5 * (erf_v((s + 0.5 - c) / (sigma_px * sqrt(2))) - erf_v((s - 0.5 - c) / (sigma_px * sqrt(2))))

        centre = profile(0.0, 0.0) ** 2
        colour = np.where((ys[:, None] + xs[None, :]) % 2 == 1, 1.0, 0.5)  # green 1, red and blue 0.5
        frame[95:106, 96:107] += star_peak_dn / centre * colour * profile(cy, ys)[:, None] * profile(cx, xs)[None, :]
        frames.append(np.round(frame).astype(np.uint16))
    return frames


def _learned_sites(frames, tracked: bool) -> set:
    from hotpixels.dng.cfa import CfaPattern

    ev = LearnEvidence(CfaPattern.bayer("RGGB"), (0, 0, 160, 160), (160, 160), tracked=tracked)
    for f in frames:
        ev.add(f, black_level_dn=512.0, white_level_dn=16383.0, factor=480.0)
    return {tuple(v) for v in ev.finish().yx.tolist()}


def test_a_tracked_series_faint_star_is_not_learned_but_its_hot_pixel_is():
    """A faint star that sits on one green site in every photo of a tracked series hides its spill
    onto the neighbours in the noise of most single photos and shows it in the softer ones (seeing);
    summed over all the photos, the soft ones included, it cannot pass for a hot pixel."""
    for seed in (2, 3):
        frames = _tracked_frames(20, star_peak_dn=7.0, seed=seed)
        plain = _learned_sites(frames, tracked=False)
        assert (100, 101) in plain and (60, 61) in plain  # photo by photo it looks like a hot pixel
        tracked = _learned_sites(frames, tracked=True)
        assert (60, 61) in tracked
        assert (100, 101) not in tracked


def _learned_from_flat_photos(ev, shape, hot, rng) -> set:
    """Twelve flat photos (600 DN, σ 3 DN) at three dark-signal factors, each hot site standing
    0.5 × the factor above its ring, fed to ``ev``; the sites it learns."""
    for i in range(12):
        factor = [30.0, 120.0, 60.0][i % 3]
        frame = 600.0 + rng.normal(0.0, 3.0, shape)
        for y, x in hot:
            frame[y, x] += 0.5 * factor
        ev.add(np.round(frame).astype(np.uint16), black_level_dn=512.0, white_level_dn=16383.0, factor=factor)
    return {tuple(v) for v in ev.finish().yx.tolist()}


def test_hot_pixels_on_the_edge_of_the_active_area_are_learned_from_the_part_of_their_ring_inside():
    """A hot pixel in the outermost rows and columns (a corner too) has half its same-colour ring
    outside the image; the part inside is enough to learn it, and the plain edge stays clean."""
    from hotpixels.dng.cfa import CfaPattern

    rng = np.random.default_rng(11)
    active = (2, 4, 122, 164)  # a masked border of 2 rows and 4 columns
    hot = [(2, 4), (2, 50), (3, 91), (4, 163), (60, 4), (61, 5), (77, 162), (121, 100), (120, 7), (121, 163), (60, 80)]
    ev = LearnEvidence(CfaPattern.bayer("GRBG", origin_yx=active[:2]), active, (124, 168))
    assert _learned_from_flat_photos(ev, (124, 168), hot, rng) == set(hot)


def test_x_trans_hot_pixels_on_the_outermost_rows_and_columns_are_learned_wherever_their_phase_falls():
    """On X-Trans the same-colour ring of a red or blue site on the first row keeps only 2 members
    inside the image; 2 are enough to learn it (with 3 required, such a site, however hot, was never
    learned, and stage 3 does not look within 2 px of the edge: it stayed in every corrected photo)."""
    from hotpixels.dng.cfa import CfaPattern
    from hotpixels.ringat import ring_members_at

    rng = np.random.default_rng(12)
    active = (1, 3, 121, 183)
    cfa = CfaPattern.xtrans(origin_yx=active[:2])
    edge = [(1, x) for x in range(3, 183)] + [(120, x) for x in range(3, 183)] \
        + [(y, 3) for y in range(1, 121)] + [(y, 182) for y in range(1, 121)]
    inside = ring_members_at(cfa, np.array(edge), active)[2].sum(axis=1)
    hot = [edge[i] for i in np.flatnonzero(inside == 2)[::7]][:12]  # sites whose ring keeps 2 members inside
    assert len(hot) >= 6
    ev = LearnEvidence(cfa, active, (122, 186))
    assert _learned_from_flat_photos(ev, (122, 186), hot, rng) == set(hot)


def test_the_partial_ring_at_the_edge_is_the_whole_ring_inside_and_its_inside_part_at_the_edge():
    """``ringat`` (learning and repair at the ActiveArea's edge): 2 px inside, the ring statistics are
    the whole ring's; on the edge and in a corner, those of the members inside the bounds."""
    from hotpixels.candidates import ring_offsets
    from hotpixels.dng.cfa import CfaPattern
    from hotpixels.ringat import ring_mean_max, ring_members_at, ring_robust_sd

    frame = np.random.default_rng(5).integers(500, 900, (40, 50)).astype(np.uint16)
    for cfa in (CfaPattern.bayer("RGGB"), CfaPattern.xtrans()):
        bounds = (3, 4, 37, 46)
        yx = np.array([(3, 4), (3, 20), (10, 45), (36, 45), (20, 25), (5, 6)])
        members = ring_members_at(cfa, yx, bounds)
        mean, peak = ring_mean_max(frame, members)
        sd = ring_robust_sd(frame, members)
        for i, (y, x) in enumerate(yx.tolist()):
            ph = tuple(int(v[0]) for v in cfa.phase_of(np.array([y]), np.array([x])))
            v = [float(frame[y + dy, x + dx]) for dy, dx in ring_offsets(cfa, ph).tolist()
                 if bounds[0] <= y + dy < bounds[2] and bounds[1] <= x + dx < bounds[3]]
            assert mean[i] == pytest.approx(np.mean(v)) and peak[i] == max(v)
            assert sd[i] == pytest.approx(1.4826 * np.median(np.abs(np.array(v) - np.median(v))))
