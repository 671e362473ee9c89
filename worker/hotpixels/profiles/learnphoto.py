"""What one photo says against the evidence of the photos learned before it.

Learning folds photos one at a time into per-site sums (:class:`hotpixels.profiles.learnstats.
LearnEvidence`); before a photo is folded in, its per-site arrays (``excess``: centre less
same-colour ring mean, DN; ``sigma``: the photo's noise at the ring's level, DN; ``ok``: plain
neighbourhood; over the ActiveArea less 2 px) are set against the running model ``offset_dn +
rate_dn x g`` of the sites the earlier photos show hot:

* :func:`photo_factor`: the photo's own factor on its tag dark factor ``g``. A missing or wrong
  temperature tag, a sensor that does not double every 6 °C, or in-camera dark subtraction are one
  factor common to every site of the photo; it is measured as stage 2 does when it corrects
  (:func:`hotpixels.correct.learnedscale.photo_scale`, a robust line through 0), on sites chosen by
  the prediction only: a rate known to ``CALIBRATE_MIN_SIGMA`` standard errors (a noisy one, chosen
  for being high, would pull the factor down) and below saturation even at ``CALIBRATE_HEADROOM`` x
  the prediction (a clipped site would pull it down; without a temperature the factor may be far
  from 1), then again with the sites below saturation at twice the factor found.
* :func:`surprised_sites`: the sites whose excess here is a level jump off their running model
  (``SURPRISE_SIGMA`` σ and ``SURPRISE_FRACTION`` of the prediction): a flickering (RTS) site jumps
  between levels, a stable one follows the model. Among few photos the whole-set fit's offset and
  rate absorb much of a flicker; counted photo by photo it shows.

Both read the evidence's sums and counts (box coordinates: the ActiveArea) and never change them.
"""

from __future__ import annotations

import numpy as np

from ..correct.batch import SPILL_MAX, SPILL_NOISE
from ..correct.learnedscale import PhotoScale, photo_scale
from .learnstats import SPILL_NOISE_SD, fit_sites

CALIBRATE_MIN_SIGMA = 10.0  # a site enters a photo's factor when its rate is known to this many standard errors
CALIBRATE_MAX_STDERR = 0.05  # a factor measured less precisely than this is not used (the tags' is kept)
CALIBRATE_HEADROOM = 16.0  # the first estimate uses sites that stay below saturation at this factor
CALIBRATE_MAX_SITES = 20000  # the strongest this many are enough for a factor to 1 %
SURPRISE_SIGMA = 5.0  # a photo surprises a site when its excess is this many σ off the running model ...
SURPRISE_FRACTION = 0.5  # ... and half the prediction (a level jump, not the model's own error of 10-20 % among few photos)
MODEL_SUMS = ("w", "wg", "wgg", "we", "weg", "wee")


