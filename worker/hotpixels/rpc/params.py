"""Parameter checking for RPC methods, before any work starts.

Each method declares its parameters as a table, ``{name: kind}``, in its :func:`rpc_method`
decorator, e.g. ``{"path": InputFile(required=True), "sensitivity": Number(0.0, 1.0)}``. Before the
method runs, :func:`validate` checks the whole request against the table:

* a parameter the table does not list, a missing required one, a wrong JSON type, a string with a
  NUL character or a lone UTF-16 surrogate (``"\\ud800"``), an over-long string, a number that is
  not finite or out of range, a list with a bad item: -32602 (``invalid_option``) with
  ``data.param`` naming it;
* paths by what they name: an :class:`InputFile` must be a readable regular file (1001/1002, see
  :func:`hotpixels.fileio.check_input_file`: a FIFO, a device, a folder, a symlink loop, a name
  too long for the system, a pseudo-file under ``/proc`` or ``/sys`` are 1002 at once, never opened);
  a :class:`Folder` is checked if it exists (1002 when it is something else); a :class:`Photo` is
  only checked for form, as an unreadable photo in a batch is that photo's result, not the call's.

The method then reads the checked values through :class:`Params` (``p.str("suffix", "_hotpixels")``);
its accessors keep their own checks, so a method without a table is still safe, only later.
A new method or parameter is one line in a table: the kinds below cover strings, names, paths,
numbers, booleans, lists, request ids and lists of objects (:class:`Objects`, a table per item,
e.g. ``{"sites": Objects(fields={"y": Number(lo=0, integer=True, required=True), ...})}``).
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import DestinationUnwritable, FileNotReadable, HotPixelsError, InvalidOption
from ..fileio import check_input_file, refuse_pseudo_file
from .errors import bad_param

_MISSING = object()
MAX_STRING_CHARS = 4096
MAX_LIST_ITEMS = 100_000
MAX_WHOLE = 2**31 - 1  # the bound of a whole-number parameter that names no other
NAME_MAX_BYTES = 255  # one path component (Linux, macOS, Windows: 255)
PATH_MAX_BYTES = 4096  # a whole path (Linux PATH_MAX; macOS allows 1024, Windows long paths 32767)


# --- the kinds of parameter ------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    """Base of the table's entries: ``required``, and ``null_ok`` when JSON null means "absent"."""

    required: bool = False
    null_ok: bool = False

    def check(self, name: str, value: Any) -> Any:
        return value


@dataclass(frozen=True)
class Str(Kind):
    """A string: no NUL, valid Unicode, at most ``max_chars``; one of ``choices`` when given."""

    choices: tuple[str, ...] | None = None
    allow_empty: bool = False
    max_chars: int = MAX_STRING_CHARS

    def check(self, name: str, value: Any) -> Any:
        text = check_text(name, value, self.max_chars)
        if not self.allow_empty and not text.strip():
            raise bad_param(name, f"'{name}' must not be empty")
        if self.choices is not None and text not in self.choices:
            raise bad_param(name, f"'{name}' must be one of {', '.join(sorted(self.choices))}")
        return text


@dataclass(frozen=True)
class Suffix(Str):
    """A file-name suffix: short, without separators or control characters (it ends up in a name)."""

    max_chars: int = 64
    allow_empty: bool = True

    def check(self, name: str, value: Any) -> Any:
        text = super().check(name, value)
        if any(c in "/\\:" or ord(c) < 32 for c in text) or text in (".", ".."):
            raise bad_param(name, f"'{name}' must not contain a slash, backslash, colon or control character")
        return text


@dataclass(frozen=True)
class PathStr(Str):
    """A path's form: a string whose components fit ``NAME_MAX`` and the whole ``PATH_MAX`` bytes
    (longer ones no system can open: 1002 naming the parameter)."""

    max_chars: int = 16 * PATH_MAX_BYTES  # the byte limits below decide; this only bounds the work
    error: type[HotPixelsError] = FileNotReadable

    def check(self, name: str, value: Any) -> Any:
        text = super().check(name, value)
        check_path_length(name, text, self.error)
        return text


@dataclass(frozen=True)
class Photo(PathStr):
    """A photo of a batch: checked for form only; whether it can be read is its own result."""


@dataclass(frozen=True)
class InputFile(PathStr):
    """A file the method reads: exists (1001), a readable regular file (1002), never a pseudo-file."""

    def check(self, name: str, value: Any) -> Any:
        text = super().check(name, value)
        check_input_file(text, name)
        return text


