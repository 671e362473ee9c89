"""Benchmark of profiles: hot-pixel map quality vs the simulator's truth, speed and memory.

Quality (16 darks per body; presets ``small`` (RGGB), ``small-gbrg`` (12-bit, 2 e-/DN at ISO 100),
``small-xtrans``, each at ISO 1600 / 30 s / 20 °C, ISO 6400 / 120 s / 28 °C (many sites clip) and
ISO 800 / 10 s / 8 °C (weak dark signal), one body (seed) per condition; ``--quick``: ``small`` at
the first condition only):

* ``recall_5sigma``: share of truth hot sites whose dark excess (mean expected dark signal over the
  darks minus the amp glow under them) is >= 5 σ of read noise that the profile lists;
* ``false_positive_rate``: listed sites that are not truth defects (hot population or stuck-low),
  per site of the frame;
* ``fp_rate_glow`` / ``fp_rate_elsewhere``: the same, inside the amp-glow corner (glow > 3 σ of
  read noise) and outside it;
* ``rts_toggled_flagged``: share of RTS sites that toggled within the darks flagged unstable (a
  site clipped at the white level in every dark shows no toggle and is left out: it is listed
  saturated anyway); ``unstable_false``: sites flagged unstable that are not RTS sites.

Speed and memory (skipped with ``--quick``; ``--no-24mp`` skips only the 24 MP part):

* ``create_24mp_s`` / ``create_24mp_peak_mb``: ``create_profile`` of 16 simulated 24 MP darks
  (uncompressed 16-bit DNG on disk), in a fresh subprocess, wall time and ``ru_maxrss``;
* ``list_1000_cold_s`` / ``list_1000_warm_s``: ``ProfileLibrary.list()`` over 1000 profiles
  without / with a valid index; ``list_1000_cli_s``: ``hotpixels profile list --json`` as a
  subprocess (interpreter start-up included);
* ``match_1000_ms``: ``match_profiles`` against that library once the image's metadata is read;
  ``metadata_ms``: ``read_dng(pixels=False)`` of the image, exiftool included.

Targets (issue 4): recall >= 99.5 %, false positives <= 1e-4, glow rate <= elsewhere (or both 0),
RTS >= 90 %; 24 MP create <= 30 s and <= 1.5 GB; list <= 1 s; match <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGETS = {"recall_5sigma": 0.995, "false_positive_rate": 1e-4, "rts_toggled_flagged": 0.9,
           "create_24mp_s": 30.0, "create_24mp_peak_mb": 1536.0, "list_1000_warm_s": 1.0, "match_1000_ms": 50.0}


CONDITIONS = {  # name: (ISO, exposure s, dark temperature °C)
    "1600/30s/20C": (1600, 30.0, 20.0),
    "6400/120s/28C": (6400, 120.0, 28.0),
    "800/10s/8C": (800, 10.0, 8.0),
}


def quality(preset: str, seed: int, condition: str = "1600/30s/20C", n_darks: int = 16) -> dict:
    from ..profiles.build import build_profile_data
    from ..profiles.darkmodel import FLAG_UNSTABLE
    from ..simulate.defects import amp_glow_e_s
    from ..simulate.session import simulate_session

    iso, exposure_s, temp_c = CONDITIONS[condition]
    s = simulate_session(preset, seed=seed, n_darks=n_darks, n_lights=0, iso=iso, exposure_s=exposure_s,
                         temp_dark_c=temp_c)
    t0 = time.perf_counter()
    model = build_profile_data(s.darks, 5.0).model
    seconds = time.perf_counter() - t0
    t = s.truth
    shape = model.raw_shape
    listed = np.zeros(shape, bool)
    listed[model.hot_yx[:, 0], model.hot_yx[:, 1]] = True
    hy, hx = t["hot_yx"][:, 0], t["hot_yx"][:, 1]
    gain, factor, exposure = t["gain_e_per_dn"], t["dark_factor"][0], t["dark_exposure_s"]
    glow = amp_glow_e_s(s.sensor) * factor * exposure / gain
    excess = t["hot_dark_dn"].mean(axis=0) - glow[hy, hx]
    clear = excess >= 5 * t["read_noise_dn"]
    defect = np.zeros(shape, bool)
    defect[hy, hx] = True
    defect[t["stuck_yx"][:, 0], t["stuck_yx"][:, 1]] = True

    # truth for ordinary sites: expected dark signal (noise-free, mean over the darks) above the
    # glow and the median ordinary level; "warm" = truly 2 master σ or more above it (a correct
    # listing, just not a defect of the hot population); "clipped" = within 4 σ of the white level,
    # so some darks clip there (listed saturated, correctly)
    expected = np.mean([f.dark_expected_dn for f in s.dark_frames], axis=0)
    ordinary = expected - glow
    base = float(np.median(ordinary[~defect]))
    master_sigma = t["read_noise_dn"] / np.sqrt(n_darks)
    warm = ~defect & (ordinary - base >= 2 * master_sigma)
    noise_dn = np.sqrt(t["read_noise_e"] ** 2 + np.maximum(expected, 0) * gain) / gain
    clipped = ~defect & (expected + 4 * noise_dn + s.sensor.black_map() >= s.sensor.white_level_dn - 1)
    fp = listed & ~defect & ~warm & ~clipped
    in_glow = (glow > 3 * t["read_noise_dn"]) & ~clipped

    high = t["rts_high_dark"]
    rts_hot = np.nonzero(t["hot_rts"])[0]
    saturated_always = t["hot_saturated_dark"][:, rts_hot].all(axis=0)  # clipped in every dark: no toggle shows
    toggled = high.any(axis=0) & ~high.all(axis=0) & ~saturated_always
    low_e = t["hot_rate_e_s"][rts_hot] * factor * exposure + glow[t["rts_yx"][:, 0], t["rts_yx"][:, 1]] * gain
    step_e = t["rts_extra_e_s"] * factor * exposure
    clear_step = step_e >= 8 * np.sqrt(t["read_noise_e"] ** 2 + low_e + step_e / 2)
    unstable = np.zeros(shape, bool)
    sel = model.flagged(FLAG_UNSTABLE)
    unstable[model.hot_yx[sel, 0], model.hot_yx[sel, 1]] = True
    ry, rx = t["rts_yx"][:, 0], t["rts_yx"][:, 1]
    rts = np.zeros(shape, bool)
    rts[ry, rx] = True
    flagged = unstable[ry, rx]
    return {"preset": preset, "seed": seed, "condition": condition, "sites": int(listed.size),
            "clear_hot": int(clear.sum()), "found": int(listed[hy[clear], hx[clear]].sum()), "false_pos": int(fp.sum()),
            "listed_warm": int((listed & warm).sum()), "warm": int(warm.sum()),
            "listed_clipped": int((listed & clipped).sum()), "clipped": int(clipped.sum()),
            "glow_sites": int(in_glow.sum()), "false_pos_glow": int((fp & in_glow).sum()),
            "rts_toggled": int(toggled.sum()), "rts_flagged": int(flagged[toggled].sum()),
            "rts_clear": int((toggled & clear_step).sum()), "rts_clear_flagged": int(flagged[toggled & clear_step].sum()),
            "unstable_false": int((unstable & ~rts).sum()), "build_s": round(seconds, 3)}


def quality_table(quick: bool) -> dict:
    runs = []
    plan = [("small", 1, "1600/30s/20C")] if quick else [
        (p, seed, c) for p in ("small", "small-gbrg", "small-xtrans") for seed, c in enumerate(CONDITIONS, start=1)]
    for preset, seed, condition in plan:
        r = quality(preset, seed, condition)
        runs.append(r)
        print(f"  {preset:13s} {condition:14s}: recall {r['found']}/{r['clear_hot']}, FP {r['false_pos']} "
              f"(glow {r['false_pos_glow']}/{r['glow_sites']}), warm listed {r['listed_warm']}/{r['warm']}, "
              f"clipped listed {r['listed_clipped']}/{r['clipped']}, RTS clear {r['rts_clear_flagged']}/{r['rts_clear']} "
              f"all {r['rts_flagged']}/{r['rts_toggled']}, false unstable {r['unstable_false']}, {r['build_s']} s",
              flush=True)
    tot = {k: sum(r[k] for r in runs) for k in ("sites", "clear_hot", "found", "false_pos", "glow_sites",
                                                  "false_pos_glow", "rts_toggled", "rts_flagged", "rts_clear",
                                                  "rts_clear_flagged", "unstable_false", "listed_warm", "warm",
                                                  "listed_clipped", "clipped")}
    elsewhere = tot["sites"] - tot["glow_sites"]
    return {
        "runs": runs,
        "recall_5sigma": tot["found"] / max(tot["clear_hot"], 1),
        "false_positive_rate": tot["false_pos"] / tot["sites"],
        "fp_rate_glow": tot["false_pos_glow"] / max(tot["glow_sites"], 1),
        "fp_rate_elsewhere": (tot["false_pos"] - tot["false_pos_glow"]) / max(elsewhere, 1),
        "rts_toggled_flagged": tot["rts_clear_flagged"] / max(tot["rts_clear"], 1),
        "rts_all_toggles_flagged": tot["rts_flagged"] / max(tot["rts_toggled"], 1),
        "unstable_false": tot["unstable_false"],
        "warm_listed": tot["listed_warm"] / max(tot["warm"], 1),
        "clipped_listed": tot["listed_clipped"] / max(tot["clipped"], 1),
    }


_CREATE_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from hotpixels.profiles.build import create_profile
paths = json.loads(sys.argv[2])
t0 = time.perf_counter()
out = create_profile(paths, "bench 24mp", sys.argv[3])
secs = time.perf_counter() - t0
print(json.dumps({"seconds": secs, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "bytes": out["bytes"], "n_hot": out["stats"]["n_hot"]}))
"""


