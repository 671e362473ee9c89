"""Run one benchmark area in this process: ``python -m hotpixels.bench.one AREA RESULT.json ARGS...``."""

from __future__ import annotations

import importlib
import json
import sys


def main() -> int:
    area, result_path, *argv = sys.argv[1:]
    figures = importlib.import_module(f"hotpixels.bench.{area}").run(argv)
    with open(result_path, "w", encoding="utf-8") as fh:
        json.dump(figures, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
