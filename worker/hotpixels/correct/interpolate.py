"""Edge-aware interpolation of single CFA sites from same-colour neighbours (stages 2 and 3).

For each site we look at *pairs* of same-colour neighbours on (nearly) opposite sides of it,
take the linear interpolation along each pair, and weight the pairs by how well their two ends
agree: on an edge, the pair running along the edge agrees and dominates, pairs across the edge
disagree and fade out, so edges and star flanks are not smeared. A plain mean of neighbours
would blur a vertical edge into a step of half the contrast.

Neighbour tables come from :class:`hotpixels.dng.cfa.CfaPattern` (anchored at the ActiveArea):

* Bayer: ``opposite_pairs(phase, 2)``; red/blue get the 4 pairs (0,±2), (±2,0), (±2,±2); a green
  gets 6, including the diagonals (±1,±1), which belong to the other green sub-grid.
* X-Trans: greens have exact opposite pairs within radius 2; red/blue have none there, so their
  pairs are *near-opposite* offsets within radius 3 (angle between the two ends >= ~154°), and
  the estimate is the linear interpolation at the site, ``(|d2| a + |d1| b) / (|d1| + |d2|)``.
* Every table is completed so that each orientation (row, column, both diagonals) has a pair on
  its line through the site (nearest same-colour site on each side, within radius 6): an edge of
  any of these orientations through a site always has a pair running along it. (X-Trans greens
  have no row/column pair within radius 2, X-Trans red/blue none within 3.)

Weights: with ``g_p = |a_p - b_p|`` (DN) the disagreement of pair p and ``g_min`` the smallest
disagreement among the usable pairs of that site (a self-scaled noise level),
``w_p = 1 / ((g_p + g_min + 1 DN)^2 · dist_p)``. A neighbour that is itself an undetected hot
pixel makes its pair disagree and drop out too.

Bad neighbours: a neighbour is skipped when it is outside the frame (or ``bounds``), flagged in
``bad_mask``, or is one of the sites being interpolated (so adjacent pairs and small clusters do
not feed each other). A pair is usable only when both ends are good. Fallbacks, per site, in
order: the base pair table; a wider one (radius + 2); the median of the good single same-colour
neighbours within radius 4 (frame corners, big clusters); and, with nothing usable, the site
keeps its value.

Values are DN as stored (black level not subtracted: interpolation is linear, the black level of
one colour plane is the same on both ends). With ``white_level_dn`` the result is clipped to
``[0, white_level_dn]``; saturated neighbours are used as they are (a hot pixel on a saturated
star core becomes saturated, which is what the star would have recorded).
"""

from __future__ import annotations

import numpy as np

from ..dng.cfa import CfaPattern
from ..parallel import map_chunks
from .sitestats import PARALLEL_SITES, nanmedian_rows

# near-opposite: cos(angle between the two offsets) at most this (about 154°)
NEAR_OPPOSITE_COS = -0.9
MIN_PAIRS = 4
EXTRA_RADIUS = 2
LINE_RADIUS = 6
ORIENTATIONS = ((0, 1), (1, 0), (1, 1), (1, -1))  # (dy, dx): row, column, two diagonals
SINGLE_RADIUS = 4

