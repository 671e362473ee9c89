"""Same-colour neighbourhoods of a CFA frame: local background and the one σ of the design.

Every statistic here looks only at sites of the same CFA *plane* (``CfaPattern.plane_of_phase``:
the four Bayer phases, or the three X-Trans colours), so a red site is compared with red sites
only and the two Bayer greens stay apart. Arrays are full raw-IFD frames (y, x); the CFA is
anchored at ``cfa.origin_yx`` (the ActiveArea's top-left).

σ (docs/architecture.md, "Conventions") is the robust noise at a site in DN from same-colour neighbours,
MAD x 1.4826.
"""

from __future__ import annotations

import numpy as np

from ..dng.cfa import CfaPattern

MAD_TO_SIGMA = 1.4826
NEIGHBOUR_RADIUS_PX = 2  # Chebyshev radius of the same-plane ring: 8 sites on Bayer, 5-12 on X-Trans


def robust_sigma(values: np.ndarray) -> float:
    """MAD x 1.4826 of a 1-D sample, in the sample's unit (0.0 for an empty sample)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return 0.0
    return float(MAD_TO_SIGMA * np.median(np.abs(v - np.median(v))))


def same_plane_offsets(cfa: CfaPattern, phase: tuple[int, int], radius: int = NEIGHBOUR_RADIUS_PX) -> np.ndarray:
    """(K, 2) offsets (dy, dx) within ``radius`` whose site lies on the same plane as ``phase``.

    ``same_color_offsets`` includes the other green sub-grid for a Bayer green; a plane excludes it
    (Gr and Gb can differ in gain and black offset on real sensors).
    """
    rows, cols = cfa.repeat
    plane = cfa.plane_of_phase[phase[0] % rows, phase[1] % cols]
    offs = cfa.same_color_offsets(phase, radius)
    keep = [cfa.plane_of_phase[(phase[0] + dy) % rows, (phase[1] + dx) % cols] == plane for dy, dx in offs.tolist()]
    return offs[np.array(keep, dtype=bool)] if len(offs) else offs


# Batcher's odd-even merge sorting network for 8 inputs (19 compare-exchanges): the median of the
# 8 Bayer same-plane neighbours as whole-array min/max operations, ~5x faster than np.median.
_SORT8 = ((0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7), (0, 1), (2, 3), (4, 5), (6, 7),
          (2, 4), (3, 5), (1, 4), (3, 6), (1, 2), (3, 4), (5, 6))


def median_of_stack(stack: np.ndarray) -> np.ndarray:
    """Median along axis 0 of a (K, ...) float32 stack (a sorting network for K = 8)."""
    if len(stack) != 8:
        return np.median(stack, axis=0)
    v = list(stack)
    for i, j in _SORT8:
        lo = np.minimum(v[i], v[j])
        np.maximum(v[i], v[j], out=v[j])
        v[i] = lo
    return 0.5 * (v[3] + v[4])


def phase_preserving_index(start: int, stop: int, n: int, period: int) -> np.ndarray:
    """Indices for positions ``start..stop-1`` of an axis of length ``n``, folded inside [0, n).

    Outside the frame a position moves by whole CFA periods, so a padded site keeps its colour
    (mirror padding would swap colours at the edge).
    """
    idx = np.arange(start, stop, dtype=np.int64)
    low = idx < 0
    idx[low] += period * (-(idx[low] // period))
    high = idx >= n
    idx[high] -= period * ((idx[high] - n) // period + 1)
    return np.clip(idx, 0, n - 1)


def phase_views(cfa: CfaPattern, y0: int, y1: int, width: int):
    """Yield ``(phase, rows, cols)``: the full-frame sites of each phase inside rows [y0, y1).

    ``rows`` and ``cols`` are slices in full-frame coordinates with the CFA's stride.
    """
    nr, nc = cfa.repeat
    oy, ox = cfa.origin_yx
    for py in range(nr):
        for px in range(nc):
            first_y = y0 + ((oy + py - y0) % nr)
            first_x = (ox + px) % nc
            if first_y < y1 and first_x < width:
                yield (py, px), slice(first_y, y1, nr), slice(first_x, width, nc)


def local_background(arr: np.ndarray, cfa: CfaPattern, *, radius: int = NEIGHBOUR_RADIUS_PX,
                     rows_per_block: int = 256) -> np.ndarray:
    """(H, W) float32: median of each site's same-plane neighbours within ``radius`` (DN).

    Computed in row blocks (a halo of ``radius`` rows) so that the temporary neighbour stack stays
    at ``K x rows_per_block x W`` floats. The site itself is excluded, so a hot pixel does not
    raise its own background; a hot neighbour moves a median of 8 only slightly.
    """
    h, w = arr.shape
    nr, nc = cfa.repeat
    out = np.empty((h, w), dtype=np.float32)
    cols_idx = phase_preserving_index(-radius, w + radius, w, nc)
    for y0 in range(0, h, rows_per_block):
        y1 = min(h, y0 + rows_per_block)
        rows_idx = phase_preserving_index(y0 - radius, y1 + radius, h, nr)
        padded = arr[rows_idx][:, cols_idx].astype(np.float32, copy=False)
        for phase, rs, cs in phase_views(cfa, y0, y1, w):
            offs = same_plane_offsets(cfa, phase, radius)
            ny = len(range(rs.start, y1, nr))
            nx = len(range(cs.start, w, nc))
            py0 = rs.start - y0 + radius
            px0 = cs.start + radius
            stack = np.empty((len(offs), ny, nx), dtype=np.float32)
            for k, (dy, dx) in enumerate(offs.tolist()):
                stack[k] = padded[py0 + dy: py0 + dy + (ny - 1) * nr + 1: nr, px0 + dx: px0 + dx + (nx - 1) * nc + 1: nc]
            out[rs, cs] = median_of_stack(stack)
    _border_background(arr, cfa, radius, out)
    return out


def _border_background(arr: np.ndarray, cfa: CfaPattern, radius: int, out: np.ndarray) -> None:
    """Redo the sites within ``radius`` of the frame edge with their in-frame neighbours only.

    The padded pass moves out-of-frame neighbours inward by whole CFA periods (6 px on X-Trans):
    in a steep amp-glow corner those read lower and would make the corner look hot. Where fewer
    than ``MIN_EDGE_NEIGHBOURS`` same-plane neighbours lie in the frame (an X-Trans red or blue
    site in a corner), one hot neighbour would carry the median: those sites take the ring one
    CFA period wider.
    """
    h, w = arr.shape
    edge = np.zeros((h, w), bool)
    edge[:radius], edge[-radius:], edge[:, :radius], edge[:, -radius:] = True, True, True, True
    ys, xs = np.nonzero(edge)
    py, px = cfa.phase_of(ys, xs)
    for phase in {(int(a), int(b)) for a, b in zip(py, px)}:
        sel = (py == phase[0]) & (px == phase[1])
        y, x = ys[sel], xs[sel]
        near, count = _in_frame_median(arr, y, x, same_plane_offsets(cfa, phase, radius))
        wide, _ = _in_frame_median(arr, y, x, same_plane_offsets(cfa, phase, radius + max(cfa.repeat)))
        out[y, x] = np.where(count >= MIN_EDGE_NEIGHBOURS, near, wide)


MIN_EDGE_NEIGHBOURS = 3


def _in_frame_median(arr: np.ndarray, y: np.ndarray, x: np.ndarray, offs: np.ndarray):
    """(median, count) of the in-frame neighbours ``(y, x) + offs`` of each site."""
    h, w = arr.shape
    ny, nx = y[None, :] + offs[:, :1], x[None, :] + offs[:, 1:]
    inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
    vals = np.where(inside, arr[np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)], np.nan).astype(np.float32)
    count = inside.sum(axis=0)
    med = np.full(len(y), np.nan, np.float32)
    some = count > 0
    med[some] = np.nanmedian(vals[:, some], axis=0)
    return med, count


def plane_noise_sigma(frame: np.ndarray, cfa: CfaPattern, active_area: tuple[int, int, int, int],
                      row_step: int = 1) -> np.ndarray:
    """(n_planes,) σ of ONE frame per plane, DN: robust noise from same-plane neighbours.

    For every phase view of the ActiveArea, ``d = v - (left + right) / 2`` with ``left``/``right``
    the nearest same-phase sites on the row; for independent noise ``var(d) = 1.5 σ²``, so
    ``σ = MAD(d) x 1.4826 / sqrt(1.5)``. A smooth gradient (amp glow) cancels in the second
    difference; hot pixels are outliers the MAD ignores. ``row_step`` > 1 subsamples rows (speed
    on 24 MP frames; the MAD of millions of sites does not need them all).
    """
    t, l, b, r = active_area
    crop = frame[t:b, l:r]
    local = cfa.with_origin((0, 0))
    diffs: list[list[np.ndarray]] = [[] for _ in range(cfa.n_planes)]
    for phase, rs, cs in phase_views(local, 0, crop.shape[0], crop.shape[1]):
        view = crop[rs, cs][::row_step].astype(np.float32)
        if view.shape[1] < 3:
            continue
        d = view[:, 1:-1] - 0.5 * (view[:, :-2] + view[:, 2:])
        diffs[int(cfa.plane_of_phase[phase])].append(d.ravel())
    out = np.zeros(cfa.n_planes, dtype=np.float32)
    for p, parts in enumerate(diffs):
        if parts:
            out[p] = robust_sigma(np.concatenate(parts)) / np.sqrt(1.5)
    return out
