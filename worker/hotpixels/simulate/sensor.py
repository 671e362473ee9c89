"""The simulated camera body: geometry, CFA, bit depth, black/white levels, gain, noise, physics.

A :class:`SensorModel` holds everything that is fixed for one camera body (the seed makes it a
particular body: its serial, its temperature-doubling constant and, in :mod:`.defects`, its
dark-current field). Presets give realistic shapes:

=================  ===============  ===========  =====  ============================================
preset             active (h x w)   CFA          bits   masked border (top, left, bottom, right)
=================  ===============  ===========  =====  ============================================
``small``          400 x 600        RGGB         14     3, 5, 4, 6 (odd: the CFA anchor moves)
``small-gbrg``     400 x 600        GBRG         12     0, 0, 0, 0
``small-xtrans``   420 x 600        X-Trans 6x6  14     1, 3, 2, 4
``24mp``           4000 x 6000      RGGB         14     12, 48, 0, 0 (like many full-frame bodies)
=================  ===============  ===========  =====  ============================================

Units: gain in electrons per DN (``gain_e_per_dn`` at ISO 100; it falls as 100/ISO), read noise in
electrons, dark current in electrons per second at ``ref_temp_c``; dark current doubles every
``doubling_c`` degrees Celsius, drawn per body from 5-9 °C.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dng.cfa import BAYER_PATTERNS, CfaPattern
from ..errors import InvalidOption

MAKE = "HotPixels"
MODEL = "SimCam Mk1"


def rng_for(seed: int, *names: Any) -> np.random.Generator:
    """A generator that depends only on ``seed`` and a path of names (stable across runs).

    Each part of the simulation draws from its own stream (``rng_for(seed, "field")``,
    ``rng_for(seed, "light", 3)``), so adding a light frame does not change the darks.
    """
    key = [int(seed) & 0xFFFFFFFF]
    for n in names:
        key.append(zlib.crc32(str(n).encode()) & 0xFFFFFFFF)
    return np.random.default_rng(np.random.SeedSequence(key))


@dataclass(frozen=True)
class SensorModel:
    """One simulated camera body. Coordinates are full raw frame (y, x); see module docstring."""

    preset: str
    seed: int
    height: int  # full raw frame, masked border included
    width: int
    active_area: tuple[int, int, int, int]  # (top, left, bottom, right), DNG ActiveArea
    cfa: CfaPattern  # anchored at the ActiveArea's top-left
    bits: int
    white_level_dn: int
    black_repeat_dn: tuple[tuple[float, ...], ...]  # BlackLevel repeat, anchored like the CFA
    gain_e_per_dn_iso100: float
    read_noise_e: float
    dark_median_e_s: float  # median dark current of ordinary pixels at ref_temp_c
    dark_spread: float  # lognormal sigma of ordinary pixels' dark current
    hot_fraction: float  # share of sites in the heavy-tailed hot population
    hot_min_e_s: float  # Pareto lower bound of the hot population's rate at ref_temp_c
    hot_max_e_s: float  # upper truncation of the Pareto law
    hot_alpha: float  # Pareto tail index: P(rate > r) ~ (r / hot_min)^-alpha
    rts_fraction: float  # share of hot pixels that toggle between two levels (telegraph noise)
    stuck_low_fraction: float
    amp_glow_e_s: float  # peak amp-glow dark rate at the glowing corner, ref_temp_c
    amp_glow_corner: str  # "tl" | "tr" | "bl" | "br"
    amp_glow_scale: float  # e-folding distance as a fraction of the frame width
    residual_per_mpx: float  # random single-frame hot pixels per megapixel in each light frame
    doubling_c: float  # dark current doubles every doubling_c °C (drawn from 5-9 per body)
    ref_temp_c: float = 20.0
    star_density_per_mpx: float = 1200.0
    make: str = MAKE
    model: str = MODEL
    serial: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def active_shape(self) -> tuple[int, int]:
        t, l, b, r = self.active_area
        return (b - t, r - l)

    @property
    def active_slices(self) -> tuple[slice, slice]:
        t, l, b, r = self.active_area
        return slice(t, b), slice(l, r)

    @property
    def black_repeat(self) -> np.ndarray:
        return np.array(self.black_repeat_dn, dtype=np.float64)

    def gain_e_per_dn(self, iso: float) -> float:
        """Electrons per DN at ``iso`` (the analogue gain rises with ISO)."""
        return self.gain_e_per_dn_iso100 * 100.0 / float(iso)

    def temperature_factor(self, temp_c: float) -> float:
        """Dark current at ``temp_c`` relative to ``ref_temp_c`` (doubles every ``doubling_c``)."""
        return float(2.0 ** ((float(temp_c) - self.ref_temp_c) / self.doubling_c))

    def black_map(self) -> np.ndarray:
        """(H, W) float32 black level of each full-frame site (repeat anchored at the ActiveArea)."""
        rep = self.black_repeat
        ry, rx = rep.shape
        t, l = self.active_area[:2]
        rolled = np.roll(rep, shift=(t % ry, l % rx), axis=(0, 1))
        return np.tile(rolled, (-(-self.height // ry), -(-self.width // rx)))[: self.height, : self.width].astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "cfa"}
        out["cfa"] = self.cfa.to_json()
        out["active_area"] = list(self.active_area)
        out["black_repeat_dn"] = [list(r) for r in self.black_repeat_dn]
        return out


# geometry and physics of each preset; the body's doubling constant and serial come from the seed
_PRESETS: dict[str, dict[str, Any]] = {
    "small": dict(height=407, width=611, active_area=(3, 5, 403, 605), cfa="RGGB", bits=14,
                  black=(512.0, 510.0, 514.0, 509.0), amp_glow_corner="tr"),
    "small-gbrg": dict(height=400, width=600, active_area=(0, 0, 400, 600), cfa="GBRG", bits=12,
                       black=(128.0, 127.0, 129.0, 128.0), gain_e_per_dn_iso100=2.0, amp_glow_corner="bl"),
    "small-xtrans": dict(height=423, width=607, active_area=(1, 3, 421, 603), cfa="XTRANS", bits=14,
                         black=(1024.0,), amp_glow_corner="br"),
    "24mp": dict(height=4012, width=6048, active_area=(12, 48, 4012, 6048), cfa="RGGB", bits=14,
                 black=(512.0, 511.0, 513.0, 512.0), amp_glow_corner="tl"),
}

PRESETS = tuple(_PRESETS)
CFA_CHOICES = tuple(sorted(BAYER_PATTERNS)) + ("XTRANS",)


def make_sensor(preset: str = "small", seed: int = 1, cfa: str | None = None, *,
                serial: str | None = None, **overrides: Any) -> SensorModel:
    """The camera body ``preset`` number ``seed``.

    ``cfa`` picks another pattern ("RGGB", "BGGR", "GRBG", "GBRG" or "XTRANS"), anchored at the same
    ActiveArea corner; ``serial`` overrides the seed-derived serial; ``overrides`` set any other
    :class:`SensorModel` field (e.g. ``hot_fraction=0.01``, ``doubling_c=6.0``). Geometry overrides
    ``height``/``width`` keep the masked border of the preset.
    """
    if preset not in _PRESETS:
        raise InvalidOption(f"unknown simulator preset {preset!r}; choose one of {', '.join(PRESETS)}")
    p = dict(_PRESETS[preset])
    name = (cfa or p["cfa"]).upper().replace("-", "")
    if name not in CFA_CHOICES:
        raise InvalidOption(f"unknown CFA {cfa!r}; choose one of {', '.join(CFA_CHOICES)}")
    t, l, b, r = p["active_area"]
    height, width = overrides.pop("height", p["height"]), overrides.pop("width", p["width"])
    border_b, border_r = p["height"] - b, p["width"] - r
    active = (t, l, height - border_b, width - border_r)
    pattern = CfaPattern.xtrans((t, l)) if name == "XTRANS" else CfaPattern.bayer(name, (t, l))
    black = p["black"]
    if not pattern.is_bayer:  # one black level for X-Trans (BlackLevelRepeatDim 1x1)
        black = (float(np.mean(black)),)
    ry, rx = (2, 2) if len(black) == 4 else (1, 1)
    black_rep = tuple(tuple(float(v) for v in row) for row in np.array(black, dtype=float).reshape(ry, rx))
    rng = rng_for(seed, "body", preset)
    doubling_c = float(rng.uniform(5.0, 9.0))
    body_serial = serial if serial is not None else f"SIM{int(seed) % 10**8:08d}{zlib.crc32(preset.encode()) % 100:02d}"
    base = dict(
        preset=preset, seed=int(seed), height=int(height), width=int(width), active_area=active,
        cfa=pattern, bits=p["bits"], white_level_dn=(1 << p["bits"]) - 1, black_repeat_dn=black_rep,
        gain_e_per_dn_iso100=p.get("gain_e_per_dn_iso100", 8.0), read_noise_e=2.5,
        dark_median_e_s=0.02, dark_spread=0.25,
        hot_fraction=2e-3, hot_min_e_s=0.5, hot_max_e_s=2e4, hot_alpha=0.8,
        rts_fraction=0.05, stuck_low_fraction=5e-5,
        amp_glow_e_s=1.5, amp_glow_corner=p["amp_glow_corner"], amp_glow_scale=0.06,
        residual_per_mpx=40.0, doubling_c=doubling_c, serial=body_serial,
    )
    base.update(overrides)
    return SensorModel(**base)

