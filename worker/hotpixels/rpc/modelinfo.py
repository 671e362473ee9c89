"""Describe stage 3's model for ``worker.hello`` without importing torch.

The weights file is found the way :mod:`hotpixels.model.load` finds it (``HOTPIXELS_MODEL`` or
``models/*.pt`` next to the package, or inside the frozen bundle); its SHA-256 is computed once.
"""

from __future__ import annotations

import hashlib
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

MODEL_ENV = "HOTPIXELS_MODEL"


def model_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    dirs = [here.parents[3] / "models"]  # source tree: <root>/worker/hotpixels/rpc/modelinfo.py
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        dirs.insert(0, Path(bundle) / "models")
    return dirs


MODEL_NAME = "residual-v2.pt"  # the name hotpixels.model.load looks for


def find_weights() -> Path | None:
    """Where :func:`hotpixels.model.load.model_path` will look (the file may not exist)."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    for d in model_dirs():
        if (d / MODEL_NAME).is_file():
            return d / MODEL_NAME
    return model_dirs()[-1] / MODEL_NAME


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe(detector: Any = None, *, loading: bool = False, error: BaseException | None = None) -> dict[str, Any]:
    """``{name, loaded, loading, path, sha256, params, error?}`` for hello."""
    info: dict[str, Any] = {"name": None, "loaded": detector is not None, "loading": loading,
                            "path": None, "sha256": None, "params": None}
    path = Path(detector.path) if detector is not None and getattr(detector, "path", None) else find_weights()
    if path is not None:
        info.update(name=path.stem, path=str(path))
        if path.is_file():
            st = path.stat()
            info["sha256"] = _sha256(str(path), st.st_size, st.st_mtime_ns)
    if detector is not None:
        if getattr(detector, "n_params", None) is not None:
            info["params"] = int(detector.n_params)
        info["backend"] = getattr(detector, "backend", None)
        meta = getattr(detector, "meta", None) or {}
        info["meta"] = {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool)) or v is None}
    if error is not None:
        info["error"] = {"code": getattr(error, "CODE", 1000), "message": str(error)}
    return info
