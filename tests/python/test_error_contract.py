"""The error contract end to end: every code docs/protocol.md lists exists in the one table
(``hotpixels.errors``), something in the worker can send it, and the Python client turns it back
into its own exception class.

Codes other helpers add to both the table and the doc (1014 ``batch_expired``, 1015 ``too_large``,
2011 ``not_a_dark_frame`` …) are checked the same way as soon as they land: nothing here lists codes.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hotpixels import errors as hp_errors
from hotpixels.rpc import errors as rpc_errors
from hotpixels.rpc.client import WorkerClient
from hotpixels.rpc.errors import error_object, exception_from_wire
from hotpixels.rpc.framing import ProtocolError

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "worker" / "hotpixels"
ROW = re.compile(r"^\|\s*(-?\d+)\s*\|\s*(`[^|]+`(?:\s*/\s*`[^|]+`)*)\s*\|")
# JSON-RPC's own protocol codes: the server answers them itself (rpc/framing.py, rpc/envelope.py, rpc/server.py)
PROTOCOL_CODES = {rpc_errors.PARSE_ERROR: "parse_error", rpc_errors.INVALID_REQUEST: "invalid_request",
                  rpc_errors.METHOD_NOT_FOUND: "method_not_found"}


def documented_errors() -> dict[int, list[str]]:
    """``{code: [names]}`` of the error table in docs/protocol.md's "## Errors" section."""
    doc = (ROOT / "docs" / "protocol.md").read_text()
    section = doc.split("\n## Errors", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            rows[int(m.group(1))] = re.findall(r"`([^`]+)`", m.group(2))
    return rows


def constructed_names() -> set[str]:
    """Names called anywhere in the package outside class bodies: ``FileNotFound(...)`` and the like."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                names.add(node.func.id)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
    return names


def test_the_doc_table_is_read_whole():
    rows = documented_errors()
    assert {-32700, -32600, -32601, -32602, -32800, 1000, 1001, 2006, 3001, 4001, 5001} <= set(rows)


def test_every_documented_code_is_in_the_one_table_with_its_name():
    for code, names in documented_errors().items():
        if code in PROTOCOL_CODES:
            assert PROTOCOL_CODES[code] in names
            continue
        cls = hp_errors.InvalidOption if code == rpc_errors.INVALID_PARAMS else hp_errors.error_class(code)
        assert cls is not None, f"{code} is documented but hotpixels.errors has no class for it"
        assert cls.NAME in names, f"{code}: the doc says {names}, the table {cls.NAME!r}"


def protocol_codes_sent() -> set[int]:
    """Codes the rpc package sends itself: ``ProtocolError(code, ...)`` / ``error_response(id, code, ...)``
    calls whose code is a literal or one of rpc/errors.py's constants."""
    constants = {name: getattr(rpc_errors, name) for name in dir(rpc_errors) if name.isupper()}
    sent = set()
    for path in (PACKAGE / "rpc").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                    in ("ProtocolError", "error_response")):
                continue
            for arg in node.args[:2]:
                if isinstance(arg, ast.Name) and arg.id in constants:
                    sent.add(constants[arg.id])
                elif isinstance(arg, ast.UnaryOp) and isinstance(arg.operand, ast.Constant):
                    sent.add(-arg.operand.value)
    return sent


def test_every_documented_code_has_a_place_that_raises_it():
    called = constructed_names()
    sent = protocol_codes_sent()
    for code in documented_errors():
        if code in PROTOCOL_CODES:
            assert code in sent, f"the worker never answers {code} though docs/protocol.md lists it"
            continue
        cls = hp_errors.InvalidOption if code == rpc_errors.INVALID_PARAMS else hp_errors.error_class(code)
        assert cls.__name__ in called, f"nothing raises {cls.__name__} ({code}) though docs/protocol.md lists it"


def test_every_class_of_the_table_is_documented_under_its_own_code():
    rows = documented_errors()
    for cls in hp_errors.all_error_classes():
        wire = rpc_errors.INVALID_PARAMS if cls is hp_errors.InvalidOption else cls.CODE
        assert cls.NAME in rows.get(cls.CODE, []) + rows.get(wire, []), f"{cls.__name__} is not in docs/protocol.md"


@pytest.mark.parametrize("cls", hp_errors.all_error_classes(), ids=lambda c: c.NAME)
def test_the_client_turns_each_wire_error_back_into_its_class(cls):
    sent = cls("something a photographer can act on", path="/photos/a.dng", data={"param": "paths", "extra": 3})
    back = exception_from_wire(error_object(sent))
    assert type(back) is cls
    assert (back.message, back.path, back.data) == (sent.message, sent.path, sent.data)


def test_protocol_codes_and_unknown_codes_stay_recognisable():
    for code, name in PROTOCOL_CODES.items():
        back = exception_from_wire({"code": code, "message": "m", "data": {"name": name}})
        assert isinstance(back, ProtocolError) and (back.code, back.name) == (code, name)
    newer = exception_from_wire({"code": 1999, "message": "from a newer worker", "data": {"name": "new_thing"}})
    assert isinstance(newer, hp_errors.InternalError) and newer.data["code"] == 1999


def test_a_real_worker_failure_reaches_a_python_caller_as_its_class(tmp_path):
    import sys

    worker = WorkerClient.spawn([str(Path(sys.executable).parent / "hotpixels-worker"), "--stdio"])
    try:
        missing = str(tmp_path / "missing.dng")
        with pytest.raises(hp_errors.FileNotFound) as err:
            worker.result("image.inspect", {"path": missing}, timeout_s=120)
        assert err.value.path == missing and err.value.data["param"] == "path"
        with pytest.raises(hp_errors.InvalidOption) as err:
            worker.result("worker.hello", {"protocol": "one"}, timeout_s=120)
        assert err.value.data["param"] == "protocol"
        with pytest.raises(ProtocolError) as err:
            worker.result("image.frobnicate", timeout_s=120)
        assert err.value.code == -32601
    finally:
        worker.kill()
