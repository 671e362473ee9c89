"""The master dark and each site's temporal behaviour, computed in row blocks (bounded memory).

Input: N dark frames of one body as (H, W) uint16 full raw frames (linearised DN, black not
subtracted). Output, per full-frame site:

* ``master_dn``: the robust per-site level. N < 5: the median of the N values. N >= 5: a
  sigma-clipped mean — values farther than ``clip_sigma`` x the site's spread from the median
  are dropped (a cosmic-ray hit in one dark), the rest averaged, which keeps an RTS site at its
  *average* level (the expected dark signal) where a median would pick one of its two levels.
  The spread is ``max(IQR / 1.349, σ_t)`` with σ_t the expected temporal noise (below).
* ``temporal_sigma_dn`` (only with ``keep_temporal_sigma``; the builder computes it at the listed
  sites alone with :func:`site_level`): standard deviation across the kept frames (shot noise of
  the dark signal plus read noise; stage 2 uses it to decide where subtraction cannot be trusted).
* ``unstable``: the site toggled between levels (random telegraph signal, "RTS") *within these
  darks*. The noise a stable site should show is modelled, not assumed: read noise plus shot noise
  of its own dark level, ``σ_t² = a + b · level`` (DN², :func:`temporal_noise_model`, fitted on the
  differences of two darks, where hot pixels and amp glow span a wide range of levels), so a hot
  or glowing site's larger spread is expected rather than taken for a toggle. Judged only where
  the values span more than ``rts_sigma`` x σ_t; there the N sorted values
  are split in two at every point and the best split is scored as
  ``(mean_high - mean_low) / sqrt(max(pooled within-group variance, σ_t²))``; a score >= ``rts_sigma``
  means two separate levels. A stable hot site with large shot noise scores about 2-4 (one
  Gaussian cloud), an RTS site scores its step over its noise. A single jump in one dark (a
  cosmic-ray hit) cannot be told from an RTS site that toggled once: it is flagged when it stands
  8σ out (``SINGLE_VALUE_FACTOR``), at the cost of one site interpolated instead of subtracted.
* ``saturated``: some dark reached the white level (minus a small margin): the site's dark value
  is unknown above that, so it can only be interpolated.

Frames are stacked ``rows_per_block`` rows at a time as (rows, W, N) so every reduction runs
along the contiguous last axis; the temporaries are a few times ``rows x W x N`` floats.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..dng.cfa import CfaPattern
from ..progress import check_cancel
from .neighbours import MAD_TO_SIGMA

MIN_FRAMES_FOR_CLIPPED_MEAN = 5
MIN_FRAMES_FOR_RTS = 3
# The RTS score is the best of N-1 splits of N values: a look-elsewhere effect that makes a 5σ
# score far likelier than a single 5σ value; 6σ keeps false "unstable" flags near 1e-6 per site.
RTS_SIGMA = 6.0
# A split that leaves one value alone is the maximum (or minimum) of N draws and meets the skewed
# shot-noise tail of glowing sites: it must stand SINGLE_VALUE_FACTOR x farther out (8σ).
SINGLE_VALUE_FACTOR = 4.0 / 3.0
BLOCK_BYTES = 16 * 2**20  # float32 bytes of one (rows, W, N) block


@dataclass
class StackResult:
    master_dn: np.ndarray  # (H, W) float32, DN, black level included
    temporal_sigma_dn: np.ndarray | None  # (H, W) float32, DN (keep_temporal_sigma only)
    unstable: np.ndarray  # (H, W) bool: toggled between levels within the darks (RTS)
    saturated: np.ndarray  # (H, W) bool: reached the white level in at least one dark
    method: str  # "median" or "sigma-clipped mean"


def rows_per_block(n_frames: int, width: int, repeat_rows: int) -> int:
    rows = max(repeat_rows, BLOCK_BYTES // max(1, 4 * n_frames * width))
    return max(repeat_rows, rows - rows % repeat_rows)


def temporal_noise_model(frame_a: np.ndarray, frame_b: np.ndarray, black_dn: np.ndarray,
                         white_level_dn: float, n_bins: int = 24) -> tuple[float, float]:
    """``(a, b)`` with the single-frame temporal variance ``σ_t² = a + b · level`` (DN², level in DN
    above black), from two darks: per level bin, ``σ² = (MAD(a - b) x 1.4826)² / 2``; weighted
    least squares over the bins. ``b`` (DN² per DN of dark signal) is the inverse gain in DN/e-.

    ``black_dn`` is the full-frame black level (or anything broadcastable to it).
    """
    step = max(1, int(np.sqrt(frame_a.size / 1e6)))  # ~1 million sites are plenty for the fit
    frame_a, frame_b = frame_a[::step, ::step], frame_b[::step, ::step]
    if np.ndim(black_dn) == 2:
        black_dn = black_dn[::step, ::step]
    level = (frame_a.astype(np.float32) + frame_b) * np.float32(0.5) - black_dn
    diff = frame_a.astype(np.float32) - frame_b
    ok = (level < 0.9 * (white_level_dn - np.max(black_dn))).ravel()
    level, diff = level.ravel()[ok], diff.ravel()[ok]
    hi = float(np.quantile(level, 0.9999)) if level.size else 1.0
    lo = float(np.quantile(level, 0.01)) if level.size else 0.0
    edges = np.unique(np.concatenate([np.linspace(lo, lo + 0.2 * (hi - lo) + 1e-3, n_bins // 2),
                                      np.geomspace(max(lo + 0.2 * (hi - lo), 1.0), max(hi, 2.0), n_bins // 2 + 1)]))
    which = np.digitize(level, edges)
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(len(edges) + 2))
    xs, vs, ws = [], [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi - lo < 30:
            continue
        d = diff[order[lo:hi]]
        xs.append(float(np.median(level[order[lo:hi]])))
        vs.append((MAD_TO_SIGMA * float(np.median(np.abs(d - np.median(d))))) ** 2 / 2)
        ws.append(np.sqrt(hi - lo))
    if len(xs) < 2:
        return (max(vs[0], 0.25) if vs else 1.0), 0.0
    x, v, w = np.array(xs), np.array(vs), np.array(ws) / np.maximum(np.array(vs), 1e-3)
    design = np.stack([np.ones_like(x), x], axis=1) * w[:, None]
    (a, b), *_ = np.linalg.lstsq(design, v * w, rcond=None)
    return max(float(a), 0.25), max(float(b), 0.0)


def stack_frames(frames: list[np.ndarray], cfa: CfaPattern, noise_model: tuple[float, float], black_plane_dn: np.ndarray,
                 white_level_dn: float, *, clip_sigma: float = 3.5, rts_sigma: float = RTS_SIGMA,
                 saturation_margin_dn: float | None = None, keep_temporal_sigma: bool = False,
                 cancel: threading.Event | None = None) -> StackResult:
    """Master dark, temporal spread, RTS and saturation masks of ``frames`` (see module docstring).

    ``noise_model`` is ``(a, b)`` of :func:`temporal_noise_model`; ``black_plane_dn`` the black
    level of each CFA plane (DN), to turn a site's median into its dark level.
    """
    n = len(frames)
    h, w = frames[0].shape
    margin = saturation_margin_dn if saturation_margin_dn is not None else max(2.0, 0.002 * float(white_level_dn))
    plane = cfa.plane_map((h, w))
    black_plane = np.asarray(black_plane_dn, dtype=np.float32)
    a, b = np.float32(noise_model[0]), np.float32(noise_model[1])
    master = np.empty((h, w), np.float32)
    tsigma = np.empty((h, w), np.float32) if keep_temporal_sigma else None
    unstable = np.zeros((h, w), bool)
    saturated = np.zeros((h, w), bool)
    step = rows_per_block(n, w, cfa.repeat[0])
    for y0 in range(0, h, step):
        check_cancel(cancel)
        y1 = min(h, y0 + step)
        block = np.stack([f[y0:y1] for f in frames], axis=-1).astype(np.float32)  # (rows, W, N)
        block.sort(axis=-1)
        median = 0.5 * (block[..., (n - 1) // 2] + block[..., n // 2])
        sig = np.sqrt(a + b * np.maximum(median - black_plane[plane[y0:y1]], 0))
        m, s = _robust_level(block, sig, clip_sigma)
        master[y0:y1] = m
        if tsigma is not None:
            tsigma[y0:y1] = s
        saturated[y0:y1] = block[..., -1] >= np.float32(white_level_dn - margin)
        if n >= MIN_FRAMES_FOR_RTS:
            unstable[y0:y1] = _two_level_sites(block, sig, rts_sigma)
    method = "sigma-clipped mean" if n >= MIN_FRAMES_FOR_CLIPPED_MEAN else "median"
    return StackResult(master, tsigma, unstable, saturated, method)


def site_level(values: np.ndarray, sig: np.ndarray, clip_sigma: float = 3.5) -> tuple[np.ndarray, np.ndarray]:
    """(level, spread) of K sites from their (K, N) values across the darks, as in the block pass."""
    block = np.sort(values.astype(np.float32), axis=-1)[None]
    level, spread = _robust_level(block, np.asarray(sig, np.float32)[None], clip_sigma)
    return level[0], spread[0]


def _robust_level(block: np.ndarray, sig: np.ndarray, clip_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(level, spread) per site of a sorted (rows, W, N) block.

    The values are sorted, so nothing is clipped unless the extremes lie outside the window: the
    plain mean and standard deviation (about the median, for float32 precision) serve every site,
    and the clipped statistics are recomputed only for the few sites with an outlier.
    """
    n = block.shape[-1]
    median = 0.5 * (block[..., (n - 1) // 2] + block[..., n // 2])
    if n < MIN_FRAMES_FOR_CLIPPED_MEAN:
        spread = block.std(axis=-1, ddof=1) if n > 1 else np.zeros_like(median)
        return median, spread
    q1 = block[..., int(round(0.25 * (n - 1)))]
    q3 = block[..., int(round(0.75 * (n - 1)))]
    width = np.maximum((q3 - q1) / np.float32(1.349), sig) * np.float32(clip_sigma)
    dev = block - median[..., None]
    s1 = dev.sum(axis=-1)
    s2 = np.einsum("...k,...k->...", dev, dev)
    mean = median + s1 / n
    spread = np.sqrt(np.maximum(s2 - s1 * s1 / n, 0) / (n - 1))
    outlier = (dev[..., 0] < -width) | (dev[..., -1] > width)
    if outlier.any():
        m, s = _clipped(block[outlier], median[outlier], width[outlier])
        mean[outlier] = m
        spread[outlier] = s
    return mean, spread


def _clipped(vals: np.ndarray, median: np.ndarray, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the values within ``median ± width`` (K, N) -> (K,), (K,)."""
    v = vals.astype(np.float64)
    keep = np.abs(v - median[:, None]) <= width[:, None]
    count = keep.sum(axis=-1)
    mean = np.where(keep, v, 0).sum(axis=-1) / count
    var = (np.where(keep, v - mean[:, None], 0) ** 2).sum(axis=-1) / np.maximum(count - 1, 1)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def _two_level_sites(block: np.ndarray, sig: np.ndarray, rts_sigma: float) -> np.ndarray:
    """(rows, W) bool: sorted values that split into two clearly separate levels (RTS)."""
    span = block[..., -1] - block[..., 0]
    cand = span > np.float32(rts_sigma) * sig
    out = np.zeros(cand.shape, bool)
    if not cand.any():
        return out
    vals = block[cand].astype(np.float64)
    out[cand] = two_level_score(vals, sig[cand].astype(np.float64)) >= rts_sigma
    return out


def two_level_score(sorted_vals: np.ndarray, sig: np.ndarray) -> np.ndarray:
    """(K,) best two-group separation of each row of sorted values (K, N), in units of noise.

    For every split point s the low group is the s smallest values; the score is the gap between
    the group means over the pooled within-group standard deviation (floored at ``sig``); a group
    of one value counts ``1 / SINGLE_VALUE_FACTOR`` of that.
    """
    k, n = sorted_vals.shape
    v = sorted_vals - sorted_vals[:, :1]
    c1 = np.cumsum(v, axis=1)
    c2 = np.cumsum(v * v, axis=1)
    s = np.arange(1, n, dtype=np.float64)
    lo_sum, lo_sq = c1[:, :-1], c2[:, :-1]
    hi_sum, hi_sq = c1[:, -1:] - lo_sum, c2[:, -1:] - lo_sq
    lo_mean, hi_mean = lo_sum / s, hi_sum / (n - s)
    within = (lo_sq - s * lo_mean**2 + hi_sq - (n - s) * hi_mean**2) / max(n - 2, 1)
    noise = np.sqrt(np.maximum(within, (sig**2)[:, None]))
    score = (hi_mean - lo_mean) / noise
    if n > 2:
        score[:, [0, -1]] /= SINGLE_VALUE_FACTOR
    return score.max(axis=1)
