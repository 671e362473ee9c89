"""Never lose a photo: kills, races, full and read-only disks, FIFOs and broken model weights.

Each story runs the real CLI (``python -m hotpixels``) or the real worker in a subprocess on DNGs
made by the project's own creator, and looks at what is left on disk afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hotpixels.dng.cfa import CfaPattern
from hotpixels.dng.create import write_dng
from hotpixels.dng.rawimage import CameraMetadata
from hotpixels.dng.reader import read_dng
from hotpixels.errors import FileNotReadable
from hotpixels.fileio import check_regular_file
from hotpixels.rpc.client import WorkerClient

ROOT = Path(__file__).resolve().parents[2]
SOURCE_WORKER = Path(sys.executable).parent / "hotpixels-worker"


def night_frame(path: Path, shape=(256, 384), layout: str = "ljpeg-tiles", seed: int = 3) -> Path:
    """A noisy dark sky with 40 hot pixels, as a DNG of ``layout``."""
    rng = np.random.default_rng(seed)
    h, w = shape
    frame = np.clip(rng.normal(600, 12, size=shape), 0, 4095).astype(np.uint16)
    frame[rng.integers(4, h - 4, 40), rng.integers(4, w - 4, 40)] = 3900
    write_dng(path, frame, cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, h, w), black_level_dn=512,
              white_level_dn=4095, bits=12, layout=layout, tile_px=64,
              metadata=CameraMetadata(make="Story", model="Cam", serial="S1", iso=1600, exposure_s=60.0))
    return path


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hotpixels", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def cli_env(**extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update(extra)
    return env


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def dngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*_hotpixels*.dng"))


@contextlib.contextmanager
def mounted_tmpfs(path: Path, size_kb: int, read_only: bool = False):
    """A small tmpfs at ``path`` (root only); yields False when it cannot be mounted here."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size_kb}k" + (",ro" if read_only else "")
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode == 0
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


# -- kill -9 ------------------------------------------------------------------------------------
KILL_MID_WRITE = """
import os, signal, sys
from hotpixels.dng.reader import read_dng
from hotpixels.dng.writer import write_corrected_dng
raw = read_dng(sys.argv[1], metadata=False)
new = raw.cfa_dn.copy()
new[::7, ::5] = 700  # a change in every tile: every tile is re-encoded
def progress(done, total, message):
    if done == 2:  # the temporary copy exists and is half rewritten
        os.kill(os.getpid(), signal.SIGKILL)
write_corrected_dng(raw, new, sys.argv[2], progress=progress)
"""


def test_kill_9_mid_write_then_a_new_run_leaves_exactly_one_good_output_and_no_temp_file(tmp_path):
    src = night_frame(tmp_path / "night.dng")
    killed = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, str(src), str(tmp_path / "night_hotpixels.dng")],
                            capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert len(temp_files(tmp_path)) == 1, "the killed run left its temporary file (this story needs one)"
    assert dngs(tmp_path) == []

    again = cli("correct", str(src), "--profile", "none", "--no-previews")
    assert again.returncode == 0, again.stderr
    assert temp_files(tmp_path) == []
    outputs = dngs(tmp_path)
    assert [p.name for p in outputs] == ["night_hotpixels.dng"]
    assert read_dng(outputs[0], metadata=False).cfa_dn.shape == (256, 384)


def test_a_temporary_file_of_a_live_process_is_left_alone(tmp_path):
    from hotpixels.fileio import remove_stale_temps, temp_path

    mine = temp_path(tmp_path / "a.dng")
    mine.write_bytes(b"in progress")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = tmp_path / f".b.dng.hp{sleeper.pid}-0123abcd.tmp"
        theirs.write_bytes(b"in progress")
        remove_stale_temps(tmp_path, again=True)
        assert mine.exists() and theirs.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    remove_stale_temps(tmp_path, again=True)
    assert mine.exists() and not theirs.exists()


