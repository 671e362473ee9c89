"""Stage 3, step 1: a noise model of the frame and the candidate sites that stand out from their ring.

Both are needed by the single-frame detector (:mod:`hotpixels.correct.residual`), the batch
detector (:mod:`hotpixels.correct.batch`), the classifier's features (:mod:`hotpixels.model.features`)
and the training data (:mod:`hotpixels.model.dataset`), so they live in one layer below both
``correct`` and ``model`` (it imports neither: no import cycle).

**Ring.** The *ring* of a site is its same-colour neighbours at Chebyshev distance exactly 2
(from :meth:`CfaPattern.same_color_offsets`): for a Bayer red/blue site the 8 sites at
(0,±2), (±2,0), (±2,±2); for a Bayer green the same 8 (the diagonal greens at (±1,±1) are left
out); for X-Trans 5 (red/blue) to 12 (green) sites. Distance-1 neighbours are left out on purpose:
two hot pixels that touch (an adjacent pair, or an X-Trans green pair) must not hide each other.

**Noise model.** σ (DN) at a level ``L`` DN above black follows read noise plus shot noise,
``σ² = a + b·L`` (``b`` = 1/gain in DN per electron). It is fitted on the frame itself: for a
sample of sites the residual ``r = v - mean(ring)`` (variance ``σ²·(1 + 1/K)`` for a ring of K
sites on a locally flat background) is binned by ring level, each bin gives a robust σ
(from the 25 % quantile of |r - median|, which, unlike the MAD, survives bins where stars or
texture widen most residuals), and ``a, b`` come from a Theil–Sen fit over the bins, which shrugs off the few
bins that stars or texture dominate.

**Candidates.** A site is a candidate when it exceeds the mean of its ring by ``k_mean`` σ and
the maximum of its ring by ``k_max`` σ (σ from the model at the ring's mean level). With the
defaults about 1e-4 to 1e-3 of the sites of a night frame are candidates; every hot pixel of
5 σ or more over its background passes with high probability; star cores pass too (the CNN
tells them apart). The full-frame pass runs in numpy over cache-sized row chunks, the chunks spread
over a few threads (numpy releases the GIL); no torch, so the CLI and the frozen worker need none.
Sites within 2 px of the ActiveArea edge are not examined (their ring would leave the image).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


import numpy as np

from .dng.cfa import CfaPattern
from .parallel import N_THREADS, map_chunks  # noqa: F401 - N_THREADS: profiles.learnstats reads it here

RING_RADIUS = 2
K_MEAN = 4.0  # candidate: excess over the ring mean, in σ
K_MAX = 0.5  # candidate: excess over the ring maximum, in σ
CHUNK_ROWS = 96  # rows per chunk (a multiple of 6 keeps X-Trans phases aligned)
NOISE_SAMPLE_SITES = 600_000  # sites sampled for the noise fit on big frames
NOISE_BINS = 24
# σ per level bin from a low quantile of |r| (25 %: |N(0,1)| has it at 0.3186): stars and texture
# only widen the upper part of the distribution, so the estimate survives heavy contamination.
LOW_QUANTILE = 0.25
LOW_QUANTILE_Z = 0.31864


@dataclass(frozen=True)
class NoiseModel:
    """σ² = a + b·L (DN², L = level above black in DN), never below ``floor_dn2``."""

    a_dn2: float
    b_dn: float
    floor_dn2: float

    def variance_dn2(self, level_dn):
        """Noise variance (DN²) at level(s) ``level_dn`` above black (keeps a float32 input float32)."""
        return np.maximum(self.a_dn2 + self.b_dn * np.maximum(level_dn, 0.0), self.floor_dn2)

    def sigma_dn(self, level_dn):
        """σ (DN) at level(s) ``level_dn`` above black."""
        return np.sqrt(self.variance_dn2(level_dn))

    def to_json(self) -> dict:
        return {"a_dn2": self.a_dn2, "b_dn": self.b_dn, "floor_dn2": self.floor_dn2}


@dataclass(frozen=True)
class RingTable:
    """Union of ring offsets over all phases plus, per offset, which phases use it."""

    offsets: np.ndarray  # (K, 2) int (dy, dx)
    use: np.ndarray  # (K, rows, cols) bool: offset k belongs to the ring of phase (py, px)
    uniform: bool  # every phase uses every offset (Bayer): no masks needed


@lru_cache(maxsize=16)
def _ring_table(pattern: tuple, origin: tuple) -> RingTable:
    cfa = CfaPattern(pattern, origin)
    rows, cols = cfa.repeat
    rings = {}
    for phase in cfa.phases():
        offs = cfa.same_color_offsets(phase, RING_RADIUS)
        rings[phase] = {tuple(d) for d in offs.tolist() if max(abs(d[0]), abs(d[1])) == RING_RADIUS}
    union = sorted(set().union(*rings.values()))
    use = np.zeros((len(union), rows, cols), dtype=bool)
    for k, d in enumerate(union):
        for (py, px), ring in rings.items():
            use[k, py, px] = d in ring
    return RingTable(np.array(union, dtype=np.int64).reshape(-1, 2), use, bool(use.all()))


def ring_table(cfa: CfaPattern) -> RingTable:
    """The ring offsets of ``cfa`` (cached per pattern and origin)."""
    return _ring_table(cfa.pattern, cfa.origin_yx)


def ring_offsets(cfa: CfaPattern, phase) -> np.ndarray:
    """(K, 2) ring offsets of one phase (used by the per-site reference code and patches)."""
    table = ring_table(cfa)
    return table.offsets[table.use[:, int(phase[0]), int(phase[1])]]


def _chunk_masks(table: RingTable, cfa: CfaPattern, y0: int, x0: int, shape: tuple[int, int]) -> np.ndarray:
    """(K, h, w) bool: does the ring of the site at full-frame (y0+i, x0+j) use offset k."""
    ph = cfa.phase_index_map((y0 + shape[0], x0 + shape[1]))[y0:, x0:].astype(np.int64)
    return table.use.reshape(len(table.offsets), -1)[:, ph]


def _row_chunks(h: int, chunk_rows: int) -> list[tuple[int, int]]:
    """(r0, r1) row ranges of the box's examined rows (2 px margin), ``chunk_rows`` a multiple of 6."""
    rr = RING_RADIUS
    step = max(6, chunk_rows - chunk_rows % 6)
    return [(r0, min(r0 + step, h - rr)) for r0 in range(rr, h - rr, step)]


