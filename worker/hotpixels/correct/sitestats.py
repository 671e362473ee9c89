"""Local statistics of an image around a sparse set of sites: background and σ in DN.

For each site, the same-colour neighbours within a small radius (radius 2 for Bayer: 8 for red
and blue, 12 for green incl. the diagonal greens of the other sub-grid; radius 3 for X-Trans,
whose red and blue are sparse) give

* ``background_dn``: their median (DN as stored, black level included), the level the site would
  have without its own defect;
* ``sigma_dn``: the design's σ, MAD x 1.4826 of the same neighbours, floored at ``floor_dn``
  (a few neighbours give a noisy MAD; the profile's read noise is a safe lower bound).

Neighbours that are themselves listed sites (other known hot pixels), lie outside ``bounds`` or
are marked in ``bad_mask`` are left out. Vectorised: sites are grouped by CFA phase and their
neighbours gathered with fancy indexing; cost is O(N x K), independent of the frame size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dng.cfa import CfaPattern
from ..parallel import map_chunks

MAD_TO_SIGMA = 1.4826
MIN_NEIGHBOURS = 8
PARALLEL_SITES = 4096  # from this many sites the CFA phases are worked on threads


@dataclass
class SiteStats:
    background_dn: np.ndarray  # (N,) float64, median of same-colour neighbours
    sigma_dn: np.ndarray  # (N,) float64, robust σ (MAD x 1.4826), floored
    max_neighbour_dn: np.ndarray  # (N,) float64, brightest usable neighbour (saturation checks)
    n_neighbours: np.ndarray  # (N,) int, how many neighbours were usable


def neighbour_radius(cfa: CfaPattern, phase) -> int:
    """Smallest radius (>= 2) with at least ``MIN_NEIGHBOURS`` same-colour neighbours."""
    for radius in range(2, 6):
        if len(cfa.same_color_offsets(phase, radius)) >= MIN_NEIGHBOURS:
            return radius
    return 5


def site_stats(
    cfa_dn: np.ndarray,
    cfa: CfaPattern,
    sites_yx: np.ndarray,
    *,
    bounds: tuple[int, int, int, int] | None = None,
    floor_dn: np.ndarray | float = 0.0,
    bad_mask: np.ndarray | None = None,
) -> SiteStats:
    """Background and σ (DN) at each full-frame site of ``sites_yx`` (N, 2).

    ``floor_dn`` is a scalar or an (N,) array: the smallest σ reported (e.g. the profile's
    per-plane read noise). A site with no usable neighbour gets its own value as background and
    ``floor_dn`` as σ.
    """
    sites = np.asarray(sites_yx, dtype=np.int64).reshape(-1, 2)
    n = len(sites)
    h, w = cfa_dn.shape
    top, left, bottom, right = bounds if bounds is not None else (0, 0, h, w)
    site_lin = np.sort(sites[:, 0] * w + sites[:, 1])  # duplicates are harmless
    background = np.empty(n)
    sigma = np.empty(n)
    brightest = np.empty(n)
    count = np.zeros(n, dtype=np.int64)

    py, px = cfa.phase_of(sites[:, 0], sites[:, 1])
    flat = py * cfa.repeat[1] + px

    def one_phase(phase_flat: int) -> None:  # writes only this phase's sites: phases run on threads
        idx = np.nonzero(flat == phase_flat)[0]
        phase = divmod(int(phase_flat), cfa.repeat[1])
        offsets = cfa.same_color_offsets(phase, neighbour_radius(cfa, phase))
        ny = sites[idx, 0, None] + offsets[None, :, 0]
        nx = sites[idx, 1, None] + offsets[None, :, 1]
        good = (ny >= top) & (ny < bottom) & (nx >= left) & (nx < right)
        ny = np.clip(ny, top, bottom - 1)
        nx = np.clip(nx, left, right - 1)
        lin = ny * w + nx
        pos = np.minimum(np.searchsorted(site_lin, lin), len(site_lin) - 1)
        good &= site_lin[pos] != lin
        if bad_mask is not None:
            good &= ~bad_mask[ny, nx]
        values = cfa_dn[ny, nx].astype(np.float64)
        values[~good] = np.nan
        count[idx] = good.sum(axis=1)
        with np.errstate(all="ignore"):
            med = nanmedian_rows(values)
            mad = nanmedian_rows(np.abs(values - med[:, None]))
            top_value = np.where(good, values, -np.inf).max(axis=1)
        background[idx] = med
        sigma[idx] = MAD_TO_SIGMA * mad
        brightest[idx] = top_value

    phases = [int(p) for p in np.flatnonzero(np.bincount(flat.ravel()))] if n else []
    map_chunks(one_phase, phases, None if n >= PARALLEL_SITES else 1)  # few sites: not worth threads

    none = count == 0
    own = cfa_dn[sites[:, 0], sites[:, 1]].astype(np.float64)
    background[none] = own[none]
    brightest[none] = own[none]
    sigma = np.where(np.isnan(sigma), 0.0, sigma)
    sigma = np.maximum(sigma, np.broadcast_to(np.asarray(floor_dn, dtype=np.float64), sigma.shape))
    return SiteStats(background_dn=background, sigma_dn=sigma, max_neighbour_dn=brightest, n_neighbours=count)


def nanmedian_rows(values: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (NaN for an all-NaN row); a sort, much faster than
    ``np.nanmedian`` on many short rows."""
    srt = np.sort(values, axis=1)  # NaN sorts last
    count = np.sum(~np.isnan(values), axis=1)
    rows = np.arange(len(values))
    lo = np.maximum((count - 1) // 2, 0)
    hi = np.maximum(count // 2, 0)
    hi = np.minimum(hi, values.shape[1] - 1)
    med = (srt[rows, lo] + srt[rows, hi]) / 2.0
    med[count == 0] = np.nan
    return med
