"""Hostile JSON-RPC lines through one real worker process: the protocol half of the fuzz suite.

:func:`run_hostile_rpc` starts ``hotpixels-worker --stdio`` (as ``python -m hotpixels.rpc.cli``),
sends ``n_lines`` lines made by a seeded generator — bad JSON, bad UTF-8, deep nesting, huge
lines, invalid batches, NaN/Infinity, wrong types, and hostile parameters (NUL characters, lone
surrogates, over-long names and paths, a 300-character suffix, files under ``/proc`` and ``/sys``,
a FIFO, a symlink loop, a folder, huge and non-finite numbers, unknown parameters) for every
registered method but ``worker.shutdown`` (mostly its own parameters, from its table) — one at a time, and checks what comes back against the JSON-RPC
2.0 rules:

* a request (even a malformed one) gets exactly one response, its id or ``null``; a notification
  gets none; a batch gets one array with one response per request (an empty batch: one error);
* every line the worker writes is UTF-8, strict JSON (no ``NaN``), ``"jsonrpc": "2.0"``, and an
  error carries ``{code, message, data: {name}}``;
* no error is 1000 (``internal``: a bug), neither for a call nor for one image of a result;
* the worker neither dies (``crashes``: it is restarted and the run goes on) nor stays silent
  for :data:`LINE_TIMEOUT_S` (``hangs``: it is killed and restarted), and it exits 0 when its input
  closes at the end.

Each line is answered before the next is sent (a notification is followed by an inline
``$/cancelRequest`` ping), so every message the worker writes is attributed to one line.
``./run.sh bench robustness`` calls this with >= 1,000 lines; ``tests/python/test_rpc_hostile.py``
runs a small seeded corpus.
"""

from __future__ import annotations

import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

LINE_TIMEOUT_S = 20.0  # no answer to one line within this: a hang
EXIT_TIMEOUT_S = 30.0
MAX_NOTES = 20
SILENT, REPLY, BATCH = "silent", "reply", "batch"


@dataclass
class Line:
    """One line to send and what the JSON-RPC 2.0 rules expect back."""

    data: bytes
    expect: str  # SILENT, REPLY (one response object) or BATCH (one array of ``count`` responses)
    request_id: Any = None  # the id a REPLY must carry (None: id null, or either when ``any_id``)
    count: int = 0
    any_id: bool = False  # REPLY: the id, or null when the server finds the request invalid
    label: str = ""


