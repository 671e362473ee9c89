"""Night scenes in photo-electrons per second, mosaicked through the body's CFA.

A :class:`Scene` is fixed for a session (sky, foreground, star catalogue); each light frame renders
it with a star shift (tripod drift) via :func:`render_scene_e_s`. Every component has a colour
response (R, G, B) applied per CFA site, so stars have colours and narrowband scenes put their
stars on red sites only.

Kinds (``kind``):
* ``"stars"`` — sky gradient with light pollution near the horizon, stars (sigma 0.5-1.5 px);
* ``"foreground"`` — the same plus a textured mountain/tree silhouette in the lower part,
  which hides the stars behind it (sharp edges, rock/grass texture);
* ``"narrowband"`` — an Hα-filtered sky: stars and nebulosity respond on red sites only;
* ``"noaa"`` — a body without an anti-aliasing filter: very sharp stars (sigma 0.3-0.6 px)
  plus the foreground;
* ``"real"`` — real scene content from a sample DNG (``scene_from=path``) resampled per colour
  to the active area and mosaicked into this body's CFA, plus stars.
Stars get a power-law flux distribution; the brightest saturate in long exposures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FileNotFound, InvalidOption
from .psf import render_stamps
from .sensor import SensorModel, rng_for

SCENE_KINDS = ("stars", "foreground", "narrowband", "noaa", "real", "dark")


@dataclass(eq=False)
class Scene:
    """One session's scene, in the ActiveArea frame (``_active`` coordinates)."""

    kind: str
    sky_e_s: float  # sky background rate at the zenith (top of the frame), e-/s per site
    sky_rgb: np.ndarray  # (3,) colour response of the sky
    glow_e_s: float  # extra light-pollution rate at the horizon (bottom), e-/s
    glow_rgb: np.ndarray  # (3,)
    star_yx_active: np.ndarray  # (S, 2) float64 sub-pixel centres at frame 0, ActiveArea frame
    star_flux_e_s: np.ndarray  # (S,) total flux, e-/s (before colour response)
    star_rgb: np.ndarray  # (S, 3)
    star_sigma_px: np.ndarray  # (S,)
    foreground_e_s: np.ndarray | None = None  # (h, w) float32 rate per site (colour response applied)
    foreground_mask: np.ndarray | None = None  # (h, w) bool: sky hidden (stars too)
    real_e_s: np.ndarray | None = None  # (h, w, 3) float32 real content per colour (R, G, B), e-/s
    extra: dict = field(default_factory=dict)


def make_scene(sensor: SensorModel, kind: str = "stars", seed: int = 1, *, scene_from: str | Path | None = None,
               star_density_per_mpx: float | None = None, sigma_range_px: tuple[float, float] | None = None) -> Scene:
    """A seeded scene for ``sensor`` (see the module docstring for ``kind``)."""
    if kind not in SCENE_KINDS:
        raise InvalidOption(f"unknown scene {kind!r}; choose one of {', '.join(SCENE_KINDS)}")
    rng = rng_for(seed, "scene", kind)
    h, w = sensor.active_shape
    density = sensor.star_density_per_mpx if star_density_per_mpx is None else star_density_per_mpx
    n_stars = int(rng.poisson(density * h * w / 1e6)) if kind != "dark" else 0
    # stars may sit a little outside the frame so drift brings new ones in
    yx = np.stack([rng.uniform(-4, h + 4, n_stars), rng.uniform(-4, w + 4, n_stars)], axis=1)
    # flux: N(>F) ~ F^-0.7 between 3 and 20000 e-/s
    u = rng.random(n_stars)
    lo, hi, a = 3.0, 20000.0, 0.7
    flux = lo * (1.0 - u * (1.0 - (hi / lo) ** -a)) ** (-1.0 / a)
    if sigma_range_px is None:
        sigma_range_px = (0.3, 0.6) if kind == "noaa" else (0.5, 1.5)
    sigma = rng.uniform(*sigma_range_px, n_stars)
    # colour: temperature-like tint from blue-white to orange
    tint = rng.uniform(-1.0, 1.0, n_stars)
    rgb = np.stack([1.0 + 0.45 * tint, np.full(n_stars, 1.0), 1.0 - 0.45 * tint], axis=1) * np.array([0.55, 1.0, 0.45])
    sky_rgb = np.array([0.6, 1.0, 0.55])
    glow_rgb = np.array([1.0, 0.8, 0.35])
    sky, glow = float(rng.uniform(1.5, 5.0)), float(rng.uniform(3.0, 12.0))
    if kind == "narrowband":
        rgb = np.tile(np.array([[1.0, 0.0, 0.0]]), (n_stars, 1))
        sky_rgb = np.array([1.0, 0.0, 0.0])
        glow_rgb = np.array([0.3, 0.0, 0.0])
        sky, glow = sky * 0.5, glow * 0.2
    scene = Scene(kind=kind, sky_e_s=sky, sky_rgb=sky_rgb, glow_e_s=glow, glow_rgb=glow_rgb,
                  star_yx_active=yx, star_flux_e_s=flux, star_rgb=rgb, star_sigma_px=sigma)
    if kind == "dark":
        scene.sky_e_s = scene.glow_e_s = 0.0
    colours = _active_colours(sensor)
    if kind in ("foreground", "noaa"):
        level, rgb, scene.foreground_mask = _foreground(rng, h, w)
        level *= rgb[colours]
        scene.foreground_e_s = level
    if kind == "real":
        scene.real_e_s = _real_content(scene_from, h, w)
    return scene


