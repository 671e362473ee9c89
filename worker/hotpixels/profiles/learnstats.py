"""Per-site evidence for learning a body's hot pixels from ordinary photos, one photo at a time.

A hot pixel sits at the same site in every photo of a body, with an excess over its same-colour
neighbours that grows with the dark signal: exposure time, ISO (analogue gain) and temperature.
Scenes, stars and noise do not stay on one site. :class:`LearnEvidence` folds each photo into
fixed-size per-site accumulators and keeps no photo, so memory does not depend on how many
photos are learned from (about 36 bytes per site: 24 MP take about 0.86 GB).

**Per photo.** Every site of the ActiveArea gets, from the same ring of same-colour neighbours as
stage 3 (:func:`hotpixels.candidates.ring_stats`; within ``MARGIN`` px of the ActiveArea's edge the
part of the ring inside it, at least ``MIN_RING_MEMBERS`` sites, :mod:`hotpixels.ringat`), its excess
``e = centre - ring mean`` (DN) and the photo's noise σ at the ring's level (the photo's own noise
model, :func:`hotpixels.candidates.estimate_noise`). The site *counts* in this photo only
when its neighbourhood can be trusted:

* not structured: the ring's maximum stands less than ``K_STRUCT`` σ over the ring mean (stars,
  edges and texture light the ring unevenly);
* not bright: the ring mean is below ``BRIGHT_FRACTION`` of the range above black (bright areas
  carry texture and shot noise that hide any dark signal);
* not saturated: the ring's maximum is below ``SATURATION_FRACTION`` of the white level;
* a single-site spike: the 4 orthogonally touching sites hold (the mean of the middle two of
  their excesses, so that a neighbouring hot pixel of a defect cluster does not count; on the edge
  the median of those that exist) less than
  :data:`hotpixels.correct.batch.SPILL_MAX` of the centre's excess (or less than
  :data:`~hotpixels.correct.batch.SPILL_NOISE` σ of that mean's noise): a star core, even a sharp
  one, spreads 13-36 % of its peak onto all four. This is the batch code's single-pixel test applied
  in every photo. On a *tracked* series (``tracked``) the same star sits on the same site in every
  photo, and a faint one passes this test photo by photo within the noise; so ``tracked`` adds the
  test summed over the photos (:func:`single_site_over_photos`, noise growing as sqrt(n), a star's
  spill as n) and the batch's own test on the mean stack (:func:`hotpixels.correct.batch._single_site`,
  with the learned hot sites repaired where they sit in a touching site's ring).

**The model.** Each photo has a *dark factor* ``g = exposure_s x ISO / 100 x 2 ** ((T - 20 °C) /
doubling_c)`` (:func:`dark_factor`; T the recorded sensor temperature, 20 °C when unknown; the
doubling defaults to 6 °C). A site's excess in DN is modelled as ``excess_dn = offset_dn +
rate_dn x g``: ``rate_dn`` is DN per second at ISO 100 and 20 °C, ``offset_dn`` a level that does
not scale (a stuck-high or gain-like defect). The fit is weighted least squares with weights
``1 / σ²`` of each photo's noise at the site, plus a weak prior pulling the offset to 0 (the
weight of ``OFFSET_PRIOR_PHOTOS`` average photos), so a set of photos at one setting still gives a
usable prediction. It needs six sums per site (``Σw, Σwg, Σwg², Σwe, Σweg, Σwe²``, float32) and
four counts (photos where the site counted, stood ``Z_HIT`` σ out, stood ``Z_HIGH`` σ out, or
surprised its running model; int16), and, on a tracked series, for the single-site test over all photos the sums of the excess
and of the neighbours' spill over every photo where the neighbourhood was plain, with their number
(:func:`single_site_over_photos`: a star near the threshold counts in the photos where its spill
hid in the noise and not in the softer ones, so the photos that counted alone would pass it).
The photos that count are those where the site's neighbourhood passed the tests above, which is
the robust part: a star crossing the site, a bright window or a saturated highlight never enters
the sums.

**The photo's own factor.** The tags are not the dark signal: many bodies record no sensor
temperature (20 °C is then assumed), those that do err by degrees, the doubling is not 6 °C on
every sensor, and a camera's own long-exposure noise reduction removes the dark signal altogether.
Each of these is one factor common to every site of a photo, so before a photo is folded in its
factor on ``g`` is measured in the photo itself against the sites the photos so far show hot
(:func:`hotpixels.profiles.learnphoto.photo_factor`), and the photo counts with ``g' = factor x g``
(with ``g`` when it cannot be measured well; :func:`hotpixels.profiles.learn.learn_profile` adds
the photos from the median dark factor outwards and, at the end, measures those again against the
evidence of all the photos, :meth:`LearnEvidence.recalibrate`). Without it the model leaves each photo's
factor as scatter and most strong sites look unstable (RTS). The rates are reported per unit of
the *tag* factor: the fitted rate times the median factor of the photos, so a new photo's
prediction from its tags is right for a typical photo of the set (stage 2 measures the new
photo's own factor again).

**Decisions** (:meth:`LearnEvidence.finish`): a site far *below* its ring in the photos
(``-Z_LEARN`` standard errors, with at least ``MIN_HITS`` photos not standing out) is learned as
*cold* (dead, stuck low), and a site with a cold one in its same-colour ring is not learned as hot
(the dead neighbour pulls its ring mean down, so it looks hot in every photo). Otherwise a site is *learned* when it counted in at least
``MIN_COUNTED`` photos and either its weighted mean excess is ``Z_LEARN`` standard errors above
0 with at least ``MIN_HITS`` photos at ``Z_HIT`` σ (one huge event, a cosmic ray, cannot carry
the mean alone) and its predicted excess at the photos' median dark factor is at least
``MIN_SIGMA_AT_MEDIAN`` σ (many photos make a barely warm site significant; it would not show), or
it stood ``Z_HIGH`` σ out in at least ``RTS_MIN_HIGH`` photos and ``RTS_MIN_SHARE`` of them (a
flickering site can be low most of the time; over many photos, random single-photo events, cosmic
rays or sharp stars, coincide on a few sites). A learned site is flagged *unstable*
(RTS, flicker) when it stood out in at least 2 photos and either the model leaves far more scatter
than the noise and a ``MODEL_TOLERANCE`` relative error of the prediction allow (``RTS_CHI2`` times
that), or photos *surprised* it (a level jump off its running model as each photo was added,
:func:`hotpixels.profiles.learnphoto.surprised_sites`; in ``SURPRISE_MIN`` photos and
``SURPRISE_SHARE`` of those where the site counted: among few photos the whole-set fit's offset and rate
absorb much of a flicker).

**Streaming updates.** :meth:`LearnEvidence.sufficient` returns the sums of every site whose
evidence is not negligible (mean excess ``Z_KEEP`` standard errors over 0, or two hits: one 3 σ
hit is noise in one site of a few hundred per photo, and keeping those would store a few % of the
sites); a profile stores them and :meth:`LearnEvidence.load_sufficient` puts them back before new photos are added.
Sites left out start from zero: the new photos alone judge them.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..correct.batch import SPILL_MAX, SPILL_NOISE
from ..dng.cfa import CfaPattern
from ..errors import InvalidOption

REF_ISO = 100.0
REF_TEMP_C = 20.0
DOUBLING_C = 6.0
K_STRUCT = 4.0  # ring maximum over ring mean, σ: above this the neighbourhood is structured
BRIGHT_FRACTION = 0.5  # ring mean above this share of (white - black): too bright to judge
SATURATION_FRACTION = 0.9  # ring maximum at or above this share of white: saturated
Z_HIT = 3.0
Z_HIGH = 5.0
Z_LEARN = 6.0
Z_CLIP = 5.0  # per-photo z clipped to ±this in the evidence sum (one huge event is one vote)
ACCUMULATE_ROWS = 256
Z_KEEP = 3.0
MIN_COUNTED = 3
MIN_SIGMA_AT_MEDIAN = 2.0  # predicted excess at the photos' median dark factor, in their σ at the site
MIN_HITS = 3  # one huge single-photo event (a cosmic ray, a random hot pixel) plus noise must not pass
RTS_MIN_HIGH = 3
RTS_MIN_SHARE = 0.1  # ... and in this share of the photos: over many photos, random single-photo events coincide
OFFSET_PRIOR_PHOTOS = 1.0
MODEL_TOLERANCE = 0.1  # relative error of the exposure x ISO x temperature model allowed before flicker
RTS_CHI2 = 3.0
SPILL_MAX_SUM = 0.05  # summed over the photos: a hot pixel leaks ~nothing (crosstalk a few %), a star >= 10 %
SPILL_NOISE_SUM = 1.0  # σ of the summed spill's noise allowed on top (summed, a weak star's spill is 2-2.5 σ)
SPILL_NOISE_SD = 0.6  # σ of the middle-two mean of 4 neighbours' excesses, in units of one site's σ
MARGIN = 3  # ring (2 px) + the orthogonal spill test (1 px)
MIN_RING_MEMBERS = 2  # at the edge, a site counts when this many of its ring members lie inside (X-Trans red and blue on the first row keep 2)
MAX_PHOTOS = int(np.iinfo(np.int16).max)  # per-site counts are int16
SUMS = ("w", "wg", "wgg", "we", "weg", "wee", "zc", "e", "spill", "n_ok")
TRACKED_SUMS = 3  # the last sums exist on tracked series only (the single-site test over the photos)
COUNTS = ("counted", "hit", "high", "surprise")
NO_DARK_SIGNAL = 0.1  # a photo whose own factor is below this showed no dark signal (in-camera dark subtraction) ...
NO_SIGNAL_SIGMAS = 4.0  # ... by this many standard errors
SURPRISE_MIN = 2  # a site surprised (:mod:`.learnphoto`) in this many photos ...
SURPRISE_SHARE = 0.15  # ... and this share of the photos where it counted flickers (RTS)


def dark_factor(exposure_s, iso, temperature_c, doubling_c: float = DOUBLING_C) -> float | None:
    """``exposure_s x iso / 100 x 2 ** ((T - 20) / doubling_c)``; None when exposure or ISO is unknown.

    An unknown temperature counts as 20 °C (the model then absorbs the body's typical temperature).
    """
    if not exposure_s or not iso or exposure_s <= 0 or iso <= 0:
        return None
    t = REF_TEMP_C if temperature_c is None else float(temperature_c)
    return float(exposure_s) * float(iso) / REF_ISO * 2.0 ** ((t - REF_TEMP_C) / float(doubling_c))


@dataclass
class LearnedFit:
    """The learned sites: full-frame (y, x), the model and its evidence (see the module docstring)."""

    yx: np.ndarray  # (N, 2) int64
    cold: np.ndarray  # (N,) bool: stuck low / dead (always interpolated)
    offset_dn: np.ndarray  # (N,) float32
    rate_dn: np.ndarray  # (N,) DN per unit of dark factor (s at ISO 100, 20 °C)
    unstable: np.ndarray  # (N,) bool
    counted: np.ndarray  # (N,) photos where the site counted
    hit: np.ndarray  # (N,) photos where it stood Z_HIT σ out
    high: np.ndarray  # (N,) photos where it stood Z_HIGH σ out
    z: np.ndarray  # (N,) weighted mean excess in standard errors
    scatter_dn: np.ndarray  # (N,) rms of the fit's residual, DN (noise included)

    def predicted_dn(self, factor: float | None) -> np.ndarray:
        """Predicted excess (DN) at dark factor ``factor``; +inf everywhere when it is unknown."""
        if factor is None:
            return np.full(len(self.yx), np.inf)
        return self.offset_dn.astype(np.float64) + self.rate_dn.astype(np.float64) * float(factor)


class LearnEvidence:
    """Per-site sums over a stream of photos of one body and layout (see the module docstring).

    ``cfa``, ``active_area`` (top, left, bottom, right; full frame) and ``shape`` (H, W) describe
    the photos; :meth:`add` takes one (H, W) CFA frame (DN as stored) with its black level (scalar,
    repeat or map; its mean is used), white level and dark factor.
    """

    def __init__(self, cfa: CfaPattern, active_area, shape, *, tracked: bool = False):
        self.cfa = cfa
        self.active_area = tuple(int(v) for v in active_area)
        self.shape = (int(shape[0]), int(shape[1]))
        t, l, b, r = self.active_area
        self.box = (max(b - t, 0), max(r - l, 0))  # every site of the ActiveArea
        self.tracked = bool(tracked)
        self.n_photos = 0
        self.factors: list[float] = []  # each photo's dark factor as folded in (g' = scale x g, for the median)
        self.scales: list[float] = []  # each photo's own factor on its tag dark factor (1.0: not measured)
        self.sums = {k: np.zeros(self.box, dtype=np.float32) for k in (SUMS if self.tracked else SUMS[:-TRACKED_SUMS])}
        self.counts = {k: np.zeros(self.box, dtype=np.int16) for k in COUNTS}
        self.stack_sum = np.zeros(self.shape, np.float32) if self.tracked else None
        self._noise_sum = np.zeros(3)
        self._black_sum = 0.0
        self._edge = None  # the edge band's ring members, built on the first photo

    @property
    def nbytes(self) -> int:
        """Bytes held by the per-site accumulators (independent of the number of photos)."""
        n = sum(a.nbytes for a in (*self.sums.values(), *self.counts.values()))
        return int(n + (self.stack_sum.nbytes if self.stack_sum is not None else 0))

    def add(self, frame_dn: np.ndarray, *, black_level_dn, white_level_dn: float, factor: float) -> dict:
        """Fold one photo in (``factor``: its dark factor from the tags); returns ``{"counted_share",
        "noise", "photo_scale", "index"}`` (share of sites that counted; the photo's own factor on
        ``factor``, :meth:`calibrate`; its place in :attr:`factors` for :meth:`recalibrate`). A photo
        measured to show no dark signal (factor surely under ``NO_DARK_SIGNAL``, :func:`_no_dark_signal`:
        the camera subtracted a dark frame of its own) teaches nothing about hot pixels and is not
        folded in (``index`` None, ``counted_share`` 0)."""
        if self.n_photos >= MAX_PHOTOS:
            raise InvalidOption(f"a learned profile holds at most {MAX_PHOTOS} photos", data={"param": "paths"})
        photo = self._photo(frame_dn, black_level_dn, white_level_dn, factor)
        scale = self.calibrate(photo, float(factor))
        if _no_dark_signal(scale):
            return {"counted_share": 0.0, "noise": photo["noise"].to_json(), "photo_scale": scale.to_json(),
                    "index": None}
        g = float(factor) * scale.scale
        if scale.method == "fit":  # a photo whose own factor is unknown is off every model by that factor
            self._count_surprises(photo, g)
        n_counted = self._fold_photo(photo, g)
        share = n_counted / max(self.box[0] * self.box[1], 1)
        self.n_photos += 1
        self.factors.append(g)
        self.scales.append(scale.scale)
        noise = photo["noise"]
        self._noise_sum += (noise.a_dn2, noise.b_dn, noise.floor_dn2)
        self._black_sum += photo["black"]
        if self.stack_sum is not None:
            self.stack_sum += frame_dn
        return {"counted_share": round(share, 4), "noise": noise.to_json(), "photo_scale": scale.to_json(),
                "index": len(self.factors) - 1}

    def recalibrate(self, index: int, frame_dn: np.ndarray, *, black_level_dn, white_level_dn: float,
                    factor: float) -> dict:
        """Measure photo ``index`` (already added, read again) against the evidence of every photo,
        and move its part of the model sums from the factor it was added with to the one found
        (only ``Σwg``, ``Σwgg`` and ``Σweg`` depend on it). When it was added the photos before it
        may have been too few to measure it (the first ones of a set, or a far-off factor and
        saturated hot pixels); the whole set knows its hot pixels better. A photo now found to show no
        dark signal is taken out of the evidence altogether (as :meth:`add` leaves it out), and the
        surprises counted so far are dropped (measured against a model it distorted). Returns
        ``{"photo_scale", "changed", "taken_out"}`` (unchanged when it still cannot be measured)."""
        photo = self._photo(frame_dn, black_level_dn, white_level_dn, factor)
        scale = self.calibrate(photo, float(factor))
        if scale.method != "fit":
            return {"photo_scale": scale.to_json(), "changed": False, "taken_out": False}
        if _no_dark_signal(scale):  # no dark signal after all: the photo is taken out (as add would have)
            self._fold_photo(photo, None, g_before=self.factors[index])
            # the surprises of the photos after it were measured against a model it distorted
            self.counts["surprise"][...] = 0
            self.n_photos -= 1
            noise = photo["noise"]
            self._noise_sum -= (noise.a_dn2, noise.b_dn, noise.floor_dn2)
            self._black_sum -= photo["black"]
            if self.stack_sum is not None:
                self.stack_sum -= frame_dn
            self.factors[index] = 0.0
            self.scales[index] = scale.scale
            return {"photo_scale": scale.to_json(), "changed": True, "taken_out": True}
        else:
            self._fold_photo(photo, float(factor) * scale.scale, g_before=self.factors[index])
            self.factors[index] = float(factor) * scale.scale
        self.scales[index] = scale.scale
        return {"photo_scale": scale.to_json(), "changed": True, "taken_out": False}

    def _count_surprises(self, photo: dict, g: float) -> None:
        """Count the sites this photo surprises (:func:`hotpixels.profiles.learnphoto.surprised_sites`)."""
        from .learnphoto import surprised_sites

        if self.n_photos >= 2:
            iy, ix = surprised_sites(self.sums, self.counts, self.box, self.active_area, photo, g)
            self.counts["surprise"][iy, ix] += 1

    def _photo(self, frame_dn: np.ndarray, black_level_dn, white_level_dn: float, factor: float) -> dict:
        """One photo's per-site arrays over the ActiveArea less 2 px: ``excess`` (centre less ring
        mean, DN), ``sigma`` (the photo's noise at the ring's level, DN), ``ok`` (plain
        neighbourhood), with the frame, its noise model and levels."""
        from ..candidates import estimate_noise, map_ring_stats, mean_black

        if frame_dn.shape != self.shape:
            raise InvalidOption(f"a photo of {frame_dn.shape[1]} x {frame_dn.shape[0]} does not belong to a set of "
                                f"{self.shape[1]} x {self.shape[0]} photos", data={"param": "paths"})
        if not (factor and factor > 0):
            raise InvalidOption("a photo needs a positive dark factor (exposure time and ISO)", data={"param": "paths"})
        black = mean_black(black_level_dn)
        white = float(white_level_dn)
        noise = estimate_noise(frame_dn, self.cfa, self.active_area, black)
        t, l, b, r = self.active_area
        h2, w2 = b - t - 4, r - l - 4  # ring_stats' region: the ActiveArea less 2 px
        if h2 < 3 or w2 < 3:
            raise InvalidOption("the ActiveArea is too small to learn from", data={"param": "paths"})
        excess = np.empty((h2, w2), dtype=np.float32)
        sigma = np.empty((h2, w2), dtype=np.float16)  # noise at the ring's level, DN (3 digits are plenty)
        ok = np.empty((h2, w2), dtype=bool)
        bright_dn = BRIGHT_FRACTION * (white - black)
        sat_dn = SATURATION_FRACTION * white

        def ring_chunk(y0, centre, mean, peak):  # writes its own rows only: safe on threads
            rows = slice(y0 - t - 2, y0 - t - 2 + centre.shape[0])
            sd = noise.sigma_dn(mean - black)
            np.subtract(centre, mean, out=excess[rows])
            sigma[rows] = sd
            ok[rows] = ((peak - mean) <= K_STRUCT * sd) & ((mean - black) < bright_dn) & (peak < sat_dn)

        map_ring_stats(ring_chunk, frame_dn, self.cfa, self.active_area)
        return {"frame": frame_dn, "excess": excess, "sigma": sigma, "ok": ok, "noise": noise, "black": black,
                "bright_dn": bright_dn, "sat_dn": sat_dn}

    def _fold_photo(self, photo: dict, g: float | None, g_before: float | None = None) -> int:
        """Fold a photo's arrays in at dark factor ``g`` (per block of rows of the inner region, 1 px
        less for the orthogonal neighbours, on threads, then the edge band); with ``g_before``,
        only move its model sums from ``g_before`` to ``g``, or with ``g`` None take out all it
        added at ``g_before`` (:meth:`_fold`). Returns how many sites counted."""
        from ..candidates import N_THREADS

        excess, sigma, ok = photo["excess"], photo["sigma"], photo["ok"]
        h2 = excess.shape[0]
        blocks = [(r0, min(r0 + ACCUMULATE_ROWS, h2 - 1)) for r0 in range(1, h2 - 1, ACCUMULATE_ROWS)]

        def block(rr):
            r0, r1 = rr
            return self._accumulate(excess[r0 - 1:r1 + 1], sigma[r0:r1], ok[r0:r1, 1:-1], g, r0 - 1, g_before)

        with ThreadPoolExecutor(max(1, min(N_THREADS, len(blocks)))) as pool:
            n_counted = sum(pool.map(block, blocks))
        return n_counted + self._add_edge(photo["frame"], photo["noise"], photo["black"], photo["bright_dn"],
                                          photo["sat_dn"], g, g_before)

    def calibrate(self, photo: dict, g: float):
        """This photo's own factor on its tag dark factor ``g``
        (:func:`hotpixels.profiles.learnphoto.photo_factor`; scale 1 "as learned" for the first photo)."""
        from ..correct.learnedscale import PhotoScale
        from .learnphoto import photo_factor

        if self.n_photos == 0:
            return PhotoScale(1.0, 0.0, "as learned")
        return photo_factor(self.sums, self.counts, self.box, self.active_area, photo, g)

    def _accumulate(self, excess: np.ndarray, sigma: np.ndarray, ok: np.ndarray, g: float, row: int,
                    g_before: float | None = None) -> int:
        """Fold rows ``row``.. of the accumulators in: ``excess`` has one more row above and below
        and the full width; ``sigma``/``ok`` are the rows themselves (``ok`` already trimmed)."""
        e = excess[1:-1, 1:-1]
        sd = sigma[:, 1:-1].astype(np.float32)
        spill = _middle_spill(excess)
        at = (slice(row + MARGIN, row + MARGIN + e.shape[0]), slice(MARGIN, self.box[1] - MARGIN))
        return self._fold(at, e, sd, spill, ok, g, g_before)

    def _add_edge(self, frame_dn: np.ndarray, noise, black: float, bright_dn: float, sat_dn: float, g: float,
                  g_before: float | None = None) -> int:
        """Fold in the sites within ``MARGIN`` px of the ActiveArea's edge: their ring is the part
        inside the ActiveArea (:mod:`hotpixels.ringat`), their spill the median of the orthogonal
        neighbours that exist. Returns how many counted."""
        from ..ringat import ring_mean_max

        if self._edge is None:
            self._edge = _edge_band(self.cfa, self.active_area)
        members, yx4, inner3, nb = self._edge
        if not len(inner3):
            return 0
        mean, peak = ring_mean_max(frame_dn, members)
        e4 = frame_dn[yx4[:, 0], yx4[:, 1]] - mean
        sd4 = np.asarray(noise.sigma_dn(mean - black), np.float64)
        ok4 = ((peak - mean) <= K_STRUCT * sd4) & ((mean - black) < bright_dn) & (peak < sat_dn)
        ok4 &= members[2].sum(axis=1) >= MIN_RING_MEMBERS
        around = np.where(nb >= 0, e4[np.maximum(nb, 0)], np.nan)
        spill = np.nanmedian(around, axis=1)
        t, l, _, _ = self.active_area
        at = (yx4[inner3, 0] - t, yx4[inner3, 1] - l)
        f32 = np.float32
        return self._fold(at, e4[inner3].astype(f32), sd4[inner3].astype(f32), spill.astype(f32), ok4[inner3], g,
                          g_before)

    def _fold(self, at, e: np.ndarray, sd: np.ndarray, spill: np.ndarray, ok: np.ndarray, g: float | None,
              g_before: float | None = None) -> int:
        """Add one photo's evidence at the accumulator sites ``at`` (a pair of slices, or of index
        arrays of distinct sites): excess ``e``, σ ``sd``, neighbours' ``spill`` (DN) and ``ok``
        (plain neighbourhood). With ``g_before`` the photo is in already: only the sums that depend
        on its dark factor move from ``g_before`` to ``g``; with ``g`` None as well, all it added
        is taken out again (its factor at ``g_before``). Returns how many of them counted."""
        counted = ok & (spill < np.maximum(SPILL_MAX * e, SPILL_NOISE * SPILL_NOISE_SD * sd))
        zero = np.float32(0.0)
        out = g is None  # take the photo out
        sign = np.float32(-1.0 if out else 1.0)
        if out:
            g, g_before = g_before, None
        w = np.where(counted, sign / (sd * sd), zero)
        s = _Sites(self.sums, at)
        if g_before is not None:
            s["wg"] += w * np.float32(g - g_before)
            s["wgg"] += w * np.float32(g * g - g_before * g_before)
            s["weg"] += w * e * np.float32(g - g_before)
            return int(counted.sum())
        s["w"] += w
        s["wg"] += w * np.float32(g)
        s["wgg"] += w * np.float32(g * g)
        we = w * e
        s["we"] += we
        s["weg"] += we * np.float32(g)
        we *= e
        s["wee"] += we
        z = e / sd
        s["zc"] += np.where(counted, sign * np.clip(z, -Z_CLIP, Z_CLIP), zero)
        if self.tracked:  # over every photo whose neighbourhood is plain, not only those that counted: a
            # faint star counts in the photos where its spill hid in the noise; summing only those would
            # keep the photos that make it look like a single site
            s["e"] += np.where(ok, sign * e, zero)
            s["spill"] += np.where(ok, sign * spill, zero)
            s["n_ok"] += sign * ok
        c = _Sites(self.counts, at)
        step = np.int16(-1 if out else 1)
        c["counted"] += step * counted
        c["hit"] += step * (counted & (z >= Z_HIT))
        c["high"] += step * (counted & (z >= Z_HIGH))
        return int(counted.sum())

    # -- the sufficient statistics of a profile -------------------------------------------------------
    def sufficient(self) -> dict[str, np.ndarray]:
        """The sums and counts of every site with non-negligible evidence, sparse: ``yx`` (K, 2) int32
        full frame, ``sums`` (K, len(SUMS)) float32 in :data:`SUMS` order, ``counts`` (K, len(COUNTS)) uint16.

        Chosen and gathered per block of rows (the accumulators are alive: no full-frame temporary,
        and the outputs are allocated once at their final size)."""
        h, w = self.box
        step = 4 * ACCUMULATE_ROWS
        picked = []  # (first row, flat indices inside the block, int32)
        for r0 in range(0, h, step):
            rows = slice(r0, min(r0 + step, h))
            z = robust_z(self.sums["zc"][rows], self.counts["counted"][rows])
            keep = z >= Z_KEEP
            keep |= self.counts["hit"][rows] >= 2
            picked.append((r0, np.flatnonzero(keep).astype(np.int32)))
            del z, keep
        k = sum(len(idx) for _, idx in picked)
        yx = np.empty((k, 2), np.int32)
        sums = np.zeros((k, len(SUMS)), np.float32)
        counts = np.empty((k, len(COUNTS)), np.uint16)
        t, l, _, _ = self.active_area
        o = 0
        for r0, idx in picked:
            rows = slice(r0, min(r0 + step, h))
            sel = slice(o, o + len(idx))
            yx[sel, 0] = idx // w + (r0 + t)
            yx[sel, 1] = idx % w + l
            for j, key in enumerate(SUMS):
                if key in self.sums:
                    sums[sel, j] = self.sums[key][rows].reshape(-1)[idx]
            for j, key in enumerate(COUNTS):
                counts[sel, j] = self.counts[key][rows].reshape(-1)[idx]
            o += len(idx)
        return {"yx": yx, "sums": sums, "counts": counts}

    def load_sufficient(self, yx: np.ndarray, sums: np.ndarray, counts: np.ndarray, n_photos: int) -> None:
        """Put a profile's stored sums back (before adding more photos); sites outside are ignored."""
        t, l, _, _ = self.active_area
        iy = np.asarray(yx[:, 0], np.int64) - t
        ix = np.asarray(yx[:, 1], np.int64) - l
        inside = (iy >= 0) & (iy < self.box[0]) & (ix >= 0) & (ix < self.box[1])
        iy_t, ix_t = iy[inside], ix[inside]
        for j, k in enumerate(SUMS):
            if k not in self.sums:
                continue
            self.sums[k][iy_t, ix_t] = sums[inside, j].astype(np.float32)
        for j, k in enumerate(COUNTS[:counts.shape[1]]):  # profiles before "surprise" was counted: 0
            self.counts[k][iy_t, ix_t] = np.minimum(counts[inside, j], 32767).astype(np.int16)
        self.n_photos = int(n_photos)

    # -- decisions -----------------------------------------------------------------------------------
    def finish(self) -> LearnedFit:
        """The learned sites and their models (see the module docstring)."""
        c, s = self.counts, self.sums
        z_all = robust_z(s["zc"], c["counted"])
        enough = c["counted"] >= MIN_COUNTED
        cold = enough & (z_all <= -Z_LEARN) & (c["counted"] - c["hit"] >= MIN_HITS)
        flickers = (c["high"] >= RTS_MIN_HIGH) & (c["high"] >= RTS_MIN_SHARE * c["counted"])
        learned = enough & (((z_all >= Z_LEARN) & (c["hit"] >= MIN_HITS)) | flickers)
        learned &= ~self._next_to(cold)  # a dead neighbour in the ring lowers its mean: not a hot pixel
        learned |= cold
        if self.tracked:
            learned &= single_site_over_photos(s["spill"], s["e"], s["w"], c["counted"], s["n_ok"])
        iy, ix = np.nonzero(learned)
        t, l, _, _ = self.active_area
        yx = np.stack([iy + t, ix + l], axis=1).astype(np.int64).reshape(-1, 2)
        v = {k: s[k][iy, ix].astype(np.float64) for k in s}
        counted = c["counted"][iy, ix].astype(np.int64)
        offset, rate, rss, pred2 = fit_sites(v, counted)
        dof = np.maximum(counted - 2, 1)
        allowed = dof + MODEL_TOLERANCE ** 2 * pred2
        high = c["high"][iy, ix].astype(np.int64)
        is_cold = cold[iy, ix]
        surprise = c["surprise"][iy, ix].astype(np.int64)
        jumps = (surprise >= SURPRISE_MIN) & (surprise >= SURPRISE_SHARE * counted)
        unstable = ((rss > RTS_CHI2 * allowed) | jumps) & (high >= 2) & ~is_cold
        keep = np.ones(len(yx), bool)
        if self.tracked and len(yx):
            keep = self._single_site_on_stack(yx, hot=~is_cold)
        if self.factors:  # a hot site must stand out at the photos' median settings, not only in their sum
            g_med = float(np.median(self._with_signal(self.factors)))
            sd_med = np.sqrt(counted / np.maximum(v["w"], 1e-30))
            visible = offset + rate * g_med >= MIN_SIGMA_AT_MEDIAN * sd_med
            keep &= visible | unstable | is_cold | flickers[iy, ix]
        z = z_all[iy, ix].astype(np.float64)
        scatter = np.sqrt(np.maximum(rss, 0) / np.maximum(v["w"], 1e-30))
        per_tag = float(np.median(self._with_signal(self.scales))) if self.scales else 1.0  # per unit of the *tag* factor
        rate = rate * per_tag
        return LearnedFit(yx=yx[keep], cold=is_cold[keep], offset_dn=offset[keep].astype(np.float32), rate_dn=rate[keep].astype(np.float32),
                          unstable=unstable[keep], counted=counted[keep], hit=c["hit"][iy, ix].astype(np.int64)[keep],
                          high=high[keep], z=z[keep], scatter_dn=scatter[keep].astype(np.float32))

    def _with_signal(self, values: list[float]) -> list[float]:
        """``values`` (one per photo of :attr:`factors`) of the photos that showed a dark signal (a
        photo measured again may have turned out to show none); all of them when none did."""
        kept = [v for v, sc in zip(values, self.scales) if sc >= NO_DARK_SIGNAL]
        return kept or list(values)

    def _next_to(self, mask: np.ndarray) -> np.ndarray:
        """(box) bool: sites with a ``mask`` site in their same-colour ring."""
        from ..candidates import ring_offsets

        out = np.zeros_like(mask)
        t, l, _, _ = self.active_area
        h, w = mask.shape
        rows, cols = self.cfa.repeat
        for py in range(rows):
            for px in range(cols):
                for dy, dx in ring_offsets(self.cfa, _phase_at(self.cfa, t + py, l + px)).tolist():
                    ys, xs = slice(py, h, rows), slice(px, w, cols)
                    src = np.zeros_like(mask)
                    y0, y1 = max(0, -dy), h - max(0, dy)
                    x0, x1 = max(0, -dx), w - max(0, dx)
                    src[y0:y1, x0:x1] = mask[y0 + dy:y1 + dy, x0 + dx:x1 + dx]
                    out[ys, xs] |= src[ys, xs]
        return out

    def _single_site_on_stack(self, yx: np.ndarray, hot: np.ndarray) -> np.ndarray:
        """The batch code's tracked-series test on the mean stack of the photos added in this run;
        the touching sites' rings are measured with the learned hot sites (``yx[hot]``) repaired, so
        a hot pixel beside a faint star cannot hide the star's spill."""
        from ..correct.batch import _single_site
        from ..candidates import NoiseModel

        n = max(self.n_photos, 1)
        a, b, floor = self._noise_sum / n
        stack = self.stack_sum / np.float32(n)
        t, l, bottom, right = self.active_area  # the stack test's rings need 3 px: the edge band has the summed test
        inner = ((yx[:, 0] >= t + MARGIN) & (yx[:, 0] < bottom - MARGIN)
                 & (yx[:, 1] >= l + MARGIN) & (yx[:, 1] < right - MARGIN))
        keep = np.ones(len(yx), bool)
        if inner.any():
            keep[inner] = _single_site(stack, self.cfa, yx[inner], NoiseModel(float(a), float(b), float(floor)), n,
                                       self._black_sum / n, hot_yx=yx[inner & hot])
        return keep

    def mean_noise_floor_dn(self) -> float:
        """σ at black of the photos' noise models, averaged (DN)."""
        a, _, floor = self._noise_sum / max(self.n_photos, 1)
        return float(math.sqrt(max(a, floor, 0.0)))


