"""One profile = one self-describing, versioned file; no pickle.

Container: a NumPy ``.npz`` zip written with ``np.savez_compressed`` and read with
``np.load(allow_pickle=False)`` (plain arrays only). Members:

* ``meta`` — uint8 bytes of UTF-8 JSON: ``{"format": "hotpixels-profile", "version": 1, "name",
  "created", "camera", "raw_size", "active_area", "cfa", "iso", "exposure_s", "temperature_c",
  "n_frames", "frames": [...], "mismatches": [...], "thresholds": {...}, "stats": {...},
  "model": {DarkModel scalars}}``. A reader that only lists profiles opens this member alone.
* ``field_dn``, ``hot_yx``, ``hot_excess_dn``, ``hot_flags``, ``hot_temporal_sigma_dn``,
  ``read_noise_dn`` — the :class:`~hotpixels.profiles.darkmodel.DarkModel` arrays.
* ``master_dn`` (optional, ``keep_master``) — the full master dark above the black level, float16
  (relative precision 1/1024: 1/64 DN at 16-32 DN, 2 DN near 4000 DN).

A *learned* profile (``meta.kind == "learned"``, format version 3, 2 before the fourth count of
``stat_counts``, read as 0; learned from ordinary photos
by :mod:`.learn`) carries the same dark-model arrays (its field is zero, its sites the learned
ones, ``hot_excess_dn`` the predicted excess at the photos' median settings, RTS sites flagged
unstable) plus :data:`LEARNED_ARRAYS`: per site ``learned_offset_dn``/``learned_rate_dn`` (the
model ``excess_dn = offset_dn + rate_dn x dark factor``, see
:mod:`hotpixels.profiles.learnstats`) and ``learned_counts`` (photos counted / hit / high), and
the sparse sufficient statistics ``stat_yx``/``stat_sums``/``stat_counts`` that ``--update``
continues from. ``meta.kind`` is ``"dark"`` (or absent) for a dark-frame profile.

Writes are atomic (temp file in the destination folder, then ``os.replace``). A file whose
``version`` is newer than :data:`VERSION` raises :class:`ProfileTooNew`; anything unreadable,
incomplete or inconsistent raises :class:`ProfileCorrupt` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..dng.cfa import CfaPattern
from ..errors import FileNotFound, ProfileCorrupt, ProfileTooNew
from ..fileio import atomic_write, check_regular_file, json_default
from .darkmodel import FLAG_COLD, FLAG_SATURATED, FLAG_UNSTABLE, DarkModel

FORMAT = "hotpixels-profile"
VERSION = 3  # 1: dark-frame profiles (still written as 1); 2: learned profiles; 3: learned, 4 counts per site
DARK_VERSION = 1
SUFFIX = ".hpprofile"
MODEL_ARRAYS = ("field_dn", "hot_yx", "hot_excess_dn", "hot_flags", "hot_temporal_sigma_dn", "read_noise_dn")
LEARNED_ARRAYS = {"learned_offset_dn": np.float32, "learned_rate_dn": np.float32, "learned_counts": np.uint16,
                  "stat_yx": np.int32, "stat_sums": np.float32, "stat_counts": np.uint16}
_DTYPES = {"field_dn": np.float32, "hot_yx": np.int32, "hot_excess_dn": np.float32, "hot_flags": np.uint8,
           "hot_temporal_sigma_dn": np.float32, "read_noise_dn": np.float32}


@dataclass
class Profile:
    """A named dark model plus what it was built from (``meta``, see the module docstring)."""

    name: str
    model: DarkModel
    meta: dict[str, Any]
    master_dn: np.ndarray | None = None  # (H, W) dark above black, DN (only with keep_master)
    path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    learned: dict[str, np.ndarray] | None = None  # LEARNED_ARRAYS of a learned profile

    @property
    def kind(self) -> str:
        return profile_kind(self.meta)

    def summary(self) -> dict[str, Any]:
        return summary_from_meta(self.meta)


def profile_kind(meta: dict[str, Any]) -> str:
    """``"learned"`` for a profile learned from photos, else ``"dark"``."""
    return "learned" if (meta or {}).get("kind") == "learned" else "dark"


def summary_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON summary used by ``list``/``show``/``match`` (no pixel data)."""
    keys = ("name", "created", "camera", "raw_size", "active_area", "cfa", "iso", "exposure_s", "temperature_c",
            "temperature_range_c", "capture_time_range", "n_frames", "stats", "thresholds")
    out = {k: meta.get(k) for k in keys}
    out["format_version"] = meta.get("version")
    out["n_mismatches"] = len(meta.get("mismatches") or [])
    out["has_master"] = bool(meta.get("has_master"))
    out["kind"] = profile_kind(meta)
    if out["kind"] == "learned":
        out["learned"] = meta.get("learned")
    return out


