"""Stage 3: residual hot pixels in a single frame — candidates, CNN scores, repair.

Profiles miss random hot pixels (new defects, RTS pixels, cosmic-ray hits, temperatures the
profile did not cover). This stage finds them in the frame itself:

1. fit the frame's noise model and propose candidate sites that stand out from their same-colour
   ring by a margin in σ (:mod:`hotpixels.candidates`; about 1e-4–1e-3 of the sites,
   every star core among them);
2. score each candidate with a small CNN over the full-resolution CFA patch around it
   (:mod:`hotpixels.model`): a star spreads light over neighbouring sites of other colours (or,
   narrowband, over the same colour further out), a hot pixel does not. The network also reads the
   frame's context, computed from the bright candidates of this same call
   (:func:`hotpixels.model.features.frame_context`): how far this frame's stars spread, and whether
   its resolved stars light one colour only (Hα), so that a single red spike is judged differently
   in an Hα frame than in a broadband one;
3. repair the sites scored above the cut with the stage-2 edge-aware interpolation
   (:func:`hotpixels.correct.interpolate.interpolate_sites`), all detected sites marked bad so
   touching pairs do not feed each other;
4. a second look (:func:`second_look`): a candidate must exceed its ring's maximum, so of two hot
   pixels in each other's ring only the stronger was proposed; the ring members of the repaired
   sites are proposed again on the repaired frame, scored with the same context and cut, and
   repaired.

``sensitivity`` in [0, 1] sets two cuts, both lowered as it rises (so a higher sensitivity detects a
superset): the CNN logit cut (0.5 = the calibrated ``threshold_logit`` of the model file, each +0.1
lowers it by ``sensitivity_span / 10``) and an amplitude gate, the excess over the ring mean in σ
(4.8 σ at 0.5, 0.14 σ lower per +0.1), below which noise peaks and hot pixels look the same.
Only candidates above the amplitude gate are scored (``"candidates"`` in the report counts those).
Coordinates are full-frame (y, x); values DN as stored (black not subtracted).
"""

from __future__ import annotations

import time

import numpy as np

from ..dng.cfa import CfaPattern
from ..errors import InvalidOption
from ..candidates import K_MEAN, estimate_noise, find_candidates

DEFAULT_SENSITIVITY = 0.5
# Amplitude gate (excess over the ring mean, in σ) at sensitivity 0.5, and its change per unit of
# sensitivity. Gaussian noise alone puts about 1-2 sites per MP above 4.8 σ (after the ring-maximum
# test), and below that a single site cannot be told from a noise peak by any classifier.
GATE_SIGMA = 4.8
GATE_SPAN = 1.4


def threshold_for(sensitivity: float, meta: dict) -> float:
    """The logit cut for ``sensitivity`` (monotonically decreasing in it)."""
    if not 0.0 <= float(sensitivity) <= 1.0:
        raise InvalidOption(f"sensitivity must be between 0 and 1, got {sensitivity}", data={"param": "sensitivity"})
    return float(meta["threshold_logit"]) - (float(sensitivity) - 0.5) * float(meta["sensitivity_span"])


def gate_for(sensitivity: float) -> float:
    """Minimum excess over the ring mean (σ) a detection needs (monotonically decreasing)."""
    return GATE_SIGMA - (float(sensitivity) - 0.5) * GATE_SPAN


def detect_residual(cfa_dn: np.ndarray, cfa: CfaPattern, *, active_area, white_level_dn: float,
                    black_level_dn=0.0, sensitivity: float = DEFAULT_SENSITIVITY,
                    exclude_mask: np.ndarray | None = None, detector=None) -> dict:
    """Residual hot pixels of one frame, without repair.

    Returns ``{"sites": (N, 2) int64, "scores": (N,) logits, "excess_sigma": (N,), "sigma_dn": (N,),
    "candidates": int, "noise": {...}, "threshold_logit": float, "seconds": {...}}``.
    ``exclude_mask`` (H, W) bool: sites never reported (e.g. already handled by stage 2).
    ``detector``: a :class:`hotpixels.model.load.Detector` (default: the process-wide one).
    """
    from ..model.features import frame_context, patch_features
    from ..model.load import get_detector

    det = detector if detector is not None else get_detector()
    thr = threshold_for(sensitivity, det.meta)
    t0 = time.perf_counter()
    noise = estimate_noise(cfa_dn, cfa, active_area, black_level_dn)
    t1 = time.perf_counter()
    # only candidates above the amplitude gate can be detected: proposing none below it spares their
    # features and CNN passes (the many 4-4.8 σ noise peaks of a quiet frame) at no cost in results
    gate = gate_for(sensitivity)
    cand = find_candidates(cfa_dn, cfa, active_area, noise, black_level_dn, k_mean=max(K_MEAN, gate),
                           exclude_mask=exclude_mask)
    t2 = time.perf_counter()
    x = patch_features(cfa_dn, cfa, cand.yx, noise, active_area=active_area, black_level_dn=black_level_dn,
                       white_level_dn=white_level_dn)
    t3 = time.perf_counter()
    ctx = frame_context(x)
    logits = np.asarray(det.logits(x, ctx), dtype=np.float64)
    t4 = time.perf_counter()
    hit = (logits > thr) & (cand.excess_sigma >= gate)
    return {
        "sites": cand.yx[hit], "scores": logits[hit], "excess_sigma": cand.excess_sigma[hit],
        "sigma_dn": cand.sigma_dn[hit], "candidates": int(len(cand)), "noise": noise.to_json(),
        "threshold_logit": thr, "all_candidates": cand.yx, "all_scores": logits,
        "all_excess_sigma": cand.excess_sigma, "context": _context_row(ctx), "gate_sigma": gate,
        "noise_model": noise,
        "seconds": {"noise": t1 - t0, "candidates": t2 - t1, "features": t3 - t2, "cnn": t4 - t3},
    }


