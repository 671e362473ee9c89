"""The frozen worker's size and cold start: ``python -m hotpixels.bench.frozen [--repeats N]``.

Figures (targets from issue 16):

* **folder size** — the regular files of ``hotpixel.lrdevplugin/bin/<os>-<arch>/hotpixels-worker/``
  in MB (1e6 bytes; links counted once), as ``./run.sh build`` leaves it (target <= 200 MB);
* **cold start** — ``Popen`` of the frozen ``hotpixels-worker --stdio`` until its ``worker.hello``
  answer arrives, timed with ``time.perf_counter``, one fresh process per run, the best of N (the
  machine may be shared) and the median (target <= 1.0 s);
* **floor** — the same machine's start of a bare interpreter (``python -S -c pass``), best of N,
  measured in the same run, so the cold start can be read as a ratio on a loaded machine;
* whether torch is in the bundle (it must not be: stage 3 runs in numpy there).

The worker must have been built (``./run.sh build``); otherwise ``built`` is false and the rest is
missing. :func:`frozen_figures` is what the ``speed`` bench area includes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..rpc.bundle import folder_size_mb, frozen_worker_path

ROOT = Path(__file__).resolve().parents[3]
REPEATS = 5


def python_floor_s(repeats: int) -> list[float]:
    """Seconds to start and end a bare interpreter, one process per run."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-S", "-c", "pass"], check=True)
        out.append(time.perf_counter() - t0)
    return out


def frozen_figures(repeats: int = REPEATS, root: Path = ROOT) -> dict[str, Any]:
    """``{built, path, folder_mb, bundles_torch, cold_start_s, cold_start_median_s, cold_starts_s,
    floor_python_s, cold_start_over_floor}`` of the frozen worker under ``root`` (see the module
    docstring); ``{built: False, path, note}`` when it has not been built."""
    from .worker import cold_start_s

    exe = frozen_worker_path(root)
    if not exe.is_file():
        return {"built": False, "path": str(exe), "note": "not built: run ./run.sh build first"}
    folder = exe.parent
    env = {**os.environ, "HOTPIXELS_WORKER_PRELOAD": os.environ.get("HOTPIXELS_WORKER_PRELOAD", "1")}
    starts = cold_start_s(exe, env, repeats)
    floor = min(python_floor_s(repeats))
    best = min(starts)
    return {"built": True, "path": str(exe), "folder_mb": round(folder_size_mb(folder), 1),
            "bundles_torch": any(p.name == "torch" for p in folder.rglob("torch")),
            "cold_start_s": round(best, 3), "cold_start_median_s": round(statistics.median(starts), 3),
            "cold_starts_s": [round(s, 3) for s in starts], "floor_python_s": round(floor, 3),
            "cold_start_over_floor": round(best / floor, 1) if floor > 0 else None}


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench frozen", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help=f"cold starts (default {REPEATS})")
    parser.add_argument("--quick", action="store_true", help="2 cold starts")
    parser.add_argument("--out", default=None, help="(ignored: nothing is written besides the figures)")
    args = parser.parse_args(argv)
    figures = frozen_figures(2 if args.quick else args.repeats)
    if not figures["built"]:
        print(f"frozen worker: {figures['note']} ({figures['path']})")
        return figures
    print(f"frozen worker: {figures['folder_mb']} MB (target <= 200), torch bundled: {figures['bundles_torch']}")
    print(f"cold start to the hello answer: best {figures['cold_start_s']} s, median {figures['cold_start_median_s']} s "
          f"of {len(figures['cold_starts_s'])} (target <= 1.0 s); bare python start {figures['floor_python_s']} s "
          f"({figures['cold_start_over_floor']}x)")
    return figures


if __name__ == "__main__":
    run(sys.argv[1:])