# --- the worker ---------------------------------------------------------------------------------
class Worker:
    """One ``hotpixels-worker --stdio`` process and a thread filing its output lines."""

    def __init__(self, workdir: Path):
        env = dict(os.environ)
        worker_dir = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = worker_dir + os.pathsep + env.get("PYTHONPATH", "")
        env.update({"HOTPIXELS_WORKER_PRELOAD": "0", "HOTPIXELS_LIBRARY": str(workdir / "library"),
                    "HOTPIXELS_REPORTS": str(workdir / "reports"), "HOTPIXELS_WORKER_TEST_METHODS": "0"})
        self.stderr = open(workdir / "worker.stderr.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "hotpixels.rpc.cli", "--stdio"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env, cwd=str(workdir))
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw)
        self.lines.put(None)

    def send(self, data: bytes) -> bool:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def next_message(self, timeout_s: float) -> tuple[str, Any]:
        """``("msg", obj)``, ``("bad", text)`` for a line that breaks the framing rules,
        ``("eof", None)`` or ``("timeout", None)``."""
        try:
            raw = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            return "timeout", None
        if raw is None:
            return "eof", None
        problem = framing_problem(raw)
        if problem:
            return "bad", problem
        return "msg", json.loads(raw, parse_constant=_refuse)

    def close(self, timeout_s: float = EXIT_TIMEOUT_S) -> int | None:
        """Close the input; the exit status, or None when it did not exit in time (then killed)."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self.stderr.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _refuse(token: str) -> Any:
    raise ValueError(f"{token} in the worker's output")


def framing_problem(raw: bytes) -> str | None:
    """What is wrong with one output line (None: a well-formed message)."""
    if not raw.endswith(b"\n") or raw.count(b"\n") != 1:
        return "a message not ending in exactly one newline"
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_refuse)
    except (UnicodeDecodeError, ValueError) as exc:
        return f"not strict UTF-8 JSON: {exc}"
    for msg in obj if isinstance(obj, list) else [obj]:
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
            return "a message without \"jsonrpc\": \"2.0\""
        if "method" in msg:
            continue
        if ("result" in msg) == ("error" in msg) or "id" not in msg:
            return "a response without exactly one of result/error, or without id"
        err = msg.get("error")
        if err is not None and not (isinstance(err, dict) and isinstance(err.get("code"), int)
                                    and isinstance(err.get("message"), str)
                                    and isinstance((err.get("data") or {}).get("name"), str)):
            return f"an error without code/message/data.name: {str(err)[:200]}"
    return None


def internal_errors(obj: Any) -> int:
    """How many error objects with code 1000 ``obj`` holds (responses, per-image results)."""
    stack, found = [obj], 0
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if value.get("code") == 1000 and ("message" in value or "name" in value):
                found += 1
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


# --- the generator --------------------------------------------------------------------------------
class Hostile:
    """Seeded maker of hostile lines; the files it points at live in ``workdir``."""

    NEVER = ("worker.shutdown",)  # it would end the run
    PARAMS = ["path", "paths", "name", "new_name", "library", "output_dir", "report_dir", "suffix", "profile",
              "sensitivity", "threshold", "stages", "force", "batch", "batch_id", "tracked", "overwrite",
              "allow_mismatch", "keep_master", "protocol", "client", "id", "sites", "update"]

    def __init__(self, seed: int, workdir: Path):
        from ..rpc.methods import load_methods

        self.rng = random.Random(seed)
        self.next_id = 0
        self.files = make_hostile_files(workdir)
        # each method's own parameter names, so that most hostile values reach its real checks
        self.own = {name: sorted(spec.params or ()) for name, spec in load_methods(False).items()}
        self.methods = sorted(name for name in self.own if name not in self.NEVER)  # every method, new ones too

    def _id(self) -> Any:
        self.next_id += 1
        return self.rng.choice([self.next_id, f"h{self.next_id}"])

    # values ------------------------------------------------------------------------------------
    def hostile_path(self) -> str:
        f, r = self.files, self.rng
        return r.choice([
            f["fifo"], f["loop"], f["folder"], f["junk"], f["empty"], f["missing"],
            "/proc/self/status", "/proc/kmsg", "/proc/self/mem", "/sys/kernel/mm/transparent_hugepage/enabled",
            "/sys/power/state", "/dev/zero", "/dev/null", "/dev/urandom", "/dev/stdin",
            str(Path(f["folder"]) / ("n" * 256)), "/" + "/".join(["d" * 200] * 25), "a\0b.dng", f["junk"] + "\0",
            "\ud800.dng", "", " ", "~/../../etc/passwd", f["loop"] + "/x.dng", f["junk"] + "/x.dng",
        ])

    def hostile_value(self) -> Any:
        r = self.rng
        choice = r.randrange(14)
        if choice < 5:
            return self.hostile_path()
        return [
            lambda: "x" * r.choice([300, 5000, 70000]), lambda: "_" + "s" * 299, lambda: 10 ** r.choice([3, 30, 300]),
            lambda: -1e308, lambda: r.choice([True, False, None]), lambda: [self.hostile_path() for _ in range(3)],
            lambda: {"nested": {"deeper": [1, 2, {"x": None}]}}, lambda: r.choice([0.5, 1, 0, -0.0, 2.5e-324]),
            lambda: [r.choice(["dark", "hot", "residual", "bogus", 7])],
        ][choice - 5]()

    def hostile_params(self, method: str) -> dict[str, Any]:
        """1-4 of the method's own parameters (sometimes another method's, or an unknown one), each
        with a hostile value; a valid value for the others half of the time."""
        r = self.rng
        own = self.own.get(method) or self.PARAMS
        names = r.sample(own, min(len(own), r.randint(1, 4)))
        if r.random() < 0.15:
            names.append(r.choice(self.PARAMS + ["no_such_" + str(r.randrange(100))]))
        params = {name: self.hostile_value() if r.random() < 0.6 else self.plausible_value(name) for name in names}
        if method == "image.correct" and "path" in params and "paths" in params and r.random() < 0.7:
            del params["paths"]
        return params

    def plausible_value(self, name: str) -> Any:
        """A value of the right form for a parameter of this name, so that the hostile ones beside
        it are the ones checked."""
        f = self.files
        values = {"path": f["junk"], "paths": [f["junk"], f["empty"]], "name": "hostile", "new_name": "renamed",
                  "library": str(Path(f["folder"]) / "library"), "output_dir": str(Path(f["folder"]) / "out"),
                  "report_dir": str(Path(f["folder"]) / "reports"), "suffix": "_hp", "profile": None,
                  "sensitivity": 0.5, "threshold": 5.0, "stages": ["dark", "hot"], "batch": "off", "protocol": 1,
                  "client": "hostile", "id": 12345}
        return values.get(name, self.rng.choice([True, False]))

    # lines -------------------------------------------------------------------------------------
    def request(self, method: str, params: Any, *, notification: bool = False) -> tuple[dict, Any]:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        rid = None
        if not notification:
            rid = self._id()
            msg["id"] = rid
        return msg, rid

    def line(self) -> Line:
        makers: list[tuple[int, Callable[[], Line]]] = [
            (30, self.hostile_call), (8, self.bad_json), (5, self.bad_utf8), (6, self.deep), (3, self.huge),
            (8, self.bad_batch), (5, self.non_finite), (8, self.bad_envelope), (5, self.notification),
            (4, self.unknown_method), (6, self.valid_call),
        ]
        total = sum(w for w, _ in makers)
        pick = self.rng.randrange(total)
        for weight, make in makers:
            if pick < weight:
                return make()
            pick -= weight
        raise AssertionError("unreachable")

    def hostile_call(self) -> Line:
        method = self.rng.choice(self.methods)
        msg, rid = self.request(method, self.hostile_params(method))
        return Line(dumps(msg), REPLY, rid, label=f"hostile params {method}")

    def valid_call(self) -> Line:
        f = self.files
        method, params = self.rng.choice([
            ("worker.hello", {"protocol": 1, "client": "hostile"}), ("profiles.list", {}),
            ("image.inspect", {"path": f["fifo"]}), ("image.correct", {"path": f["fifo"]}),
            ("image.correct", {"paths": [f["junk"], f["fifo"], f["loop"], "/proc/self/status"]}),
            ("image.scanBatch", {"paths": [f["junk"], f["fifo"]]}), ("profiles.match", {"path": f["junk"]}),
            ("profiles.create", {"paths": [f["fifo"]], "name": "x"}), ("profiles.import", {"path": f["junk"]}),
        ])
        msg, rid = self.request(method, params)
        return Line(dumps(msg), REPLY, rid, label=f"plausible {method}")

    def bad_json(self) -> Line:
        r = self.rng
        good = dumps(self.request(r.choice(self.methods), {"path": self.files["junk"]})[0])
        data = r.choice([
            good[: r.randrange(1, len(good))], b"{oops", b"{'jsonrpc': '2.0'}", b'{"jsonrpc":"2.0",}', b"nul",
            b'{"a":1}{"b":2}', b'"\\x41"', b"[1,2,", bytes(r.randrange(32, 127) for _ in range(r.randint(1, 200))),
            good.replace(b":", b"=", 1), b'{"jsonrpc":"2.0","method":"worker.hello","id":01}',
        ])
        return Line(data.replace(b"\n", b" ").replace(b"\r", b" ") or b"x", REPLY, None, label="bad JSON")

    def bad_utf8(self) -> Line:
        r = self.rng
        good = dumps(self.request("image.inspect", {"path": "photo.dng"})[0])
        at = good.index(b"photo")
        junk = r.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80"])
        return Line(good[:at] + junk + good[at:], REPLY, None, label="bad UTF-8")

    def deep(self) -> Line:
        r = self.rng
        n = r.choice([65, 200, 999, 1000, 1001, 5000, 100_000])
        form = r.randrange(4)
        if form == 0:
            data = b"[" * n + b"]" * n
        elif form == 1:
            data = b'{"a":' * n + b"1" + b"}" * n
        elif form == 2:
            data = b"[" * n  # never closed
        else:
            inner = b"[" * n + b"]" * n
            rid = self._id()
            head = dumps({"jsonrpc": "2.0", "id": rid, "method": "worker.hello", "params": {"client": "X"}})
            data = head.replace(b'"X"', inner)
            return Line(data, REPLY, rid, any_id=True, label=f"params nested {n} deep")
        return Line(data, REPLY, None, label=f"nested {n} deep")

    def huge(self) -> Line:
        r = self.rng
        size = r.choice([1 << 20, 1 << 20, 4 << 20, (16 << 20) + 10])
        if r.random() < 0.5:
            return Line(b"[" * size, REPLY, None, label=f"{size} bytes of [")
        msg, rid = self.request("image.inspect", {"path": "p" * size})
        expect_id = None if size > 16 << 20 else rid
        return Line(dumps(msg), REPLY, expect_id, label=f"a {size}-byte string")

    def bad_batch(self) -> Line:
        r = self.rng
        form = r.randrange(6)
        if form == 0:
            return Line(b"[]", REPLY, None, label="empty batch")
        if form == 1:
            items = [r.choice([1, "x", None, True, [], {}]) for _ in range(r.randint(1, 5))]
            return Line(dumps(items), BATCH, count=len(items), label="batch of non-requests")
        if form == 2:
            items = [self.request("$/cancelRequest", {"id": 1}, notification=True)[0] for _ in range(r.randint(1, 4))]
            return Line(dumps(items), SILENT, label="batch of notifications")
        if form == 3:
            return Line(dumps([{"jsonrpc": "2.0", "method": "profiles.list", "id": i} for i in range(1001)]),
                        REPLY, None, label="batch over the limit")
        members, count = [], 0
        for _ in range(r.randint(1, 6)):
            kind = r.randrange(4)
            if kind == 0:
                members.append(r.choice([1, "x", {"jsonrpc": "1.0", "method": "worker.hello", "id": 3}]))
                count += 1
            elif kind == 1:
                members.append(self.request("worker.hello", None, notification=True)[0])
            else:
                method = r.choice(self.methods)
                members.append(self.request(method, self.hostile_params(method))[0])
                count += 1
        expect = BATCH if count else SILENT
        return Line(dumps(members), expect, count=count, label="mixed batch")

    def non_finite(self) -> Line:
        r = self.rng
        token = r.choice([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"])
        field = r.choice(["sensitivity", "threshold", "protocol", "id"])
        rid = self._id()
        if field == "id":
            data = b'{"jsonrpc":"2.0","id":' + token + b',"method":"worker.hello"}'
        else:
            data = dumps({"jsonrpc": "2.0", "id": rid, "method": "image.correct",
                          "params": {"path": self.files["junk"], field: "X"}}).replace(b'"X"', token)
        return Line(data, REPLY, None, label=f"{token.decode()} as {field}")

    def bad_envelope(self) -> Line:
        r = self.rng
        msg = r.choice([
            {"jsonrpc": "2.0", "method": 1, "params": "bar"}, {"jsonrpc": "1.0", "method": "worker.hello", "id": 5},
            {"method": "worker.hello", "id": 5}, {"jsonrpc": "2.0", "id": 5},
            {"jsonrpc": "2.0", "method": "worker.hello", "id": {"a": 1}},
            {"jsonrpc": "2.0", "method": "worker.hello", "id": [1]}, {"jsonrpc": "2.0", "method": "worker.hello", "id": True},
            {"jsonrpc": "2.0", "method": "worker.hello", "id": "i" * 300},
            {"jsonrpc": "2.0", "method": "worker.hello", "params": "x", "id": 5},
            {"jsonrpc": "2.0", "method": "worker.hello", "params": 3}, {"jsonrpc": 2.0, "method": "worker.hello"},
            {"jsonrpc": "2.0", "method": None, "id": 9}, 42, "a string", None, True,
        ])
        return Line(dumps(msg), REPLY, None, label="not a JSON-RPC request")

    def notification(self) -> Line:
        method = self.rng.choice([m for m in self.methods if m != "image.correct"] + ["no.such.method"])
        msg, _ = self.request(method, self.hostile_params(method), notification=True)
        return Line(dumps(msg), SILENT, label=f"notification {method}")

    def unknown_method(self) -> Line:
        name = self.rng.choice(["rpc.discover", "image.frobnicate", "", "m" * 20000, "worker.hello\0", "\ud800"])
        msg, rid = self.request(name, None)
        return Line(dumps(msg), REPLY, rid, label="unknown method")


def dumps(obj: Any) -> bytes:
    """Compact JSON as UTF-8 (lone surrogates kept as ``\\ud800`` escapes, which JSON allows)."""
    return json.dumps(obj, separators=(",", ":")).encode("ascii")


def make_hostile_files(workdir: Path) -> dict[str, str]:
    """A FIFO, a symlink loop, a folder, a junk file, an empty file, a missing name under ``workdir``."""
    d = workdir / "hostile"
    d.mkdir(parents=True, exist_ok=True)
    files = {"fifo": d / "pipe.dng", "loop": d / "loop_a.dng", "folder": d / "folder.dng", "junk": d / "junk.dng",
             "empty": d / "empty.dng", "missing": d / "missing.dng"}
    if not files["fifo"].exists() and hasattr(os, "mkfifo"):
        os.mkfifo(files["fifo"])
    if not files["loop"].is_symlink():
        os.symlink(d / "loop_b.dng", files["loop"])
        os.symlink(files["loop"], d / "loop_b.dng")
    files["folder"].mkdir(exist_ok=True)
    files["junk"].write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    files["empty"].write_bytes(b"")
    return {k: str(v) for k, v in files.items()}


# --- the run ------------------------------------------------------------------------------------------
def run_hostile_rpc(n_lines: int, seed: int, workdir: Path) -> dict[str, Any]:
    """Send ``n_lines`` hostile lines (seeded) through one worker; see the module docstring.

    Returns ``{lines, responses_ok, crashes, hangs, errors_1000, notes, codes, seconds, exit_status}``;
    ``responses_ok`` counts the lines whose answer followed the rules exactly (a -32602 must name its
    ``data.param``), ``codes`` how many responses carried each error code (``"result"``: success).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    gen = Hostile(seed, workdir)
    out: dict[str, Any] = {"lines": 0, "responses_ok": 0, "crashes": 0, "hangs": 0, "errors_1000": 0, "notes": [],
                           "codes": {}}
    t0 = time.monotonic()
    worker = Worker(workdir)
    for i in range(n_lines):
        line = gen.line()
        verdict = _exchange(worker, line, i, out)
        out["lines"] += 1
        if verdict == "ok":
            out["responses_ok"] += 1
            continue
        _note(out, f"line {i} ({line.label}): {verdict}")
        if verdict in ("crash", "hang"):
            out["crashes" if verdict == "crash" else "hangs"] += 1
            worker.kill()
            worker = Worker(workdir)
    status = worker.close()
    out["exit_status"] = status
    if status != 0:
        out["hangs" if status is None else "crashes"] += 1
        _note(out, f"after end of input the worker {'did not exit' if status is None else f'exited {status}'}")
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def _note(out: dict[str, Any], text: str) -> None:
    if len(out["notes"]) < MAX_NOTES:
        out["notes"].append(text[:300])


