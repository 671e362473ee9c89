"""Batch evidence feeds the library: add newly found hot pixels to a profile.

After a batch correction the report proposes the sites that recurred across the photos and that
the applied profile lacks (``batch.proposed_profile_additions``). :func:`add_sites` adds them to a
profile in one step (``profiles.addSites``, ``hotpixels correct --learn-into NAME``):

* to a **dark-frame** profile: as sites flagged ``added`` (:data:`~.darkmodel.FLAG_ADDED`) with no
  excess of their own (the darks never measured them, so stage 1 subtracts nothing there) — stage 2
  interpolates them in every photo;
* to a **learned** profile: as learned sites whose rate is the measured excess over the median
  dark factor of the photos it came from (``paths``; when neither the excess nor the photos'
  settings are known, the site is flagged unstable, i.e. always interpolated);
* to a profile that does not exist yet, when ``paths`` are given: a new learned profile of the
  photos' body holding just these sites.

Sites already in the profile, outside the ActiveArea or duplicated are not added again. The
profile file is rewritten atomically; its ``additions`` list records when and how many.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InvalidOption, ProfileNotFound


def add_sites(name: str, sites: Sequence[dict], library=None, *, paths: Sequence[str] | None = None) -> dict[str, Any]:
    """Add ``sites`` (``[{y, x, excess_dn?, frames_hit?}]``, full-frame) to profile ``name``;
    returns ``{"profile": summary, "added": int}``."""
    from .library import ProfileLibrary, check_name

    lib = library if isinstance(library, ProfileLibrary) else ProfileLibrary(library)
    name = check_name(name)
    yx, excess, hits = _parse(sites)
    photos = _photo_facts(paths or [])
    try:
        profile = lib.get(name)
    except ProfileNotFound:
        if not photos:
            raise
        return _new_learned(lib, name, yx, excess, hits, photos)
    if photos:
        from ..correct.pipeline import check_profile_compatible

        check_profile_compatible(photos[0]["raw"], profile)
    keep = _new_sites(profile.model, yx)
    yx, excess, hits = yx[keep], excess[keep], hits[keep]
    if len(yx):
        if profile.kind == "learned":
            _append_learned(profile, yx, excess, hits, photos)
        else:
            _append_dark(profile, yx)
        additions = list(profile.meta.get("additions") or [])
        additions.append({"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                          "sites": int(len(yx)), "photos": [Path(p["path"]).name for p in photos]})
        profile.meta["additions"] = additions
        lib.save(profile, overwrite=True)
    return {"profile": lib.summary(name), "added": int(len(yx))}


def _parse(sites) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(yx (N, 2) int64, excess_dn (N,) NaN when unknown, frames_hit (N,)) from untrusted input."""
    if not isinstance(sites, (list, tuple)):
        raise InvalidOption("'sites' must be a list of {y, x} objects", data={"param": "sites"})
    yx, excess, hits = [], [], []
    for i, s in enumerate(sites):
        if not isinstance(s, dict) or not all(isinstance(s.get(k), int) and not isinstance(s.get(k), bool)
                                              for k in ("y", "x")):
            raise InvalidOption(f"sites[{i}] needs integer 'y' and 'x'", data={"param": "sites"})
        ex = s.get("excess_dn")
        if ex is not None and (not isinstance(ex, (int, float)) or isinstance(ex, bool) or not np.isfinite(ex)):
            raise InvalidOption(f"sites[{i}].excess_dn must be a number", data={"param": "sites"})
        fh = s.get("frames_hit") or 0
        if not isinstance(fh, int) or isinstance(fh, bool) or fh < 0:
            raise InvalidOption(f"sites[{i}].frames_hit must be a non-negative integer", data={"param": "sites"})
        yx.append((s["y"], s["x"]))
        excess.append(np.nan if ex is None else float(ex))
        hits.append(min(fh, 32767))
    return (np.asarray(yx, np.int64).reshape(-1, 2), np.asarray(excess, np.float64), np.asarray(hits, np.int64))


def _photo_facts(paths: Sequence[str]) -> list[dict]:
    from ..dng.reader import read_dng
    from .learnstats import dark_factor

    out = []
    for p in paths:
        raw = read_dng(p, metadata=True, pixels=False)
        m = raw.metadata
        out.append({"path": str(p), "raw": raw, "factor": dark_factor(m.exposure_s, m.iso, m.temperature_c)})
    return out


def _new_sites(model, yx: np.ndarray) -> np.ndarray:
    """Which of ``yx`` lie inside the ActiveArea (2 px in), are not in the profile, and are not repeats."""
    t, l, b, r = model.active_area
    inside = (yx[:, 0] >= t + 2) & (yx[:, 0] < b - 2) & (yx[:, 1] >= l + 2) & (yx[:, 1] < r - 2)
    known = {tuple(v) for v in model.hot_yx.tolist()}
    keep = np.zeros(len(yx), bool)
    for i, (v, ok) in enumerate(zip(map(tuple, yx.tolist()), inside)):
        if ok and v not in known:
            keep[i] = True
            known.add(v)
    return keep


