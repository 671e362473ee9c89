"""Stage 3's batch evidence, streamed: the accumulator, ``hotpixels correct`` over a batch, and the
worker's ``image.scanBatch`` + ``image.correct {batch_id}``.

Simulated tripod sessions (stars drift between frames, the foreground stays) with weak defects
injected into every light and never into the darks, so the profile lacks them.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from hotpixels.cli import main
from hotpixels.correct.batch import (
    BATCH_SENSITIVITY, CONTEXT_SIGMA, CONTEXT_SITES, LOGIT_CLIP, SCORE_SHARE, Z_FRAME, BatchEvidence, detect_batch,
)
from hotpixels.candidates import K_MAX, estimate_noise, ring_offsets
from hotpixels.dng.cfa import CfaPattern
from hotpixels.dng.reader import read_dng
from hotpixels.errors import Cancelled, InvalidOption
from hotpixels.rpc.state import BatchStore
from hotpixels.simulate import make_sensor, simulate_session
from hotpixels.simulate.render import render_light
from hotpixels.simulate.scene import make_scene
from hotpixels.simulate.sensor import rng_for

pytestmark = pytest.mark.timeout(600)

N_LIGHTS = 5
N_DEFECTS = 12
DEFECT_SIGMA = 5.5  # weak: the single-frame detector catches such a defect in some frames only


def _md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _sigma_dn(sensor, frame, yx) -> np.ndarray:
    """Shot + read noise (DN) of the noiseless light at ``yx``."""
    gain = frame.gain_e_per_dn
    level_dn = np.maximum(frame.expected_dn[yx[:, 0], yx[:, 1]] - sensor.black_map()[yx[:, 0], yx[:, 1]], 0)
    return np.sqrt(sensor.read_noise_e ** 2 + level_dn * gain) / gain


def _defect_sites(sensor, seed: int, k: int, dark_dn: np.ndarray) -> np.ndarray:
    """``k`` sites at least 5 px apart whose 5 x 5 neighbourhood holds none of the body's own hot
    pixels (``dark_dn``: the expected dark signal, DN): a defect beside a hot pixel cannot stand out
    of its ring in the raw frames the scan reads."""
    t, l, b, r = sensor.active_area
    rng = np.random.default_rng(seed)
    yx = np.stack([rng.integers(t + 6, b - 6, 20 * k), rng.integers(l + 6, r - 6, 20 * k)], axis=1)
    keep: list[np.ndarray] = []
    for p in yx:
        quiet = dark_dn[p[0] - 2:p[0] + 3, p[1] - 2:p[1] + 3].max() < 20.0
        if quiet and all(np.abs(p - q).max() > 5 for q in keep):
            keep.append(p)
    return np.array(keep[:k], dtype=np.int64)


@pytest.fixture(scope="module")
def tripod(tmp_path_factory):
    """5 tripod lights of one body with 12 weak defects in every frame; a profile from 5 darks lacks them."""
    from hotpixels.profiles.build import create_profile

    root = tmp_path_factory.mktemp("tripod")
    seed = 31
    sensor = make_sensor("small", seed, height=180, width=260)
    darks = simulate_session(sensor=sensor, seed=seed, n_darks=5, n_lights=0, exposure_s=60).write(root / "darks")
    create_profile(darks["darks"], "Tripod body", root / "library")
    session = simulate_session(sensor=sensor, seed=seed, n_darks=0, n_lights=N_LIGHTS, batch="tripod",
                               scene="foreground", exposure_s=60)
    defects = _defect_sites(sensor, seed, N_DEFECTS, session.light_frames[0].dark_expected_dn)
    for raw, frame in zip(session.lights, session.light_frames):
        v = raw.cfa_dn.astype(np.float64)
        v[defects[:, 0], defects[:, 1]] += DEFECT_SIGMA * _sigma_dn(sensor, frame, defects)
        raw.cfa_dn[...] = np.clip(np.rint(v), 0, sensor.white_level_dn).astype(np.uint16)
    lights = session.write(root / "session")["lights"]
    return {"root": root, "lights": lights, "library": root / "library", "defects": defects, "sensor": sensor}


# --- the accumulator -------------------------------------------------------------------------------
def _star_field(seed: int, n: int, shape=(150, 220), drift_px=(2.5, 1.5), density=None):
    """``n`` tripod frames of a drifting star field, three defects of 6-8 σ in every frame
    (``drift_px`` (0, 0): a tracking mount, the stars stay on their sites)."""
    sensor = make_sensor("small", seed, height=shape[0], width=shape[1])
    scene = make_scene(sensor, "stars", seed, star_density_per_mpx=density)
    t, l, b, r = sensor.active_area
    spots = ((0.27, 0.23), (0.6, 0.55), (0.78, 0.77))  # fractions of the ActiveArea
    defects = np.array([[t + int(f * (b - t)), l + int(g * (r - l))] for f, g in spots])
    frames = []
    for i in range(n):
        fr = render_light(sensor, scene, rng_for(seed, "light", i), exposure_s=60.0, temp_c=20.0, iso=1600,
                          shift_yx=(drift_px[0] * i, drift_px[1] * i), residual=False)
        f = fr.clean_dn.astype(np.float64)
        f[defects[:, 0], defects[:, 1]] += np.array([6.0, 7.0, 8.0]) * _sigma_dn(sensor, fr, defects)
        frames.append(np.clip(np.rint(f), 0, sensor.white_level_dn).astype(np.uint16))
    return sensor, frames, defects


def _ring_mean_max(frame: np.ndarray, cfa, ys: np.ndarray, xs: np.ndarray):
    """Per site, the mean and maximum of its same-colour ring (plain numpy, per phase)."""
    mean, peak = np.empty(ys.shape), np.empty(ys.shape)
    py, px = cfa.phase_of(ys, xs)
    for phase in cfa.phases():
        sel = (py == phase[0]) & (px == phase[1])
        offs = ring_offsets(cfa, phase)
        ring = frame[ys[sel][:, None] + offs[None, :, 0], xs[sel][:, None] + offs[None, :, 1]].astype(np.float64)
        mean[sel], peak[sel] = ring.mean(axis=1), ring.max(axis=1)
    return mean, peak


def _reference(frames, sensor, detector, sensitivity=BATCH_SENSITIVITY):
    """The documented rule with every frame in memory, written the obvious way."""
    from hotpixels.correct.residual import threshold_for
    from hotpixels.model.features import patch_features

    cfa, aa, black = sensor.cfa, sensor.active_area, float(np.mean(sensor.black_map()))
    t, l, b, r = aa
    ys, xs = (a.ravel() for a in np.mgrid[t + 2:b - 2, l + 2:r - 2])
    n = len(frames)
    hits = np.zeros(ys.shape, int)
    scored = np.zeros(ys.shape, int)
    logit_sum = np.zeros(ys.shape)
    for i, f in enumerate(frames):
        noise = estimate_noise(f, cfa, aa, black)
        mean, peak = _ring_mean_max(f, cfa, ys, xs)
        sd = noise.sigma_dn(mean - black)
        centre = f[ys, xs].astype(np.float64)
        hit = (centre - mean >= Z_FRAME * sd) & (centre - peak > K_MAX * sd)
        hits += hit
        score = hit & (hits >= max(2, math.ceil(SCORE_SHARE * (i + 1))))
        bright = np.flatnonzero(hit & ~score & (centre - mean >= CONTEXT_SIGMA * sd))
        bright = bright[::max(1, math.ceil(len(bright) / CONTEXT_SITES))]  # stars, for the classifier's context
        yx = np.stack([np.concatenate([ys[score], ys[bright]]), np.concatenate([xs[score], xs[bright]])], axis=1)
        x = patch_features(f, cfa, yx, noise, active_area=aa, black_level_dn=black,
                           white_level_dn=sensor.white_level_dn)
        logit_sum[score] += np.clip(detector.logits(x)[:score.sum()], -LOGIT_CLIP, LOGIT_CLIP)
        scored += score
    min_frames = max(2, math.ceil(0.5 * n))
    rec = hits >= min_frames
    yx = np.stack([ys[rec], xs[rec]], axis=1)
    stack = np.mean([f.astype(np.float64) for f in frames], axis=0)
    noise = estimate_noise(stack, cfa, aa, black)
    x = patch_features(stack, cfa, yx, noise, active_area=aa, black_level_dn=black,
                       white_level_dn=sensor.white_level_dn)
    stack_score = detector.logits(x)
    enough = scored[rec] >= max(2, math.ceil(SCORE_SHARE * min_frames))
    frame_score = np.where(enough, logit_sum[rec] / np.maximum(scored[rec], 1), -np.inf)
    thr = threshold_for(sensitivity, detector.meta)
    keep = (stack_score > thr) | (frame_score > thr)
    figures = zip(hits[rec].tolist(), frame_score.tolist(), stack_score.tolist())
    return {tuple(p) for p in yx[keep].tolist()}, dict(zip(map(tuple, yx.tolist()), figures)), int(rec.sum())


def test_streamed_evidence_finds_the_same_defects_as_the_rule_computed_with_every_frame_in_memory():
    from hotpixels.model.load import get_detector

    sensor, frames, defects = _star_field(21, 6)
    ev = BatchEvidence(sensor.cfa, sensor.active_area, frames[0].shape, black_level_dn=sensor.black_map(),
                       white_level_dn=sensor.white_level_dn)
    for f in frames:
        ev.add(f)
    res = ev.finish()

    want, figures, recurring = _reference(frames, sensor, get_detector())
    got = {tuple(p) for p in res["sites"].tolist()}
    assert got == want and res["recurring"] == recurring
    assert {tuple(d) for d in defects.tolist()} <= got  # the defects, and at most a stray site or two
    assert len(got) <= len(defects) + 2
    for p, hits, frame_score, stack_score in zip(res["sites"].tolist(), res["frames_hit"].tolist(),
                                                  res["frame_score"].tolist(), res["stack_score"].tolist()):
        assert (hits, frame_score, stack_score) == pytest.approx(figures[tuple(p)], abs=1e-3)
    same = detect_batch(iter(frames), sensor.cfa, active_area=sensor.active_area, black_level_dn=sensor.black_map(),
                        white_level_dn=sensor.white_level_dn)
    assert {tuple(p) for p in same["sites"].tolist()} == got  # the list form is the same stream


def test_on_a_tracking_mount_a_recurring_site_must_also_light_a_single_pixel():
    sensor, frames, defects = _star_field(24, 5)
    kw = dict(active_area=sensor.active_area, black_level_dn=sensor.black_map(), white_level_dn=sensor.white_level_dn)
    tripod = {tuple(p) for p in detect_batch(frames, sensor.cfa, **kw)["sites"].tolist()}
    tracked = detect_batch(frames, sensor.cfa, tracked=True, **kw)
    kept = {tuple(p) for p in tracked["sites"].tolist()}
    assert tracked["tracked"] and kept <= tripod  # a further test, never a new site
    assert {tuple(d) for d in defects[1:].tolist()} <= kept  # the 7 and 8 σ defects light one pixel on the stack


def test_on_a_tracking_mount_the_fixed_stars_recur_but_only_the_defects_are_reported():
    """Stars stay on their sites in every frame of a tracked series, so hundreds of star cores recur
    like defects; only the three defects (6-8 σ) are reported."""
    sensor, frames, defects = _star_field(25, 6, shape=(200, 300), drift_px=(0.0, 0.0), density=6000)
    kw = dict(active_area=sensor.active_area, black_level_dn=sensor.black_map(), white_level_dn=sensor.white_level_dn)
    tracked = detect_batch(frames, sensor.cfa, tracked=True, **kw)
    kept = {tuple(p) for p in tracked["sites"].tolist()}
    assert {tuple(d) for d in defects.tolist()} <= kept
    assert len(kept) <= len(defects) + 1
    assert tracked["recurring"] > 3 * len(defects)  # the fixed star cores did recur


def _faint_star_beside_a_hot_pixel(star: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 20-frame mean stack (500 DN sky) with, at (30, 30), a faint star (peak 60 DN, σ 0.6 px:
    about 15 DN on each touching site) or a 60 DN hot pixel, and a 2000 DN hot pixel at (31, 32),
    in the same-colour rings of three of the touching sites. Returns ``(stack, site, hot sites)``."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float64)
    stack = np.full((64, 64), 500.0)
    if star:
        stack += 60.0 * np.exp(-((yy - 30) ** 2 + (xx - 30) ** 2) / (2 * 0.6 ** 2))
    else:
        stack[30, 30] += 60.0
    stack[31, 32] += 2000.0
    site, hot = np.array([[30, 30]]), np.array([[30, 30], [31, 32]])
    return stack.astype(np.float32), site, hot


def test_on_a_tracking_mount_a_faint_star_beside_a_hot_pixel_is_not_taken_for_a_defect():
    """The hot pixel lifts the rings of the star's touching sites, so their excess goes below 0 and
    the star's spill would hide: the touching sites' rings are measured with the hot sites found
    repaired, and a real hot pixel in the same place still passes."""
    from hotpixels.candidates import NoiseModel
    from hotpixels.correct.batch import _single_site

    cfa, noise = CfaPattern.bayer("RGGB"), NoiseModel(25.0, 0.0, 25.0)  # σ 5 DN per frame
    stack, site, hot = _faint_star_beside_a_hot_pixel(star=True)
    before = stack.copy()
    assert _single_site(stack, cfa, site, noise, 20, 0.0)[0], "the trap: unrepaired, the star looks single"
    assert not _single_site(stack, cfa, site, noise, 20, 0.0, hot_yx=hot)[0]
    assert np.array_equal(stack, before), "the stack is given back as it was"

    stack, site, hot = _faint_star_beside_a_hot_pixel(star=False)
    assert _single_site(stack, cfa, site, noise, 20, 0.0, hot_yx=hot)[0]


def _held_arrays(obj) -> list:
    return [v for v in vars(obj).values() if isinstance(v, np.ndarray)]


def test_the_accumulator_holds_no_frame_and_its_memory_does_not_grow_with_the_batch():
    sensor, frames, _ = _star_field(22, 3, shape=(64, 96))
    ev = BatchEvidence(sensor.cfa, sensor.active_area, frames[0].shape, black_level_dn=sensor.black_map(),
                       white_level_dn=sensor.white_level_dn)
    sizes = []
    rng = np.random.default_rng(3)
    for i in range(30):
        frame = frames[i % 3] + rng.integers(0, 4, frames[0].shape, dtype=np.uint16)  # a new frame each time
        ev.add(frame)
        held = _held_arrays(ev)
        assert not any(a is frame for a in held)
        sizes.append(sum(a.nbytes for a in held))
    sites = frames[0].size
    assert len(set(sizes)) == 1 and sizes[0] == ev.nbytes
    assert ev.nbytes < 16 * sites  # a few fixed per-site counts and sums, however many frames
    assert ev.n_frames == 30 and len(ev.finish()["sites"]) >= 3


def test_a_frame_of_another_size_is_refused():
    sensor, frames, _ = _star_field(23, 1, shape=(64, 96))
    ev = BatchEvidence(sensor.cfa, sensor.active_area, frames[0].shape)
    with pytest.raises(InvalidOption):
        ev.add(frames[0][:, :-2])


def test_the_worker_keeps_only_the_last_scans_under_ids_nobody_can_guess():
    store = BatchStore(keep=8)
    ids = [store.put({"scan": i}) for i in range(9)]
    assert len(set(ids)) == 9 and all(len(i) >= 22 for i in ids)
    assert store.get(ids[0]) is None  # the oldest is dropped
    assert store.get(ids[8]) == {"scan": 8} and len(store) == 8
    assert store.get("made-up") is None


# --- hotpixels correct --------------------------------------------------------------------------------
def _correct(tripod, out: Path, *extra: str) -> list[dict]:
    code = main(["correct", *tripod["lights"], "--library", str(tripod["library"]), "--output-dir", str(out),
                 "--no-previews", "--json", *extra])
    assert code == 0
    reports = sorted(out.glob("*.hotpixels.json"))
    assert len(reports) == N_LIGHTS
    return [json.loads(p.read_text()) for p in reports]


def _standing(report: dict, defects: np.ndarray) -> set[tuple[int, int]]:
    """Defects that still stand out of their ring in the output by half their excess in the source
    (stage 1 moves every site by the dark field, so "unchanged" would say nothing)."""
    src, out = read_dng(report["source"]), read_dng(report["output"]).cfa_dn
    ys, xs = defects[:, 0], defects[:, 1]
    excess_src = src.cfa_dn[ys, xs] - _ring_mean_max(src.cfa_dn, src.cfa, ys, xs)[0]
    excess_out = out[ys, xs] - _ring_mean_max(out, src.cfa, ys, xs)[0]
    return {tuple(d) for d, keep in zip(defects.tolist(), excess_out > 0.5 * excess_src) if keep}


def test_a_tripod_batch_gets_weak_defects_the_profile_lacks_repaired_in_every_output_and_proposed(tripod, tmp_path,
                                                                                               capsys):
    defects = tripod["defects"]
    every = {tuple(d) for d in defects.tolist()}
    sources = {p: _md5(p) for p in tripod["lights"]}

    alone = _correct(tripod, tmp_path / "off", "--batch", "off")
    capsys.readouterr()
    batch = _correct(tripod, tmp_path / "auto")

    # judged one photo at a time, most of these defects survive in some of the outputs
    survivors = set().union(*(_standing(r, defects) for r in alone))
    assert len(survivors) >= N_DEFECTS // 2
    assert all(r["counts"]["batch"] == 0 and r["batch"]["sites"] == 0 and "off" in r["batch"]["reason"] for r in alone)

    # with the batch's evidence they are found, repaired in every output and proposed for the profile
    found = {(a["y"], a["x"]) for a in batch[0]["batch"]["proposed_profile_additions"]}  # the profile lacks them
    assert len(found & every) >= 3 * N_DEFECTS // 4
    assert survivors & found, "the batch must repair defects the single-frame detector leaves"
    for r in batch:
        assert r["profile"]["name"] == "Tripod body"
        assert r["batch"]["frames"] == r["batch"]["group_frames"] == N_LIGHTS
        assert not _standing(r, defects) & found
        proposed = {(a["y"], a["x"]) for a in r["batch"]["proposed_profile_additions"]}
        assert found & every <= proposed and r["batch"]["sites"] >= len(proposed)
        rows = [line.split(",") for line in Path(r["sites_file"]).read_text().splitlines()[1:]]
        batch_rows = {(int(y), int(x)) for stage, y, x, *_, reason in rows if reason == "batch"}
        assert r["counts"]["batch"] == len(batch_rows) > 0
        assert r["stages"]["residual"]["n_batch"] == r["counts"]["batch"]
    left_per_photo = [_standing(r, defects) & found for r in alone]
    assert sum(r["counts"]["batch"] for r in batch) >= sum(len(s) for s in left_per_photo)
    assert {p: _md5(p) for p in tripod["lights"]} == sources  # the sources are never written


def test_correcting_one_photo_uses_no_batch_evidence_and_says_so(tripod, tmp_path):
    from hotpixels.correct.pipeline import CorrectOptions, correct_file

    r = correct_file(tripod["lights"][0], CorrectOptions(library_dir=str(tripod["library"]), output_dir=str(tmp_path),
                                                         previews=False))
    assert r["counts"]["batch"] == 0 and r["batch"]["group_frames"] == 0 and r["batch"]["reason"]


def test_the_scan_groups_photos_by_body_and_a_body_with_two_photos_gets_no_evidence(tripod, tmp_path):
    from hotpixels.correct.batchscan import scan_batch

    other = simulate_session(sensor=make_sensor("small", 32, height=180, width=260), seed=32, n_darks=0, n_lights=2,
                             batch="tripod").write(tmp_path / "other")["lights"]
    scan = scan_batch([other[0], *tripod["lights"], other[1]])

    assert [(g["paths"], g["frames"]) for g in scan.groups] == [(other, 0), (tripod["lights"], N_LIGHTS)]
    assert scan.frames == N_LIGHTS + 2 and scan.skipped == []
    assert scan.groups[0]["sites"] == 0 and "2 photo(s)" in scan.sites_for(other[1]).reason
    mine = scan.sites_for(tripod["lights"][2])
    assert mine.group_frames == N_LIGHTS and len(mine.sites) == scan.groups[1]["sites"] > 0


def test_cancelling_during_the_scan_stops_before_any_output_is_written(tripod, tmp_path):
    from hotpixels.correct.engine import correct_files
    from hotpixels.correct.pipeline import CorrectOptions

    cancel = threading.Event()

    def progress(done: int, total: int, message: str = "") -> None:
        if message.startswith("scanning 2/"):
            cancel.set()

    with pytest.raises(Cancelled):
        correct_files(tripod["lights"], CorrectOptions(library_dir=str(tripod["library"]), output_dir=str(tmp_path)),
                      progress=progress, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


# --- the worker -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    from hotpixels.rpc.client import WorkerClient
    from test_worker_process import SOURCE_WORKER, worker_env

    tmp = tmp_path_factory.mktemp("batch-worker")
    client = WorkerClient.spawn([str(SOURCE_WORKER), "--stdio"], env=worker_env(tmp))
    assert client.result("worker.hello", {"protocol": 1}, timeout_s=120)["protocol"] == 1
    yield client
    client.kill()


def test_a_named_scan_then_corrections_with_its_batch_id_repair_the_batch_sites(worker, tripod, tmp_path):
    junk = tmp_path / "not-a-photo.dng"
    junk.write_bytes(b"this is not a TIFF file at all")
    rid = worker.request("image.scanBatch", {"paths": [*tripod["lights"], str(junk)],
                                             "library": str(tripod["library"])})
    scan = worker.wait(rid, timeout_s=300)["result"]

    assert any(p["message"].startswith("scanning") for _, p in worker.progress_of(rid))
    (skipped,) = scan["skipped"]
    assert skipped["path"] == str(junk) and skipped["error"]["code"] == 1003 and skipped["error"]["name"] == "not_tiff"
    assert skipped["error"]["message"]
    (group,) = scan["groups"]
    assert group["paths"] == tripod["lights"] and group["frames"] == N_LIGHTS
    assert group["sites"] >= group["proposed_profile_additions"] >= 3 * N_DEFECTS // 4
    assert isinstance(scan["batch_id"], str) and scan["seconds"] >= 0

    photos = tripod["lights"][:3]
    rid = worker.request("image.correct", {"paths": photos, "batch_id": scan["batch_id"],
                                           "output_dir": str(tmp_path / "out"), "library": str(tripod["library"])})
    results = worker.wait(rid, timeout_s=300)["result"]["results"]
    assert not any(p["message"].startswith("scanning") for _, p in worker.progress_of(rid))  # the held scan is used
    for photo, r in zip(photos, results):
        assert r["ok"] and r["batch"]["group_frames"] == N_LIGHTS and r["batch"]["sites"] == group["sites"]
        assert r["counts"]["batch"] > 0
        proposed = {(a["y"], a["x"]) for a in r["batch"]["proposed_profile_additions"]}
        assert len(proposed) == group["proposed_profile_additions"]
        assert not _standing(r, np.array(sorted(proposed))), "every proposed site is repaired"


def test_an_unknown_or_expired_batch_id_is_refused_before_anything_is_written(worker, tripod, tmp_path):
    src = tripod["lights"][1]
    before = _md5(src)
    response = worker.call("image.correct", {"path": src, "batch_id": "expired-or-made-up",
                                             "output_dir": str(tmp_path)}, timeout_s=120)
    err = response["error"]
    assert err["code"] == 1014 and err["data"]["name"] == "batch_expired" and err["data"]["param"] == "batch_id"
    assert "scan" in err["message"]
    assert _md5(src) == before and list(tmp_path.iterdir()) == []


def test_a_scan_needs_two_photos(worker, tripod):
    err = worker.call("image.scanBatch", {"paths": tripod["lights"][:1]})["error"]
    assert err["code"] == -32602 and err["data"]["param"] == "paths"
