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
   touching pairs do not feed each other.

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
    from ..model.features import patch_features
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
    logits = np.asarray(det.logits(x), dtype=np.float64)
    t4 = time.perf_counter()
    hit = (logits > thr) & (cand.excess_sigma >= gate)
    return {
        "sites": cand.yx[hit], "scores": logits[hit], "excess_sigma": cand.excess_sigma[hit],
        "sigma_dn": cand.sigma_dn[hit], "candidates": int(len(cand)), "noise": noise.to_json(),
        "threshold_logit": thr, "all_candidates": cand.yx, "all_scores": logits,
        "all_excess_sigma": cand.excess_sigma,
        "seconds": {"noise": t1 - t0, "candidates": t2 - t1, "features": t3 - t2, "cnn": t4 - t3},
    }


def correct_residual(cfa_dn: np.ndarray, cfa: CfaPattern, *, active_area, white_level_dn: float,
                     black_level_dn=0.0, sensitivity: float = DEFAULT_SENSITIVITY,
                     exclude_mask: np.ndarray | None = None, detector=None,
                     extra_sites: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Detect and repair; returns ``(new_cfa_dn, report)``; the input array is not modified.

    ``extra_sites`` (M, 2) full-frame: sites known to be defects from elsewhere (batch evidence,
    :mod:`.batch`), repaired in the same interpolation call as the detections; those the detector
    found itself or ``exclude_mask`` holds are dropped from them.

    ``report``: ``{"sites": (N, 2), "old": (N,) DN, "new": (N,) DN, "scores": (N,), "count": N,
    "candidates": int, "noise": {...}, "seconds": {...}, "extra_sites": (K, 2), "extra_old": (K,),
    "extra_new": (K,)}`` (``extra_*``: the extra sites actually repaired here).
    """
    from .interpolate import interpolate_sites

    found = detect_residual(cfa_dn, cfa, active_area=active_area, white_level_dn=white_level_dn,
                            black_level_dn=black_level_dn, sensitivity=sensitivity,
                            exclude_mask=exclude_mask, detector=detector)
    single = found["sites"]
    extra = _new_sites(extra_sites, single, exclude_mask, cfa_dn.shape[1])
    sites = np.concatenate([single, extra])
    out = cfa_dn.copy()
    t0 = time.perf_counter()
    old = cfa_dn[sites[:, 0], sites[:, 1]].astype(np.float64)
    new = old
    if len(sites):
        # the repaired sites never feed each other (interpolate_sites skips them); excluded sites
        # (stage 2's) are not used as neighbours either
        new = interpolate_sites(cfa_dn, cfa, sites, bad_mask=exclude_mask, white_level_dn=white_level_dn,
                                bounds=tuple(int(v) for v in active_area))
        top = np.iinfo(out.dtype).max if out.dtype.kind == "u" else None
        out[sites[:, 0], sites[:, 1]] = np.clip(np.rint(new), 0, top).astype(out.dtype)
    found["seconds"]["repair"] = time.perf_counter() - t0
    new = np.asarray(new, dtype=np.float64)
    k = len(single)
    report = {key: v for key, v in found.items() if not key.startswith("all_")}
    report.update(old=old[:k], new=new[:k], count=k, extra_sites=extra, extra_old=old[k:], extra_new=new[k:])
    return out, report


def _new_sites(extra_sites, found_yx: np.ndarray, exclude_mask, width: int) -> np.ndarray:
    """``extra_sites`` less those in ``found_yx`` or ``exclude_mask`` (and duplicates), (K, 2) int64."""
    if extra_sites is None or not len(extra_sites):
        return np.zeros((0, 2), np.int64)
    extra = np.unique(np.asarray(extra_sites, np.int64).reshape(-1, 2), axis=0)
    extra = extra[~np.isin(extra[:, 0] * width + extra[:, 1], found_yx[:, 0] * width + found_yx[:, 1])]
    if exclude_mask is not None:
        extra = extra[~exclude_mask[extra[:, 0], extra[:, 1]]]
    return extra
