"""A learning set: photos of ONE body with different scenes, exposures, ISO and temperatures.

What a photographer's catalogue holds: the same camera body (same hot pixels, RTS sites, serial,
doubling temperature) used on different nights for different subjects. Each photo gets its own
scene (a kind drawn from :data:`VARIED_SCENES`, its own seed: stars and foreground at other
places), its own exposure (:data:`EXPOSURES_S`), ISO (:data:`ISOS`) and true sensor temperature
(uniform in ``temps_c``), drawn from the set's seed; frame noise, RTS states and the random
(light-only) hot pixels are drawn per photo as in any session.

The truth lists the body's defects (``hot_yx``, ``hot_rate_e_s``, ``hot_rts``, ``rts_yx``,
``rts_extra_e_s``, ``stuck_yx``), per photo the settings (``exposure_s``, ``iso``,
``temp_true_c``, ``temp_recorded_c``, ``gain_e_per_dn``, ``scene_kinds``), the expected dark signal
of each hot site (``hot_light_dn``, (M, K) DN, RTS state included), the RTS states
(``rts_high_light``, (M, R)), and the camera constants (``read_noise_e``, ``doubling_c`` …).
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DestinationUnwritable, InvalidOption
from ..progress import ProgressFn, check_cancel, report
from .sensor import make_sensor, rng_for

VARIED_SCENES = ("stars", "foreground", "narrowband", "noaa", "dark")
EXPOSURES_S = (2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0)
ISOS = (400.0, 800.0, 1600.0, 3200.0, 6400.0)


def varied_settings(seed: int, n: int, temps_c: tuple[float, float] = (0.0, 30.0)) -> list[dict[str, Any]]:
    """Per photo ``{"scene", "exposure_s", "iso", "temp_c", "scene_seed"}``, drawn from ``seed``."""
    rng = rng_for(seed, "varied-settings")
    out = []
    for i in range(n):
        out.append({"scene": str(rng.choice(VARIED_SCENES)), "exposure_s": float(rng.choice(EXPOSURES_S)),
                    "iso": float(rng.choice(ISOS)), "temp_c": float(np.round(rng.uniform(*temps_c), 1)),
                    "scene_seed": int(seed) * 1000 + i + 1})
    return out


def simulate_varied(outdir: str | os.PathLike, *, preset: str = "small", seed: int = 1, n_lights: int = 20,
                    cfa: str | None = None, layout: str = "strip", temps_c: tuple[float, float] = (0.0, 30.0),
                    settings: list[dict[str, Any]] | None = None, sensor=None,
                    capture_start: str = "2026-01-05T21:00:00", record_temperature: bool = True,
                    progress: ProgressFn | None = None, cancel=None) -> dict[str, Any]:
    """Write ``outdir/lights/light_NNNN.dng`` (one photo at a time) and the truth; returns
    ``{"lights": [paths], "truth_json", "truth_npz", "truth": dict}``. ``record_temperature=False``
    writes no temperature tag (most bodies record none; the truth keeps the true one)."""
    from .session import simulate_session, write_raw, write_truth

    if n_lights < 1:
        raise InvalidOption("a learning set needs at least one photo", data={"param": "lights"})
    sensor = make_sensor(preset, seed, cfa) if sensor is None else sensor
    settings = settings if settings is not None else varied_settings(seed, n_lights, temps_c)
    out = Path(outdir)
    try:
        (out / "lights").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DestinationUnwritable(f"cannot create the output folder {out}: {exc.strerror}", path=str(out)) from exc
    start = _dt.datetime.fromisoformat(capture_start)
    lights, per = [], {k: [] for k in ("hot_light_dn", "rts_high_light", "temp_recorded_c", "gain_e_per_dn",
                                       "capture_time", "n_stars")}
    truth: dict[str, Any] = {}
    for i, st in enumerate(settings):
        check_cancel(cancel)
        report(progress, i, len(settings), f"photo {i + 1}/{len(settings)} ({st['scene']})")
        when = (start + _dt.timedelta(days=3 * i, minutes=17 * i)).isoformat()
        s = simulate_session(sensor=sensor, seed=st["scene_seed"], n_darks=0, n_lights=1, scene=st["scene"],
                             exposure_s=st["exposure_s"], iso=st["iso"], temp_light_c=st["temp_c"], clean=False,
                             capture_start=when)
        path = out / "lights" / f"light_{i + 1:04d}.dng"
        if not record_temperature:
            s.lights[0].metadata.temperature_c = None
            s.lights[0].metadata.temperature_source = None
        write_raw(path, s.lights[0], layout)
        lights.append(str(path))
        t = s.truth
        truth = truth or {k: t[k] for k in ("preset", "make", "model", "serial", "cfa", "active_area", "raw_shape",
                                            "bits", "white_level_dn", "black_repeat_dn", "read_noise_e",
                                            "doubling_c", "ref_temp_c", "sensor", "hot_yx", "hot_rate_e_s",
                                            "hot_rts", "rts_yx", "rts_extra_e_s", "stuck_yx", "stuck_dn")}
        per["hot_light_dn"].append(t["hot_light_dn"][0])
        per["rts_high_light"].append(t["rts_high_light"][0])
        per["temp_recorded_c"].append(t["temp_light_recorded_c"][0])
        per["gain_e_per_dn"].append(t["gain_e_per_dn"])
        per["capture_time"].append(t["capture_time_light"][0])
        per["n_stars"].append(int(t["star_visible"].sum()))
        del s
    truth.update(seed=int(seed), batch="varied", scene_kinds=[st["scene"] for st in settings],
                 exposure_s=[st["exposure_s"] for st in settings], iso=[st["iso"] for st in settings],
                 temp_true_c=[st["temp_c"] for st in settings], temp_recorded_c=per["temp_recorded_c"],
                 gain_e_per_dn=per["gain_e_per_dn"], capture_time=per["capture_time"], n_stars=per["n_stars"],
                 hot_light_dn=np.stack(per["hot_light_dn"]).astype(np.float32),
                 rts_high_light=np.stack(per["rts_high_light"]))
    truth_json, truth_npz = write_truth(out, truth)
    report(progress, len(settings), len(settings), "done")
    return {"lights": lights, "darks": [], "truth_json": truth_json, "truth_npz": truth_npz, "truth": truth}
