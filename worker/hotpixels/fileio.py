"""Atomic file writes and JSON helpers shared by every part that writes files.

Every file HotPixels writes (profiles, reports, previews, pictures, simulated DNGs, truth) appears
complete or not at all: it is written to a fresh hidden name in the destination folder and renamed
over the target with ``os.replace`` only when complete; on any failure (or a cancel) the
temporary file is removed. The temporary file is opened with ``"xb"`` rather than ``mkstemp`` so
that the result gets the user's umask (mkstemp's 0600 would hide reports from other users).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Callable, Union

from .errors import DestinationUnwritable

Payload = Union[bytes, str, Callable[[BinaryIO], None]]


def atomic_write(path: str | os.PathLike, payload: Payload, *, fsync: bool = False) -> Path:
    """Write ``payload`` (bytes, text as UTF-8, or a function given the open binary file) to ``path``.

    Raises :class:`~hotpixels.errors.DestinationUnwritable` when the folder cannot take a file.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        fh = open(tmp, "xb")
    except OSError as exc:
        raise DestinationUnwritable(f"cannot write to {path.parent}: {exc.strerror or exc}",
                                    path=str(path)) from exc
    try:
        with fh:
            if callable(payload):
                payload(fh)
            else:
                fh.write(payload.encode("utf-8") if isinstance(payload, str) else payload)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars/arrays and paths."""
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
