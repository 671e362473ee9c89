"""Summary pictures of a profile, as PNG for the plugin (numpy raster + ``imagecodecs.png_encode``).

* ``hot_per_frame`` — bars: listed sites standing k σ above the floor in each dark;
* ``temperature_per_frame`` — bars: recorded sensor temperature of each dark (°C; frames without
  one are left empty), the baseline at the coldest frame minus 2 °C so differences show;
* ``hot_map`` — the listed sites on a downsampled frame (at most 480 px wide), brighter where a
  cell holds more sites; unstable (RTS) sites orange, saturated red, cold blue;
* ``excess_histogram`` — counts of listed sites per log2 bin of excess (DN), 1 DN to 64 kDN.

The charts carry no text (the plugin writes captions beside them); the y axis always starts at
zero except for temperature (see above).
"""

from __future__ import annotations

import os
from pathlib import Path

import imagecodecs
import numpy as np

from ..fileio import atomic_write
from .darkmodel import FLAG_COLD, FLAG_SATURATED, FLAG_UNSTABLE
from .profile_file import Profile

BACKGROUND = (250, 250, 250)
AXIS = (60, 60, 60)
BAR = (52, 101, 164)
HOT_RGB = (255, 255, 255)
UNSTABLE_RGB = (255, 150, 0)
SATURATED_RGB = (255, 40, 40)
COLD_RGB = (80, 140, 255)


def bar_chart(values: list[float | None], size=(200, 360), baseline: float = 0.0) -> np.ndarray:
    """(h, w, 3) uint8 bar chart of ``values`` (None: no bar) above ``baseline``."""
    h, w = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = BACKGROUND
    left, bottom, top = 12, h - 12, 10
    img[top:bottom + 1, left] = AXIS
    img[bottom, left:w - 6] = AXIS
    known = [v for v in values if v is not None]
    if not values or not known:
        return img
    vmax = max(max(known) - baseline, 1e-9)
    slot = (w - 6 - left - 2) / len(values)
    for i, v in enumerate(values):
        if v is None:
            continue
        x0 = int(left + 2 + i * slot + 0.15 * slot)
        x1 = max(x0 + 1, int(left + 2 + (i + 1) * slot - 0.15 * slot))
        height = int(round((bottom - top) * max(v - baseline, 0) / vmax))
        img[bottom - height:bottom, x0:x1] = BAR
    return img


def hot_map(profile: Profile, max_width: int = 480) -> np.ndarray:
    """(h, w, 3) uint8 map of the listed sites over the (downsampled) raw frame."""
    model = profile.model
    h, w = model.raw_shape
    scale = max(1, -(-w // max_width))
    mh, mw = -(-h // scale), -(-w // scale)
    img = np.zeros((mh, mw, 3), np.uint8)
    img[:] = (25, 25, 30)
    t, l, b, r = model.active_area
    img[t // scale:-(-b // scale), l // scale:-(-r // scale)] = (40, 40, 48)
    if model.n_hot == 0:
        return img
    ys, xs = model.hot_yx[:, 0] // scale, model.hot_yx[:, 1] // scale
    counts = np.zeros((mh, mw), np.float32)
    np.add.at(counts, (ys, xs), 1)
    lit = counts > 0
    level = np.clip(0.45 + 0.55 * np.log1p(counts) / np.log1p(max(counts.max(), 1)), 0, 1)
    img[lit] = (np.array(HOT_RGB)[None, :] * level[lit][:, None]).astype(np.uint8)
    for flag, rgb in ((FLAG_COLD, COLD_RGB), (FLAG_UNSTABLE, UNSTABLE_RGB), (FLAG_SATURATED, SATURATED_RGB)):
        sel = model.flagged(flag)
        img[ys[sel], xs[sel]] = rgb
    return img


def excess_histogram(profile: Profile, size=(200, 360)) -> np.ndarray:
    ex = np.abs(profile.model.hot_excess_dn)
    edges = 2.0 ** np.arange(0, 17)
    counts, _ = np.histogram(np.clip(ex, 1, edges[-1] - 1), bins=edges)
    return bar_chart([float(c) for c in counts], size)


def write_pictures(profile: Profile, folder: str | os.PathLike) -> dict[str, str]:
    """Write the four PNGs into ``folder``; ``{name: absolute path}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stats = profile.meta.get("frames") or []
    temps = [s.get("temperature_c") for s in stats]
    known = [t for t in temps if t is not None]
    pictures = {
        "hot_per_frame": bar_chart([float(s.get("hot_count") or 0) for s in stats]),
        "temperature_per_frame": bar_chart(temps, baseline=(min(known) - 2.0) if known else 0.0),
        "hot_map": hot_map(profile),
        "excess_histogram": excess_histogram(profile),
    }
    out = {}
    for name, img in pictures.items():
        path = folder / f"{name}.png"
        atomic_write(path, imagecodecs.png_encode(np.ascontiguousarray(img)))
        out[name] = str(path.resolve())
    return out
