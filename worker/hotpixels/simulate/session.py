"""Whole sessions: N dark frames, M light frames and the ground truth, in memory or on disk.

:func:`simulate_session` returns a :class:`Session` whose ``darks`` and ``lights`` are
:class:`~hotpixels.dng.rawimage.RawImage` objects (what the DNG reader would return for the
written files) and whose ``truth`` is a flat dict; :meth:`Session.write` writes
``darks/dark_NNNN.dng``, ``lights/light_NNNN.dng``, ``truth.json`` (scalars and lists) and
``truth.npz`` (arrays, ``np.savez_compressed``, loads with ``allow_pickle=False``).

Temperatures: darks are taken at ``temp_dark_c`` and lights at ``temp_light_c`` (true sensor
temperatures); the metadata records ``round(true + offset)`` where the offset is a per-body bias
(±2.5 °C) plus per-frame jitter, clipped to ±3 °C (both kept in the truth).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..dng.rawimage import CameraMetadata, RawImage
from ..fileio import atomic_write, json_default
from ..errors import Cancelled, DestinationUnwritable, InvalidOption
from ..progress import ProgressFn, check_cancel, report
from .defects import DarkField, make_dark_field
from .render import Frame, render_dark, render_light
from .scene import SCENE_KINDS, Scene, make_scene
from .sensor import SensorModel, make_sensor, rng_for

BATCHES = ("single", "tripod", "tracked")
TEMPERATURE_TAG = "Pentax:CameraTemperature"  # exiftool group-1 name of the recorded temperature


@dataclass(eq=False)
class Session:
    sensor: SensorModel
    scene: Scene
    field: DarkField
    darks: list[RawImage]
    lights: list[RawImage]
    truth: dict[str, Any]
    dark_frames: list[Frame] = field(default_factory=list, repr=False)
    light_frames: list[Frame] = field(default_factory=list, repr=False)
    written: dict[str, Any] | None = None  # paths, after write()

    def write(self, outdir: str | os.PathLike, layout: str = "strip", *, progress: ProgressFn | None = None,
              cancel=None) -> dict[str, Any]:
        """Write the DNGs and the truth under ``outdir``; returns the paths written."""
        out = Path(outdir)
        try:
            (out / "darks").mkdir(parents=True, exist_ok=True)
            (out / "lights").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DestinationUnwritable(f"cannot create the output folder {out}: {exc.strerror}", path=str(out)) from exc
        jobs = [(out / "darks" / f"dark_{i + 1:04d}.dng", r) for i, r in enumerate(self.darks)]
        jobs += [(out / "lights" / f"light_{i + 1:04d}.dng", r) for i, r in enumerate(self.lights)]
        written: dict[str, Any] = {"darks": [], "lights": []}
        done: list[Path] = []
        try:
            for n, (path, raw) in enumerate(jobs):
                check_cancel(cancel)
                report(progress, n, len(jobs) + 1, f"writing {path.name}")
                write_raw(path, raw, layout)
                done.append(path)
                written["darks" if path.parent.name == "darks" else "lights"].append(str(path))
            check_cancel(cancel)
            written["truth_json"], written["truth_npz"] = write_truth(out, self.truth)
        except Cancelled:
            for path in done:  # a cancelled session leaves no partial set behind
                path.unlink(missing_ok=True)
            raise
        report(progress, len(jobs) + 1, len(jobs) + 1, "done")
        return written


def write_raw(path: Path, raw: RawImage, layout: str = "strip") -> None:
    """Write one simulated frame as a DNG at ``path`` (``raw.path`` becomes ``path``)."""
    from ..dng.create import write_dng

    write_dng(path, raw.cfa_dn, cfa=raw.cfa, active_area=raw.active_area, black_level_dn=raw.black_repeat_dn,
              white_level_dn=raw.white_level_dn, bits=raw.bits_per_sample, layout=layout, metadata=raw.metadata,
              as_shot_neutral=raw.as_shot_neutral)
    raw.path = str(path)


def write_truth(outdir: Path, truth: dict[str, Any]) -> tuple[str, str]:
    """Split ``truth`` into JSON (scalars, lists) and NPZ (arrays); both written atomically."""
    arrays = {k: v for k, v in truth.items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in truth.items() if not isinstance(v, np.ndarray)}
    scalars["arrays_in_npz"] = sorted(arrays)
    jpath, npath = outdir / "truth.json", outdir / "truth.npz"
    atomic_write(jpath, json.dumps(scalars, indent=1, default=json_default))
    atomic_write(npath, lambda f: np.savez_compressed(f, **arrays))
    return str(jpath), str(npath)


def load_truth(outdir: str | os.PathLike) -> dict[str, Any]:
    """Read ``truth.json`` + ``truth.npz`` back into one dict (no pickle)."""
    out = Path(outdir)
    truth = json.loads((out / "truth.json").read_text())
    with np.load(out / "truth.npz", allow_pickle=False) as z:
        truth.update({k: z[k] for k in z.files})
    return truth


def recorded_temperatures(sensor: SensorModel, true_c: list[float], kind: str,
                          session_seed: int = 0) -> tuple[list[float], list[float]]:
    """(offsets, recorded °C): a per-body bias plus per-frame jitter, within ±3 °C, rounded as cameras do."""
    bias = float(rng_for(sensor.seed, "temp-bias").uniform(-2.5, 2.5))
    rng = rng_for(sensor.seed, "temp-jitter", session_seed, kind)
    offsets = np.clip(bias + rng.normal(0.0, 0.5, len(true_c)), -3.0, 3.0)
    recorded = [float(np.round(t + o)) for t, o in zip(true_c, offsets)]
    return [float(o) for o in offsets], recorded


def star_shifts(batch: str, n_lights: int, seed: int, drift_px_per_frame: float | None) -> np.ndarray:
    """(M, 2) star shift of each light in px: tripod = steady drift (sky rotation), tracked = tiny jitter."""
    rng = rng_for(seed, "drift", batch)
    if batch == "tripod":
        speed = float(rng.uniform(2.0, 4.0) if drift_px_per_frame is None else drift_px_per_frame)
        angle = rng.uniform(0, 2 * np.pi)
        step = speed * np.array([np.sin(angle), np.cos(angle)])
        return np.arange(n_lights)[:, None] * step[None, :]
    if batch == "tracked":
        return rng.normal(0.0, 0.05, (n_lights, 2))
    return np.zeros((n_lights, 2))


def simulate_session(preset: str = "small", seed: int = 1, *, n_darks: int = 8, n_lights: int = 1,
                     temp_dark_c: float = 20.0, temp_light_c: float = 20.0, exposure_s: float = 30.0,
                     iso: float = 1600, scene: str = "foreground", batch: str = "single", cfa: str | None = None,
                     sensor: SensorModel | None = None, scene_from: str | os.PathLike | None = None,
                     dark_exposure_s: float | None = None, dark_iso: float | None = None,
                     drift_px_per_frame: float | None = None, residual: bool | int = True, clean: bool = True,
                     temp_drift_c_per_frame: float = 0.0, serial: str | None = None,
                     capture_start: str = "2026-03-14T22:00:00", outdir: str | os.PathLike | None = None,
                     layout: str = "strip", progress: ProgressFn | None = None, cancel=None) -> Session:
    """Simulate a session of one body (see the package docstring for the whole API).

    ``temp_drift_c_per_frame`` warms the sensor by that many °C per frame within each sequence
    (frame i of the darks is at ``temp_dark_c + i * drift``), as a burst of long exposures does.
    ``outdir`` also writes the session there (``layout`` as in :meth:`Session.write`); the paths
    are then in ``session.written``.
    """
    if batch not in BATCHES:
        raise InvalidOption(f"unknown batch {batch!r}; choose one of {', '.join(BATCHES)}")
    if scene not in SCENE_KINDS:
        raise InvalidOption(f"unknown scene {scene!r}; choose one of {', '.join(SCENE_KINDS)}")
    if n_darks < 0 or n_lights < 0 or exposure_s <= 0 or iso <= 0:
        raise InvalidOption("frame counts must be >= 0, exposure and ISO > 0")
    sensor = make_sensor(preset, seed, cfa, serial=serial) if sensor is None else sensor
    dark_temps = [float(temp_dark_c + i * temp_drift_c_per_frame) for i in range(n_darks)]
    light_temps = [float(temp_light_c + i * temp_drift_c_per_frame) for i in range(n_lights)]
    fld = make_dark_field(sensor)
    scn = make_scene(sensor, scene, seed, scene_from=scene_from)
    dark_exposure_s = exposure_s if dark_exposure_s is None else dark_exposure_s
    dark_iso = iso if dark_iso is None else dark_iso
    shifts = star_shifts(batch, n_lights, seed, drift_px_per_frame)
    total = n_darks + n_lights
    start = _dt.datetime.fromisoformat(capture_start)

    dark_frames, light_frames = [], []
    for i in range(n_darks):
        check_cancel(cancel)
        report(progress, i, total, f"dark {i + 1}/{n_darks}")
        dark_frames.append(render_dark(sensor, rng_for(seed, "dark", i), exposure_s=dark_exposure_s, temp_c=dark_temps[i],
                                       iso=dark_iso, field=fld))
    for i in range(n_lights):
        check_cancel(cancel)
        report(progress, n_darks + i, total, f"light {i + 1}/{n_lights}")
        light_frames.append(render_light(sensor, scn, rng_for(seed, "light", i), exposure_s=exposure_s,
                                         temp_c=light_temps[i], iso=iso, shift_yx=tuple(shifts[i]), residual=residual,
                                         field=fld, clean=clean))
    report(progress, total, total, "simulated")

    d_off, d_rec = recorded_temperatures(sensor, dark_temps, "dark", seed)
    l_off, l_rec = recorded_temperatures(sensor, light_temps, "light", seed)
    step = _dt.timedelta(seconds=exposure_s + 2)
    # lights first, then the darks right after (a common field routine)
    l_times = [(start + i * step).isoformat() for i in range(n_lights)]
    d_times = [(start + (n_lights + i) * _dt.timedelta(seconds=dark_exposure_s + 2)).isoformat() for i in range(n_darks)]
    darks = [_raw_image(sensor, f.cfa_dn, dark_iso, dark_exposure_s, t, rec)
             for f, t, rec in zip(dark_frames, d_times, d_rec)]
    lights = [_raw_image(sensor, f.cfa_dn, iso, exposure_s, t, rec)
              for f, t, rec in zip(light_frames, l_times, l_rec)]
    truth = build_truth(sensor, scn, fld, dark_frames, light_frames, shifts,
                        dict(seed=int(seed), scene=scene, batch=batch, exposure_s=float(exposure_s), iso=float(iso),
                             dark_exposure_s=float(dark_exposure_s), dark_iso=float(dark_iso),
                             temp_dark_true_c=dark_temps, temp_dark_offset_c=d_off,
                             temp_dark_recorded_c=d_rec, temp_light_true_c=light_temps,
                             temp_light_offset_c=l_off, temp_light_recorded_c=l_rec,
                             capture_time_dark=d_times, capture_time_light=l_times,
                             scene_from=str(scene_from) if scene_from else None))
    session = Session(sensor=sensor, scene=scn, field=fld, darks=darks, lights=lights, truth=truth,
                      dark_frames=dark_frames, light_frames=light_frames)
    if outdir is not None:
        session.written = session.write(outdir, layout, cancel=cancel)
    return session


def _raw_image(sensor: SensorModel, cfa_dn: np.ndarray, iso: float, exposure_s: float, capture_time: str,
               temp_recorded_c: float) -> RawImage:
    meta = CameraMetadata(make=sensor.make, model=sensor.model, serial=sensor.serial, iso=float(iso),
                          exposure_s=float(exposure_s), capture_time=capture_time, temperature_c=temp_recorded_c,
                          temperature_source=TEMPERATURE_TAG, unique_camera_model=f"{sensor.make} {sensor.model}")
    return RawImage(cfa_dn=cfa_dn, cfa=sensor.cfa, active_area=sensor.active_area,
                    white_level_dn=float(sensor.white_level_dn), black_repeat_dn=sensor.black_repeat,
                    bits_per_sample=sensor.bits, metadata=meta, as_shot_neutral=(0.5, 1.0, 0.6))


def build_truth(sensor: SensorModel, scene: Scene, fld: DarkField, darks: list[Frame], lights: list[Frame],
                shifts: np.ndarray, extra: dict[str, Any]) -> dict[str, Any]:
    """The ground truth dict: arrays (see :mod:`hotpixels.simulate`) plus scalars/lists."""
    black = sensor.black_map()
    white = sensor.white_level_dn
    hy, hx = fld.hot_yx[:, 0], fld.hot_yx[:, 1]
    t, l = sensor.active_area[:2]
    ref_gain = lights[0].gain_e_per_dn if lights else (darks[0].gain_e_per_dn if darks else sensor.gain_e_per_dn(extra["iso"]))
    truth: dict[str, Any] = dict(
        preset=sensor.preset, make=sensor.make, model=sensor.model, serial=sensor.serial,
        cfa=sensor.cfa.to_json(), active_area=list(sensor.active_area), raw_shape=list(sensor.shape),
        bits=sensor.bits, white_level_dn=white, black_repeat_dn=[list(r) for r in sensor.black_repeat_dn],
        gain_e_per_dn=ref_gain, read_noise_e=sensor.read_noise_e, read_noise_dn=sensor.read_noise_e / ref_gain,
        doubling_c=sensor.doubling_c, ref_temp_c=sensor.ref_temp_c,
        dark_factor=[f.temperature_factor for f in darks], light_factor=[f.temperature_factor for f in lights],
        sensor=sensor.to_json(), light_shift_yx=np.asarray(shifts, dtype=float).tolist(),
    )
    truth.update(extra)

    def per_frame(frames: list[Frame], what) -> np.ndarray:
        return np.stack([what(f) for f in frames]) if frames else np.zeros((0, len(hy)), np.float32)

    truth["hot_yx"] = fld.hot_yx
    truth["hot_rate_e_s"] = fld.hot_rate_e_s
    rts = np.zeros(len(hy), bool)
    rts[fld.rts_index] = True
    truth["hot_rts"] = rts
    truth["hot_dark_dn"] = per_frame(darks, lambda f: f.dark_expected_dn[hy, hx]).astype(np.float32)
    truth["hot_light_dn"] = per_frame(lights, lambda f: f.dark_expected_dn[hy, hx]).astype(np.float32)
    truth["hot_saturated_dark"] = per_frame(darks, lambda f: f.dark_expected_dn[hy, hx] + black[hy, hx] >= white)
    truth["hot_saturated_light"] = per_frame(
        lights, lambda f: f.dark_expected_dn[hy, hx] + f.expected_dn[hy, hx] >= white)
    truth["rts_yx"] = fld.rts_yx
    truth["rts_extra_e_s"] = fld.rts_extra_e_s
    truth["rts_high_dark"] = np.stack([f.rts_high for f in darks]) if darks else np.zeros((0, len(fld.rts_index)), bool)
    truth["rts_high_light"] = np.stack([f.rts_high for f in lights]) if lights else np.zeros((0, len(fld.rts_index)), bool)
    truth["stuck_yx"] = fld.stuck_yx
    truth["stuck_dn"] = fld.stuck_dn
    truth["residual_frame"] = np.concatenate([np.full(len(f.residual_yx), i, np.int32) for i, f in enumerate(lights)]
                                             or [np.zeros(0, np.int32)])
    truth["residual_yx"] = np.concatenate([f.residual_yx for f in lights] or [np.zeros((0, 2), np.int32)])
    truth["residual_dn"] = np.concatenate([f.residual_dn for f in lights] or [np.zeros(0, np.float32)])

    star_yx = scene.star_yx_active[None, :, :] + np.asarray(shifts, dtype=float)[:, None, :] + np.array([t, l])[None, None, :]
    truth["star_yx"] = star_yx.astype(np.float64)  # (M, S, 2) full frame, sub-pixel
    truth["star_sigma_px"] = scene.star_sigma_px.astype(np.float32)
    truth["star_flux_e_s"] = scene.star_flux_e_s.astype(np.float32)
    truth["star_rgb"] = scene.star_rgb.astype(np.float32)
    peaks = np.zeros(star_yx.shape[:2], np.float32)
    inside = np.zeros(star_yx.shape[:2], bool)
    for i, f in enumerate(lights):
        iy, ix = np.rint(star_yx[i, :, 0]).astype(int), np.rint(star_yx[i, :, 1]).astype(int)
        ok = (iy >= sensor.active_area[0]) & (iy < sensor.active_area[2]) & (ix >= l) & (ix < sensor.active_area[3])
        if scene.foreground_mask is not None:
            ok[ok] &= ~scene.foreground_mask[iy[ok] - t, ix[ok] - l]
        inside[i] = ok
        peaks[i, ok] = f.expected_dn[iy[ok], ix[ok]] - black[iy[ok], ix[ok]]
    truth["star_peak_dn"] = peaks  # expected signal above black at the star's nearest site
    truth["star_visible"] = inside
    truth["star_saturated"] = peaks + np.float32(np.mean(sensor.black_repeat)) >= white
    if lights and lights[0].clean_dn is not None:
        truth["clean_light_dn"] = np.stack([f.clean_dn for f in lights])
    if lights:
        truth["expected_light_dn"] = np.stack([f.expected_dn for f in lights]).astype(np.float32)
    if scene.foreground_mask is not None:
        truth["foreground_mask_active"] = scene.foreground_mask
    return truth
