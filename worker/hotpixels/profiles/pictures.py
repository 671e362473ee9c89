"""Summary pictures of a profile, as PNG for the plug-in (numpy raster + ``imagecodecs.png_encode``).

Four charts of one size (CHART_SIZE, 270 x 540 px, so the plug-in lays them out 2 x 2 within a
1366-px-wide screen), each with its title in words, axes with tick values and units, drawn with the
5 x 7 font of :mod:`.chartfont`:

* ``hot_per_frame`` — bars: listed sites standing k σ above the floor in each dark (count per frame;
  the value above each bar when the bars are few);
* ``temperature_per_frame`` — bars: recorded sensor temperature of each dark (°C; frames without one
  are left empty), the baseline at the coldest frame minus 2 °C so differences show;
* ``hot_map`` — the listed sites on a downsampled frame, brighter where a cell holds more sites;
  unstable (RTS) sites orange, saturated red, cold blue; a legend says which is which;
* ``excess_histogram`` — counts of listed sites per log2 bin of excess (DN above the dark floor),
  1 DN to 64 kDN.
"""

from __future__ import annotations

import os
from pathlib import Path

import imagecodecs
import numpy as np

from ..fileio import atomic_write
from .chartfont import draw_text, text_width
from .darkmodel import FLAG_COLD, FLAG_SATURATED, FLAG_UNSTABLE
from .profile_file import Profile

BACKGROUND = (250, 250, 250)
AXIS = (60, 60, 60)
BAR = (52, 101, 164)
HOT_RGB = (255, 255, 255)
UNSTABLE_RGB = (255, 150, 0)
SATURATED_RGB = (255, 40, 40)
COLD_RGB = (80, 140, 255)


TEXT = (30, 30, 30)
GRID = (215, 215, 215)
CHART_SIZE = (270, 540)  # (h, w) px of every chart
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 58, 12, 40, 36


def _fmt(v: float) -> str:
    """A short tick label: 12, 1.5K, 64K, 2.5."""
    a = abs(v)
    if a >= 10_000:
        return f"{v / 1000:.0f}K"
    if a >= 1000:
        return f"{v / 1000:.1f}K".replace(".0K", "K") if a < 4000 else f"{v / 1000:.0f}K"
    if a == int(a):
        return f"{int(v)}"
    return f"{v:.1f}"


