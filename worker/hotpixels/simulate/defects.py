"""The fixed dark signal of one body and its defects, in electrons.

A :class:`DarkField` belongs to a :class:`~.sensor.SensorModel` (drawn from its seed) and holds,
for every full-frame site, the dark-current rate in e-/s at the body's ``ref_temp_c``:

* ordinary sites: lognormal around ``dark_median_e_s``;
* the **hot population** (``hot_fraction`` of sites, chosen at random): a truncated Pareto law,
  ``P(rate > r) = ((r/hot_min)^-alpha - (hot_max/hot_min)^-alpha) / (1 - (hot_max/hot_min)^-alpha)``,
  so a few are bright enough to saturate in long or warm exposures;
* **amp glow**: an exponential falloff from one corner (``amp_glow_e_s`` peak);
* **RTS** (random telegraph) sites: a share of the hot population with a second level; in each
  frame the site is "high" with its own probability and then adds ``rts_extra_e_s``;
* **stuck-low** sites: read a fixed DN at or below the black level whatever the exposure.

All rates scale with exposure time and with ``2 ** ((T - ref_temp_c) / doubling_c)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .sensor import SensorModel, rng_for


@dataclass(frozen=True, eq=False)
class DarkField:
    rate_e_s: np.ndarray  # (H, W) float32: dark current at ref_temp_c incl. hot pixels and amp glow
    hot_yx: np.ndarray  # (K, 2) int32 full-frame sites of the hot population (sorted by y, x)
    hot_rate_e_s: np.ndarray  # (K,) float32 their rates at ref_temp_c (amp glow excluded)
    rts_index: np.ndarray  # (R,) int indices into hot_yx of RTS sites
    rts_extra_e_s: np.ndarray  # (R,) float32 extra rate when "high"
    rts_p_high: np.ndarray  # (R,) float32 probability of being high in a frame
    stuck_yx: np.ndarray  # (S, 2) int32
    stuck_dn: np.ndarray  # (S,) uint16 fixed value the site reads

    @property
    def rts_yx(self) -> np.ndarray:
        return self.hot_yx[self.rts_index]


def pareto_rates(rng: np.random.Generator, n: int, lo: float, hi: float, alpha: float) -> np.ndarray:
    """``n`` draws of the truncated Pareto law on [lo, hi] by inverse CDF."""
    u = rng.random(n)
    tail = (hi / lo) ** -alpha
    return lo * (1.0 - u * (1.0 - tail)) ** (-1.0 / alpha)


def expected_hot_count(sensor: SensorModel, threshold_e_s: float) -> float:
    """Expected number of hot-population sites with rate above ``threshold_e_s`` (at ref_temp_c)."""
    n_hot = hot_count(sensor)
    lo, hi, a = sensor.hot_min_e_s, sensor.hot_max_e_s, sensor.hot_alpha
    if threshold_e_s <= lo:
        return float(n_hot)
    if threshold_e_s >= hi:
        return 0.0
    tail = (hi / lo) ** -a
    return float(n_hot * ((threshold_e_s / lo) ** -a - tail) / (1.0 - tail))


def hot_count(sensor: SensorModel) -> int:
    return int(round(sensor.hot_fraction * sensor.height * sensor.width))


def amp_glow_e_s(sensor: SensorModel) -> np.ndarray:
    """(H, W) float32 amp-glow rate: ``amp_glow_e_s * exp(-distance / (scale * W))`` from a corner."""
    h, w = sensor.shape
    ys = np.arange(h, dtype=np.float32)
    xs = np.arange(w, dtype=np.float32)
    if "b" in sensor.amp_glow_corner:
        ys = ys[::-1]
    if "r" in sensor.amp_glow_corner:
        xs = xs[::-1]
    d = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    return (sensor.amp_glow_e_s * np.exp(-d / (sensor.amp_glow_scale * w))).astype(np.float32)


def make_dark_field(sensor: SensorModel) -> DarkField:
    """The body's fixed dark field, a pure function of the sensor (seeded by ``sensor.seed``)."""
    return _dark_field_cached(sensor)


