"""The dark model a profile carries and stage 1 subtracts (docs/design.md, data path step 3).

Subtracting a raw master dark would add its noise (σ/√N times the scale) to every pixel, so a
profile instead holds:

* a **smooth field** (dark current floor, amp glow, gradients) at low resolution: ``field_dn`` is
  (n_planes, gh, gw) float32, the dark signal *above the black level* in DN at the profile's own
  exposure/temperature, sampled at the centres of ``field_block_px`` x ``field_block_px`` cells of
  the full raw frame, one grid per CFA plane (see ``CfaPattern.plane_of_phase``); and
* a **sparse table** of sites whose master-dark excess over the field and the local same-colour
  background is significant in σ: ``hot_yx`` (N, 2) full-frame (y, x), ``hot_excess_dn`` (N,)
  the excess in DN (negative for stuck-low sites), ``hot_flags`` (N,) bit flags, and
  ``hot_temporal_sigma_dn`` (N,) the frame-to-frame spread of the site across the darks.

σ is the one σ of the design: robust noise of a single dark frame at a site, in DN, from
same-colour neighbours (MAD x 1.4826); ``read_noise_dn`` holds it per plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..dng.cfa import CfaPattern

FLAG_SATURATED = 1  # at/near the white level in the master dark: value unknown, interpolate
FLAG_UNSTABLE = 2  # RTS / flickering: toggled between levels across the darks
FLAG_COLD = 4  # stuck low / dead: far below the background
FLAG_ADDED = 8  # added from photos (batch evidence, profiles.addSites): not measured by the darks, interpolate
FLAG_NAMES = {FLAG_SATURATED: "saturated", FLAG_UNSTABLE: "unstable", FLAG_COLD: "cold", FLAG_ADDED: "added"}


@dataclass
class DarkModel:
    raw_shape: tuple[int, int]
    active_area: tuple[int, int, int, int]
    cfa: CfaPattern
    field_block_px: int
    field_dn: np.ndarray  # (n_planes, gh, gw) float32
    hot_yx: np.ndarray  # (N, 2) int32, full-frame
    hot_excess_dn: np.ndarray  # (N,) float32
    hot_flags: np.ndarray  # (N,) uint8
    hot_temporal_sigma_dn: np.ndarray  # (N,) float32
    read_noise_dn: np.ndarray  # (n_planes,) float32, σ of one dark frame
    black_level_dn: float = 0.0  # mean black level of the darks (for reports)
    white_level_dn: float = 65535.0
    exposure_s: float | None = None
    iso: float | None = None
    temperature_c: float | None = None
    n_frames: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_hot(self) -> int:
        return int(len(self.hot_excess_dn))

    def flagged(self, flag: int) -> np.ndarray:
        return (self.hot_flags & flag) != 0

    # -- the smooth field ---------------------------------------------------------------------------
    def field_at(self, y, x) -> np.ndarray:
        """Smooth dark field in DN at full-frame site(s) (y, x): bilinear between cell centres."""
        y = np.asarray(y)
        x = np.asarray(x)
        planes = self.cfa.plane_at(y, x)
        return self._bilinear(planes, y.astype(np.float64), x.astype(np.float64))

    def field_full(self, dtype=np.float32) -> np.ndarray:
        """(H, W) smooth field for the whole frame, computed phase by phase (strided views)."""
        h, w = self.raw_shape
        out = np.empty((h, w), dtype=dtype)
        rows, cols = self.cfa.repeat
        oy, ox = self.cfa.origin_yx
        for py in range(rows):
            for px in range(cols):
                y0, x0 = (oy + py) % rows, (ox + px) % cols
                ys = np.arange(y0, h, rows)
                xs = np.arange(x0, w, cols)
                if len(ys) == 0 or len(xs) == 0:
                    continue
                plane = int(self.cfa.plane_of_phase[py, px])
                out[y0::rows, x0::cols] = self._separable(plane, ys, xs).astype(dtype)
        return out

    def _grid_coords(self, v: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g = v / self.field_block_px - 0.5
        g = np.clip(g, 0, n - 1)
        i0 = np.floor(g).astype(np.int64)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, g - i0

    def _bilinear(self, planes, y, x) -> np.ndarray:
        _, gh, gw = self.field_dn.shape
        y0, y1, fy = self._grid_coords(y, gh)
        x0, x1, fx = self._grid_coords(x, gw)
        f = self.field_dn
        top = f[planes, y0, x0] * (1 - fx) + f[planes, y0, x1] * fx
        bot = f[planes, y1, x0] * (1 - fx) + f[planes, y1, x1] * fx
        return top * (1 - fy) + bot * fy

    def _separable(self, plane: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        _, gh, gw = self.field_dn.shape
        y0, y1, fy = self._grid_coords(ys.astype(np.float64), gh)
        x0, x1, fx = self._grid_coords(xs.astype(np.float64), gw)
        grid = self.field_dn[plane].astype(np.float64)
        rows = grid[y0] * (1 - fy)[:, None] + grid[y1] * fy[:, None]  # (len(ys), gw)
        return rows[:, x0] * (1 - fx)[None, :] + rows[:, x1] * fx[None, :]