def _canvas(size, title: str) -> np.ndarray:
    h, w = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = BACKGROUND
    draw_text(img, title, w // 2, 8, scale=2, rgb=TEXT, anchor="center")
    return img


def bar_chart(values: list[float | None], size=CHART_SIZE, baseline: float = 0.0, *, title: str = "",
              x_label: str = "", y_label: str = "", x_ticks: list[str] | None = None) -> np.ndarray:
    """(h, w, 3) uint8 bar chart of ``values`` (None: no bar) above ``baseline``, with its title, a y axis
    with three ticks (baseline, middle, top) labelled with ``y_label``'s unit, and x tick labels (one per
    bar unless ``x_ticks`` gives them; at most about 12 are written)."""
    h, w = size
    img = _canvas(size, title)
    left, right, top, bottom = MARGIN_LEFT, w - MARGIN_RIGHT, MARGIN_TOP, h - MARGIN_BOTTOM
    known = [v for v in values if v is not None]
    vmax = max(max(known) if known else baseline + 1, baseline + 1e-9)
    span = vmax - baseline
    for frac in (0.0, 0.5, 1.0):
        y = int(round(bottom - frac * (bottom - top)))
        img[y, left + 1:right] = GRID
        draw_text(img, _fmt(baseline + frac * span), left - 5, y - 3, rgb=TEXT, anchor="right")
    img[top:bottom + 1, left] = AXIS
    img[bottom, left:right] = AXIS
    draw_text(img, y_label, 4, top - 12, rgb=TEXT)
    draw_text(img, x_label, (left + right) // 2, h - 10, rgb=TEXT, anchor="center")
    if not values:
        return img
    slot = (right - left - 2) / len(values)
    labels = x_ticks if x_ticks is not None else [str(i + 1) for i in range(len(values))]
    every = max(1, -(-len(values) // 12))
    for i, v in enumerate(values):
        x0 = int(left + 2 + i * slot + 0.15 * slot)
        x1 = max(x0 + 1, int(left + 2 + (i + 1) * slot - 0.15 * slot))
        if i % every == 0 and i < len(labels):
            draw_text(img, labels[i], (x0 + x1) // 2, bottom + 5, rgb=TEXT, anchor="center")
        if v is None:
            continue
        height = int(round((bottom - top) * max(v - baseline, 0) / span)) if span > 0 else 0
        img[bottom - height:bottom, x0:x1] = BAR
        if len(values) <= 12 and height > 0:
            draw_text(img, _fmt(v), (x0 + x1) // 2, max(bottom - height - 10, top), rgb=TEXT, anchor="center")
    return img


def hot_map(profile: Profile, size=CHART_SIZE) -> np.ndarray:
    """(h, w, 3) uint8: the listed sites over the (downsampled) raw frame, with a title and a legend."""
    model = profile.model
    h, w = model.raw_shape
    H, W = size
    area_h, area_w = H - MARGIN_TOP - 22, W - 16
    scale = max(1, -(-w // area_w), -(-h // area_h))
    mh, mw = -(-h // scale), -(-w // scale)
    img = _canvas(size, f"Where the {model.n_hot} hot pixels are")
    frame = np.zeros((mh, mw, 3), np.uint8)
    frame[:] = (25, 25, 30)
    t, l, b, r = model.active_area
    frame[t // scale:-(-b // scale), l // scale:-(-r // scale)] = (40, 40, 48)
    if model.n_hot:
        ys, xs = model.hot_yx[:, 0] // scale, model.hot_yx[:, 1] // scale
        counts = np.zeros((mh, mw), np.float32)
        np.add.at(counts, (ys, xs), 1)
        lit = counts > 0
        level = np.clip(0.45 + 0.55 * np.log1p(counts) / np.log1p(max(counts.max(), 1)), 0, 1)
        frame[lit] = (np.array(HOT_RGB)[None, :] * level[lit][:, None]).astype(np.uint8)
        for flag, rgb in ((FLAG_COLD, COLD_RGB), (FLAG_UNSTABLE, UNSTABLE_RGB), (FLAG_SATURATED, SATURATED_RGB)):
            sel = model.flagged(flag)
            frame[ys[sel], xs[sel]] = rgb
    y0, x0 = MARGIN_TOP, (W - mw) // 2
    img[y0:y0 + mh, x0:x0 + mw] = frame
    legend = [("hot", (120, 120, 120)), ("flickers (RTS)", UNSTABLE_RGB), ("saturated", SATURATED_RGB),
              ("cold", COLD_RGB)]
    x = 10
    for label, rgb in legend:
        img[H - 14:H - 7, x:x + 7] = rgb
        draw_text(img, label, x + 10, H - 14, rgb=TEXT)
        x += 10 + text_width(label) + 18
    draw_text(img, f"1 px = {scale}x{scale} sites", W - 8, H - 14, rgb=TEXT, anchor="right")
    return img


def excess_histogram(profile: Profile, size=CHART_SIZE) -> np.ndarray:
    ex = np.abs(profile.model.hot_excess_dn)
    edges = 2.0 ** np.arange(0, 17)
    counts, _ = np.histogram(np.clip(ex, 1, edges[-1] - 1), bins=edges)
    ticks = [_fmt(e) if i % 4 == 0 else "" for i, e in enumerate(edges[:-1])]
    return bar_chart([float(c) for c in counts], size, title="How hot: pixels by excess",
                     x_label="excess above the dark floor (DN, log scale)", y_label="pixels", x_ticks=ticks)


def write_pictures(profile: Profile, folder: str | os.PathLike) -> dict[str, str]:
    """Write the four PNGs into ``folder``; ``{name: absolute path}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stats = profile.meta.get("frames") or []
    temps = [s.get("temperature_c") for s in stats]
    known = [t for t in temps if t is not None]
    pictures = {
        "hot_per_frame": bar_chart([float(s.get("hot_count") or 0) for s in stats], title="Hot pixels per dark frame",
                                   x_label="dark frame", y_label="pixels"),
        "temperature_per_frame": bar_chart(temps, baseline=(min(known) - 2.0) if known else 0.0,
                                           title="Sensor temperature per frame", x_label="dark frame",
                                           y_label="°C"),
        "hot_map": hot_map(profile),
        "excess_histogram": excess_histogram(profile),
    }
    out = {}
    for name, img in pictures.items():
        path = folder / f"{name}.png"
        atomic_write(path, imagecodecs.png_encode(np.ascontiguousarray(img)))
        out[name] = str(path.resolve())
    return out
