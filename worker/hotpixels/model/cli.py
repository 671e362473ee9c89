"""``hotpixels train [--out models/residual-v2.pt] [--seed N] [--samples N] [--epochs N] [--device ...]``."""

from __future__ import annotations

import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the residual hot-pixel classifier on simulated data")
    p.add_argument("--out", default=None,
                   help="weights file to write (default: models/residual-v2.pt in the source tree)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--samples", type=int, default=3000, help="simulated training frames (256x256 each)")
    p.add_argument("--val-samples", type=int, default=300, help="validation frames (never trained on)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--width", type=int, default=16, help="channels per convolution layer")
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..cli import print_json
    from ..progress import TerminalProgress
    from .load import MODEL_NAME
    from .train import save_model, train_model

    out = args.out or str(Path(__file__).resolve().parents[3] / "models" / MODEL_NAME)

    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    net, meta = train_model(seed=args.seed, frames=args.samples, val_frames=args.val_samples, epochs=args.epochs, width=args.width,
                            device=args.device, progress=TerminalProgress("train"), log=log)
    path = save_model(net, meta, out)
    if args.json:
        print_json({"path": str(path), "meta": meta})
    else:
        print(f"wrote {path}: validation {meta['val']}")
    return 0
