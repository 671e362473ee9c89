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


def find_weights() -> Path | None:
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    for d in model_dirs():
        found = sorted(d.glob("*.pt")) if d.is_dir() else []
        if found:
            return found[0]
    return None


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
    if detector is not None and hasattr(detector, "info"):
        try:
            info.update({k: v for k, v in dict(detector.info()).items() if v is not None})
        except Exception:  # noqa: BLE001
            pass
    if info["path"] is None:
        path = find_weights()
        if path is not None and path.is_file():
            st = path.stat()
            info.update(name=info["name"] or path.stem, path=str(path),
                        sha256=_sha256(str(path), st.st_size, st.st_mtime_ns))
    if error is not None:
        info["error"] = {"code": getattr(error, "CODE", 1000), "message": str(error)}
    return info
