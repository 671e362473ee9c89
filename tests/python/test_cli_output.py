"""A user runs ``hotpixels correct`` in a terminal: the terminal shows the progress line and the
result, and nothing else (no Python warning, no traceback), with exiftool reading the metadata."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading

from conftest import ROOT, require_tool, sample

try:
    import pty  # Unix; on Windows stderr is a pipe and no progress is drawn
except ImportError:  # pragma: no cover - Windows
    pty = None

# TerminalProgress: "label i/n message (elapsed[, ETA …])", or "label NN% …" for the correction
PROGRESS_LINE = re.compile(r"^\S.* (?:\d+/\d+|\d+%) .*\(\d+(?:s|m\d\ds|h\d\dm) elapsed(?:, ETA [^)]*)?\)$")


def _run_with_a_terminal_on_stderr(argv: list[str], cwd) -> tuple[int, str, str]:
    """Run ``argv`` with stderr on a pseudo-terminal (so progress is drawn, as for a user) and
    stdout on a pipe; returns (exit status, stdout, everything the terminal received). Without a
    pty module (Windows) stderr is a pipe: then it must hold nothing at all."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}  # the user's defaults
    env["PYTHONPATH"] = str(ROOT / "worker") + os.pathsep + env.get("PYTHONPATH", "")
    if pty is None:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, env=env, timeout=600)
        return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                            env=env)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the terminal's last writer is gone
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=600)
    reader.join(timeout=30)
    os.close(master)
    return proc.returncode, out.decode("utf-8", "replace"), b"".join(chunks).decode("utf-8", "replace")


def test_a_correction_prints_only_progress_and_the_result(tmp_path):
    require_tool("exiftool")  # the run must use exiftool, whose shutdown used to print a UserWarning
    photo = tmp_path / "night.dng"
    shutil.copyfile(sample("tinydng_colorchart.dng"), photo)
    rc, out, terminal = _run_with_a_terminal_on_stderr(
        [sys.executable, "-m", "hotpixels", "correct", "--profile", "none", "--output-dir", str(tmp_path / "out"),
         "--report-dir", str(tmp_path / "reports"), str(photo)], cwd=tmp_path)
    assert rc == 0, out + terminal
    assert (tmp_path / "out" / "night_hotpixels.dng").is_file()
    assert out.startswith("night.dng -> night_hotpixels.dng: ")
    pieces = [p.strip() for p in re.split(r"[\r\n]+", terminal) if p.strip()]
    assert pieces or pty is None, "a terminal shows progress"
    strays = [p for p in pieces if not PROGRESS_LINE.match(p)]
    assert strays == [], f"the terminal showed more than progress: {strays}"
    assert "Warning" not in terminal and "Traceback" not in terminal


def test_the_demo_that_run_sh_starts_finishes_and_lists_every_output(tmp_path):
    """``./run.sh`` with no argument runs ``hotpixels demo``: a new user's first command must end
    with exit 0 and a summary naming the corrected DNG, the report, the sites file and the
    before/after crops, each of which exists."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "worker") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "hotpixels", "demo", "--out", str(tmp_path / "demo")],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    named = dict(re.findall(r"^  (corrected DNG|report|changed sites)\s+(\S.*)$", proc.stdout, re.M))
    assert set(named) == {"corrected DNG", "report", "changed sites"}, proc.stdout
    crops = re.findall(r"^  before/after\s+(\S+)\s+\|\s+(\S+)$", proc.stdout, re.M)
    assert crops, proc.stdout
    for path in [*named.values(), *(p for pair in crops for p in pair)]:
        assert os.path.isfile(path), path
    assert "Traceback" not in proc.stderr and "error [" not in proc.stdout + proc.stderr  # a named error line
