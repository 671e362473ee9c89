"""Learn a body's hot pixels from its ordinary photos: ``hotpixels profile learn`` / ``profiles.learn``.

Most photographers never shoot a dark frame, but their photos hold what one would tell: a hot
pixel sits at the same site in every photo of a body, scenes and stars do not. This module reads
the photos once, streaming (:class:`~hotpixels.profiles.learnstats.LearnEvidence` keeps per-site
sums, never a photo), and stores a *learned* profile in the library (see
:mod:`.profile_file`): the learned sites with their model of the excess against exposure x ISO x
temperature, RTS sites flagged unstable, and the sparse sufficient statistics that ``update``
continues from.

Photos: at least :data:`MIN_PHOTOS` of ONE body (make, model, serial, raw size, ActiveArea, CFA;
grouped as the batch scan does, :func:`hotpixels.correct.batchscan.group_key`). With photos of
several bodies the body with the most photos is learned and the others are listed in ``skipped``
(error 2005 ``profile_incompatible``), as are photos HotPixels already corrected (1013), photos
without exposure time or ISO (5001), unreadable files, and, on update, photos already learned or
of another body. Progress: one unit per photo decoded; cancel between photos; nothing is written
until the profile is complete.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import (
    AlreadyCorrected, HotPixelsError, InvalidOption, ProfileExists, ProfileIncompatible, as_hotpixels_error,
)
from ..progress import ProgressFn, check_cancel, report
from .learnstats import DOUBLING_C, LearnEvidence, dark_factor

MIN_PHOTOS = 8
MEASURED_AFTER = 3  # a photo's own factor measured against fewer photos' evidence is measured again at the end
FIELD_BLOCK_PX = 256  # the learned profile's (zero) field grid: coarse, it holds nothing


def learn_profile(paths: Sequence[str | os.PathLike], name: str, library=None, *, update: bool = False,
                  tracked: bool = False, doubling_c: float = DOUBLING_C, progress: ProgressFn | None = None,
                  cancel: threading.Event | None = None) -> dict[str, Any]:
    """Learn (or, with ``update``, extend) the learned profile ``name`` from ``paths``.

    Returns ``{"profile": summary, "sites", "rts", "photos_used", "skipped": [{path, error}],
    "no_dark_signal": [names of the photos that showed none, e.g. in-camera noise reduction], "seconds"}``.
    """
    from .library import ProfileLibrary, check_name

    t0 = time.perf_counter()
    lib = library if isinstance(library, ProfileLibrary) else ProfileLibrary(library)
    name = check_name(name)
    existing = _existing(lib, name, update)
    if existing is not None:
        doubling_c = float((existing.meta.get("learned") or {}).get("doubling_c") or doubling_c)
    photos, skipped = _read_tags(paths, existing, doubling_c, cancel)
    photos, other = _one_body(photos, existing)
    skipped += other
    photos = _middle_out(photos)
    need = 1 if existing is not None else MIN_PHOTOS
    if len(photos) < need:
        why = "; ".join(f"{Path(s['path']).name}: {s['error']['message']}" for s in skipped[:4])
        raise InvalidOption(f"learning needs at least {need} usable photo{'s' if need > 1 else ''} of one body, got "
                            f"{len(photos)}" + (f" ({why})" if why else ""), data={"param": "paths", "skipped": skipped})
    ref = photos[0]["raw"]
    ev = LearnEvidence(ref.cfa, ref.active_area, ref.shape, tracked=tracked)
    if existing is not None:
        lp = existing.learned
        ev.load_sufficient(lp["stat_yx"], lp["stat_sums"], lp["stat_counts"], int(existing.meta.get("n_frames") or 0))
        frames = stored_frames(existing.meta)
        ev.scales = [f["photo_scale"] for f in frames if f["dark_factor"]]
        ev.factors = [f["dark_factor"] * f["photo_scale"] for f in frames if f["dark_factor"]]
        existing.learned = lp = None  # the stored sums are in the accumulators now: only the meta is used below
    used = _stream(ev, photos, skipped, progress, cancel)
    if not used:
        raise InvalidOption("none of the photos could be read", data={"param": "paths", "skipped": skipped})
    _measure_again(ev, used, progress, cancel, len(photos))
    fit = ev.finish()
    check_cancel(cancel)
    previous = stored_frames(existing.meta) if existing is not None else []
    profile = build_learned_profile(name, ref, fit, ev.sufficient(), previous + used, doubling_c,
                                    ev.mean_noise_floor_dn(), tracked)
    check_cancel(cancel)
    lib.save(profile, overwrite=existing is not None)
    report(progress, len(photos), len(photos), "learned")
    return {"profile": lib.summary(name), "sites": int(len(fit.yx)), "rts": int(fit.unstable.sum()),
            "photos_used": len(used), "skipped": skipped,
            "no_dark_signal": [f["name"] for f in used if f["no_dark_signal"]],
            "seconds": round(time.perf_counter() - t0, 3)}


def _existing(lib, name: str, update: bool):
    """The learned profile to update (``update``), after checking that ``name`` is free otherwise."""
    if not update:
        if lib.exists(name):
            raise ProfileExists(f"a profile named {name!r} already exists in {lib.dir}; choose another name, "
                                "or add photos to a learned profile with --update")
        return None
    profile = lib.get(name)
    if profile.kind != "learned" or profile.learned is None:
        raise InvalidOption(f"profile {name!r} was built from dark frames; only a learned profile can be updated "
                            "with photos", data={"param": "update"})
    return profile


def _photo_key(name: str, capture_time: str | None) -> tuple[str, str]:
    return (name.casefold(), capture_time or "")


def _read_tags(paths, existing, doubling_c: float, cancel) -> tuple[list[dict], list[dict]]:
    """Each photo's tags (exiftool for the temperature) and dark factor; the refused ones."""
    from ..dng.reader import read_dng

    known = {_photo_key(str(f.get("name") or ""), f.get("capture_time")) for f in stored_frames(existing.meta)} \
        if existing is not None else set()
    photos, skipped, seen = [], [], set()
    for p in paths:
        check_cancel(cancel)
        path = os.fspath(p)
        key = os.path.abspath(path)
        if key in seen:
            continue
        seen.add(key)
        try:
            raw = read_dng(path, metadata=True, pixels=False)
            m = raw.metadata
            if m.corrected_by_hotpixels:
                raise AlreadyCorrected(f"{Path(path).name} was already corrected by HotPixels; its hot pixels are "
                                       "gone, it cannot teach them", path=path)
            factor = dark_factor(m.exposure_s, m.iso, m.temperature_c, doubling_c)
            if factor is None:
                raise InvalidOption(f"{Path(path).name} records no exposure time or ISO; the excess of a hot pixel "
                                    "cannot be related to its settings", path=path, data={"param": "paths"})
            if _photo_key(Path(path).name, m.capture_time) in known:
                raise InvalidOption(f"{Path(path).name} is already in this learned profile", path=path,
                                    data={"param": "paths"})
        except HotPixelsError as exc:
            skipped.append(_skip(path, exc))
            continue
        except Exception as exc:  # noqa: BLE001 - an unreadable photo is skipped, not fatal
            skipped.append(_skip(path, as_hotpixels_error(exc)))
            continue
        photos.append({"path": path, "raw": raw, "factor": factor})
    return photos, skipped