@lru_cache(maxsize=2)  # a 24 MP field is ~100 MB
def _dark_field_cached(sensor: SensorModel) -> DarkField:
    rng = rng_for(sensor.seed, "dark-field", sensor.preset, sensor.height, sensor.width)
    h, w = sensor.shape
    n = h * w
    rate = rng.standard_normal(n, dtype=np.float32)
    rate *= np.float32(sensor.dark_spread)
    np.exp(rate, out=rate)
    rate *= np.float32(sensor.dark_median_e_s)

    k = hot_count(sensor)
    flat = np.sort(rng.choice(n, size=k, replace=False))
    hot_rate = pareto_rates(rng, k, sensor.hot_min_e_s, sensor.hot_max_e_s, sensor.hot_alpha).astype(np.float32)
    rate[flat] = hot_rate
    rate = rate.reshape(h, w)
    rate += amp_glow_e_s(sensor)

    n_rts = int(round(sensor.rts_fraction * k))
    rts_index = np.sort(rng.choice(k, size=n_rts, replace=False)) if n_rts else np.zeros(0, np.int64)
    rts_extra = (hot_rate[rts_index] * rng.uniform(0.5, 3.0, n_rts) + rng.uniform(1.0, 20.0, n_rts)).astype(np.float32)
    rts_p = rng.uniform(0.2, 0.8, n_rts).astype(np.float32)

    taken = np.zeros(n, dtype=bool)
    taken[flat] = True
    n_stuck = int(round(sensor.stuck_low_fraction * n))
    cand = rng.choice(n, size=n_stuck * 2 + 4, replace=False)
    stuck = np.sort(cand[~taken[cand]][:n_stuck])
    black = sensor.black_map().ravel()[stuck]
    stuck_dn = np.round(black * rng.uniform(0.0, 1.0, len(stuck))).astype(np.uint16)

    def yx(f):
        return np.stack([f // w, f % w], axis=1).astype(np.int32)

    arrays = dict(rate_e_s=rate, hot_yx=yx(flat), hot_rate_e_s=hot_rate, rts_index=rts_index,
                  rts_extra_e_s=rts_extra, rts_p_high=rts_p, stuck_yx=yx(stuck), stuck_dn=stuck_dn)
    for arr in arrays.values():  # shared through the cache: nobody may change a body's field
        arr.flags.writeable = False
    return DarkField(**arrays)


def rts_states(field: DarkField, rng: np.random.Generator) -> np.ndarray:
    """(R,) bool: which RTS sites are in their high state in one frame."""
    return rng.random(len(field.rts_index)) < field.rts_p_high


def dark_rate_for_frame(field: DarkField, rts_high: np.ndarray) -> np.ndarray:
    """(H, W) float32 dark rate at ref_temp_c for one frame (RTS sites in their drawn state)."""
    rate = field.rate_e_s.copy()
    if len(rts_high):
        yx = field.rts_yx[rts_high]
        rate[yx[:, 0], yx[:, 1]] += field.rts_extra_e_s[rts_high]
    return rate


def residual_hot_pixels(sensor: SensorModel, rng: np.random.Generator, gain_e_per_dn: float,
                        count: int | None = None, pair_fraction: float = 0.2):
    """Random single-frame hot pixels for one light frame (never present in the darks).

    Returns ``(yx (R, 2) int32 full-frame, amplitude_e (R,) float32)``: amplitudes log-uniform
    between 15 and 4000 DN (converted to electrons at ``gain_e_per_dn``); ``pair_fraction`` of them
    come with an adjacent partner (horizontal or vertical) of 0.3-1.0 times the amplitude. Sites
    lie inside the ActiveArea, at least 2 px from its edge.
    """
    t, l, b, r = sensor.active_area
    if count is None:
        count = rng.poisson(sensor.residual_per_mpx * (b - t) * (r - l) / 1e6)
    y = rng.integers(t + 2, b - 3, count)
    x = rng.integers(l + 2, r - 3, count)
    amp = np.exp(rng.uniform(np.log(15.0), np.log(4000.0), count)) * gain_e_per_dn
    paired = rng.random(count) < pair_fraction
    vertical = rng.random(count) < 0.5
    py, px = y[paired] + vertical[paired], x[paired] + ~vertical[paired]
    pamp = amp[paired] * rng.uniform(0.3, 1.0, int(paired.sum()))
    yx = np.concatenate([np.stack([y, x], 1), np.stack([py, px], 1)]).astype(np.int32)
    amps = np.concatenate([amp, pamp]).astype(np.float32)
    # one entry per site (a partner may land on another residual): keep the first
    _, first = np.unique(yx[:, 0].astype(np.int64) * sensor.width + yx[:, 1], return_index=True)
    first = np.sort(first)
    return yx[first], amps[first]
