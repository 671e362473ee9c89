"""The pixel's own noise (σ_noise, DN) predicted from the profile: read noise plus shot noise.

σ_local (MAD of same-colour neighbours, :mod:`.sitestats`) measures noise *and* texture; stage 2
needs the two apart, so it also predicts the pure noise of a pixel:

``σ_noise² = (read_noise_dn x r)² + level_dn x dn_per_e x r``

* ``read_noise_dn``: the profile's σ of one dark frame in the site's plane (read noise plus the
  dark floor's shot noise), at the profile's ISO;
* ``level_dn``: the light at the site, estimated as the median of its same-colour neighbours
  minus the black level;
* ``dn_per_e``: DN per electron at the profile's ISO, measured from the profile itself: for a
  stable hot pixel the temporal variance across the darks is ``read² + excess x dn_per_e``
  (Poisson), so ``dn_per_e = Σ(temporal² - read²) / Σ excess`` over the bright stable ones (a
  ratio of sums: the median of per-site variance ratios would be biased low, a variance from a
  few darks being skewed), after dropping sites more than 5 x the median ratio (missed RTS);
* ``r``: the image's ISO over the profile's (gain and read noise in DN both grow with it); 1
  when unknown.
"""

from __future__ import annotations

import numpy as np

from ..dng.rawimage import RawImage
from ..profiles.darkmodel import DarkModel
from .sitestats import SiteStats

MIN_SITES = 8
BRIGHT_SIGMA = 10.0
FALLBACK_DN_PER_E = 1.0


def dn_per_electron(model: DarkModel) -> float | None:
    """DN per electron at the profile's ISO from its hot pixels' temporal spread (None: unknown)."""
    if model.n_hot == 0:
        return None
    planes = model.cfa.plane_at(model.hot_yx[:, 0], model.hot_yx[:, 1])
    read = np.asarray(model.read_noise_dn, dtype=np.float64)[planes]
    excess = model.hot_excess_dn.astype(np.float64)
    temporal = model.hot_temporal_sigma_dn.astype(np.float64)
    ok = (model.hot_flags == 0) & (excess >= BRIGHT_SIGMA * np.maximum(read, 1e-6)) & (temporal > 0)
    if np.count_nonzero(ok) < MIN_SITES:
        return None
    var = temporal[ok] ** 2 - read[ok] ** 2
    med = float(np.median(var / excess[ok]))
    if med <= 0:
        return None
    keep = var / excess[ok] <= 5.0 * med
    ratio = float(var[keep].sum() / excess[ok][keep].sum())
    return ratio if ratio > 0 else None


def shot_variance_dn2(model: DarkModel, idx: np.ndarray, scale: float, iso_ratio: float | None,
                      dn_per_e: float | None = None) -> np.ndarray:
    """Predicted variance (DN²) of the dark signal at model sites ``idx`` in an image at ``scale``.

    The whole dark signal at the site, ``scale x (field + excess)`` DN, is Poisson: its variance
    is that times ``dn_per_e`` at the image's ISO (``dn_per_e x ISO ratio``). Added: the model's
    own uncertainty, ``(scale x temporal)² / N_darks``. ``dn_per_e`` defaults to
    :func:`dn_per_electron` of the model, else 1 DN per electron.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if dn_per_e is None:
        dn_per_e = dn_per_electron(model) or FALLBACK_DN_PER_E
    yx = model.hot_yx[idx]
    dark = np.abs(model.field_at(yx[:, 0], yx[:, 1]) + np.asarray(model.hot_excess_dn, dtype=np.float64)[idx])
    r = iso_ratio if iso_ratio else 1.0
    var = max(scale, 0.0) * r * dn_per_e * dark
    if model.n_frames > 0:
        temporal = np.asarray(model.hot_temporal_sigma_dn, dtype=np.float64)[idx]
        var = var + (scale * temporal) ** 2 / model.n_frames
    return var


def pixel_noise_dn(raw: RawImage, model: DarkModel, stats: SiteStats, iso_ratio: float | None) -> np.ndarray:
    """(N,) predicted σ_noise in DN of the image at every model site."""
    if model.n_hot == 0:
        return np.zeros(0)
    ys, xs = model.hot_yx[:, 0], model.hot_yx[:, 1]
    r = iso_ratio or 1.0
    read = np.asarray(model.read_noise_dn, dtype=np.float64)[model.cfa.plane_at(ys, xs)] * r
    gain = dn_per_electron(model) or FALLBACK_DN_PER_E
    level = np.maximum(stats.background_dn - raw.black_level_at(ys, xs), 0.0)
    return np.sqrt(read**2 + level * gain * r)
