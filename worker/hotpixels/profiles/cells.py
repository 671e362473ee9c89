"""Per-plane statistics on a coarse grid of square cells, and the way back to full resolution.

The grid follows :class:`~hotpixels.profiles.darkmodel.DarkModel`: cell (i, j) covers full-frame
rows ``[i*B, (i+1)*B)`` and columns ``[j*B, (j+1)*B)`` (``B`` = ``block_px``) and its value sits at
the cell centre; there are ``ceil(H/B) x ceil(W/B)`` cells per CFA plane. ``B`` is a multiple of
the CFA repeat, so every cell holds the same phases in the same places.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..dng.cfa import CfaPattern
from .darkmodel import DarkModel
from .neighbours import phase_preserving_index


def cell_size_for(cfa: CfaPattern, target_px: int) -> int:
    """The smallest multiple of the CFA repeat that is >= ``target_px`` (32 -> 32 Bayer, 36 X-Trans)."""
    rep = int(np.lcm(*cfa.repeat))
    return rep * max(1, -(-int(target_px) // rep))


def grid_shape(shape: tuple[int, int], block_px: int) -> tuple[int, int]:
    return -(-int(shape[0]) // block_px), -(-int(shape[1]) // block_px)


def cell_samples(arr: np.ndarray, cfa: CfaPattern, block_px: int) -> Iterator[np.ndarray]:
    """Per plane in turn, a (gh, gw, n) float32 array: the plane's sites in each cell (one plane's
    copy alive at a time).

    Cells that hang over the frame's bottom/right edge are filled with sites moved back by whole
    CFA periods (same colour), so every cell has the same number of samples.
    """
    h, w = arr.shape
    gh, gw = grid_shape((h, w), block_px)
    nr, nc = cfa.repeat
    rows = phase_preserving_index(0, gh * block_px, h, nr)
    cols = phase_preserving_index(0, gw * block_px, w, nc)
    padded = arr[rows][:, cols] if (gh * block_px, gw * block_px) != (h, w) else arr
    cells = padded.reshape(gh, block_px, gw, block_px).transpose(0, 2, 1, 3)
    plane_in_cell = cfa.plane_map((block_px, block_px))  # cells start at multiples of the repeat
    for p in range(cfa.n_planes):
        yield cells[:, :, plane_in_cell == p].astype(np.float32, copy=False)


def cell_median(samples: np.ndarray) -> np.ndarray:
    return np.median(samples, axis=-1)


def cell_mad_sigma(samples: np.ndarray) -> np.ndarray:
    """MAD x 1.4826 per cell (the design's σ definition applied to the cell's residuals)."""
    med = np.median(samples, axis=-1, keepdims=True)
    return 1.4826 * np.median(np.abs(samples - med), axis=-1)


def grid_model(grid: np.ndarray, cfa: CfaPattern, block_px: int, shape: tuple[int, int]) -> DarkModel:
    """A DarkModel holding only ``grid`` as its field: the one bilinear interpolation stage 1 uses
    (:meth:`DarkModel.field_at` / :meth:`DarkModel.field_full`), for code that needs it on a grid."""
    return DarkModel(raw_shape=(int(shape[0]), int(shape[1])), active_area=(0, 0, int(shape[0]), int(shape[1])),
                     cfa=cfa, field_block_px=block_px, field_dn=grid.astype(np.float32),
                     hot_yx=np.zeros((0, 2), np.int32), hot_excess_dn=np.zeros(0, np.float32),
                     hot_flags=np.zeros(0, np.uint8), hot_temporal_sigma_dn=np.zeros(0, np.float32),
                     read_noise_dn=np.zeros(cfa.n_planes, np.float32))


def _axis_weights(v: np.ndarray, n: int, block_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (i0, i1) and weight of i1 for linear interpolation between cell centres along one
    axis, *extrapolating* linearly beyond the outer centres instead of holding them."""
    if n < 2:
        zeros = np.zeros(len(v), np.int64)
        return zeros, zeros, np.zeros(len(v))
    g = v / block_px - 0.5
    i0 = np.clip(np.floor(g), 0, n - 2).astype(np.int64)
    return i0, i0 + 1, g - i0


def extrapolated_field_full(grid: np.ndarray, cfa: CfaPattern, block_px: int, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 like :meth:`DarkModel.field_full`, but continued linearly past the outer cell
    centres (the outer half cell at each frame edge) instead of held flat.

    Detection only: at a frame edge inside a steep amp-glow corner the held value falls short of
    the glow and every edge site would look hot against its (inward) neighbours.
    """
    h, w = int(shape[0]), int(shape[1])
    _, gh, gw = grid.shape
    out = np.empty((h, w), np.float32)
    rows, cols = cfa.repeat
    for (py, px), rs, cs in _phase_slices(cfa, h, w):
        plane = int(cfa.plane_of_phase[py, px])
        ys = np.arange(rs.start, h, rows, dtype=np.float64)
        xs = np.arange(cs.start, w, cols, dtype=np.float64)
        y0, y1, fy = _axis_weights(ys, gh, block_px)
        x0, x1, fx = _axis_weights(xs, gw, block_px)
        g = grid[plane].astype(np.float64)
        along_y = g[y0] * (1 - fy)[:, None] + g[y1] * fy[:, None]
        out[rs, cs] = along_y[:, x0] * (1 - fx)[None, :] + along_y[:, x1] * fx[None, :]
    return out


def _phase_slices(cfa: CfaPattern, h: int, w: int):
    from .neighbours import phase_views

    return phase_views(cfa, 0, h, w)