def create_24mp(workdir: Path, n_darks: int = 16) -> dict:
    from ..simulate.session import simulate_session

    t0 = time.perf_counter()
    darks_dir = workdir / "darks24"
    paths = []
    for i in range(n_darks):  # one dark at a time: the parent's memory stays small
        s = simulate_session("24mp", seed=5, n_darks=1, n_lights=0)
        raw = s.darks[0]
        from ..dng.create import write_dng

        path = darks_dir / f"dark_{i + 1:04d}.dng"
        darks_dir.mkdir(parents=True, exist_ok=True)
        noise = np.random.default_rng(i).integers(0, 2, raw.cfa_dn.shape, dtype=np.uint16)  # distinct frames
        write_dng(path, raw.cfa_dn + noise, cfa=raw.cfa, active_area=raw.active_area,
                  black_level_dn=raw.black_repeat_dn, white_level_dn=raw.white_level_dn, bits=16,
                  layout="strip", metadata=raw.metadata)
        paths.append(str(path))
        del s, raw
    print(f"  wrote {n_darks} x 24 MP darks in {time.perf_counter() - t0:.0f} s", flush=True)
    worker_dir = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", _CREATE_CHILD, worker_dir, json.dumps(paths), str(workdir / "lib24")],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"create_24mp_s": round(r["seconds"], 2), "create_24mp_peak_mb": round(r["maxrss_kb"] / 1024, 1),
            "profile_24mp_mb": round(r["bytes"] / 1e6, 2), "profile_24mp_sites": r["n_hot"]}


