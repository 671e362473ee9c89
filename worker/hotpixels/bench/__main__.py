"""``./run.sh bench [NAME...] [--quick] [--out DIR]``: run the benchmarks and save the figures.

Each area has its own module with ``run(argv) -> dict`` that prints a table; this runner calls
them in turn (all by default), in fresh subprocesses so that one area's memory peak does not
colour the next one's, and writes every figure to ``bench-output/results.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

AREAS = ["dng_io", "profiles", "correct", "residual", "worker", "robustness", "speed", "learn"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.sh bench", description=__doc__.splitlines()[0])
    parser.add_argument("areas", nargs="*", metavar="NAME",
                        help=f"areas to run (default: all): {', '.join(AREAS)}")
    parser.add_argument("--quick", action="store_true", help="small frames: a smoke run, not the figures")
    parser.add_argument("--out", default="bench-output", help="folder for results.json and pictures")
    args, rest = parser.parse_known_args(argv)
    unknown = [a for a in args.areas if a not in AREAS]
    if unknown:
        parser.error(f"unknown area(s) {', '.join(unknown)}; choose from {', '.join(AREAS)}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    failed = []
    for area in args.areas or AREAS:
        print(f"\n=== bench {area} ===", flush=True)
        cmd = [sys.executable, "-m", "hotpixels.bench.one", area, str(out / f"{area}.json")]
        cmd += (["--quick"] if args.quick else []) + ["--out", str(out)] + rest
        t0 = time.monotonic()
        rc = subprocess.call(cmd)
        took = time.monotonic() - t0
        if rc != 0:
            failed.append(area)
            results[area] = {"error": f"exit status {rc}"}
            continue
        results[area] = json.loads((out / f"{area}.json").read_text())
        results[area]["_wall_s"] = round(took, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nfigures saved in {out / 'results.json'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
