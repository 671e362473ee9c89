"""RPC methods, one module per family (``worker``, ``image``, ``profiles``).

A method is a plain function ``f(call: Call, params: Params) -> dict`` registered with
:func:`rpc_method`, which also says which *lane* runs it:

* ``"inline"`` — answered by the reader thread at once, even while a job runs (``worker.hello``,
  ``worker.shutdown``, ``$/cancelRequest``); must never block;
* ``"quick"`` — short file/library work on its own thread (``image.inspect``, ``profiles.list`` …),
  so the reader stays free;
* ``"job"`` — long work, one at a time, queued in arrival order (``image.correct``,
  ``profiles.create``, ``profiles.import``/``export``); sends ``$/progress`` and honours cancel.

Its ``params`` table (``{name: kind}``, kinds from :mod:`hotpixels.rpc.params`) is checked by
:func:`invoke` before the function runs: unknown, missing, ill-typed or out-of-range parameters and
unusable paths fail the call (-32602, 1001, 1002 with ``data.param``) before any work starts.
:func:`invoke` then builds the :class:`~hotpixels.rpc.params.Params`, calls the function and
returns its result; the server turns an exception into the error reply (see :mod:`hotpixels.rpc.errors`).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

LANES = ("inline", "quick", "job")
FAMILIES = ["hotpixels.rpc.methods.worker", "hotpixels.rpc.methods.image", "hotpixels.rpc.methods.profiles"]
TEST_FAMILY = "hotpixels.rpc.methods.testing"
TEST_METHODS_ENV = "HOTPIXELS_WORKER_TEST_METHODS"


@dataclass(frozen=True)
class MethodSpec:
    name: str
    func: Callable[..., Any]
    lane: str
    doc: str
    params: Mapping[str, Any] | None = None  # name -> hotpixels.rpc.params.Kind; None: checked as read


REGISTRY: dict[str, MethodSpec] = {}


def rpc_method(name: str, lane: str = "quick", params: Mapping[str, Any] | None = None
               ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func`` as the RPC method ``name`` running on ``lane``, its parameters declared by
    the table ``params`` (checked before it runs)."""
    if lane not in LANES:
        raise ValueError(f"unknown lane {lane!r}")

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        REGISTRY[name] = MethodSpec(name, func, lane, (func.__doc__ or "").strip(), params)
        return func

    return decorator


def load_methods(test_methods: bool | None = None) -> dict[str, MethodSpec]:
    """Import every family (and the test-only one when asked or ``HOTPIXELS_WORKER_TEST_METHODS=1``)."""
    if test_methods is None:
        test_methods = os.environ.get(TEST_METHODS_ENV) == "1"
    for module in FAMILIES + ([TEST_FAMILY] if test_methods else []):
        importlib.import_module(module)
    return {name: spec for name, spec in REGISTRY.items()
            if test_methods or not spec.func.__module__ == TEST_FAMILY}


def invoke(spec: MethodSpec, call: Any, params: Any) -> Any:
    """Check ``params`` (a request's, possibly None or a list) against the method's table, run it,
    and return its result; raises the method's or the check's error."""
    from ..errors import bad_param
    from ..params import Params, validate

    if spec.params is not None:
        checked = validate(spec.params, params, spec.name)
    elif isinstance(params, list):
        raise bad_param("params", f"{spec.name} takes named parameters (a JSON object), not a list")
    else:
        checked = params or {}
    p = Params(checked, spec.name)
    result = spec.func(call, p)
    p.done()
    return result
