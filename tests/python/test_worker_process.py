"""Tier 3: the real ``hotpixels-worker`` process, from source and (when built) frozen.

Over stdio, and over real loopback sockets where the test plays the Lightroom plugin: it binds a
"send" and a "receive" listening socket, launches the worker with both ports and a token, and
checks the token line before sending anything.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IN_CI, require_file
from hotpixels.rpc.bundle import frozen_worker_path
from hotpixels.rpc.client import WorkerClient

ROOT = Path(__file__).resolve().parents[2]
SOURCE_WORKER = Path(sys.executable).parent / "hotpixels-worker"
FROZEN_WORKER = frozen_worker_path(ROOT)

WORKERS = [pytest.param(SOURCE_WORKER, id="source")]
if FROZEN_WORKER.is_file() or IN_CI:  # CI builds it first: a missing build fails there
    WORKERS.append(pytest.param(FROZEN_WORKER, id="frozen", marks=pytest.mark.frozen))


def existing_worker(path: Path) -> Path:
    """``path`` when that worker executable exists; else skip (fail under ``HOTPIXELS_CI=1``)."""
    return require_file(path, "worker executable (the frozen one comes from ./run.sh build)")


def worker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update({"HOTPIXELS_WORKER_TEST_METHODS": "1", "HOTPIXELS_WORKER_PRELOAD": "0",
                "HOTPIXELS_LIBRARY": str(tmp_path / "library")})
    env.update(extra)
    return env


@pytest.fixture(params=WORKERS)
def worker_exe(request) -> Path:
    return existing_worker(request.param)


@pytest.fixture()
def stdio_worker(worker_exe, tmp_path):
    client = WorkerClient.spawn([str(worker_exe), "--stdio"], env=worker_env(tmp_path))
    yield client
    client.kill()


def test_hello_over_stdio(stdio_worker):
    r = stdio_worker.result("worker.hello", {"protocol": 1, "client": "pytest"}, timeout_s=60)
    assert r["protocol"] == 1 and r["pid"] == stdio_worker.process.pid


def test_1000_malformed_lines_then_a_valid_request_is_answered(stdio_worker):
    junk = b"".join(b"{not json %d\n" % i if i % 2 else b"\x00\xff garbage\n" for i in range(1000))
    stdio_worker.send_raw(junk)
    rid = stdio_worker.request("worker.hello")
    assert stdio_worker.wait(rid, timeout_s=60)["result"]["protocol"] == 1
    errors = stdio_worker.wait_orphan(1000, timeout_s=60)
    assert len(errors) == 1000 and {e["error"]["code"] for e in errors} == {-32700}


def test_end_of_input_exits_0(stdio_worker):
    stdio_worker.result("worker.hello", timeout_s=60)
    stdio_worker.close_input()
    assert stdio_worker.wait_exit(30) == 0


def test_stray_prints_go_to_stderr_not_the_protocol(stdio_worker):
    assert stdio_worker.result("test.print", timeout_s=60) == {"printed": True}
    assert stdio_worker.result("worker.hello")["protocol"] == 1
    assert stdio_worker.orphans == []  # no junk line was taken for a message


def test_worker_exits_when_its_reader_goes_away_during_a_job(worker_exe, tmp_path):
    client = WorkerClient.spawn([str(worker_exe), "--stdio"], env=worker_env(tmp_path))
    try:
        job = client.request("test.sleep", {"seconds": 30, "steps": 300})
        client.wait_for(lambda m: m["params"].get("id") == job and m["params"]["done"] > 0, timeout_s=60)
        client.reader.close()  # the client stops listening: the worker's next write breaks the pipe
        assert client.wait_exit(30) == 0
    finally:
        client.kill()


# --- the Lightroom socket pair ----------------------------------------------------------------------
class FakePlugin:
    """Plays the plugin: two listening loopback sockets, like LrSocket send/receive mode."""

    def __init__(self) -> None:
        self.send_listener = socket.create_server(("127.0.0.1", 0))
        self.recv_listener = socket.create_server(("127.0.0.1", 0))
        for s in (self.send_listener, self.recv_listener):
            s.settimeout(60)

    @property
    def ports(self) -> tuple[int, int]:
        return self.send_listener.getsockname()[1], self.recv_listener.getsockname()[1]

    def accept(self) -> None:
        self.send_conn, _ = self.send_listener.accept()  # we write requests here
        self.recv_conn, _ = self.recv_listener.accept()  # we read responses here
        self.recv_conn.settimeout(60)
        self.lines = self.recv_conn.makefile("rb")

    def read_message(self) -> dict:
        return json.loads(self.lines.readline())

    def hang_up(self) -> None:
        """Close both connections, as the plugin does when it refuses a worker or quits."""
        self.lines.close()
        self.send_conn.close()
        self.recv_conn.close()

    def close(self) -> None:
        for s in (getattr(self, "send_conn", None), getattr(self, "recv_conn", None),
                  self.send_listener, self.recv_listener):
            if s is not None:
                s.close()


def launch_socket_worker(exe: Path, plugin: FakePlugin, token: str, tmp_path: Path) -> subprocess.Popen:
    send_port, recv_port = plugin.ports
    return subprocess.Popen([str(exe), "--connect", str(send_port), str(recv_port), "--token", token],
                            env=worker_env(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_socket_mode_sends_the_token_first_then_serves_and_exits_when_the_plugin_closes(worker_exe, tmp_path):
    plugin = FakePlugin()
    proc = launch_socket_worker(worker_exe, plugin, "s3cret-token", tmp_path)
    try:
        plugin.accept()
        token = plugin.read_message()
        assert token == {"jsonrpc": "2.0", "method": "$/token",
                         "params": {"token": "s3cret-token", "pid": proc.pid, "protocol": 1}}
        plugin.send_conn.sendall(b'{"jsonrpc":"2.0","method":"worker.hello","id":1}\n')
        assert plugin.read_message()["result"]["protocol"] == 1
        plugin.send_conn.sendall(b"this is not json\n")
        assert plugin.read_message()["error"]["code"] == -32700
        plugin.lines.close()
        plugin.recv_conn.close()  # closing either socket ends the worker
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        plugin.close()


def test_socket_mode_wrong_token_is_refused_by_closing_and_the_worker_exits(worker_exe, tmp_path):
    plugin = FakePlugin()
    proc = launch_socket_worker(worker_exe, plugin, "not-the-token-we-issued", tmp_path)
    try:
        plugin.accept()
        token = plugin.read_message()
        assert token["params"]["token"] != "the-token-we-issued"
        plugin.hang_up()
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        plugin.close()


def test_socket_mode_exits_1_when_nobody_listens(worker_exe, tmp_path):
    s = socket.create_server(("127.0.0.1", 0))
    free_port = s.getsockname()[1]
    s.close()
    proc = subprocess.run([str(worker_exe), "--connect", str(free_port), str(free_port), "--token", "t"],
                          env=worker_env(tmp_path), capture_output=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == b""
    assert b"cannot connect" in proc.stderr


def test_connect_without_token_is_a_usage_error(worker_exe, tmp_path):
    proc = subprocess.run([str(worker_exe), "--connect", "1", "2"], env=worker_env(tmp_path),
                          capture_output=True, timeout=60)
    assert proc.returncode == 2 and b"--token" in proc.stderr


def test_client_dying_mid_message_gets_a_parse_error_and_a_clean_exit(stdio_worker):
    stdio_worker.send_raw(b'{"jsonrpc":"2.0","method":"image.correct","params":{"path":"/x.d')
    stdio_worker.close_input()
    assert stdio_worker.wait_exit(30) == 0
    assert stdio_worker.wait_orphan(1)[0]["error"]["code"] == -32700


def test_socket_client_dying_mid_message_ends_the_worker(worker_exe, tmp_path):
    plugin = FakePlugin()
    proc = launch_socket_worker(worker_exe, plugin, "tok", tmp_path)
    try:
        plugin.accept()
        assert plugin.read_message()["method"] == "$/token"
        plugin.send_conn.sendall(b'{"jsonrpc":"2.0","method":"worker.he')
        plugin.send_conn.shutdown(socket.SHUT_RDWR)
        plugin.send_conn.close()
        assert plugin.read_message()["error"]["code"] == -32700  # the fragment, at end of input
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        plugin.close()


def test_log_file_receives_the_log_and_stdout_stays_protocol_only(worker_exe, tmp_path):
    log = tmp_path / "worker.log"
    proc = subprocess.run([str(worker_exe), "--stdio", "--log", str(log)], input=b'{"jsonrpc":"2.0","method":"worker.hello","id":1}\n',
                          env=worker_env(tmp_path), capture_output=True, timeout=60)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["result"]["protocol"] == 1
    assert "serving on stdio" in log.read_text()


def test_self_test_prints_one_verdict_line(worker_exe, tmp_path):
    proc = subprocess.run([str(worker_exe), "--self-test"], env=worker_env(tmp_path), capture_output=True, timeout=300)
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("self-test OK: " if proc.returncode == 0 else "self-test FAILED: ")
    assert "codecs ljpeg/ljpeg-encoder/packints/png/jpegxl" in lines[0]


def test_self_test_fails_without_exiftool(worker_exe, tmp_path):
    env = worker_env(tmp_path, HOTPIXELS_EXIFTOOL=str(tmp_path / "no-exiftool-here"))
    proc = subprocess.run([str(worker_exe), "--self-test"], env=env, capture_output=True, timeout=300)
    assert proc.returncode == 1
    assert "exiftool FAILED" in proc.stdout.decode()


def test_connect_wins_over_stdio_as_run_sh_serve_passes_both(tmp_path):
    plugin = FakePlugin()
    send_port, recv_port = plugin.ports
    proc = subprocess.Popen([str(SOURCE_WORKER), "--stdio", "--connect", str(send_port), str(recv_port), "--token", "t"],
                            env=worker_env(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        plugin.accept()
        assert plugin.read_message()["params"]["token"] == "t"
        plugin.hang_up()
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        plugin.close()


@pytest.mark.frozen
def test_the_frozen_worker_bundles_no_torch_simulator_trainer_or_bench_and_stays_small():
    existing_worker(FROZEN_WORKER)  # skips without ./run.sh build; fails so under HOTPIXELS_CI=1
    from PyInstaller.archive.readers import CArchiveReader

    from hotpixels.rpc.bundle import folder_size_mb

    exe = CArchiveReader(str(FROZEN_WORKER))
    pyz = exe.open_embedded_archive(next(n for n in exe.toc if n.startswith("PYZ")))
    modules = set(pyz.toc)
    assert {"hotpixels.model.numpy_net", "hotpixels.correct.residual", "hotpixels.candidates"} <= modules
    heavy = ("torch", "hotpixels.simulate", "hotpixels.model.train", "hotpixels.model.dataset", "hotpixels.bench")
    assert sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy)) == []
    assert not list(FROZEN_WORKER.parent.rglob("torch"))  # no torch package data or libraries either
    assert folder_size_mb(FROZEN_WORKER.parent) <= 200

