"""The worker's server: a reader thread, two work lanes, progress ticks and cancellation.

Threads:

* **reader** — reads one line at a time, answers malformed input at once (-32700/-32600, see
  :mod:`~hotpixels.rpc.framing` and :mod:`~hotpixels.rpc.envelope`), runs ``inline`` methods
  (``worker.hello``, ``$/cancelRequest``, ``worker.shutdown``) itself, and hands other requests to a
  lane. It never waits for work, so hello and cancel are answered while a correction runs. The
  members of a batch are routed one by one the same way; a :class:`Batch` collects their responses
  and sends them as one array when the last has answered.
* **lanes** — ``job`` runs long work one request at a time, in arrival order (a second
  ``image.correct`` while one runs is *queued*, not refused); ``quick`` runs short library/file calls beside a job.
* **ticker** — every running request with an id gets ``$/progress {id, done, total, message}`` at
  least every :attr:`Server.progress_interval_s` (0.5 s) even when the engine is silent; queued ones
  get a "waiting" tick too, so a client can tell a slow worker from a dead one.

Cancellation: ``$/cancelRequest {id}`` sets the running request's ``threading.Event`` (the engine
checks it between units, removes partial files and raises ``Cancelled`` → -32800) or removes a queued
request, which is answered -32800 at once. ``$/cancelRequest {id, path}`` marks one image of a
(running or queued) request cancelled (:meth:`Call.image_cancelled`); the engine skips or stops it.

Results: a group ``image.correct`` sends each image's result as ``$/result {id, index, total,
result}`` (:meth:`Call.send_result`) as soon as it is written.

Stopping: end of input (EOF) lets queued work finish, then :meth:`Server.serve` returns 0 — but a
running job that reports no progress for :attr:`Server.eof_stall_s` is cancelled, and one that
ignores the cancel for :attr:`Server.stop_grace_s` is left behind (its thread is a daemon), so the
worker always exits after its input closes; ``worker.shutdown`` and a vanished peer (closed socket,
broken pipe) cancel everything and return 0.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
from typing import Any, Callable

from ..errors import Busy, Cancelled
from .envelope import NO_ID, Envelope, InvalidEnvelope, check_batch, error_response, invalid_request, parse_envelope
from .errors import INVALID_REQUEST, METHOD_NOT_FOUND, error_object
from .framing import LineReader, LineWriter, MessageTooLong, ProtocolError, decode_message
from .methods import MethodSpec, invoke, load_methods
from .transports import Transport

log = logging.getLogger(__name__)

MIN_PROGRESS_GAP_S = 0.1


class Batch:
    """Collects the responses of one batch's members; sends them as one array when all have
    finished (nothing when none had an id)."""

    def __init__(self, server: "Server", n_members: int):
        self.server = server
        self.pending = n_members
        self.responses: list[Any] = []
        self._lock = threading.Lock()

    def finish(self, response: Any | None) -> None:
        with self._lock:
            if response is not None:
                self.responses.append(response)
            self.pending -= 1
            complete = self.pending == 0
        if complete and self.responses:
            self.server.send(self.responses)


class Call:
    """One request as a method sees it: its id, a cancel event and a progress callback."""

    def __init__(self, server: "Server", spec: MethodSpec, envelope: Envelope, batch: Batch | None = None):
        self.server = server
        self.spec = spec
        self.method = spec.name
        self.params = envelope.params
        self.lane = spec.lane
        self.id = envelope.id
        self.batch = batch
        self.cancel = threading.Event()
        self.after_reply: Callable[[], None] | None = None
        self.started = False
        self._lock = threading.Lock()
        self._state: tuple[int, int, str] = (0, 0, "")
        self._last_sent = 0.0
        self._last_change = time.monotonic()
        self._dirty = False
        self._engine_spoke = False  # the engine's first report is always sent at once
        self._finished = False
        self._cancelled_paths: set[str] = set()

    @property
    def has_id(self) -> bool:
        return self.id is not NO_ID

    def finish(self, response: dict[str, Any] | None) -> None:
        """Deliver this call's one response (``None``: none, it is a notification), once."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        if not self.has_id:
            response = None
        if self.batch is not None:
            self.batch.finish(response)
        elif response is not None:
            self.server.send(response)

    def mark_started(self) -> None:
        """The lane runs this call now: its first engine step goes out at once, after "queued"."""
        with self._lock:
            self.started = True
            self._engine_spoke = False

    def quiet_s(self) -> float:
        """Seconds since the engine last reported a change of progress (or since the call started)."""
        with self._lock:
            return time.monotonic() - self._last_change

    @property
    def state(self) -> Any:
        """The worker's long-lived state (:class:`hotpixels.rpc.state.WorkerState`)."""
        return self.server.state

    def progress(self, done: int, total: int, message: str = "") -> None:
        """Engine progress callback: sent at once when it changed, at most every 0.1 s; a change
        that arrives sooner is sent by the ticker within the next 0.1 s. The engine's first report
        (the first step's name) is always sent at once, so a fast step is never merged away."""
        new = (int(done), int(total), str(message))
        with self._lock:
            if new == self._state:
                return
            self._state = new
            self._last_change = time.monotonic()
            self._dirty = True
            due = (not self._engine_spoke or time.monotonic() - self._last_sent >= MIN_PROGRESS_GAP_S
                   or new[0] >= new[1] > 0)
            self._engine_spoke = True
        if due:
            self.send_progress()

    def announce(self, message: str) -> None:
        """The server's own step ("queued", "started"): sent at once, and it leaves the engine's
        first report free to be sent at once too."""
        with self._lock:
            self._state = (0, 0, str(message))
            self._last_change = time.monotonic()
            self._dirty = True
        self.send_progress()

    def cancel_image(self, path: str) -> None:
        """``$/cancelRequest {id, path}``: cancel only that image of this request (queued or running)."""
        with self._lock:
            self._cancelled_paths.add(path)
            self._cancelled_paths.add(os.path.abspath(path))

    def image_cancelled(self, path: str) -> bool:
        """Whether the client cancelled this one image (the path as sent, or the same file)."""
        with self._lock:
            if not self._cancelled_paths:
                return False
            return path in self._cancelled_paths or os.path.abspath(path) in self._cancelled_paths

    def send_result(self, index: int, total: int, result: dict[str, Any]) -> None:
        """``$/result {id, index, total, result}``: one image of a group request is final."""
        if self.has_id:
            self.server.notify("$/result", {"id": self.id, "index": index, "total": total, "result": result})

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

    def cancel(self, request_id: Any, path: str | None = None) -> bool:
        """Cancel a running or queued call with this id (with ``path``: only that image of it);
        ``True`` when one was found."""
        with self.cond:
            if path is not None:
                for call in ([self.running] if self.running is not None else []) + list(self.queue):
                    if call.has_id and call.id == request_id:
                        call.cancel_image(path)
                        return True
                return False
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
                call.mark_started()
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
    eof_stall_s = 120.0  # after end of input, a running job silent this long is cancelled
    max_queued = 1000  # requests waiting in one lane; beyond this a request is refused with Busy (5002)

    def __init__(self, transport: Transport, *, specs: dict[str, MethodSpec] | None = None,
                 state: Any = None, test_methods: bool | None = None):
        from .state import WorkerState

        self.transport = transport
        self.specs = specs if specs is not None else load_methods(test_methods)
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
        if self._stop_reason == "eof" and not self._drain_after_eof():
            self._stop_reason = "eof_stalled"
        if self._stop_reason != "eof":
            for lane in self.lanes.values():
                lane.cancel_all()
            grace_s = 1.0 if self._stop_reason == "eof_stalled" else self.stop_grace_s  # it had its grace
            for lane in self.lanes.values():
                lane.wait_idle(grace_s)
        log.info("worker stopping (%s)", self._stop_reason)
        self.state.close()
        self.transport.close()
        return 0

    def _drain_after_eof(self) -> bool:
        """Let queued work finish after end of input; ``False`` when a running call stalled (no
        progress for :attr:`eof_stall_s`, cancelled, and still running :attr:`stop_grace_s` later)
        or the peer went away meanwhile: the caller then cancels everything and exits."""
        cancelled_at: dict[int, float] = {}
        while self._stop_reason == "eof":
            busy = False
            for lane in self.lanes.values():
                running, queued = lane.snapshot()
                busy = busy or running is not None or bool(queued)
                if running is None:
                    continue
                if id(running) in cancelled_at:
                    if time.monotonic() - cancelled_at[id(running)] > self.stop_grace_s:
                        log.error("%s ignored its cancel for %.0f s; exiting without it", running.method,
                                  self.stop_grace_s)
                        return False
                elif running.quiet_s() >= self.eof_stall_s:
                    log.warning("input closed and %s made no progress for %.0f s: cancelling it",
                                running.method, self.eof_stall_s)
                    running.cancel.set()
                    cancelled_at[id(running)] = time.monotonic()
            if not busy:
                return True
            time.sleep(self.tick_s)
        return False

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
                self.send(error_response(None, INVALID_REQUEST, "too_long", str(exc)))
                continue
            if line is None:
                self.stop("eof")
                return
            try:
                self.handle_line(line)
            except Exception:  # noqa: BLE001 - the reader must survive anything
                log.exception("reader: unexpected failure")
                self.send(error_response(None, INVALID_REQUEST, "internal",
                                         "the worker could not route this message; see its log"))

    def handle_line(self, line: bytes) -> None:
        """Answer one line: malformed input and inline methods now, the rest queued on a lane;
        a batch member by member (see :mod:`hotpixels.rpc.envelope`)."""
        try:
            message = decode_message(line)
        except ProtocolError as exc:
            self.send(error_response(None, exc.code, exc.name, exc.message))
            return
        if not isinstance(message, list):
            self._route(message, None)
            return
        try:
            check_batch(message)
        except InvalidEnvelope as exc:
            self.send(invalid_request(exc))
            return
        batch = Batch(self, len(message))
        for member in message:
            self._route(member, batch)

    def _route(self, message: Any, batch: Batch | None) -> None:
        """One request (alone or a batch member): answered now, run inline, or queued on its lane."""
        try:
            envelope = parse_envelope(message)
        except InvalidEnvelope as exc:
            self._answer(batch, invalid_request(exc))
            return
        spec = self.specs.get(envelope.method)
        if spec is None:
            shown = envelope.method if len(envelope.method) <= 100 else envelope.method[:100] + "…"
            response = error_response(envelope.id, METHOD_NOT_FOUND, "method_not_found", f"unknown method '{shown}'")
            response["error"]["data"]["detail"] = shown
            self._answer(batch, None if envelope.is_notification else response)
            return
        call = Call(self, spec, envelope, batch)
        if spec.lane == "inline":
            self.execute(call)
            return
        lane = self.lanes[spec.lane]
        if len(lane.queue) >= self.max_queued:
            self.reply_error(call, Busy(f"the worker already has {self.max_queued} requests waiting; "
                                        "send more when some have finished"))
            return
        if spec.lane == "job" and call.has_id:
            call.announce("queued: waiting for the running job")
        lane.submit(call)

    def _answer(self, batch: Batch | None, response: dict[str, Any] | None) -> None:
        if batch is not None:
            batch.finish(response)
        elif response is not None:
            self.send(response)

    # --- running --------------------------------------------------------------------------------
    def execute(self, call: Call) -> None:
        """Run one call and deliver its response (none for a notification)."""
        if call.lane != "inline":
            call.announce("started")
        try:
            response = {"jsonrpc": "2.0", "id": call.id, "result": invoke(call.spec, call, call.params)}
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error reply
            response = {"jsonrpc": "2.0", "id": call.id, "error": error_object(exc)}
        call.finish(response)
        if call.after_reply is not None:
            call.after_reply()

    def reply_error(self, call: Call, exc: BaseException) -> None:
        call.finish({"jsonrpc": "2.0", "id": call.id, "error": error_object(exc)})

    def cancel(self, request_id: Any, path: str | None = None) -> bool:
        return any(lane.cancel(request_id, path) for lane in self.lanes.values())

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
