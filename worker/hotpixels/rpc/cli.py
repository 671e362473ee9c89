"""``hotpixels-worker``: pick the transport, set up logging, serve.

    hotpixels-worker [--stdio]                                  requests on stdin, replies on stdout
    hotpixels-worker --connect SEND_PORT RECV_PORT --token T    Lightroom's LrSocket pair on 127.0.0.1
    hotpixels-worker --self-test                                model, codecs, exiftool; one line

Exit status: 0 after EOF, ``worker.shutdown`` or the client closing a socket; 1 when a socket
cannot be reached or the self-test fails; 2 for bad command-line arguments.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from .. import PROTOCOL_VERSION, __version__

log = logging.getLogger("hotpixels.rpc")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotpixels-worker",
                                     description="HotPixels worker: JSON-RPC 2.0, one message per line.")
    # --stdio is the default; --connect wins over it (``./run.sh serve`` always passes --stdio, and the
    # plugin's development fallback appends --connect to that command line)
    parser.add_argument("--stdio", action="store_true", help="serve on stdin/stdout (the default)")
    parser.add_argument("--connect", nargs=2, type=int, metavar=("SEND_PORT", "RECV_PORT"),
                        help="connect to the plugin's send-mode and receive-mode sockets on 127.0.0.1")
    parser.add_argument("--self-test", action="store_true", help="check model, codecs and exiftool, then exit")
    parser.add_argument("--token", help="one-time token to present first on RECV_PORT (with --connect)")
    parser.add_argument("--log", metavar="FILE", help="append the log to FILE instead of stderr")
    parser.add_argument("--library", metavar="DIR", help="default profile library folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    parser.add_argument("--version", action="version", version=f"hotpixels-worker {__version__} (protocol {PROTOCOL_VERSION})")
    return parser


def setup_logging(log_file: str | None, verbose: bool) -> None:
    handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO if log_file else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.connect and not args.token:
        parser.error("--connect needs --token")
    setup_logging(args.log, args.verbose)
    from .bundle import use_bundled_exiftool

    use_bundled_exiftool()
    if args.self_test:
        from .selftest import main as self_test

        return self_test()
    return serve(args)


def serve(args: argparse.Namespace) -> int:
    from .server import Server
    from .state import WorkerState
    from .transports import socket_pair_transport, stdio_transport

    if args.connect:
        send_port, recv_port = args.connect
        try:
            transport = socket_pair_transport(send_port, recv_port)
        except OSError as exc:
            log.error("cannot connect to the plugin on 127.0.0.1:%s/%s: %s", send_port, recv_port, exc)
            return 1
    else:
        try:
            transport = stdio_transport()
        except OSError as exc:
            log.error("cannot serve on stdio: %s", exc)
            return 1
    server = Server(transport, state=WorkerState(default_library=args.library))
    if args.connect:
        server.notify("$/token", {"token": args.token, "pid": os.getpid(), "protocol": PROTOCOL_VERSION})
    log.info("hotpixels-worker %s serving on %s (pid %d)", __version__, transport.name, os.getpid())
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
