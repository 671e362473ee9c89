"""Progress reporting shared by the CLI (a terminal line) and the worker (``$/progress``).

Long operations take ``progress: ProgressFn | None`` and call ``progress(done, total, message)``
(``done`` of ``total`` units, e.g. frames or images) and ``cancel: threading.Event | None``; they
call :func:`check_cancel` between units and raise :class:`hotpixels.errors.Cancelled`, after
removing any partial output.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, Optional, TextIO

from .errors import Cancelled

ProgressFn = Callable[[int, int, str], None]


def check_cancel(cancel: Optional[threading.Event]) -> None:
    """Raise :class:`Cancelled` when the user asked to stop."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user; no partial files were left behind")


def report(progress: Optional[ProgressFn], done: int, total: int, message: str = "") -> None:
    if progress is not None:
        progress(done, total, message)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


class TerminalProgress:
    """A one-line progress display on a terminal: ``label i/n message, elapsed, ETA`` (``label NN%``
    with ``percent``, for counts in thousandths such as the batch engine's).

    Writes to stderr (stdout is for results and ``--json``) and only when stderr is a terminal,
    unless ``force`` is set.
    """

    def __init__(self, label: str, stream: TextIO | None = None, force: bool = False, percent: bool = False):
        self.label = label
        self.percent = percent
        self.stream = stream or sys.stderr
        self.enabled = force or bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._last_len = 0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        eta = ""
        if 0 < done < total:
            eta = f", ETA {format_duration(elapsed / done * (total - done))}"
        count = (f"{100 * done // total}%" if total else "…") if self.percent else f"{done}/{total}"
        line = f"{self.label} {count} {message} ({format_duration(elapsed)} elapsed{eta})"
        pad = " " * max(0, self._last_len - len(line))
        self.stream.write("\r" + line + pad)
        self.stream.flush()
        self._last_len = len(line)

    def clear(self) -> None:
        """Wipe the progress line so that a result line can be printed in its place."""
        if self.enabled and self._last_len:
            self.stream.write("\r" + " " * self._last_len + "\r")
            self.stream.flush()
            self._last_len = 0

    def close(self) -> None:
        if self.enabled and self._last_len:
            self.stream.write("\n")
            self.stream.flush()
            self._last_len = 0
