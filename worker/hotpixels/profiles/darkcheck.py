"""Is this frame a dark frame? Refuse lights given as darks before they poison a profile.

Measured before this check: four star-field photos passed as "darks" gave a profile of 6,591 "hot
pixels" (truth 509) with no warning, and three darks plus one light gave 240,017. A frame is
refused (:class:`~hotpixels.errors.NotADarkFrame`, 2011, naming the frame and the reason) when:

* **level**: the median level above black of its same-colour neighbourhoods is far above what dark
  current can give in its exposure: more than ``DARK_E_PER_S_20C`` e-/s at 20 °C (about ten times
  a typical sensor's), doubling every ``DOUBLING_C`` °C (at ``UNKNOWN_TEMP_C`` when the temperature
  is not recorded), times the exposure, plus ``MARGIN_E`` electrons, with the frame's gain read off
  its own noise (variance = a + level x DN per electron, :func:`~hotpixels.candidates.estimate_noise`);
  a level within ``LEVEL_MIN_SIGMA`` σ of black always passes (a flat dark gives no shot-noise
  slope, so its gain, and its level in electrons, cannot be read), and so does a level without shot
  noise (no slope: an offset such as a black level the file misstates, not light, which always
  brings its shot noise);
* **scene structure**: more than ``STRUCTURE_SHARE`` of its sites have a same-colour ring whose
  maximum stands ``STRUCTURE_SIGMA`` σ over its mean (edges, stars, texture; in a dark only the
  rings of hot pixels do);
* **hot count**: more than ``HOT_SHARE`` (0.5 %) of its sites stand ``HOT_SIGMA`` σ over their ring.

The statistics are read on evenly spaced bands of rows (about 600,000 sites), so a 24 MP frame
costs a fraction of a second.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..dng.rawimage import RawImage
from ..errors import NotADarkFrame

DARK_E_PER_S_20C = 1.0
DOUBLING_C = 6.0
UNKNOWN_TEMP_C = 30.0
MARGIN_E = 25.0
LEVEL_MIN_SIGMA = 5.0
STRUCTURE_SIGMA = 6.0
STRUCTURE_SHARE = 0.05
HOT_SIGMA = 8.0  # at low ISO the read noise is under 1 DN and dark-current non-uniformity puts ~1 % of a dark 5 σ out
HOT_SHARE = 0.005
SAMPLE_SITES = 600_000


def dark_frame_facts(raw: RawImage) -> dict:
    """``{"level_dn", "level_e" (None when the gain is unknown), "noise_dn", "structure_share", "hot_share"}``."""
    from ..candidates import estimate_noise, mean_black, ring_stats

    black = mean_black(raw.black_repeat_dn)
    noise = estimate_noise(raw.cfa_dn, raw.cfa, raw.active_area, black)
    t, l, b, r = (int(v) for v in raw.active_area)
    rows = max(12, SAMPLE_SITES // max(r - l, 1))
    n_bands = max(1, min(rows // 48, max((b - t) // 48, 1)))
    starts = np.linspace(t, max(b - 48, t), n_bands).astype(int)
    starts -= (starts - t) % 6
    levels, n, hot, structured = [], 0, 0, 0
    for s in sorted(set(starts.tolist())):
        for _, centre, mean, peak in ring_stats(raw.cfa_dn, raw.cfa, (s, l, min(s + 48, b), r)):
            sd = noise.sigma_dn(mean - black)
            levels.append((mean - black).ravel())
            hot += int(((centre - mean) >= HOT_SIGMA * sd).sum())
            structured += int(((peak - mean) > STRUCTURE_SIGMA * sd).sum())
            n += centre.size
    level = float(np.median(np.concatenate(levels))) if levels else 0.0
    return {"level_dn": level, "level_e": level / noise.b_dn if noise.b_dn > 1e-6 else None,
            "noise_dn": math.sqrt(max(noise.a_dn2, noise.floor_dn2, 1e-12)),
            "structure_share": structured / max(n, 1), "hot_share": hot / max(n, 1)}


def check_dark_frame(raw: RawImage, name: str | None = None, metadata=None) -> dict:
    """The facts of :func:`dark_frame_facts`, or :class:`NotADarkFrame` naming the frame and why.

    ``metadata``: the frame's :class:`~hotpixels.dng.rawimage.CameraMetadata` when ``raw`` was read
    without exiftool (exposure and temperature are read from it)."""
    facts = dark_frame_facts(raw)
    name = name or (Path(raw.path).name if raw.path else "this frame")
    m = metadata if metadata is not None else raw.metadata
    reason = None
    if facts["level_dn"] <= LEVEL_MIN_SIGMA * facts["noise_dn"]:
        pass  # within a few σ of black: dark whatever the gain (a flat dark gives no shot-noise slope to read it)
    elif facts["level_e"] is not None and m.exposure_s:
        temp = m.temperature_c if m.temperature_c is not None else UNKNOWN_TEMP_C
        limit_e = MARGIN_E + DARK_E_PER_S_20C * float(m.exposure_s) * 2.0 ** ((temp - 20.0) / DOUBLING_C)
        if facts["level_e"] > limit_e:
            reason = (f"its level is {facts['level_e']:.0f} e- above black, far above what dark current gives in "
                      f"{m.exposure_s:g} s (at most about {limit_e:.0f} e-): it saw light")
    if reason is None and facts["structure_share"] > STRUCTURE_SHARE:
        reason = (f"{facts['structure_share']:.1%} of its sites sit in structure (edges, stars, texture); a dark "
                  f"frame has almost none (at most {STRUCTURE_SHARE:.0%})")
    if reason is None and facts["hot_share"] > HOT_SHARE:
        reason = (f"{facts['hot_share']:.2%} of its sites stand {HOT_SIGMA:g} σ over their neighbours; more than "
                  f"{HOT_SHARE:.1%} is not a dark frame's hot-pixel count")
    if reason is not None:
        raise NotADarkFrame(f"{name} is not a dark frame: {reason}. Use frames shot with the lens cap on "
                            "(--allow-mismatch does not override this)", path=raw.path,
                            data={"path": raw.path, "reason": reason})
    return facts