@dataclass(frozen=True)
class Folder(PathStr):
    """A folder that may not exist yet (a library): when something is there it must be a folder we
    can reach (1002 for a file, a FIFO, a symlink loop, a pseudo-file folder)."""

    def check(self, name: str, value: Any) -> Any:
        text = super().check(name, value)
        check_folder_if_present(text, name, self.error)
        return text


@dataclass(frozen=True)
class OutputFolder(Folder):
    """A folder the method writes into: the same checks, failing with 1011 (``destination_unwritable``);
    the method creates it when missing (:func:`check_output_dir`)."""

    error: type[HotPixelsError] = DestinationUnwritable


@dataclass(frozen=True)
class Bool(Kind):
    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, bool):
            raise bad_param(name, f"'{name}' must be true or false")
        return value


@dataclass(frozen=True)
class Number(Kind):
    """A finite number within ``[lo, hi]`` (never a boolean); ``integer`` wants a whole number."""

    lo: float | None = None
    hi: float | None = None
    integer: bool = False

    def check(self, name: str, value: Any) -> Any:
        return check_number(name, value, self.lo, self.hi, self.integer)


@dataclass(frozen=True)
class RequestId(Kind):
    """A JSON-RPC request id: a string, a number or null."""

    def check(self, name: str, value: Any) -> Any:
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return value
        return check_text(name, value, 256)


@dataclass(frozen=True)
class List(Kind):
    """A list of ``item`` (a kind), with at least ``min_items`` (default: not empty)."""

    item: Kind = field(default_factory=Str)
    min_items: int = 1
    max_items: int = MAX_LIST_ITEMS

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, list):
            raise bad_param(name, f"'{name}' must be a list")
        if len(value) < self.min_items:
            raise bad_param(name, f"'{name}' must hold at least {self.min_items} item(s)")
        if len(value) > self.max_items:
            raise bad_param(name, f"'{name}' holds {len(value)} items; at most {self.max_items}")
        return [self.item.check(name, v) for v in value]


@dataclass(frozen=True)
class Objects(Kind):
    """A list of objects, each checked against its own table (``fields``)."""

    fields: Mapping[str, Kind] = field(default_factory=dict)
    min_items: int = 1
    max_items: int = MAX_LIST_ITEMS

    def check(self, name: str, value: Any) -> Any:
        items = List(item=Kind(), min_items=self.min_items, max_items=self.max_items).check(name, value)
        out = []
        for i, obj in enumerate(items):
            if not isinstance(obj, dict):
                raise bad_param(name, f"'{name}'[{i}] must be an object")
            try:
                out.append(validate(self.fields, obj, f"'{name}'[{i}]"))
            except InvalidOption as exc:  # name the request's parameter; the message says which item
                raise bad_param(name, f"'{name}'[{i}]: {exc.message}", field=exc.data.get("param")) from None
        return out


