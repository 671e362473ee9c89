"""Build the frozen worker: ``./run.sh build`` (runs this with the venv's Python).

PyInstaller (``build/hotpixels-worker.spec``, onedir) builds into ``build/dist``; the result then
replaces ``hotpixel.lrdevplugin/bin/<os>-<arch>/hotpixels-worker/``, and its ``--self-test`` (model,
codecs, exiftool) must pass. Prints the build time and the bundle's size.

    python build/build_worker.py [--skip-self-test] [--keep-work]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "worker"))

from hotpixels.rpc.bundle import WORKER_NAME, folder_size_mb, frozen_worker_path, platform_tag  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-self-test", action="store_true", help="do not run the built worker's --self-test")
    parser.add_argument("--keep-work", action="store_true", help="keep build/work (faster rebuilds)")
    args = parser.parse_args(argv)

    work, dist = ROOT / "build" / "work", ROOT / "build" / "dist"
    started = time.monotonic()
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--workpath", str(work), "--distpath", str(dist), str(ROOT / "build" / "hotpixels-worker.spec")]
    print("build: " + " ".join(cmd), file=sys.stderr)
    rc = subprocess.call(cmd, cwd=ROOT)
    if rc != 0:
        print(f"build: PyInstaller failed (exit {rc})", file=sys.stderr)
        return rc
    built = dist / WORKER_NAME
    target = frozen_worker_path(ROOT).parent
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    shutil.move(str(built), str(target))
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(f"build: {target} ({platform_tag()}), {folder_size_mb(target):.0f} MB, {elapsed:.0f} s", file=sys.stderr)
    if args.skip_self_test:
        return 0
    exe = frozen_worker_path(ROOT)
    return subprocess.call([str(exe), "--self-test"])


if __name__ == "__main__":
    sys.exit(main())