_TABLES: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def interpolate_sites(
    cfa_dn: np.ndarray,
    cfa: CfaPattern,
    sites_yx: np.ndarray,
    bad_mask: np.ndarray | None = None,
    white_level_dn: float | None = None,
    *,
    bounds: tuple[int, int, int, int] | None = None,
    exclude_yx: np.ndarray | None = None,
) -> np.ndarray:
    """Interpolated value in DN (float64, shape (N,)) for each full-frame site ``sites_yx`` (N, 2).

    ``cfa_dn`` (H, W) is the full raw frame; ``bad_mask`` (H, W) bool marks other pixels not to use
    as neighbours (the sites themselves are always excluded); ``bounds`` (top, left, bottom,
    right) restricts neighbours to a rectangle, e.g. the ActiveArea (default: the whole frame);
    ``exclude_yx`` (M, 2) lists more sites never used as neighbours (a sparse alternative to
    ``bad_mask``, e.g. every known hot pixel of a profile). The input array is not modified.
    """
    sites = np.asarray(sites_yx, dtype=np.int64).reshape(-1, 2)
    out = np.empty(len(sites), dtype=np.float64)
    if len(sites) == 0:
        return out
    h, w = cfa_dn.shape
    box = tuple(int(v) for v in (bounds if bounds is not None else (0, 0, h, w)))
    excluded = sites if exclude_yx is None else np.concatenate([sites, np.asarray(exclude_yx, np.int64).reshape(-1, 2)])
    site_lin = np.sort(excluded[:, 0] * w + excluded[:, 1])  # duplicates are harmless
    lookup = _NeighbourLookup(cfa_dn, box, bad_mask, site_lin)

    py, px = cfa.phase_of(sites[:, 0], sites[:, 1])
    flat = py * cfa.repeat[1] + px

    def one_phase(phase_flat: int) -> None:  # writes only this phase's sites: phases run on threads
        idx = np.nonzero(flat == phase_flat)[0]
        phase = divmod(phase_flat, cfa.repeat[1])
        out[idx] = _interpolate_phase(lookup, cfa, phase, sites[idx], cfa_dn)

    phases = [int(p) for p in np.flatnonzero(np.bincount(flat.ravel()))]
    map_chunks(one_phase, phases, None if len(sites) >= PARALLEL_SITES else 1)  # few sites: not worth threads
    if white_level_dn is not None:
        np.clip(out, 0.0, float(white_level_dn), out=out)
    return out


class _NeighbourLookup:
    """Gathers neighbour values and tells whether each is usable (inside, not bad, not a site)."""

    def __init__(self, cfa_dn, box, bad_mask, site_lin):
        self.cfa_dn = cfa_dn
        self.box = box
        self.bad_mask = bad_mask
        self.site_lin = site_lin
        self.width = cfa_dn.shape[1]

    def gather(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values float64, good bool) for neighbour coordinate arrays of any equal shape."""
        top, left, bottom, right = self.box
        good = (ys >= top) & (ys < bottom) & (xs >= left) & (xs < right)
        yc = np.clip(ys, top, bottom - 1)
        xc = np.clip(xs, left, right - 1)
        values = self.cfa_dn[yc, xc].astype(np.float64)
        if self.bad_mask is not None:
            good &= ~self.bad_mask[yc, xc]
        lin = yc * self.width + xc
        pos = np.minimum(np.searchsorted(self.site_lin, lin), len(self.site_lin) - 1)
        good &= self.site_lin[pos] != lin
        return values, good


def _interpolate_phase(lookup: _NeighbourLookup, cfa: CfaPattern, phase, sites, cfa_dn) -> np.ndarray:
    ys, xs = sites[:, 0], sites[:, 1]
    result = np.full(len(sites), np.nan)
    for level in (0, 1):
        todo = np.isnan(result)
        if not todo.any():
            break
        result[todo] = _pair_estimate(lookup, _pair_table(cfa, phase, level), ys[todo], xs[todo])
    todo = np.isnan(result)
    if todo.any():
        offsets = cfa.same_color_offsets(phase, SINGLE_RADIUS)
        vals, good = lookup.gather(ys[todo, None] + offsets[None, :, 0], xs[todo, None] + offsets[None, :, 1])
        vals[~good] = np.nan
        with np.errstate(all="ignore"):
            single = nanmedian_rows(vals)
        result[todo] = single
    todo = np.isnan(result)
    result[todo] = cfa_dn[ys[todo], xs[todo]]
    return result


def _pair_estimate(lookup: _NeighbourLookup, table, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Agreement-weighted pair interpolation; NaN where a site has no usable pair."""
    d1, d2, dist = table
    a, good_a = lookup.gather(ys[:, None] + d1[None, :, 0], xs[:, None] + d1[None, :, 1])
    b, good_b = lookup.gather(ys[:, None] + d2[None, :, 0], xs[:, None] + d2[None, :, 1])
    usable = good_a & good_b
    n1 = np.hypot(d1[:, 0], d1[:, 1])[None, :]
    n2 = np.hypot(d2[:, 0], d2[:, 1])[None, :]
    estimate = (n2 * a + n1 * b) / (n1 + n2)
    disagreement = np.abs(a - b)
    disagreement[~usable] = np.inf
    g_min = disagreement.min(axis=1, keepdims=True)
    any_usable = np.isfinite(g_min[:, 0])
    g_min[~any_usable] = 0.0
    weight = 1.0 / ((disagreement + g_min + 1.0) ** 2 * dist[None, :])
    weight[~usable] = 0.0
    total = weight.sum(axis=1)
    out = np.full(len(ys), np.nan)
    estimate[~usable] = 0.0
    out[any_usable] = (weight * estimate).sum(axis=1)[any_usable] / total[any_usable]
    return out


