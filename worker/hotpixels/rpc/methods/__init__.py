"""RPC methods, one module per family (``worker``, ``image``, ``profiles``).

A method is a plain function ``f(call: Call, params: Params) -> dict`` registered with
:func:`rpc_method`, which also says which *lane* runs it:

* ``"inline"`` — answered by the reader thread at once, even while a job runs (``worker.hello``,
  ``worker.shutdown``, ``$/cancelRequest``); must never block;
* ``"quick"`` — short file/library work on its own thread (``image.inspect``, ``profiles.list`` …),
  so the reader stays free;
* ``"job"`` — long work, one at a time, queued in arrival order (``image.correct``,
  ``profiles.create``, ``profiles.import``/``export``); sends ``$/progress`` and honours cancel.

:func:`jsonrpc_methods` wraps each for jsonrpcserver's ``dispatch``: the wrapper builds the
:class:`~hotpixels.rpc.params.Params`, calls the function, and turns its result into ``Success``
and any exception into ``Error`` with the project's code (see :mod:`hotpixels.rpc.errors`).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable

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


REGISTRY: dict[str, MethodSpec] = {}


def rpc_method(name: str, lane: str = "quick") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func`` as the RPC method ``name`` running on ``lane``."""
    if lane not in LANES:
        raise ValueError(f"unknown lane {lane!r}")

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        REGISTRY[name] = MethodSpec(name, func, lane, (func.__doc__ or "").strip())
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


def jsonrpc_methods(specs: dict[str, MethodSpec]) -> dict[str, Callable[..., Any]]:
    """The ``methods`` dict for jsonrpcserver: name -> wrapper(call, *args, **params) -> Result."""
    from jsonrpcserver import Error, Success

    from ..errors import bad_param, error_object
    from ..params import Params

    def wrap(spec: MethodSpec) -> Callable[..., Any]:
        def handler(call: Any, *args: Any, **params: Any) -> Any:
            try:
                if args:
                    raise bad_param("params", f"{spec.name} takes named parameters (a JSON object), not a list")
                p = Params(params, spec.name)
                result = spec.func(call, p)
                p.done()
                return Success(result)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an error reply
                err = error_object(exc)
                return Error(err["code"], err["message"], err["data"])

        handler.__name__ = spec.func.__name__
        return handler

    return {name: wrap(spec) for name, spec in specs.items()}