# -- two runs on one input -------------------------------------------------------------------------
def test_two_runs_started_together_on_one_input_give_two_distinct_good_outputs(tmp_path):
    src = night_frame(tmp_path / "night.dng", shape=(512, 768))
    cmd = [sys.executable, "-m", "hotpixels", "correct", str(src), "--profile", "none", "--json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    results = [json.loads(o[0])[0] for o in outs]
    names = sorted(Path(r["output"]).name for r in results)
    assert names == ["night_hotpixels.dng", "night_hotpixels_2.dng"]
    for r in results:
        report = json.loads(Path(r["report_path"]).read_text())
        assert report["output"] == r["output"], "each report describes its own DNG"
        assert Path(r["report_path"]).name == Path(r["output"]).stem + ".hotpixels.json"
        read_dng(r["output"], metadata=False)
    assert temp_files(tmp_path) == []


def test_a_name_taken_while_the_file_was_written_goes_to_the_next_number(tmp_path):
    from hotpixels.dng.writer import write_corrected_dng

    src = night_frame(tmp_path / "night.dng", layout="strip")
    raw = read_dng(src, metadata=False)
    taken = tmp_path / "out.dng"
    written = []

    def progress(done, total, message):
        if not taken.exists():
            taken.write_bytes(b"another run's file")

    written.append(write_corrected_dng(raw, raw.cfa_dn, taken, progress=progress,
                                       alternatives=[tmp_path / "out_2.dng"]))
    assert taken.read_bytes() == b"another run's file"
    assert written[0]["path"] == str(tmp_path / "out_2.dng")
    assert temp_files(tmp_path) == []
    # taken before the write began (the other run finished first): the next free name, not 1012
    again = write_corrected_dng(raw, raw.cfa_dn, taken, alternatives=[tmp_path / "out_2.dng", tmp_path / "out_3.dng"])
    assert again["path"] == str(tmp_path / "out_3.dng")


# -- full disk, read-only report folder -------------------------------------------------------------
FSIZE_LIMITED = """
import resource, signal, sys
from hotpixels.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("room", ["no room for the DNG", "room for the DNG, not its report and previews"])
def test_a_full_disk_leaves_nothing_behind(tmp_path, room):
    src = night_frame(tmp_path / "night.dng")
    out = tmp_path / "out"
    size_kb = 16 if room.startswith("no room") else src.stat().st_size // 1024 + 24
    with mounted_tmpfs(out, size_kb) as mounted:
        args = ["correct", str(src), "--profile", "none", "--output-dir", str(out), "--json"]
        if mounted:
            run = cli(*args)
        else:  # no mount allowed here: the same failure from a file-size limit (EFBIG)
            out.mkdir(exist_ok=True)
            run = subprocess.run([sys.executable, "-c", FSIZE_LIMITED, str(size_kb * 1024), *args],
                                 capture_output=True, text=True, timeout=300)
        assert run.returncode == 2
        result = json.loads(run.stdout)[0]
        assert result["ok"] is False and result["error"]["code"] == 1011, result
        assert sorted(os.listdir(out)) == [], "a failed run leaves nothing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["night.dng", "out"]


def test_a_read_only_report_folder_leaves_nothing_behind(tmp_path):
    src = night_frame(tmp_path / "night.dng")
    reports = tmp_path / "reports"
    with mounted_tmpfs(reports, 1024, read_only=True) as mounted:
        if not mounted:
            if os.geteuid() == 0:
                pytest.skip("cannot mount a read-only folder here, and root writes through file modes")
            reports.chmod(0o500)
        run = cli("correct", str(src), "--profile", "none", "--report-dir", str(reports), "--json")
        assert run.returncode == 2
        result = json.loads(run.stdout)[0]
        assert result["error"]["code"] == 1011, result
        assert sorted(os.listdir(reports)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["night.dng", "reports"]


def test_a_report_that_cannot_be_written_takes_the_dng_with_it(tmp_path, monkeypatch):
    """The rollback itself, where no disk can be filled: the sites file's write fails."""
    from hotpixels.correct import report as report_mod
    from hotpixels.correct.pipeline import CorrectOptions, correct_file
    from hotpixels.errors import DestinationUnwritable

    src = night_frame(tmp_path / "night.dng")
    real = report_mod.atomic_write

    def failing(path, payload, **kw):
        if str(path).endswith(".hotpixels.json"):
            raise DestinationUnwritable(f"cannot write {path}: No space left on device", path=str(path))
        return real(path, payload, **kw)

    monkeypatch.setattr(report_mod, "atomic_write", failing)
    with pytest.raises(DestinationUnwritable):
        correct_file(src, CorrectOptions(profile=None, batch="off"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["night.dng"]


# -- FIFO ---------------------------------------------------------------------------------------------
@pytest.fixture()
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.dng"
    os.mkfifo(path)
    return path


def test_check_regular_file_refuses_a_fifo_a_folder_and_a_device_without_opening_them(fifo, tmp_path):
    for path in (fifo, tmp_path, Path("/dev/zero")):
        with pytest.raises(FileNotReadable) as err:
            check_regular_file(path)
        assert err.value.CODE == 1002
    assert check_regular_file(night_frame(tmp_path / "ok.dng")).st_size > 0


def test_reading_a_fifo_is_error_1002_at_once_not_a_hang(fifo):
    outcome = {}

    def read():
        try:
            read_dng(fifo)
        except Exception as exc:  # noqa: BLE001
            outcome["error"] = exc

    t0 = time.monotonic()
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(30)  # a hang would block here (an opened FIFO waits for a writer for ever)
    print(f"answered in {time.monotonic() - t0:.3f} s")
    assert not thread.is_alive(), "reading a FIFO hung"
    assert getattr(outcome.get("error"), "CODE", None) == 1002


@pytest.mark.parametrize("command", ["inspect", "correct"])
def test_the_cli_answers_1002_for_a_fifo(fifo, command):
    t0 = time.monotonic()
    run = cli(command, str(fifo), "--json", timeout=120)
    print(f"{command}: answered in {time.monotonic() - t0:.2f} s (Python start included)")
    assert run.returncode == 2
    doc = json.loads(run.stdout)
    err = doc["error"] if command == "inspect" else doc[0]["error"]
    assert err["code"] == 1002 and "FIFO" in err["message"]


def test_the_worker_answers_1002_for_a_fifo_and_keeps_serving(fifo, tmp_path):
    env = cli_env(HOTPIXELS_WORKER_PRELOAD="0", HOTPIXELS_LIBRARY=str(tmp_path / "library"))
    client = WorkerClient.spawn([str(SOURCE_WORKER), "--stdio"], env=env)
    try:
        for method in ("image.inspect", "image.correct"):
            t0 = time.monotonic()
            response = client.call(method, {"path": str(fifo)}, timeout_s=60)
            print(f"{method}: answered in {time.monotonic() - t0:.3f} s")
            # a call-level error, or (image.correct takes a batch) the one image's failed result
            error = response.get("error") or response["result"]["results"][0]["error"]
            assert error["code"] == 1002, response
        good = night_frame(tmp_path / "good.dng")
        assert client.result("image.inspect", {"path": str(good)}, timeout_s=120)
    finally:
        client.kill()


# -- model weights ------------------------------------------------------------------------------------
@pytest.mark.parametrize("stages", ["dark,hot,residual", "residual"])
def test_a_corrupt_weights_file_is_error_3002_and_writes_nothing(tmp_path, stages):
    src = night_frame(tmp_path / "night.dng")
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"PK\x03\x04 this is not a model" * 40)
    run = cli("correct", str(src), "--profile", "none", "--stages", stages, "--json",
              env=cli_env(HOTPIXELS_MODEL=str(weights)))
    assert run.returncode == 2
    result = json.loads(run.stdout)[0]
    assert result["error"]["code"] == 3002, result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["night.dng", "weights.pt"]


def test_a_batch_with_corrupt_weights_fails_with_3002_instead_of_skipping_stage_3(tmp_path):
    srcs = [night_frame(tmp_path / f"n{k}.dng", seed=k) for k in range(3)]
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"\x80\x04garbage")
    run = cli("correct", *map(str, srcs), "--profile", "none", "--json", env=cli_env(HOTPIXELS_MODEL=str(weights)))
    assert run.returncode == 2
    doc = json.loads(run.stdout)
    codes = {doc["error"]["code"]} if isinstance(doc, dict) else {r["error"]["code"] for r in doc}
    assert codes == {3002}
    assert dngs(tmp_path) == []


def test_without_stage_3_broken_weights_do_not_matter(tmp_path):
    src = night_frame(tmp_path / "night.dng")
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"garbage")
    run = cli("correct", str(src), "--profile", "none", "--stages", "dark,hot", "--no-previews",
              env=cli_env(HOTPIXELS_MODEL=str(weights)))
    assert run.returncode == 0, run.stderr
    assert len(dngs(tmp_path)) == 1
