"""Tier 1: the worker's dispatcher fed JSON lines in-process (no threads reading pipes).

Each test hands :meth:`Server.handle_line` raw bytes, exactly as the reader thread would, and reads
the messages the server wrote.
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from hotpixels import errors as hp_errors
from hotpixels.rpc.errors import error_object
from hotpixels.rpc.framing import LineReader, MessageTooLong, encode_message
from hotpixels.rpc.server import Server
from hotpixels.rpc.state import ProfileCache
from hotpixels.rpc.transports import pipe_transport


class Collector:
    """A binary sink that files the server's messages."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, dict]] = []
        self.cond = threading.Condition()

    def write(self, data: bytes) -> int:
        assert data.endswith(b"\n") and data.count(b"\n") == 1, "one message per line"
        with self.cond:
            self.messages.append((time.monotonic(), json.loads(data)))
            self.cond.notify_all()
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def response(self, request_id, timeout_s: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                for _, m in self.messages:
                    if isinstance(m, dict) and "method" not in m and m.get("id") == request_id:
                        return m
                left = deadline - time.monotonic()
                assert left > 0, f"no response to {request_id}"
                self.cond.wait(left)

    def progress(self, request_id) -> list[tuple[float, dict]]:
        with self.cond:
            return [(t, m["params"]) for t, m in self.messages
                    if isinstance(m, dict) and m.get("method") == "$/progress" and m["params"]["id"] == request_id]


class _Empty:
    def readline(self, n=-1):
        return b""

    def close(self):
        pass


@pytest.fixture()
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTPIXELS_WORKER_PRELOAD", "0")  # keep torch out of these tests
    out = Collector()
    srv = Server(pipe_transport(_Empty(), out), test_methods=True)
    srv.state.default_library = str(tmp_path / "library")
    srv.start_workers()
    srv.out = out
    yield srv
    srv.stop("shutdown")


def send(srv: Server, obj) -> None:
    srv.handle_line(obj if isinstance(obj, bytes) else json.dumps(obj).encode())


def req(method, params=None, rid=1):
    m = {"jsonrpc": "2.0", "method": method, "id": rid}
    if params is not None:
        m["params"] = params
    return m


def test_hello_reports_protocol_1_and_capabilities(server):
    send(server, req("worker.hello", {"protocol": 1, "client": "test"}))
    r = server.out.response(1)["result"]
    assert r["protocol"] == 1 and r["compatible"] is True
    assert r["capabilities"]["write_compressions"] == [1, 7]
    assert set(r["model"]) >= {"name", "loaded", "path", "sha256", "params"}
    assert r["device"] in ("cpu", "cuda:0", "mps")


def test_before_the_model_loads_hello_reports_the_cpu_unless_a_gpu_was_asked_for(monkeypatch):
    """Stage 3 runs in numpy on the CPU by default: torch being imported (and a GPU present) must not
    make hello announce a device the model will not use."""
    import sys
    import types

    from hotpixels.rpc.state import ModelHolder

    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.delenv("HOTPIXELS_DEVICE", raising=False)
    assert ModelHolder().device() == "cpu"
    monkeypatch.setenv("HOTPIXELS_DEVICE", "cuda")
    assert ModelHolder().device() == "cuda:0"


def test_hello_with_another_protocol_says_incompatible(server):
    send(server, req("worker.hello", {"protocol": 2}))
    assert server.out.response(1)["result"]["compatible"] is False


def test_malformed_json_gets_32700_and_the_next_request_is_served(server):
    send(server, b'{"jsonrpc": "2.0", "method": ')
    send(server, req("worker.hello", rid=7))
    first = server.out.messages[0][1]
    assert first["id"] is None and first["error"]["code"] == -32700
    assert first["error"]["data"]["name"] == "parse_error"
    assert server.out.response(7)["result"]["protocol"] == 1


def test_invalid_utf8_is_a_parse_error(server):
    send(server, b'{"jsonrpc":"2.0","method":"\xff\xfe","id":1}')
    assert server.out.messages[0][1]["error"]["code"] == -32700


@pytest.mark.parametrize("bad", [
    {"method": "worker.hello", "id": 1},  # no "jsonrpc"
    {"jsonrpc": "1.0", "method": "worker.hello", "id": 1},
    {"jsonrpc": "2.0", "method": "worker.hello", "params": "x", "id": 1},
    {"jsonrpc": "2.0", "id": 1},
    [],
    42,
])
def test_invalid_request_gets_32600(server, bad):
    send(server, bad)
    msg = server.out.messages[0][1]
    assert msg["error"]["code"] == -32600
    assert msg["error"]["data"]["name"] == "invalid_request"


def test_unknown_method_gets_32601_naming_it(server):
    send(server, req("image.frobnicate"))
    err = server.out.response(1)["error"]
    assert err["code"] == -32601 and "image.frobnicate" in err["message"]
    assert err["data"]["name"] == "method_not_found"


@pytest.mark.parametrize("params, param", [
    ({"seconds": "soon"}, "seconds"),      # wrong type
    ({}, "seconds"),                       # missing
    ({"seconds": 0, "sleepy": 1}, "sleepy"),  # unknown (a typo must not be ignored)
    ({"seconds": 99}, "seconds"),          # out of range
    ([0.1], "params"),                     # positional params
])
def test_bad_params_get_32602_naming_the_parameter(server, params, param):
    send(server, req("test.sleep", params))
    err = server.out.response(1)["error"]
    assert err["code"] == -32602
    assert err["data"]["param"] == param
    assert err["data"]["name"] == "invalid_option"


def test_project_error_keeps_its_code_name_and_path(server):
    send(server, req("test.fail", {"kind": "project"}))
    err = server.out.response(1)["error"]
    assert err["code"] == 1004
    assert err["data"] == {"name": "not_dng", "code": 1004, "path": "/nowhere/x.nef"}


def test_unexpected_exception_is_internal_error_1000_and_worker_continues(server):
    send(server, req("test.fail", {"kind": "bug"}, rid=1))
    send(server, req("worker.hello", rid=2))
    err = server.out.response(1)["error"]
    assert err["code"] == 1000 and err["data"]["name"] == "internal"
    assert "RuntimeError" in err["message"]
    assert server.out.response(2)["result"]["protocol"] == 1


def test_notification_gets_no_response(server):
    send(server, {"jsonrpc": "2.0", "method": "worker.hello"})
    send(server, req("worker.hello", rid=3))
    server.out.response(3)
    assert [m for _, m in server.out.messages if "method" not in m and m.get("id") != 3] == []


def test_batch_of_two_requests_gets_two_responses(server):
    send(server, [req("worker.hello", rid=1), req("nope", rid=2)])
    deadline = time.monotonic() + 10
    while not any(isinstance(m, list) for _, m in server.out.messages):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    batch = next(m for _, m in server.out.messages if isinstance(m, list))
    by_id = {m["id"]: m for m in batch}
    assert by_id[1]["result"]["protocol"] == 1 and by_id[2]["error"]["code"] == -32601


def test_silent_long_job_still_gets_progress_twice_a_second(server):
    send(server, req("test.sleep", {"seconds": 2.0, "steps": 2, "report": False}))
    server.out.response(1, timeout_s=20)
    times = [t for t, _ in server.out.progress(1)]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) >= 4 and max(gaps) < 1.0


