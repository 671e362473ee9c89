"""The two byte pipes the worker speaks over: stdio, and Lightroom's LrSocket pair.

Lightroom's Lua cannot hold a two-way pipe to a child process, so the plugin binds two loopback
sockets and passes their ports: ``SEND_PORT`` is the plugin's ``mode="send"`` socket (the worker
*reads* requests there) and ``RECV_PORT`` its ``mode="receive"`` socket (the worker *writes*
responses there). Either way the server sees one binary reader and one binary writer.

stdout must carry protocol only: :func:`protect_stdout` moves the real stdout file descriptor out of
the way and points fd 1 (and ``sys.stdout``) at stderr, so a stray ``print`` or a C library
writing to fd 1 cannot corrupt the stream.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
CONNECT_TIMEOUT_S = 10.0


@dataclass
class Transport:
    """A reader and a writer, plus how to close them and learn that the peer went away."""

    reader: BinaryIO
    writer: BinaryIO
    name: str
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _watch: Callable[[Callable[[], None]], None] | None = None

    def watch_peer_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from a daemon thread) when the write side's peer closes it."""
        if self._watch is not None:
            self._watch(callback)

    def close(self) -> None:
        """Close the write side (and sockets). The reader is left to its thread: closing a
        buffered stream another thread is blocked reading would deadlock on its lock."""
        for closer in self._closers:
            try:
                closer()
            except OSError:
                pass


def protect_stdout() -> BinaryIO | None:
    """Return a private binary handle on the real stdout; fd 1 and ``sys.stdout`` go to stderr.

    ``None`` when the process has no usable stdout (a GUI host may start it without one; fine in
    socket mode).
    """
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
        proto_fd = os.dup(1)
    except (OSError, ValueError):
        proto_fd = None
    try:
        os.dup2(2, 1)
    except OSError:
        pass
    sys.stdout = sys.stderr if sys.stderr is not None else open(os.devnull, "w", encoding="utf-8")
    return io.open(proto_fd, "wb", buffering=0, closefd=True) if proto_fd is not None else None


def stdio_transport() -> Transport:
    """Requests on stdin, responses on (the protected) stdout."""
    out = protect_stdout()
    if out is None:
        raise OSError("this process has no standard output to serve on; use --connect")
    # fd 0, not sys.stdin: in a windowless (Windows) build sys.stdin may be None while fd 0 is a pipe
    stdin = io.open(os.dup(0), "rb", buffering=io.DEFAULT_BUFFER_SIZE, closefd=True)
    return Transport(reader=stdin, writer=out, name="stdio", _closers=[out.close])


def socket_pair_transport(send_port: int, recv_port: int, host: str = LOOPBACK,
                          timeout_s: float = CONNECT_TIMEOUT_S) -> Transport:
    """Connect to the plugin's two loopback sockets (never anything but 127.0.0.1).

    Raises ``OSError`` when either cannot be reached within ``timeout_s``.
    """
    if host != LOOPBACK:
        raise ValueError("the worker connects to 127.0.0.1 only")
    protect_stdout()
    send_sock = socket.create_connection((host, send_port), timeout=timeout_s)
    try:
        recv_sock = socket.create_connection((host, recv_port), timeout=timeout_s)
    except OSError:
        send_sock.close()
        raise
    for s in (send_sock, recv_sock):
        s.settimeout(None)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = send_sock.makefile("rb")
    writer = recv_sock.makefile("wb")

    def watch(callback: Callable[[], None]) -> None:
        # The plugin never writes on its receive socket: any return from recv() means it closed.
        def run() -> None:
            try:
                while recv_sock.recv(4096):
                    pass
            except OSError:
                pass
            callback()

        threading.Thread(target=run, name="recv-watch", daemon=True).start()

    def close_all() -> None:
        for s in (send_sock, recv_sock):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    return Transport(reader=reader, writer=writer, name=f"sockets {send_port}/{recv_port}",
                     _closers=[close_all, writer.close], _watch=watch)


def pipe_transport(reader: BinaryIO, writer: BinaryIO, name: str = "pipes") -> Transport:
    """Any pair of binary streams (in-process tests: ``os.pipe`` or ``socket.socketpair``)."""
    return Transport(reader=reader, writer=writer, name=name, _closers=[writer.close])
