"""Atomic file writes and JSON helpers shared by every part that writes files.

Every file HotPixels writes (profiles, reports, previews, pictures, simulated DNGs, truth) appears
complete or not at all: it is written to a fresh hidden name in the destination folder and renamed
over the target with ``os.replace`` only when complete; on any failure (or a cancel) the
temporary file is removed. The temporary file is opened with ``"xb"`` rather than ``mkstemp`` so
that the result gets the user's umask (mkstemp's 0600 would hide reports from other users).

Temporary names carry the writing process's id (:func:`temp_path`: ``.<name>.hp<pid>-<random>.tmp``)
so that a run killed mid-write (``kill -9``, power loss) leaves a file the next run in that folder
recognises and removes (:func:`remove_stale_temps`: only when that process is gone).

Inputs: :func:`check_regular_file` admits only regular files, before anything opens them (a FIFO
would block the opener for good, a device could stream without end).

JSON files (reports, ``--json`` output) are written by :func:`dumps_json`: strict JSON, where a
NaN or an infinity (a ratio over an empty region, say) becomes ``null`` instead of the ``NaN``
token that no JSON parser accepts.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Callable, Union

from .errors import DestinationUnwritable, FileNotFound, FileNotReadable

Payload = Union[bytes, str, Callable[[BinaryIO], None]]


def atomic_write(path: str | os.PathLike, payload: Payload, *, fsync: bool = False) -> Path:
    """Write ``payload`` (bytes, text as UTF-8, or a function given the open binary file) to ``path``.

    Raises :class:`~hotpixels.errors.DestinationUnwritable` when the folder cannot take a file.
    """
    path = Path(path)
    remove_stale_temps(path.parent)
    tmp = temp_path(path)
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
    except OSError as exc:  # a full disk, a folder gone read-only: named, and nothing left behind
        _unlink_quietly(tmp)
        raise DestinationUnwritable(f"cannot write {path}: {exc.strerror or exc}", path=str(path)) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return path


def _unlink_quietly(path: str | os.PathLike) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def claim_name(tmp: str | os.PathLike, candidates) -> Path:
    """Give the finished file ``tmp`` the first free name of ``candidates``, atomically.

    Each name is taken with a hard link, which fails when the name exists, so two processes can
    never both take one name (the loser goes on to the next candidate); ``tmp`` is then removed.
    Where the file system has no hard links, the name is claimed by creating it exclusively and
    ``tmp`` renamed over it. Raises :class:`~hotpixels.errors.OutputExists` when every candidate
    is taken (``tmp`` is left to the caller).
    """
    from .errors import OutputExists

    tmp = Path(tmp)
    last = None
    for cand in candidates:
        cand = Path(cand)
        last = cand
        try:
            os.link(tmp, cand)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS, errno.EMLINK):
                raise
            try:
                os.close(os.open(cand, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                continue
            os.replace(tmp, cand)
            return cand
        _unlink_quietly(tmp)
        return cand
    raise OutputExists(f"no free output name (last tried: {last})", path=str(last) if last else None)


_TEMP_RE = re.compile(r"^\..*\.hp(\d+)-[0-9a-f]{8}\.tmp$")
_CLEANED: dict[str, float] = {}  # folder -> when it was last looked at (time.monotonic)
_CLEANED_LOCK = threading.Lock()
RESCAN_AFTER_S = 60.0  # a long-lived worker looks at a folder again after this long


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh hidden temporary name beside ``path`` that carries this process's id."""
    path = Path(path)
    return path.parent / f".{path.name[:120]}.hp{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, *, again: bool = False) -> list[str]:
    """Remove the temporary files of :func:`temp_path` in ``folder`` whose process is gone.

    Done once a minute at most per folder and process (``again=True`` forces a new look);
    returns the removed names. Never fails: a folder that cannot be listed or a file another run removed first is
    skipped.
    """
    key = os.path.abspath(os.fspath(folder))
    now = time.monotonic()
    with _CLEANED_LOCK:
        if not again and now - _CLEANED.get(key, -RESCAN_AFTER_S) < RESCAN_AFTER_S:
            return []
        _CLEANED[key] = now
    removed = []
    try:
        names = os.listdir(key)
    except OSError:
        return removed
    for name in names:
        m = _TEMP_RE.match(name)
        if m is None or _process_alive(int(m.group(1))):
            continue
        try:
            if stat.S_ISREG(os.lstat(os.path.join(key, name)).st_mode):
                os.unlink(os.path.join(key, name))
                removed.append(name)
        except OSError:
            pass
    return removed


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


