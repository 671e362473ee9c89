"""Message framing: one JSON-RPC message per line, UTF-8, ``\\n``-terminated.

Lightroom's ``LrSocket`` in receive mode delivers one message per newline (it buffers until it sees
one and may strip it), so every message the worker writes ends in exactly one ``\\n`` and holds no
other newline (``json.dumps`` escapes the ones inside strings). Incoming lines may end in ``\\r\\n``.

Limits: a line longer than :data:`MAX_MESSAGE_BYTES` is discarded up to its newline and reported
as :class:`MessageTooLong` (the server answers -32600 and keeps reading), so a runaway client
cannot make the worker buffer without bound.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any, BinaryIO, Callable

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # requests are small; 16 MiB leaves room for long path lists


class MessageTooLong(Exception):
    """A line exceeded :data:`MAX_MESSAGE_BYTES`; its bytes were discarded up to the newline."""

    def __init__(self, size: int):
        super().__init__(f"message longer than {MAX_MESSAGE_BYTES} bytes ({size} bytes discarded)")
        self.size = size


class LineReader:
    """Reads newline-delimited messages from a binary stream (a pipe or a socket file)."""

    def __init__(self, stream: BinaryIO, max_bytes: int = MAX_MESSAGE_BYTES):
        self.stream = stream
        self.max_bytes = max_bytes

    def read_line(self) -> bytes | None:
        """The next non-empty line without its line ending, ``None`` at end of stream.

        Raises :class:`MessageTooLong` after discarding an over-long line.
        """
        while True:
            try:
                line = self.stream.readline(self.max_bytes + 1)
            except (OSError, ValueError):  # socket reset, stream closed under us
                return None
            if not line:
                return None
            if len(line) > self.max_bytes and not line.endswith(b"\n"):
                size = len(line) + self._discard_rest_of_line()
                raise MessageTooLong(size)
            line = line.rstrip(b"\r\n")
            if line.strip():
                return line

    def _discard_rest_of_line(self) -> int:
        skipped = 0
        while True:
            chunk = self.stream.readline(1 << 20)
            skipped += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                return skipped


def json_default(o: Any) -> Any:
    """JSON for numpy scalars/arrays and paths, which results from the engine may contain."""
    if hasattr(o, "__fspath__"):
        return str(o)
    if type(o).__module__ == "numpy":
        if hasattr(o, "tolist"):
            return o.tolist()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _finite(o: Any) -> Any:
    """Replace NaN/inf (not JSON) by ``null``, recursively."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def encode_message(obj: Any) -> bytes:
    """One message as UTF-8 bytes ending in ``\\n`` (non-ASCII characters are not escaped)."""
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=json_default)
    except ValueError:  # NaN or inf somewhere in a result
        text = json.dumps(_finite(json.loads(json.dumps(obj, default=json_default))),
                          ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


class LineWriter:
    """Writes whole messages from any thread; one lock keeps lines from interleaving.

    ``on_broken`` is called once when the peer has gone (broken pipe, reset socket): the server
    then cancels its work and exits, since nobody is listening any more.
    """

    def __init__(self, stream: BinaryIO, on_broken: Callable[[], None] | None = None):
        self.stream = stream
        self.on_broken = on_broken
        self.broken = False
        self._lock = threading.Lock()

    def write(self, obj: Any) -> bool:
        """Send one message; ``False`` when the peer is gone."""
        data = encode_message(obj)
        with self._lock:
            if self.broken:
                return False
            try:
                self.stream.write(data)
                self.stream.flush()
                return True
            except (OSError, ValueError) as exc:
                log.info("output closed (%s): the client is gone", exc)
                self.broken = True
        if self.on_broken is not None:
            self.on_broken()
        return False
