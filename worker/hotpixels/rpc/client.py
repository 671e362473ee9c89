"""A small Python client for the worker (tests, benchmarks, and any Python host).

It speaks the same newline-delimited JSON-RPC as the Lightroom plugin: requests go out as single
lines; a reader thread files responses by id and keeps notifications (``$/progress``) with their
arrival time (``time.monotonic()``), so callers can check progress cadence.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
import time
from typing import Any, BinaryIO, Callable

from .errors import exception_from_wire
from .framing import encode_message


class WorkerGone(Exception):
    """The worker closed its output before answering."""


class WorkerClient:
    """Talk to a worker over a binary reader (its output) and writer (its input)."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO, process: subprocess.Popen | None = None):
        self.reader = reader
        self.writer = writer
        self.process = process
        self.responses: dict[Any, dict] = {}
        self.orphans: list[dict] = []  # responses with id null (parse errors, invalid requests)
        self.notifications: list[tuple[float, dict]] = []
        self.closed = threading.Event()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(target=self._read_loop, name="client-reader", daemon=True)
        self._thread.start()

    # --- starting ---------------------------------------------------------------------------------
    @classmethod
    def spawn(cls, argv: list[str], env: dict[str, str] | None = None, stderr: Any = None) -> "WorkerClient":
        """Start ``argv`` (e.g. ``[".venv/bin/hotpixels-worker", "--stdio"]``) and talk over its pipes."""
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr if stderr is not None else subprocess.DEVNULL,
                                env=env if env is not None else os.environ.copy())
        return cls(proc.stdout, proc.stdin, process=proc)  # type: ignore[arg-type]

    # --- sending ----------------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        with self._write_lock:
            self.writer.write(data)
            self.writer.flush()

    def send(self, message: dict) -> None:
        self.send_raw(encode_message(message))

    def request(self, method: str, params: Any = None, request_id: Any = None) -> Any:
        """Send a request without waiting; returns its id."""
        rid = next(self._ids) if request_id is None else request_id
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": rid}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return rid

    def notify(self, method: str, params: Any = None) -> None:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def cancel(self, request_id: Any) -> None:
        self.notify("$/cancelRequest", {"id": request_id})

    # --- receiving --------------------------------------------------------------------------------
    def wait(self, request_id: Any, timeout_s: float = 30.0) -> dict:
        """The full response object for ``request_id`` (``result`` or ``error``)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while request_id not in self.responses:
                if self.closed.is_set():
                    raise WorkerGone(f"the worker closed its output before answering request {request_id!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no response to request {request_id!r} within {timeout_s} s")
                self._cond.wait(min(left, 0.5))
            return self.responses[request_id]

    def call(self, method: str, params: Any = None, timeout_s: float = 30.0) -> dict:
        """Send a request and wait for its response object."""
        return self.wait(self.request(method, params), timeout_s)

    def result(self, method: str, params: Any = None, timeout_s: float = 30.0) -> Any:
        """The ``result`` of a call; on failure raises the error's own class from :mod:`hotpixels.errors`
        (``FileNotFound`` for 1001 …, ``InvalidOption`` for -32602, ``Cancelled`` for -32800; see
        :func:`hotpixels.rpc.errors.exception_from_wire`), its ``error_object`` kept as ``.wire``."""
        response = self.call(method, params, timeout_s)
        if "error" in response:
            exc = exception_from_wire(response["error"])
            exc.wire = response["error"]  # type: ignore[attr-defined]
            raise exc
        return response["result"]

    def wait_for(self, predicate: Callable[[dict], bool], timeout_s: float = 30.0) -> dict:
        """The first notification (already received or arriving) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._cond:
            while True:
                for _, msg in self.notifications[seen:]:
                    if predicate(msg):
                        return msg
                seen = len(self.notifications)
                if self.closed.is_set():
                    raise WorkerGone("the worker closed its output")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching notification")
                self._cond.wait(min(left, 0.5))

    def progress_of(self, request_id: Any) -> list[tuple[float, dict]]:
        with self._cond:
            return [(t, m["params"]) for t, m in self.notifications
                    if m.get("method") == "$/progress" and m.get("params", {}).get("id") == request_id]

    def wait_orphan(self, count: int = 1, timeout_s: float = 30.0) -> list[dict]:
        """Wait until ``count`` id-less error responses arrived."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self.orphans) < count:
                if self.closed.is_set() or time.monotonic() > deadline:
                    raise TimeoutError(f"{len(self.orphans)} of {count} id-less responses arrived")
                self._cond.wait(0.5)
            return list(self.orphans)

    def _read_loop(self) -> None:
        try:
            for line in self.reader:
                if not line.strip():
                    continue
                msg = json.loads(line)
                now = time.monotonic()
                with self._cond:
                    if "method" in msg:
                        self.notifications.append((now, msg))
                    elif msg.get("id") is None:
                        self.orphans.append(msg)
                    else:
                        self.responses[msg["id"]] = msg
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self.closed.set()
                self._cond.notify_all()

    # --- closing ----------------------------------------------------------------------------------
    def close_input(self) -> None:
        """Close the worker's input (EOF): it finishes queued work and exits."""
        with self._write_lock:
            try:
                self.writer.close()
            except OSError:
                pass

    def wait_exit(self, timeout_s: float = 30.0) -> int | None:
        """The process's exit status (``None`` when not a subprocess)."""
        if self.process is None:
            self.closed.wait(timeout_s)
            return None
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