def library_speed(workdir: Path, n_profiles: int = 1000) -> dict:
    from ..dng.reader import read_dng
    from ..profiles.build import create_profile
    from ..profiles.library import INDEX_NAME, ProfileLibrary, file_stem_for
    from ..profiles.match import match_profiles
    from ..profiles.profile_file import SUFFIX, load_profile, save_profile
    from ..simulate.session import simulate_session

    lib_dir = workdir / "lib1000"
    session = simulate_session("small", seed=9, n_darks=4, n_lights=1)
    create_profile(session.darks, "p0000", ProfileLibrary(lib_dir))
    base = load_profile(next(lib_dir.glob("*" + SUFFIX)))
    rng = np.random.default_rng(0)
    for i in range(1, n_profiles):
        base.name = f"p{i:04d}"
        base.meta["iso"] = float(rng.choice([400, 800, 1600, 3200, 6400]))
        base.meta["exposure_s"] = float(rng.choice([15, 30, 60, 120]))
        base.meta["temperature_c"] = float(rng.integers(-5, 30))
        base.meta["camera"] = dict(base.meta["camera"], serial=f"SIM{rng.integers(0, 5):08d}")
        save_profile(lib_dir / (file_stem_for(base.name) + SUFFIX), base)
    (lib_dir / INDEX_NAME).unlink(missing_ok=True)
    lib = ProfileLibrary(lib_dir)
    t0 = time.perf_counter()
    n = len(lib.list()["profiles"])
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    lib.list()
    warm = time.perf_counter() - t0
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hotpixels", "profile", "list", "--json", "--library", str(lib_dir)],
                   capture_output=True, check=True, env=env, timeout=120)
    cli = time.perf_counter() - t0

    light = workdir / "light.dng"
    session.write(workdir / "sess")
    light = next((workdir / "sess" / "lights").glob("*.dng"))
    t0 = time.perf_counter()
    raw = read_dng(light, metadata=True, pixels=False)
    meta_ms = (time.perf_counter() - t0) * 1e3
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        result = match_profiles(raw, lib)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"n_profiles": n, "list_1000_cold_s": round(cold, 3), "list_1000_warm_s": round(warm, 3),
            "list_1000_cli_s": round(cli, 3), "metadata_ms": round(meta_ms, 1),
            "match_1000_ms": round(float(np.median(times)), 1), "match_best": result["best"],
            "match_candidates": len(result["candidates"])}


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="bench profiles")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-24mp", action="store_true", help="skip the 16 x 24 MP create")
    parser.add_argument("--out", default=None)
    args, _ = parser.parse_known_args(argv)

    print("profiles: hot-pixel map vs simulator truth (16 darks per body)", flush=True)
    figures = quality_table(args.quick)
    if not args.quick:
        with tempfile.TemporaryDirectory(prefix="hp-bench-profiles-") as tmp:
            print("profiles: library of 1000 profiles", flush=True)
            figures.update(library_speed(Path(tmp)))
            if not args.no_24mp:
                print("profiles: create from 16 x 24 MP darks", flush=True)
                figures.update(create_24mp(Path(tmp)))
    print_table(figures)
    return figures


