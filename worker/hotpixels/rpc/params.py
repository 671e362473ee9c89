"""Parameter checking for RPC methods, before any work starts.

Every method reads its named parameters through a :class:`Params`; a missing, unknown or
ill-typed parameter raises :class:`~hotpixels.errors.InvalidOption` naming it (sent as -32602 with
``data.param``). Paths are checked up front: inputs exist, are regular files and are readable;
output folders exist (or can be created) and are writable — so a batch never fails half-way on
something we could have seen at the start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from ..errors import DestinationUnwritable, FileNotFound, FileNotReadable
from .errors import bad_param

_MISSING = object()


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
        if not isinstance(value, str):
            raise bad_param(name, f"'{name}' must be a string")
        if not allow_empty and not value.strip():
            raise bad_param(name, f"'{name}' must not be empty")
        if choices is not None and value not in choices:
            raise bad_param(name, f"'{name}' must be one of {', '.join(sorted(choices))}")
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise bad_param(name, f"'{name}' must be true or false")
        return value

    def number(self, name: str, default: Any = _MISSING, *, lo: float | None = None,
               hi: float | None = None) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_param(name, f"'{name}' must be a number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise bad_param(name, f"'{name}' must be between {lo} and {hi} (got {value})")
        return float(value)

    def str_list(self, name: str, default: Any = _MISSING, *, choices: Iterable[str] | None = None,
                 non_empty: bool = True) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise bad_param(name, f"'{name}' must be a list of strings")
        if non_empty and not value:
            raise bad_param(name, f"'{name}' must not be empty")
        if choices is not None:
            wrong = [v for v in value if v not in choices]
            if wrong:
                raise bad_param(name, f"'{name}': unknown value '{wrong[0]}' (use {', '.join(sorted(choices))})")
        return value

    def input_file(self, name: str) -> str:
        """A path that must name an existing, readable regular file."""
        path = self.str(name)
        check_input_file(path, name)
        return path

    def done(self) -> None:
        """Reject parameters this method does not know (typos must not be silently ignored)."""
        extra = sorted(set(self.params) - self._seen)
        if extra:
            raise bad_param(extra[0], f"{self.method} has no parameter '{extra[0]}'")


def check_input_file(path: str, param: str) -> None:
    """Exists, is a regular file, is readable — else 1001/1002 naming ``param`` and the path."""
    p = Path(path)
    if not p.exists():
        raise FileNotFound(f"file not found: {path}", path=path, data={"param": param})
    if not p.is_file():
        raise FileNotReadable(f"not a regular file: {path}", path=path, data={"param": param})
    if not os.access(p, os.R_OK):
        raise FileNotReadable(f"cannot read {path}: permission denied", path=path, data={"param": param})


def check_output_dir(path: str, param: str, *, create: bool = True) -> None:
    """A writable folder (created when ``create``) — else 1011 naming ``param`` and the path."""
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
