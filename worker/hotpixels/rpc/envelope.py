"""JSON-RPC 2.0 envelopes: what makes a message a request, a notification or a batch.

The rules are the spec's (https://www.jsonrpc.org/specification), checked here rather than left to
a library so that every corner answers exactly as the spec says:

* a request is an object with ``"jsonrpc": "2.0"``, a string ``method``, optional ``params`` (an
  object or an array) and optional ``id`` (a string, a number or ``null``); without ``id`` it is a
  notification and gets no response, not even an error — unless it is not a valid request at all,
  which is answered -32600 with ``id: null``;
* a batch is a non-empty array of such messages; its answer is one array holding the responses of
  its requests (any order), and nothing at all when it held only notifications; an invalid member
  (``[1, 2]``) gets its own -32600 in that array; an empty array is not a batch: one -32600.

Limits the worker adds: an ``id`` string of at most :data:`MAX_ID_CHARS` characters (it is echoed
in every progress message) and at most :data:`MAX_BATCH` messages in one batch (each would otherwise
cost an answer the size of a request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import INVALID_REQUEST

NO_ID = object()  # a notification's id
MAX_ID_CHARS = 256
MAX_BATCH = 1000


class InvalidEnvelope(Exception):
    """Not a JSON-RPC 2.0 request. Its answer carries ``id: null`` even when the message had a
    readable id: the spec asks for null when the request is invalid, and a client matching answers
    by id must not mistake it for the reply to a valid request of the same id."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Envelope:
    """One valid request or notification."""

    id: Any  # NO_ID for a notification
    method: str
    params: Any  # a dict, a list, or None when absent

    @property
    def is_notification(self) -> bool:
        return self.id is NO_ID


def _valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return len(value) <= MAX_ID_CHARS
    return isinstance(value, (int, float))


def parse_envelope(message: Any) -> Envelope:
    """The request in ``message`` (one member of a batch, or a whole line); raises
    :class:`InvalidEnvelope` naming what is wrong."""
    if not isinstance(message, dict):
        raise InvalidEnvelope(f"invalid request: expected a JSON-RPC request object, got {_kind(message)}")
    request_id = message.get("id", NO_ID)
    if request_id is not NO_ID and not _valid_id(request_id):
        raise InvalidEnvelope("invalid request: 'id' must be a string (at most "
                              f"{MAX_ID_CHARS} characters), a number or null")
    if message.get("jsonrpc") != "2.0":
        raise InvalidEnvelope('invalid request: "jsonrpc" must be "2.0"')
    method = message.get("method")
    if not isinstance(method, str):
        raise InvalidEnvelope("invalid request: 'method' must be a string")
    params = message.get("params")
    if "params" in message and not isinstance(params, (dict, list)):
        raise InvalidEnvelope("invalid request: 'params' must be an object or an array")
    return Envelope(request_id, method, params)


def check_batch(message: list[Any]) -> None:
    """Raise :class:`InvalidEnvelope` for an array that cannot be served as a batch."""
    if not message:
        raise InvalidEnvelope("invalid request: an empty batch (an array must hold at least one request)")
    if len(message) > MAX_BATCH:
        raise InvalidEnvelope(f"invalid request: a batch of {len(message)} messages (at most {MAX_BATCH})")


def error_response(request_id: Any, code: int, name: str, message: str) -> dict[str, Any]:
    """A response carrying one of the protocol's own errors (``data: {name}``)."""
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message, "data": {"name": name}}}


def invalid_request(exc: InvalidEnvelope) -> dict[str, Any]:
    return error_response(None, INVALID_REQUEST, "invalid_request", exc.message)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number"}.get(type(value), "a value")
