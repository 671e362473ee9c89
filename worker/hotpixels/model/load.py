"""Load the residual classifier once per process — in numpy on the CPU, in torch on a GPU.

Lookup: ``HOTPIXELS_MODEL`` (a file path) if set, else ``models/residual-v2.pt`` in the source
tree (``Path(__file__).parents[3] / "models"``), else, in a frozen worker (PyInstaller), the
``models/`` folder bundled next to the executable's data (``sys._MEIPASS``).

Backends. On the CPU (the default) the network runs in numpy (:mod:`.numpy_net`) from the ``.npz``
export beside the ``.pt`` (:mod:`.weights`, read with ``allow_pickle=False``): no torch import,
which is what lets the CLI start fast and the frozen worker leave torch out. ``device`` (or the
environment variable ``HOTPIXELS_DEVICE``) ``"cuda"``, ``"mps"`` or ``"auto"`` runs it in torch on
that device when torch is installed (``torch.load(..., weights_only=True)``, no pickle code runs);
``"auto"`` without a GPU, or without torch, is numpy on the CPU. A ``.pt`` without a current export
beside it is read with torch on the CPU when torch is installed, else it is :class:`ModelCorrupt`.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelCorrupt, ModelMissing
from .features import frame_context
from .weights import ARCH, SUFFIX, StaleExport, read_weights

MODEL_NAME = "residual-v2.pt"
DEVICE_ENV = "HOTPIXELS_DEVICE"
_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str], "Detector"] = {}
log = logging.getLogger(__name__)


@dataclass
class Detector:
    """A loaded network, its metadata (threshold calibration, validation figures) and where it runs.

    ``backend`` is ``"numpy"`` (``net``: a :class:`~.numpy_net.NumpyPatchNet`, ``device`` ``"cpu"``)
    or ``"torch"`` (``net``: a :class:`~.net.PatchNet` on ``device``).
    """

    net: Any
    meta: dict
    device: str
    path: str
    backend: str
    n_params: int

    def logits(self, x: np.ndarray, ctx: np.ndarray | None = None) -> np.ndarray:
        """(N,) float32 logits for (N, C, P, P) inputs (:func:`~.features.patch_features`).

        ``x`` should hold every candidate of one frame (above the amplitude gate): the frame context
        (:func:`hotpixels.model.features.frame_context`) is computed from them unless ``ctx`` is given.
        """
        if len(x) == 0:
            return np.zeros(0, dtype=np.float32)
        if ctx is None:
            ctx = frame_context(x)
        if self.backend == "numpy":
            return self.net(x, ctx)
        from .net import torch_logits

        return torch_logits(self.net, x, ctx)


def model_path() -> Path:
    env = os.environ.get("HOTPIXELS_MODEL")
    if env:
        return Path(env)
    src = Path(__file__).resolve().parents[3] / "models" / MODEL_NAME
    frozen = Path(getattr(sys, "_MEIPASS", "")) / "models" / MODEL_NAME if getattr(sys, "frozen", False) else None
    return frozen if frozen is not None and frozen.is_file() else src


def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def wants_torch(device: str | None) -> bool:
    """Does ``device`` (default ``HOTPIXELS_DEVICE``, else ``"cpu"``) ask for the torch backend here?"""
    dev = (device or os.environ.get(DEVICE_ENV) or "cpu").lower()
    if dev == "cpu" or not _torch_installed():
        return False
    if dev != "auto":
        return True
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(torch.cuda.is_available() or (mps is not None and mps.is_available()))


def load_detector(path: str | Path, device: str | None = None) -> Detector:
    """Read a weights file (no cache); ModelMissing / ModelCorrupt on failure."""
    path = Path(path)
    if not path.is_file():
        raise ModelMissing(f"the residual hot-pixel model is missing: {path} (run 'hotpixels train' or reinstall)",
                           path=str(path))
    if wants_torch(device):
        return _load_torch(path, device or os.environ.get(DEVICE_ENV) or "auto")
    try:
        state, meta, _npz = read_weights(path)
    except (FileNotFoundError, StaleExport) as exc:
        if path.suffix != SUFFIX and _torch_installed():
            log.warning("%s; reading %s with torch on the CPU", exc, path.name)
            return _load_torch(path, "cpu")
        raise ModelCorrupt(f"the residual hot-pixel model cannot be read without torch: {exc}", path=str(path)) from exc
    except Exception as exc:  # noqa: BLE001 - any failure to read the file means a bad file
        raise ModelCorrupt(f"the residual hot-pixel model cannot be read: {path} ({exc})", path=str(path)) from exc
    try:
        _check_arch(meta)
        from .numpy_net import NumpyPatchNet

        net = NumpyPatchNet(state)
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelCorrupt(f"the residual hot-pixel model cannot be read: {path} ({exc})", path=str(path)) from exc
    return Detector(net, meta, "cpu", str(path), "numpy", net.n_params)


def _check_arch(meta: dict) -> None:
    if meta.get("arch") != ARCH:
        raise ValueError(f"architecture {meta.get('arch')!r}, expected {ARCH!r}")
    if not all(math.isfinite(float(meta[k])) for k in ("threshold_logit", "sensitivity_span")):
        raise ValueError("the threshold calibration is not a finite number")


def _load_torch(path: Path, device: str) -> Detector:
    from .net import load_torch_net

    try:
        net, meta, dev = load_torch_net(path, device)
        _check_arch(meta)
    except Exception as exc:  # noqa: BLE001 - any failure to read the file means a bad file
        raise ModelCorrupt(f"the residual hot-pixel model cannot be read: {path} ({exc})", path=str(path)) from exc
    return Detector(net, meta, str(dev), str(path), "torch", int(sum(p.numel() for p in net.parameters())))


def get_detector(device: str | None = None) -> Detector:
    """The process-wide detector (loaded on first use, then cached per path and device)."""
    path = model_path()
    key = (str(path), str(device or os.environ.get(DEVICE_ENV) or "cpu"))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = load_detector(path, device)
        return _CACHE[key]
