"""The same-colour ring of a few sites, partial at the edge of a rectangle (the ActiveArea).

Stage 3's ring (:func:`hotpixels.candidates.ring_offsets`: the same-colour sites within 2 px) is
whole only 2 px or more inside the image. At the edge the members that lie outside ``bounds``
(top, left, bottom, right; full frame) are left out and the statistics use those that exist (at
least 3 on Bayer and 1 on X-Trans, at a corner), as the interpolation does
(:mod:`hotpixels.correct.interpolate`). Inside, the values equal the whole ring's. Per-site code
for lists of sites (learned sites, the edge band of a learning set), not for whole frames.
"""

from __future__ import annotations

import numpy as np

from .candidates import ring_offsets
from .dng.cfa import CfaPattern

MAD_TO_SIGMA = 1.4826


def ring_members_at(cfa: CfaPattern, yx: np.ndarray, bounds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ys, xs, valid)``, each (N, K): the ring members of each site (K the largest ring of the
    pattern; unused slots and members outside ``bounds`` are not ``valid`` and point at the site)."""
    yx = np.asarray(yx, np.int64).reshape(-1, 2)
    t, l, b, r = (int(v) for v in bounds)
    py, px = cfa.phase_of(yx[:, 0], yx[:, 1])
    phases = sorted(set(zip(np.asarray(py).tolist(), np.asarray(px).tolist())))
    offs = {ph: ring_offsets(cfa, ph) for ph in phases}
    k = max((len(o) for o in offs.values()), default=0)
    ys = np.repeat(yx[:, :1], k, axis=1)
    xs = np.repeat(yx[:, 1:], k, axis=1)
    valid = np.zeros((len(yx), k), bool)
    for ph in phases:
        sel = np.nonzero((py == ph[0]) & (px == ph[1]))[0]
        o = offs[ph]
        ys[sel, :len(o)] += o[None, :, 0]
        xs[sel, :len(o)] += o[None, :, 1]
        valid[sel, :len(o)] = True
    valid &= (ys >= t) & (ys < b) & (xs >= l) & (xs < r)
    ys[~valid] = np.repeat(yx[:, :1], k, axis=1)[~valid]
    xs[~valid] = np.repeat(yx[:, 1:], k, axis=1)[~valid]
    return ys, xs, valid


def ring_mean_max(frame: np.ndarray, members) -> tuple[np.ndarray, np.ndarray]:
    """Mean and maximum (float64, DN) of each site's existing ring members (``members`` from
    :func:`ring_members_at`)."""
    ys, xs, valid = members
    v = frame[ys, xs].astype(np.float64)
    n = np.maximum(valid.sum(axis=1), 1)
    mean = np.where(valid, v, 0.0).sum(axis=1) / n
    peak = np.where(valid, v, -np.inf).max(axis=1, initial=-np.inf)
    return mean, peak


def ring_robust_sd(frame: np.ndarray, members) -> np.ndarray:
    """Robust σ (MAD x 1.4826, DN) of each site's existing ring members: noise plus texture."""
    ys, xs, valid = members
    some = valid.any(axis=1)  # every site inside the bounds has one at least; 0 where none
    v = np.where(valid[some], frame[ys[some], xs[some]].astype(np.float64), np.nan)
    out = np.zeros(len(valid))
    med = np.nanmedian(v, axis=1, keepdims=True)
    out[some] = MAD_TO_SIGMA * np.nanmedian(np.abs(v - med), axis=1)
    return out
