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

from ..errors import HotPixelsError, InvalidOption, as_hotpixels_error

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


def error_result(exc: BaseException) -> dict[str, Any]:
    """The per-image form inside a batch result: ``{code, name, message, path?, param?}``."""
    obj = error_object(exc)
    out = {"code": obj["code"], "name": obj["data"]["name"], "message": obj["message"]}
    for key in ("path", "param"):
        if key in obj["data"]:
            out[key] = obj["data"][key]
    return out