def _interp_matrix(n_out: int, n_grid: int) -> np.ndarray:
    """(n_out, n_grid) float32 linear-interpolation weights from a coarse grid to n_out samples."""
    f = np.linspace(0, n_grid - 1.001, n_out)
    i = f.astype(np.int64)
    t = (f - i).astype(np.float32)
    m = np.zeros((n_out, n_grid), np.float32)
    m[np.arange(n_out), i] = 1 - t
    m[np.arange(n_out), i + 1] = t
    return m


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """(h, w) float32 value noise: a (cells x cells*w/h) random grid, bilinearly upsampled
    (separable: two small matrix products instead of per-pixel gathers)."""
    gh, gw = cells + 2, max(2, int(cells * w / max(h, 1))) + 2
    grid = rng.standard_normal((gh, gw), dtype=np.float32)
    return (_interp_matrix(h, gh) @ (grid @ _interp_matrix(w, gw).T)).astype(np.float32)


def _foreground(rng: np.random.Generator, h: int, w: int):
    """A mountain ridge with trees in the lower ~35 %: (h, w) rate, (3,) colour, (h, w) mask."""
    x = np.arange(w, dtype=np.float64)
    ridge = h * rng.uniform(0.6, 0.72) + np.zeros(w)
    for k in range(1, 6):
        ridge += h * 0.05 / k * np.sin(2 * np.pi * k * x / w * rng.uniform(0.5, 1.5) + rng.uniform(0, 2 * np.pi))
    ridge += np.cumsum(rng.standard_normal(w)) * h * 0.002
    # trees: narrow triangular spikes standing on the ridge
    n_trees = max(3, w // 60)
    tx = rng.uniform(0, w, n_trees)
    th = rng.uniform(0.03, 0.12, n_trees) * h
    tw = rng.uniform(3, 12, n_trees)
    spikes = np.max(th[None, :] * np.clip(1 - np.abs(x[:, None] - tx[None, :]) / tw[None, :], 0, None), axis=1)
    top = ridge - spikes
    ys = np.arange(h, dtype=np.float32)[:, None]
    mask = ys >= top[None, :].astype(np.float32)
    texture = 0.6 * _smooth_noise(rng, h, w, 6)
    texture += 0.3 * _smooth_noise(rng, h, w, 40)
    texture += 0.25 * rng.standard_normal((h, w), dtype=np.float32)  # grass/rock grain
    # rock strata: sharp edges across the slope
    phase = _smooth_noise(rng, h, w, 4)
    phase *= np.float32(3.0)
    phase += ys * np.float32(90.0 / h)
    texture += np.float32(0.5) * (np.sin(phase) > 0.7)
    level = np.clip(texture * np.float32(0.25) + np.float32(0.35), 0.02, None)
    level *= np.float32(rng.uniform(1.0, 4.0))
    level[~mask] = 0.0
    return level, np.array([0.7, 0.8, 0.45], dtype=np.float32), mask


def _real_content(path: str | Path | None, h: int, w: int) -> np.ndarray:
    """(h, w, 3) float32 e-/s from a Bayer sample DNG, per colour, bilinearly resized."""
    if path is None:
        raise InvalidOption("scene 'real' needs scene_from=<path of a Bayer DNG>")
    path = Path(path)
    if not path.is_file():
        raise FileNotFound(f"scene source not found: {path}", path=str(path))
    raw, black, colors = _read_bayer(path)
    planes = []
    for c in (0, 1, 2):
        sel = [(py, px) for py in range(2) for px in range(2) if colors[py][px] == c]
        planes.append(np.mean([raw[py::2, px::2][: raw.shape[0] // 2, : raw.shape[1] // 2] for py, px in sel], axis=0))
    rgb = np.clip(np.stack(planes, axis=-1) - black, 0, None)
    rgb = rgb / max(float(np.percentile(rgb, 99.5)), 1.0)  # 1.0 = a bright part of the scene
    ys = np.linspace(0, rgb.shape[0] - 1, h)
    xs = np.linspace(0, rgb.shape[1] - 1, w)
    iy, ix = np.minimum(ys.astype(int), rgb.shape[0] - 2), np.minimum(xs.astype(int), rgb.shape[1] - 2)
    ty, tx = (ys - iy)[:, None, None], (xs - ix)[None, :, None]
    out = (rgb[iy][:, ix] * (1 - ty) * (1 - tx) + rgb[iy][:, ix + 1] * (1 - ty) * tx
           + rgb[iy + 1][:, ix] * ty * (1 - tx) + rgb[iy + 1][:, ix + 1] * ty * tx)
    return (out * 40.0).astype(np.float32)  # a moonlit landscape: up to ~40 e-/s


def _read_bayer(path: Path):
    """(raw active-area array, black DN, 2x2 colour table) of a Bayer DNG via rawpy or tifffile."""
    try:
        import rawpy  # optional: test-time reference decoder, never required

        with rawpy.imread(str(path)) as r:
            raw = r.raw_image_visible.astype(np.float32)
            colors = r.raw_colors_visible[:2, :2].copy()
            colors[colors == 3] = 1
            black = float(np.mean(r.black_level_per_channel))
        return raw, black, colors.tolist()
    except ImportError:
        pass
    import tifffile

    with tifffile.TiffFile(str(path)) as tf:
        for page in [tf.pages[0], *(tf.pages[0].pages or [])]:
            if page.photometric == 32803:
                raw = page.asarray().astype(np.float32)
                tags = page.tags
                aa = tags.get("ActiveArea") or tags.get(50829)
                if aa is not None:
                    t, l, b, r = aa.value
                    raw = raw[t:b, l:r]
                bl = tags.get("BlackLevel") or tags.get(50714)
                black = float(np.mean(bl.value)) if bl is not None else 0.0
                pat = tags.get("CFAPattern") or tags.get(33422)
                pv = list(pat.value) if pat is not None else [0, 1, 1, 2]
                return raw, black, [[pv[0], pv[1]], [pv[2], pv[3]]]
    raise InvalidOption(f"scene source is not a Bayer CFA DNG: {path}")


def _active_colours(sensor: SensorModel) -> np.ndarray:
    """(h, w) uint8 colour of every ActiveArea site (CFA anchored at the ActiveArea corner)."""
    t, l, b, r = sensor.active_area
    return sensor.cfa.with_origin((0, 0)).color_map((b - t, r - l))


def render_scene_e_s(sensor: SensorModel, scene: Scene, shift_yx: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(H, W) float32 photo-electron rate of every full-frame site; 0 in the masked border.

    Stars move by ``shift_yx`` (pixels, tripod drift); sky, foreground and real content do not.
    """
    h, w = sensor.active_shape
    t, l = sensor.active_area[:2]
    colors = _active_colours(sensor)
    out = np.zeros(sensor.shape, dtype=np.float32)
    act = out[t:t + h, l:l + w]
    if scene.sky_e_s or scene.glow_e_s:
        yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
        xx = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
        sky_rate = scene.sky_e_s * (1.0 + 0.3 * yy + 0.1 * xx)
        glow_rate = scene.glow_e_s * np.exp((yy - 1.0) / 0.25) * (1.0 + 0.3 * xx)
        act += sky_rate * scene.sky_rgb.astype(np.float32)[colors]
        act += glow_rate * scene.glow_rgb.astype(np.float32)[colors]
    if len(scene.star_flux_e_s):
        yx = scene.star_yx_active + np.asarray(shift_yx, dtype=np.float64)[None, :]
        act += render_stamps((h, w), yx, scene.star_sigma_px, scene.star_flux_e_s[:, None] * scene.star_rgb, colors)
    if scene.real_e_s is not None:  # per-colour content, mosaicked through this body's CFA
        act += np.take_along_axis(scene.real_e_s, colors[:, :, None].astype(np.int64), axis=2)[:, :, 0]
    if scene.foreground_mask is not None:
        np.copyto(act, scene.foreground_e_s, where=scene.foreground_mask)
    return out
