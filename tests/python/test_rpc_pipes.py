"""Tier 2: a real client and the server in one process, over OS pipes and a socket pair.

The server runs :meth:`Server.serve` on a thread exactly as the ``hotpixels-worker`` process does;
the client is :class:`hotpixels.rpc.client.WorkerClient`. Covers end of input, shutdown, hello
during a job, a client that vanishes mid-message, and a peer that closes its socket.
"""

from __future__ import annotations

import os
import socket
import threading

import pytest

from hotpixels.rpc.client import WorkerClient
from hotpixels.rpc.server import Server
from hotpixels.rpc.transports import pipe_transport


class Running:
    """A server on a thread plus a client on the other ends of the pipes."""

    def __init__(self, server: Server, client: WorkerClient, client_out, thread: threading.Thread):
        self.server, self.client, self.client_out, self.thread = server, client, client_out, thread
        self.exit_code = None

    def join(self, timeout_s: float = 20.0):
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "server did not stop"
        return self.exit_code


def start_over_pipes(tmp_path) -> Running:
    to_server_r, to_server_w = os.pipe()
    from_server_r, from_server_w = os.pipe()
    transport = pipe_transport(os.fdopen(to_server_r, "rb"), os.fdopen(from_server_w, "wb"))
    server = Server(transport, test_methods=True)
    server.state.default_library = str(tmp_path / "library")
    client_out = os.fdopen(to_server_w, "wb")
    client = WorkerClient(os.fdopen(from_server_r, "rb"), client_out)
    running = Running(server, client, client_out, None)  # type: ignore[arg-type]

    def run():
        running.exit_code = server.serve()

    running.thread = threading.Thread(target=run, daemon=True)
    running.thread.start()
    return running


@pytest.fixture()
def worker(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTPIXELS_WORKER_PRELOAD", "0")
    running = start_over_pipes(tmp_path)
    yield running
    running.server.stop("shutdown")
    running.client.close_input()


def test_hello_round_trip_over_pipes(worker):
    assert worker.client.result("worker.hello", {"protocol": 1})["protocol"] == 1


def test_hello_is_answered_while_a_job_runs(worker):
    c = worker.client
    job = c.request("test.sleep", {"seconds": 3, "steps": 30})
    c.wait_for(lambda m: m["method"] == "$/progress" and m["params"]["id"] == job and m["params"]["done"] > 0)
    hello = c.call("worker.hello", timeout_s=1.0)
    assert hello["result"]["protocol"] == 1
    assert job not in c.responses, "hello must not wait for the job"
    c.cancel(job)
    assert c.wait(job)["error"]["code"] == -32800


def test_end_of_input_finishes_queued_work_then_exits_0(worker):
    c = worker.client
    a = c.request("test.sleep", {"seconds": 0.3})
    b = c.request("test.sleep", {"seconds": 0.3})
    c.close_input()
    assert worker.join() == 0
    assert "result" in c.wait(a) and "result" in c.wait(b)


def test_shutdown_replies_then_cancels_running_work_and_exits_0(worker):
    c = worker.client
    job = c.request("test.sleep", {"seconds": 30, "steps": 300})
    c.wait_for(lambda m: m["params"].get("id") == job and m["params"]["done"] > 0)
    assert c.result("worker.shutdown") == {"ok": True}
    assert c.wait(job)["error"]["code"] == -32800
    assert worker.join() == 0


def test_client_that_dies_mid_message_leaves_a_clean_exit(worker):
    worker.client.send_raw(b'{"jsonrpc":"2.0","method":"worker.hel')
    worker.client.close_input()
    assert worker.join() == 0
    assert worker.client.wait_orphan(1)[0]["error"]["code"] == -32700


def test_stray_prints_in_a_method_do_not_reach_the_protocol_stream(worker):
    # in-process the server's writer is a private pipe, so stdout junk cannot interleave
    assert worker.client.result("test.print") == {"printed": True}
    assert worker.client.result("worker.hello")["protocol"] == 1


def test_socketpair_peer_closing_stops_the_server(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTPIXELS_WORKER_PRELOAD", "0")
    server_sock, client_sock = socket.socketpair()
    transport = pipe_transport(server_sock.makefile("rb"), server_sock.makefile("wb"), name="socketpair")
    server = Server(transport, test_methods=True)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", server.serve()), daemon=True)
    thread.start()
    client = WorkerClient(client_sock.makefile("rb"), client_sock.makefile("wb"))
    assert client.result("worker.hello")["protocol"] == 1
    job = client.request("test.sleep", {"seconds": 30, "steps": 300})
    client.wait_for(lambda m: m["params"].get("id") == job and m["params"]["done"] > 0)
    client_sock.shutdown(socket.SHUT_RDWR)
    client_sock.close()
    thread.join(20)
    assert not thread.is_alive() and result["rc"] == 0
