"""The worker's server: a reader thread, two work lanes, progress ticks and cancellation.

Threads:

* **reader** — reads one line at a time, answers malformed input at once (-32700/-32600), runs
  ``inline`` methods (``worker.hello``, ``$/cancelRequest``, ``worker.shutdown``) itself, and hands
  other requests to a lane. It never waits for work, so hello and cancel are answered while a
  correction runs.
* **lanes** — ``job`` runs long work one request at a time, in arrival order (a second
  ``image.correct`` while one runs is *queued*, not refused: the plugin sends a batch as one request
  per image and lets them queue); ``quick`` runs short library/file calls beside a job.
* **ticker** — every running request with an id gets ``$/progress {id, done, total, message}`` at
  least every :attr:`Server.progress_interval_s` (0.5 s) even when the engine is silent; queued ones
  get a "waiting" tick too, so a client can tell a slow worker from a dead one.

Cancellation: ``$/cancelRequest {id}`` sets the running request's ``threading.Event`` (the engine
checks it between units, removes partial files and raises ``Cancelled`` → -32800) or removes a queued
request, which is answered -32800 at once.

Stopping: end of input (EOF) lets queued work finish, then :meth:`Server.serve` returns 0;
``worker.shutdown`` and a vanished peer (closed socket, broken pipe) cancel everything and return 0.
"""

from __future__ import annotations

import collections
import json
import logging
import sys
import threading
import time
from typing import Any, Callable

from ..errors import Busy, Cancelled
from .errors import INVALID_REQUEST, PARSE_ERROR, error_object
from .framing import LineReader, LineWriter, MessageTooLong
from .methods import MethodSpec, jsonrpc_methods, load_methods
from .transports import Transport

log = logging.getLogger(__name__)

NO_ID = object()
MIN_PROGRESS_GAP_S = 0.1


class Call:
    """One request as a method sees it: its id, a cancel event and a progress callback."""

    def __init__(self, server: "Server", method: str, request: Any, lane: str):
        self.server = server
        self.method = method
        self.request = request
        self.lane = lane
        self.id = request.get("id", NO_ID) if isinstance(request, dict) else NO_ID
        self.cancel = threading.Event()
        self.after_reply: Callable[[], None] | None = None
        self.started = False
        self._lock = threading.Lock()
        self._state: tuple[int, int, str] = (0, 0, "")
        self._last_sent = 0.0
        self._dirty = False

    @property
    def has_id(self) -> bool:
        return self.id is not NO_ID

    @property
    def state(self) -> Any:
        """The worker's long-lived state (:class:`hotpixels.rpc.state.WorkerState`)."""
        return self.server.state

    def progress(self, done: int, total: int, message: str = "") -> None:
        """Engine progress callback: sent at once when it changed, at most every 0.1 s; a change
        that arrives sooner is sent by the ticker within the next 0.1 s."""
        new = (int(done), int(total), str(message))
        with self._lock:
            if new == self._state:
                return
            self._state = new
            self._dirty = True
            due = time.monotonic() - self._last_sent >= MIN_PROGRESS_GAP_S or new[0] >= new[1] > 0
        if due:
            self.send_progress()

    def send_progress(self) -> None:
        if not self.has_id:
            return
        with self._lock:
            done, total, message = self._state
            self._last_sent = time.monotonic()
            self._dirty = False
        self.server.notify("$/progress", {"id": self.id, "done": done, "total": total, "message": message})

    def progress_due(self, interval_s: float) -> bool:
        """A change is waiting, or nothing was sent for ``interval_s``."""
        with self._lock:
            quiet = time.monotonic() - self._last_sent
            return quiet >= interval_s or (self._dirty and quiet >= MIN_PROGRESS_GAP_S)


def release_memory() -> None:
    """Give freed memory back to the system after a job (a 24 MP correction frees hundreds of MB that
    glibc would otherwise keep in its arenas, making the idle worker look large)."""
    import gc

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


