"""One frame from electrons to DN: the fast, array-only path (no files, no metadata).

Order of the physics, per site (full raw frame, masked border included):

1. expected photo-electrons ``scene_e_s * exposure_s`` (0 for a dark frame and in the border);
2. expected dark electrons ``rate_e_s * 2**((T - ref)/doubling) * exposure_s`` from the body's
   :class:`~.defects.DarkField`, RTS sites in this frame's state;
3. shot noise: independent Poisson draws of (1) and (2) (their sum is Poisson of the total);
4. read noise: Gaussian, ``read_noise_e``;
5. residual hot pixels (light frames only): extra electrons on random sites;
6. DN = electrons / gain (e-/DN at the ISO) + black level (per CFA phase), rounded, clipped to
   [0, white]; stuck-low sites then read their fixed value.

The *clean* frame uses the same draws of (1), (3 for the scene) and (4) but no dark signal and no
defects, so ``light - clean`` is exactly the dark signal plus defects (up to rounding and
clipping). The *expected* frame is (1) / gain + black without any noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .defects import DarkField, dark_rate_for_frame, make_dark_field, residual_hot_pixels, rts_states
from .scene import Scene, render_scene_e_s
from .sensor import SensorModel


@dataclass
class Frame:
    """Arrays of one simulated frame; DN arrays are full-frame (H, W)."""

    cfa_dn: np.ndarray  # uint16
    clean_dn: np.ndarray | None  # uint16: same noise, no dark signal/defects (lights only)
    expected_dn: np.ndarray | None  # float32: noiseless scene + black (lights only)
    dark_expected_dn: np.ndarray  # float32: expected dark signal above black (incl. RTS state)
    rts_high: np.ndarray  # (R,) bool, state of each RTS site in this frame
    residual_yx: np.ndarray  # (Q, 2) int32 full-frame
    residual_dn: np.ndarray  # (Q,) float32 injected amplitude in DN
    gain_e_per_dn: float
    temperature_factor: float


def quantise(dn: np.ndarray, white: int) -> np.ndarray:
    """Round to integers and clip to [0, white] as uint16 (an ADC)."""
    out = np.rint(dn, out=dn)
    np.clip(out, 0, white, out=out)
    return out.astype(np.uint16)


def render_frame(sensor: SensorModel, rng: np.random.Generator, *, exposure_s: float, temp_c: float, iso: float,
                 scene_e_s: np.ndarray | None = None, field: DarkField | None = None,
                 residual: bool | int = False, clean: bool = True) -> Frame:
    """Simulate one frame. ``scene_e_s`` None = a dark frame (cap on); ``residual`` True = draw
    ``residual_per_mpx`` random hot pixels, an int = exactly that many (lights only)."""
    field = make_dark_field(sensor) if field is None else field
    gain = sensor.gain_e_per_dn(iso)
    factor = sensor.temperature_factor(temp_c)
    white = sensor.white_level_dn
    black = sensor.black_map()

    rts_high = rts_states(field, rng)
    dark_e = dark_rate_for_frame(field, rts_high)
    dark_e *= np.float32(factor * exposure_s)
    noise_e = rng.standard_normal(sensor.shape, dtype=np.float32)
    noise_e *= np.float32(sensor.read_noise_e)
    signal_e = None
    if scene_e_s is not None:
        signal_e = scene_e_s * np.float32(exposure_s)
        noise_e += rng.poisson(signal_e).astype(np.float32)  # scene shot noise + read noise
    light_e = rng.poisson(dark_e).astype(np.float32)
    light_e += noise_e

    res_yx = np.zeros((0, 2), np.int32)
    res_e = np.zeros(0, np.float32)
    if scene_e_s is not None and residual is not False:
        count = None if residual is True else int(residual)
        res_yx, res_e = residual_hot_pixels(sensor, rng, gain, count=count)
        light_e[res_yx[:, 0], res_yx[:, 1]] += res_e

    inv_gain = np.float32(1.0 / gain)
    light_e *= inv_gain
    light_e += black
    cfa_dn = quantise(light_e, white)
    cfa_dn[field.stuck_yx[:, 0], field.stuck_yx[:, 1]] = field.stuck_dn

    clean_dn = expected_dn = None
    if signal_e is not None:
        if clean:
            noise_e *= inv_gain
            noise_e += black
            clean_dn = quantise(noise_e, white)
        signal_e *= inv_gain
        signal_e += black
        expected_dn = signal_e
    dark_e *= inv_gain
    return Frame(cfa_dn=cfa_dn, clean_dn=clean_dn, expected_dn=expected_dn, dark_expected_dn=dark_e,
                 rts_high=rts_high, residual_yx=res_yx, residual_dn=(res_e / gain).astype(np.float32),
                 gain_e_per_dn=gain, temperature_factor=factor)


def render_dark(sensor: SensorModel, rng: np.random.Generator, *, exposure_s: float, temp_c: float, iso: float,
                field: DarkField | None = None) -> Frame:
    """A dark frame (no light, no residual hot pixels)."""
    return render_frame(sensor, rng, exposure_s=exposure_s, temp_c=temp_c, iso=iso, field=field)


def render_light(sensor: SensorModel, scene: Scene, rng: np.random.Generator, *, exposure_s: float, temp_c: float,
                 iso: float, shift_yx: tuple[float, float] = (0.0, 0.0), residual: bool | int = True,
                 field: DarkField | None = None, clean: bool = True) -> Frame:
    """A light frame of ``scene`` with stars shifted by ``shift_yx`` px (the fast path for
    training-data generation: use a small sensor, e.g. ``make_sensor("small", height=96, width=96)``)."""
    scene_e_s = render_scene_e_s(sensor, scene, shift_yx)
    return render_frame(sensor, rng, exposure_s=exposure_s, temp_c=temp_c, iso=iso, scene_e_s=scene_e_s,
                        field=field, residual=residual, clean=clean)
