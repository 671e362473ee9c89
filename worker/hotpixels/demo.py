"""``hotpixels demo`` (what ``./run.sh`` runs): the whole job on built-in, simulated data.

1. simulate a camera: dark frames and a night-sky light frame, written as DNG (lossless JPEG
   tiles in a SubIFD, the layout Lightroom and Adobe DNG Converter produce), plus ground truth;
2. build a profile from the darks into a demo profile library;
3. auto-match the light frame to a profile and explain the choice;
4. correct the light frame (stages 1–3) into a new DNG, with a report and before/after crops;
5. compare with the simulator's truth and print the figures and every output path.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


def register(sub) -> None:
    p = sub.add_parser("demo", help="simulate a camera, build a profile, correct a night frame")
    p.add_argument("--out", default="demo-output", help="output folder (default: ./demo-output)")
    p.add_argument("--seed", type=int, default=2026, help="simulator seed")
    p.add_argument("--preset", default="small", help="simulator preset (small, small-xtrans, 24mp)")
    p.add_argument("--darks", type=int, default=8, help="number of dark frames")
    p.add_argument("--temp-delta", type=float, default=4.0,
                   help="light frame temperature minus dark frame temperature, °C")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from .correct.engine import correct_files
    from .correct.pipeline import CorrectOptions
    from .dng.reader import read_dng
    from .errors import InternalError, error_class
    from .profiles.build import create_profile
    from .profiles.library import ProfileLibrary
    from .profiles.match import match_profiles
    from .simulate.session import simulate_session

    out = Path(args.out).resolve()
    if out.exists() and any(out.iterdir()):
        out = _fresh_subfolder(out)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if args.json else print
    t0 = time.monotonic()

    say(f"1/4 simulating a camera ({args.preset}, seed {args.seed}): {args.darks} darks + 1 night frame")
    session = simulate_session(preset=args.preset, seed=args.seed, n_darks=args.darks, n_lights=1,
                               temp_dark_c=18.0, temp_light_c=18.0 + args.temp_delta,
                               exposure_s=30.0, iso=1600, scene="foreground")
    written = session.write(out / "camera", layout="ljpeg-tiles-subifd")
    dark_paths = [str(p) for p in written["darks"]]
    light_path = str(written["lights"][0])

    say("2/4 building a profile from the dark frames")
    library = ProfileLibrary(out / "library")
    created = create_profile(dark_paths, "demo camera", library)
    profile = created["profile"]

    say("3/4 matching the night frame to a profile")
    light = read_dng(light_path)
    match = match_profiles(light, library)

    say("4/4 correcting the night frame (dark model, known hot pixels, residual detector)")
    options = CorrectOptions(profile="auto", output_dir=str(out / "corrected"), library_dir=str(out / "library"))
    result = correct_files([light_path], options, library=library)[0]  # the engine the CLI and worker use
    if not result.get("ok", False):
        error = result["error"]
        raise (error_class(error["code"]) or InternalError)(error["message"], path=error.get("path"))

    figures = _figures(session, light, read_dng(result["output"]))
    summary = {
        "seconds": round(time.monotonic() - t0, 1),
        "darks": dark_paths,
        "light": light_path,
        "profile": {"name": profile["name"], "file": profile.get("file"), "hot_count": profile.get("hot_count"),
                    "pictures": profile.get("pictures", {})},
        "match": {"best": match.get("best"),
                  "explanation": (match.get("candidates") or [{}])[0].get("explanation"),
                  "reason": match.get("reason")},
        "corrected": result["output"],
        "report": result.get("report_path"),
        "sites_file": result.get("sites_file"),
        "previews": (result.get("previews") or {}).get("regions") or [],  # before/after crops, strongest first
        "counts": result.get("counts", {}),
        "scale": result.get("scale"),
        "figures": figures,
    }
    if args.json:
        from .cli import print_json

        print_json(summary)
    else:
        _print_summary(summary)
    return 0


def _fresh_subfolder(out: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = out / stamp
    n = 2
    while candidate.exists():
        candidate = out / f"{stamp}-{n}"
        n += 1
    return candidate


def _figures(session, before, after) -> dict:
    """RMSE against the simulator's clean frame, over hot sites and over the active area (DN)."""
    truth = session.truth
    clean = np.asarray(truth["clean_light_dn"][0], dtype=np.float64)
    ys, xs = before.active_slices
    hot = np.zeros(before.shape, dtype=bool)
    hot_yx = np.asarray(truth["hot_yx"]).reshape(-1, 2)
    hot[hot_yx[:, 0], hot_yx[:, 1]] = True
    res_yx = np.asarray(truth["residual_yx"]).reshape(-1, 2)[np.asarray(truth["residual_frame"]).reshape(-1) == 0]
    residual = np.zeros(before.shape, dtype=bool)
    residual[res_yx[:, 0], res_yx[:, 1]] = True
    sat = before.cfa_dn >= 0.98 * before.white_level_dn

    def rmse(img, mask):
        m = mask[ys, xs] & ~sat[ys, xs]
        d = img.cfa_dn[ys, xs].astype(np.float64)[m] - clean[ys, xs][m]
        return float(np.sqrt(np.mean(d * d))) if d.size else 0.0

    everywhere = np.ones(before.shape, dtype=bool)
    return {
        "rmse_hot_sites_dn": {"before": rmse(before, hot), "after": rmse(after, hot)},
        "rmse_residual_sites_dn": {"before": rmse(before, residual), "after": rmse(after, residual)},
        "rmse_frame_dn": {"before": rmse(before, everywhere), "after": rmse(after, everywhere)},
        "hot_sites": int(hot[ys, xs].sum()),
        "residual_sites": int(residual[ys, xs].sum()),
    }


def _print_summary(s: dict) -> None:
    f = s["figures"]
    print()
    print(f"HotPixels demo — done in {s['seconds']} s")
    print(f"  dark frames      {len(s['darks'])} in {Path(s['darks'][0]).parent}")
    print(f"  night frame      {s['light']}")
    print(f"  profile          {s['profile']['name']!r}: {s['profile']['hot_count']} hot pixels  ({s['profile']['file']})")
    if s["match"]["best"]:
        print(f"  auto-match       {s['match']['best']!r}: {s['match']['explanation']}")
    else:
        print(f"  auto-match       none: {s['match']['reason']}")
    print(f"  corrected DNG    {s['corrected']}")
    print(f"  report           {s['report']}")
    print(f"  changed sites    {s['sites_file']}")
    for p in s.get("previews") or []:
        print(f"  before/after     {p['before']}  |  {p['after']}")
    print(f"  counts by stage  {json.dumps(s['counts'])}")
    print(f"  dark scale       {json.dumps(s['scale'])}")
    print("  error vs the simulator's clean frame (RMSE, DN)   before → after")
    for key, label in (("rmse_hot_sites_dn", f"known hot sites ({f['hot_sites']})"),
                       ("rmse_residual_sites_dn", f"random hot sites ({f['residual_sites']})"),
                       ("rmse_frame_dn", "whole frame")):
        print(f"    {label:<32} {f[key]['before']:9.2f} → {f[key]['after']:9.2f}")
