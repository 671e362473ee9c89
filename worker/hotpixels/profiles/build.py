"""Build a profile from dark frames: checks, master dark, dark model, per-frame statistics.

``build_dark_model(raws_or_paths)`` returns the :class:`DarkModel` alone (tests, the benchmark);
``create_profile(paths, name, library)`` is the user's command: it also refuses corrected files,
checks that the frames agree, reports progress per frame read, honours cancel between frames and
saves the profile (and its summary pictures) into the library, atomically.

Memory for N frames of H x W: the N uint16 frames (2 N H W bytes: 768 MB for 16 x 24 MP), plus
a few full-frame float32 arrays (master, neighbour residual) and one (rows, W, N) float32 block
at a time (:mod:`.stack`): about 1.3 GB peak for 16 x 24 MP (measured by ``bench profiles``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..dng.rawimage import RawImage
from ..errors import InvalidOption, NotEnoughDarks
from ..progress import ProgressFn, check_cancel, report
from . import checks
from .cells import cell_size_for, extrapolated_field_full, grid_model
from .darkmodel import DarkModel
from .detect import detect_sites, field_grid
from .darkcheck import check_dark_frame
from .frames import FrameInfo, colour_means_dn, frame_info, hot_counts
from .neighbours import plane_noise_sigma
from .stack import RTS_SIGMA, site_level, stack_frames, temporal_noise_model

MIN_DARKS = 1
RTS_NOTE = ("RTS (flickering) pixels need two or more dark frames: none could be flagged from a single dark")
FIELD_BLOCK_TARGET_PX = 16
DEFAULT_THRESHOLD_SIGMA = 5.0


@dataclass
class BuildResult:
    model: DarkModel
    frames: list[FrameInfo]
    frame_stats: list[dict[str, Any]]
    mismatches: list[dict[str, Any]]
    master_dn: np.ndarray | None  # dark above black, only with keep_master
    significance: np.ndarray  # (K,) residual / σ of each listed site
    info: dict[str, Any] = field(default_factory=dict)


def build_dark_model(raws_or_paths: Sequence[RawImage | str | os.PathLike], threshold_sigma: float = DEFAULT_THRESHOLD_SIGMA,
                     **kwargs) -> DarkModel:
    """The dark model of these darks (see :func:`build_profile_data` for the keyword options)."""
    return build_profile_data(raws_or_paths, threshold_sigma, **kwargs).model


def read_headers(sources: Sequence[RawImage | str | os.PathLike]) -> list[FrameInfo]:
    """Header facts of every dark without decoding pixels (exiftool adds temperature)."""
    from ..dng.reader import read_dng

    out = []
    for i, src in enumerate(sources):
        if isinstance(src, RawImage):
            out.append(frame_info(src, i))
        else:
            raw = read_dng(src, metadata=True, pixels=False)
            out.append(frame_info(raw, i, raw.cfa_dn.shape))
    return out


def build_profile_data(sources: Sequence[RawImage | str | os.PathLike], threshold_sigma: float = DEFAULT_THRESHOLD_SIGMA, *,
                       allow_mismatch: bool = False, keep_master: bool = False, headers: list[FrameInfo] | None = None,
                       progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> BuildResult:
    """Everything a profile holds, from N >= 1 dark frames (RawImages or DNG paths; every frame must
    pass :func:`hotpixels.profiles.darkcheck.check_dark_frame`; RTS needs N >= 2).

    Steps: headers → refuse corrected files → agreement checks → read pixels frame by frame
    (progress "frame i of n") → single-frame σ per plane → master/temporal/RTS/saturation
    (:mod:`.stack`) → field and site table (:mod:`.detect`) → per-site temporal σ and per-frame
    hot counts (sparse gathers) → the model.
    """
    if not (threshold_sigma > 0):
        raise InvalidOption(f"threshold must be a positive number of σ, got {threshold_sigma}", data={"param": "threshold"})
    sources = list(sources)
    if len(sources) < MIN_DARKS:
        raise NotEnoughDarks(f"a profile needs at least {MIN_DARKS} dark frames, got {len(sources)}; "
                             "shoot 5-30 darks with the lens cap on at the lights' ISO, exposure and temperature")
    headers = headers if headers is not None else read_headers(sources)
    checks.refuse_corrected(headers)
    mismatches = checks.check_frames_agree(headers, allow_mismatch)

    t0 = time.monotonic()
    frames, stats, ref = _read_pixels(sources, headers, progress, cancel)
    check_cancel(cancel)
    ref_info = headers[0]
    cfa = ref.cfa
    sigma_single = plane_noise_sigma(frames[0], cfa, ref.active_area, row_step=1 if frames[0].size < 4e6 else 4)
    black_map = ref.black_level_map(np.float32)
    noise_model = (temporal_noise_model(frames[0], frames[1], black_map, ref.white_level_dn) if len(frames) > 1
                   else _spatial_noise_model(frames[0], ref))
    st = stack_frames(frames, cfa, noise_model, _plane_black(ref), ref.white_level_dn, cancel=cancel)
    t_stack = time.monotonic()

    dark = st.master_dn
    dark -= black_map  # in place: the master above black from here on
    del black_map
    block = cell_size_for(cfa, FIELD_BLOCK_TARGET_PX)
    field_dn = field_grid(dark, cfa, block)
    field = grid_model(field_dn, cfa, block, dark.shape)
    check_cancel(cancel)
    smooth = extrapolated_field_full(field_dn, cfa, block, dark.shape)
    dark -= smooth  # in place: "flat", the master with the glow's gradient taken out, for detection
    table = detect_sites(dark, cfa, field_dn, block, unstable=st.unstable, saturated=st.saturated,
                         threshold_sigma=threshold_sigma)
    dark += smooth  # back to the master above black
    del smooth
    ys, xs = table.yx[:, 0], table.yx[:, 1]
    table.excess_dn = (dark[ys, xs] - field.field_at(ys, xs)).astype(np.float32)  # over the model's field
    method = st.method
    del st

    temporal = _site_statistics(frames, stats, table, field, ref, sigma_single, noise_model, threshold_sigma)
    del frames

    meta = ref_info.metadata
    temps = [h.metadata.temperature_c for h in headers if h.metadata.temperature_c is not None]
    exposures = [h.metadata.exposure_s for h in headers if h.metadata.exposure_s]
    isos = [h.metadata.iso for h in headers if h.metadata.iso]
    model = DarkModel(raw_shape=tuple(dark.shape), active_area=tuple(ref.active_area), cfa=cfa, field_block_px=block,
                      field_dn=field_dn, hot_yx=table.yx, hot_excess_dn=table.excess_dn, hot_flags=table.flags,
                      hot_temporal_sigma_dn=temporal.astype(np.float32), read_noise_dn=sigma_single.astype(np.float32),
                      black_level_dn=float(ref.black_level_mean_dn), white_level_dn=float(ref.white_level_dn),
                      exposure_s=float(np.median(exposures)) if exposures else None,
                      iso=float(np.median(isos)) if isos else None,
                      temperature_c=float(np.median(temps)) if temps else None, n_frames=len(headers),
                      extra={"threshold_sigma": float(threshold_sigma), "noise_fit": table.noise_fit,
                             "temporal_noise": {"a_dn2": noise_model[0], "b_dn": noise_model[1]},
                             "master_method": method,
                             "make": meta.make, "model": meta.model, "serial": meta.serial})
    t_end = time.monotonic()
    return BuildResult(model=model, frames=headers, frame_stats=stats, mismatches=mismatches,
                       master_dn=dark if keep_master else None, significance=table.significance,
                       info={"seconds_read_and_stack": round(t_stack - t0, 3), "seconds_total": round(t_end - t0, 3)})


def _site_statistics(frames, stats, table, field: DarkModel, ref, sigma_single, noise_model, threshold_sigma) -> np.ndarray:
    """Temporal σ of each listed site (DN) and, into ``stats``, each dark's hot count: sparse
    gathers of the listed sites from every frame, no full-frame work."""
    ys, xs = table.yx[:, 0], table.yx[:, 1]
    field_at = field.field_at(ys, xs).astype(np.float32)
    level = np.maximum(field_at + table.excess_dn, 0)
    sig_t = np.sqrt(noise_model[0] + noise_model[1] * level)
    _, temporal = site_level(np.stack([f[ys, xs] for f in frames], axis=-1), sig_t)
    sig_sites = sigma_single[ref.cfa.plane_at(ys, xs)].astype(np.float32)
    floor = ref.black_level_at(ys, xs).astype(np.float32) + field_at
    for s, c in zip(stats, hot_counts(frames, table.yx, floor, threshold_sigma * sig_sites)):
        s["hot_count"] = c
    return temporal


def _spatial_noise_model(frame: np.ndarray, ref: RawImage) -> tuple[float, float]:
    """``(a, b)`` of a single dark: its same-colour ring residuals stand in for the frame-to-frame
    difference two darks would give (:func:`hotpixels.candidates.estimate_noise`)."""
    from ..candidates import estimate_noise, mean_black

    nm = estimate_noise(frame, ref.cfa, ref.active_area, mean_black(ref.black_repeat_dn))
    return max(float(nm.a_dn2), float(nm.floor_dn2), 0.25), max(float(nm.b_dn), 0.0)


def _plane_black(raw: RawImage) -> np.ndarray:
    """(n_planes,) black level of each CFA plane, DN (mean of its phases in the BlackLevel repeat)."""
    t, l = raw.active_area[:2]
    rows, cols = raw.cfa.repeat
    out = np.zeros(raw.cfa.n_planes)
    count = np.zeros(raw.cfa.n_planes)
    for py in range(rows):
        for px in range(cols):
            p = int(raw.cfa.plane_of_phase[py, px])
            out[p] += float(raw.black_level_at(t + py, l + px))
            count[p] += 1
    return (out / np.maximum(count, 1)).astype(np.float32)


def _read_pixels(sources, headers, progress, cancel):
    """The frames' uint16 pixels (nothing else kept), per-frame stats, and the first RawImage."""
    from ..dng.reader import read_dng

    n = len(sources)
    frames: list[np.ndarray] = []
    stats: list[dict[str, Any]] = []
    ref = None
    for i, (src, hdr) in enumerate(zip(sources, headers)):
        check_cancel(cancel)
        report(progress, i, n, f"reading dark {i + 1} of {n}: {hdr.name}")
        raw = src if isinstance(src, RawImage) else read_dng(src, metadata=False, pixels=True)
        if raw.cfa_dn.shape != tuple(headers[0].raw_size):
            raise InvalidOption(f"{hdr.name}: raw size changed while reading")
        check_dark_frame(raw, hdr.name, hdr.metadata)
        frames.append(np.asarray(raw.cfa_dn, dtype=np.uint16))
        m = hdr.metadata
        stats.append({"file": hdr.name, "mean_dn": colour_means_dn(raw), "temperature_c": m.temperature_c,
                      "iso": m.iso, "exposure_s": m.exposure_s, "capture_time": m.capture_time})
        if ref is None:
            ref = raw if isinstance(src, RawImage) else _without_pixels(raw)
        del raw
    report(progress, n, n, "darks read; building the dark model")
    return frames, stats, ref


