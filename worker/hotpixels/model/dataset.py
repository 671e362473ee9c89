"""Training patches for the residual classifier, from the seeded sensor simulator.

Each training *frame* is a small (default 128 x 128 active) simulated light frame:

* a scene from :func:`hotpixels.simulate.scene.make_scene` — ``stars``, ``foreground``,
  ``narrowband`` (stars on red sites only), ``noaa`` (sigma 0.3-0.6 px stars) or ``real`` (crops of
  the real Canon sample DNG, re-mosaicked into the frame's CFA) — rendered with
  :func:`hotpixels.simulate.scene.render_scene_e_s`; star density is raised (2000-8000 per MP) and,
  for half of the broadband frames, star widths are drawn from 0.3-0.8 px, so that very sharp
  stars — the hard negatives — are common;
* sometimes a saturated blob (a clipped bright star or lamp) with a soft edge;
* a random camera: any Bayer phase or X-Trans, gain 0.3-8 e-/DN, read noise 1.5-8 e-, black
  0-2048 DN, 12/14/16-bit white level, exposure chosen so the sky holds 5-3000 e-;
* shot (Poisson) and read (Gaussian) noise, quantised like an ADC;
* residual hot pixels with known amplitude in σ of their local background (log-uniform 3-300 σ,
  extra weight at 3-14 σ); those under ``MIN_LABEL_SIGMA`` are left out of the samples (neither
  hot nor clean): a 3-4 σ spike cannot be told from a noise peak, and calling it hot would teach
  the network to call noise peaks hot; 30 % with a touching partner (any of the 8 neighbours, 0.5-1x the
  amplitude), anywhere in the frame (on stars and texture too).

The frame then goes through the *same* code as at inference — noise-model fit, candidate
detector, patch features — and every candidate becomes one sample, labelled 1 when it is an
injected hot pixel. Star cores and noise peaks that pass the candidate detector are thereby the
negatives (hard negatives by construction). Everything is drawn from ``rng_for(seed, ...)``
streams, so a seed reproduces the data bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..candidates import estimate_noise, find_candidates
from ..dng.cfa import CfaPattern
from ..progress import ProgressFn, check_cancel, report
from ..simulate.scene import make_scene, render_scene_e_s
from ..simulate.sensor import make_sensor, rng_for
from .features import frame_context, patch_features

KINDS = ("stars", "foreground", "narrowband", "noaa", "real")
KIND_WEIGHTS = (0.25, 0.15, 0.2, 0.2, 0.2)
CFA_NAMES = ("RGGB", "BGGR", "GRBG", "GBRG", "XTRANS")
CFA_WEIGHTS = (0.19, 0.19, 0.19, 0.18, 0.25)
REAL_SAMPLE = "tinydng_colorchart.dng"
MIN_LABEL_SIGMA = 4.5
# touching pairs are where strong hot pixels are missed most (a pair looks like a two-site sharp star)
PAIR_FRACTION = 0.3
# stars per MP (uniform) and the share of broadband frames with very sharp stars (sigma 0.3-0.8 px):
# dense and sharp on purpose, so star cores are plentiful hard negatives. Tried and not kept: 300-8000
# stars per MP log-uniform, 35-45 % sharp, 256 x 256 frames, hot pixels 1e-4-1.5e-3 per site (a
# closer match of the frame context to big frames): no better on ordinary stars, worse without AA.
STAR_DENSITY = (2000.0, 8000.0)
SHARP_FRACTION = 0.5
FRAME_SIZE = 128
HOT_PER_SITE = 1.2e-3  # residual hot pixels per active site


def default_samples_dir() -> Path:
    """The repository's ``tests/data`` (it holds ``REAL_SAMPLE``; see tests/data/README.md)."""
    return Path(__file__).resolve().parents[3] / "tests" / "data"


@dataclass
class TrainingFrame:
    """One simulated frame with its truth; DN arrays are full-frame."""

    cfa_dn: np.ndarray
    cfa: CfaPattern
    active_area: tuple[int, int, int, int]
    black_dn: float
    white_dn: float
    hot_yx: np.ndarray  # (M, 2) full-frame
    hot_sigma: np.ndarray  # (M,) amplitude in σ of the local background
    kind: str
    expected_dn: np.ndarray | None = None  # noiseless scene + black (for star checks)
    info: dict = field(default_factory=dict)


@lru_cache(maxsize=2)
def _real_content(path: str, h: int, w: int) -> np.ndarray:
    """(h, w, 3) e-/s real scene content of a sample DNG (via the simulator's 'real' scene)."""
    sensor = make_sensor("small", 0, height=h + 7, width=w + 11)
    return make_scene(sensor, "real", 0, scene_from=path).real_e_s


