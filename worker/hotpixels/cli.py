"""The ``hotpixels`` command line.

Each feature registers its own sub-command from its own package (``<package>/cli.py`` with a
``register(subparsers)`` that sets ``func``), so this file only assembles them and owns the
error policy: a :class:`~hotpixels.errors.HotPixelsError` becomes one plain line on stderr (or a
JSON object on stdout with ``--json``) and exit status 2; no traceback reaches a user.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any, Sequence

from . import __version__
from .errors import HotPixelsError, as_hotpixels_error
from .fileio import dumps_json

# module paths, each with register(subparsers)
COMMAND_MODULES = [
    "hotpixels.demo",
    "hotpixels.simulate.cli",
    "hotpixels.dng.cli",
    "hotpixels.model.cli",
    "hotpixels.profiles.cli",
    "hotpixels.correct.cli",
]

log = logging.getLogger("hotpixels")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotpixels", description="Remove hot pixels from raw DNG photos.")
    parser.add_argument("--version", action="version", version=f"hotpixels {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def print_json(obj: Any) -> None:
    """Write one JSON document to stdout (the only thing on stdout with ``--json``)."""
    sys.stdout.write(dumps_json(obj, indent=2, ensure_ascii=False))
    sys.stdout.write("\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our stdout went away (e.g. `| head`): not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except BaseException as exc:  # noqa: BLE001 - the one place that turns failures into messages
        if isinstance(exc, SystemExit):
            raise
        err = as_hotpixels_error(exc)
        if not isinstance(exc, HotPixelsError):
            log.debug("unexpected error", exc_info=exc)
        if getattr(args, "json", False):
            print_json({"error": err.to_dict()})
        else:
            print(f"error [{err.code} {err.NAME}]: {err.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