def finite_json(o: Any) -> Any:
    """``o`` with every NaN/infinity replaced by ``None`` (recursively through dicts, lists, tuples)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: finite_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite_json(v) for v in o]
    return o


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that always yields strict JSON: non-finite numbers (also numpy ones) become
    ``null``; numpy values and paths are converted by ``default`` (:func:`json_default` unless given)."""
    import json

    kwargs.setdefault("default", json_default)
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:  # a NaN or an infinity somewhere: convert numpy values first, then replace them
        plain = json.loads(json.dumps(obj, default=kwargs["default"]))
        return json.dumps(finite_json(plain), allow_nan=False, **kwargs)


def check_regular_file(path: str | os.PathLike) -> os.stat_result:
    """``os.stat`` of an input file, refusing anything but a regular file without opening it.

    Raises :class:`~hotpixels.errors.FileNotFound` (1001) when nothing is there, and
    :class:`~hotpixels.errors.FileNotReadable` (1002) for a folder, a FIFO, a device or socket, a
    symlink loop, a name the system refuses (too long, a NUL byte) or a file we may not read.
    """
    try:
        name = os.fspath(path)
    except TypeError:
        raise FileNotReadable(f"not a file path: {path!r}") from None
    shown = repr(name) if isinstance(name, bytes) else name
    if isinstance(name, str) and "\0" in name:
        raise FileNotReadable("the file name contains a NUL character", path=shown.replace("\0", "\\0"))
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise FileNotFound(f"file not found: {shown}", path=shown) from None
    except OSError as exc:
        why = {errno.ELOOP: "its symbolic links form a loop", errno.ENAMETOOLONG: "the name is too long",
               errno.ENOTDIR: "a part of the path is not a folder"}.get(exc.errno, exc.strerror or str(exc))
        if exc.errno == errno.ENOTDIR:
            raise FileNotFound(f"file not found: {shown} ({why})", path=shown) from None
        raise FileNotReadable(f"cannot read {shown}: {why}", path=shown) from None
    except ValueError as exc:  # embedded NUL in bytes
        raise FileNotReadable(f"cannot read {shown}: {exc}", path=shown) from None
    mode = st.st_mode
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise FileNotReadable(f"not a file: {shown} is {kind}", path=shown, data={"kind": kind})
    if not os.access(name, os.R_OK):
        raise FileNotReadable(f"permission denied: {shown}", path=shown)
    return st


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open an input for reading after :func:`check_regular_file`, without ever blocking: the
    file is opened non-blocking and checked again (it could have been swapped for a FIFO)."""
    check_regular_file(path)
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise FileNotFound(f"file not found: {name}", path=str(name)) from None
    except OSError as exc:
        raise FileNotReadable(f"cannot read {name}: {exc.strerror or exc}", path=str(name)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileNotReadable(f"not a file: {name} is not a regular file", path=str(name))
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


PSEUDO_ROOTS = ("/proc", "/sys", "/dev")  # Linux's kernel filesystems: their "files" are not photos


def refuse_pseudo_file(path: str | os.PathLike, st: os.stat_result, param: str | None = None) -> None:
    """1002 for a file or folder on a kernel pseudo-filesystem (``/proc``, ``/sys``, ``/dev``): their
    entries say "regular file" yet may block on read (``/proc/kmsg``) or never end."""
    if not sys.platform.startswith("linux"):
        return
    real = os.path.realpath(path)
    inside = any(real == root or real.startswith(root + "/") for root in PSEUDO_ROOTS)
    if not inside:
        for root in PSEUDO_ROOTS:
            try:
                inside = inside or os.stat(root).st_dev == st.st_dev
            except OSError:
                pass
    if inside:
        shown = os.fspath(path)
        raise FileNotReadable(f"not a photo: {shown} is a system file (/proc, /sys or /dev)", path=shown,
                              data={"param": param} if param else None)


def check_input_file(path: str | os.PathLike, param: str | None = None) -> os.stat_result:
    """:func:`check_regular_file` plus :func:`refuse_pseudo_file`, the error naming ``param`` (the
    request parameter or CLI argument that named the file) when given."""
    try:
        st = check_regular_file(path)
        refuse_pseudo_file(path, st, param)
    except (FileNotFound, FileNotReadable) as exc:
        if param:
            exc.data.setdefault("param", param)
        raise
    return st