def _exchange(worker: Worker, line: Line, index: int, out: dict[str, Any]) -> str:
    """Send one line and judge what comes back: ``"ok"``, ``"crash"``, ``"hang"`` or what was wrong."""
    if not worker.send(line.data + b"\n"):
        return "crash"
    ping = None
    if line.expect == SILENT:
        ping = f"ping-{index}"
        worker.send(dumps({"jsonrpc": "2.0", "id": ping, "method": "$/cancelRequest", "params": {"id": ping}}) + b"\n")
    deadline = time.monotonic() + LINE_TIMEOUT_S  # progress messages do not extend it
    while True:
        kind, msg = worker.next_message(max(0.0, deadline - time.monotonic()))
        if kind == "timeout":
            return "hang"
        if kind == "eof":
            return "crash"
        if kind == "bad":
            return f"bad output line: {msg}"
        out["errors_1000"] += internal_errors(msg)
        if isinstance(msg, dict) and "method" in msg:
            continue  # $/progress and friends
        for response in msg if isinstance(msg, list) else [msg]:
            err = response.get("error") or {}
            code = str(err.get("code", "result"))
            out["codes"][code] = out["codes"].get(code, 0) + 1
            if err.get("code") == -32602 and "param" not in (err.get("data") or {}):
                return f"-32602 without data.param: {json.dumps(response)[:200]}"
        if internal_errors(msg):
            return f"error 1000: {json.dumps(msg)[:200]}"
        if line.expect == SILENT:
            if isinstance(msg, dict) and msg.get("id") == ping:
                return "ok"
            return f"a notification was answered: {json.dumps(msg)[:200]}"
        if line.expect == BATCH:
            if not isinstance(msg, list):
                return f"a batch got {json.dumps(msg)[:200]} instead of an array"
            if len(msg) != line.count:
                return f"a batch got {len(msg)} responses instead of {line.count}"
            return "ok"
        if not isinstance(msg, dict):
            return f"one request got {json.dumps(msg)[:200]}"
        wanted = [line.request_id] + ([None] if line.any_id else [])
        if msg.get("id") not in wanted:
            return f"a response with id {msg.get('id')!r}, expected {line.request_id!r}"
        return "ok"


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="hostile JSON-RPC lines through one worker")
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hp-hostile-") as tmp:
        result = run_hostile_rpc(args.lines, args.seed, Path(tmp))
    print(json.dumps(result, indent=2))
    bad = result["crashes"] + result["hangs"] + result["errors_1000"] + (result["lines"] - result["responses_ok"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
