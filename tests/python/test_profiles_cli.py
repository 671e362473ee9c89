"""``hotpixels profile …`` as a user runs it: real DNG files, a real subprocess, JSON on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotpixels.errors import CorrectedFileAsDark, ProfileCorrupt
from hotpixels.simulate.session import simulate_session

ROOT = Path(__file__).resolve().parents[2]


def hotpixels(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "worker"), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "hotpixels", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("session")
    simulate_session("small", seed=41, n_darks=4, n_lights=1).write(out)
    return out


def test_create_list_match_from_dng_files_with_json_only_on_stdout(tmp_path, session_dir):
    darks = sorted(str(p) for p in (session_dir / "darks").glob("*.dng"))
    lib = str(tmp_path / "lib")
    created = hotpixels("profile", "create", *darks, "--name", "sim 1600", "--library", lib, "--json")
    assert created.returncode == 0, created.stderr
    summary = json.loads(created.stdout)
    assert summary["name"] == "sim 1600" and summary["n_frames"] == 4 and summary["mismatches"] == []
    assert [f["name"] for f in json.loads(hotpixels("profile", "show", "sim 1600", "--library", lib, "--json").stdout)["frames"]] \
        == [Path(d).name for d in darks]

    (Path(lib) / "broken.hpprofile").write_bytes(b"not a zip")
    listing = json.loads(hotpixels("profile", "list", "--json", env_extra={"HOTPIXELS_LIBRARY": lib}).stdout)
    assert [p["name"] for p in listing["profiles"]] == ["sim 1600"]
    assert listing["errors"][0]["file"] == "broken.hpprofile" and listing["errors"][0]["code"] == ProfileCorrupt.CODE

    light = str(next((session_dir / "lights").glob("*.dng")))
    matched = hotpixels("profile", "match", light, "--library", lib, "--json")
    assert matched.returncode == 0, matched.stderr
    result = json.loads(matched.stdout)
    assert result["best"] == "sim 1600" and "same body" in result["candidates"][0]["explanation"]


def test_a_corrected_dng_is_refused_as_a_dark(tmp_path, session_dir):
    from hotpixels.dng.reader import read_dng
    from hotpixels.dng.writer import write_corrected_dng

    darks = sorted(str(p) for p in (session_dir / "darks").glob("*.dng"))
    raw = read_dng(darks[0], metadata=False)
    corrected = tmp_path / "dark_corrected.dng"
    write_corrected_dng(raw, raw.cfa_dn.copy(), corrected)
    out = hotpixels("profile", "create", darks[1], darks[2], str(corrected), "--name", "x",
                    "--library", str(tmp_path / "lib"), "--json")
    assert out.returncode == 2
    err = json.loads(out.stdout)["error"]
    assert err["code"] == CorrectedFileAsDark.CODE and "dark_corrected.dng" in err["message"]
    assert not (tmp_path / "lib").exists()