def _skip(path: str, exc: HotPixelsError) -> dict[str, Any]:
    err = exc.to_dict()
    return {"path": path, "error": {"code": err["code"], "name": err["name"], "message": err["message"]}}


def _body_of_profile(existing) -> tuple:
    """The :func:`group_key` of the body a profile was made on (from its meta)."""
    meta = existing.meta
    cam = meta.get("camera") or {}
    cfa = existing.model.cfa

    def norm(s):
        return (s or "").strip().casefold()

    return (norm(cam.get("make")), norm(cam.get("model")), norm(cam.get("serial")), tuple(existing.model.raw_shape),
            tuple(int(v) for v in existing.model.active_area), cfa.pattern, tuple(cfa.origin_yx))


def _one_body(photos: list[dict], existing) -> tuple[list[dict], list[dict]]:
    """The photos of the body to learn (the profile's on update, else the most photographed one)."""
    from ..correct.batchscan import group_key

    groups: dict[tuple, list[dict]] = {}
    for ph in photos:
        groups.setdefault(group_key(ph["raw"]), []).append(ph)
    if existing is not None:
        body = _body_of_profile(existing)
    else:
        body = max(groups, key=lambda k: len(groups[k])) if groups else None
    keep = groups.get(body, [])
    skipped = []
    for key, members in groups.items():
        if key == body:
            continue
        for ph in members:
            m = ph["raw"].metadata
            what = "this profile's" if existing is not None else "the learned"
            skipped.append(_skip(ph["path"], ProfileIncompatible(
                f"{Path(ph['path']).name} is from another body or sensor layout ({m.make} {m.model}, serial "
                f"{m.serial or '?'}, {ph['raw'].shape[1]} x {ph['raw'].shape[0]}) than {what} photos",
                path=ph["path"])))
    return keep, skipped