class Lane:
    """A FIFO of calls run one at a time on a daemon thread."""

    def __init__(self, name: str, server: "Server"):
        self.name = name
        self.server = server
        self.queue: collections.deque[Call] = collections.deque()
        self.running: Call | None = None
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=f"lane-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def submit(self, call: Call) -> None:
        with self.cond:
            self.queue.append(call)
            self.cond.notify_all()

    def cancel(self, request_id: Any) -> bool:
        """Cancel a running or queued call with this id; ``True`` when one was found."""
        with self.cond:
            if self.running is not None and self.running.has_id and self.running.id == request_id:
                self.running.cancel.set()
                return True
            for call in list(self.queue):
                if call.has_id and call.id == request_id:
                    self.queue.remove(call)
                    self.cond.notify_all()
                    break
            else:
                return False
        self.server.reply_error(call, Cancelled("cancelled by the user before it started"))
        return True

    def cancel_all(self) -> None:
        with self.cond:
            queued, self.queue = list(self.queue), collections.deque()
            if self.running is not None:
                self.running.cancel.set()
            self.cond.notify_all()
        for call in queued:
            self.server.reply_error(call, Cancelled("cancelled: the worker is stopping"))

    def snapshot(self) -> tuple[Call | None, list[Call]]:
        with self.cond:
            return self.running, list(self.queue)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self.cond:
            while self.queue or self.running is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self.cond.wait(left if left is not None else 0.5)
        return True

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                call = self.queue.popleft()
                self.running = call
            try:
                call.started = True
                self.server.execute(call)
            except Exception:  # noqa: BLE001 - the lane must survive anything
                log.exception("lane %s: unexpected failure", self.name)
            finally:
                with self.cond:
                    self.running = None
                    self.cond.notify_all()
            if self.name == "job":
                release_memory()