def model_meta(model: DarkModel) -> dict[str, Any]:
    return {"raw_shape": list(model.raw_shape), "active_area": list(model.active_area), "cfa": model.cfa.to_json(),
            "field_block_px": int(model.field_block_px), "black_level_dn": float(model.black_level_dn),
            "white_level_dn": float(model.white_level_dn), "exposure_s": model.exposure_s, "iso": model.iso,
            "temperature_c": model.temperature_c, "n_frames": int(model.n_frames), "extra": model.extra}


def model_stats(model: DarkModel) -> dict[str, int]:
    return {"n_hot": model.n_hot, "n_unstable": int(model.flagged(FLAG_UNSTABLE).sum()),
            "n_saturated": int(model.flagged(FLAG_SATURATED).sum()), "n_cold": int(model.flagged(FLAG_COLD).sum())}


def save_profile(path, profile: Profile) -> dict[str, Any]:
    """Write ``profile`` to ``path`` atomically; returns ``{"path", "bytes"}``."""
    path = Path(path)
    meta = dict(profile.meta)
    learned = profile.learned if profile_kind(meta) == "learned" else None
    meta.update(format=FORMAT, version=VERSION if learned is not None else DARK_VERSION, name=profile.name,
                model=model_meta(profile.model), stats=model_stats(profile.model),
                has_master=profile.master_dn is not None)
    arrays = {k: np.ascontiguousarray(getattr(profile.model, k), dtype=_DTYPES[k]) for k in MODEL_ARRAYS}
    for k, dtype in LEARNED_ARRAYS.items():
        if learned is not None:
            arrays[k] = np.ascontiguousarray(learned[k], dtype=dtype)
    arrays["meta"] = np.frombuffer(json.dumps(meta, ensure_ascii=False, default=json_default).encode(), np.uint8)
    if profile.master_dn is not None:
        arrays["master_dn"] = profile.master_dn.astype(np.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays), fsync=True)
    profile.meta = meta
    profile.path = str(path)
    return {"path": str(path), "bytes": path.stat().st_size}


def _corrupt(path, why: str) -> ProfileCorrupt:
    return ProfileCorrupt(f"profile file {Path(path).name} is damaged or not a HotPixels profile ({why}); "
                          "delete it or import it again from a good copy", path=str(path))


def read_meta(path) -> dict[str, Any]:
    """The ``meta`` member alone (no pixel data), checked for format and version."""
    with _open(path) as z:
        return _checked_meta(path, z)


def _open(path):
    try:
        check_regular_file(path)  # a FIFO or device is 1002 at once, never opened
    except FileNotFound:
        raise FileNotFound(f"profile file not found: {path}", path=str(path)) from None
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise _corrupt(path, f"not a readable zip container: {exc}") from None


