"""Profiles: dark models built from dark frames, a profile library, and metadata auto-match.

One job per module:

* :mod:`.darkmodel` — the DarkModel contract stage 1 and 2 read (smooth field + sparse sites);
* :mod:`.checks` — do the darks agree (body, size, CFA, ISO, exposure, temperature)?
* :mod:`.frames` — header facts and per-frame statistics of the darks;
* :mod:`.stack` — master dark, temporal noise model, RTS and saturation, in row blocks;
* :mod:`.neighbours` — same-plane neighbourhoods: local background, the one σ;
* :mod:`.cells` — per-plane statistics on a coarse grid of cells, and back to full resolution;
* :mod:`.detect` — the smooth field and the significant sites of a master dark;
* :mod:`.build` — ``build_dark_model`` / ``create_profile``: all of the above, in order;
* :mod:`.profile_file` — the versioned ``.hpprofile`` file (npz, no pickle) and ``Profile``;
* :mod:`.library` — the library folder, its index, rename/delete/import/export;
* :mod:`.pictures` — summary PNGs for the plugin;
* :mod:`.match` — pick the profile for an image from its metadata;
* :mod:`.cli` — ``hotpixels profile …``.
"""
