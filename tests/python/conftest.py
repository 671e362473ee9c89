"""Shared test fixtures.

* ``samples_dir``: the real DNG files in ../shared/samples (read in place, never copied).
* ``require_tool(name)``: skip when an external program (exiftool, darktable-cli, …) is missing,
  but fail under ``HOTPIXELS_CI=1``, where every system part must be present.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = Path(os.environ.get("HOTPIXELS_SAMPLES", ROOT.parent / "shared" / "samples"))
IN_CI = os.environ.get("HOTPIXELS_CI") == "1"


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is missing (HOTPIXELS_CI=1: every system part must be installed)")
    pytest.skip(f"{what} is missing")


def require_tool(name: str) -> str:
    """Path of an external program, or skip (fail under CI) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        _missing(name)
    return path  # type: ignore[return-value]


def require_module(name: str):
    """Import a test-only Python package (rawpy, dngpy, astroscrappy) or skip (fail under CI)."""
    try:
        return __import__(name)
    except ImportError:
        _missing(f"Python package {name}")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not SAMPLES_DIR.is_dir():
        _missing(f"sample folder {SAMPLES_DIR}")
    return SAMPLES_DIR


def sample(name: str) -> Path:
    """Path of one sample DNG (skips, or fails under CI, when the folder is absent)."""
    p = SAMPLES_DIR / name
    if not p.is_file():
        _missing(f"sample {p}")
    return p


@pytest.fixture(scope="session", autouse=True)
def _reports_out_of_the_home_folder(tmp_path_factory):
    """The worker writes reports to the user's data folder by default: keep tests out of it."""
    old = os.environ.get("HOTPIXELS_REPORTS")
    os.environ["HOTPIXELS_REPORTS"] = str(tmp_path_factory.mktemp("reports"))
    yield
    if old is None:
        os.environ.pop("HOTPIXELS_REPORTS", None)
    else:
        os.environ["HOTPIXELS_REPORTS"] = old