def correct_residual(cfa_dn: np.ndarray, cfa: CfaPattern, *, active_area, white_level_dn: float,
                     black_level_dn=0.0, sensitivity: float = DEFAULT_SENSITIVITY,
                     exclude_mask: np.ndarray | None = None, detector=None,
                     extra_sites: np.ndarray | None = None, in_place: bool = False) -> tuple[np.ndarray, dict]:
    """Detect and repair (with the :func:`second_look`); returns ``(new_cfa_dn, report)``; the
    input array is not modified, unless ``in_place`` (a frame the caller owns, e.g. stage 2's: no
    48 MB copy) — then it is repaired and returned.

    ``extra_sites`` (M, 2) full-frame: sites known to be defects from elsewhere (batch evidence,
    :mod:`.batch`), repaired in the same interpolation call as the detections; those the detector
    found itself or ``exclude_mask`` holds are dropped from them.

    ``report``: ``{"sites": (N, 2), "old": (N,) DN, "new": (N,) DN, "scores": (N,), "count": N,
    "n_second_look": how many of the N the second look found,
    "candidates": int, "noise": {...}, "seconds": {...}, "extra_sites": (K, 2), "extra_old": (K,),
    "extra_new": (K,)}`` (``extra_*``: the extra sites actually repaired here).
    """
    found = detect_residual(cfa_dn, cfa, active_area=active_area, white_level_dn=white_level_dn,
                            black_level_dn=black_level_dn, sensitivity=sensitivity,
                            exclude_mask=exclude_mask, detector=detector)
    single = found["sites"]
    extra = _new_sites(extra_sites, single, exclude_mask, cfa_dn.shape[1])
    sites = np.concatenate([single, extra])
    t0 = time.perf_counter()
    out, old, new = _repair(cfa_dn, cfa, sites, exclude_mask, white_level_dn, active_area, copy=not in_place)
    found["seconds"]["repair"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    hidden = second_look(out, cfa, sites, found, active_area=active_area, black_level_dn=black_level_dn,
                         white_level_dn=white_level_dn, exclude_mask=exclude_mask, detector=detector)
    if len(hidden["sites"]):
        out, old2, new2 = _repair(out, cfa, hidden["sites"], exclude_mask, white_level_dn, active_area, also_bad=sites,
                                     copy=False)
        k = len(single)
        single = np.concatenate([single, hidden["sites"]])
        old = np.concatenate([old[:k], old2, old[k:]])
        new = np.concatenate([new[:k], new2, new[k:]])
        for key in ("scores", "excess_sigma", "sigma_dn"):
            found[key] = np.concatenate([found[key], hidden[key]])
        found["sites"] = single
    found["seconds"]["second_look"] = time.perf_counter() - t1
    k = len(single)
    report = {key: v for key, v in found.items() if not key.startswith("all_") and key not in _INTERNAL}
    report.update(old=old[:k], new=new[:k], count=k, n_second_look=int(len(hidden["sites"])), extra_sites=extra,
                  extra_old=old[k:], extra_new=new[k:])
    return out, report


def _repair(frame: np.ndarray, cfa: CfaPattern, sites: np.ndarray, exclude_mask, white_level_dn: float, active_area,
            also_bad: np.ndarray | None = None, copy: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(repaired frame, old DN, new DN)``: ``sites`` interpolated (stage 2's edge-aware
    interpolation); the sites never feed each other, nor do ``exclude_mask`` or ``also_bad``.
    ``copy=False`` repairs ``frame`` itself (every value is interpolated before any is written, so
    the result is the same)."""
    from .interpolate import interpolate_sites

    out = frame.copy() if copy else frame
    old = frame[sites[:, 0], sites[:, 1]].astype(np.float64)
    if not len(sites):
        return out, old, old
    new = interpolate_sites(frame, cfa, sites, bad_mask=exclude_mask, white_level_dn=white_level_dn,
                            bounds=tuple(int(v) for v in active_area), exclude_yx=also_bad)
    top = np.iinfo(out.dtype).max if out.dtype.kind == "u" else None
    out[sites[:, 0], sites[:, 1]] = np.clip(np.rint(new), 0, top).astype(out.dtype)
    return out, old, np.asarray(new, dtype=np.float64)


def second_look(repaired_dn: np.ndarray, cfa: CfaPattern, repaired_yx: np.ndarray, found: dict, *, active_area,
                black_level_dn, white_level_dn: float, exclude_mask: np.ndarray | None = None, detector=None) -> dict:
    """Hot pixels that a stronger one in their ring hid, found once it is repaired.

    A candidate must exceed its ring maximum (:func:`hotpixels.candidates.find_candidates`), so of
    two hot pixels in each other's same-colour ring (2 px apart: pairs and clusters are common
    defects) only the stronger is proposed. After the repair, the ring members of every repaired
    site are proposed again on the repaired frame with the same rules and the same amplitude gate,
    and scored with the first pass's frame context and cut. Returns ``{"sites", "scores",
    "excess_sigma", "sigma_dn"}`` of the new detections (none already repaired or excluded).
    """
    from ..candidates import K_MAX, K_MEAN, mean_black
    from ..model.features import patch_features
    from ..model.load import get_detector
    from ..ringat import ring_mean_max, ring_members_at

    none = {"sites": np.zeros((0, 2), np.int64), "scores": np.zeros(0), "excess_sigma": np.zeros(0), "sigma_dn": np.zeros(0)}
    if not len(repaired_yx):
        return none
    t, l, b, r = (int(v) for v in active_area)
    h, w = repaired_dn.shape
    ys, xs, valid = ring_members_at(cfa, repaired_yx, active_area)
    nb = np.unique(ys[valid] * w + xs[valid])
    nb = nb[~np.isin(nb, repaired_yx[:, 0] * w + repaired_yx[:, 1])]
    yx = np.stack(np.divmod(nb, w), axis=1).astype(np.int64).reshape(-1, 2)
    ring_whole = (yx[:, 0] >= t + 2) & (yx[:, 0] < b - 2) & (yx[:, 1] >= l + 2) & (yx[:, 1] < r - 2)  # as find_candidates
    yx = yx[ring_whole]
    if exclude_mask is not None:
        yx = yx[~exclude_mask[yx[:, 0], yx[:, 1]]]
    if not len(yx):
        return none
    noise = found["noise_model"]
    mean, peak = ring_mean_max(repaired_dn, ring_members_at(cfa, yx, active_area))
    centre = repaired_dn[yx[:, 0], yx[:, 1]].astype(np.float64)
    sd = np.sqrt(noise.variance_dn2(mean - mean_black(black_level_dn)))
    gate = max(K_MEAN, float(found["gate_sigma"]))
    z = (centre - mean) / sd
    cand = (z >= gate) & (centre - peak > K_MAX * sd)
    if not cand.any():
        return none
    yx, z, sd = yx[cand], z[cand], sd[cand]
    det = detector if detector is not None else get_detector()
    x = patch_features(repaired_dn, cfa, yx, noise, active_area=active_area, black_level_dn=black_level_dn,
                       white_level_dn=white_level_dn)
    ctx = np.repeat(np.asarray(found["context"], np.float32)[None], len(yx), axis=0)
    logits = np.asarray(det.logits(x, ctx), dtype=np.float64)
    hit = logits > float(found["threshold_logit"])
    return {"sites": yx[hit], "scores": logits[hit], "excess_sigma": z[hit], "sigma_dn": sd[hit]}


def _context_row(ctx: np.ndarray) -> np.ndarray:
    """The frame context (one row: it is the same for every candidate of a frame); with no
    candidate at all, the context of a frame with too few bright ones."""
    from ..model.features import N_CONTEXT

    if len(ctx):
        return np.asarray(ctx[0], np.float32)
    row = np.zeros(N_CONTEXT, np.float32)
    row[0] = 1.0
    return row


_INTERNAL = ("context", "gate_sigma", "noise_model")  # what second_look needs from the first pass


def _new_sites(extra_sites, found_yx: np.ndarray, exclude_mask, width: int) -> np.ndarray:
    """``extra_sites`` less those in ``found_yx`` or ``exclude_mask`` (and duplicates), (K, 2) int64."""
    if extra_sites is None or not len(extra_sites):
        return np.zeros((0, 2), np.int64)
    extra = np.unique(np.asarray(extra_sites, np.int64).reshape(-1, 2), axis=0)
    extra = extra[~np.isin(extra[:, 0] * width + extra[:, 1], found_yx[:, 0] * width + found_yx[:, 1])]
    if exclude_mask is not None:
        extra = extra[~exclude_mask[extra[:, 0], extra[:, 1]]]
    return extra
