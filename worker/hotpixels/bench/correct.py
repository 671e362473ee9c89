"""Benchmark of the correction stages: quality on simulated frames with ground truth, and speed.

Quality (``small`` preset, 400 x 600, RGGB with odd ActiveArea offsets; 8 darks at 20 °C, 120 s,
ISO 1600; a light at T_dark and at T_dark + 6 °C; scenes "stars" and "foreground"): RMSE in DN
against the simulator's *clean* light frame (same scene and noise, no dark signal, no defects)
over the hot sites (the body's hot population inside the ActiveArea, away from saturation) and
over the whole ActiveArea (saturated pixels excluded), for

* ``input``  — the light as recorded;
* ``gkyle``  — the rule of the open-source project gkyle/hotpixels, implemented here as a
  baseline: every pixel the dark frames mark as hot is replaced by the mean of the same-colour
  pixels in the 9 x 9 window around it (other marked pixels left out), no dark scaling, nothing
  else changed. It gets the same list of hot pixels as our stages (the profile's sites with a
  positive excess), so the comparison is about the correction, not the detection;
* ``stage 1`` — dark model subtracted (:mod:`hotpixels.correct.darkframe`);
* ``stages 1-2`` — plus known hot pixels (:mod:`hotpixels.correct.knownhot`);
* ``stages 1-3`` — plus residual hot pixels, when the stage-3 model is installed.

plus the share of the profile's hot pixels >= 5 σ that end within 3 σ of the noiseless value.

Speed (skipped with ``--quick``, which runs a small-frame smoke instead): a 24 MP body (``24mp``
preset, 4 darks), stages 1-2 in memory (wall and CPU seconds, best of 3, warm); then, in a fresh
subprocess so that its peak memory is its own, the whole ``correct_file`` of a 24 MP lossless-JPEG
DNG (read, stages 1-2, write with digests, report, previews), warm (second file); and a batch of
``--batch`` (20) such files through ``correct_files`` (copies of one simulated light: the work per
file is the same). Peak memory is the subprocess's high-water resident set (``VmHWM``; Linux's
``ru_maxrss`` would include the forking bench process). The machine is shared: the load average
is recorded with the figures, and CPU seconds are given next to wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SEED = 11
EXPOSURE_S = 120.0
ISO = 1600


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench correct")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--batch", type=int, default=20, help="files in the 24 MP batch (default 20)")
    parser.add_argument("--no-speed", action="store_true", help="quality only")
    args, _ = parser.parse_known_args(argv)
    figures: dict[str, Any] = {"quality": quality(quick=args.quick)}
    print_quality(figures["quality"])
    if not args.no_speed:
        figures["speed"] = speed("small" if args.quick else "24mp", 3 if args.quick else args.batch)
        print_speed(figures["speed"])
    return figures


# --- quality -------------------------------------------------------------------------------------
def quality(quick: bool = False) -> list[dict[str, Any]]:
    from ..profiles.build import build_dark_model
    from ..simulate import make_sensor, simulate_session

    rows = []
    scenes = ("stars",) if quick else ("stars", "foreground")
    sensor = make_sensor("small", seed=SEED)
    darks = simulate_session("small", SEED, n_darks=8, n_lights=0, sensor=sensor, exposure_s=EXPOSURE_S, iso=ISO,
                             temp_dark_c=20.0)
    model = build_dark_model(darks.darks)
    for scene in scenes:
        for dt in (0.0, 6.0):
            lights = simulate_session("small", SEED, n_darks=0, n_lights=1, sensor=sensor, exposure_s=EXPOSURE_S,
                                      iso=ISO, temp_light_c=20.0 + dt, scene=scene)
            rows.append(_quality_row(sensor, model, lights.lights[0], lights.truth, scene, dt))
    return rows


def _quality_row(sensor, model, raw, truth, scene: str, dt: float) -> dict[str, Any]:
    from ..correct.pipeline import CorrectOptions, correct_raw

    clean = truth["clean_light_dn"][0].astype(np.float64)
    noiseless = truth["expected_light_dn"][0].astype(np.float64)
    gain = truth["gain_e_per_dn"]
    sigma = np.sqrt(truth["read_noise_e"] ** 2 + np.maximum(noiseless - sensor.black_map(), 0) * gain) / gain
    t, l, b, r = raw.active_area
    limit = 0.98 * raw.white_level_dn
    saturated = _dilate(raw.cfa_dn >= limit, 2)
    frame_mask = np.zeros(raw.shape, bool)
    frame_mask[t:b, l:r] = True
    frame_mask &= ~saturated
    hot = truth["hot_yx"].astype(np.int64)
    hot = hot[frame_mask[hot[:, 0], hot[:, 1]]]
    listed = {tuple(v) for v in model.hot_yx.tolist()}
    judged = np.array([tuple(v) in listed for v in hot.tolist()], dtype=bool)
    strong = hot[judged & (_hot_signal(truth, hot) >= 5 * sigma[hot[:, 0], hot[:, 1]])]

    images = {"input": raw.cfa_dn, "gkyle": gkyle_rule(raw, model)}
    t0 = time.perf_counter()
    images["stage 1"], rep1, _ = correct_raw(raw, CorrectOptions(profile=None, stages=("dark",)), model)
    images["stages 1-2"], rep, _ = correct_raw(raw, CorrectOptions(profile=None, stages=("dark", "hot")), model)
    seconds = time.perf_counter() - t0
    s3, rep3, _ = correct_raw(raw, CorrectOptions(profile=None, stages=("dark", "hot", "residual")), model)
    if rep3["stages"]["residual"].get("ran"):
        images["stages 1-3"] = s3

    out = {"scene": scene, "delta_t_c": dt, "scale": rep["stages"]["dark"].get("scale"),
           "scale_method": rep["stages"]["dark"].get("method"),
           "true_scale": float(truth["light_factor"][0] / (2 ** ((20.0 - sensor.ref_temp_c) / sensor.doubling_c))),
           "n_hot_sites": int(len(hot)), "n_strong_profile_sites": int(len(strong)),
           "stage3": (rep3["stages"]["residual"].get("reason") or "ran").splitlines()[0][:160],
           "seconds_stages_1_2_x2": round(seconds, 3),
           "rmse_hot_dn": {}, "rmse_frame_dn": {}, "within_3_sigma": {}}
    for name, img in images.items():
        diff = img.astype(np.float64) - clean
        out["rmse_hot_dn"][name] = _rmse(diff[hot[:, 0], hot[:, 1]])
        out["rmse_frame_dn"][name] = _rmse(diff[frame_mask])
        err = np.abs(img[strong[:, 0], strong[:, 1]] - noiseless[strong[:, 0], strong[:, 1]]) / sigma[strong[:, 0], strong[:, 1]]
        out["within_3_sigma"][name] = round(float(np.mean(err <= 3)), 4) if len(strong) else None
    return out


def _hot_signal(truth, yx) -> np.ndarray:
    lut = {tuple(v): i for i, v in enumerate(truth["hot_yx"].tolist())}
    idx = np.array([lut[tuple(v)] for v in yx.tolist()], dtype=np.int64)
    return truth["hot_light_dn"][0][idx]


def gkyle_rule(raw, model) -> np.ndarray:
    """The gkyle/hotpixels rule: marked pixels := mean of same-colour pixels in the 9 x 9 window."""
    marked = model.hot_yx[model.hot_excess_dn > 0].astype(np.int64)
    h, w = raw.shape
    mask = np.zeros(raw.shape, bool)
    mask[marked[:, 0], marked[:, 1]] = True
    out = raw.cfa_dn.copy()
    py, px = raw.cfa.phase_of(marked[:, 0], marked[:, 1])
    flat = py * raw.cfa.repeat[1] + px
    for phase_flat in np.flatnonzero(np.bincount(flat)):
        idx = np.nonzero(flat == phase_flat)[0]
        offs = raw.cfa.same_color_offsets(divmod(int(phase_flat), raw.cfa.repeat[1]), 4)
        ys = marked[idx, 0, None] + offs[None, :, 0]
        xs = marked[idx, 1, None] + offs[None, :, 1]
        ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        ys, xs = np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)
        ok &= ~mask[ys, xs]
        vals = np.where(ok, raw.cfa_dn[ys, xs], 0).astype(np.float64)
        mean = vals.sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
        keep = ok.any(axis=1)
        out[marked[idx[keep], 0], marked[idx[keep], 1]] = np.rint(mean[keep]).astype(out.dtype)
    return out


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


def _rmse(d: np.ndarray) -> float:
    return round(float(np.sqrt(np.mean(d * d))), 2) if d.size else float("nan")


def print_quality(rows: list[dict[str, Any]]) -> None:
    print("\nCorrection quality: RMSE vs the clean frame (DN), hot sites / whole ActiveArea; "
          "share of profile hot pixels >= 5σ within 3σ")
    for row in rows:
        print(f"\n  scene {row['scene']}, T_light = T_dark + {row['delta_t_c']:g} °C: scale {row['scale']:.3f} "
              f"({row['scale_method']}; truth {row['true_scale']:.3f}), {row['n_hot_sites']} hot sites, "
              f"stage 3: {row['stage3']}")
        print(f"    {'':12s} {'RMSE hot':>10s} {'RMSE frame':>11s} {'within 3σ':>10s}")
        for name in row["rmse_hot_dn"]:
            w3 = row["within_3_sigma"][name]
            print(f"    {name:12s} {row['rmse_hot_dn'][name]:10.1f} {row['rmse_frame_dn'][name]:11.2f} "
                  f"{'' if w3 is None else f'{w3:10.2%}'}")


# --- speed ---------------------------------------------------------------------------------------
_CHILD = r"""
import json, resource, sys, time
from hotpixels.correct.engine import correct_files
from hotpixels.correct.pipeline import CorrectOptions, correct_file
lib, outdir, mode, *paths = sys.argv[1:]
opts = CorrectOptions(stages=("dark", "hot"), library_dir=lib, output_dir=outdir)
res = {}
if mode == "single":
    correct_file(paths[0], opts)  # warm-up: imports, exiftool, caches
    c0, t0 = time.process_time(), time.perf_counter()
    r = correct_file(paths[1], opts)
    res = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0, "parts": r["seconds"]}
