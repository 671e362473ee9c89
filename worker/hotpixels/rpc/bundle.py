"""Where the frozen worker lives and what it carries (shared by the build script and tests).

``./run.sh build`` puts a PyInstaller onedir bundle in
``hotpixel.lrdevplugin/bin/<os>-<arch>/hotpixels-worker/`` (``linux-x86_64``, ``macos-arm64``,
``windows-x86_64`` …). Inside the bundle, exiftool sits in ``exiftool/`` (the Perl script and its
``lib/`` on Linux/macOS, ``exiftool.exe`` on Windows); :func:`use_bundled_exiftool` points
``HOTPIXELS_EXIFTOOL`` at it so users need none installed.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

WORKER_NAME = "hotpixels-worker"


def platform_tag() -> str:
    """``<os>-<arch>``: os in linux/macos/windows, arch x86_64 or arm64."""
    system = {"darwin": "macos", "win32": "windows"}.get(sys.platform, "linux" if sys.platform.startswith("linux") else sys.platform)
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{system}-{arch}"


def frozen_worker_path(root: Path) -> Path:
    """The frozen worker executable under the repository (or plugin) ``root``."""
    exe = WORKER_NAME + (".exe" if sys.platform == "win32" else "")
    return root / "hotpixel.lrdevplugin" / "bin" / platform_tag() / WORKER_NAME / exe


def folder_size_mb(path: Path) -> float:
    """Bytes of the regular files under ``path`` (links not followed, so not counted twice), in MB."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if not os.path.islink(os.path.join(dirpath, name)):
                total += st.st_size
    return total / 1e6


def bundle_dir() -> Path | None:
    """The PyInstaller bundle's data folder when frozen, else ``None``."""
    meipass = getattr(sys, "_MEIPASS", None)
    return Path(meipass) if getattr(sys, "frozen", False) and meipass else None


def bundled_exiftool() -> Path | None:
    base = bundle_dir()
    if base is None:
        return None
    for name in ("exiftool.exe", "exiftool"):
        p = base / "exiftool" / name
        if p.is_file():
            return p
    return None


def use_bundled_exiftool() -> None:
    """In the frozen worker, use the bundled exiftool unless ``HOTPIXELS_EXIFTOOL`` says otherwise."""
    exe = bundled_exiftool()
    if exe is not None and not os.environ.get("HOTPIXELS_EXIFTOOL"):
        os.environ["HOTPIXELS_EXIFTOOL"] = str(exe)
