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

numpy only (float32): the CLI and the frozen worker compute the features without torch; training
wraps them with ``torch.from_numpy``.
"""

from __future__ import annotations


import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..candidates import NoiseModel, mean_black
from ..dng.cfa import CfaPattern
from ..parallel import map_chunks

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
CHUNK = 4096  # candidates per chunk of features (about 8 MB of output, cache-friendly)


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


def _patch_values(cfa_dn: np.ndarray, cfa: CfaPattern, sites: np.ndarray, active_area) -> np.ndarray:
    """(N, PATCH²) float32 values of each site's patch (row-major), folded at the ActiveArea edge."""
    t, l, b, r = (int(v) for v in active_area)
    n = len(sites)
    vals = np.empty((n, PATCH * PATCH), dtype=np.float32)
    inner = ((sites[:, 0] >= t + HALF) & (sites[:, 0] < b - HALF)
             & (sites[:, 1] >= l + HALF) & (sites[:, 1] < r - HALF))
    if inner.any():  # patches inside the ActiveArea: a windowed view, PATCH contiguous values at a time
        s_y, s_x = cfa_dn.strides
        h, w = cfa_dn.shape
        windows = as_strided(cfa_dn, (h - PATCH + 1, w - PATCH + 1, PATCH, PATCH), (s_y, s_x, s_y, s_x),
                             writeable=False)
        vals[inner] = windows[sites[inner, 0] - HALF, sites[inner, 1] - HALF].reshape(-1, PATCH * PATCH)
    if not inner.all():  # patches that leave it fold back in by whole CFA repeats
        ys, xs = patch_coords(cfa, sites[~inner], active_area)
        vals[~inner] = cfa_dn[ys, xs].reshape(len(ys), -1)
    return vals


def patch_features(cfa_dn: np.ndarray, cfa: CfaPattern, sites_yx: np.ndarray, noise: NoiseModel, *,
                   active_area, black_level_dn=0.0, white_level_dn: float = 65535.0) -> np.ndarray:
    """(N, N_CHANNELS, PATCH, PATCH) float32 network input for full-frame sites ``sites_yx`` (N, 2).

    The sites go in cache-sized chunks (:data:`CHUNK`, spread over :data:`hotpixels.parallel.N_THREADS` threads: numpy
    releases the GIL); inside a chunk, sites of one CFA phase share the colour layout of their
    patch, so per-colour medians are plain partitions over fixed columns. The array is a
    channels-last buffer seen through a transpose (``x.transpose(0, 2, 3, 1)`` is contiguous).
    """
    sites = np.asarray(sites_yx, dtype=np.int64).reshape(-1, 2)
    n = len(sites)
    out = np.empty((n, PATCH, PATCH, N_CHANNELS), dtype=np.float32)
    black = mean_black(black_level_dn)

    def fill(a: int) -> None:
        _fill_chunk(out[a:a + CHUNK], cfa_dn, cfa, sites[a:a + CHUNK], noise, active_area, black, white_level_dn)

    map_chunks(fill, range(0, n, CHUNK))
    return out.transpose(0, 3, 1, 2)


def _fill_chunk(out: np.ndarray, cfa_dn: np.ndarray, cfa: CfaPattern, sites: np.ndarray, noise: NoiseModel,
                active_area, black_dn: float, white_level_dn: float) -> None:
    """Features of ``sites`` into ``out`` (len(sites), PATCH, PATCH, N_CHANNELS), phase group by phase group."""
    vals = _patch_values(cfa_dn, cfa, sites, active_area)
    py, px = cfa.phase_of(sites[:, 0], sites[:, 1])
    phase = py * cfa.repeat[1] + px
    d = np.arange(-HALF, HALF + 1)
    groups = np.unique(phase)
    for ph in groups:
        idx = np.nonzero(phase == ph)[0] if len(groups) > 1 else slice(None)
        y0, x0 = sites[idx][0]
        colour = cfa.color_at(y0 + d[:, None], x0 + d[None, :]).astype(np.int64).ravel()
        out[idx] = features_from_values(vals[idx], colour, black_dn, noise, white_level_dn)


