"""Hostile requests: the worker answers every line as JSON-RPC 2.0 says, with a named error, and
keeps serving.

The stories use the dispatcher in-process (fast, exact); the seeded corpus at the end sends a few
hundred generated hostile lines through one real worker process
(:mod:`hotpixels.bench.hostile_rpc`, whose thousands run in ``./run.sh bench robustness``).
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hotpixels.bench.hostile_rpc import run_hostile_rpc
from hotpixels.rpc.client import WorkerClient
from hotpixels.rpc.server import Server
from hotpixels.rpc.transports import pipe_transport
from test_rpc_dispatch import req, send, server  # noqa: F401 - the in-process server fixture

STRICT = {"parse_constant": lambda token: (_ for _ in ()).throw(ValueError(token))}


def messages(srv):
    return [m for _, m in srv.out.messages if not (isinstance(m, dict) and "method" in m)]


def answers_after(srv, line: bytes, count: int = 0, timeout_s: float = 10.0) -> list:
    """The responses the server writes for ``line``: at least ``count`` of them, and all it wrote by
    the time an inline ping sent after it is answered."""
    before = len(messages(srv))
    send(srv, line)
    ping = f"ping-{before}"
    send(srv, req("$/cancelRequest", {"id": ping}, rid=ping))
    srv.out.response(ping, timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        got = [m for m in messages(srv)[before:] if not (isinstance(m, dict) and m.get("id") == ping)]
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.01)


# --- a photographer's plug-in never sends these, but a broken or hostile client might ------------
@pytest.mark.parametrize("line", [
    b"[" * 1000 + b"]" * 1000,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b"[" * (1 << 20),  # a 1 MiB line of "[", never closed
    b'{"jsonrpc":"2.0","id":1,"method":"worker.hello","params":{"client":' + b"[" * 100 + b"]" * 100 + b"}}",
], ids=["1000-deep", "100000-deep", "5000-deep-objects", "1MiB-of-[", "deep-params"])
def test_deeply_nested_lines_get_a_clear_32600_and_the_worker_keeps_serving(server, line):
    (answer,) = answers_after(server, line)
    assert answer["id"] is None and answer["error"]["code"] == -32600
    assert answer["error"]["data"]["name"] == "too_deep" and "nested deeper" in answer["error"]["message"]
    send(server, req("worker.hello", rid="after"))
    assert server.out.response("after")["result"]["protocol"] == 1


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"])
def test_nan_and_infinity_are_not_json_and_get_32700(server, token):
    line = b'{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"seconds":' + token + b"}}"
    (answer,) = answers_after(server, line)
    assert answer["id"] is None and answer["error"]["code"] == -32700
    assert answer["error"]["data"]["name"] == "parse_error"


def test_an_empty_batch_is_one_invalid_request_error_not_an_array(server):
    (answer,) = answers_after(server, b"[]")
    assert isinstance(answer, dict) and answer["error"]["code"] == -32600 and answer["id"] is None


def test_a_batch_of_non_requests_gets_an_array_with_one_error_each(server):
    (answer,) = answers_after(server, b"[1,2]")
    assert isinstance(answer, list) and len(answer) == 2
    assert all(a["error"]["code"] == -32600 and a["id"] is None for a in answer)


def test_a_batch_of_notifications_gets_nothing(server):
    note = {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 7}}
    assert answers_after(server, json.dumps([note, note]).encode()) == []


def test_a_mixed_batch_answers_its_requests_and_invalid_members_in_one_array(server):
    batch = [req("worker.hello", rid=1), {"jsonrpc": "2.0", "method": "worker.hello"}, 3,
             req("test.sleep", {"seconds": 0.05}, rid=2), req("nope", rid=4)]
    (answer,) = answers_after(server, json.dumps(batch).encode(), count=1)
    assert isinstance(answer, list)
    by_id = {a["id"]: a for a in answer if a["id"] is not None}
    assert by_id[1]["result"]["protocol"] == 1 and by_id[2]["result"]["steps"] == 10
    assert by_id[4]["error"]["code"] == -32601
    assert [a["error"]["code"] for a in answer if a["id"] is None] == [-32600]


def test_an_invalid_request_without_id_is_still_answered_but_a_valid_notification_is_not(server):
    (answer,) = answers_after(server, b'{"jsonrpc":"2.0","method":1,"params":"bar"}')
    assert answer["error"]["code"] == -32600 and answer["id"] is None
    assert answers_after(server, b'{"jsonrpc":"2.0","method":"image.inspect","params":{"path":"/proc/kmsg"}}') == []


@pytest.mark.parametrize("request_id", [{"a": 1}, [1], True, "i" * 300])
def test_an_id_that_is_not_a_string_number_or_null_is_an_invalid_request(server, request_id):
    line = json.dumps({"jsonrpc": "2.0", "method": "worker.hello", "id": request_id}).encode()
    (answer,) = answers_after(server, line)
    assert answer["error"]["code"] == -32600 and answer["id"] is None


def test_a_lone_surrogate_in_a_parameter_is_refused_and_the_reply_is_valid_utf8(server):
    line = b'{"jsonrpc":"2.0","id":"\\ud800","method":"image.inspect","params":{"path":"\\ud800.dng"}}'
    (answer,) = answers_after(server, line, count=1)
    assert answer["id"] == "\ud800" and answer["error"]["code"] == -32602
    assert answer["error"]["data"]["param"] == "path"


# --- every parameter is checked before any work: -32602 / 1001 / 1002 naming it -------------------
@pytest.fixture()
def hostile_files(tmp_path):
    fifo = tmp_path / "pipe.dng"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.dng"
    os.symlink(tmp_path / "loop2.dng", loop)
    os.symlink(loop, tmp_path / "loop2.dng")
    junk = tmp_path / "junk.dng"
    junk.write_bytes(b"not a photo")
    return {"fifo": str(fifo), "loop": str(loop), "junk": str(junk), "dir": str(tmp_path)}


HOSTILE_PARAMS = [
    # (method, params, code, param)
    ("image.inspect", {"path": "{dir}/" + "n" * 256 + ".dng"}, 1002, "path"),
    ("image.inspect", {"path": "/" + "/".join(["d" * 200] * 25)}, 1002, "path"),
    ("image.inspect", {"path": "/sys/kernel/mm/transparent_hugepage/enabled"}, 1002, "path"),
    ("image.inspect", {"path": "/proc/self/status"}, 1002, "path"),
    ("image.inspect", {"path": "/proc/kmsg"}, 1002, "path"),
    ("image.inspect", {"path": "/dev/zero"}, 1002, "path"),
    ("image.inspect", {"path": "{loop}"}, 1002, "path"),
    ("image.inspect", {"path": "{fifo}"}, 1002, "path"),
    ("image.inspect", {"path": "{dir}"}, 1002, "path"),
    ("image.inspect", {"path": "{dir}/missing.dng"}, 1001, "path"),
    ("image.inspect", {"path": "{junk}/below-a-file.dng"}, 1001, "path"),
    ("image.inspect", {"path": "a\u0000b.dng"}, -32602, "path"),
    ("image.inspect", {"path": 42}, -32602, "path"),
    ("image.inspect", {}, -32602, "path"),
    ("image.correct", {"path": "{junk}", "sensitivity": 1e308}, -32602, "sensitivity"),
    ("image.correct", {"path": "{junk}", "sensitivity": True}, -32602, "sensitivity"),
    ("image.correct", {"path": "{junk}", "suffix": "_" + "s" * 299}, -32602, "suffix"),
    ("image.correct", {"path": "{junk}", "suffix": "/../escape"}, -32602, "suffix"),
    ("image.correct", {"path": "{junk}", "stages": ["dark", 7]}, -32602, "stages"),
    ("image.correct", {"path": "{junk}", "output_dir": "{fifo}"}, 1011, "output_dir"),
    ("image.correct", {"path": "{junk}", "output_dir": "{loop}"}, 1011, "output_dir"),
    ("image.correct", {"path": "{junk}", "report_dir": "/proc/self"}, 1011, "report_dir"),
    ("image.correct", {"path": "{junk}", "library": "{loop}"}, 1002, "library"),
    ("image.correct", {"path": "{junk}", "profile": "x\u0000y"}, -32602, "profile"),
    ("image.correct", {"path": "{junk}", "sensitivty": 0.5}, -32602, "sensitivty"),
    ("image.correct", {"paths": "{junk}"}, -32602, "paths"),
    ("profiles.create", {"paths": ["{fifo}"], "name": "x"}, 1002, "paths"),
    ("profiles.create", {"paths": ["{junk}"], "name": "x", "threshold": -1e308}, -32602, "threshold"),
    ("profiles.get", {"name": "x" * 300}, -32602, "name"),
    ("profiles.get", {"name": ["x"]}, -32602, "name"),
    ("profiles.list", {"library": "/sys/kernel"}, 1002, "library"),
    ("profiles.match", {"path": "{fifo}"}, 1002, "path"),
    ("profiles.import", {"path": "/proc/self/environ"}, 1002, "path"),
    ("worker.hello", {"protocol": 1e300}, -32602, "protocol"),
    ("worker.hello", {"protocol": "1"}, -32602, "protocol"),
    ("$/cancelRequest", {"id": {"a": 1}}, -32602, "id"),
    ("test.sleep", {"seconds": 1e308}, -32602, "seconds"),
]


@pytest.mark.parametrize("method, params, code, param", HOSTILE_PARAMS,
                         ids=[f"{m}-{p}-{i}" for i, (m, _, _, p) in enumerate(HOSTILE_PARAMS)])
def test_a_hostile_parameter_gets_a_named_error_naming_it(server, hostile_files, method, params, code, param):
    system = [v for v in params.values() if isinstance(v, str) and v.startswith(("/sys", "/proc", "/dev"))]
    if system and not os.path.exists(system[0]):
        pytest.skip(f"{system[0]} does not exist on this system")
    params = json.loads(json.dumps(params).replace("{dir}", hostile_files["dir"]).replace(
        "{fifo}", hostile_files["fifo"]).replace("{loop}", hostile_files["loop"]).replace("{junk}", hostile_files["junk"]))
    send(server, req(method, params, rid=1))
    err = server.out.response(1)["error"]
    assert err["code"] == code and err["data"]["param"] == param, err
    assert err["data"]["name"] != "internal"


def test_a_fifo_answers_1002_at_once_and_the_job_lane_stays_free(server, hostile_files):
    send(server, req("image.correct", {"path": hostile_files["fifo"]}, rid=1))
    result = server.out.response(1, timeout_s=10)["result"]["results"][0]
    assert result["ok"] is False and result["error"]["code"] == 1002
    send(server, req("test.sleep", {"seconds": 0.05}, rid=2))  # the next job runs: nothing is stuck
    assert server.out.response(2, timeout_s=10)["result"]["steps"] == 10


def test_a_new_method_declares_a_list_of_objects_and_gets_the_same_checks():
    from hotpixels.errors import InvalidOption
    from hotpixels.rpc.params import Number, Objects, Str, validate

    table = {"name": Str(required=True, max_chars=200),
             "sites": Objects(required=True, fields={"y": Number(lo=0, integer=True, required=True),
                                                     "x": Number(lo=0, integer=True, required=True),
                                                     "excess_dn": Number(lo=0)})}
    ok = validate(table, {"name": "R6", "sites": [{"y": 3, "x": 4.0, "excess_dn": 88.5}]}, "profiles.addSites")
    assert ok["sites"] == [{"y": 3, "x": 4, "excess_dn": 88.5}]
    for sites, field in [([{"y": 3}], "x"), ([{"y": 3, "x": -1}], "x"), ([{"y": 1e308, "x": 0}], "y"),
                         ([{"y": 3, "x": 4, "colour": "red"}], "colour"), ([7], None), ([], None)]:
        with pytest.raises(InvalidOption) as caught:
            validate(table, {"name": "R6", "sites": sites}, "profiles.addSites")
        assert caught.value.data["param"] == "sites" and caught.value.data.get("field") == field


def test_a_name_too_long_with_its_suffix_is_a_named_error_before_anything_is_written(tmp_path):
    from hotpixels.correct.pipeline import CorrectOptions, output_path
    from hotpixels.errors import DestinationUnwritable

    long_stem = tmp_path / ("s" * 200 + ".dng")
    with pytest.raises(DestinationUnwritable) as caught:
        output_path(long_stem, CorrectOptions(suffix="_" + "x" * 63))
    assert caught.value.data["param"] == "suffix" and "shorter suffix" in caught.value.message
    assert output_path(long_stem, CorrectOptions(suffix="_hp")).name == "s" * 200 + "_hp.dng"
    assert list(tmp_path.iterdir()) == []


# --- reports are strict JSON ------------------------------------------------------------------------
def test_a_report_with_a_nan_figure_is_still_valid_json(tmp_path):
    from hotpixels.correct.report import SiteChanges, write_report

    paths = write_report(tmp_path / "IMG_hotpixels.dng", {"scale": float("nan"), "ratio": np.float32("inf"),
                                                          "ok": 1.5}, SiteChanges())
    body = json.loads(Path(paths["report"]).read_text(), **STRICT)
    assert body["scale"] is None and body["ratio"] is None and body["ok"] == 1.5


# --- life cycle --------------------------------------------------------------------------------------
def test_the_worker_exits_when_its_input_closes_even_while_a_silent_job_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTPIXELS_WORKER_PRELOAD", "0")
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    srv = Server(pipe_transport(os.fdopen(to_r, "rb"), os.fdopen(from_w, "wb")), test_methods=True)
    srv.eof_stall_s = 1.0
    rc = {}
    thread = threading.Thread(target=lambda: rc.setdefault("rc", srv.serve()), daemon=True)
    thread.start()
    client = WorkerClient(os.fdopen(from_r, "rb"), os.fdopen(to_w, "wb"))
    job = client.request("test.sleep", {"seconds": 60, "steps": 600, "report": False})
    client.wait_for(lambda m: m["params"].get("id") == job and m["params"]["message"] == "started")
    client.close_input()
    thread.join(30)
    assert not thread.is_alive() and rc["rc"] == 0
    assert client.wait(job)["error"]["code"] == -32800


def test_queued_work_still_finishes_after_end_of_input(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTPIXELS_WORKER_PRELOAD", "0")
    srv = Server(pipe_transport(io.BytesIO(
        b'{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"seconds":0.2}}\n'
        b'{"jsonrpc":"2.0","id":2,"method":"test.sleep","params":{"seconds":0.2}}\n'), _Sink()), test_methods=True)
    assert srv.serve() == 0
    done = [json.loads(line) for line in srv.transport.writer.lines if b'"result"' in line]
    assert sorted(m["id"] for m in done) == [1, 2]


def test_a_fifo_then_end_of_input_a_real_worker_answers_1002_and_exits_0(hostile_files, tmp_path):
    import sys

    env = dict(os.environ, HOTPIXELS_WORKER_PRELOAD="0", HOTPIXELS_LIBRARY=hostile_files["loop"],
               HOTPIXELS_REPORTS=str(tmp_path / "reports"))
    client = WorkerClient.spawn([sys.executable, "-m", "hotpixels.rpc.cli", "--stdio"], env=env)
    try:
        rid = client.request("image.correct", {"paths": [hostile_files["fifo"], hostile_files["junk"]]})
        client.close_input()
        results = client.wait(rid, timeout_s=60)["result"]["results"]
        assert [r["error"]["code"] for r in results][0] == 1002 and not results[1]["ok"]
        assert client.wait_exit(60) == 0
    finally:
        client.kill()


def test_a_default_library_in_a_symlink_loop_still_lets_the_worker_answer(server, hostile_files):
    server.state.default_library = hostile_files["loop"]  # e.g. HOTPIXELS_LIBRARY pointing at a loop
    send(server, req("worker.hello", rid=1))
    assert server.out.response(1)["result"]["library"] == os.path.realpath(hostile_files["loop"])
    send(server, req("profiles.list", rid=2))
    assert server.out.response(2)["result"]["profiles"] == []


class _Sink:
    def __init__(self):
        self.lines: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.lines.append(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


# --- the seeded corpus through one real worker process ---------------------------------------------
def test_a_seeded_corpus_of_hostile_lines_gets_only_valid_answers_from_one_worker(tmp_path):
    result = run_hostile_rpc(250, seed=12, workdir=tmp_path)
    assert result["notes"] == [], result["notes"]
    assert result["lines"] == 250 and result["responses_ok"] == 250
    assert result["crashes"] == 0 and result["hangs"] == 0 and result["errors_1000"] == 0
    assert result["exit_status"] == 0
