"""Before/after PNG crops of the strongest repairs (for the plug-in's summary and its preview).

Crops: the repaired sites are ranked by how much the correction changed them (|old - new| in DN);
the ``n`` strongest sites that do not share a crop each get a ``size`` x ``size`` crop of raw sites
(64 by default) centred on them and kept inside the ActiveArea.

Rendering, deliberately simple (a preview, not a raw converter) and true to single sites, since a
hot pixel is one site: every raw site becomes one grey pixel — black level subtracted, times its
colour's grey-world multiplier (the median of each colour in the *before* crop made equal, so the
CFA pattern does not show as a checkerboard), one exposure for both images (the *after* crop's
99.5th percentile maps to white, so surviving defects stand out in *before*), a display gamma of
1/2.2 — then nearest-neighbour enlargement by ``scale`` (4 by default: a site is a 4 x 4 block, a
48-site crop 192 px) so the eye sees single sites, and markers: a 1-px magenta square two pixels
outside each of the crop's most changed sites (at most MAX_MARKERS), drawn on both images so they
compare at a glance. PNGs are written with
``imagecodecs.png_encode``, atomically, as ``<output stem>.preview<k>_before.png`` and
``..._after.png``.
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


MARKER_RGB = (255, 0, 200)
DEFAULT_SIZE = 48  # a crop's side, in raw sites (CFA pixels)
DEFAULT_SCALE = 4  # nearest-neighbour enlargement: one raw site becomes scale x scale PNG pixels
MAX_MARKERS = 8  # per crop: the most changed sites (the dark model moves many sites a little)


def strongest_crops(raw: RawImage, new_cfa_dn: np.ndarray, changed_yx: np.ndarray, n: int = 3,
                    size: int = DEFAULT_SIZE) -> list[dict[str, Any]]:
    """Up to ``n`` crops ``{box: (top, left, bottom, right), site: (y, x), change_dn, n_changes}`` (full-frame
    raw coordinates), centred on the most changed sites, no two crops overlapping, strongest first."""
    t, l, b, r = raw.active_area
    yx = np.asarray(changed_yx, dtype=np.int64).reshape(-1, 2)
    if len(yx) == 0 or b - t < 2 or r - l < 2:
        return []
    size = int(min(size, b - t, r - l))
    change = np.abs(raw.cfa_dn[yx[:, 0], yx[:, 1]].astype(np.int64) - new_cfa_dn[yx[:, 0], yx[:, 1]].astype(np.int64))
    order = np.argsort(-change, kind="stable")
    crops: list[dict[str, Any]] = []
    for i in order:
        if len(crops) == n:
            break
        y, x = int(yx[i, 0]), int(yx[i, 1])
        top = min(max(y - size // 2, t), b - size)
        left = min(max(x - size // 2, l), r - size)
        if any(abs(top - c["box"][0]) < size and abs(left - c["box"][1]) < size for c in crops):
            continue
        inside = ((yx[:, 0] >= top) & (yx[:, 0] < top + size) & (yx[:, 1] >= left) & (yx[:, 1] < left + size))
        crops.append({"box": (top, left, top + size, left + size), "site": (y, x), "change_dn": int(change[i]),
                      "n_changes": int(inside.sum())})
    return crops


def render_sites(raw: RawImage, cfa_dn: np.ndarray, box, wb: np.ndarray, white: float | None = None
                 ) -> tuple[np.ndarray, float]:
    """(uint8 (h, w) grey image, one pixel per raw site; the linear white used) of one crop."""
    top, left, bottom, right = box[:4]
    ys, xs = np.mgrid[top:bottom, left:right]
    values = cfa_dn[top:bottom, left:right].astype(np.float64) - raw.black_level_at(ys, xs)
    colours = raw.cfa.color_at(ys, xs)
    lin = np.maximum(values, 0.0) * wb[np.clip(colours, 0, 2)]
    if white is None:
        white = float(np.percentile(lin, WHITE_PERCENTILE)) or 1.0
    img = np.clip(lin / white, 0.0, 1.0) ** DISPLAY_GAMMA
    return np.rint(img * 255).astype(np.uint8), white


def enlarge_with_markers(grey: np.ndarray, sites_yx: np.ndarray, scale: int = DEFAULT_SCALE) -> np.ndarray:
    """(h*scale, w*scale, 3) uint8: ``grey`` enlarged by nearest neighbour, with a 1-px magenta square drawn
    two pixels outside each site of ``sites_yx`` (crop coordinates)."""
    big = np.repeat(np.repeat(grey, scale, axis=0), scale, axis=1)
    rgb = np.repeat(big[:, :, None], 3, axis=2)
    h, w = rgb.shape[:2]
    sites = np.asarray(sites_yx, dtype=np.int64).reshape(-1, 2)
    if len(sites) == 0:
        return rgb
    gap = 2  # the square runs `gap` pixels outside the site's block, so the site itself stays visible
    y0, x0 = sites[:, 0] * scale - gap, sites[:, 1] * scale - gap
    side = scale + 2 * gap  # pixels from one edge of the square to the other
    y1, x1 = y0 + side - 1, x0 + side - 1
    span = np.arange(side)
    along_x = (x0[:, None] + span[None, :]).ravel()
    along_y = (y0[:, None] + span[None, :]).ravel()
    ys = np.concatenate([np.repeat(y0, side), np.repeat(y1, side), along_y, along_y])
    xs = np.concatenate([along_x, along_x, np.repeat(x0, side), np.repeat(x1, side)])
    ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    rgb[ys[ok], xs[ok]] = MARKER_RGB
    return rgb


def white_balance(raw: RawImage, box) -> np.ndarray:
    """Per-colour multipliers that make each colour's median in the crop equal to green's: the sky's
    colour and the CFA pattern vanish, so single sites that differ from their neighbours stand out."""
    top, left, bottom, right = box[:4]
    ys, xs = np.mgrid[top:bottom, left:right]
    values = raw.cfa_dn[top:bottom, left:right].astype(np.float64) - raw.black_level_at(ys, xs)
    colours = raw.cfa.color_at(ys, xs)
    medians = np.array([max(float(np.median(values[colours == c])), 1e-6) if np.any(colours == c) else 1.0
                        for c in range(3)])
    return medians[1] / medians


def render_previews(raw: RawImage, new_cfa_dn: np.ndarray, changed_yx: np.ndarray, *, n: int = 3,
                    size: int = DEFAULT_SIZE, scale: int = DEFAULT_SCALE) -> list[dict[str, Any]]:
    """Before/after PNG crops of the strongest repairs, in memory, strongest first:
    ``[{"png": {"before": bytes, "after": bytes}, "box", "site", "change_dn", "n_changes", "scale"}]``
    (written by :func:`save_previews`)."""
    yx = np.asarray(changed_yx, dtype=np.int64).reshape(-1, 2)
    previews = []
    for crop in strongest_crops(raw, new_cfa_dn, yx, n, size):
        box = crop["box"]
        wb = white_balance(raw, box)
        after, white = render_sites(raw, new_cfa_dn, box, wb)
        before, _ = render_sites(raw, raw.cfa_dn, box, wb, white)
        inside = yx[(yx[:, 0] >= box[0]) & (yx[:, 0] < box[2]) & (yx[:, 1] >= box[1]) & (yx[:, 1] < box[3])]
        moved = np.abs(raw.cfa_dn[inside[:, 0], inside[:, 1]].astype(np.int64)
                       - new_cfa_dn[inside[:, 0], inside[:, 1]].astype(np.int64))
        local = inside[np.argsort(-moved, kind="stable")[:MAX_MARKERS]] - np.array([box[0], box[1]])
        previews.append({"png": {label: imagecodecs.png_encode(enlarge_with_markers(img, local, scale))
                                 for label, img in (("before", before), ("after", after))},
                         "box": list(box), "site": list(crop["site"]), "change_dn": crop["change_dn"],
                         "n_changes": crop["n_changes"], "scale": scale})
    return previews


def preview_path(output_dng, k: int, label: str) -> Path:
    out = Path(output_dng)
    return out.with_name(f"{out.stem}.preview{k}_{label}.png")


def save_previews(rendered: list[dict[str, Any]], output_dng, written: list[Path] | None = None) -> list[dict[str, Any]]:
    """Write :func:`render_previews`' crops named after ``output_dng``; returns
    ``[{before, after, box, site, change_dn, n_changes, scale}]``; every file written is appended to
    ``written``."""
    previews = []
    for k, item in enumerate(rendered, start=1):
        paths = {}
        for label in ("before", "after"):
            path = preview_path(output_dng, k, label)
            atomic_write(path, item["png"][label])
            if written is not None:
                written.append(path)
            paths[label] = str(path)
        previews.append({**paths, **{k: v for k, v in item.items() if k != "png"}})
    return previews


def write_previews(raw: RawImage, new_cfa_dn: np.ndarray, changed_yx: np.ndarray, output_dng, *, n: int = 3,
                   size: int = DEFAULT_SIZE, scale: int = DEFAULT_SCALE) -> list[dict[str, Any]]:
    """Write before/after PNGs of the strongest repairs; returns
    ``[{before, after, box, site, change_dn, n_changes, scale}]``, strongest first."""
    return save_previews(render_previews(raw, new_cfa_dn, changed_yx, n=n, size=size, scale=scale), output_dng)
