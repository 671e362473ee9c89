"""``./run.sh bench learn``: learned profiles on simulated learning sets never used in development.

Bodies (bench seeds 41xxx, never used while developing): two Bayer (``small``, ``small-gbrg``) and
one X-Trans (``small-xtrans``), each with a varied learning set of 50 photos
(:func:`hotpixels.simulate.varied.simulate_varied`: different scenes, exposures 2-120 s, ISO
400-6400, 0-30 °C), learned from the first 8, 20 and 50 photos. Per body and count:

* ``recall_5sigma``: learned share of the body's hot pixels that stand >= 5 σ above their
  neighbours at the photos' median settings (median exposure, ISO and temperature; σ the read
  noise at that ISO), inside the ActiveArea;
* ``rts_flagged``: flagged share of the RTS sites that were high in >= 3 of the photos and learned;
* ``false_per_mp``: learned sites that are neither hot pixels, dead (stuck-low) ones, nor warm ones (an ordinary site whose
  own dark rate stands >= 3 σ out at the median settings), per megapixel of ActiveArea.

Tracked star field: 20 photos of one field on a tracking mount (``batch="tracked"``), learned with
``tracked``: ``stars_learned`` counts learned sites within 1 px of a star centre that are not
defects (target 0).

A new photo (stars, ISO 1600, 30 s, 20 °C, not in the set) corrected with the profile learned from
20 photos (stages hot,residual) and with a 16-dark profile of the same body (all stages):
``recall`` = share of its >= 5 σ hot pixels left within 3 σ of the clean value, ``rmse_hot`` the RMSE
(DN) at all hot sites against the clean frame (both over the ActiveArea: the masked border is not
part of the image; ``_inner``: the sites at least 3 px inside it, whose whole same-colour ring and
its neighbours lie inside the image; nearer the edge learning and repair use the part of the ring
inside), ``star_damage`` the share of visible star cores
changed by more than 3 σ. ``rmse_ratio_no_temperature``: the same with the body recording no
temperature (the learning set's 20 photos and the new photo written without the tag, as most bodies
do): each photo's dark factor is then measured in the photo alone.

Speed and memory (skipped with ``--quick``; ``--no-24mp`` skips only them): 20 photos of a varied
24 MP set learned in a fresh subprocess (wall time, ``ru_maxrss``), then ``--update`` with 10 more; and
the accumulators' bytes for 24 MP (they do not depend on the number of photos).
``--quick``: one Bayer body, 8 and 12 photos, no speed part.
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

BODIES = (("small", 41001), ("small-gbrg", 41002), ("small-xtrans", 41003))
NO_TEMPERATURE = "learned 20 no temperature"
COUNTS = (8, 20, 50)
TARGETS = {"recall_5sigma_at_20": 0.95, "rts_flagged": 0.85, "false_per_mp": 1.0, "stars_learned": 0,
           "new_photo_recall": 0.97, "rmse_ratio": 1.5, "star_damage": 0.001, "learn_24mp_s": 60.0,
           "learn_24mp_peak_mb": 1536.0, "update_24mp_s": 30.0}


def _strong_hot(truth: dict, sensor, fld) -> np.ndarray:
    """Hot pixels >= 5 σ at the photos' median settings, inside the ActiveArea."""
    e = float(np.median(truth["exposure_s"]))
    temp = float(np.median(truth["temp_true_c"]))
    excess_e = fld.hot_rate_e_s * sensor.temperature_factor(temp) * e
    sigma_e = np.sqrt(sensor.read_noise_e ** 2 + np.median(fld.rate_e_s) * sensor.temperature_factor(temp) * e)
    t, l, b, r = sensor.active_area
    y, x = fld.hot_yx[:, 0], fld.hot_yx[:, 1]
    inside = (y >= t) & (y < b) & (x >= l) & (x < r)
    return (excess_e >= 5 * sigma_e) & inside  # in electrons: the same ratio in DN at any ISO


