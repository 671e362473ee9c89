"""Message framing: one JSON-RPC message per line, UTF-8, ``\\n``-terminated.

Lightroom's ``LrSocket`` in receive mode delivers one message per newline (it buffers until it sees
one and may strip it), so every message the worker writes ends in exactly one ``\\n`` and holds no
other newline (``json.dumps`` escapes the ones inside strings). Incoming lines may end in ``\\r\\n``.

Limits: a line longer than :data:`MAX_MESSAGE_BYTES` is discarded up to its newline and reported
as :class:`MessageTooLong` (the server answers -32600 and keeps reading), so a runaway client
cannot make the worker buffer without bound.

Decoding (:func:`decode_message`) is strict JSON: the bytes must be UTF-8, ``NaN``/``Infinity``
and numbers beyond a double's range (``1e999``) are refused (-32700), and a value nested deeper than
:data:`MAX_DEPTH` levels is refused with -32600 (Python's decoder recurses: left alone, a line of a
million ``[`` would raise ``RecursionError`` instead of getting an answer). Encoding never writes
``NaN`` either: a non-finite number in a result goes out as ``null``.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any, BinaryIO, Callable

from ..fileio import finite_json

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # requests are small; 16 MiB leaves room for long path lists
MAX_DEPTH = 64  # nesting levels of arrays/objects in one message (a request needs about 5)


class ProtocolError(Exception):
    """A message the server answers with a JSON-RPC error of its own (``code``, ``data.name``)."""

    def __init__(self, code: int, name: str, message: str):
        super().__init__(message)
        self.code, self.name, self.message = code, name, message


class MessageTooLong(Exception):
    """A line exceeded :data:`MAX_MESSAGE_BYTES`; its bytes were discarded up to the newline."""

    def __init__(self, size_bytes: int):
        super().__init__(f"message longer than {MAX_MESSAGE_BYTES} bytes ({size_bytes} bytes discarded)")
        self.size_bytes = size_bytes


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
                raise MessageTooLong(len(line) + self._discard_rest_of_line())
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


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _depth_exceeds(obj: Any, limit: int) -> bool:
    """Whether arrays/objects nest deeper than ``limit`` levels (iterative: no recursion)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((c, depth + 1) for c in children if isinstance(c, (list, dict)))
    return False


def decode_message(line: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """One line as a JSON value; raises :class:`ProtocolError` -32700 (not UTF-8, not strict JSON)
    or -32600 (nested deeper than ``max_depth``)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(-32700, "parse_error", f"not valid JSON: the line is not UTF-8 ({exc.reason} "
                                                   f"at byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ProtocolError(-32600, "too_deep", f"invalid request: arrays/objects nested deeper than "
                                                f"{max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, 1e999, an integer of > 4300 digits
        raise ProtocolError(-32700, "parse_error", f"not valid JSON: {str(exc)[:200]}") from None
    if _depth_exceeds(value, max_depth):
        raise ProtocolError(-32600, "too_deep", f"invalid request: arrays/objects nested deeper than "
                                                f"{max_depth} levels")
    return value


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


def encode_message(obj: Any) -> bytes:
    """One message as UTF-8 bytes ending in ``\\n`` (non-ASCII characters are not escaped, except
    lone surrogates a client sent in ``\\ud800`` form: those stay escaped, as UTF-8 cannot carry them)."""
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=json_default)
    except ValueError:  # NaN or inf somewhere in a result
        obj = finite_json(json.loads(json.dumps(obj, default=json_default)))
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False,
                          default=json_default).encode("ascii") + b"\n"


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
