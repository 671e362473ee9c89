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

from ..correct.candidates import NoiseModel
from ..dng.cfa import CfaPattern

PATCH = 9
HALF = PATCH // 2
N_CHANNELS = 6
SHAPE_CLIP = (-1.0, 1.5)


def _fold(coord: np.ndarray, lo: int, hi: int, period: int) -> np.ndarray:
    """Move coordinates outside [lo, hi) inside by whole periods (keeps the CFA colour)."""
    span = max(period, ((hi - lo) // period) * period)
    c = np.where(coord < lo, coord + period * ((lo - coord + period - 1) // period), coord)
    c = np.where(c >= hi, c - period * ((c - hi) // period + 1), c)
    return np.clip(c, lo, lo + span - 1 if c.size else lo)


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
    """(N, N_CHANNELS, PATCH, PATCH) float32 network input for full-frame sites ``sites_yx`` (N, 2)."""
    sites = np.asarray(sites_yx, dtype=np.int64).reshape(-1, 2)
    n = len(sites)
    if n == 0:
        return torch.zeros((0, N_CHANNELS, PATCH, PATCH), dtype=torch.float32)
    ys, xs = patch_coords(cfa, sites, active_area)
    vals = torch.from_numpy(cfa_dn[ys, xs].astype(np.float32)).reshape(n, -1)
    colour = torch.from_numpy(cfa.color_at(ys, xs).astype(np.int64)).reshape(n, -1)
    black = _black_values(black_level_dn, ys, xs).reshape(n, -1)
    return features_from_values(vals, colour, black, noise, white_level_dn)


def _black_values(black_level_dn, ys: np.ndarray, xs: np.ndarray) -> torch.Tensor:
    b = np.asarray(black_level_dn, dtype=np.float32)
    if b.ndim == 2 and b.size > 64:
        return torch.from_numpy(b[ys, xs])
    return torch.full(ys.shape, float(b.mean()) if b.size else 0.0)


def features_from_values(vals: torch.Tensor, colour: torch.Tensor, black: torch.Tensor, noise: NoiseModel,
                         white_level_dn: float) -> torch.Tensor:
    """The channels of the module docstring from flat (N, PATCH²) values, colours and black levels."""
    n, p2 = vals.shape
    centre = p2 // 2
    not_centre = torch.ones(p2, dtype=torch.bool)
    not_centre[centre] = False
    bg = torch.zeros_like(vals)
    for c in range(3):
        sel = (colour == c) & not_centre[None, :]
        masked = torch.where(sel, vals, torch.tensor(float("nan")))
        med = torch.nanmedian(masked, dim=1).values  # NaN when the colour is absent from the patch
        med = torch.where(torch.isnan(med), torch.zeros_like(med), med)
        bg = torch.where(colour == c, med[:, None], bg)
    sigma = noise.sigma_dn(bg - black)
    excess = vals - bg
    z = excess / sigma
    peak = torch.maximum(excess[:, centre], sigma[:, centre])
    shape = torch.clamp(excess / peak[:, None], *SHAPE_CLIP)
    near_white = (vals >= black + 0.98 * (white_level_dn - black)).float()
    onehot = torch.nn.functional.one_hot(colour, 3).float()
    feats = torch.cat([torch.asinh(z / 2.0)[..., None], shape[..., None], onehot, near_white[..., None]], dim=-1)
    return feats.reshape(n, PATCH, PATCH, N_CHANNELS).permute(0, 3, 1, 2).contiguous()
