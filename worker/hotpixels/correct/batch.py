"""Stage 3, batch evidence: a site that stands out at the same (y, x) in several frames is a defect.

Between tripod frames the sky turns, so stars and their cores move by pixels; the scene below the
horizon stays but has no single-site spikes; defects stay on their site. So, per frame, every site
gets ``z = (v - ring mean) / σ`` (same ring and noise model as the single-frame candidates, see
:mod:`hotpixels.correct.candidates`) and the site must also exceed its ring maximum; a site that
does so with ``z >= z_frame`` in at least ``min_frames`` frames is a defect. A 5 σ defect passes a
3 σ per-frame test in about 96 % of the frames, pure noise in about 1e-3, a moving star in one.

Static scene texture recurs too (a tripod does not move the landscape), and on *tracked* frames
the stars stay on their sites as well. So a recurring site must also look like a hot pixel on the
*mean stack* of the frames: the stage-3 classifier (the same CNN as for single frames, with the
stack's own noise model) scores its patch, where the noise is sqrt(N) lower and a 5 σ defect
stands at about 16 σ, while star cores spread light over neighbouring sites and texture peaks sit in
texture — *or* the median over the frames of its single-frame score passes the same cut (on the
stack, static texture a few σ high can hide a defect that stands alone in every single frame;
this lifted the tripod benchmark's recall from 0.93 to 0.95 at the same false sites). On tracked
frames, additionally, the 8 touching sites (all colours) of the stack must hold less than
``SPILL_MAX`` of the centre's excess over its ring (a star of sigma 0.5 px puts about 20 % on each
touching site). A red-only star of sigma <= 0.5 px is a single-site spike too
and cannot be told apart from a defect by either test.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..dng.cfa import CfaPattern
from .candidates import K_MAX, estimate_noise, ring_stats

Z_FRAME = 3.0
SPILL_MAX = 0.08
BATCH_SENSITIVITY = 0.8  # recurrence is strong evidence already: a lower cut on the stack


def detect_batch(frames: list[np.ndarray], cfa: CfaPattern, *, active_area, tracked: bool = False,
                 min_frames: int | None = None, black_level_dn=0.0, z_frame: float = Z_FRAME,
                 white_level_dn: float = 65535.0, sensitivity: float = BATCH_SENSITIVITY, detector=None) -> dict:
    """Recurring single-site anomalies across ``frames`` (list of (H, W) full-frame CFA arrays, DN).

    ``min_frames`` defaults to ``max(2, ceil(0.5 * len(frames)))``; ``sensitivity`` sets the cut of
    the classifier (see :func:`hotpixels.correct.residual.threshold_for`). Returns ``{"sites": (N, 2),
    "frames_hit": (N,), "mean_sigma": (N,) mean z over the frames, "excess_dn": (N,) median
    excess over the ring mean in DN, "stack_score": (N,) logit on the mean stack, "frame_score": (N,)
    median single-frame logit (a site is kept when either passes the cut), "n_frames": int,
    "tracked": bool, "min_frames": int, "recurring": int}``.
    """
    n = len(frames)
    if min_frames is None:
        min_frames = max(2, math.ceil(0.5 * n))
    t, l, b, r = (int(v) for v in active_area)
    shape = (b - t - 4, r - l - 4)
    hits = torch.zeros(shape, dtype=torch.int16)
    zsum = torch.zeros(shape, dtype=torch.float32)
    bl = float(np.mean(black_level_dn))
    noises = []
    for f in frames:
        noise = estimate_noise(f, cfa, active_area, black_level_dn)
        noises.append(noise)
        for y0, centre, mean, peak in ring_stats(f, cfa, (t, l, b, r)):
            rows = slice(y0 - t - 2, y0 - t - 2 + centre.shape[0])
            d = centre - mean
            sd = noise.sigma_dn(mean - bl)
            z = d / sd
            hit = (z >= z_frame) & ((centre - peak) > K_MAX * sd)
            hits[rows] += hit.to(torch.int16)
            zsum[rows] += torch.clamp(z, -10.0, 50.0)
    iy, ix = torch.nonzero(hits >= min_frames, as_tuple=True)
    yx = np.stack([iy.numpy() + t + 2, ix.numpy() + l + 2], axis=1).astype(np.int64)
    frames_hit = hits[iy, ix].numpy().astype(np.int64)
    mean_z = (zsum[iy, ix] / n).numpy().astype(np.float64)
    excess = _median_excess(frames, cfa, yx)
    stack = np.mean([f.astype(np.float32) for f in frames], axis=0)
    score = _stack_scores(stack, cfa, yx, active_area, black_level_dn, white_level_dn, detector)
    frame_score = _frame_scores(frames, noises, cfa, yx, active_area, black_level_dn, white_level_dn, detector)
    thr = _threshold(sensitivity, detector)
    keep = (score > thr) | (frame_score > thr)
    if tracked and len(yx):
        keep &= _single_site(stack, cfa, yx)
    return {"sites": yx[keep], "frames_hit": frames_hit[keep], "mean_sigma": mean_z[keep],
            "excess_dn": excess[keep], "stack_score": score[keep], "frame_score": frame_score[keep], "n_frames": n,
            "tracked": bool(tracked),
            "min_frames": int(min_frames), "recurring": int(len(yx))}


def _detector(detector):
    from ..model.load import get_detector

    return detector if detector is not None else get_detector()


def _threshold(sensitivity: float, detector) -> float:
    from .residual import threshold_for

    return threshold_for(sensitivity, _detector(detector).meta)


def _stack_scores(stack, cfa, yx, active_area, black_level_dn, white_level_dn, detector) -> np.ndarray:
    from ..model.features import patch_features

    if not len(yx):
        return np.zeros(0)
    noise = estimate_noise(stack, cfa, active_area, black_level_dn)
    x = patch_features(stack, cfa, yx, noise, active_area=active_area, black_level_dn=black_level_dn,
                       white_level_dn=white_level_dn)
    return _detector(detector).logits(x).numpy().astype(np.float64)


def _frame_scores(frames, noises, cfa, yx, active_area, black_level_dn, white_level_dn, detector) -> np.ndarray:
    """Median over the frames of the single-frame classifier's logit at each recurring site.

    The stack's noise is sqrt(N) lower, so on the stack static scene texture a few σ high around a
    defect (foreground grain, faint stars) looks like structure and the stack score drops; in each
    single frame that texture is under the noise and the defect stands alone. Drifting stars are
    at a site in one frame, so they cannot raise the median.
    """
    from ..model.features import patch_features

    if not len(yx):
        return np.zeros(0)
    det = _detector(detector)
    logits = [det.logits(patch_features(f, cfa, yx, nz, active_area=active_area, black_level_dn=black_level_dn,
                                        white_level_dn=white_level_dn)).numpy() for f, nz in zip(frames, noises)]
    return np.median(np.stack(logits), axis=0).astype(np.float64)


def _ring_mean_at(frame: np.ndarray, cfa: CfaPattern, yx: np.ndarray) -> np.ndarray:
    from .candidates import ring_offsets

    out = np.empty(len(yx))
    py, px = cfa.phase_of(yx[:, 0], yx[:, 1])
    for ph in set(zip(py.tolist(), px.tolist())):
        sel = (py == ph[0]) & (px == ph[1])
        offs = ring_offsets(cfa, ph)
        out[sel] = frame[yx[sel, 0, None] + offs[None, :, 0], yx[sel, 1, None] + offs[None, :, 1]].mean(axis=1)
    return out


def _median_excess(frames, cfa, yx) -> np.ndarray:
    if not len(yx):
        return np.zeros(0)
    ex = [f[yx[:, 0], yx[:, 1]].astype(np.float64) - _ring_mean_at(f, cfa, yx) for f in frames]
    return np.median(np.stack(ex), axis=0)


def _single_site(stack, cfa, yx) -> np.ndarray:
    """On the mean stack: the 8 touching sites hold < SPILL_MAX of the centre excess (per colour ring)."""
    centre_ex = stack[yx[:, 0], yx[:, 1]] - _ring_mean_at(stack, cfa, yx)
    spill = np.zeros(len(yx))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            nb = yx + np.array([dy, dx])
            spill = np.maximum(spill, stack[nb[:, 0], nb[:, 1]] - _ring_mean_at(stack, cfa, nb))
    return spill < SPILL_MAX * np.maximum(centre_ex, 1e-9)


def propose_profile_additions(result: dict, known_mask: np.ndarray | None = None) -> list[dict]:
    """Defects found by :func:`detect_batch` that a profile lacks, as entries to add.

    ``known_mask`` (H, W) bool marks sites the profile already holds. Each entry:
    ``{"y", "x", "excess_dn", "frames_hit", "mean_sigma"}``. Writing the profile is not done here.
    """
    out = []
    for (y, x), ex, fh, mz in zip(result["sites"].tolist(), result["excess_dn"].tolist(),
                                  result["frames_hit"].tolist(), result["mean_sigma"].tolist()):
        if known_mask is not None and known_mask[y, x]:
            continue
        out.append({"y": int(y), "x": int(x), "excess_dn": float(ex), "frames_hit": int(fh), "mean_sigma": float(mz)})
    return out