def _warm(truth: dict, sensor, fld) -> np.ndarray:
    """(H, W) bool: ordinary sites whose own dark rate stands >= 3 σ out at the median settings."""
    e = float(np.median(truth["exposure_s"]))
    temp = float(np.median(truth["temp_true_c"]))
    f = sensor.temperature_factor(temp)
    med = float(np.median(fld.rate_e_s))
    sigma_e = np.sqrt(sensor.read_noise_e ** 2 + med * f * e)
    return (fld.rate_e_s - med) * f * e >= 3 * sigma_e


def learn_quality(preset: str, seed: int, counts, workdir: Path) -> list[dict]:
    from ..profiles.learn import learn_profile
    from ..profiles.library import ProfileLibrary
    from ..simulate.defects import make_dark_field
    from ..simulate.sensor import make_sensor
    from ..simulate.varied import simulate_varied

    sensor = make_sensor(preset, seed)
    fld = make_dark_field(sensor)
    out = simulate_varied(workdir / f"{preset}-{seed}", sensor=sensor, seed=seed, n_lights=max(counts))
    lib = ProfileLibrary(workdir / f"lib-{preset}-{seed}")
    rows = []
    t, l, b, r = sensor.active_area
    mp = (b - t) * (r - l) / 1e6
    for n in counts:
        sub = {k: (v[:n] if isinstance(v, (list, np.ndarray)) and len(v) == max(counts) else v)
               for k, v in out["truth"].items()}
        strong = _strong_hot(sub, sensor, fld)
        warm = _warm(sub, sensor, fld)
        t0 = time.perf_counter()
        res = learn_profile(out["lights"][:n], f"learned {n}", lib)
        secs = time.perf_counter() - t0
        prof = lib.get(f"learned {n}")
        learned = {tuple(v) for v in prof.model.hot_yx.tolist()}
        from ..profiles.darkmodel import FLAG_UNSTABLE

        unstable = {tuple(v) for v in prof.model.hot_yx[prof.model.flagged(FLAG_UNSTABLE)].tolist()}
        hot = [tuple(v) for v in fld.hot_yx.tolist()]
        hot_set = set(hot)
        strong_sites = [h for h, s in zip(hot, strong) if s]
        high = sub["rts_high_light"].sum(axis=0)
        rts3 = [tuple(v) for v, h in zip(fld.rts_yx.tolist(), high) if h >= 3]
        rts3_learned = [v for v in rts3 if v in learned]
        stuck = {tuple(v) for v in fld.stuck_yx.tolist()}
        false = [v for v in learned if v not in hot_set and v not in stuck and not warm[v]]
        rows.append({"preset": preset, "seed": seed, "photos": n, "strong": len(strong_sites),
                     "recall_5sigma": round(float(np.mean([v in learned for v in strong_sites])), 4),
                     "rts3": len(rts3), "rts3_learned": len(rts3_learned),
                     "rts_flagged": round(float(np.mean([v in unstable for v in rts3_learned])), 4) if rts3_learned else None,
                     "rts_false_flags": len([v for v in unstable if v not in set(map(tuple, fld.rts_yx.tolist()))]),
                     "false_sites": len(false), "false_per_mp": round(len(false) / mp, 2), "sites": res["sites"],
                     "learn_s": round(secs, 2)})
        print(f"  {preset:13s} {n:3d} photos: recall(>=5σ) {rows[-1]['recall_5sigma']:.3f} of {len(strong_sites)}, "
              f"RTS high>=3 flagged {rows[-1]['rts_flagged']} ({len(rts3_learned)}/{len(rts3)} learned), false "
              f"{len(false)} ({rows[-1]['false_per_mp']}/MP), {res['sites']} sites, {secs:.1f} s", flush=True)
    return rows


