"""Shared test fixtures.

* ``sample(name)`` / ``samples_dir``: the real DNG files committed in tests/data/ (origin, licence and
  what each one exercises: tests/data/README.md); ``sample("built_…")`` builds one of the stand-ins
  for files we may not ship (:mod:`built_samples`) on first use.
* ``extra_samples()``: real files in the optional ``HOTPIXELS_SAMPLES`` folder. They only *add*
  tests (parametrised over what is there); no test needs them, and none skips for want of them.
* ``require_tool(name)``: skip when an external program (exiftool, darktable-cli, …) is missing,
  but fail under ``HOTPIXELS_CI=1``, where every system part must be present.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import built_samples

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = ROOT / "tests" / "data"
EXTRA_SAMPLES_DIR = Path(os.environ["HOTPIXELS_SAMPLES"]) if os.environ.get("HOTPIXELS_SAMPLES") else None
IN_CI = os.environ.get("HOTPIXELS_CI") == "1"
_BUILT: dict[str, Path] = {}  # "dir": the session's folder of built samples


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


def require_file(path: Path, what: str) -> Path:
    """``path`` when that file exists (a build product, …); else skip (fail under CI)."""
    if not Path(path).is_file():
        _missing(f"{what} {path}")
    return Path(path)


def require_module(name: str):
    """Import a test-only Python package (rawpy, dngpy, astroscrappy) or skip (fail under CI)."""
    try:
        return __import__(name)
    except ImportError:
        _missing(f"Python package {name}")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """tests/data/, the committed sample DNGs."""
    if not DATA_DIR.is_dir():
        pytest.fail(f"{DATA_DIR} is missing: the checkout is incomplete")
    return DATA_DIR


def sample(name: str) -> Path:
    """Path of one sample DNG: a ``built_…`` stand-in (built now), tests/data/, then the optional
    ``HOTPIXELS_SAMPLES`` folder.

    A name found nowhere skips (fails under ``HOTPIXELS_CI=1``): the repository's own tests only
    name files committed in tests/data/ or built by :mod:`built_samples`.
    """
    if name in built_samples.BUILDERS:
        return built_samples.build(name, _BUILT["dir"], DATA_DIR)
    p = DATA_DIR / name
    if p.is_file():
        return p
    if EXTRA_SAMPLES_DIR is not None and (EXTRA_SAMPLES_DIR / name).is_file():
        return EXTRA_SAMPLES_DIR / name
    _missing(f"sample {name} (not in {DATA_DIR}" + (f" nor {EXTRA_SAMPLES_DIR})" if EXTRA_SAMPLES_DIR else ")"))
    return p  # unreachable: _missing skips or fails


def extra_samples(pattern: str = "*.dng") -> list[Path]:
    """Files in the optional ``HOTPIXELS_SAMPLES`` folder (none when it is unset): for tests that only add."""
    if EXTRA_SAMPLES_DIR is None or not EXTRA_SAMPLES_DIR.is_dir():
        return []
    return sorted(p for p in EXTRA_SAMPLES_DIR.glob(pattern) if p.is_file())


@pytest.fixture(scope="session", autouse=True)
def _built_samples_folder(tmp_path_factory):
    """Where ``sample("built_…")`` puts the files it builds (once per test session)."""
    _BUILT["dir"] = tmp_path_factory.mktemp("built-samples")
    yield
    _BUILT.pop("dir", None)


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
