"""Entry point of the frozen worker (PyInstaller runs this file as ``__main__``)."""

import multiprocessing
import sys

from hotpixels.rpc.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