def _chunk_stats(cfa_dn: np.ndarray, cfa: CfaPattern, box, r0: int, r1: int, masks: np.ndarray | None):
    """``(y0, centre, ring_mean, ring_max)`` float32 of rows ``r0:r1`` of ``box`` (see :func:`ring_stats`)."""
    t, l, b, r = box
    rr = RING_RADIUS
    x = cfa_dn[t + r0 - rr:t + r1 + rr, l:r].astype(np.float32)  # this chunk and its ring rows only
    n, w = r1 - r0, r - l
    table = ring_table(cfa)
    centre = x[rr:rr + n, rr:w - rr]
    offsets = table.offsets.tolist()
    if table.uniform:
        total = np.zeros_like(centre)
        peak = np.full_like(centre, -np.inf)
        for dy, dx in offsets:
            nb = x[rr + dy:rr + dy + n, rr + dx:w - rr + dx]
            np.add(total, nb, out=total)
            np.maximum(peak, nb, out=peak)
        np.divide(total, np.float32(len(offsets)), out=total)
        return t + r0, centre, total, peak
    m = masks[:, :n]
    total = np.zeros_like(centre)
    peak = np.full_like(centre, -np.inf)
    for k, (dy, dx) in enumerate(offsets):
        nb = x[rr + dy:rr + dy + n, rr + dx:w - rr + dx]
        np.add(total, np.where(m[k], nb, np.float32(0.0)), out=total)
        np.maximum(peak, np.where(m[k], nb, np.float32(-np.inf)), out=peak)
    np.divide(total, m.sum(axis=0, dtype=np.float32), out=total)
    return t + r0, centre, total, peak