def tracked_stars(workdir: Path, seed: int = 41010, n: int = 20) -> dict:
    from ..profiles.learn import learn_profile
    from ..profiles.library import ProfileLibrary
    from ..simulate.session import simulate_session

    s = simulate_session("small", seed=seed, n_darks=0, n_lights=n, scene="stars", batch="tracked",
                         outdir=workdir / "tracked", clean=False)
    paths = s.written["lights"]
    lib = ProfileLibrary(workdir / "lib-tracked")
    learn_profile(paths, "tracked", lib, tracked=True)
    prof = lib.get("tracked")
    t = s.truth
    defects = {tuple(v) for v in t["hot_yx"].tolist()} | {tuple(v) for v in t["stuck_yx"].tolist()}
    stars = t["star_yx"][0][t["star_visible"][0]]
    learned = prof.model.hot_yx.astype(np.float64)
    not_defect = np.array([tuple(v) not in defects for v in prof.model.hot_yx.tolist()], bool)
    if len(stars) and len(learned):
        d = np.sqrt(((learned[:, None, :] - stars[None, :, :]) ** 2).sum(-1)).min(axis=1)
        star_sites = int(np.count_nonzero((d <= 1.0) & not_defect))
    else:
        star_sites = 0
    print(f"  tracked star field, {n} photos: {star_sites} star sites learned ({len(learned)} sites, "
          f"{int(not_defect.sum())} not defects, {len(stars)} stars)", flush=True)
    return {"stars_learned": star_sites, "sites": int(len(learned)), "not_defects": int(not_defect.sum()),
            "stars": int(len(stars))}


def new_photo(preset: str, seed: int, workdir: Path) -> dict:
    """A new photo corrected with the profile learned from 20 photos vs a 16-dark profile."""
    from ..correct.pipeline import CorrectOptions, correct_raw
    from ..profiles.build import create_profile
    from ..profiles.library import ProfileLibrary
    from ..simulate.session import simulate_session

    lib = ProfileLibrary(workdir / f"lib-{preset}-{seed}")
    s = simulate_session(preset, seed=seed * 7 + 1, sensor=_sensor(preset, seed),
                         n_darks=16, n_lights=1, scene="stars", exposure_s=30, iso=1600, temp_light_c=20,
                         temp_dark_c=20, outdir=workdir / f"new-{preset}-{seed}")
    create_profile(s.written["darks"], "darks 16", lib)
    raw = s.lights[0]
    t = s.truth
    clean = t["clean_light_dn"][0].astype(np.float64)
    gain = t["gain_e_per_dn"]
    sigma = np.sqrt(t["read_noise_e"] ** 2 + np.maximum(t["expected_light_dn"][0] - np.mean(t["black_repeat_dn"]), 0)
                    * gain) / gain
    top, left, bottom, right = raw.active_area
    inside = ((t["hot_yx"][:, 0] >= top) & (t["hot_yx"][:, 0] < bottom) & (t["hot_yx"][:, 1] >= left)
              & (t["hot_yx"][:, 1] < right))  # the image: the masked border is never shown
    hy, hx = t["hot_yx"][inside, 0], t["hot_yx"][inside, 1]
    excess = t["hot_light_dn"][0][inside]
    strong = excess >= 5 * sigma[hy, hx]
    stars = t["star_visible"][0] & ~t["star_saturated"][0]
    sy = np.rint(t["star_yx"][0][stars, 0]).astype(int)
    sx = np.rint(t["star_yx"][0][stars, 1]).astype(int)
    out = {}
    runs = [("learned", lib.get("learned 20"), ("hot", "residual")),
            ("darks16", lib.get("darks 16"), ("dark", "hot", "residual"))]
    if lib.exists(NO_TEMPERATURE):
        runs.append(("learned_no_temperature", lib.get(NO_TEMPERATURE), ("hot", "residual")))
    for label, prof, stages in runs:
        tagged_c = raw.metadata.temperature_c
        if label == "learned_no_temperature":  # the body records none: neither the photos learned from nor this one
            raw.metadata.temperature_c = None
        new, rep, _ = correct_raw(raw, CorrectOptions(profile=None, stages=stages, batch="off"), prof,
                                  {"name": prof.name})
        raw.metadata.temperature_c = tagged_c
        new = new.astype(np.float64)
        err = new[hy, hx] - clean[hy, hx]
        ok = np.abs(err) <= 3 * sigma[hy, hx]
        damaged = np.abs(new[sy, sx] - raw.cfa_dn[sy, sx]) > 3 * sigma[sy, sx]
        inner = (hy >= top + 3) & (hy < bottom - 3) & (hx >= left + 3) & (hx < right - 3)
        out[label] = {"recall": round(float(ok[strong].mean()), 4), "strong": int(strong.sum()),
                      "rmse_hot": round(float(np.sqrt(np.mean(err ** 2))), 3),
                      "recall_inner": round(float(ok[strong & inner].mean()), 4),
                      "rmse_hot_inner": round(float(np.sqrt(np.mean(err[inner] ** 2))), 3),
                      "star_damage": round(float(damaged.mean()) if len(damaged) else 0.0, 5), "stars": int(len(sy))}
    out["rmse_ratio"] = round(out["learned"]["rmse_hot"] / max(out["darks16"]["rmse_hot"], 1e-9), 3)
    out["rmse_ratio_inner"] = round(out["learned"]["rmse_hot_inner"] / max(out["darks16"]["rmse_hot_inner"], 1e-9), 3)
    if "learned_no_temperature" in out:
        out["rmse_ratio_no_temperature"] = round(out["learned_no_temperature"]["rmse_hot"]
                                                 / max(out["darks16"]["rmse_hot"], 1e-9), 3)
    print(f"  {preset:13s} new photo: learned recall {out['learned']['recall']:.3f} of {out['learned']['strong']}, "
          f"RMSE {out['learned']['rmse_hot']:.2f} DN vs 16 darks {out['darks16']['rmse_hot']:.2f} DN "
          f"(x{out['rmse_ratio']:.2f}); >= 3 px inside the ActiveArea: recall {out['learned']['recall_inner']:.3f}, "
          f"RMSE x{out['rmse_ratio_inner']:.2f}; star damage {out['learned']['star_damage']:.4%} of {out['learned']['stars']}",
          flush=True)
    if "learned_no_temperature" in out:
        nt = out["learned_no_temperature"]
        print(f"  {preset:13s} no temperature tags (learning set and photo): recall {nt['recall']:.3f}, RMSE "
              f"{nt['rmse_hot']:.2f} DN (x{out['rmse_ratio_no_temperature']:.2f} of 16 darks); star damage "
              f"{nt['star_damage']:.4%}", flush=True)
    return out