def _pair_table(cfa: CfaPattern, phase, level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d1 (P, 2), d2 (P, 2), mean distance (P,)) of the pairs of one phase at fallback ``level``.

    Level 0 is the base table, level 1 the wider one. A phase with at least ``MIN_PAIRS`` exact
    opposite pairs within radius 2 (Bayer, X-Trans green) uses ``opposite_pairs`` at radius 2
    (then 4); otherwise (X-Trans red/blue) near-opposite pairs within radius 3 (then 5). Both are
    completed so that each of the four orientations (row, column, two diagonals) has a pair lying
    on it (the nearest same-colour site on each side, up to ``LINE_RADIUS``): an edge in any of
    these orientations then has a pair running along it.
    """
    key = (cfa.pattern, tuple(int(v) for v in phase), level)
    if key not in _TABLES:
        if len(cfa.opposite_pairs(phase, 2)) >= MIN_PAIRS:
            exact = cfa.opposite_pairs(phase, 2 + EXTRA_RADIUS * level)
            d1, d2 = exact[:, 0, :], exact[:, 1, :]
        else:
            d1, d2 = _near_opposite(cfa.same_color_offsets(phase, 3 + EXTRA_RADIUS * level))
        l1, l2 = _line_pairs(cfa.same_color_offsets(phase, LINE_RADIUS), d1, d2)
        d1, d2 = _unique_pairs(np.concatenate([d1, l1]), np.concatenate([d2, l2]))
        dist = (np.hypot(d1[:, 0], d1[:, 1]) + np.hypot(d2[:, 0], d2[:, 1])) / 2.0
        _TABLES[key] = (d1.astype(np.int64), d2.astype(np.int64), dist.astype(np.float64))
    return _TABLES[key]


def _line_pairs(offsets: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each orientation without a pair on its line in (d1, d2): the nearest same-colour
    offset on each side of the site along that line, as one more pair."""
    firsts, seconds = [], []
    for uy, ux in ORIENTATIONS:
        def on_line(d):
            return d[:, 0] * ux - d[:, 1] * uy == 0

        if len(d1) and np.any(on_line(d1) & on_line(d2)):
            continue
        line = offsets[on_line(offsets)]
        along = line[:, 0] * uy + line[:, 1] * ux
        pos, neg = line[along > 0], line[along < 0]
        if len(pos) and len(neg):
            firsts.append(pos[np.argmin(np.abs(pos).max(axis=1))])
            seconds.append(neg[np.argmin(np.abs(neg).max(axis=1))])
    return np.array(firsts, dtype=np.int64).reshape(-1, 2), np.array(seconds, dtype=np.int64).reshape(-1, 2)


def _unique_pairs(d1: np.ndarray, d2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = np.concatenate([d1, d2], axis=1)
    _, first = np.unique(both, axis=0, return_index=True)
    keep = np.sort(first)
    return d1[keep], d2[keep]


def _near_opposite(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    o = offsets.astype(np.float64)
    if len(o) < 2:
        empty = np.zeros((0, 2), dtype=np.int64)
        return empty, empty
    n = np.hypot(o[:, 0], o[:, 1])
    cos = (o @ o.T) / np.outer(n, n)
    i, j = np.nonzero(np.triu(cos <= NEAR_OPPOSITE_COS, k=1))
    return offsets[i], offsets[j]
