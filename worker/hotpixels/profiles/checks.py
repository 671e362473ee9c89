"""Do these dark frames belong in one profile? Every disagreement, reported by file and field.

The reference for each field is the value most frames share (ties: the first frame's), so one odd
frame out of ten is named as the odd one. Checked: make, model, body serial, raw size, ActiveArea,
CFA pattern (hard: such frames cannot be stacked at all), ISO, exposure time within
``EXPOSURE_TOLERANCE`` (5%) of the median, and sensor temperature: frames farther than
``TEMPERATURE_SPREAD_C`` / 2 from the median are named when the spread exceeds
``TEMPERATURE_SPREAD_C``. Unknown values (``None``) never count as a mismatch.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..errors import CorrectedFileAsDark, DarkFramesMismatch
from .frames import FrameInfo

EXPOSURE_TOLERANCE = 0.05
TEMPERATURE_SPREAD_C = 3.0
HARD_FIELDS = ("raw_size", "active_area", "cfa")


def refuse_corrected(frames: list[FrameInfo]) -> None:
    """A file this project already corrected is not a dark frame: its hot pixels are gone."""
    done = [f.name for f in frames if f.metadata.corrected_by_hotpixels]
    if done:
        raise CorrectedFileAsDark(
            f"{', '.join(done)} {'was' if len(done) == 1 else 'were'} already corrected by HotPixels; "
            "use the original dark frames (a corrected file has no hot pixels left to measure)",
            path=frames[[f.name for f in frames].index(done[0])].path, data={"files": done})


def _norm(v):
    return v.strip().casefold() if isinstance(v, str) else v


def _fields(f: FrameInfo) -> dict:
    m = f.metadata
    return {"make": m.make, "model": m.model, "serial": m.serial, "raw_size": list(f.raw_size),
            "active_area": list(f.active_area), "cfa": f.cfa.name if f.cfa.is_bayer or f.cfa.is_xtrans else str(f.cfa.pattern),
            "iso": m.iso}


def find_mismatches(frames: list[FrameInfo]) -> list[dict]:
    """``[{"file", "path", "field", "value", "expected", "hard", "message"}, ...]``, empty if all agree."""
    out: list[dict] = []
    rows = [_fields(f) for f in frames]
    for field in rows[0]:
        values = [r[field] for r in rows]
        known = [repr(_norm(v)) for v in values if v is not None]
        if not known:
            continue
        ref_key = Counter(known).most_common(1)[0][0]
        expected = next(v for v in values if v is not None and repr(_norm(v)) == ref_key)
        for f, v in zip(frames, values):
            if v is not None and repr(_norm(v)) != ref_key:
                out.append(_entry(f, field, v, expected, f"{field.replace('_', ' ')} {_show(v)} vs {_show(expected)}"))
    out += _exposure_mismatches(frames)
    out += _temperature_mismatches(frames)
    return out


def _exposure_mismatches(frames: list[FrameInfo]) -> list[dict]:
    known = [(f, f.metadata.exposure_s) for f in frames if f.metadata.exposure_s]
    if not known:
        return []
    med = float(np.median([e for _, e in known]))
    return [_entry(f, "exposure_s", e, med, f"exposure {e:g} s vs {med:g} s ({(e / med - 1) * 100:+.0f}%)")
            for f, e in known if abs(e / med - 1.0) > EXPOSURE_TOLERANCE]


def _temperature_mismatches(frames: list[FrameInfo]) -> list[dict]:
    known = [(f, f.metadata.temperature_c) for f in frames if f.metadata.temperature_c is not None]
    if len(known) < 2:
        return []
    temps = np.array([t for _, t in known], dtype=float)
    if temps.max() - temps.min() <= TEMPERATURE_SPREAD_C:
        return []
    med = float(np.median(temps))
    return [_entry(f, "temperature_c", t, med,
                   f"temperature {t:g} °C vs {med:g} °C (spread {temps.max() - temps.min():.1f} °C "
                   f"> {TEMPERATURE_SPREAD_C:g} °C)")
            for f, t in known if abs(t - med) > TEMPERATURE_SPREAD_C / 2]


def _show(v) -> str:
    if isinstance(v, list):
        return "x".join(str(x) for x in v) if len(v) == 2 else str(tuple(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def _entry(f: FrameInfo, field: str, value, expected, message: str) -> dict:
    return {"file": f.name, "path": f.path, "field": field, "value": value, "expected": expected,
            "hard": field in HARD_FIELDS, "message": f"{f.name}: {message}"}


def check_frames_agree(frames: list[FrameInfo], allow_mismatch: bool = False) -> list[dict]:
    """The mismatches; raises :class:`DarkFramesMismatch` (all of them in ``data``) unless allowed.

    Raw size, ActiveArea and CFA mismatches stop the build even when allowed: such frames cannot
    be combined site by site.
    """
    found = find_mismatches(frames)
    hard = [m for m in found if m["hard"]]
    if found and (hard or not allow_mismatch):
        blocking = hard or found
        files = sorted({m["file"] for m in blocking})
        detail = "; ".join(m["message"] for m in blocking[:6]) + ("; …" if len(blocking) > 6 else "")
        hint = ("these frames cannot be stacked" if hard else
                "use darks from one body at one ISO/exposure/temperature, or allow the mismatch")
        raise DarkFramesMismatch(f"{len(files)} dark frame{'s' if len(files) != 1 else ''} "
                                 f"do{'es' if len(files) == 1 else ''} not match the others: {detail} ({hint})",
                                 data={"mismatches": found})
    return found
