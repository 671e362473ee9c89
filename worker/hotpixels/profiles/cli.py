"""``hotpixels profile create|learn|list|show|rename|delete|import|export|match``.

Every sub-command takes ``--library DIR`` (default: ``HOTPIXELS_LIBRARY`` or the user's data
folder) and ``--json`` (stdout then holds the JSON alone; progress and messages go to stderr).
"""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("profile", help="dark-frame profiles: create, list, match …",
                       description="Build profiles from dark frames, manage the profile library, pick a profile.")
    ps = p.add_subparsers(dest="profile_command", metavar="ACTION")

    def common(q):
        q.add_argument("--library", default=None, metavar="DIR", help="profile library folder")
        q.add_argument("--json", action="store_true", help="print JSON on stdout")
        return q

    c = common(ps.add_parser("create", help="build a profile from dark frames (DNG)"))
    c.add_argument("darks", nargs="+", metavar="DARK", help="dark frames: same body, ISO, exposure, temperature")
    c.add_argument("--name", required=True, help="profile name")
    c.add_argument("--threshold", type=float, default=5.0, metavar="SIGMA",
                   help="list sites whose master-dark excess exceeds SIGMA σ of the master (default 5)")
    c.add_argument("--allow-mismatch", action="store_true", help="build even if ISO/exposure/temperature/serial differ")
    c.add_argument("--keep-master", action="store_true", help="also store the full master dark (larger file)")
    c.set_defaults(func=run_create)

    lp = common(ps.add_parser("learn", help="learn a body's hot pixels from its photos (no dark frames)"))
    lp.add_argument("photos", nargs="+", metavar="PHOTO", help="at least 8 raw photos (DNG) of one body: any scenes")
    lp.add_argument("--name", required=True, help="profile name")
    lp.add_argument("--update", action="store_true", help="add the photos to the existing learned profile NAME")
    lp.add_argument("--tracked", action="store_true",
                    help="the photos are a tracked series of one field: also run the stack's single-pixel test")
    lp.set_defaults(func=run_learn)

    common(ps.add_parser("list", help="list the profiles")).set_defaults(func=run_list)
    s = common(ps.add_parser("show", help="one profile in detail"))
    s.add_argument("name")
    s.set_defaults(func=run_show)
    r = common(ps.add_parser("rename", help="rename a profile"))
    r.add_argument("old")
    r.add_argument("new")
    r.set_defaults(func=run_rename)
    d = common(ps.add_parser("delete", help="delete a profile"))
    d.add_argument("name")
    d.set_defaults(func=run_delete)
    i = common(ps.add_parser("import", help="copy a profile file into the library"))
    i.add_argument("file")
    i.add_argument("--name", default=None, help="store under another name")
    i.set_defaults(func=run_import)
    e = common(ps.add_parser("export", help="copy a profile out of the library"))
    e.add_argument("name")
    e.add_argument("dst", help="destination file or folder")
    e.set_defaults(func=run_export)
    m = common(ps.add_parser("match", help="which profile fits this image?"))
    m.add_argument("image")
    m.set_defaults(func=run_match)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _library(args):
    from .library import ProfileLibrary

    return ProfileLibrary(args.library)


def _out(args, obj, text: str) -> int:
    from ..cli import print_json

    if args.json:
        print_json(obj)
    else:
        print(text)
    return 0


def run_create(args) -> int:
    from ..progress import TerminalProgress
    from .build import create_profile

    progress = TerminalProgress("darks")
    try:
        summary = create_profile(args.darks, args.name, _library(args), threshold_sigma=args.threshold,
                                 allow_mismatch=args.allow_mismatch, keep_master=args.keep_master, progress=progress)
    finally:
        progress.close()
    for mm in summary.get("mismatches") or []:
        print(f"warning: {mm['message']}", file=sys.stderr)
    for note in summary.get("notes") or []:
        print(f"note: {note}", file=sys.stderr)
    st = summary.get("stats") or {}
    return _out(args, summary, f"created profile {summary['name']!r}: {summary['n_frames']} darks, {st.get('n_hot', 0)} sites "
                               f"({st.get('n_unstable', 0)} unstable, {st.get('n_saturated', 0)} saturated, "
                               f"{st.get('n_cold', 0)} cold) -> {summary['path']}")