def test_cancel_running_job_gets_32800(server):
    send(server, req("test.sleep", {"seconds": 20, "steps": 200}))
    while not any(p["done"] > 0 for _, p in server.out.progress(1)):
        time.sleep(0.01)
    send(server, {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}})
    err = server.out.response(1, timeout_s=5)["error"]
    assert err["code"] == -32800 and err["data"]["name"] == "cancelled"


def test_cancel_queued_job_answers_32800_at_once_and_keeps_the_running_one(server):
    send(server, req("test.sleep", {"seconds": 1.0, "steps": 10}, rid=1))
    send(server, req("test.sleep", {"seconds": 1.0}, rid=2))
    send(server, req("$/cancelRequest", {"id": 2}, rid=3))
    assert server.out.response(3)["result"] == {"cancelled": True}
    assert server.out.response(2)["error"]["code"] == -32800
    assert server.out.response(1, timeout_s=10)["result"]["steps"] == 10


def test_cancel_of_unknown_id_is_harmless(server):
    send(server, req("$/cancelRequest", {"id": 999}, rid=1))
    assert server.out.response(1)["result"] == {"cancelled": False}


def test_second_long_job_is_queued_not_refused(server):
    send(server, req("test.sleep", {"seconds": 0.3}, rid=1))
    send(server, req("test.sleep", {"seconds": 0.3}, rid=2))
    r1, r2 = server.out.response(1), server.out.response(2)
    assert "result" in r1 and "result" in r2
    assert server.out.progress(2)[0][1]["message"].startswith("queued")


def test_every_error_class_maps_to_its_code():
    codes = [cls.CODE for cls in hp_errors.all_error_classes()]
    assert len(codes) == len(set(codes)), "error codes must be unique"
    for cls in hp_errors.all_error_classes():
        obj = error_object(cls("something went wrong", path="/x"))
        expected = -32602 if cls is hp_errors.InvalidOption else cls.CODE
        assert obj["code"] == expected and obj["data"]["name"] == cls.NAME and obj["data"]["path"] == "/x"


