"""Test-only methods (registered only with ``HOTPIXELS_WORKER_TEST_METHODS=1``).

They exercise the server's own machinery — lanes, progress ticks, cancellation, error mapping —
independently of the engine; the protocol suite checks the same behaviour on the real methods.
"""

from __future__ import annotations

import time
from typing import Any

from ...errors import NotDng
from ...progress import check_cancel
from ..params import Bool, Number, Str
from . import rpc_method


@rpc_method("test.sleep", lane="job", params={"seconds": Number(lo=0, hi=60, required=True),
                                               "steps": Number(lo=1, hi=1000, integer=True), "report": Bool()})
def sleep(call: Any, p: Any) -> dict[str, Any]:
    """Sleep ``seconds`` in ``steps`` units, reporting progress only when ``report`` is true."""
    seconds = p.number("seconds", lo=0, hi=60)
    steps = int(p.number("steps", 10, lo=1, hi=1000))
    report = p.bool("report", True)
    p.done()
    for i in range(steps):
        check_cancel(call.cancel)
        if report:
            call.progress(i, steps, f"step {i + 1}")
        time.sleep(seconds / steps)
    return {"slept_s": seconds, "steps": steps}


@rpc_method("test.fail", lane="quick", params={"kind": Str(choices=("project", "bug"), required=True)})
def fail(call: Any, p: Any) -> dict[str, Any]:
    """Raise a project error (``kind="project"``) or an unexpected exception (``"bug"``)."""
    kind = p.str("kind", choices=["project", "bug"])
    p.done()
    if kind == "project":
        raise NotDng("not a DNG file: test", path="/nowhere/x.nef")
    raise RuntimeError("an unexpected bug")


@rpc_method("test.print", lane="quick", params={})
def stray_print(call: Any, p: Any) -> dict[str, Any]:
    """Write junk to stdout the ways careless code does (print, fd 1); the protocol must stay clean."""
    import os
    import sys

    p.done()
    print("stray print from a library")
    sys.stdout.flush()
    os.write(1, b"stray bytes on fd 1\n")
    return {"printed": True}