def _no_dark_signal(scale) -> bool:
    """A photo's own factor (a :class:`~hotpixels.correct.learnedscale.PhotoScale`) says it shows no
    dark signal: measured, and below ``NO_DARK_SIGNAL`` by ``NO_SIGNAL_SIGMAS`` standard errors (a
    short exposure, whose hot pixels barely show, measures ~0 too, but loosely)."""
    return (scale.method == "fit" and scale.stderr is not None
            and scale.scale + NO_SIGNAL_SIGMAS * scale.stderr < NO_DARK_SIGNAL)


def _edge_band(cfa: CfaPattern, active_area) -> tuple:
    """The edge band's geometry: ``(ring members, yx4, inner3, nb)``: ``yx4`` (N, 2) the sites
    within ``MARGIN + 1`` px of the ActiveArea's edge with their ring members, ``inner3`` the
    indices of those within ``MARGIN`` px (the ones folded in), ``nb`` (len(inner3), 4) the index in
    ``yx4`` of each one's orthogonal neighbours (-1 outside the ActiveArea)."""
    from ..ringat import ring_members_at

    t, l, b, r = (int(v) for v in active_area)
    h, w = b - t, r - l

    def band(d):
        rows = np.unique(np.r_[np.arange(min(d, h)), np.arange(max(h - d, 0), h)])
        full = np.stack(np.meshgrid(rows, np.arange(w), indexing="ij"), -1).reshape(-1, 2)
        mid_rows = np.setdiff1d(np.arange(h), rows)
        cols = np.unique(np.r_[np.arange(min(d, w)), np.arange(max(w - d, 0), w)])
        side = np.stack(np.meshgrid(mid_rows, cols, indexing="ij"), -1).reshape(-1, 2)
        yx = np.concatenate([full, side])
        return yx[np.argsort(yx[:, 0] * w + yx[:, 1], kind="stable")]

    yx4 = band(MARGIN + 1)
    lin4 = yx4[:, 0] * w + yx4[:, 1]
    yx3 = band(MARGIN)
    inner3 = np.searchsorted(lin4, yx3[:, 0] * w + yx3[:, 1])
    nb = np.full((len(yx3), 4), -1, np.int64)
    for j, (dy, dx) in enumerate(((-1, 0), (1, 0), (0, -1), (0, 1))):
        y, x = yx3[:, 0] + dy, yx3[:, 1] + dx
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        nb[inside, j] = np.searchsorted(lin4, y[inside] * w + x[inside])
    yx4 = yx4 + np.array([t, l])
    return ring_members_at(cfa, yx4, active_area), yx4, inner3, nb