def learn_without_temperature(preset: str, seed: int, workdir: Path, n: int = 20) -> None:
    """The same body's learning set (same photos) written without temperature tags, as most bodies
    record none, learned from its first ``n`` photos as :data:`NO_TEMPERATURE` (for :func:`new_photo`)."""
    from ..profiles.learn import learn_profile
    from ..profiles.library import ProfileLibrary
    from ..simulate.varied import simulate_varied

    out = simulate_varied(workdir / f"{preset}-{seed}-no-temperature", sensor=_sensor(preset, seed), seed=seed,
                          n_lights=n, record_temperature=False)
    learn_profile(out["lights"], NO_TEMPERATURE, ProfileLibrary(workdir / f"lib-{preset}-{seed}"))


def _sensor(preset: str, seed: int):
    from ..simulate.sensor import make_sensor

    return make_sensor(preset, seed)


_LEARN_CHILD = r"""
import json, os, resource, sys, time
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 2:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])  # "on 2 cores"
from hotpixels.profiles.learn import learn_profile
paths, lib, update = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
t0 = time.perf_counter()
out = learn_profile(paths, "bench 24mp", lib, update=update)
print(json.dumps({"seconds": time.perf_counter() - t0, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "sites": out["sites"], "photos": out["profile"]["learned"]["photos"],
                  "no_dark_signal": len(out["no_dark_signal"]),
                  "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}))
"""