def _plan(cfa: CfaPattern, box, chunk_rows: int):
    """The int box, its row chunks and (X-Trans) the per-offset ring masks shared by every chunk."""
    t, l, b, r = (int(v) for v in box)
    chunks = _row_chunks(b - t, chunk_rows)
    table = ring_table(cfa)
    masks = None
    if not table.uniform and chunks:  # chunks start 6k rows apart: one mask serves them all
        size = chunks[0][1] - chunks[0][0]
        masks = _chunk_masks(table, cfa, t + chunks[0][0], l + RING_RADIUS, (size, r - l - 2 * RING_RADIUS))
    return (t, l, b, r), chunks, masks


def map_ring_stats(fn, cfa_dn: np.ndarray, cfa: CfaPattern, box: tuple[int, int, int, int],
                   chunk_rows: int = CHUNK_ROWS, threads: int | None = None) -> list:
    """``[fn(y0, centre, ring_mean, ring_max) for each chunk of ring_stats(...)]``, in row order, the
    chunks computed on up to ``threads`` threads (default :data:`hotpixels.parallel.N_THREADS`; ``fn`` must be thread-safe
    or write disjoint rows)."""
    box, chunks, masks = _plan(cfa, box, chunk_rows)
    return map_chunks(lambda c: fn(*_chunk_stats(cfa_dn, cfa, box, c[0], c[1], masks)), chunks, threads, min_chunks=4)


def _above_ring_max(cfa_dn: np.ndarray, offsets: list, box, r0: int, r1: int):
    """One ring for every site (Bayer) on integer data: ``(y0, iy, ix, centre, ring_mean, ring_max)``
    (values float32) of the sites of rows ``r0:r1`` of ``box`` that exceed their ring maximum.

    The maximum is taken on the stored integers (half the bytes of float32, no conversion pass), and
    the ring mean only at the sites that pass, summed in the order :func:`_chunk_stats` uses: with
    integers below 2**24 every float32 sum is exact, so the values equal :func:`ring_stats`' there.
    """
    t, l, b, r = box
    rr = RING_RADIUS
    x = cfa_dn[t + r0 - rr:t + r1 + rr, l:r]
    n, w = r1 - r0, r - l
    centre = x[rr:rr + n, rr:w - rr]
    (dy0, dx0), rest = offsets[0], offsets[1:]
    peak = x[rr + dy0:rr + dy0 + n, rr + dx0:w - rr + dx0].copy()
    for dy, dx in rest:
        np.maximum(peak, x[rr + dy:rr + dy + n, rr + dx:w - rr + dx], out=peak)
    at = np.flatnonzero(centre > peak)  # flat positions in the (n, w - 4) grid: cheaper than 2-D indices
    iy, ix = np.divmod(at, w - 2 * rr)
    flat_x = x.reshape(-1) if x.flags.c_contiguous else np.ascontiguousarray(x).reshape(-1)
    base = (iy + rr) * x.shape[1] + ix + rr
    total = np.zeros(len(at), dtype=np.float32)
    for dy, dx in offsets:
        total += flat_x[base + (dy * x.shape[1] + dx)]
    return (t + r0, iy, ix, flat_x[base].astype(np.float32), total / np.float32(len(offsets)),
            peak.reshape(-1)[at].astype(np.float32))


def ring_stats(cfa_dn: np.ndarray, cfa: CfaPattern, box: tuple[int, int, int, int],
               chunk_rows: int = CHUNK_ROWS):
    """Yield ``(y0, centre, ring_mean, ring_max)`` float32 chunks over ``box`` shrunk by 2 px.

    ``box`` = (top, left, bottom, right) full-frame (normally the ActiveArea); ring neighbours are
    read inside ``box`` only. ``centre`` etc. are (rows, w - 4) arrays whose first row is full-frame
    row ``y0`` and first column ``box.left + 2``. (:func:`map_ring_stats`: the same over threads.)
    """
    box, chunks, masks = _plan(cfa, box, chunk_rows)
    for r0, r1 in chunks:
        yield _chunk_stats(cfa_dn, cfa, box, r0, r1, masks)


