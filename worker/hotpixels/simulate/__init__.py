"""A seeded, physically motivated sensor simulator: dark frames, night-sky light frames, truth.

Everything is computed in electrons, then divided by the gain (e-/DN at the ISO), offset by the
black level of each CFA phase, rounded and clipped at the white level. Coordinates are (y, x) in
the full raw frame (masked border included); the CFA is anchored at the ActiveArea's top-left.

In-memory API (no disk)::

    from hotpixels.simulate import make_sensor, simulate_session
    sensor = make_sensor("small", seed=1, cfa=None)      # presets: small, small-gbrg, small-xtrans, 24mp
    s = simulate_session("small", seed=1, n_darks=8, n_lights=1, temp_dark_c=20, temp_light_c=20,
                         exposure_s=30, iso=1600, scene="foreground", batch="single")
    s.darks, s.lights        # lists of hotpixels.dng.rawimage.RawImage (cfa_dn uint16, metadata …)
    s.truth                  # dict: see below
    s.write(outdir, layout="strip")   # darks/*.dng, lights/*.dng, truth.json, truth.npz

``scene``: "stars", "foreground", "narrowband" (Hα: stars on red sites only), "noaa" (no
anti-aliasing filter: sigma 0.3-0.6 px, with foreground), "real" (``scene_from=path`` of a Bayer
DNG), "dark". ``batch``: "single", "tripod" (stars drift 2-4 px per frame), "tracked".
Pass ``sensor=`` to reuse a body (same dark field, serial, doubling) across sessions.

Fast array path for training data (small frames, thousands of calls)::

    from hotpixels.simulate import make_sensor, make_scene, render_light, render_dark, rng_for
    sensor = make_sensor("small", seed=3, height=96, width=128)   # keeps the preset's border
    scene = make_scene(sensor, "stars", seed=3)
    f = render_light(sensor, scene, rng_for(3, "light", 0), exposure_s=60, temp_c=25, iso=1600)
    f.cfa_dn, f.clean_dn, f.expected_dn, f.residual_yx, f.residual_dn   # arrays (DN)

Truth (``session.truth``; arrays go to ``truth.npz``, the rest to ``truth.json``):

* camera: ``gain_e_per_dn``, ``read_noise_e``, ``read_noise_dn``, ``doubling_c``, ``ref_temp_c``,
  ``cfa``, ``active_area``, ``black_repeat_dn``, ``white_level_dn``, ``serial`` …;
* temperatures: ``temp_{dark,light}_{true,offset,recorded}_c`` (recorded = what the DNG says),
  ``dark_factor``/``light_factor`` (dark-current factor vs ``ref_temp_c``);
* hot population: ``hot_yx`` (K, 2), ``hot_rate_e_s`` (K,) at ``ref_temp_c``, ``hot_rts`` (K,) bool,
  ``hot_dark_dn``/``hot_light_dn`` (frames, K) expected dark signal above black in DN,
  ``hot_saturated_dark``/``hot_saturated_light``; ``rts_yx``, ``rts_high_dark``/``rts_high_light``;
  ``stuck_yx``, ``stuck_dn``;
* residual (light-only) hot pixels: ``residual_frame``, ``residual_yx``, ``residual_dn``;
* stars: ``star_yx`` (M, S, 2) sub-pixel full frame per light, ``star_sigma_px``, ``star_flux_e_s``,
  ``star_peak_dn`` (M, S), ``star_visible``, ``star_saturated``;
* frames: ``clean_light_dn`` (M, H, W) uint16 — the same scene and noise without dark signal or
  defects, so ``light - clean`` is the dark signal plus defects; ``expected_light_dn`` noiseless.

The full per-pixel dark-current field is ``session.field.rate_e_s`` (e-/s at ``ref_temp_c``).
The recorded sensor temperature is written as a Pentax maker-note CameraTemperature (see
:mod:`hotpixels.dng.create`); exiftool reads it as ``Pentax:CameraTemperature`` (group 1; group 0 ``MakerNotes``).
"""

from .defects import DarkField, expected_hot_count, hot_count, make_dark_field
from .render import Frame, render_dark, render_frame, render_light
from .scene import SCENE_KINDS, Scene, make_scene, render_scene_e_s
from .sensor import PRESETS, SensorModel, make_sensor, rng_for
from .session import BATCHES, Session, load_truth, simulate_session

__all__ = [
    "BATCHES", "PRESETS", "SCENE_KINDS", "DarkField", "Frame", "Scene", "SensorModel", "Session",
    "expected_hot_count", "hot_count", "load_truth", "make_dark_field", "make_scene", "make_sensor",
    "render_dark", "render_frame", "render_light", "render_scene_e_s", "rng_for", "simulate_session",
]