def _stream(ev: LearnEvidence, photos: list[dict], skipped: list[dict], progress, cancel) -> list[dict]:
    """Decode each photo once (the next one while the current is added) and fold it in."""
    from ..correct.batchscan import _frames

    by_path = {ph["path"]: ph for ph in photos}
    used = []
    stream = _frames([ph["path"] for ph in photos], progress, cancel)
    try:
        for path, raw in stream:
            if isinstance(raw, HotPixelsError):
                skipped.append(_skip(path, raw))
                continue
            ph = by_path[path]
            evidence = ev.n_photos  # photos in the evidence when this one was measured
            info = ev.add(raw.cfa_dn, black_level_dn=raw.black_repeat_dn, white_level_dn=raw.white_level_dn,
                          factor=ph["factor"])
            m = ph["raw"].metadata
            used.append({"name": Path(path).name, "path": path, "capture_time": m.capture_time, "iso": m.iso,
                         "exposure_s": m.exposure_s, "temperature_c": m.temperature_c,
                         "dark_factor": round(ph["factor"], 6), "photo_scale": info["photo_scale"]["scale"],
                         "no_dark_signal": info["index"] is None,
                         "counted_share": info["counted_share"], "_index": info["index"],
                         "_measured": info["index"] is None
                         or (info["photo_scale"]["method"] == "fit" and evidence >= MEASURED_AFTER)})
            del raw
    finally:
        stream.close()
    return used


def stored_frames(meta: dict) -> list[dict]:
    """A stored learned profile's ``frames`` (checked when the profile was read,
    :func:`hotpixels.profiles.profile_file.load_profile`), ``photo_scale`` 1.0 where missing
    (profiles written before the photo's own factor was measured), ``dark_factor`` None where 0."""
    return [{**f, "dark_factor": float(f["dark_factor"]) if f.get("dark_factor") else None,
             "photo_scale": float(f.get("photo_scale", 1.0))} for f in meta.get("frames") or []]


def _middle_out(photos: list[dict]) -> list[dict]:
    """The photos from the median dark factor outwards: each photo's own factor is measured on the
    hot pixels of the photos before it, and photos at middling settings measure each other best (a
    short exposure shows few hot pixels, a long high-ISO one clips them)."""
    if len(photos) < 3:
        return photos
    logs = np.log([ph["factor"] for ph in photos])
    order = np.argsort(np.abs(logs - np.median(logs)), kind="stable")
    return [photos[i] for i in order]


def _measure_again(ev: LearnEvidence, used: list[dict], progress, cancel, total: int) -> None:
    """Read again the photos whose own factor was not measured against enough evidence when they
    were added (the first ``MEASURED_AFTER`` of the evidence, or too few or too uncertain sites then)
    and measure it against every photo's (:meth:`LearnEvidence.recalibrate`). Updates each entry's
    ``photo_scale`` and drops the private keys."""
    from ..correct.batchscan import _frames

    again = [f for f in used if not f["_measured"]]
    for f in used:
        del f["_measured"]
    by_path = {f["path"]: f for f in again}

    def say(i, n, _message):
        report(progress, total, total, f"measuring each photo's dark signal {i + 1}/{n}")

    stream = _frames([f["path"] for f in again], say, cancel)
    try:
        for path, raw in stream:
            if isinstance(raw, HotPixelsError):  # read once already: a file changed under us keeps its first factor
                continue
            f = by_path[path]
            info = ev.recalibrate(f["_index"], raw.cfa_dn, black_level_dn=raw.black_repeat_dn,
                                  white_level_dn=raw.white_level_dn, factor=f["dark_factor"])
            if info["changed"]:
                f["photo_scale"] = info["photo_scale"]["scale"]
                if info["taken_out"]:
                    f["counted_share"] = 0.0
                    f["no_dark_signal"] = True
            del raw
    finally:
        stream.close()
    for f in used:
        f.pop("_index", None)


def _range(values) -> list[float] | None:
    known = [float(v) for v in values if v is not None]
    return [min(known), max(known)] if known else None