def print_table(f: dict) -> None:
    rows = [("recall (excess >= 5σ read noise)", f"{f['recall_5sigma'] * 100:.2f} %", ">= 99.5 %"),
            ("false positives per site", f"{f['false_positive_rate']:.2e}", "<= 1e-4"),
            ("false positives: glow corner / elsewhere", f"{f['fp_rate_glow']:.1e} / {f['fp_rate_elsewhere']:.1e}",
             "glow <= elsewhere"),
            ("RTS toggles >= 8σ in the darks flagged unstable", f"{f['rts_toggled_flagged'] * 100:.1f} %", ">= 90 %"),
            ("RTS toggles of any size flagged unstable", f"{f['rts_all_toggles_flagged'] * 100:.1f} %", ""),
            ("warm ordinary sites (>= 2 master σ) listed", f"{f['warm_listed'] * 100:.1f} %", ""),
            ("ordinary sites clipped in the darks listed", f"{f['clipped_listed'] * 100:.1f} %", ""),
            ("stable sites flagged unstable", f"{f['unstable_false']}", "")]
    for key, label, unit, target in (("list_1000_cold_s", "list 1000 profiles, no index", "s", ""),
                                     ("list_1000_warm_s", "list 1000 profiles, index", "s", "<= 1 s"),
                                     ("list_1000_cli_s", "hotpixels profile list (process)", "s", ""),
                                     ("metadata_ms", "read image metadata", "ms", ""),
                                     ("match_1000_ms", "match against 1000 profiles", "ms", "<= 50 ms"),
                                     ("create_24mp_s", "create from 16 x 24 MP darks", "s", "<= 30 s"),
                                     ("create_24mp_peak_mb", "  peak memory (maxrss)", "MB", "<= 1536 MB"),
                                     ("profile_24mp_mb", "  profile file size", "MB", "")):
        if key in f:
            rows.append((label, f"{f[key]} {unit}", target))
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>18}  {target}")