# --- checks shared by the kinds and the accessors --------------------------------------------------
def check_text(name: str, value: Any, max_chars: int = MAX_STRING_CHARS) -> str:
    """A string without NUL characters or lone surrogates, at most ``max_chars`` long — else -32602."""
    if not isinstance(value, str):
        raise bad_param(name, f"'{name}' must be a string")
    if len(value) > max_chars:
        raise bad_param(name, f"'{name}' is {len(value)} characters long; at most {max_chars}")
    if "\0" in value:
        raise bad_param(name, f"'{name}' contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_param(name, f"'{name}' is not valid Unicode (a lone surrogate such as \\ud800)") from None
    return value


def check_number(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                 integer: bool = False) -> float | int:
    """A finite number (not a boolean) in ``[lo, hi]`` — else -32602."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_param(name, f"'{name}' must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise bad_param(name, f"'{name}' must be a finite number")
    if integer and isinstance(value, float) and not value.is_integer():
        raise bad_param(name, f"'{name}' must be a whole number")
    if integer:  # a whole number is a count or a coordinate: never beyond 32 bits
        lo = -MAX_WHOLE if lo is None else lo
        hi = MAX_WHOLE if hi is None else hi
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        shown = value if abs(value) < 1e15 else f"{float(value):.3g}"
        span = (f"between {lo} and {hi}" if lo is not None and hi is not None
                else f"at least {lo}" if lo is not None else f"at most {hi}")
        raise bad_param(name, f"'{name}' must be {span} (got {shown})")
    return int(value) if integer else value


def check_path_length(name: str, path: str, error: type[HotPixelsError] = FileNotReadable) -> None:
    """1002 naming ``name`` for a path no system can open: a component over 255 bytes, the whole
    over 4096 bytes (said before the system says ENAMETOOLONG in a worse place)."""
    encoded = path.encode("utf-8")
    if len(encoded) > PATH_MAX_BYTES:
        raise error(f"the path is {len(encoded)} bytes long; at most {PATH_MAX_BYTES}",
                              path=path[:200] + "…", data={"param": name})
    for part in path.replace("\\", "/").split("/"):
        if len(part.encode("utf-8")) > NAME_MAX_BYTES:
            raise error(f"a name in the path is {len(part.encode('utf-8'))} bytes long; "
                                  f"at most {NAME_MAX_BYTES}", path=path, data={"param": name})


def check_folder_if_present(path: str, param: str, error: type[HotPixelsError] = FileNotReadable) -> None:
    """Nothing there, or a reachable folder outside the system's pseudo-filesystems — else ``error``
    (1002 unless told)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise error(f"cannot use the folder {path}: {why}", path=path, data={"param": param}) from None
    if not stat.S_ISDIR(st.st_mode):
        raise error(f"not a folder: {path}", path=path, data={"param": param})
    try:
        refuse_pseudo_file(path, st, param)
    except FileNotReadable as exc:
        raise error(exc.message, path=path, data={"param": param}) from None


def validate(table: Mapping[str, Kind], params: Any, method: str) -> dict[str, Any]:
    """The request's params checked against ``table`` (see the module docstring); returns them."""
    if params is None:
        params = {}
    if isinstance(params, list):
        raise bad_param("params", f"{method} takes named parameters (a JSON object), not a list")
    extra = sorted(k for k in params if k not in table)
    if extra:
        raise bad_param(extra[0][:100], f"{method} has no parameter '{extra[0][:100]}'")
    out: dict[str, Any] = {}
    for name, kind in table.items():
        value = params.get(name, _MISSING)
        if value is _MISSING or (value is None and kind.null_ok):
            if kind.required:
                raise bad_param(name, f"{method} needs the parameter '{name}'")
            if value is not _MISSING:
                out[name] = None
            continue
        out[name] = kind.check(name, value)
    return out


# --- what a method reads ------------------------------------------------------------------------------
class Params:
    """Typed access to one request's named parameters; :meth:`done` rejects leftovers."""

    def __init__(self, params: dict[str, Any], method: str):
        self.params = dict(params)
        self.method = method
        self._seen: set[str] = set()

    def _get(self, name: str, default: Any) -> Any:
        self._seen.add(name)
        value = self.params.get(name, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise bad_param(name, f"{self.method} needs the parameter '{name}'")
            return default
        return value

    def has(self, name: str) -> bool:
        return name in self.params

    def any(self, name: str, default: Any = _MISSING) -> Any:
        """A parameter of any JSON type (e.g. a request id: number or string)."""
        return self._get(name, default)

    def str(self, name: str, default: Any = _MISSING, *, choices: Iterable[str] | None = None,
            allow_empty: bool = False) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        return Str(choices=tuple(choices) if choices is not None else None, allow_empty=allow_empty).check(name, value)

    def bool(self, name: str, default: bool = False) -> bool:
        return Bool().check(name, self._get(name, default))

    def number(self, name: str, default: Any = _MISSING, *, lo: float | None = None,
               hi: float | None = None) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        return float(check_number(name, value, lo, hi))

    def str_list(self, name: str, default: Any = _MISSING, *, choices: Iterable[str] | None = None,
                 non_empty: bool = True) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        item = Str(choices=tuple(choices) if choices is not None else None)
        return List(item=item, min_items=1 if non_empty else 0).check(name, value)

    def input_file(self, name: str) -> str:
        """A path that must name an existing, readable regular file."""
        return InputFile().check(name, self._get(name, _MISSING))

    def done(self) -> None:
        """Reject parameters this method does not know (typos must not be silently ignored)."""
        extra = sorted(set(self.params) - self._seen)
        if extra:
            raise bad_param(extra[0][:100], f"{self.method} has no parameter '{extra[0][:100]}'")


def check_output_dir(path: str, param: str, *, create: bool = True) -> None:
    """A writable folder (created when ``create``) — else 1011 naming ``param`` and the path."""
    OutputFolder().check(param, path)
    p = Path(path)
    if not p.exists() and create:
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DestinationUnwritable(f"cannot create the folder {path}: {exc.strerror}", path=path,
                                        data={"param": param}) from None
    if not p.is_dir():
        raise DestinationUnwritable(f"not a folder: {path}", path=path, data={"param": param})
    if not os.access(p, os.W_OK | os.X_OK):
        raise DestinationUnwritable(f"cannot write into {path}: permission denied; choose another folder",
                                    path=path, data={"param": param})


__all__ = ["Bool", "Folder", "InputFile", "Kind", "List", "Number", "Objects", "OutputFolder", "Params", "PathStr",
           "Photo", "RequestId", "Str", "Suffix", "check_input_file", "check_output_dir", "validate"]
