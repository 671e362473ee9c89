"""``python -m hotpixels.model.export [WEIGHTS.pt]``: write the torch-free ``.npz`` beside a ``.pt``.

Needs torch (the ``.pt`` is read with ``torch.load(weights_only=True)``). ``hotpixels train`` does
this itself; run it by hand only for a ``.pt`` written otherwise. See :mod:`hotpixels.model.weights`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .weights import export_path, file_sha256, write_export


def export_weights(pt_path: str | Path) -> Path:
    """Write ``export_path(pt_path)`` from the ``.pt``'s state dict and metadata; returns its path."""
    import torch

    blob = torch.load(pt_path, map_location="cpu", weights_only=True)
    state = {k: v.detach().cpu().numpy() for k, v in blob["state_dict"].items()}
    return write_export(state, blob["meta"], file_sha256(pt_path), export_path(pt_path))


def main(argv: list[str] | None = None) -> int:
    from .load import model_path

    args = sys.argv[1:] if argv is None else argv
    for pt in args or [str(model_path())]:
        print(f"wrote {export_weights(pt)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
