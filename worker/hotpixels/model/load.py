"""Load the residual classifier once per process.

Lookup: ``HOTPIXELS_MODEL`` (a file path) if set, else ``models/residual-v2.pt`` in the source
tree (``Path(__file__).parents[3] / "models"``), else, in a frozen worker (PyInstaller), the
``models/`` folder bundled next to the executable's data (``sys._MEIPASS``). The file is read with
``torch.load(..., weights_only=True)`` (no pickle code runs). CPU by default; ``device="cuda"`` or
``"mps"`` (or ``"auto"``) moves it where torch has that backend.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ModelCorrupt, ModelMissing
from .features import N_CONTEXT, PATCH, frame_context
from .net import ARCH, PatchNet, pick_device

MODEL_NAME = "residual-v2.pt"
FREEZE_MIN_BATCH = 20_000  # candidates in one call that make a TorchScript freeze worth it
_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str], "Detector"] = {}


@dataclass
class Detector:
    """A loaded network, its metadata (threshold calibration, validation figures) and device."""

    net: PatchNet
    meta: dict
    device: torch.device
    path: str
    fast: torch.nn.Module | None = None  # traced + frozen copy (CPU): about 1.5x faster
    _fast_tried: bool = False

    @torch.inference_mode()
    def logits(self, x: torch.Tensor, ctx: torch.Tensor | None = None, batch: int = 4096) -> torch.Tensor:
        """(N,) float32 logits on the CPU for (N, C, P, P) inputs, in cache-sized batches.

        ``x`` should hold every candidate of one frame (above the amplitude gate): the frame context
        (:func:`hotpixels.model.features.frame_context`) is computed from them unless ``ctx`` is given.
        """
        if len(x) == 0:
            return torch.zeros(0)
        if ctx is None:
            ctx = frame_context(x)
        if not self._fast_tried and self.device.type == "cpu" and len(x) >= FREEZE_MIN_BATCH:
            self._fast_tried = True  # frozen on the first big call: ~0.5 s once, not at load
            self.fast = _frozen(self.net)
        net = self.fast if self.fast is not None else self.net
        out = [net(x[i:i + batch].to(self.device), ctx[i:i + batch].to(self.device)).float().cpu()
               for i in range(0, len(x), batch)]
        return torch.cat(out)


def model_path() -> Path:
    env = os.environ.get("HOTPIXELS_MODEL")
    if env:
        return Path(env)
    src = Path(__file__).resolve().parents[3] / "models" / MODEL_NAME
    frozen = Path(getattr(sys, "_MEIPASS", "")) / "models" / MODEL_NAME if getattr(sys, "frozen", False) else None
    return frozen if frozen is not None and frozen.is_file() else src


def load_detector(path: str | Path, device: str | None = None) -> Detector:
    """Read a weights file (no cache); ModelMissing / ModelCorrupt on failure."""
    path = Path(path)
    if not path.is_file():
        raise ModelMissing(f"the residual hot-pixel model is missing: {path} (run 'hotpixels train' or reinstall)",
                           path=str(path))
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = blob["meta"]
        if meta.get("arch") != ARCH:
            raise ValueError(f"architecture {meta.get('arch')!r}, expected {ARCH!r}")
        net = PatchNet(width=int(meta.get("width", 16)))
        net.load_state_dict(blob["state_dict"])
    except (ModelMissing,):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to read the file means a bad file
        raise ModelCorrupt(f"the residual hot-pixel model cannot be read: {path} ({exc})", path=str(path)) from exc
    dev = pick_device(device) if device not in (None, "cpu") else torch.device("cpu")
    net = net.to(dev).train(False)  # inference mode
    return Detector(net, meta, dev, str(path))


def _frozen(net: PatchNet) -> torch.nn.Module | None:
    """A traced, frozen TorchScript copy for CPU inference (None if tracing is unavailable)."""
    try:
        with torch.inference_mode():
            example = (torch.zeros((8, net.convs[0].in_channels, PATCH, PATCH)), torch.zeros((8, N_CONTEXT)))
            return torch.jit.freeze(torch.jit.trace(net, example))
    except Exception:  # noqa: BLE001 - the plain module is always a correct fallback
        return None


def get_detector(device: str | None = None) -> Detector:
    """The process-wide detector (loaded on first use, then cached per path and device)."""
    path = model_path()
    key = (str(path), str(device or "cpu"))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = load_detector(path, device)
        return _CACHE[key]