def mean_black(black_level_dn) -> float:
    """One black level (DN) for noise levels: a scalar, or the mean of a per-site map / repeat.

    Per-phase black offsets differ by a few DN, which changes σ by far less than its own
    uncertainty, so one value serves the noise model and the candidate test.
    """
    b = np.asarray(black_level_dn)
    return float(b.mean()) if b.size else 0.0


def estimate_noise(cfa_dn: np.ndarray, cfa: CfaPattern, active_area, black_level_dn=0.0,
                   max_sites: int = NOISE_SAMPLE_SITES) -> NoiseModel:
    """Fit σ² = a + b·L on the frame itself (see the module docstring); robust to stars and texture."""
    t, l, b, r = (int(v) for v in active_area)
    h = b - t
    rows_needed = max(12, int(max_sites / max(r - l, 1)))
    if rows_needed < h:  # evenly spaced bands of 48 rows, so big frames cost a fixed time
        n_bands = max(1, rows_needed // 48)
        starts = np.linspace(t, b - 48, n_bands).astype(int)
        starts -= (starts - t) % 6
        bands = [(s, min(s + 48, b)) for s in starts]
    else:
        bands = [(t, b)]
    levels, resid = [], []
    table = ring_table(cfa)
    bl = mean_black(black_level_dn)
    for y0, y1 in bands:
        for ry, centre, mean, _ in ring_stats(cfa_dn, cfa, (y0, l, y1, r), chunk_rows=96):
            ys = np.arange(ry, ry + centre.shape[0])[:, None]
            xs = np.arange(l + RING_RADIUS, l + RING_RADIUS + centre.shape[1])[None, :]
            ys, xs = np.broadcast_arrays(ys, xs)
            k = _ring_count(cfa, table, ys, xs)
            lv = mean.astype(np.float64) - bl
            levels.append(lv.ravel())
            resid.append(((centre - mean) / np.sqrt(1.0 + 1.0 / k)).ravel())
    level = np.concatenate(levels)
    res = np.concatenate(resid)
    return fit_noise_model(level, res)


def _ring_count(cfa: CfaPattern, table: RingTable, ys, xs) -> np.ndarray:
    if table.uniform:
        return np.full(ys.shape, float(len(table.offsets)))
    py, px = cfa.phase_of(ys, xs)
    return table.use[:, py, px].sum(axis=0).astype(np.float64)


def stable_argsort(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` (equal values keep their index order: which of the
    many tied ring means fall into which noise bin must not depend on the sort), 2.4 x faster on
    600k values: numpy's fast unstable sort, then the runs of equal values put in index order by
    one integer sort of (run, index) keys."""
    v = np.asarray(values).ravel()
    n = len(v)
    if n < 2 or n >= 1 << 31 or (v.dtype.kind == "f" and np.isnan(v).any()):
        return np.argsort(v, kind="stable")
    order = np.argsort(v)
    ranked = v[order]
    run = np.zeros(n, dtype=np.int64)
    np.cumsum(ranked[1:] != ranked[:-1], out=run[1:])
    key = run * n + order
    key.sort()
    return key % n


def fit_noise_model(level_dn: np.ndarray, residual_dn: np.ndarray, bins: int = NOISE_BINS) -> NoiseModel:
    """Theil–Sen fit of σ² = a + b·L over equal-count level bins, σ per bin from the MAD."""
    order = stable_argsort(level_dn)
    groups = np.array_split(order, bins)
    lv, var = [], []
    for g in groups:
        if len(g) < 50:
            continue
        rr = residual_dn[g]
        s = np.quantile(np.abs(rr - np.median(rr)), LOW_QUANTILE) / LOW_QUANTILE_Z
        lv.append(float(np.median(level_dn[g])))
        var.append(float(s * s))
    lv_a, var_a = np.array(lv), np.array(var)
    if len(lv_a) < 2:
        v = float(var_a[0]) if len(var_a) else 1.0
        return NoiseModel(v, 0.0, max(v, 0.25))
    i, j = np.triu_indices(len(lv_a), 1)
    dl = lv_a[j] - lv_a[i]
    ok = dl > 1e-6
    slope = float(np.median((var_a[j] - var_a[i])[ok] / dl[ok])) if ok.any() else 0.0
    slope = max(slope, 0.0)
    a = float(np.median(var_a - slope * np.maximum(lv_a, 0.0)))
    floor = max(0.5 * float(var_a.min()), 0.25)
    a = max(a, floor - slope * max(float(lv_a.min()), 0.0))
    return NoiseModel(a, slope, floor)


@dataclass
class Candidates:
    """Candidate sites (full-frame (y, x)) with what the detector measured there."""

    yx: np.ndarray  # (N, 2) int64
    excess_sigma: np.ndarray  # (N,) (v - ring mean) / σ
    sigma_dn: np.ndarray  # (N,) σ at the ring level
    ring_mean_dn: np.ndarray  # (N,)

    def __len__(self) -> int:
        return len(self.yx)


def find_candidates(cfa_dn: np.ndarray, cfa: CfaPattern, active_area, noise: NoiseModel,
                    black_level_dn=0.0, *, k_mean: float = K_MEAN, k_max: float = K_MAX,
                    exclude_mask: np.ndarray | None = None) -> Candidates:
    """Sites exceeding their ring mean by ``k_mean`` σ and their ring maximum by ``k_max`` σ."""
    t, l, b, r = (int(v) for v in active_area)
    bl = mean_black(black_level_dn)
    km2 = np.float32(k_mean * k_mean)

    def chunk(y0, centre, mean, peak):
        # a candidate exceeds its ring maximum (k_max >= 0), so it exceeds the ring mean too: test that
        # cheap necessary condition on the whole chunk, then the σ rules on the few sites passing it
        at = np.flatnonzero(centre > peak) if k_max >= 0 else np.flatnonzero(centre > mean)
        iy, ix = np.divmod(at, centre.shape[1])
        return rules(y0, iy, ix, centre.reshape(-1)[at], mean.reshape(-1)[at], peak.reshape(-1)[at])

    def rules(y0, iy, ix, c, m, pk):
        d = c - m
        var = noise.variance_dn2(m - np.float32(bl))
        hit = (d > 0) & (d * d > km2 * var)
        sd = np.sqrt(var[hit])
        iy, ix, c, m, pk, d = iy[hit], ix[hit], c[hit], m[hit], pk[hit], d[hit]
        ok = (c - pk) > np.float32(k_max) * sd
        return iy[ok] + y0, ix[ok] + l + RING_RADIUS, (d[ok] / sd[ok]), sd[ok], m[ok]

    table = ring_table(cfa)
    if table.uniform and k_max >= 0 and cfa_dn.dtype.kind == "u" and cfa_dn.itemsize <= 2:
        box, offsets = (t, l, b, r), table.offsets.tolist()
        parts = map_chunks(lambda c: rules(*_above_ring_max(cfa_dn, offsets, box, c[0], c[1])),
                           _row_chunks(b - t, CHUNK_ROWS), min_chunks=4)
    else:
        parts = map_ring_stats(chunk, cfa_dn, cfa, (t, l, b, r))
    if not parts:
        z = np.zeros(0)
        return Candidates(np.zeros((0, 2), np.int64), z, z, z)
    ys, xs, ex, sd, mean = (np.concatenate(col) for col in zip(*parts))
    yx = np.stack([ys, xs], axis=1).astype(np.int64)
    cand = Candidates(yx, ex.astype(np.float64), sd.astype(np.float64), mean.astype(np.float64))
    if exclude_mask is not None and len(cand):
        keep = ~exclude_mask[yx[:, 0], yx[:, 1]]
        cand = Candidates(yx[keep], cand.excess_sigma[keep], cand.sigma_dn[keep], cand.ring_mean_dn[keep])
    return cand