else:
    correct_file(paths[0], opts)
    c0, t0 = time.process_time(), time.perf_counter()
    rs = correct_files(paths[1:], opts)
    res = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0, "n": len(rs),
           "ok": sum(bool(r["ok"]) for r in rs)}
# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec on Linux
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
res["peak_rss_mb"] = int(hwm[0].split()[1]) / 1024.0 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps(res))
"""


def speed(preset: str, batch: int) -> dict[str, Any]:
    from ..correct.pipeline import CorrectOptions, correct_raw
    from ..profiles.build import build_dark_model, create_profile
    from ..simulate import make_sensor, simulate_session

    work = Path(tempfile.mkdtemp(prefix="hp-bench-correct-"))
    try:
        t0 = time.perf_counter()
        sensor = make_sensor(preset, seed=SEED)
        darks = simulate_session(preset, SEED, n_darks=4, n_lights=0, sensor=sensor, exposure_s=EXPOSURE_S, iso=ISO)
        model = build_dark_model(darks.darks)
        create_profile(darks.darks, "bench body", work / "library")
        del darks
        lights = simulate_session(preset, SEED, n_darks=0, n_lights=1, sensor=sensor, exposure_s=EXPOSURE_S, iso=ISO,
                                  temp_light_c=26.0, scene="stars", clean=False)
        raw = lights.lights[0]
        written = lights.write(work / "lights", layout="ljpeg-tiles")
        setup_s = time.perf_counter() - t0

        opts = CorrectOptions(profile=None, stages=("dark", "hot"))
        walls, cpus = [], []
        for _ in range(3):
            c0, w0 = time.process_time(), time.perf_counter()
            correct_raw(raw, opts, model)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        del raw, lights, model

        src = written["lights"][0]
        copies = []
        for i in range(batch + 1):  # the first one warms the child up
            dst = work / "batch" / f"frame_{i:03d}.dng"
            dst.parent.mkdir(exist_ok=True)
            shutil.copyfile(src, dst)
            copies.append(str(dst))
        single = _child(work, "single", copies[:2])
        many = _child(work, "batch", copies)
        return {
            "preset": preset, "raw_shape": list(sensor.shape), "megapixels": round(sensor.height * sensor.width / 1e6, 1),
            "file_mb": round(os.path.getsize(src) / 1e6, 1), "setup_seconds": round(setup_s, 1),
            "stages_1_2_seconds": round(min(walls), 3), "stages_1_2_cpu_seconds": round(min(cpus), 3),
            "correct_file": single, "batch": {**many, "images_per_second": round(many["n"] / many["seconds"], 3)},
            "load_average": os.getloadavg()[0],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _child(work: Path, mode: str, paths: list[str]) -> dict[str, Any]:
    outdir = work / f"out-{mode}"
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(work / "library"), str(outdir), mode, *paths],
                          capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"bench child failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_speed(s: dict[str, Any]) -> None:
    c = s["correct_file"]
    b = s["batch"]
    print(f"\nSpeed ({s['preset']}, {s['megapixels']} MP, lossless-JPEG DNG {s['file_mb']} MB; "
          f"load average {s['load_average']:.1f})")
    print(f"  stages 1-2 in memory      {s['stages_1_2_seconds']:.3f} s wall, {s['stages_1_2_cpu_seconds']:.3f} s CPU")
    print(f"  correct_file (warm)       {c['seconds']:.3f} s wall, {c['cpu_seconds']:.3f} s CPU, "
          f"peak memory {c['peak_rss_mb']:.0f} MB  parts {json.dumps(c['parts'])}")
    print(f"  batch of {b['n']}               {b['seconds']:.1f} s = {b['images_per_second']:.2f} images/s "
          f"({b['cpu_seconds']:.1f} s CPU), {b['ok']} ok, peak memory {b['peak_rss_mb']:.0f} MB")