def make_frame(seed: int, index: int, size: int = FRAME_SIZE, samples_dir: Path | None = None,
               typical: bool = False) -> TrainingFrame:
    """Training frame number ``index`` of ``seed`` (see the module docstring).

    ``typical``: the simulator's own scene statistics instead of the dense, sharp training skies (1200
    stars per MP, sigma 0.5-1.5 px; 0.3-0.6 px without AA filter): the frames the decision threshold
    is calibrated on.
    """
    rng = rng_for(seed, "train-frame", index)
    kind = str(rng.choice(KINDS, p=KIND_WEIGHTS))
    cfa_name = str(rng.choice(CFA_NAMES, p=CFA_WEIGHTS))
    sensor = make_sensor("small", int(rng.integers(1 << 30)), cfa=cfa_name, height=size + 7, width=size + 11)
    density = float(rng.uniform(*STAR_DENSITY))
    sigma_range = None
    if kind in ("stars", "foreground", "real") and rng.random() < SHARP_FRACTION:
        sigma_range = (0.3, 0.8)
    if typical:
        density, sigma_range = None, None
    scene_kind = "stars" if kind == "real" else kind
    scene = make_scene(sensor, scene_kind, int(rng.integers(1 << 30)), star_density_per_mpx=density,
                       sigma_range_px=sigma_range)
    if kind == "real":
        samples = samples_dir or default_samples_dir()
        big = _real_content(str(samples / REAL_SAMPLE), 591, 944)
        y0 = int(rng.integers(0, big.shape[0] - size))
        x0 = int(rng.integers(0, big.shape[1] - size))
        h, w = sensor.active_shape
        scene.real_e_s = big[y0:y0 + h, x0:x0 + w] * np.float32(rng.uniform(0.2, 5.0))
    rate = render_scene_e_s(sensor, scene)

    gain = float(np.exp(rng.uniform(np.log(0.3), np.log(8.0))))
    read_e = float(rng.uniform(1.5, 8.0))
    bits = int(rng.choice([12, 14, 16]))
    white = float((1 << bits) - 1)
    black = float(rng.choice([0.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0])) if bits > 12 else float(rng.choice([0.0, 64.0, 128.0, 256.0]))
    t, l, b, r = sensor.active_area
    act = rate[t:b, l:r]
    # the median over lit sites: a narrowband sky lights red sites only, and the median over all
    # sites (0 there) would blow the exposure up until every star saturates
    sky = float(np.median(act[act > 0])) if (act > 0).any() else 1.0
    exposure = float(np.exp(rng.uniform(np.log(5.0), np.log(3000.0)))) / max(sky, 1e-3)
    signal_e = rate * np.float32(exposure)
    if rng.random() < 0.2:  # a saturated bright blob (clipped star or lamp)
        _add_blob(rng, signal_e, sensor.active_area, white * gain)

    expected_dn = signal_e / gain + black
    electrons = rng.poisson(signal_e).astype(np.float32) + rng.normal(0.0, read_e, signal_e.shape).astype(np.float32)
    hot_yx, hot_sigma, hot_dn = _hot_pixels(rng, signal_e, sensor, scene, gain, read_e)
    dn = electrons / np.float32(gain) + np.float32(black)
    np.add.at(dn, (hot_yx[:, 0], hot_yx[:, 1]), hot_dn.astype(np.float32))
    dn[:t] = black
    dn[b:] = black
    dn[:, :l] = black
    dn[:, r:] = black
    cfa_dn = np.clip(np.rint(dn), 0, white).astype(np.uint16)
    return TrainingFrame(cfa_dn, sensor.cfa, sensor.active_area, black, white, hot_yx, hot_sigma, kind,
                         expected_dn=expected_dn, info=dict(gain=gain, read_e=read_e, cfa=cfa_name))


def _add_blob(rng, signal_e: np.ndarray, active_area, full_e: float) -> None:
    t, l, b, r = active_area
    cy, cx = rng.uniform(t, b), rng.uniform(l, r)
    rad = rng.uniform(1.5, 8.0)
    yy, xx = np.mgrid[: signal_e.shape[0], : signal_e.shape[1]]
    d = np.hypot(yy - cy, xx - cx)
    signal_e += (full_e * rng.uniform(0.9, 3.0) * np.clip(1.5 - d / rad, 0, 1)).astype(np.float32)


def _hot_pixels(rng, signal_e, sensor, scene, gain, read_e):
    """Random residual hot pixels: (yx (M, 2), amplitude in σ (M,), amplitude in DN (M,))."""
    t, l, b, r = sensor.active_area
    h, w = b - t, r - l
    n = int(rng.poisson(h * w * HOT_PER_SITE)) + 2
    ys = rng.integers(t + 2, b - 2, n)
    xs = rng.integers(l + 2, r - 2, n)
    u = rng.random(n)
    amp = np.where(u < 0.45, rng.uniform(3.0, 14.0, n), np.exp(rng.uniform(np.log(3.0), np.log(300.0), n)))
    pair = rng.random(n) < PAIR_FRACTION
    d = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])
    pd = d[rng.integers(0, 8, n)]
    py, px = np.clip(ys + pd[:, 0], t + 2, b - 3), np.clip(xs + pd[:, 1], l + 2, r - 3)
    yx = np.concatenate([np.stack([ys, xs], 1), np.stack([py, px], 1)[pair]])
    sig = np.concatenate([amp, amp[pair] * rng.uniform(0.5, 1.0, int(pair.sum()))])
    _, first = np.unique(yx[:, 0] * signal_e.shape[1] + yx[:, 1], return_index=True)
    yx, sig = yx[first], sig[first]
    bg_e = _local_background_e(signal_e, yx)
    sigma_dn = np.sqrt(read_e ** 2 + bg_e) / gain
    return yx.astype(np.int64), sig, sig * sigma_dn