def run_learn(args) -> int:
    from ..progress import TerminalProgress
    from .learn import learn_profile

    progress = TerminalProgress("learn")
    try:
        out = learn_profile(args.photos, args.name, _library(args), update=args.update, tracked=args.tracked,
                            progress=progress)
    finally:
        progress.close()
    for sk in out["skipped"]:
        print(f"skipped {sk['path']}: {sk['error']['message']}", file=sys.stderr)
    s = out["profile"]
    return _out(args, out, f"{'updated' if args.update else 'learned'} profile {s['name']!r} from "
                           f"{out['photos_used']} photos ({s['learned']['photos']} in all): {out['sites']} sites "
                           f"({out['rts']} flickering) in {out['seconds']:.1f} s -> {s['path']}")


def _line(s: dict) -> str:
    cam = s.get("camera") or {}
    serial = cam.get("serial") or "?"
    temp = f"{s['temperature_c']:g} °C" if s.get("temperature_c") is not None else "? °C"
    iso = f"ISO {s['iso']:g}" if s.get("iso") else "ISO ?"
    exp = f"{s['exposure_s']:g} s" if s.get("exposure_s") else "? s"
    if s.get("kind") == "learned":
        return f"{s['name']}: {cam.get('make')} {cam.get('model')} (serial {serial}), " + _learned_words(s)
    return (f"{s['name']}: {cam.get('make')} {cam.get('model')} (serial {serial}), {iso}, {exp}, {temp}, "
            f"{s.get('n_frames')} darks, {(s.get('stats') or {}).get('n_hot', 0)} sites")


def _learned_words(s: dict) -> str:
    """"learned from 20 photos (2026-01-05 … 2026-03-02; ISO 400-6400, 2-120 s, 0-31 °C), 480 sites"."""
    ln = s.get("learned") or {}

    def span(r, unit=""):
        if not r:
            return "?"
        return f"{r[0]:g}{unit}" if r[0] == r[1] else f"{r[0]:g}-{r[1]:g}{unit}"

    dates = " … ".join(d[:10] for d in (ln.get("first_capture"), ln.get("last_capture")) if d) or "dates unknown"
    temps = f", {span(ln.get('temperature_c'), ' °C')}" if ln.get("temperature_c") else ""
    st = s.get("stats") or {}
    return (f"learned from {ln.get('photos')} photos ({dates}; ISO {span(ln.get('iso'))}, "
            f"{span(ln.get('exposure_s'), ' s')}{temps}), {st.get('n_hot', 0)} sites ({st.get('n_unstable', 0)} flickering)")


def run_list(args) -> int:
    listing = _library(args).list()
    lines = [_line(s) for s in listing["profiles"]] or [f"no profiles in {listing['library']}"]
    lines += [f"unreadable: {e['file']}: {e['message']}" for e in listing["errors"]]
    return _out(args, listing, "\n".join(lines))


def run_show(args) -> int:
    s = _library(args).summary(args.name)
    lines = [_line(s), f"file: {s['path']}"]
    what = "photo" if s.get("kind") == "learned" else "frame"
    lines += [f"{what} {f.get('name')}: ISO {f.get('iso')}, {f.get('exposure_s')} s, {f.get('temperature_c')} °C"
              + (f", {f.get('hot_count')} hot" if what == "frame" else "") for f in s.get("frames", [])]
    lines += [f"mismatch: {m['message']}" for m in s.get("mismatches", [])]
    lines += [f"picture {k}: {v}" for k, v in (s.get("pictures") or {}).items()]
    return _out(args, s, "\n".join(lines))


def run_rename(args) -> int:
    out = _library(args).rename(args.old, args.new)
    return _out(args, out, f"renamed {args.old!r} to {out['name']!r}")


def run_delete(args) -> int:
    _library(args).delete(args.name)
    return _out(args, {"deleted": args.name}, f"deleted {args.name!r}")


def run_import(args) -> int:
    out = _library(args).import_file(args.file, args.name)
    return _out(args, out, f"imported {out['name']!r} -> {out['path']}")


def run_export(args) -> int:
    out = _library(args).export(args.name, args.dst)
    return _out(args, out, f"exported {args.name!r} -> {out['path']}")


def run_match(args) -> int:
    from ..dng.reader import read_dng
    from .match import match_profiles

    raw = read_dng(args.image, metadata=True, pixels=False)
    result = match_profiles(raw, _library(args))
    if result["best"] is None:
        text = f"no matching profile: {result['reason']}"
    else:
        text = "\n".join(f"{'*' if i == 0 else ' '} {c['name']} (score {c['score']:.2f}): {c['explanation']}"
                         for i, c in enumerate(result["candidates"]))
    return _out(args, result, text)
