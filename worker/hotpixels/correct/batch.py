"""Stage 3, batch evidence: a site that stands out at the same (y, x) in several frames is a defect.

Between tripod frames the sky turns, so stars and their cores move by pixels; the scene below the
horizon stays but has no single-site spikes; defects stay on their site. So, per frame, every site
gets ``z = (v - ring mean) / σ`` (same ring and noise model as the single-frame candidates, see
:mod:`hotpixels.candidates`) and the site must also exceed its ring maximum; a site that
does so with ``z >= z_frame`` in at least ``min_frames`` frames is a defect. A 5 σ defect passes a
3 σ per-frame test in about 96 % of the frames, pure noise in about 1e-3, a moving star in one.

Static scene texture recurs too (a tripod does not move the landscape), and on *tracked* frames
the stars stay on their sites as well. So a recurring site must also look like a hot pixel:

* on the *mean stack* of the frames, the stage-3 classifier (the same CNN as for single frames,
  with the stack's own noise model) scores its patch, where the noise is sqrt(N) lower and a 5 σ
  defect stands at about 16 σ, while star cores spread light over neighbouring sites and texture
  peaks sit in texture; *or*
* its *single-frame score*, the mean over the frames of the CNN's logit on the frame itself,
  passes the same cut. On the stack, static texture a few σ high can hide a defect that stands
  alone in every single frame (this lifted the tripod benchmark's recall from 0.93 to 0.95).

On tracked frames, additionally, the 4 orthogonally touching sites (other colours on Bayer) of the
stack must hold, on average, less than ``SPILL_MAX`` of the centre's excess over its ring plus
``SPILL_NOISE`` σ of that average's noise on the stack (a star of sigma 0.5 px puts 13-20 % of its
peak on each; the noise term keeps a weak defect on a short stack from failing on noise alone).
Each touching site's ring is measured with the other defects found repaired (replaced by their own
ring mean): a hot pixel in that ring would otherwise push the touching site's excess below 0 and
hide a faint star's spill (it let 1-2 of ~300 fixed stars through on simulated tracked series). A
red-only star of sigma <= 0.5 px is a single-site spike too and cannot be told apart from a defect
by either test.

**Streaming** (:class:`BatchEvidence`). A batch can be hundreds of 24 MP frames, so the frames are
fed one at a time and only fixed-size per-site accumulators are kept, 12 bytes per site however
many frames come: hit counts and scored-frame counts (int16), the running sum of the single-frame
logits (float32) and the running sum of the frames for the mean stack (float32; exact for whole DN
while a site's sum stays below 2**24, e.g. 1000 frames of a 16 000 DN sky). The single-frame
logit cannot be computed later (the frame is gone), and scoring every hit of every frame would
cost a CNN pass over about 1 % of the sites per frame; so a hit is scored when the site has stood
out in at least ``SCORE_SHARE`` of the frames so far, and at least twice — a site on its way to
recurring. Defects present in every frame are scored from their second frame on; noise peaks
and drifting stars, hit once or twice in a long batch, soon no longer are. The single-frame score
is the mean of the (clipped) logits over the scored frames. The classifier reads a frame's context
(how far its stars spread light) from the bright candidates of the same call, so each call also
carries up to ``CONTEXT_SITES`` of the frame's bright hits (``CONTEXT_SIGMA`` over the ring mean,
mostly star cores), whose own logits are not used; with a context-reading model this lifted the
tripod benchmark's recall from 0.93 to 0.95 at the same false sites.

``excess_dn`` and ``mean_sigma`` are read off the stack: the mean over the frames of the excess over
the ring mean (DN), and that excess in single-frame σ (the frames' mean noise model).
"""

from __future__ import annotations

import math

import numpy as np

from ..dng.cfa import CfaPattern
from ..errors import InvalidOption
from ..candidates import K_MAX, NoiseModel, estimate_noise, mean_black, ring_offsets, ring_stats