def photo_factor(sums: dict, counts: dict, box, active_area, photo: dict, g: float) -> PhotoScale:
    """This photo's own factor on its tag dark factor ``g`` (module docstring): ``method`` "fit",
    or "as learned" with scale 1 (no evidence yet, too few sites, or too uncertain). ``photo``:
    the arrays of :meth:`hotpixels.profiles.learnstats.LearnEvidence._photo` (with ``frame``,
    ``noise`` and ``sat_dn``: sites clipped there say nothing)."""
    frame_dn, excess, sigma, ok = photo["frame"], photo["excess"], photo["sigma"], photo["ok"]
    sat_dn, shot_dn_per_dn = photo["sat_dn"], photo["noise"].b_dn
    inner = (slice(2, box[0] - 2), slice(2, box[1] - 2))  # the arrays' region in the accumulators
    counted = counts["counted"][inner]
    high = counts["high"][inner]
    iy, ix = np.nonzero((high >= 2) & (2 * high >= counted) & ok)  # two photos at least: one is a star or a cosmic ray
    if not len(iy):
        return PhotoScale(1.0, 0.0, "as learned")
    v = {k: sums[k][iy + 2, ix + 2].astype(np.float64) for k in MODEL_SUMS}
    offset, rate, _, _ = fit_sites(v, counted[iy, ix].astype(np.int64))
    sd = sigma[iy, ix].astype(np.float64)
    pred = rate * g
    t, l = active_area[:2]
    centre = frame_dn[iy + t + 2, ix + l + 2].astype(np.float64)
    ring_mean = centre - excess[iy, ix]
    rate_z = rate * np.sqrt(v["wgg"])
    known = rate_z >= CALIBRATE_MIN_SIGMA
    headroom = sat_dn - ring_mean - offset
    scale = None
    for margin in (CALIBRATE_HEADROOM, 2.0):
        factor = 1.0 if scale is None or scale.method != "fit" else max(scale.scale, 1e-3)
        strong = np.flatnonzero(known & (margin * factor * pred < headroom))
        if len(strong) > CALIBRATE_MAX_SITES:
            strong = strong[np.argsort(-rate_z[strong])[:CALIBRATE_MAX_SITES]]
        n = len(strong)
        found = photo_scale(centre[strong] - ring_mean[strong] - offset[strong], pred[strong], sd[strong],
                            np.zeros(n), centre[strong] < sat_dn, shot_dn_per_dn, np.full(n, 8))
        if found.method == "fit" and found.stderr is not None and found.stderr <= CALIBRATE_MAX_STDERR:
            scale = found
        elif scale is None:
            scale = PhotoScale(1.0, found.relative_error, "as learned", n_sites=found.n_sites)  # too uncertain
    return scale


def surprised_sites(sums: dict, counts: dict, box, active_area, photo: dict, g: float) -> tuple[np.ndarray, np.ndarray]:
    """``(iy, ix)`` box coordinates of the sites this photo surprises (module docstring): among
    those seen hot before (high at least once, counted at least twice, at least ``MARGIN`` px
    inside), where the site counts in this photo (plain neighbourhood, the single-site spike test
    of :meth:`~hotpixels.profiles.learnstats.LearnEvidence._fold`) and is not clipped."""
    excess, sigma, ok, frame_dn = photo["excess"], photo["sigma"], photo["ok"], photo["frame"]
    inner = (slice(3, box[0] - 3), slice(3, box[1] - 3))  # the 4 orthogonal neighbours lie in the arrays
    iy, ix = np.nonzero((counts["high"][inner] >= 1) & (counts["counted"][inner] >= 2))
    ey, ex = iy + 1, ix + 1  # in the photo's arrays (the ActiveArea less 2 px)
    keep = ok[ey, ex]
    iy, ix, ey, ex = iy[keep] + 3, ix[keep] + 3, ey[keep], ex[keep]
    e = excess[ey, ex].astype(np.float64)
    sd = sigma[ey, ex].astype(np.float64)
    around = np.stack([excess[ey - 1, ex], excess[ey + 1, ex], excess[ey, ex - 1], excess[ey, ex + 1]]).astype(np.float64)
    spill = (around.sum(axis=0) - around.max(axis=0) - around.min(axis=0)) * 0.5  # the middle two
    t, l = active_area[:2]
    here = (spill < np.maximum(SPILL_MAX * e, SPILL_NOISE * SPILL_NOISE_SD * sd)) \
        & (frame_dn[ey + t + 2, ex + l + 2] < photo["sat_dn"])
    iy, ix, e, sd = iy[here], ix[here], e[here], sd[here]
    v = {k: sums[k][iy, ix].astype(np.float64) for k in MODEL_SUMS}
    offset, rate, _, _ = fit_sites(v, counts["counted"][iy, ix].astype(np.int64))
    pred = offset + rate * g
    off = np.abs(e - pred)
    surprised = (off > SURPRISE_SIGMA * sd) & (off > SURPRISE_FRACTION * np.abs(pred))
    return iy[surprised], ix[surprised]
