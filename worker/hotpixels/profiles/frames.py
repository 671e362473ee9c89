"""Dark frames as the profile builder sees them: header facts, and per-frame statistics.

A :class:`FrameInfo` is what the agreement checks (:mod:`.checks`) and the profile's frame list
need from one dark, without its pixels. :func:`colour_means_dn` and :func:`hot_counts` are the
per-frame statistics the profile stores (mean dark signal per CFA colour, hot sites per frame).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..dng.cfa import COLOR_NAMES, CfaPattern
from ..dng.rawimage import CameraMetadata, RawImage
from .neighbours import phase_views


@dataclass
class FrameInfo:
    name: str  # file name (or "frame <i>" for an in-memory frame)
    path: str | None
    metadata: CameraMetadata
    raw_size: tuple[int, int]
    active_area: tuple[int, int, int, int]
    cfa: CfaPattern
    black_level_dn: float  # mean of the BlackLevel repeat
    white_level_dn: float

    def to_json(self) -> dict:
        return {"name": self.name, "path": self.path, "raw_size": list(self.raw_size),
                "active_area": list(self.active_area), "cfa": self.cfa.name,
                "black_level_dn": self.black_level_dn, "white_level_dn": self.white_level_dn,
                "iso": self.metadata.iso, "exposure_s": self.metadata.exposure_s,
                "temperature_c": self.metadata.temperature_c, "capture_time": self.metadata.capture_time}


def frame_info(raw: RawImage, index: int, raw_size: tuple[int, int] | None = None) -> FrameInfo:
    """Header facts of one frame; ``raw_size`` when the image was read without pixels."""
    size = tuple(int(v) for v in (raw_size or raw.shape))
    name = os.path.basename(raw.path) if raw.path else f"frame {index + 1}"
    return FrameInfo(name=name, path=str(raw.path) if raw.path else None, metadata=raw.metadata,
                     raw_size=size, active_area=tuple(int(v) for v in raw.active_area), cfa=raw.cfa,
                     black_level_dn=float(raw.black_level_mean_dn), white_level_dn=float(raw.white_level_dn))


def colour_means_dn(raw: RawImage) -> dict[str, float]:
    """Mean dark signal above the black level per CFA colour over the ActiveArea, DN.

    Black levels are separable (repeat + row delta + column delta), so the mean black of a phase
    view is exact without a full-frame black map.
    """
    t, l, b, r = raw.active_area
    sums = np.zeros(3)
    counts = np.zeros(3)
    for (py, px), rs, cs in phase_views(raw.cfa, t, b, r):
        if cs.start < l:
            cs = slice(cs.start + raw.cfa.repeat[1] * (-(-(l - cs.start) // raw.cfa.repeat[1])), r, cs.step)
        view = raw.cfa_dn[rs, cs]
        if view.size == 0:
            continue
        ys = np.arange(rs.start, b, rs.step)
        xs = np.arange(cs.start, r, cs.step)
        black = (raw.black_level_at(ys, xs[0]).mean() + raw.black_level_at(ys[0], xs).mean()
                 - float(raw.black_level_at(ys[0], xs[0])))
        colour = int(raw.cfa.array[py, px])
        sums[colour] += float(view.sum(dtype=np.float64)) - black * view.size
        counts[colour] += view.size
    return {COLOR_NAMES[c]: float(sums[c] / counts[c]) for c in range(3) if counts[c]}


def hot_counts(frames: list[np.ndarray], yx: np.ndarray, floor_dn: np.ndarray, k_sigma_dn: np.ndarray) -> list[int]:
    """Per frame, how many listed sites stand ``k σ`` above the dark floor (black + field) in it.

    ``floor_dn`` and ``k_sigma_dn`` are per listed site; a sparse gather, no full-frame work.
    """
    if len(yx) == 0:
        return [0 for _ in frames]
    ys, xs = yx[:, 0], yx[:, 1]
    return [int(np.count_nonzero(f[ys, xs].astype(np.float32) > floor_dn + k_sigma_dn)) for f in frames]