def _without_pixels(raw: RawImage) -> RawImage:
    """A header-only copy (the pixels live in the frame list; the reader's buffers can go)."""
    from dataclasses import replace

    return replace(raw, cfa_dn=np.broadcast_to(np.uint16(0), raw.cfa_dn.shape), layout=None)


def create_profile(paths: Sequence[str | os.PathLike | RawImage], name: str, library=None, *,
                   threshold_sigma: float = DEFAULT_THRESHOLD_SIGMA, allow_mismatch: bool = False,
                   keep_master: bool = False, progress: ProgressFn | None = None,
                   cancel: threading.Event | None = None) -> dict[str, Any]:
    """Build a profile from dark frames and store it in ``library`` (a ProfileLibrary, a folder
    or None for the default). Returns the summary plus ``mismatches``, ``pictures``, ``path``.

    The name is checked and must be free *before* any pixel is read; cancel is honoured between
    frames and before saving, and nothing is written until the profile is complete.
    """
    from .library import ProfileLibrary, check_name
    from .profile_file import Profile

    lib = library if isinstance(library, ProfileLibrary) else ProfileLibrary(library)
    name = check_name(name)
    if lib.exists(name):
        from ..errors import ProfileExists

        raise ProfileExists(f"a profile named {name!r} already exists in {lib.dir}; choose another name")
    result = build_profile_data(paths, threshold_sigma, allow_mismatch=allow_mismatch, keep_master=keep_master,
                                progress=progress, cancel=cancel)
    check_cancel(cancel)
    profile = Profile(name=name, model=result.model, meta=profile_meta(result), master_dn=result.master_dn)
    written = lib.save(profile)
    summary = profile.summary()
    summary.update(path=written["path"], file=os.path.basename(written["path"]), bytes=written["bytes"],
                   pictures=written["pictures"], hot_count=profile.model.n_hot)
    notes = [RTS_NOTE] if len(result.frames) < 2 else []
    return {**summary, "profile": dict(summary), "mismatches": result.mismatches, "notes": notes,
            "seconds": result.info.get("seconds_total")}


