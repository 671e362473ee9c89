"""``worker.*`` methods and the ``$/cancelRequest`` notification, answered by the reader thread."""

from __future__ import annotations

import os
import sys
from typing import Any

from ... import PROTOCOL_VERSION, __version__
from ..params import Number, Photo, RequestId, Str
from . import rpc_method

READ_COMPRESSIONS = [1, 7, 52546]  # none, lossless JPEG, JPEG XL (read only)
WRITE_COMPRESSIONS = [1, 7]
PRELOAD_ENV = "HOTPIXELS_WORKER_PRELOAD"


@rpc_method("worker.hello", lane="inline",
            params={"protocol": Number(lo=0, hi=1_000_000, integer=True, null_ok=True),
                    "client": Str(allow_empty=True, max_chars=200, null_ok=True)})
def hello(call: Any, p: Any) -> dict[str, Any]:
    """Versions, model, device and capabilities; starts loading the model in the background.

    Answers in milliseconds: torch is not imported here. ``compatible`` says whether the client's
    ``protocol`` (when given) equals ours; the client refuses a mismatch.
    """
    client_protocol = p.number("protocol", None)
    p.str("client", None)
    p.done()
    state = call.state
    if os.environ.get(PRELOAD_ENV, "1") != "0":
        call.after_reply = state.model.preload  # after the reply: importing torch holds the GIL a while
    return {
        "protocol": PROTOCOL_VERSION,
        "compatible": client_protocol is None or int(client_protocol) == PROTOCOL_VERSION,
        "worker_version": __version__,
        "python": sys.version.split()[0],
        "frozen": bool(getattr(sys, "frozen", False)),
        "model": state.model.info(),
        "device": state.model.device(),
        "capabilities": {
            "stages": ["dark", "hot", "residual"],
            "read_compressions": READ_COMPRESSIONS,
            "write_compressions": WRITE_COMPRESSIONS,
            "exiftool": _exiftool_available(),
            "queue": "fifo",
        },
        "library": state.library_dir(None),
        "profile_cache": state.profile_cache.stats(),
        "pid": os.getpid(),
    }


def _exiftool_available() -> bool:
    from ...dng.metadata import exiftool_available

    return bool(exiftool_available())


@rpc_method("worker.shutdown", lane="inline", params={})
def shutdown(call: Any, p: Any) -> dict[str, Any]:
    """Reply, then cancel queued and running work and exit (status 0)."""
    p.done()
    call.after_reply = lambda: call.server.stop("shutdown")
    return {"ok": True}


@rpc_method("$/cancelRequest", lane="inline", params={"id": RequestId(required=True), "path": Photo()})
def cancel_request(call: Any, p: Any) -> dict[str, Any]:
    """Cancel request ``id`` (running: its cancel event is set; queued: answered -32800 now), or with
    ``path`` only that image of it (its result becomes the ``cancelled`` error; the others go on).

    Normally a notification (no reply); sent with an id it answers ``{cancelled: bool}``.
    """
    request_id = p.any("id")
    path = p.str("path", None)
    p.done()
    return {"cancelled": call.server.cancel(request_id, path)}
