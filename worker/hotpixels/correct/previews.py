"""Before/after PNG crops of the regions with the most corrections (for the summary dialog).

Regions: the ActiveArea is cut into ``size`` x ``size`` cells (raw pixels, 256 by default), the
changed sites are counted per cell, and the ``n`` cells with the most changes are shown.

Rendering, deliberately simple (a preview, not a raw converter): black level subtracted, then a
block demosaic — each ``b`` x ``b`` block (2 for Bayer, 3 for X-Trans, whose 3x3 blocks hold all
three colours) becomes one RGB pixel, the mean of its sites of each colour — then the file's
white balance (AsShotNeutral: multipliers ``1 / neutral`` normalised to green; without it a
grey-world balance of the *before* crop), one exposure for both images (the *after* crop's 99.5th
percentile of the brightest channel maps to white, so surviving defects stand out in *before*),
a display gamma of 1/2.2, and nearest-neighbour enlargement back to ``size`` x ``size`` so a
defect covers b x b screen pixels. PNGs are written with ``imagecodecs.png_encode``, atomically,
as ``<output stem>.preview<k>_before.png`` and ``..._after.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np

from ..dng.rawimage import RawImage
from ..fileio import atomic_write

DISPLAY_GAMMA = 1 / 2.2
WHITE_PERCENTILE = 99.5


def worst_regions(raw: RawImage, changed_yx: np.ndarray, n: int = 3, size: int = 256) -> list[tuple[int, int, int, int, int]]:
    """Up to ``n`` boxes ``(top, left, bottom, right, n_changes)`` with the most changed sites."""
    t, l, b, r = raw.active_area
    yx = np.asarray(changed_yx, dtype=np.int64).reshape(-1, 2)
    if len(yx) == 0 or b - t < 2 or r - l < 2:
        return []
    size = int(min(size, b - t, r - l))
    gy, gx = -(-(b - t) // size), -(-(r - l) // size)
    cy = np.clip((yx[:, 0] - t) // size, 0, gy - 1)
    cx = np.clip((yx[:, 1] - l) // size, 0, gx - 1)
    counts = np.bincount(cy * gx + cx, minlength=gy * gx)
    boxes = []
    for cell in np.argsort(counts)[::-1][:n]:
        if counts[cell] == 0:
            break
        top = min(t + (cell // gx) * size, b - size)
        left = min(l + (cell % gx) * size, r - size)
        boxes.append((int(top), int(left), int(top + size), int(left + size), int(counts[cell])))
    return boxes


def render_crop(raw: RawImage, cfa_dn: np.ndarray, box, wb: np.ndarray, white: float | None = None) -> tuple[np.ndarray, float]:
    """(uint8 (h, w, 3) display image, the linear white used) of one crop."""
    top, left, bottom, right = box[:4]
    block = 2 if raw.cfa.is_bayer else (3 if raw.cfa.is_xtrans else max(raw.cfa.repeat))
    # align the crop to the CFA block grid anchored at the ActiveArea corner
    oy, ox = raw.cfa.origin_yx
    top += (oy - top) % block
    left += (ox - left) % block
    h = (bottom - top) // block * block
    w = (right - left) // block * block
    ys, xs = np.mgrid[top:top + h, left:left + w]
    values = cfa_dn[top:top + h, left:left + w].astype(np.float64) - raw.black_level_at(ys, xs)
    colours = raw.cfa.color_at(ys, xs)
    rgb = np.zeros((h // block, w // block, 3))
    for c in range(3):
        mask = colours == c
        total = (values * mask).reshape(h // block, block, w // block, block).sum(axis=(1, 3))
        count = mask.reshape(h // block, block, w // block, block).sum(axis=(1, 3))
        rgb[..., c] = total / np.maximum(count, 1)
    rgb = np.maximum(rgb, 0.0) * wb[None, None, :]
    if white is None:
        white = float(np.percentile(rgb.max(axis=2), WHITE_PERCENTILE)) or 1.0
    img = np.clip(rgb / white, 0.0, 1.0) ** DISPLAY_GAMMA
    img = np.repeat(np.repeat(img, block, axis=0), block, axis=1)
    return np.rint(img * 255).astype(np.uint8), white


def white_balance(raw: RawImage, box) -> np.ndarray:
    """RGB multipliers from AsShotNeutral, or grey-world over the crop."""
    neutral = raw.as_shot_neutral
    if neutral is not None and len(neutral) >= 3 and all(v and v > 0 for v in neutral[:3]):
        mult = 1.0 / np.asarray(neutral[:3], dtype=np.float64)
        return mult / mult[1]
    top, left, bottom, right = box[:4]
    ys, xs = np.mgrid[top:bottom, left:right]
    values = raw.cfa_dn[top:bottom, left:right].astype(np.float64) - raw.black_level_at(ys, xs)
    colours = raw.cfa.color_at(ys, xs)
    means = np.array([max(float(np.mean(values[colours == c])), 1e-6) if np.any(colours == c) else 1.0 for c in range(3)])
    return means[1] / means


def render_previews(raw: RawImage, new_cfa_dn: np.ndarray, changed_yx: np.ndarray, *, n: int = 3,
                    size: int = 256) -> list[dict[str, Any]]:
    """Before/after PNG crops of the worst regions, in memory:
    ``[{"png": {"before": bytes, "after": bytes}, "box", "n_changes"}]`` (written by :func:`save_previews`)."""
    previews = []
    for box in worst_regions(raw, changed_yx, n, size):
        wb = white_balance(raw, box)
        after, white = render_crop(raw, new_cfa_dn, box, wb)
        before, _ = render_crop(raw, raw.cfa_dn, box, wb, white)
        previews.append({"png": {"before": imagecodecs.png_encode(before), "after": imagecodecs.png_encode(after)},
                         "box": list(box[:4]), "n_changes": box[4]})
    return previews


def preview_path(output_dng, k: int, label: str) -> Path:
    out = Path(output_dng)
    return out.with_name(f"{out.stem}.preview{k}_{label}.png")


def save_previews(rendered: list[dict[str, Any]], output_dng, written: list[Path] | None = None) -> list[dict[str, Any]]:
    """Write :func:`render_previews`' crops named after ``output_dng``; returns
    ``[{before, after, box, n_changes}]``; every file written is appended to ``written``."""
    previews = []
    for k, item in enumerate(rendered, start=1):
        paths = {}
        for label in ("before", "after"):
            path = preview_path(output_dng, k, label)
            atomic_write(path, item["png"][label])
            if written is not None:
                written.append(path)
            paths[label] = str(path)
        previews.append({**paths, "box": item["box"], "n_changes": item["n_changes"]})
    return previews


def write_previews(raw: RawImage, new_cfa_dn: np.ndarray, changed_yx: np.ndarray, output_dng, *, n: int = 3,
                   size: int = 256) -> list[dict[str, Any]]:
    """Write before/after PNGs of the worst regions; returns ``[{before, after, box, n_changes}]``."""
    return save_previews(render_previews(raw, new_cfa_dn, changed_yx, n=n, size=size), output_dng)