class _Sites:
    """``arrays[key][at]`` for ``+=``: a view added in place when ``at`` is a pair of slices, a
    gather written back when it is a pair of index arrays (distinct sites)."""

    def __init__(self, arrays: dict[str, np.ndarray], at):
        self.arrays, self.at = arrays, at
        self.view = isinstance(at[0], slice)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key][self.at]

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        if not self.view:  # a view was changed in place already
            self.arrays[key][self.at] = value


def _phase_at(cfa: CfaPattern, y: int, x: int) -> tuple[int, int]:
    py, px = cfa.phase_of(np.array([y]), np.array([x]))
    return int(py[0]), int(px[0])


def robust_z(zc_sum: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """The evidence of excess in standard errors: the sum of the clipped per-photo z over sqrt(photos)."""
    out = counted.astype(np.float32)  # one full-frame temporary (this runs with the accumulators alive)
    np.maximum(out, 1.0, out=out)
    np.sqrt(out, out=out)
    return np.divide(zc_sum, out, out=out)


def single_site_over_photos(spill_sum: np.ndarray, e_sum: np.ndarray, w_sum: np.ndarray,
                            counted: np.ndarray, n_ok: np.ndarray) -> np.ndarray:
    """The single-site test summed over the ``n_ok`` photos where a site's neighbourhood was plain
    (not bright, structured or saturated; whether or not the site passed the per-photo spill test):
    its neighbours' summed spill stays under ``SPILL_MAX_SUM`` of its summed excess plus
    ``SPILL_NOISE_SUM`` σ of that sum's noise (``SPILL_NOISE_SD`` x the photos' σ, added in quadrature:
    ``sqrt(n_ok) x sqrt(counted / Σ 1/σ²)``, the σ averaged over the photos that counted). Summed,
    the noise grows as sqrt(n) while a star's spill grows as n, so a faint star that sits on one
    site in every photo of a tracked series fails where one photo could not tell. The sums run over
    every plain photo, not only those where the site counted: a star near the threshold spreads
    visibly over its neighbours in some photos (seeing, focus, sub-pixel tracking drift) and counts
    only in the others, and those alone would make it look like a single site."""
    sd = np.sqrt(counted.astype(np.float32) / np.maximum(w_sum, 1e-30))
    noise = SPILL_NOISE_SUM * SPILL_NOISE_SD * np.sqrt(n_ok.astype(np.float32)) * sd
    return spill_sum < SPILL_MAX_SUM * np.maximum(e_sum, 0.0) + noise


def _middle_spill(excess: np.ndarray) -> np.ndarray:
    """Per inner site, the mean of the middle two of its 4 orthogonal neighbours' excesses: a star
    lights all four, a neighbouring hot pixel (a defect cluster) only one."""
    n = (excess[:-2, 1:-1], excess[2:, 1:-1], excess[1:-1, :-2], excess[1:-1, 2:])
    total = n[0] + n[1] + n[2] + n[3]
    hi = np.maximum(np.maximum(n[0], n[1]), np.maximum(n[2], n[3]))
    lo = np.minimum(np.minimum(n[0], n[1]), np.minimum(n[2], n[3]))
    return (total - hi - lo) * 0.5


def fit_sites(v: dict[str, np.ndarray], counted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares of ``e = offset + rate x g`` per site from the sums ``v`` (keys
    :data:`SUMS`); the offset has a prior 0 weighing ``OFFSET_PRIOR_PHOTOS`` average photos.

    Returns ``(offset_dn, rate_dn, rss, Σw pred²)``: the residual sum of squares in units of σ²
    and the weighted sum of the squared predictions (for the relative model tolerance).
    """
    sw, sg, sgg, se, seg, see = (v[k] for k in ("w", "wg", "wgg", "we", "weg", "wee"))
    lam = OFFSET_PRIOR_PHOTOS * sw / np.maximum(counted, 1)
    a11 = sw + lam
    det = a11 * sgg - sg * sg
    good = det > 1e-12 * np.maximum(a11 * sgg, 1e-30)
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(good, (sgg * se - sg * seg) / det, 0.0)
        rate = np.where(good, (a11 * seg - sg * se) / det, np.where(sgg > 0, seg / np.maximum(sgg, 1e-30), 0.0))
    pred2 = offset * offset * sw + 2 * offset * rate * sg + rate * rate * sgg
    rss = see - 2 * offset * se - 2 * rate * seg + pred2
    return offset, rate, np.maximum(rss, 0.0), pred2