def _local_background_e(signal_e: np.ndarray, yx: np.ndarray) -> np.ndarray:
    """Noiseless level (e-) of the ring of each site (the 'local background' of the σ unit)."""
    offs = np.array([(0, 2), (0, -2), (2, 0), (-2, 0), (2, 2), (2, -2), (-2, 2), (-2, -2)])
    h, w = signal_e.shape
    yy = np.clip(yx[:, 0, None] + offs[None, :, 0], 0, h - 1)
    xx = np.clip(yx[:, 1, None] + offs[None, :, 1], 0, w - 1)
    return np.median(signal_e[yy, xx], axis=1)


@dataclass
class PatchSet:
    """Network inputs, labels and what each sample is (for the validation report)."""

    x: torch.Tensor  # (N, C, P, P) float32
    ctx: torch.Tensor  # (N, N_CONTEXT) float32 frame context (computed per frame)
    y: torch.Tensor  # (N,) float32 0/1
    amp_sigma: np.ndarray  # (N,) injected amplitude for positives, 0 for negatives
    kind: np.ndarray  # (N,) scene kind
    frame: np.ndarray  # (N,) frame index
    n_sites: int  # active sites examined (for false detections per megapixel)
    missed: np.ndarray  # amplitudes (σ) of hot pixels the candidate detector did not propose


def frame_patches(frame: TrainingFrame):
    """Candidates of ``frame`` as (features, frame context, labels, amplitudes, n_missed_amplitudes).

    The context comes from the candidates the detector would score at inference (those above the
    lowest amplitude gate); the samples are every candidate but injected sites under ``MIN_LABEL_SIGMA``.
    """
    noise = estimate_noise(frame.cfa_dn, frame.cfa, frame.active_area, frame.black_dn)
    cand = find_candidates(frame.cfa_dn, frame.cfa, frame.active_area, noise, frame.black_dn)
    w = frame.cfa_dn.shape[1]
    hot_lin = frame.hot_yx[:, 0] * w + frame.hot_yx[:, 1]
    cand_lin = cand.yx[:, 0] * w + cand.yx[:, 1]
    label = np.isin(cand_lin, hot_lin)
    amp = np.zeros(len(cand))
    if len(hot_lin):
        order = np.argsort(hot_lin)
        pos = np.searchsorted(hot_lin[order], cand_lin[label])
        amp[label] = frame.hot_sigma[order][pos]
    missed = frame.hot_sigma[~np.isin(hot_lin, cand_lin)]
    keep = ~label | (amp >= MIN_LABEL_SIGMA)
    x = patch_features(frame.cfa_dn, frame.cfa, cand.yx, noise, active_area=frame.active_area,
                       black_level_dn=frame.black_dn, white_level_dn=frame.white_dn)
    ctx = frame_context(x)  # bright candidates only: the same as at inference whatever the gate
    return torch.from_numpy(np.ascontiguousarray(x[keep])), torch.from_numpy(ctx[keep]), label[keep], amp[keep], missed


def make_patches(seed: int, n_frames: int, *, first: int = 0, size: int = FRAME_SIZE, samples_dir: Path | None = None,
                 progress: ProgressFn | None = None, cancel=None, typical: bool = False) -> PatchSet:
    """Samples of frames ``first .. first + n_frames - 1`` of ``seed``."""
    xs, cs, ys, amps, kinds, frames, missed = [], [], [], [], [], [], []
    n_sites = 0
    for i in range(first, first + n_frames):
        check_cancel(cancel)
        if (i - first) % 50 == 0:
            report(progress, i - first, n_frames, "simulating training frames")
        fr = make_frame(seed, i, size, samples_dir, typical=typical)
        x, ctx, label, amp, miss = frame_patches(fr)
        t, l, b, r = fr.active_area
        n_sites += (b - t - 4) * (r - l - 4)
        xs.append(x)
        cs.append(ctx)
        ys.append(torch.from_numpy(label.astype(np.float32)))
        amps.append(amp)
        kinds.append(np.full(len(label), fr.kind))
        frames.append(np.full(len(label), i))
        missed.append(miss)
    report(progress, n_frames, n_frames, "simulated")
    return PatchSet(torch.cat(xs), torch.cat(cs), torch.cat(ys), np.concatenate(amps), np.concatenate(kinds),
                    np.concatenate(frames), n_sites, np.concatenate(missed))