def _checked_meta(path, z) -> dict[str, Any]:
    try:
        meta = json.loads(bytes(z["meta"]).decode("utf-8"))
    except KeyError:
        raise _corrupt(path, "no meta entry") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise _corrupt(path, f"meta entry unreadable: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _corrupt(path, "format is not hotpixels-profile")
    version = meta.get("version")
    if not isinstance(version, int):
        raise _corrupt(path, "no format version")
    if version > VERSION:
        raise ProfileTooNew(f"profile {meta.get('name', Path(path).stem)!r} was written by a newer HotPixels "
                            f"(format version {version}; this version reads up to {VERSION}); update HotPixels",
                            path=str(path), data={"version": version, "supported": VERSION})
    return meta


def load_profile(path, *, with_master: bool = True) -> Profile:
    """The full profile (meta + dark model [+ master]) from ``path``."""
    with _open(path) as z:
        meta = _checked_meta(path, z)
        try:
            arrays = {k: z[k] for k in MODEL_ARRAYS}
            master = z["master_dn"].astype(np.float32) if with_master and "master_dn" in z.files else None
            learned = {k: z[k] for k in LEARNED_ARRAYS} if profile_kind(meta) == "learned" else None
        except KeyError as exc:
            raise _corrupt(path, f"missing array {exc}") from None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as exc:
            raise _corrupt(path, f"array data unreadable: {exc}") from None
    try:
        model = _model_from(meta["model"], arrays)
        if learned is not None:
            learned = _learned_from(learned, model)
            _check_learned_meta(meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise _corrupt(path, f"inconsistent dark model: {exc}") from None
    return Profile(name=str(meta.get("name") or Path(path).stem), model=model, meta=meta, master_dn=master,
                   path=str(path), learned=learned)


def _learned_from(a: dict[str, np.ndarray], model: DarkModel) -> dict[str, np.ndarray]:
    """The learned arrays, checked against the model's site table (untrusted input)."""
    from .learnstats import COUNTS, SUMS

    n = model.n_hot
    if a["learned_offset_dn"].shape != (n,) or a["learned_rate_dn"].shape != (n,):
        raise ValueError("learned model arrays differ in length from the site table")
    if a["learned_counts"].shape != (n, 3):
        raise ValueError("learned counts are not (sites, 3)")
    k = len(a["stat_yx"])
    if a["stat_sums"].ndim == 2 and a["stat_sums"].shape[1] == len(SUMS) - 1:  # written before "n_ok" was summed
        a = dict(a, stat_sums=np.concatenate([a["stat_sums"], np.zeros((k, 1), a["stat_sums"].dtype)], axis=1))
    if a["stat_counts"].ndim == 2 and a["stat_counts"].shape[1] == len(COUNTS) - 1:  # written before "surprise"
        a = dict(a, stat_counts=np.concatenate([a["stat_counts"], np.zeros((k, 1), a["stat_counts"].dtype)], axis=1))
    if a["stat_yx"].shape != (k, 2) or a["stat_sums"].shape != (k, len(SUMS)) or a["stat_counts"].shape != (k, len(COUNTS)):
        raise ValueError("sufficient statistics differ in shape")
    h, w = model.raw_shape
    if k and (a["stat_yx"].min() < 0 or a["stat_yx"][:, 0].max() >= h or a["stat_yx"][:, 1].max() >= w):
        raise ValueError("a statistics site lies outside the raw frame")
    for key in ("learned_offset_dn", "learned_rate_dn", "stat_sums"):
        if not np.all(np.isfinite(a[key])):
            raise ValueError(f"{key} holds non-finite values")
    return {key: a[key].astype(LEARNED_ARRAYS[key], copy=False) for key in LEARNED_ARRAYS}


def _check_learned_meta(meta: dict[str, Any]) -> None:
    """The numbers a learned profile's meta feeds back into learning and correction (untrusted
    input): the doubling temperature, and each photo's dark factor and own factor."""
    def number(v, low: float, high: float) -> bool:
        return not isinstance(v, bool) and isinstance(v, (int, float)) and low <= v <= high

    learned = meta.get("learned", {})
    if not isinstance(learned, dict):
        raise ValueError("the learned block is not an object")
    if learned.get("doubling_c") is not None and not number(learned["doubling_c"], 1.0, 50.0):
        raise ValueError("doubling_c is not a temperature step in °C (1-50)")
    frames = meta.get("frames", [])
    if not isinstance(frames, list) or not all(isinstance(f, dict) for f in frames):
        raise ValueError("frames is not a list of objects")
    for f in frames:
        if f.get("dark_factor") is not None and not number(f["dark_factor"], 0.0, 1e12):
            raise ValueError("a frame's dark_factor is not a number >= 0")
        if f.get("photo_scale") is not None and not number(f["photo_scale"], 0.0, 1e6):
            raise ValueError("a frame's photo_scale is not a number >= 0")
    if not number(meta.get("n_frames", 0), 0, 1e9):
        raise ValueError("n_frames is not a count")


def _model_from(m: dict[str, Any], a: dict[str, np.ndarray]) -> DarkModel:
    cfa = CfaPattern.from_json(m["cfa"])
    n = len(a["hot_excess_dn"])
    h, w = (int(v) for v in m["raw_shape"])
    block = int(m["field_block_px"])
    expected_field = (cfa.n_planes, -(-h // block), -(-w // block))
    if a["field_dn"].shape != expected_field:
        raise ValueError(f"field grid {a['field_dn'].shape} != {expected_field}")
    if a["hot_yx"].shape != (n, 2) or a["hot_flags"].shape != (n,) or a["hot_temporal_sigma_dn"].shape != (n,):
        raise ValueError("hot-site arrays differ in length")
    if n and (a["hot_yx"].min() < 0 or a["hot_yx"][:, 0].max() >= h or a["hot_yx"][:, 1].max() >= w):
        raise ValueError("hot site outside the raw frame")
    if a["read_noise_dn"].shape != (cfa.n_planes,):
        raise ValueError("read noise is not one value per CFA plane")
    return DarkModel(raw_shape=(h, w), active_area=tuple(int(v) for v in m["active_area"]), cfa=cfa,
                     field_block_px=block, field_dn=a["field_dn"].astype(np.float32),
                     hot_yx=a["hot_yx"].astype(np.int32), hot_excess_dn=a["hot_excess_dn"].astype(np.float32),
                     hot_flags=a["hot_flags"].astype(np.uint8),
                     hot_temporal_sigma_dn=a["hot_temporal_sigma_dn"].astype(np.float32),
                     read_noise_dn=a["read_noise_dn"].astype(np.float32),
                     black_level_dn=float(m.get("black_level_dn", 0.0)),
                     white_level_dn=float(m.get("white_level_dn", 65535.0)), exposure_s=m.get("exposure_s"),
                     iso=m.get("iso"), temperature_c=m.get("temperature_c"), n_frames=int(m.get("n_frames", 0)),
                     extra=dict(m.get("extra") or {}))
