"""Test helpers for DNG round trips: independent readers (tifffile, rawpy, the Adobe DNG SDK in a
subprocess), full exiftool dumps and exiftool's validator, and a seeded "correction"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile

from conftest import require_module, require_tool

# exiftool keys a corrected copy may change: file-system facts, where the raw data lies, its
# digests and unique ID, and our own marker
ALLOWED_TO_CHANGE = {
    "SourceFile", "IFD0:NewRawImageDigest", "IFD0:RawImageDigest", "IFD0:RawDataUniqueID", "IFD0:Software",
}
ALLOWED_SUFFIXES = (":StripOffsets", ":StripByteCounts", ":TileOffsets", ":TileByteCounts")
ALLOWED_PREFIXES = ("System:", "XMP-hotpixels:")


def tifffile_raw(path) -> np.ndarray:
    """The CFA raw IFD decoded by tifffile (an independent TIFF reader)."""
    with tifffile.TiffFile(path) as tf:
        pages = list(tf.pages) + [s for p in tf.pages for s in (p.pages or [])]
        page = next(p for p in pages if p.photometric == 32803)
        return page.asarray()


def rawpy_raw(path) -> np.ndarray:
    rawpy = require_module("rawpy")
    with rawpy.imread(str(path)) as rp:
        return rp.raw_image.copy()


def exiftool_dump(path) -> dict:
    """Every tag exiftool sees (``-a -G1 -n -b``: duplicates, groups, numbers, binary as base64)."""
    exe = require_tool("exiftool")
    out = subprocess.run([exe, "-j", "-a", "-G1", "-n", "-b", str(path)], capture_output=True, check=True, text=True)
    return json.loads(out.stdout)[0]


def metadata_differences(src, dst) -> dict:
    """Tags whose value differs between two files, except the ones a correction may change."""
    a, b = exiftool_dump(src), exiftool_dump(dst)
    diff = {}
    for key in sorted(set(a) | set(b)):
        if key in ALLOWED_TO_CHANGE or key.endswith(ALLOWED_SUFFIXES) or key.startswith(ALLOWED_PREFIXES):
            continue
        if a.get(key) != b.get(key):
            diff[key] = (str(a.get(key))[:80], str(b.get(key))[:80])
    return diff


def validate_warnings(path) -> set[str]:
    exe = require_tool("exiftool")
    out = subprocess.run([exe, "-validate", "-warning", "-a", str(path)], capture_output=True, text=True)
    lines = [ln.split(":", 1) for ln in out.stdout.splitlines() if ":" in ln]
    return {v.strip() for k, v in lines if k.strip() == "Warning"}


_DNGPY_SCRIPT = """
import sys, numpy as np, dngpy
d = dngpy.Dng(sys.argv[1])
np.save(sys.argv[2], np.asarray(d.raw_pixels)[..., 0])
"""


def dngpy_read(path, npy_path) -> tuple[np.ndarray | None, set[str]]:
    """Stage-1 pixels as the Adobe DNG SDK reads them, and its messages (timings removed)."""
    require_module("dngpy")
    proc = subprocess.run([sys.executable, "-c", _DNGPY_SCRIPT, str(path), str(npy_path)],
                          capture_output=True, text=True, timeout=120)
    lines = {ln.strip() for ln in (proc.stdout + proc.stderr).splitlines()
             if ln.strip() and " time: " not in ln and not ln.startswith("Traceback")}
    pixels = np.load(npy_path) if proc.returncode == 0 and Path(npy_path).exists() else None
    return pixels, lines


def fake_correction(raw, seed: int, n: int = 300) -> np.ndarray:
    """A new frame with ``n`` sites changed, as a correction would: some lowered towards the
    local level, some set to arbitrary in-range values; never above the white level."""
    rng = np.random.default_rng(seed)
    new = np.array(raw.cfa_dn, dtype=np.uint16, copy=True)
    h, w = new.shape
    ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
    top = int(min(raw.white_level_dn, (1 << raw.bits_per_sample) - 1))
    new[ys, xs] = rng.integers(0, top + 1, n).astype(np.uint16)
    return new


def leftovers(folder: Path) -> list[str]:
    """Temporary files a writer left behind in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