def speed_24mp(workdir: Path, n: int = 20, more: int = 10) -> dict:
    """Learn 20 photos of 24 MP, then update with 10 more, each in a fresh subprocess on 2 cores.

    The photos are a varied learning set of one 24 MP body (:func:`hotpixels.simulate.varied.
    simulate_varied`: each photo rendered at its own settings, so each photo's own dark factor is
    measured, and some read again, as on a real set)."""
    from ..profiles.learnstats import LearnEvidence
    from ..simulate.sensor import make_sensor
    from ..simulate.varied import simulate_varied

    sensor = make_sensor("24mp", 41020)
    lights = simulate_varied(workdir / "24mp", sensor=sensor, seed=41020, n_lights=n + more)["lights"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))

    def child(paths, update):
        proc = subprocess.run([sys.executable, "-c", _LEARN_CHILD, json.dumps(paths), str(workdir / "lib24"),
                               "1" if update else "0"], capture_output=True, text=True, env=env)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        return json.loads(proc.stdout.strip().splitlines()[-1])

    first = child(lights[:n], False)
    upd = child(lights[n:], True)
    ev_bytes = LearnEvidence(sensor.cfa, sensor.active_area, sensor.shape).nbytes
    r = {"learn_24mp_s": round(first["seconds"], 2), "learn_24mp_peak_mb": round(first["maxrss_kb"] / 1024, 1),
         "update_24mp_s": round(upd["seconds"], 2), "update_24mp_peak_mb": round(upd["maxrss_kb"] / 1024, 1),
         "accumulators_24mp_mb": round(ev_bytes / 1e6, 1), "sites_24mp": first["sites"], "cores": first["cores"],
         "no_dark_signal_24mp": first["no_dark_signal"] + upd["no_dark_signal"]}
    print(f"  24 MP on {r['cores']} cores: {n} photos learned in {r['learn_24mp_s']} s, peak {r['learn_24mp_peak_mb']} MB; "
          f"update with {more} more in {r['update_24mp_s']} s, peak {r['update_24mp_peak_mb']} MB; accumulators "
          f"{r['accumulators_24mp_mb']} MB whatever the photo count", flush=True)
    return r


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="bench learn")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-24mp", action="store_true")
    parser.add_argument("--only-24mp", action="store_true", help="only the speed and memory part")
    parser.add_argument("--out", default="bench-output")
    args, _ = parser.parse_known_args(argv)
    bodies = BODIES[:1] if args.quick else BODIES
    counts = (8, 12) if args.quick else COUNTS
    figures: dict = {"targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="hp-bench-learn-") as tmp:
        work = Path(tmp)
        if args.only_24mp:
            figures["speed"] = speed_24mp(work)
            return figures
        print("learning sets (recall of >= 5 σ hot pixels, RTS flagged, false sites):", flush=True)
        figures["learning"] = [row for preset, seed in bodies for row in learn_quality(preset, seed, counts, work)]
        figures["tracked"] = tracked_stars(work, n=8 if args.quick else 20)
        if not args.quick:
            for p, s in bodies:
                learn_without_temperature(p, s, work)
            figures["new_photo"] = [dict(preset=p, **new_photo(p, s, work)) for p, s in bodies]
        if not args.quick and not args.no_24mp:
            figures["speed"] = speed_24mp(work)
    figures["summary"] = summarise(figures)
    print(json.dumps(figures["summary"], indent=1))
    return figures


def summarise(f: dict) -> dict:
    rows = f["learning"]
    out = {}
    for n in sorted({r["photos"] for r in rows}):
        sel = [r for r in rows if r["photos"] == n]
        strong = sum(r["strong"] for r in sel)
        out[f"recall_5sigma_at_{n}"] = round(sum(r["recall_5sigma"] * r["strong"] for r in sel) / max(strong, 1), 4)
        flagged = [r["rts_flagged"] * r["rts3_learned"] for r in sel if r["rts_flagged"] is not None]
        learned = sum(r["rts3_learned"] for r in sel if r["rts_flagged"] is not None)
        out[f"rts_flagged_at_{n}"] = round(sum(flagged) / learned, 4) if learned else None
        out[f"false_per_mp_at_{n}"] = round(float(np.mean([r["false_per_mp"] for r in sel])), 2)
    out["stars_learned"] = f["tracked"]["stars_learned"]
    for row in f.get("new_photo", []):
        out[f"new_photo_{row['preset']}"] = {"recall": row["learned"]["recall"], "rmse_ratio": row["rmse_ratio"],
                                             "recall_inner": row["learned"]["recall_inner"],
                                             "rmse_ratio_inner": row["rmse_ratio_inner"],
                                             "star_damage": row["learned"]["star_damage"],
                                             "rmse_ratio_no_temperature": row.get("rmse_ratio_no_temperature")}
    out.update(f.get("speed", {}))
    return out
