"""Pick the profile for an image from its metadata alone (the library index; no pixel data).

Hard constraints — a profile is a candidate only if all hold: same make and model (ignoring case),
same body serial when both are known, same raw size, ActiveArea and CFA pattern.

Score (lower is better), in "stops":
* ISO: ``|log2(iso_image / iso_profile)|`` — read noise and hot-pixel gain change with ISO;
* exposure: ``0.5 x |log2(t_image / t_profile)|`` — stage 1 scales the dark by the exposure ratio,
  so a different exposure costs less than a different ISO;
* temperature: ``|ΔT| / 6 °C`` (dark current doubles about every 6 °C; stage 1 refines the scale
  from the hot pixels, but the population of significant sites changes);
* age: ``0.25`` per year between the profile's darks and the image (sensors gain hot pixels).
Unknown values cost ``UNKNOWN_COST`` each. Every candidate carries a one-sentence explanation.

A *learned* profile (``kind: "learned"``, learned from ordinary photos) models its sites against
the settings, so it costs nothing within the ISO, exposure and temperature ranges it was learned
from and only the distance outside them (same units as above); the sentence says how many photos
it was learned from and those ranges. Every candidate carries its ``kind``; how ``correct
--profile auto`` combines a dark and a learned candidate is in :mod:`hotpixels.correct.pipeline`.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from ..dng.rawimage import CameraMetadata, RawImage

UNKNOWN_COST = 0.5
EXPOSURE_WEIGHT = 0.5
TEMPERATURE_STOP_C = 6.0
AGE_COST_PER_YEAR = 0.25


def image_facts(meta_or_raw: RawImage | dict | CameraMetadata) -> dict[str, Any]:
    """What matching needs from an image: a RawImage (pixels not needed) or a dict with the keys
    ``make, model, serial, iso, exposure_s, temperature_c, capture_time, raw_size, active_area, cfa``."""
    if isinstance(meta_or_raw, RawImage):
        m = meta_or_raw.metadata
        return {"make": m.make, "model": m.model, "serial": m.serial, "iso": m.iso, "exposure_s": m.exposure_s,
                "temperature_c": m.temperature_c, "capture_time": m.capture_time,
                "raw_size": list(meta_or_raw.cfa_dn.shape), "active_area": list(meta_or_raw.active_area),
                "cfa": meta_or_raw.cfa.to_json()}
    if isinstance(meta_or_raw, CameraMetadata):
        return meta_or_raw.to_json()
    return dict(meta_or_raw)


def _same_text(a, b) -> bool:
    return (a or "").strip().casefold() == (b or "").strip().casefold()


def _short_serial(s: str | None) -> str:
    return f"…{s[-4:]}" if s and len(s) > 4 else (s or "?")


def _hard_failure(img: dict, prof: dict) -> str | None:
    cam = prof.get("camera") or {}
    if not (_same_text(img.get("make"), cam.get("make")) and _same_text(img.get("model"), cam.get("model"))):
        return "other body"
    if img.get("serial") and cam.get("serial") and not _same_text(img["serial"], cam["serial"]):
        return "other body"
    if img.get("raw_size") and prof.get("raw_size") and list(img["raw_size"]) != list(prof["raw_size"]):
        return "different raw size"
    if img.get("active_area") and prof.get("active_area") and list(img["active_area"]) != list(prof["active_area"]):
        return "different active area"
    ic, pc = img.get("cfa"), prof.get("cfa")
    if ic and pc and (ic.get("pattern"), list(ic.get("origin_yx", (0, 0)))) != (pc.get("pattern"), list(pc.get("origin_yx", (0, 0)))):
        return "different CFA"
    return None


def _years_between(a: str | None, b: str | None) -> float | None:
    try:
        ta = _dt.datetime.fromisoformat(a).replace(tzinfo=None)
        tb = _dt.datetime.fromisoformat(b).replace(tzinfo=None)
    except (TypeError, ValueError):
        return None
    return abs((ta - tb).total_seconds()) / (365.25 * 86400)


def _outside(value, rng, log: bool) -> float | None:
    """How far ``value`` lies outside ``rng`` = [lo, hi] (stops when ``log``), 0 inside; None if unknown."""
    if value is None or not rng:
        return None
    lo, hi = float(rng[0]), float(rng[1])
    if log:
        if value <= 0 or lo <= 0:
            return None
        return max(math.log2(lo / value), math.log2(value / hi), 0.0)
    return max(lo - value, value - hi, 0.0)


def score_learned(img: dict, prof: dict) -> tuple[float, str, dict]:
    """(cost, sentence, parts) of a learned profile: distance outside its learned ranges."""
    ln = prof.get("learned") or {}
    cam = prof.get("camera") or {}
    body = (f"same body (serial {_short_serial(cam['serial'])})" if img.get("serial") and cam.get("serial")
            else f"same model ({cam.get('make')} {cam.get('model')}, serial not recorded)")
    parts = {"iso_stops": _outside(img.get("iso"), ln.get("iso"), True),
             "exposure_stops": _outside(img.get("exposure_s"), ln.get("exposure_s"), True),
             "temperature_diff_c": _outside(img.get("temperature_c"), ln.get("temperature_c"), False), "age_years": None}
    cost = (parts["iso_stops"] if parts["iso_stops"] is not None else UNKNOWN_COST)
    cost += EXPOSURE_WEIGHT * parts["exposure_stops"] if parts["exposure_stops"] is not None else UNKNOWN_COST
    cost += parts["temperature_diff_c"] / TEMPERATURE_STOP_C if parts["temperature_diff_c"] is not None else UNKNOWN_COST

    def span(r, unit=""):
        return "?" if not r else (f"{r[0]:g}{unit}" if r[0] == r[1] else f"{r[0]:g}-{r[1]:g}{unit}")

    inside = all(parts[k] == 0 for k in ("iso_stops", "exposure_stops"))
    words = [body, f"learned from {ln.get('photos')} photos at ISO {span(ln.get('iso'))}, {span(ln.get('exposure_s'), ' s')}"
             + (f", {span(ln.get('temperature_c'), ' °C')}" if ln.get("temperature_c") else ""),
             "this photo's settings within them" if inside else "this photo's settings outside them (extrapolated)"]
    return cost, ", ".join(words), parts


def score_profile(img: dict, prof: dict) -> tuple[float, str, dict]:
    """(cost, sentence, parts) of one candidate that passed the hard constraints."""
    if prof.get("kind") == "learned":
        return score_learned(img, prof)
    parts: dict[str, float | None] = {}
    words = []
    cam = prof.get("camera") or {}
    if img.get("serial") and cam.get("serial"):
        words.append(f"same body (serial {_short_serial(cam['serial'])})")
    else:
        words.append(f"same model ({cam.get('make')} {cam.get('model')}, serial not recorded)")

    iso_i, iso_p = img.get("iso"), prof.get("iso")
    if iso_i and iso_p:
        parts["iso_stops"] = abs(math.log2(iso_i / iso_p))
        words.append(f"ISO {iso_i:g} {'=' if iso_i == iso_p else 'vs'} {iso_p:g}")
    else:
        parts["iso_stops"] = None
        words.append("ISO unknown")

    t_i, t_p = img.get("exposure_s"), prof.get("exposure_s")
    if t_i and t_p:
        ev = math.log2(t_i / t_p)
        parts["exposure_stops"] = abs(ev)
        words.append(f"{t_i:g} s = {t_p:g} s" if abs(ev) < 1e-6 else f"{t_i:g} s vs {t_p:g} s ({ev:+.2f} EV, scaled)")
    else:
        parts["exposure_stops"] = None
        words.append("exposure unknown (scale fitted)")

    c_i, c_p = img.get("temperature_c"), prof.get("temperature_c")
    if c_i is not None and c_p is not None:
        parts["temperature_diff_c"] = abs(c_i - c_p)
        words.append(f"{c_i:g} °C vs {c_p:g} °C")
    else:
        parts["temperature_diff_c"] = None
        words.append("temperature unknown")

    rng = prof.get("capture_time_range") or [None]
    years = _years_between(img.get("capture_time"), rng[-1] if rng else None)
    parts["age_years"] = years
    if years is not None and years >= 1 / 12:
        words.append(f"darks {years * 12:.0f} months apart" if years < 2 else f"darks {years:.1f} years apart")

    cost = 0.0
    cost += parts["iso_stops"] if parts["iso_stops"] is not None else UNKNOWN_COST
    cost += EXPOSURE_WEIGHT * parts["exposure_stops"] if parts["exposure_stops"] is not None else UNKNOWN_COST
    cost += parts["temperature_diff_c"] / TEMPERATURE_STOP_C if parts["temperature_diff_c"] is not None else UNKNOWN_COST
    cost += AGE_COST_PER_YEAR * years if years is not None else 0.0
    return cost, ", ".join(words), parts


def match_profiles(meta_or_raw, library) -> dict[str, Any]:
    """``{"best": name | None, "candidates": [{name, score, explanation, parts}...], "reason": str | None}``.

    ``library`` is a :class:`~hotpixels.profiles.library.ProfileLibrary` or a list of summaries.
    """
    img = image_facts(meta_or_raw)
    summaries = library if isinstance(library, list) else library.summaries()
    candidates, rejected = [], {}
    for prof in summaries:
        why = _hard_failure(img, prof)
        if why:
            rejected[why] = rejected.get(why, 0) + 1
            continue
        cost, sentence, parts = score_profile(img, prof)
        candidates.append({"name": prof["name"], "kind": prof.get("kind") or "dark", "score": round(cost, 4),
                           "explanation": sentence, "parts": parts})
    candidates.sort(key=lambda c: (c["score"], c["name"].casefold()))
    if candidates:
        return {"best": candidates[0]["name"], "candidates": candidates, "reason": None}
    return {"best": None, "candidates": [], "reason": _no_match_reason(img, len(summaries), rejected)}


def _no_match_reason(img: dict, total: int, rejected: dict[str, int]) -> str:
    body = f"{img.get('make') or '?'} {img.get('model') or '?'}"
    if img.get("serial"):
        body += f" serial {_short_serial(img['serial'])}"
    if total == 0:
        return f"no profile for {body}: the profile library is empty"
    bits = []
    for why, n in sorted(rejected.items()):
        if why == "other body":
            bits.append(f"{n} profile{'s are for other bodies' if n != 1 else ' is for another body'}")
        else:
            bits.append(f"{n} {'have' if n != 1 else 'has'} a {why}")
    return f"no profile for {body}; " + ", ".join(bits)