def learned_summary(frames: list[dict], doubling_c: float, n_photos: int | None = None) -> dict[str, Any]:
    """The ``learned`` block of a learned profile's meta and summary (photos, dates, settings)."""
    times = sorted(f["capture_time"] for f in frames if f.get("capture_time"))
    return {"photos": int(n_photos if n_photos is not None else len(frames)),
            "first_capture": times[0] if times else None, "last_capture": times[-1] if times else None,
            "iso": _range(f.get("iso") for f in frames), "exposure_s": _range(f.get("exposure_s") for f in frames),
            "temperature_c": _range(f.get("temperature_c") for f in frames), "doubling_c": float(doubling_c),
            "model": "excess_dn = offset_dn + rate_dn x exposure_s x ISO/100 x 2^((T - 20 °C) / doubling_c)"}


def build_learned_profile(name: str, ref, fit, sufficient: dict, frames: list[dict], doubling_c: float,
                          noise_floor_dn: float, tracked: bool, extra_meta: dict | None = None):
    """The :class:`~hotpixels.profiles.profile_file.Profile` of a learned fit (``ref``: one photo's
    RawImage, for the body and layout)."""
    from .cells import cell_size_for
    from .darkmodel import FLAG_COLD, FLAG_UNSTABLE, DarkModel
    from .profile_file import Profile

    factors = [f["dark_factor"] for f in frames if f.get("dark_factor")]
    g_med = float(np.median(factors)) if factors else 0.0
    h, w = ref.shape
    block = cell_size_for(ref.cfa, FIELD_BLOCK_PX)
    m = ref.metadata
    n = len(fit.yx)
    model = DarkModel(
        raw_shape=(h, w), active_area=tuple(int(v) for v in ref.active_area), cfa=ref.cfa, field_block_px=block,
        field_dn=np.zeros((ref.cfa.n_planes, -(-h // block), -(-w // block)), np.float32),
        hot_yx=fit.yx.astype(np.int32), hot_excess_dn=fit.predicted_dn(g_med).astype(np.float32),
        hot_flags=(np.where(fit.unstable, FLAG_UNSTABLE, 0) | np.where(fit.cold, FLAG_COLD, 0)).astype(np.uint8),
        hot_temporal_sigma_dn=fit.scatter_dn.astype(np.float32),
        read_noise_dn=np.full(ref.cfa.n_planes, noise_floor_dn, np.float32),
        black_level_dn=float(ref.black_level_mean_dn), white_level_dn=float(ref.white_level_dn),
        exposure_s=_median(f.get("exposure_s") for f in frames), iso=_median(f.get("iso") for f in frames),
        temperature_c=_median(f.get("temperature_c") for f in frames), n_frames=len(frames),
        extra={"kind": "learned", "make": m.make, "model": m.model, "serial": m.serial, "doubling_c": float(doubling_c)})
    learned = {"learned_offset_dn": fit.offset_dn, "learned_rate_dn": fit.rate_dn,
               "learned_counts": np.stack([fit.counted, fit.hit, fit.high], axis=1).reshape(n, 3),
               "stat_yx": sufficient["yx"], "stat_sums": sufficient["sums"], "stat_counts": sufficient["counts"]}
    times = sorted(f["capture_time"] for f in frames if f.get("capture_time"))
    meta = {
        "kind": "learned",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "camera": {"make": m.make, "model": m.model, "serial": m.serial, "internal_serial": m.internal_serial,
                   "unique_camera_model": m.unique_camera_model},
        "raw_size": [h, w], "active_area": list(model.active_area), "cfa": ref.cfa.to_json(),
        "iso": model.iso, "exposure_s": model.exposure_s, "temperature_c": model.temperature_c,
        "temperature_range_c": _range(f.get("temperature_c") for f in frames),
        "capture_time_range": [times[0], times[-1]] if times else None,
        "n_frames": len(frames), "frames": frames, "mismatches": [],
        "learned": learned_summary(frames, doubling_c),
        "thresholds": _thresholds(), "tracked": bool(tracked),
    }
    meta.update(extra_meta or {})
    return Profile(name=name, model=model, meta=meta, learned=learned)


def _thresholds() -> dict[str, float]:
    from . import learnstats as ls

    return {"z_learn": ls.Z_LEARN, "z_hit": ls.Z_HIT, "z_high": ls.Z_HIGH, "min_hits": ls.MIN_HITS,
            "rts_min_high": ls.RTS_MIN_HIGH, "k_struct": ls.K_STRUCT, "rts_chi2": ls.RTS_CHI2,
            "model_tolerance": ls.MODEL_TOLERANCE}


def _median(values) -> float | None:
    known = [float(v) for v in values if v is not None]
    return float(np.median(known)) if known else None
