"""Turn failures into JSON-RPC error objects ``{code, message, data: {name, path?, param?}}``.

The application codes come from the one table in :mod:`hotpixels.errors`. Two mappings are
specific to the wire:

* :class:`~hotpixels.errors.InvalidOption` (a parameter with a bad value or type, an unknown or
  missing parameter) is JSON-RPC's -32602 "invalid params", with ``data.param`` naming it;
* :class:`~hotpixels.errors.Cancelled` is -32800 (LSP's RequestCancelled).

Anything that is not a :class:`~hotpixels.errors.HotPixelsError` becomes ``InternalError`` (1000)
with its traceback in the log, never on the wire.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import HotPixelsError, InternalError, InvalidOption, as_hotpixels_error, error_class

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_JSONRPC = -32603
CANCELLED = -32800


def bad_param(param: str, message: str, **data: Any) -> InvalidOption:
    """An :class:`InvalidOption` naming the parameter (``data.param``), sent as -32602."""
    return InvalidOption(message, data={"param": param, **data})


def error_object(exc: BaseException) -> dict[str, Any]:
    """The JSON-RPC ``error`` member for any exception raised by a method."""
    if not isinstance(exc, HotPixelsError):
        log.error("unexpected error in a method", exc_info=exc)
    err = as_hotpixels_error(exc)
    code = INVALID_PARAMS if isinstance(err, InvalidOption) else err.CODE
    data: dict[str, Any] = {"name": err.NAME, "code": err.CODE}
    if err.path is not None:
        data["path"] = err.path
    data.update(err.data)
    return {"code": code, "message": err.message, "data": data}


def exception_from_wire(error: dict[str, Any]) -> Exception:
    """The exception a JSON-RPC ``error`` object (as :func:`error_object` makes it) stands for.

    The inverse of :func:`error_object`: -32602 is :class:`~hotpixels.errors.InvalidOption`, every
    other code the class of :mod:`hotpixels.errors` with that ``CODE`` (one table), with the
    message, ``path`` and the rest of ``data``; the JSON-RPC protocol codes (-32700, -32600, -32601,
    -32603: the client's own mistake, not a user-facing failure) are :class:`~.framing.ProtocolError`.
    An application code this version does not know (a newer worker) is an ``InternalError`` that
    keeps it in ``data.code``.
    """
    code = int(error.get("code", InternalError.CODE))
    message = str(error.get("message", ""))
    data = dict(error.get("data") or {})
    if code in (PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INTERNAL_JSONRPC):
        from .framing import ProtocolError

        return ProtocolError(code, str(data.get("name", "")), message)
    cls = InvalidOption if code == INVALID_PARAMS else error_class(code)
    path = data.pop("path", None)
    data.pop("name", None)
    if cls is None:
        return InternalError(message, path=path, data={**data, "code": code})
    data.pop("code", None)
    return cls(message, path=path, data=data)


def error_result(exc: BaseException) -> dict[str, Any]:
    """The per-image form inside a result (a photo of ``image.correct``, a skipped one of
    ``image.scanBatch``): the error table's shape, :meth:`hotpixels.errors.HotPixelsError.to_dict`."""
    if not isinstance(exc, HotPixelsError):
        log.error("unexpected error on one image", exc_info=exc)
    return as_hotpixels_error(exc).to_dict()
