"""Where HotPixels keeps its own files in the user's data directory.

``<data>/HotPixels/profiles`` (the default profile library) and ``<data>/HotPixels/reports``
(reports, sites files and before/after previews of corrections run from Lightroom, so that photo
folders hold only photos). ``<data>`` is ``~/Library/Application Support`` on macOS, ``%APPDATA%``
on Windows and ``$XDG_DATA_HOME`` (``~/.local/share``) elsewhere. ``HOTPIXELS_LIBRARY`` and
``HOTPIXELS_REPORTS`` override each folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def user_data_dir() -> Path:
    home = Path.home()
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "HotPixels"


def default_library_dir() -> Path:
    env = os.environ.get("HOTPIXELS_LIBRARY")
    return Path(env).expanduser() if env else user_data_dir() / "profiles"


def default_report_dir() -> Path:
    env = os.environ.get("HOTPIXELS_REPORTS")
    return Path(env).expanduser() if env else user_data_dir() / "reports"
