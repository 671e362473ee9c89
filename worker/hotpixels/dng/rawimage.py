"""In-memory raw image: the CFA data of one DNG plus what correction needs to interpret it.

Frames: ``cfa_dn`` is the *full* raw IFD frame (ImageLength x ImageWidth), (y, x), including any
masked border; ``active_area`` says which part is the image. Values are linearised DN (after the
LinearizationTable, if the file has one), black level *not* subtracted. All colour lookups go
through :class:`hotpixels.dng.cfa.CfaPattern`, anchored at the ActiveArea's top-left.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .cfa import CfaPattern


@dataclass
class CameraMetadata:
    """What profiles match on. ``None`` means unknown (a normal value: many bodies omit it)."""

    make: str | None = None
    model: str | None = None
    serial: str | None = None  # EXIF BodySerialNumber / DNG CameraSerialNumber
    internal_serial: str | None = None  # maker-note internal serial, when exiftool finds one
    iso: float | None = None
    exposure_s: float | None = None
    capture_time: str | None = None  # ISO 8601, local time as the camera wrote it
    temperature_c: float | None = None  # sensor (or camera) temperature, degrees Celsius
    temperature_source: str | None = None  # exiftool tag it came from, e.g. "MakerNotes:CameraTemperature"
    unique_camera_model: str | None = None
    software: str | None = None
    corrected_by_hotpixels: bool = False  # this project wrote the file (Software/XMP marker)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "CameraMetadata":
        known = {k: d.get(k) for k in cls.__dataclass_fields__}
        known["corrected_by_hotpixels"] = bool(known.get("corrected_by_hotpixels") or False)
        return cls(**known)


@dataclass
class RawImage:
    """One CFA raw frame.

    * ``cfa_dn``: (H, W) uint16, full raw-IFD frame, linearised DN.
    * ``active_area``: (top, left, bottom, right) in full-frame coordinates (DNG ActiveArea).
    * ``black_repeat_dn``: (ry, rx) float64 BlackLevel repeat (BlackLevelRepeatDim), anchored at the
      ActiveArea's top-left like the CFA; ``black_delta_h_dn`` (active width,) and
      ``black_delta_v_dn`` (active height,) are BlackLevelDeltaH/V or ``None``.
    * ``white_level_dn``: the DNG WhiteLevel (linearised scale).
    * ``layout``: reader-private description of how the pixels are stored (strips/tiles,
      compression, offsets); the writer needs it, nobody else should look inside.
    """

    cfa_dn: np.ndarray
    cfa: CfaPattern
    active_area: tuple[int, int, int, int]
    white_level_dn: float
    black_repeat_dn: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    black_delta_h_dn: np.ndarray | None = None
    black_delta_v_dn: np.ndarray | None = None
    bits_per_sample: int = 16
    metadata: CameraMetadata = field(default_factory=CameraMetadata)
    path: str | None = None
    layout: Any = None
    as_shot_neutral: tuple[float, ...] | None = None  # DNG AsShotNeutral (R, G, B) for previews

    @property
    def shape(self) -> tuple[int, int]:
        return self.cfa_dn.shape  # type: ignore[return-value]

    @property
    def active_slices(self) -> tuple[slice, slice]:
        t, l, b, r = self.active_area
        return slice(t, b), slice(l, r)

    def black_level_at(self, y, x) -> np.ndarray:
        """Black level in DN at full-frame site(s) (y, x), including the per-row/column deltas."""
        y = np.asarray(y)
        x = np.asarray(x)
        t, l, _, _ = self.active_area
        ry, rx = self.black_repeat_dn.shape
        out = self.black_repeat_dn[(y - t) % ry, (x - l) % rx].astype(np.float64)
        if self.black_delta_v_dn is not None:
            out = out + self.black_delta_v_dn[np.clip(y - t, 0, len(self.black_delta_v_dn) - 1)]
        if self.black_delta_h_dn is not None:
            out = out + self.black_delta_h_dn[np.clip(x - l, 0, len(self.black_delta_h_dn) - 1)]
        return out

    def black_level_map(self, dtype=np.float32) -> np.ndarray:
        """(H, W) black level of every full-frame site (allocates a full frame: use sparingly)."""
        h, w = self.shape
        t, l, _, _ = self.active_area
        ry, rx = self.black_repeat_dn.shape
        rolled = np.roll(self.black_repeat_dn, shift=(t % ry, l % rx), axis=(0, 1))
        out = np.tile(rolled, (-(-h // ry), -(-w // rx)))[:h, :w].astype(dtype)
        if self.black_delta_v_dn is not None:
            ys = np.clip(np.arange(h) - t, 0, len(self.black_delta_v_dn) - 1)
            out += self.black_delta_v_dn[ys].astype(dtype)[:, None]
        if self.black_delta_h_dn is not None:
            xs = np.clip(np.arange(w) - l, 0, len(self.black_delta_h_dn) - 1)
            out += self.black_delta_h_dn[xs].astype(dtype)[None, :]
        return out

    @property
    def black_level_mean_dn(self) -> float:
        return float(np.mean(self.black_repeat_dn))

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (used by ``inspect``, reports and the worker)."""
        return {
            "path": self.path,
            "raw_size": list(self.shape),
            "active_area": list(self.active_area),
            "cfa": self.cfa.to_json(),
            "bits_per_sample": self.bits_per_sample,
            "black_level_dn": [list(map(float, r)) for r in self.black_repeat_dn],
            "white_level_dn": float(self.white_level_dn),
            "metadata": self.metadata.to_json(),
        }