def profile_meta(result: BuildResult) -> dict[str, Any]:
    """The ``meta`` a profile file carries (see :mod:`.profile_file`)."""
    import datetime as _dt

    m = result.model
    first = result.frames[0].metadata
    temps = [f.metadata.temperature_c for f in result.frames if f.metadata.temperature_c is not None]
    times = sorted(f.metadata.capture_time for f in result.frames if f.metadata.capture_time)
    frames = [{**f.to_json(), **{k: v for k, v in s.items() if k != "file"}}
              for f, s in zip(result.frames, result.frame_stats)]
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "camera": {"make": first.make, "model": first.model, "serial": first.serial,
                   "internal_serial": first.internal_serial, "unique_camera_model": first.unique_camera_model},
        "raw_size": list(m.raw_shape), "active_area": list(m.active_area), "cfa": m.cfa.to_json(),
        "iso": m.iso, "exposure_s": m.exposure_s, "temperature_c": m.temperature_c,
        "temperature_range_c": [min(temps), max(temps)] if temps else None,
        "capture_time_range": [times[0], times[-1]] if times else None,
        "n_frames": m.n_frames, "frames": frames, "mismatches": result.mismatches,
        "thresholds": {"threshold_sigma": m.extra.get("threshold_sigma"), "rts_sigma": RTS_SIGMA,
                       "exposure_tolerance": checks.EXPOSURE_TOLERANCE,
                       "temperature_spread_c": checks.TEMPERATURE_SPREAD_C},
        "build": result.info,
    }