def features_from_values(vals: np.ndarray, colour: np.ndarray, black_dn: float, noise: NoiseModel,
                         white_level_dn: float) -> np.ndarray:
    """(N, PATCH, PATCH, N_CHANNELS) channels of the module docstring for (N, PATCH²) float32 values
    sharing one colour layout ``colour`` (PATCH²,).

    ``bg_c`` is the *lower* median of the colour's other sites (an even count has two middle
    values: the smaller is taken, as the network was trained with).
    """
    n, p2 = vals.shape
    centre = p2 // 2
    bg3 = np.zeros((n, 3), dtype=np.float32)  # per colour: background, then its σ
    for c in range(3):
        cols = np.nonzero((colour == c) & (np.arange(p2) != centre))[0]
        if len(cols):
            k = (len(cols) - 1) // 2
            bg3[:, c] = np.partition(vals[:, cols], k, axis=1)[:, k]
    sigma3 = noise.sigma_dn(bg3 - np.float32(black_dn))
    excess = vals - bg3[:, colour]
    sigma_c = sigma3[:, colour[centre]]
    peak = np.maximum(excess[:, centre], sigma_c)
    template = np.zeros((p2, N_CHANNELS), dtype=np.float32)
    template[np.arange(p2), 2 + colour] = 1.0  # the one-hot colour channels, the same for every site
    feats = np.empty((n, p2, N_CHANNELS), dtype=np.float32)
    feats[:] = template  # whole rows at once: much faster than writing 3 strided channels
    feats[..., 0] = np.arcsinh((excess / sigma3[:, colour]) / np.float32(2.0))
    feats[..., 1] = np.clip(excess / peak[:, None], np.float32(SHAPE_CLIP[0]), np.float32(SHAPE_CLIP[1]))
    feats[..., 5] = vals >= np.float32(black_dn + 0.98 * (white_level_dn - black_dn))
    return feats.reshape(n, PATCH, PATCH, N_CHANNELS)


_D = np.arange(PATCH) - HALF
RING_POSITIONS = np.nonzero((np.maximum(np.abs(_D[:, None]), np.abs(_D[None, :])) == 2).ravel())[0]
CROSS_POSITIONS = np.array([(HALF - 1) * PATCH + HALF, (HALF + 1) * PATCH + HALF,
                            HALF * PATCH + HALF - 1, HALF * PATCH + HALF + 1])


def spill_measures(x: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate (of ``rows`` only, when given): (cross-colour spill, same-colour ring spill), both
    mean shape values (channel 1). Only the 20 positions involved are read."""
    rows = np.arange(len(x)) if rows is None else np.asarray(rows)
    c = HALF
    ring_y, ring_x = np.divmod(RING_POSITIONS, PATCH)
    cross_y, cross_x = np.divmod(CROSS_POSITIONS, PATCH)
    r = rows[:, None]
    cross = x[r, 1, cross_y, cross_x].sum(axis=1, dtype=np.float32) / np.float32(4.0)
    centre_colour = x[rows, 2:5, c, c].argmax(axis=1)
    same = x[r, 2 + centre_colour[:, None], ring_y, ring_x] > 0.5  # (N, ring): same colour as the centre
    total = np.where(same, x[r, 1, ring_y, ring_x], np.float32(0.0)).sum(axis=1, dtype=np.float32)
    ring_spill = total / np.maximum(same.sum(axis=1), 1).astype(np.float32)
    return cross, ring_spill


def frame_context(x: np.ndarray) -> np.ndarray:
    """(N, N_CONTEXT) float32 context of the module docstring for the (N, N_CHANNELS, P, P) candidates of one frame."""
    x = np.asarray(x)
    n = len(x)
    ctx = np.zeros((n, N_CONTEXT), dtype=np.float32)
    if n == 0:
        return ctx
    c = HALF
    z = np.float32(2.0) * np.sinh(x[:, 0, c, c])
    bright = (z >= BRIGHT_SIGMA) & (x[:, 5, c, c] < 0.5)
    nb = int(bright.sum())
    colour = x[:, 2:5, c, c].argmax(axis=1)
    if nb < MIN_BRIGHT:
        ctx[:, 0] = 1.0
        return ctx
    cross, ring = spill_measures(x, np.nonzero(bright)[0])
    ctx[:, 1:4] = np.quantile(cross, QUANTILES)[None]
    ctx[:, 4:7] = np.quantile(ring, QUANTILES)[None]
    resolved = ring >= RESOLVED_RING
    n_res = int(resolved.sum())
    ctx[:, 7] = float(np.log1p(n_res)) / 5.0
    if n_res:
        single = resolved & (cross < SINGLE_CROSS)
        ctx[:, 8] = float(single.sum()) / n_res
        per_colour = np.bincount(colour[bright][single], minlength=3).astype(np.float32) / n_res
        ctx[:, 9] = per_colour[colour]
    return ctx