Z_FRAME = 3.0
SPILL_MAX = 0.08
SPILL_NOISE = 2.0  # σ of the stack's noise on the mean of 4 touching sites, added to the spill allowance
BATCH_SENSITIVITY = 0.8  # recurrence is strong evidence already: a lower cut on the stack
SCORE_SHARE = 0.5  # a hit is scored by the CNN when its site stood out in this share of the frames so far
LOGIT_CLIP = 10.0  # single-frame logits are clipped to ±this before averaging (one star crossing stays one vote)
CONTEXT_SIGMA = 10.0  # hits this far over their ring mean (σ) show the classifier the frame's stars
CONTEXT_SITES = 512  # at most this many of them per call (evenly spread over the frame)
MAX_FRAMES = int(np.iinfo(np.int16).max)  # per-site counts are int16
MARGIN = 2  # sites within 2 px of the ActiveArea edge are not examined (their ring would leave it)


class BatchEvidence:
    """Recurring single-site anomalies over a stream of frames of one body and layout.

    ``cfa``, ``active_area`` (top, left, bottom, right; full frame) and ``shape`` (H, W of the raw
    IFD) describe the frames; ``black_level_dn`` (scalar, repeat or map; its mean is used) and
    ``white_level_dn`` are in DN. Feed each (H, W) CFA frame (DN as stored) to :meth:`add`; the
    accumulator keeps no frame. :meth:`finish` decides. ``detector``: a
    :class:`hotpixels.model.load.Detector` (default: the process-wide one, loaded on first need).
    """

    def __init__(self, cfa: CfaPattern, active_area, shape, *, black_level_dn=0.0, white_level_dn: float = 65535.0,
                 tracked: bool = False, z_frame: float = Z_FRAME, detector=None):
        self.cfa = cfa
        self.active_area = tuple(int(v) for v in active_area)
        self.shape = (int(shape[0]), int(shape[1]))
        t, l, b, r = self.active_area
        box = (max(b - t - 2 * MARGIN, 0), max(r - l - 2 * MARGIN, 0))
        self.black_dn = mean_black(black_level_dn)
        self.white_level_dn = float(white_level_dn)
        self.tracked = bool(tracked)
        self.z_frame = float(z_frame)
        self.detector = detector
        self.n_frames = 0
        self.hits = np.zeros(box, dtype=np.int16)  # frames where the site stood out
        self.scored = np.zeros(box, dtype=np.int16)  # of those, frames the CNN scored
        self.logit_sum = np.zeros(box, dtype=np.float32)  # sum of the scored frames' clipped logits
        self.stack_sum = np.zeros(self.shape, dtype=np.float32)  # sum of the frames (DN)
        self._noise_sum = np.zeros(3)  # a_dn2, b_dn, floor_dn2 of the frames' noise models, summed

    @property
    def nbytes(self) -> int:
        """Bytes held by the per-site accumulators (independent of the number of frames added)."""
        return int(sum(a.nbytes for a in (self.hits, self.scored, self.logit_sum, self.stack_sum, self._noise_sum)))

    def add(self, frame_dn: np.ndarray) -> None:
        """Take one (H, W) CFA frame (DN); the caller may drop it afterwards."""
        if frame_dn.shape != self.shape:
            raise InvalidOption(f"a frame of {frame_dn.shape[1]} x {frame_dn.shape[0]} does not belong to a batch of "
                                f"{self.shape[1]} x {self.shape[0]} frames", data={"param": "frames"})
        if self.n_frames >= MAX_FRAMES:
            raise InvalidOption(f"a batch holds at most {MAX_FRAMES} frames", data={"param": "frames"})
        self.n_frames += 1
        noise = estimate_noise(frame_dn, self.cfa, self.active_area, self.black_dn)
        self._noise_sum += (noise.a_dn2, noise.b_dn, noise.floor_dn2)
        yx, bright = self._count_hits(frame_dn, noise)
        self._score(frame_dn, noise, yx, bright)
        self.stack_sum += frame_dn

    def _count_hits(self, frame_dn: np.ndarray, noise) -> tuple[np.ndarray, np.ndarray]:
        """Count this frame's hits; return the (N, 2) full-frame sites to score and the (M, 2) other
        bright hits for the classifier's context (see the module docstring)."""
        t, l, _, _ = self.active_area
        need = max(2, math.ceil(SCORE_SHARE * self.n_frames))
        score, bright = [], []
        for y0, centre, mean, peak in ring_stats(frame_dn, self.cfa, self.active_area):
            rows = slice(y0 - t - MARGIN, y0 - t - MARGIN + centre.shape[0])
            sd = noise.sigma_dn(mean - self.black_dn)
            excess = centre - mean
            hit = (excess >= self.z_frame * sd) & ((centre - peak) > K_MAX * sd)
            counts = self.hits[rows]
            counts += hit
            scored = hit & (counts >= need)
            score.append(_full_frame(scored, y0, l))
            bright.append(_full_frame(hit & ~scored & (excess >= CONTEXT_SIGMA * sd), y0, l))
        if not score:
            return np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64)
        bright_yx = np.concatenate(bright)
        step = math.ceil(len(bright_yx) / CONTEXT_SITES)
        return np.concatenate(score), bright_yx[::max(step, 1)]

    def _score(self, frame_dn: np.ndarray, noise, yx: np.ndarray, context_yx: np.ndarray) -> None:
        """Add the CNN's clipped single-frame logits at ``yx`` to the running sums (``context_yx``
        ride along in the same call for the classifier's frame context)."""
        if not len(yx):
            return
        from ..model.features import patch_features

        x = patch_features(frame_dn, self.cfa, np.concatenate([yx, context_yx]), noise, active_area=self.active_area,
                           black_level_dn=self.black_dn, white_level_dn=self.white_level_dn)
        logits = np.clip(np.asarray(_detector(self.detector).logits(x), np.float32)[:len(yx)], -LOGIT_CLIP, LOGIT_CLIP)
        t, l, _, _ = self.active_area
        iy, ix = yx[:, 0] - t - MARGIN, yx[:, 1] - l - MARGIN
        np.add.at(self.logit_sum, (iy, ix), logits)
        np.add.at(self.scored, (iy, ix), np.int16(1))

    def finish(self, min_frames: int | None = None, sensitivity: float = BATCH_SENSITIVITY) -> dict:
        """The defects: sites hit in ``min_frames`` frames that the stack or single-frame score accepts.

        ``min_frames`` defaults to ``max(2, ceil(0.5 * frames))``; ``sensitivity`` sets the cut of
        the classifier (see :func:`hotpixels.correct.residual.threshold_for`). Returns ``{"sites":
        (N, 2) full-frame, "frames_hit": (N,), "mean_sigma": (N,) mean excess over the ring mean in
        single-frame σ, "excess_dn": (N,) mean excess over the ring mean in DN, "stack_score": (N,)
        logit on the mean stack, "frame_score": (N,) mean single-frame logit over the scored frames
        (-inf when fewer than ``max(2, ceil(SCORE_SHARE * min_frames))`` were scored), "n_frames":
        int, "tracked": bool, "min_frames": int, "recurring": int}``. The accumulator can take more
        frames and finish again.
        """
        n = self.n_frames
        if min_frames is None:
            min_frames = max(2, math.ceil(0.5 * n))
        thr = _threshold(sensitivity, self.detector)  # validates sensitivity even for an empty batch
        t, l, _, _ = self.active_area
        iy, ix = np.nonzero(self.hits >= int(min_frames))
        yx = np.stack([iy + t + MARGIN, ix + l + MARGIN], axis=1).astype(np.int64).reshape(-1, 2)
        frames_hit = self.hits[iy, ix].astype(np.int64)
        scored = self.scored[iy, ix].astype(np.float64)
        min_scored = max(2, math.ceil(SCORE_SHARE * int(min_frames)))
        with np.errstate(divide="ignore", invalid="ignore"):
            frame_score = np.where(scored >= min_scored, self.logit_sum[iy, ix] / scored, -np.inf)
        stack = self.stack_sum / np.float32(max(n, 1)) if len(yx) else None
        excess, mean_z = self._excess(stack, yx)
        score = _stack_scores(stack, self.cfa, yx, self.active_area, self.black_dn, self.white_level_dn, self.detector)
        keep = (score > thr) | (frame_score > thr)
        if self.tracked and len(yx):
            keep &= _single_site(stack, self.cfa, yx, self._mean_noise(), n, self.black_dn, hot_yx=yx[keep])
        return {"sites": yx[keep], "frames_hit": frames_hit[keep], "mean_sigma": mean_z[keep],
                "excess_dn": excess[keep], "stack_score": score[keep], "frame_score": frame_score[keep],
                "n_frames": n, "tracked": self.tracked, "min_frames": int(min_frames), "recurring": int(len(yx))}

    def _excess(self, stack, yx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean excess over the ring mean (DN) on the stack, and in single-frame σ at the ring level."""
        if not len(yx):
            return np.zeros(0), np.zeros(0)
        ring = _ring_mean_at(stack, self.cfa, yx)
        excess = stack[yx[:, 0], yx[:, 1]].astype(np.float64) - ring
        sigma = self._mean_noise().sigma_dn(ring - self.black_dn)
        return excess, excess / sigma

    def _mean_noise(self) -> NoiseModel:
        """The frames' mean single-frame noise model."""
        a, b, floor = self._noise_sum / max(self.n_frames, 1)
        return NoiseModel(float(a), float(b), float(floor))


def _full_frame(mask: np.ndarray, y0: int, left: int) -> np.ndarray:
    """(N, 2) full-frame (y, x) of the true sites of a ``ring_stats`` chunk starting at row ``y0``."""
    iy, ix = np.nonzero(mask)
    return np.stack([iy + y0, ix + left + MARGIN], axis=1).astype(np.int64)


def detect_batch(frames, cfa: CfaPattern, *, active_area, tracked: bool = False,
                 min_frames: int | None = None, black_level_dn=0.0, z_frame: float = Z_FRAME,
                 white_level_dn: float = 65535.0, sensitivity: float = BATCH_SENSITIVITY, detector=None) -> dict:
    """Recurring single-site anomalies across ``frames`` ((H, W) full-frame CFA arrays, DN; any iterable).

    :class:`BatchEvidence` fed every frame, then :meth:`BatchEvidence.finish` (same result keys).
    """
    ev = None
    for f in frames:
        if ev is None:
            ev = BatchEvidence(cfa, active_area, f.shape, black_level_dn=black_level_dn, white_level_dn=white_level_dn,
                               tracked=tracked, z_frame=z_frame, detector=detector)
        ev.add(f)
    if ev is None:
        t, l, b, r = (int(v) for v in active_area)
        ev = BatchEvidence(cfa, active_area, (b, r), black_level_dn=black_level_dn, white_level_dn=white_level_dn,
                           tracked=tracked, z_frame=z_frame, detector=detector)
    return ev.finish(min_frames=min_frames, sensitivity=sensitivity)


def _detector(detector):
    from ..model.load import get_detector

    return detector if detector is not None else get_detector()


def _threshold(sensitivity: float, detector) -> float:
    from .residual import threshold_for

    return threshold_for(sensitivity, _detector(detector).meta)


def _stack_scores(stack, cfa, yx, active_area, black_level_dn, white_level_dn, detector) -> np.ndarray:
    from ..model.features import patch_features

    if not len(yx):
        return np.zeros(0)
    noise = estimate_noise(stack, cfa, active_area, black_level_dn)
    x = patch_features(stack, cfa, yx, noise, active_area=active_area, black_level_dn=black_level_dn,
                       white_level_dn=white_level_dn)
    return np.asarray(_detector(detector).logits(x), dtype=np.float64)


def _ring_mean_at(frame: np.ndarray, cfa: CfaPattern, yx: np.ndarray) -> np.ndarray:
    out = np.empty(len(yx))
    py, px = cfa.phase_of(yx[:, 0], yx[:, 1])
    for ph in set(zip(py.tolist(), px.tolist())):
        sel = (py == ph[0]) & (px == ph[1])
        offs = ring_offsets(cfa, ph)
        out[sel] = frame[yx[sel, 0, None] + offs[None, :, 0], yx[sel, 1, None] + offs[None, :, 1]].mean(axis=1)
    return out


def _single_site(stack, cfa, yx, noise: NoiseModel, n_frames: int, black_dn: float, *,
                 hot_yx: np.ndarray | None = None) -> np.ndarray:
    """On the mean stack of ``n_frames``: the mean excess of the 4 orthogonally touching sites (each
    over its own colour's ring) is under ``SPILL_MAX`` of the centre's excess plus ``SPILL_NOISE`` σ
    of its own noise (single-frame σ from ``noise`` / sqrt(frames) / 2 for the mean of 4).

    ``hot_yx``: the hot sites found (positive excess). A touching site's ring is measured with each
    of them replaced by its own ring mean: a hot pixel in that ring would lift the ring mean, push the
    touching site's excess below 0 and hide a faint star's spill. The touching sites' own values
    and the centre are read as stacked (a hot neighbour still counts as spill: a cluster or a star
    core is not a single site), so the repair can only make the test stricter. ``stack`` is changed
    during the call and restored before it returns."""
    centre_ex = stack[yx[:, 0], yx[:, 1]] - _ring_mean_at(stack, cfa, yx)
    touching = [yx + np.array(d) for d in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    values = [stack[nb[:, 0], nb[:, 1]].astype(np.float64) for nb in touching]
    saved = None
    if hot_yx is not None and len(hot_yx):
        hot_yx = np.asarray(hot_yx, np.int64).reshape(-1, 2)
        repaired = _ring_mean_at(stack, cfa, hot_yx)
        saved = stack[hot_yx[:, 0], hot_yx[:, 1]].copy()
        stack[hot_yx[:, 0], hot_yx[:, 1]] = repaired
    try:
        rings = [_ring_mean_at(stack, cfa, nb) for nb in touching]
    finally:
        if saved is not None:
            stack[hot_yx[:, 0], hot_yx[:, 1]] = saved
    spill = sum(v - r for v, r in zip(values, rings)) / 4.0
    level = sum(rings) / 4.0
    sigma_mean = noise.sigma_dn(level - black_dn) / np.sqrt(max(n_frames, 1)) / 2.0
    return spill < SPILL_MAX * np.maximum(centre_ex, 1e-9) + SPILL_NOISE * sigma_mean


def propose_profile_additions(result: dict, known_mask: np.ndarray | None = None) -> list[dict]:
    """Defects found by :func:`detect_batch` / :meth:`BatchEvidence.finish` that a profile lacks.

    ``known_mask`` (H, W) bool marks sites the profile already holds. Each entry:
    ``{"y", "x", "excess_dn", "frames_hit", "mean_sigma"}``. Writing the profile is not done here.
    """
    out = []
    for (y, x), ex, fh, mz in zip(result["sites"].tolist(), result["excess_dn"].tolist(),
                                  result["frames_hit"].tolist(), result["mean_sigma"].tolist()):
        if known_mask is not None and known_mask[y, x]:
            continue
        out.append({"y": int(y), "x": int(x), "excess_dn": float(ex), "frames_hit": int(fh), "mean_sigma": float(mz)})
    return out