def _append_model(model, yx, excess, flags, temporal) -> None:
    model.hot_yx = np.concatenate([model.hot_yx, yx.astype(np.int32)])
    model.hot_excess_dn = np.concatenate([model.hot_excess_dn, excess.astype(np.float32)])
    model.hot_flags = np.concatenate([model.hot_flags, flags.astype(np.uint8)])
    model.hot_temporal_sigma_dn = np.concatenate([model.hot_temporal_sigma_dn, temporal.astype(np.float32)])


def _append_dark(profile, yx: np.ndarray) -> None:
    from .darkmodel import FLAG_ADDED

    n = len(yx)
    _append_model(profile.model, yx, np.zeros(n), np.full(n, FLAG_ADDED), np.zeros(n))


def _learned_rates(excess: np.ndarray, photos: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(rate_dn, unknown) of added sites: excess over the photos' median dark factor."""
    factors = [p["factor"] for p in photos if p["factor"]]
    g = float(np.median(factors)) if factors else None
    unknown = ~np.isfinite(excess) | (g is None)
    rate = np.where(unknown, 0.0, np.nan_to_num(excess) / (g or 1.0))
    return rate, unknown


def _append_learned(profile, yx, excess, hits, photos) -> None:
    from .darkmodel import FLAG_UNSTABLE

    rate, unknown = _learned_rates(excess, photos)
    n = len(yx)
    _append_model(profile.model, yx, np.nan_to_num(excess), np.where(unknown, FLAG_UNSTABLE, 0), np.zeros(n))
    la = profile.learned
    la["learned_offset_dn"] = np.concatenate([la["learned_offset_dn"], np.zeros(n, np.float32)])
    la["learned_rate_dn"] = np.concatenate([la["learned_rate_dn"], rate.astype(np.float32)])
    counts = np.stack([hits, hits, hits], axis=1).astype(np.uint16)
    la["learned_counts"] = np.concatenate([la["learned_counts"], counts])


def _new_learned(lib, name: str, yx, excess, hits, photos) -> dict[str, Any]:
    """A new learned profile of the photos' body holding just these sites."""
    from .learn import build_learned_profile
    from .learnstats import COUNTS, SUMS, LearnedFit

    ref = photos[0]["raw"]
    t, l, b, r = ref.active_area
    ok = (yx[:, 0] >= t + 2) & (yx[:, 0] < b - 2) & (yx[:, 1] >= l + 2) & (yx[:, 1] < r - 2)
    _, first = np.unique(yx[ok], axis=0, return_index=True)
    sel = np.nonzero(ok)[0][np.sort(first)]
    yx, excess, hits = yx[sel], excess[sel], hits[sel]
    rate, unknown = _learned_rates(excess, photos)
    n = len(yx)
    fit = LearnedFit(yx=yx, cold=np.zeros(n, bool), offset_dn=np.zeros(n, np.float32), rate_dn=rate.astype(np.float32), unstable=unknown,
                     counted=hits, hit=hits, high=hits, z=np.zeros(n), scatter_dn=np.zeros(n, np.float32))
    frames = [{"name": Path(p["path"]).name, "path": p["path"], "capture_time": p["raw"].metadata.capture_time,
               "iso": p["raw"].metadata.iso, "exposure_s": p["raw"].metadata.exposure_s,
               "temperature_c": p["raw"].metadata.temperature_c, "dark_factor": p["factor"]} for p in photos]
    empty = {"yx": np.zeros((0, 2), np.int32), "sums": np.zeros((0, len(SUMS)), np.float32),
             "counts": np.zeros((0, len(COUNTS)), np.uint16)}
    profile = build_learned_profile(name, ref, fit, empty, frames, _doubling(), 0.0, False,
                                    extra_meta={"source": "batch evidence"})
    lib.save(profile)
    return {"profile": lib.summary(name), "added": int(n)}


def _doubling() -> float:
    from .learnstats import DOUBLING_C

    return DOUBLING_C


def proposals_from_results(results: Sequence[dict]) -> tuple[list[dict], list[str]]:
    """The union of a batch correction's proposed additions (``batch.proposed_profile_additions``
    of each result), one entry per site, and the paths of the photos they came from."""
    by_site: dict[tuple[int, int], dict] = {}
    paths = []
    for r in results:
        if not r.get("ok"):
            continue
        props = ((r.get("batch") or {}).get("proposed_profile_additions")) or []
        if props:
            paths.append(r["path"])
        for s in props:
            key = (int(s["y"]), int(s["x"]))
            if key not in by_site or int(s.get("frames_hit", 0)) > by_site[key].get("frames_hit", 0):
                by_site[key] = {"y": key[0], "x": key[1], "excess_dn": s.get("excess_dn"),
                                "frames_hit": int(s.get("frames_hit", 0))}
    return list(by_site.values()), paths
