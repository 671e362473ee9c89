"""The CNN's input: a normalised full-resolution CFA patch around each candidate site.

A hot pixel is one bright site; a star, even a very sharp one (sigma 0.3-0.5 px, no AA filter),
spreads part of its light over the neighbouring sites of *other* colours, and a narrowband star
lights the same colour a little further out. So the network sees all colours of a
``PATCH x PATCH`` window (full resolution, not one colour plane) and is told the colour of every
position, which makes one network serve every Bayer phase and X-Trans.

Channels (``N_CHANNELS``), for each candidate, per patch position p of CFA colour c:

0. ``asinh(z / 2)`` with ``z = (v_p - bg_c) / σ_c``: excess over the colour's background in σ,
   softly compressed (hot pixels span 5 to thousands of σ). ``bg_c`` is the median of colour c in
   the patch without the centre; ``σ_c`` comes from the frame's noise model at ``bg_c``.
1. ``(v_p - bg_c) / max(v_centre - bg_centre, σ_centre)`` clipped to [-1, 1.5]: the shape,
   independent of brightness (a star's neighbours hold a fixed share of its peak).
2-4. one-hot colour (R, G, B).
5. near-white: the site is within 2 % of the white level (clipped star cores, saturated areas).

Patches near the ActiveArea edge fold out-of-area rows/columns back in by whole CFA repeats, so
every position keeps its true colour.
"""

from __future__ import annotations

import numpy as np
import torch

from ..correct.candidates import NoiseModel, mean_black
from ..dng.cfa import CfaPattern

PATCH = 9
HALF = PATCH // 2
N_CHANNELS = 6
SHAPE_CLIP = (-1.0, 1.5)


def _fold(coord: np.ndarray, lo: int, hi: int, period: int) -> np.ndarray:
    """Move coordinates outside [lo, hi) inside by whole periods (keeps the CFA colour)."""
    c = np.where(coord < lo, coord + period * ((lo - coord + period - 1) // period), coord)
    c = np.where(c >= hi, c - period * ((c - hi) // period + 1), c)
    return np.clip(c, lo, hi - 1)  # only an area narrower than one repeat could need this


def patch_coords(cfa: CfaPattern, sites_yx: np.ndarray, active_area) -> tuple[np.ndarray, np.ndarray]:
    """(N, PATCH, PATCH) full-frame row and column indices of each candidate's patch."""
    t, l, b, r = (int(v) for v in active_area)
    rows, cols = cfa.repeat
    d = np.arange(-HALF, HALF + 1)
    ys = sites_yx[:, 0, None, None] + d[None, :, None]
    xs = sites_yx[:, 1, None, None] + d[None, None, :]
    ys, xs = np.broadcast_arrays(_fold(ys, t, b, rows), _fold(xs, l, r, cols))
    return ys, xs


def patch_features(cfa_dn: np.ndarray, cfa: CfaPattern, sites_yx: np.ndarray, noise: NoiseModel, *,
                   active_area, black_level_dn=0.0, white_level_dn: float = 65535.0) -> torch.Tensor:
    """(N, N_CHANNELS, PATCH, PATCH) float32 network input for full-frame sites ``sites_yx`` (N, 2).

    Sites are processed in groups of one CFA phase, which share the colour layout of their patch,
    so per-colour medians are plain ``torch.median`` calls over fixed columns.
    """
    sites = np.asarray(sites_yx, dtype=np.int64).reshape(-1, 2)
    n = len(sites)
    out = torch.zeros((n, N_CHANNELS, PATCH, PATCH), dtype=torch.float32)
    if n == 0:
        return out
    ys, xs = patch_coords(cfa, sites, active_area)
    vals = torch.from_numpy(cfa_dn[ys, xs].astype(np.float32)).reshape(n, -1)
    black = mean_black(black_level_dn)
    py, px = cfa.phase_of(sites[:, 0], sites[:, 1])
    flat = py * cfa.repeat[1] + px
    for ph in np.unique(flat):
        idx = np.nonzero(flat == ph)[0]
        i0 = idx[0]
        colour = torch.from_numpy(cfa.color_at(ys[i0], xs[i0]).astype(np.int64).ravel())
        out[torch.from_numpy(idx)] = features_from_values(vals[idx], colour, black, noise, white_level_dn)
    return out


def features_from_values(vals: torch.Tensor, colour: torch.Tensor, black_dn: float, noise: NoiseModel,
                         white_level_dn: float) -> torch.Tensor:
    """The channels of the module docstring for (N, PATCH²) values sharing one colour layout (PATCH²,)."""
    n, p2 = vals.shape
    centre = p2 // 2
    bg = torch.zeros_like(vals)
    for c in range(3):
        where = colour == c
        cols = torch.nonzero(where & (torch.arange(p2) != centre)).ravel()
        if len(cols) == 0:
            continue
        med = vals[:, cols].median(dim=1).values
        bg[:, where] = med[:, None]
    sigma = noise.sigma_dn(bg - black_dn)
    excess = vals - bg
    z = excess / sigma
    peak = torch.maximum(excess[:, centre], sigma[:, centre])
    shape = torch.clamp(excess / peak[:, None], *SHAPE_CLIP)
    near_white = (vals >= black_dn + 0.98 * (white_level_dn - black_dn)).float()
    onehot = torch.nn.functional.one_hot(colour, 3).float()[None].expand(n, p2, 3)
    feats = torch.cat([torch.asinh(z / 2.0)[..., None], shape[..., None], onehot, near_white[..., None]], dim=-1)
    return feats.reshape(n, PATCH, PATCH, N_CHANNELS).permute(0, 3, 1, 2)
