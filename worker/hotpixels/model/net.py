"""The residual hot-pixel classifier: a tiny CNN over a 9x9 CFA patch (see :mod:`.features`).

Three valid 3x3 convolutions shrink 9x9 to 3x3 (receptive field: the whole patch); the frame
context (:func:`hotpixels.model.features.frame_context`: how this frame's stars spread, whether
bright spikes crowd onto one colour) joins there, and two small fully connected layers give one logit: > 0 means "hot pixel", < 0 "star, texture or noise".
About 11 k parameters and 0.13 M multiply-adds per candidate, so the tens of thousands of
candidates of a 24 MP star field (every star core is one) cost a fraction of a second on a CPU.

This is the torch network: training, and inference on a GPU. On the CPU the same weights run in
numpy (:mod:`.numpy_net`), without importing torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .features import N_CHANNELS, N_CONTEXT, PATCH
from .weights import ARCH


class PatchNet(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(N_CHANNELS, width, 3), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3), nn.ReLU(inplace=True),
        )
        side = PATCH - 6
        self.flat = nn.Flatten()
        self.head = nn.Sequential(nn.Linear(width * side * side + N_CONTEXT, 32), nn.ReLU(inplace=True),
                                  nn.Linear(32, 1))

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """(N, N_CHANNELS, PATCH, PATCH) patches and (N, N_CONTEXT) frame context -> (N,) logits."""
        return self.head(torch.cat([self.flat(self.convs(x)), ctx], dim=1))[:, 0]


def pick_device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def load_torch_net(path: str | Path, device: str | None) -> tuple[PatchNet, dict, torch.device]:
    """The network of a ``.pt`` (``torch.load(weights_only=True)``) on ``device``, in inference mode."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    meta = blob["meta"]
    net = PatchNet(width=int(meta.get("width", 16)))
    net.load_state_dict(blob["state_dict"])
    dev = pick_device(device)
    return net.to(dev).train(False), meta, dev


@torch.inference_mode()
def torch_logits(net: PatchNet, x, ctx, batch: int = 8192) -> np.ndarray:
    """(N,) float32 logits on the CPU for numpy (or torch) inputs, in batches, on the net's device."""
    dev = next(net.parameters()).device
    x, ctx = torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(ctx))
    cudnn = torch.backends.cudnn
    # cuDNN's default TF32 convolutions moved the logits by up to 7e-3 on an H200 (float32: 5e-6 from
    # numpy's); the cut is calibrated on float32 logits, so stage 3 runs in float32 on every device
    with cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic,
                     allow_tf32=False):
        out = [net(x[i:i + batch].to(dev), ctx[i:i + batch].to(dev)).float().cpu() for i in range(0, len(x), batch)]
    return torch.cat(out).numpy()
