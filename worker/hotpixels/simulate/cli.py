"""``hotpixels simulate OUTDIR``: write a simulated session (darks, lights, truth) as DNG files."""

from __future__ import annotations

import time
from pathlib import Path


def register(sub) -> None:
    from ..dng.create import LAYOUTS
    from .scene import SCENE_KINDS
    from .sensor import CFA_CHOICES, PRESETS
    from .session import BATCHES

    p = sub.add_parser("simulate", help="simulate a camera: dark frames, night-sky frames and ground truth as DNG",
                       description="Write OUTDIR/darks/*.dng, OUTDIR/lights/*.dng, OUTDIR/truth.json and "
                                   "OUTDIR/truth.npz from a seeded sensor simulation.")
    p.add_argument("outdir", metavar="OUTDIR", help="output folder (created if missing)")
    p.add_argument("--preset", default="small", choices=PRESETS, help="sensor preset (default: small)")
    p.add_argument("--cfa", default=None, choices=CFA_CHOICES, help="override the preset's CFA pattern")
    p.add_argument("--seed", type=int, default=1, help="seed: the same seed gives the same body and frames")
    p.add_argument("--darks", type=int, default=8, help="number of dark frames (default 8)")
    p.add_argument("--lights", type=int, default=1, help="number of light frames (default 1)")
    p.add_argument("--temp-dark", type=float, default=20.0, help="true sensor temperature of the darks, °C")
    p.add_argument("--temp-light", type=float, default=20.0, help="true sensor temperature of the lights, °C")
    p.add_argument("--exposure", type=float, default=30.0, help="exposure time, seconds")
    p.add_argument("--iso", type=float, default=1600, help="ISO")
    p.add_argument("--scene", default="foreground", choices=SCENE_KINDS, help="scene kind (default foreground)")
    p.add_argument("--scene-from", default=None, help="Bayer DNG with real content for --scene real")
    p.add_argument("--batch", default="single", choices=BATCHES + ("varied",),
                   help="light batch: single, tripod (stars drift between frames), tracked, or varied (a "
                        "learning set: one body, different scenes, exposures, ISO and temperatures; no darks)")
    p.add_argument("--layout", default="strip", choices=LAYOUTS, help="DNG layout (default strip)")
    p.add_argument("--no-temperature", action="store_true",
                   help="--batch varied: write no temperature tag, as most bodies (the truth keeps it)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..cli import print_json
    from ..progress import TerminalProgress
    from .session import simulate_session

    t0 = time.monotonic()
    progress = TerminalProgress("simulate")
    if args.batch == "varied":
        return _run_varied(args, t0, progress)
    session = simulate_session(preset=args.preset, seed=args.seed, n_darks=args.darks, n_lights=args.lights,
                               temp_dark_c=args.temp_dark, temp_light_c=args.temp_light, exposure_s=args.exposure,
                               iso=args.iso, scene=args.scene, batch=args.batch, cfa=args.cfa,
                               scene_from=args.scene_from, progress=progress)
    written = session.write(Path(args.outdir), layout=args.layout, progress=TerminalProgress("write"))
    t = session.truth
    summary = {
        "outdir": str(Path(args.outdir).resolve()),
        **written,
        "camera": {"make": t["make"], "model": t["model"], "serial": t["serial"], "preset": t["preset"],
                   "cfa": t["cfa"]["name"], "raw_shape": t["raw_shape"], "active_area": t["active_area"],
                   "bits": t["bits"], "gain_e_per_dn": t["gain_e_per_dn"], "read_noise_e": t["read_noise_e"],
                   "doubling_c": round(t["doubling_c"], 3)},
        "hot_pixels": int(len(t["hot_yx"])), "rts_pixels": int(len(t["rts_yx"])),
        "stuck_low_pixels": int(len(t["stuck_yx"])), "residual_hot_pixels": int(len(t["residual_yx"])),
        "stars": int(t["star_sigma_px"].shape[0]),
        "seconds": round(time.monotonic() - t0, 2),
    }
    if args.json:
        print_json(summary)
        return 0
    cam = summary["camera"]
    print(f"simulated {cam['make']} {cam['model']} #{cam['serial']} ({cam['preset']}, {cam['cfa']}, "
          f"{cam['raw_shape'][1]}x{cam['raw_shape'][0]}, {cam['bits']}-bit, dark current x2 every {cam['doubling_c']} °C)")
    print(f"  {summary['hot_pixels']} hot pixels ({summary['rts_pixels']} RTS), {summary['stuck_low_pixels']} stuck low, "
          f"{summary['residual_hot_pixels']} residual hot pixels in the lights, {summary['stars']} stars")
    print(f"  darks:  {len(written['darks'])} in {Path(args.outdir) / 'darks'}")
    print(f"  lights: {len(written['lights'])} in {Path(args.outdir) / 'lights'}")
    print(f"  truth:  {written['truth_json']}, {written['truth_npz']}")
    print(f"  {summary['seconds']} s")
    return 0


def _run_varied(args, t0: float, progress) -> int:
    """``--batch varied``: a learning set of one body (see :mod:`hotpixels.simulate.varied`)."""
    from ..cli import print_json
    from ..errors import InvalidOption
    from .varied import simulate_varied

    if args.darks:
        raise InvalidOption("--batch varied writes photos only: pass --darks 0", data={"param": "darks"})
    try:
        written = simulate_varied(args.outdir, preset=args.preset, seed=args.seed, n_lights=args.lights, cfa=args.cfa,
                                  layout=args.layout, record_temperature=not args.no_temperature, progress=progress)
    finally:
        progress.close()
    t = written.pop("truth")
    summary = {"outdir": str(Path(args.outdir).resolve()), **written,
               "camera": {"make": t["make"], "model": t["model"], "serial": t["serial"], "preset": t["preset"],
                          "cfa": t["cfa"]["name"], "raw_shape": t["raw_shape"]},
               "hot_pixels": int(len(t["hot_yx"])), "rts_pixels": int(len(t["rts_yx"])),
               "photos": [{"scene": k, "exposure_s": e, "iso": i, "temperature_c": None if args.no_temperature else c}
                          for k, e, i, c in zip(t["scene_kinds"], t["exposure_s"], t["iso"], t["temp_recorded_c"])],
               "seconds": round(time.monotonic() - t0, 2)}
    if args.json:
        print_json(summary)
        return 0
    cam = summary["camera"]
    print(f"simulated a learning set of {cam['make']} {cam['model']} #{cam['serial']} ({cam['cfa']}): "
          f"{len(written['lights'])} photos, {summary['hot_pixels']} hot pixels ({summary['rts_pixels']} RTS)")
    for p, ph in zip(written["lights"], summary["photos"]):
        print(f"  {Path(p).name}: {ph['scene']}, {ph['exposure_s']:g} s, ISO {ph['iso']:g}, {ph['temperature_c']:g} °C")
    print(f"  truth:  {written['truth_json']}, {written['truth_npz']}")
    return 0
