"""The one place that knows the CFA convention.

Conventions (DNG spec 1.7, tags CFARepeatPatternDim / CFAPattern / CFAPlaneColor / ActiveArea):

* Colour indices are 0 = red, 1 = green, 2 = blue (CFAPlaneColor ``0,1,2``; the reader remaps
  other plane-colour orders into this one). Other DNG colours (cyan, magenta, yellow, white) are
  refused by the reader.
* The pattern is anchored at the ActiveArea's top-left corner, not at (0, 0) of the raw IFD.
  Every lookup takes *full-frame* coordinates (y, x) of the raw IFD and subtracts ``origin_yx``
  first, so a masked border with odd offsets changes which colour a site has.
* A *phase* is the position (py, px) inside the repeat, ``py = (y - oy) mod rows``.
* A *plane* groups sites that share statistics: for a 2x2 repeat (Bayer) each of the four
  phases is its own plane, so the two greens (Gr, Gb) are separate planes (their gains and
  black offsets differ on real sensors; rawpy's ``enhance.py`` slices ``raw[oy::2, ox::2]`` for the
  same reason). For larger repeats (X-Trans 6x6) a plane is a colour (3 planes).
* Same-colour neighbour offsets are returned per phase, nearest first, and opposite pairs
  ``(d, -d)`` where both ends have the phase's colour; for green sites of a Bayer pattern the
  diagonals (±1, ±1) belong to the other green sub-grid and are included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

RED, GREEN, BLUE = 0, 1, 2
COLOR_NAMES = ("R", "G", "B")

BAYER_PATTERNS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "RGGB": ((RED, GREEN), (GREEN, BLUE)),
    "BGGR": ((BLUE, GREEN), (GREEN, RED)),
    "GRBG": ((GREEN, RED), (BLUE, GREEN)),
    "GBRG": ((GREEN, BLUE), (RED, GREEN)),
}

# Fujifilm X-Trans (X-T1 … X-T5 family), as the first 6x6 repeat from the ActiveArea corner.
XTRANS_PATTERN = (
    (GREEN, GREEN, RED, GREEN, GREEN, BLUE),
    (GREEN, GREEN, BLUE, GREEN, GREEN, RED),
    (BLUE, RED, GREEN, RED, BLUE, GREEN),
    (GREEN, GREEN, BLUE, GREEN, GREEN, RED),
    (GREEN, GREEN, RED, GREEN, GREEN, BLUE),
    (RED, BLUE, GREEN, BLUE, RED, GREEN),
)


@dataclass(frozen=True)
class CfaPattern:
    """A colour filter array: ``pattern`` (rows, cols) of colour indices, anchored at ``origin_yx``.

    ``origin_yx`` is the ActiveArea's top-left (top, left) in full-frame coordinates of the raw IFD.
    """

    pattern: tuple[tuple[int, ...], ...]
    origin_yx: tuple[int, int] = (0, 0)
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_array(cls, pattern, origin_yx=(0, 0)) -> "CfaPattern":
        arr = np.asarray(pattern, dtype=np.int64)
        if arr.ndim != 2 or arr.size == 0:
            raise ValueError("CFA pattern must be a non-empty 2-D array")
        if arr.min() < 0 or arr.max() > 2:
            raise ValueError("CFA colours must be 0 (R), 1 (G) or 2 (B)")
        return cls(tuple(tuple(int(v) for v in row) for row in arr), (int(origin_yx[0]), int(origin_yx[1])))

    @classmethod
    def bayer(cls, name: str = "RGGB", origin_yx=(0, 0)) -> "CfaPattern":
        try:
            return cls.from_array(BAYER_PATTERNS[name.upper()], origin_yx)
        except KeyError:
            raise ValueError(f"unknown Bayer pattern {name!r}; expected one of {sorted(BAYER_PATTERNS)}") from None

    @classmethod
    def xtrans(cls, origin_yx=(0, 0)) -> "CfaPattern":
        return cls.from_array(XTRANS_PATTERN, origin_yx)

    def with_origin(self, origin_yx) -> "CfaPattern":
        return CfaPattern(self.pattern, (int(origin_yx[0]), int(origin_yx[1])))

    # -- description ------------------------------------------------------------------------------
    @cached_property
    def array(self) -> np.ndarray:
        """The repeat as a (rows, cols) uint8 array (phase-indexed, not full-frame)."""
        return np.array(self.pattern, dtype=np.uint8)

    @property
    def repeat(self) -> tuple[int, int]:
        return self.array.shape  # type: ignore[return-value]

    @property
    def is_bayer(self) -> bool:
        a = self.array
        return a.shape == (2, 2) and sorted(a.ravel().tolist()) == [RED, GREEN, GREEN, BLUE]

    @property
    def is_xtrans(self) -> bool:
        return self.repeat == (6, 6)

    @property
    def name(self) -> str:
        """'RGGB'-style name for Bayer (phase at the ActiveArea corner), 'X-Trans' or 'CFA<r>x<c>'."""
        if self.is_bayer:
            return "".join(COLOR_NAMES[v] for v in self.array.ravel())
        if self.is_xtrans:
            return "X-Trans"
        return "CFA{}x{}".format(*self.repeat)

    def to_json(self) -> dict:
        return {"pattern": [list(r) for r in self.pattern], "origin_yx": list(self.origin_yx), "name": self.name}

    @classmethod
    def from_json(cls, d: dict) -> "CfaPattern":
        return cls.from_array(d["pattern"], tuple(d.get("origin_yx", (0, 0))))

    # -- lookups in full-frame coordinates -------------------------------------------------------
    def phase_of(self, y, x):
        """Phase (py, px) of full-frame site(s) (y, x); works on scalars and arrays."""
        rows, cols = self.repeat
        return (np.asarray(y) - self.origin_yx[0]) % rows, (np.asarray(x) - self.origin_yx[1]) % cols

    def color_at(self, y, x):
        """Colour index (0 R, 1 G, 2 B) of full-frame site(s) (y, x)."""
        py, px = self.phase_of(y, x)
        return self.array[py, px]

    def color_map(self, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) uint8 colour index of every full-frame site."""
        return self._tile(self.array, shape)

    @cached_property
    def plane_of_phase(self) -> np.ndarray:
        """(rows, cols) plane index of each phase: four planes for a 2x2 repeat, else colour."""
        rows, cols = self.repeat
        if (rows, cols) == (2, 2):
            return np.arange(4, dtype=np.uint8).reshape(2, 2)
        return self.array.copy()

    @property
    def n_planes(self) -> int:
        return int(self.plane_of_phase.max()) + 1

    def plane_at(self, y, x):
        py, px = self.phase_of(y, x)
        return self.plane_of_phase[py, px]

    def plane_map(self, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) uint8 plane index of every full-frame site."""
        return self._tile(self.plane_of_phase, shape)

    def phase_index_map(self, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) int16 flat phase index ``py * cols + px`` of every full-frame site."""
        rows, cols = self.repeat
        flat = np.arange(rows * cols, dtype=np.int16).reshape(rows, cols)
        return self._tile(flat, shape)

    def _tile(self, per_phase: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        h, w = int(shape[0]), int(shape[1])
        rows, cols = per_phase.shape
        oy, ox = self.origin_yx
        # roll so that index 0 of the tiled array is full-frame (0, 0)
        rolled = np.roll(per_phase, shift=(oy % rows, ox % cols), axis=(0, 1))
        reps = (-(-h // rows), -(-w // cols))
        return np.ascontiguousarray(np.tile(rolled, reps)[:h, :w])

    def plane_slices(self, plane: int, shape: tuple[int, int]) -> list[tuple[slice, slice]]:
        """Strided slices ``(slice(y0, None, rows), slice(x0, None, cols))`` covering one plane.

        For Bayer each plane is exactly one strided view (``raw[oy::2, ox::2]``); for X-Trans a
        colour plane is the union of several phase views.
        """
        rows, cols = self.repeat
        oy, ox = self.origin_yx
        out = []
        for py in range(rows):
            for px in range(cols):
                if int(self.plane_of_phase[py, px]) == plane:
                    out.append((slice((oy + py) % rows, None, rows), slice((ox + px) % cols, None, cols)))
        return out

    # -- neighbour tables -------------------------------------------------------------------------
    def same_color_offsets(self, phase: tuple[int, int], radius: int = 2) -> np.ndarray:
        """(K, 2) int offsets (dy, dx) within Chebyshev ``radius`` whose site has the same colour.

        Sorted nearest first (Euclidean), then by angle, so callers can take the closest ring.
        For a Bayer green this includes the diagonals (the other green sub-grid).
        """
        key = ("offsets", tuple(phase), radius)
        if key not in self._cache:
            rows, cols = self.repeat
            py, px = int(phase[0]) % rows, int(phase[1]) % cols
            colour = self.array[py, px]
            offs = [
                (dy, dx)
                for dy in range(-radius, radius + 1)
                for dx in range(-radius, radius + 1)
                if (dy, dx) != (0, 0) and self.array[(py + dy) % rows, (px + dx) % cols] == colour
            ]
            offs.sort(key=lambda d: (d[0] ** 2 + d[1] ** 2, np.arctan2(d[0], d[1])))
            self._cache[key] = np.array(offs, dtype=np.int64).reshape(-1, 2)
        return self._cache[key]

    def opposite_pairs(self, phase: tuple[int, int], radius: int = 2) -> np.ndarray:
        """(P, 2, 2) pairs of offsets ``(d, -d)`` where both ends share the phase's colour.

        The edge-aware interpolation weighs each pair by how well its two ends agree; a pixel
        lies on an edge along the direction where they agree best.
        """
        offs = self.same_color_offsets(phase, radius)
        as_set = {tuple(o) for o in offs.tolist()}
        pairs = []
        for dy, dx in offs.tolist():
            if (-dy, -dx) in as_set and (dy > 0 or (dy == 0 and dx > 0)):
                pairs.append(((dy, dx), (-dy, -dx)))
        return np.array(pairs, dtype=np.int64).reshape(-1, 2, 2)

    def phases(self) -> list[tuple[int, int]]:
        rows, cols = self.repeat
        return [(py, px) for py in range(rows) for px in range(cols)]
