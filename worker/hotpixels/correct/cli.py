"""``hotpixels correct IMAGE... [--profile NAME|auto|none] [--library DIR] [--stages dark,hot,residual]
[--sensitivity S] [--batch auto|off] [--tracked] [--output-dir DIR] [--suffix S] [--force] [--no-previews] [--json]``.

Prints one line per image (output, profile, counts) as soon as it is written or, with ``--json``,
only the JSON list of result dicts on stdout (the shape the worker sends). The batch engine
(:mod:`hotpixels.correct.engine`) does the work. On a terminal a progress line (image i of n, current file, elapsed, ETA)
goes to stderr. Exit status: 0 when every image was corrected, 2 when any failed.

With three or more photos of one camera body, ``--batch auto`` (the default) first reads them all
once for *batch evidence* (a site that stands out at the same place in many frames is a defect;
see :mod:`hotpixels.correct.batchscan`) and repairs those sites too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..progress import TerminalProgress
from .engine import correct_stream
from .pipeline import BATCH_MODES, STAGES, CorrectOptions


def register(subparsers) -> None:
    p = subparsers.add_parser("correct", help="remove hot pixels from DNG photos (writes new DNGs)",
                              description="Correct DNG photos: dark model subtraction, known hot pixels, "
                                          "residual hot pixels. Writes <name><suffix>.dng; never overwrites.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="DNG files to correct")
    p.add_argument("--profile", default="auto", help="profile name, 'auto' (best match, default) or 'none'")
    p.add_argument("--library", default=None, metavar="DIR", help="profile library folder (default: HOTPIXELS_LIBRARY "
                                                                    "or the user's data folder)")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages to run (default: %(default)s)")
    p.add_argument("--sensitivity", type=float, default=0.5, help="residual detection, 0 (cautious) … 1 (eager); "
                                                                  "default %(default)s")
    p.add_argument("--batch", default="auto", choices=BATCH_MODES,
                   help="auto (default): with 3 or more photos from one camera, first look for pixels that stand "
                        "out at the same place in many of them and repair those too; off: judge each photo alone")
    p.add_argument("--tracked", action="store_true",
                   help="the photos were taken on a tracking (equatorial) mount, so stars stay on the same pixels "
                        "from frame to frame: batch evidence then also requires a defect to light a single pixel")
    p.add_argument("--output-dir", default=None, metavar="DIR", help="write outputs here instead of next to each source")
    p.add_argument("--suffix", default="_hotpixels", help="output name suffix (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="also correct files HotPixels already corrected")
    p.add_argument("--report-dir", default=None, metavar="DIR",
                   help="write reports, sites files and previews here (default: beside each output DNG)")
    p.add_argument("--no-previews", action="store_true", help="do not write before/after PNG crops")
    p.add_argument("--learn-into", default=None, metavar="NAME",
                   help="add the hot pixels the batch evidence found (and the profile lacked) to profile NAME "
                        "(created as a learned profile when it does not exist)")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import print_json

    options = CorrectOptions(profile=args.profile, stages=args.stages, sensitivity=args.sensitivity,
                             output_dir=args.output_dir, suffix=args.suffix, force=args.force,
                             library_dir=args.library, previews=not args.no_previews,
                             report_dir=args.report_dir, batch=args.batch, tracked=args.tracked).validated()
    progress = TerminalProgress("correct", percent=True)
    results: list[dict] = [{} for _ in args.images]
    try:
        for i, r in correct_stream(args.images, options, progress=progress):
            results[i] = r
            if not args.json:  # each line as soon as its image is written
                progress.clear()
                print(_line(r), flush=True)
    finally:
        progress.close()
    if args.learn_into:
        _learn_into(args, results)
    if args.json:
        print_json(results)
    return 0 if all(r.get("ok") for r in results) else 2


def _learn_into(args: argparse.Namespace, results: list[dict]) -> None:
    """``--learn-into NAME``: the batch's proposed additions go into profile NAME (message on stderr)."""
    import sys

    from ..profiles.addsites import add_sites, proposals_from_results

    sites, paths = proposals_from_results(results)
    if not sites:
        print(f"learn-into {args.learn_into!r}: the batch evidence found no hot pixel the profile lacks", file=sys.stderr)
        return
    out = add_sites(args.learn_into, sites, args.library, paths=paths)
    print(f"learn-into {args.learn_into!r}: added {out['added']} of {len(sites)} newly found hot pixels "
          f"({(out['profile'].get('stats') or {}).get('n_hot', 0)} sites now)", file=sys.stderr)


def _line(r: dict) -> str:
    name = Path(r["path"]).name
    if not r.get("ok"):
        e = r["error"]
        return f"{name}: error [{e['code']} {e['name']}]: {e['message']}"
    st = r["stages"]
    prof = r["profile"].get("name") or f"no profile ({r['profile'].get('reason')})"
    dark = st["dark"]
    dark_txt = f"scale {dark['scale']:.3g} ({dark['method']})" if dark.get("ran") else "skipped"
    return (f"{name} -> {Path(r['output']).name}: profile {prof}; dark {dark_txt}, "
            f"{dark.get('n_sites_subtracted', 0) if dark.get('ran') else 0} sites; hot {r['counts']['hot']} interpolated; "
            f"residual {_residual_text(r)}")


def _residual_text(r: dict) -> str:
    st = r["stages"]["residual"]
    if not st.get("ran"):
        return str(st.get("reason"))
    text = str(r["counts"]["residual"])
    batch = r.get("batch") or {}
    if batch.get("group_frames"):
        text += (f", batch {r['counts'].get('batch', 0)} more (of {batch['sites']} sites recurring in "
                 f"{batch['group_frames']} photos; {len(batch['proposed_profile_additions'])} not in the profile)")
    return text
