"""``hotpixels inspect FILE... [--json] [--no-pixels]``: what the reader sees in each DNG.

Prints the raw IFD's layout (compression, strips/tiles, bit depth, packing, LJPEG geometry),
CFA pattern and its origin, ActiveArea, black/white levels, metadata (incl. exiftool's sensor
temperature) and, unless ``--no-pixels``, whether the stored NewRawImageDigest matches the data
and per-plane statistics of the active area in DN. A bad
file prints its error code and message and the command goes on with the next file; the exit
status is 2 when any file failed.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import as_hotpixels_error
from .digest import compressed_tiles_digest, new_raw_image_digest
from .layout import JPEG_XL
from .reader import read_dng, read_stored


def register(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="show what HotPixels reads from DNG files",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", metavar="FILE", help="DNG files")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--no-pixels", action="store_true", help="read tags only (no decoding, no statistics)")
    p.set_defaults(func=run)


def inspect_file(path: str, *, pixels: bool = True) -> dict:
    """The JSON description of one file (raises HotPixelsError for a bad file)."""
    raw = read_dng(path, pixels=pixels)
    out = raw.summary()
    out["layout"] = raw.layout.describe()
    out["black_delta_h"] = raw.black_delta_h_dn is not None
    out["black_delta_v"] = raw.black_delta_v_dn is not None
    if pixels:
        out["digest_check"] = check_digest(raw)
        active = raw.cfa_dn[raw.active_slices]
        sub = raw.cfa.with_origin((0, 0))
        planes = []
        for plane in range(sub.n_planes):
            vals = np.concatenate([active[s].ravel() for s in sub.plane_slices(plane, active.shape)])
            planes.append({"plane": plane, "median_dn": float(np.median(vals)), "min_dn": int(vals.min()),
                           "max_dn": int(vals.max())})
        out["planes"] = planes
    return out


def check_digest(raw) -> str:
    """"matches", "DOES NOT MATCH" or "none stored": the file's NewRawImageDigest vs its data."""
    layout = raw.layout
    if layout.digest_stored_hex is None:
        return "none stored"
    if layout.compression == JPEG_XL:  # the SDK digests JPEG XL tiles as compressed bytes
        with open(raw.path, "rb") as f:
            data = f.read()
        tiles = [data[o:o + n] for o, n in zip(layout.offsets, layout.byte_counts)]
        found = compressed_tiles_digest(tiles)
    else:
        stored = raw.cfa_dn if layout.linearization is None else read_stored(layout)
        found = new_raw_image_digest(stored)
    return "matches" if found.hex() == layout.digest_stored_hex else "DOES NOT MATCH"


def run(args: argparse.Namespace) -> int:
    from ..cli import print_json

    results, failed = [], False
    for path in args.files:
        try:
            results.append(inspect_file(path, pixels=not args.no_pixels))
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            failed = True
            results.append({"path": path, "error": as_hotpixels_error(exc).to_dict()})
    if args.json:
        print_json(results if len(results) != 1 else results[0])
    else:
        for r in results:
            print(_text(r))
    return 2 if failed else 0


def _text(r: dict) -> str:
    if "error" in r:
        e = r["error"]
        return f"{r['path']}\n  error [{e['code']} {e['name']}]: {e['message']}\n"
    m, lay = r["metadata"], r["layout"]
    temp = "unknown" if m["temperature_c"] is None else f"{m['temperature_c']:.1f} °C ({m['temperature_source']})"
    lines = [
        r["path"],
        f"  camera        {m['make'] or '?'} {m['model'] or '?'}  serial {m['serial'] or 'unknown'}"
        + (f"  internal {m['internal_serial']}" if m["internal_serial"] else ""),
        f"  exposure      ISO {m['iso'] or 'unknown'}  {m['exposure_s'] or 'unknown'} s"
        f"  at {m['capture_time'] or 'unknown'}",
        f"  temperature   {temp}",
        f"  raw           {r['raw_size'][0]}x{r['raw_size'][1]} (HxW) in {lay['ifd']}, "
        f"{lay['compression']}, {lay['segments']} {lay['storage']} of {lay['segment_size']}, "
        f"{r['bits_per_sample']} bit{' packed' if lay['packed'] else ''}",
        f"  CFA           {r['cfa']['name']} anchored at {r['cfa']['origin_yx']}  ActiveArea {r['active_area']}",
        f"  levels        black {r['black_level_dn']}{' +deltaH' if r['black_delta_h'] else ''}"
        f"{' +deltaV' if r['black_delta_v'] else ''}  white {r['white_level_dn']:g}",
    ]
    if lay["jpeg"]:
        j = lay["jpeg"]
        lines.append(f"  lossless JPEG {j['components']} component(s), frame {j['frame']}, "
                     f"precision {j['precision']}, predictor {j['predictor']}")
    if lay["linearization_table"]:
        lines.append(f"  linearization table of {lay['linearization_table']} entries")
    check = f" ({r['digest_check']})" if r.get("digest_check") and lay["new_raw_image_digest"] else ""
    lines.append(f"  digest        {lay['new_raw_image_digest'] or 'none'}{check}"
                 f"  corrected by HotPixels: {'yes' if m['corrected_by_hotpixels'] else 'no'}")
    for p in r.get("planes", []):
        lines.append(f"  plane {p['plane']}       median {p['median_dn']:g} DN  min {p['min_dn']}  max {p['max_dn']}")
    return "\n".join(lines) + "\n"