def test_too_long_line_is_discarded_and_reading_continues():
    import io

    reader = LineReader(io.BytesIO(b"x" * 5000 + b"\n" + b'{"ok":1}\n'), max_bytes=1000)
    with pytest.raises(MessageTooLong):
        reader.read_line()
    assert reader.read_line() == b'{"ok":1}'
    assert reader.read_line() is None


def test_encoded_messages_are_one_line_even_with_newlines_and_nan_inside():
    data = encode_message({"message": "two\nlines", "value": float("nan"), "path": "café"})
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data) == {"message": "two\nlines", "value": None, "path": "café"}


def test_profile_cache_evicts_least_recently_used_by_bytes():
    import numpy as np

    cache = ProfileCache(budget_bytes=3000)
    loads = []

    def loader(name):
        def load():
            loads.append(name)
            return {"excess": np.zeros(1000, np.uint8)}
        return load

    for name in ["a", "b", "c"]:
        cache.get(("lib", name), loader(name))
    cache.get(("lib", "a"), loader("a"))  # hit: a becomes most recent
    cache.get(("lib", "d"), loader("d"))  # evicts b, the least recently used
    cache.get(("lib", "b"), loader("b"))  # miss again
    assert loads == ["a", "b", "c", "d", "b"]
    assert cache.used_bytes <= 3000


def test_a_full_queue_refuses_more_work_with_busy_5002(server):
    server.max_queued = 1
    send(server, req("test.sleep", {"seconds": 1.0, "steps": 10}, rid=1))
    while not server.lanes["job"].snapshot()[0]:  # the first one is running, the queue is empty
        time.sleep(0.01)
    send(server, req("test.sleep", {"seconds": 0.1}, rid=2))  # queued
    send(server, req("test.sleep", {"seconds": 0.1}, rid=3))  # refused
    err = server.out.response(3)["error"]
    assert err["code"] == 5002 and err["data"]["name"] == "busy"
    assert "result" in server.out.response(2, timeout_s=10)


def test_protocol_doc_lists_every_method_with_an_example_and_every_error_code():
    from pathlib import Path

    from hotpixels.rpc.methods import load_methods

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for name in load_methods(test_methods=False):
        if name.startswith("$/"):
            assert f"`{name}`" in doc
            continue
        assert f"### `{name}`" in doc, f"{name} has no section in docs/protocol.md"
        section = doc.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        assert f'"method":"{name}"' in section, f"{name} has no example"
    for cls in hp_errors.all_error_classes():
        assert f"| {cls.CODE} | `{cls.NAME}`" in doc, f"error {cls.CODE} {cls.NAME} is not documented"
    for code in (-32700, -32600, -32601, -32602):
        assert f"| {code} |" in doc


def _top_level_names(cell: str) -> set[str]:
    """The parameter names of a doc table's params cell (``{paths: [str] \\| path: str, profile?: …}``):
    the leading word of each top-level item (and of an alternative after ``|`` that has a type), nested
    ``[…]``, ``{…}`` and ``(…)`` skipped."""
    text = cell.strip().strip("`").replace("\\|", "|")
    text = text[1:-1] if text.startswith("{") and text.endswith("}") else text
    items, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "[{(" and 1 or (ch in "]})" and -1 or 0)
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    names = set()
    for item in items:
        names.update(re.findall(r"(?:^|\|)\s*([A-Za-z_]+)\??\s*(?=:|$)", item.strip()))
    return names


def test_the_protocol_doc_methods_table_names_each_methods_declared_params_and_lane():
    """docs/protocol.md's "## Methods" table is what a client author reads: its params column lists
    exactly the parameters each method's ``rpc_method(params=…)`` table declares, and its lane."""
    from pathlib import Path

    from hotpixels.rpc.methods import load_methods

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    table = doc.split("## Methods", 1)[1]
    rows = {name: (lane, params) for name, lane, params in
            re.findall(r"^\| `([^`]+)` \| (\w+) \| (.*?) \| .*\|$", table, re.M)}
    for name, spec in load_methods(test_methods=False).items():
        if name.startswith("$/"):
            continue
        assert name in rows, f"{name} is not in the methods table"
        lane, params = rows[name]
        assert lane == spec.lane, f"{name}: the table says lane {lane}, the code {spec.lane}"
        assert _top_level_names(params) == set(spec.params or {}), f"{name}: the table's params {params}"


def test_test_methods_are_not_registered_in_production():
    from hotpixels.rpc.methods import load_methods

    names = set(load_methods(test_methods=False))
    assert not [n for n in names if n.startswith("test.")]
    assert {"worker.hello", "worker.shutdown", "image.inspect", "image.scanBatch", "image.correct", "profiles.create",
            "profiles.list", "profiles.get", "profiles.match", "profiles.rename", "profiles.delete", "profiles.import",
            "profiles.export", "profiles.learn", "profiles.addSites", "$/cancelRequest"} == names
