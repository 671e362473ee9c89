"""Real raw converters render the corrected DNG like the source: darktable-cli and rawtherapee-cli
produce a JPEG of the same size whose pixels differ only slightly (a few hundred sites changed)."""

from __future__ import annotations

import os
import subprocess

import imagecodecs
import numpy as np
import pytest

from conftest import require_tool, sample
from dng_testing import fake_correction
from hotpixels.dng.reader import read_dng
from hotpixels.dng.writer import write_corrected_dng


def _corrected(name, tmp_path):
    src = sample(name)
    raw = read_dng(src, metadata=False)
    dst = tmp_path / name.replace(".dng", "-hp.dng")
    write_corrected_dng(raw, fake_correction(raw, 4, n=200), dst)
    return src, dst


def _darktable(path, out, tmp_path) -> np.ndarray:
    exe = require_tool("darktable-cli")
    proc = subprocess.run([exe, str(path), str(out), "--core", "--configdir", str(tmp_path / "dtconf")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and out.exists(), proc.stdout + proc.stderr
    return np.asarray(imagecodecs.jpeg8_decode(out.read_bytes()))


def _rawtherapee(path, out, tmp_path) -> np.ndarray:
    exe = require_tool("rawtherapee-cli")
    env = dict(os.environ, HOME=str(tmp_path))  # its settings and cache go to the test folder
    proc = subprocess.run([exe, "-o", str(out), "-Y", "-c", str(path)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0 and out.exists(), proc.stdout + proc.stderr
    return np.asarray(imagecodecs.jpeg8_decode(out.read_bytes()))


def _similar(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.ndim == 3
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.mean() < 1.0  # the same picture; only the changed sites and their neighbours differ


@pytest.mark.parametrize("name", ["sdk_colorchart_ljpeg.dng", "tinydng_colorchart.dng"])
def test_darktable_renders_the_corrected_file_like_the_source(name, tmp_path):
    src, dst = _corrected(name, tmp_path)
    _similar(_darktable(src, tmp_path / "src.jpg", tmp_path), _darktable(dst, tmp_path / "dst.jpg", tmp_path))


@pytest.mark.parametrize("name", ["sdk_colorchart_ljpeg.dng", "sdk_xtrans_ljpeg.dng"])
def test_rawtherapee_renders_the_corrected_file_like_the_source(name, tmp_path):
    src, dst = _corrected(name, tmp_path)
    _similar(_rawtherapee(src, tmp_path / "src.jpg", tmp_path), _rawtherapee(dst, tmp_path / "dst.jpg", tmp_path))
