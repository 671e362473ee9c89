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

**Frame context** (:func:`frame_context`, ``N_CONTEXT`` numbers per candidate). One patch cannot
tell a hot pixel from a star that is itself a single-site spike (a narrowband star on red sites, a
0.3 px star on a body without an AA filter); the frame can. Its bright candidates (>= ``BRIGHT_SIGMA``
over their colour's background, not near white) show how far this frame's stars spread light onto
touching sites of other colours and onto the same colour's ring; and its *resolved* stars (ring
spill >= ``RESOLVED_RING``) show whether stars light one colour only (narrowband, Hα) and which:

0. no information: fewer than ``MIN_BRIGHT`` bright candidates (everything else is then 0);
1-3. the 50/75/90 % quantiles of the *cross-colour spill* (mean shape value of the 4 orthogonally
   touching sites) over the bright candidates;
4-6. the same quantiles of the *ring spill* (mean shape value of the same-colour sites at
   Chebyshev distance 2);
7. ``log1p(resolved) / 5``: how many bright candidates are resolved stars;
8. the share of them that light one colour only (cross-colour spill < ``SINGLE_CROSS``);
9. the share of them that light one colour only, the candidate's own colour.

Hot pixels never count as resolved (their ring holds noise only), so how many hot pixels a frame
holds, and on which colours, does not move 7-9: a frame of a colour chart with a few hot pixels
that happen to fall on red is not taken for an Hα frame. The context is computed from the bright
candidates of the same call, so it does not depend on the amplitude gate (``BRIGHT_SIGMA`` is above
every gate) and needs no second pass over the frame.
"""

from __future__ import annotations

import numpy as np
import torch

from ..candidates import NoiseModel, mean_black
from ..dng.cfa import CfaPattern

PATCH = 9
HALF = PATCH // 2
N_CHANNELS = 6
SHAPE_CLIP = (-1.0, 1.5)
N_CONTEXT = 10
BRIGHT_SIGMA = 10.0
MIN_BRIGHT = 5
RESOLVED_RING = 0.1  # ring spill of a resolved star (a 10 σ hot pixel's ring holds 0.035 of noise)
SINGLE_CROSS = 0.08  # cross-colour spill under which a resolved star lights one colour only
QUANTILES = (0.5, 0.75, 0.9)


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


def _ring_mask() -> torch.Tensor:
    d = torch.arange(PATCH) - HALF
    return (torch.maximum(d[:, None].abs(), d[None, :].abs()) == 2)


def spill_measures(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per candidate: (cross-colour spill, same-colour ring spill), both mean shape values (channel 1)."""
    shape = x[:, 1]
    c = HALF
    cross = (shape[:, c - 1, c] + shape[:, c + 1, c] + shape[:, c, c - 1] + shape[:, c, c + 1]) / 4.0
    onehot = x[:, 2:5]
    same = (onehot * onehot[:, :, c:c + 1, c:c + 1]).sum(dim=1) > 0.5  # (N, P, P) same colour as the centre
    ring = same & _ring_mask()[None]
    ring_spill = (shape * ring).sum(dim=(1, 2)) / ring.sum(dim=(1, 2)).clamp(min=1)
    return cross, ring_spill


def frame_context(x: torch.Tensor) -> torch.Tensor:
    """(N, N_CONTEXT) context of the module docstring for the (N, N_CHANNELS, P, P) candidates of one frame."""
    n = len(x)
    ctx = torch.zeros((n, N_CONTEXT), dtype=torch.float32)
    if n == 0:
        return ctx
    c = HALF
    z = 2.0 * torch.sinh(x[:, 0, c, c])
    bright = (z >= BRIGHT_SIGMA) & (x[:, 5, c, c] < 0.5)
    nb = int(bright.sum())
    colour = x[:, 2:5, c, c].argmax(dim=1)
    if nb < MIN_BRIGHT:
        ctx[:, 0] = 1.0
        return ctx
    cross, ring = spill_measures(x[bright])
    q = torch.tensor(QUANTILES)
    ctx[:, 1:4] = torch.quantile(cross, q)[None]
    ctx[:, 4:7] = torch.quantile(ring, q)[None]
    resolved = ring >= RESOLVED_RING
    n_res = int(resolved.sum())
    ctx[:, 7] = float(np.log1p(n_res)) / 5.0
    if n_res:
        single = resolved & (cross < SINGLE_CROSS)
        ctx[:, 8] = float(single.sum()) / n_res
        per_colour = torch.bincount(colour[bright][single], minlength=3).float() / n_res
        ctx[:, 9] = per_colour[colour]
    return ctx
