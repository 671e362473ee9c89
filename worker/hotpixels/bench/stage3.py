"""Stage 3 alone on one photo, numpy against torch: ``python -m hotpixels.bench.stage3 PHOTO.dng``.

Each backend runs in a fresh process (``HOTPIXELS_DEVICE=cpu`` is numpy; the torch run loads
the same weights with torch on the CPU), which times :func:`hotpixels.correct.residual.detect_residual`
with ``time.perf_counter``: the **first call** (it includes loading the model, and for torch its
import) and the best of the **warm** calls after it, with the split (noise model, candidates,
features, network). The logits of both backends on that photo are compared (max abs difference).
The CPU time of the process (all threads, ``time.process_time``) is given beside the wall time:
it moves far less with the machine's load. A **floor** measured in the same process (one float32 conversion of the frame plus one add) tells
how loaded the machine was: the figures are worth comparing as ratios to it.

The photo should be a dense star field (``hotpixels simulate OUT --preset 24mp``: about 58,000
candidates); the issue's target is stage 3 alone <= 1.0 s on the first call.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WARM_CALLS = 3

_CHILD = r"""
import json, sys, time
import numpy as np
backend, path, out, warm = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
from hotpixels.dng.reader import read_dng
raw = read_dng(path)
t0, c0 = time.perf_counter(), time.process_time()
from hotpixels.correct.residual import detect_residual
from hotpixels.model.load import load_detector, model_path
kw = dict(active_area=raw.active_area, white_level_dn=raw.white_level_dn, black_level_dn=raw.black_repeat_dn)
if backend == "torch":
    from hotpixels.model.load import _load_torch
    det = _load_torch(model_path(), "cpu")
else:
    det = load_detector(model_path())
first = detect_residual(raw.cfa_dn, raw.cfa, detector=det, **kw)
first_s, first_cpu = time.perf_counter() - t0, time.process_time() - c0
warm_s, warm_cpu, split = [], [], None
for _ in range(warm):
    t, c = time.perf_counter(), time.process_time()
    r = detect_residual(raw.cfa_dn, raw.cfa, detector=det, **kw)
    warm_s.append(time.perf_counter() - t)
    warm_cpu.append(time.process_time() - c)
    split = split if split is not None and sum(split.values()) <= sum(r["seconds"].values()) else r["seconds"]
floors = []
for _ in range(3):
    t = time.perf_counter(); f = raw.cfa_dn.astype(np.float32); f += f; floors.append(time.perf_counter() - t)
np.save(out, first["all_scores"].astype(np.float32))
print(json.dumps({"backend": det.backend, "first_call_s": first_s, "warm_s": min(warm_s), "split_s": split,
                  "first_call_cpu_s": first_cpu, "warm_cpu_s": min(warm_cpu),
                  "candidates": first["candidates"], "detections": int(len(first["sites"])),
                  "floor_s": min(floors), "torch_imported": "torch" in sys.modules}))
"""


def run_backend(backend: str, photo: str, workdir: Path, warm: int = WARM_CALLS) -> dict[str, Any]:
    out = workdir / f"logits-{backend}.npy"
    env = {**os.environ, "HOTPIXELS_DEVICE": "cpu"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, backend, photo, str(out), str(warm)], env=env,
                          capture_output=True, text=True, check=True)
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    figures["logits_file"] = str(out)
    return figures


def stage3_figures(photo: str, warm: int = WARM_CALLS) -> dict[str, Any]:
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        res = {b: run_backend(b, photo, Path(tmp), warm) for b in ("numpy", "torch")}
        diff = float(np.abs(np.load(res["numpy"].pop("logits_file")) - np.load(res["torch"].pop("logits_file"))).max())
    return {"photo": photo, "numpy": res["numpy"], "torch": res["torch"], "logits_max_abs_diff": diff}


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench stage3", description=__doc__.splitlines()[0])
    parser.add_argument("photo", help="a DNG (e.g. from hotpixels simulate OUT --preset 24mp)")
    parser.add_argument("--warm", type=int, default=WARM_CALLS, help="warm calls after the first (best is kept)")
    args, _ = parser.parse_known_args(argv)
    fig = stage3_figures(args.photo, args.warm)
    for b in ("numpy", "torch"):
        f = fig[b]
        split = ", ".join(f"{k} {v:.3f}" for k, v in f["split_s"].items())
        print(f"{b:5s}: first call {f['first_call_s']:.3f} s, warm {f['warm_s']:.3f} s ({split}); "
              f"{f['candidates']} candidates, {f['detections']} detections; floor {f['floor_s']:.3f} s "
              f"(first call {f['first_call_s'] / f['floor_s']:.1f}x, warm {f['warm_s'] / f['floor_s']:.1f}x); "
              f"CPU time first {f['first_call_cpu_s']:.3f} s, warm {f['warm_cpu_s']:.3f} s; "
              f"torch imported: {f['torch_imported']}")
    print(f"logits max abs difference numpy vs torch: {fig['logits_max_abs_diff']:.2e}")
    return fig


if __name__ == "__main__":
    run(sys.argv[1:])