class Server:
    """Serves one transport until EOF, ``worker.shutdown`` or the peer going away."""

    progress_interval_s = 0.5
    tick_s = 0.1
    stop_grace_s = 15.0  # how long a cancelled job may take to notice before we exit anyway
    max_queued = 1000  # requests waiting in one lane; beyond this a request is refused with Busy (5002)

    def __init__(self, transport: Transport, *, specs: dict[str, MethodSpec] | None = None,
                 state: Any = None, test_methods: bool | None = None):
        from .state import WorkerState

        self.transport = transport
        self.specs = specs if specs is not None else load_methods(test_methods)
        self.methods = jsonrpc_methods(self.specs)
        self.state = state if state is not None else WorkerState()
        self.reader = LineReader(transport.reader)
        self.writer = LineWriter(transport.writer, on_broken=lambda: self.stop("peer_gone"))
        self.lanes = {"quick": Lane("quick", self), "job": Lane("job", self)}
        self._stop_reason: str | None = None
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()

    # --- life cycle -----------------------------------------------------------------------------
    def serve(self) -> int:
        """Run until stopped; returns the exit status (0 for every orderly end)."""
        self.start_workers()
        threading.Thread(target=self._read_loop, name="reader", daemon=True).start()
        self.transport.watch_peer_closed(lambda: self.stop("peer_gone"))
        self._stopped.wait()
        reason = self._stop_reason
        if reason == "eof":
            for lane in self.lanes.values():
                while not lane.wait_idle(0.5):
                    if self._stop_reason != "eof":  # the peer went away while we drained
                        break
        if self._stop_reason != "eof":
            for lane in self.lanes.values():
                lane.cancel_all()
            for lane in self.lanes.values():
                lane.wait_idle(self.stop_grace_s)
        log.info("worker stopping (%s)", self._stop_reason)
        self.state.close()
        self.transport.close()
        return 0

    def start_workers(self) -> None:
        """Start the lanes and the progress ticker (``serve`` does this; tests may drive
        :meth:`handle_line` themselves)."""
        for lane in self.lanes.values():
            lane.start()
        threading.Thread(target=self._tick_loop, name="ticker", daemon=True).start()

    def stop(self, reason: str) -> None:
        """Ask the server to stop: ``eof`` drains queued work, anything else cancels it."""
        with self._stop_lock:
            if self._stop_reason is None or (self._stop_reason == "eof" and reason != "eof"):
                self._stop_reason = reason
        if reason != "eof":
            for lane in self.lanes.values():
                lane.cancel_all()
        self._stopped.set()

    # --- reading --------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        while True:
            try:
                line = self.reader.read_line()
            except MessageTooLong as exc:
                self.send({"jsonrpc": "2.0", "id": None,
                           "error": {"code": INVALID_REQUEST, "message": str(exc), "data": {"name": "too_long"}}})
                continue
            if line is None:
                self.stop("eof")
                return
            try:
                self.handle_line(line)
            except Exception:  # noqa: BLE001 - the reader must survive anything
                log.exception("reader: unexpected failure")

    def handle_line(self, line: bytes) -> None:
        """Route one message: inline methods and malformed input now, the rest to a lane."""
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            self.send({"jsonrpc": "2.0", "id": None,
                       "error": {"code": PARSE_ERROR, "message": f"not valid JSON: {exc}", "data": {"name": "parse_error"}}})
            return
        spec = self._spec_for(request)
        lane = spec.lane if spec is not None else "inline"
        name = spec.name if spec is not None else str(request.get("method")) if isinstance(request, dict) else "batch"
        if isinstance(request, list):  # batches are rare: run them whole on the job lane
            lane = "job" if request else "inline"
        call = Call(self, name, request, lane)
        if lane == "inline":
            self.execute(call)
        else:
            if len(self.lanes[lane].queue) >= self.max_queued:
                self.reply_error(call, Busy(f"the worker already has {self.max_queued} requests waiting; "
                                            "send more when some have finished"))
                return
            if lane == "job" and call.has_id:
                call.progress(0, 0, "queued: waiting for the running job")
            self.lanes[lane].submit(call)

    def _spec_for(self, request: Any) -> MethodSpec | None:
        if isinstance(request, dict) and request.get("jsonrpc") == "2.0" and isinstance(request.get("method"), str):
            return self.specs.get(request["method"])
        return None

    # --- running --------------------------------------------------------------------------------
    def execute(self, call: Call) -> None:
        """Dispatch one call through jsonrpcserver and send its response (if it has an id)."""
        from jsonrpcserver import dispatch_to_serializable

        if call.lane != "inline":
            call.progress(0, 0, "started")
        request = call.request
        # already parsed by the reader: hand jsonrpcserver the object, it validates and dispatches
        response = dispatch_to_serializable("", methods=self.methods, context=call,
                                            deserializer=lambda _text: request)
        if response is not None:
            self.send(_normalise_errors(response))
        if call.after_reply is not None:
            call.after_reply()

    def reply_error(self, call: Call, exc: BaseException) -> None:
        if call.has_id:
            self.send({"jsonrpc": "2.0", "id": call.id, "error": error_object(exc)})

    def cancel(self, request_id: Any) -> bool:
        return any(lane.cancel(request_id) for lane in self.lanes.values())

    # --- writing --------------------------------------------------------------------------------
    def send(self, message: Any) -> bool:
        return self.writer.write(message)

    def notify(self, method: str, params: dict[str, Any]) -> bool:
        return self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def _tick_loop(self) -> None:
        while not self._stopped.wait(self.tick_s):
            for lane in self.lanes.values():
                running, queued = lane.snapshot()
                for call in ([running] if running is not None else []) + queued:
                    if call.has_id and call.progress_due(self.progress_interval_s):
                        call.send_progress()


_LIBRARY_ERROR_NAMES = {-32700: "parse_error", -32600: "invalid_request", -32601: "method_not_found",
                        -32602: "invalid_params", -32603: "internal"}


def _normalise_errors(response: Any) -> Any:
    """Give jsonrpcserver's own errors the documented ``data: {name, detail}`` shape."""
    if isinstance(response, list):
        return [_normalise_errors(r) for r in response]
    error = response.get("error") if isinstance(response, dict) else None
    if error is not None and not isinstance(error.get("data"), dict):
        data = {"name": _LIBRARY_ERROR_NAMES.get(error.get("code"), "error")}
        if error.get("data") is not None:
            data["detail"] = error["data"]
        if error.get("code") == -32601:
            error["message"] = f"unknown method '{error.get('data')}'"
        error["data"] = data
    return response
