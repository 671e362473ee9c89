"""``hotpixels train``: train the residual classifier on simulated patches and save the weights.

Reproducible: data from :mod:`.dataset` (seeded streams), ``torch.manual_seed(seed)``,
deterministic algorithms, fixed batch order. Training frames are ``0 .. frames-1`` of ``seed``;
validation frames come from the separate index range starting at ``VAL_FIRST`` (never trained on).

The decision threshold is calibrated on a third set of frames (indices from ``CAL_FIRST``, the
simulator's typical scene statistics, see below): ``threshold_logit`` is the logit at which false
detections (negatives scored above it) reach ``TARGET_FP_PER_MP`` per megapixel of examined sites
there; ``sensitivity`` 0.5 uses it and each 0.1 of sensitivity moves the cut by
``SENSITIVITY_SPAN / 10`` logits (see :func:`hotpixels.correct.residual.threshold_for`).

The file is a plain ``dict`` of tensors, ints, floats and strings, loadable with
``torch.load(path, weights_only=True)``: ``{"state_dict": ..., "meta": {...}}``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..progress import ProgressFn, check_cancel, report
from .dataset import make_patches
from .features import N_CHANNELS, PATCH
from .net import ARCH, PatchNet, pick_device

VAL_FIRST = 1_000_000
# The cut is calibrated on separate frames with the simulator's *typical* scene statistics (1200 stars
# per MP, sigma 0.5-1.5 px, no-AA 0.3-0.6 px; the training skies are 2-7x denser and sharper, so a cut
# set there would be far too cautious on ordinary frames): ``threshold_logit`` is where false
# detections on them reach TARGET_FP_PER_MP. These frames count the real-content scenes' own hot pixels
# (the source camera's) as false and draw random bodies, exposures and skies, so 3 per MP there is
# about 1 per MP or less on the benchmark's star, foreground, narrowband, no-AA and real-content
# frames (models/README.md): stars first, as the photographer asked.
CAL_FIRST = 2_000_000
CAL_FRAMES = 100
CAL_SIZE = 256
TARGET_FP_PER_MP = 3.0
SENSITIVITY_SPAN = 8.0


def train_model(*, seed: int = 1, frames: int = 3000, val_frames: int = 300, epochs: int = 12, width: int = 16,
                batch: int = 1024,
                lr: float = 3e-3, device: str | None = None, progress: ProgressFn | None = None, cancel=None,
                log=print) -> tuple[PatchNet, dict]:
    """Train a :class:`PatchNet`; returns it (on CPU) and its metadata with validation figures."""
    t0 = time.monotonic()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    dev = pick_device(device)
    train = make_patches(seed, frames, progress=progress, cancel=cancel)
    val = make_patches(seed, val_frames, first=VAL_FIRST, cancel=cancel)
    cal = make_patches(seed, CAL_FRAMES, first=CAL_FIRST, size=CAL_SIZE, typical=True, cancel=cancel)
    log(f"data: {len(train.y)} training patches ({int(train.y.sum())} hot), {len(val.y)} validation "
        f"({int(val.y.sum())} hot), {time.monotonic() - t0:.0f} s")
    net = PatchNet(width=width).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * ((len(train.y) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    x_all, c_all, y_all = train.x.to(dev), train.ctx.to(dev), train.y.to(dev)
    history = []
    for epoch in range(epochs):
        check_cancel(cancel)
        net.train()
        order = torch.randperm(len(y_all), generator=gen).to(dev)
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            xb = x_all[idx]
            if torch.rand(1, generator=gen).item() < 0.5:  # mirror: stars and hot pixels have no handedness
                xb = torch.flip(xb, dims=[3])
            loss = loss_fn(net(xb, c_all[idx]), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(order))
        report(progress, epoch + 1, epochs, f"epoch {epoch + 1}/{epochs} loss {history[-1]:.4f}")
        log(f"epoch {epoch + 1}/{epochs}: loss {history[-1]:.4f} ({time.monotonic() - t0:.0f} s)")
    net = net.cpu().train(False)  # inference mode
    cal_scores = scores(net, cal.x, cal.ctx)
    thr = calibrate(cal_scores, cal)
    figures = {"threshold_logit": thr, **validate(net, val, thr),
               "calibration": {"megapixels": round(cal.n_sites / 1e6, 3),
                               "fp_per_mp_by_kind": fp_by_kind(cal_scores, cal, thr)}}
    meta = {
        "arch": ARCH, "patch": PATCH, "channels": N_CHANNELS, "seed": seed, "frames": frames, "width": width,
        "val_frames": val_frames, "epochs": epochs, "batch": batch, "lr": lr,
        "threshold_logit": figures["threshold_logit"], "sensitivity_span": SENSITIVITY_SPAN,
        "train_seconds": round(time.monotonic() - t0, 1), "device": str(dev),
        "torch": str(torch.__version__), "loss_history": [round(v, 5) for v in history],
        "val": {k: v for k, v in figures.items() if k != "threshold_logit"},
    }
    return net, meta


@torch.inference_mode()
def scores(net: PatchNet, x: torch.Tensor, ctx: torch.Tensor, batch: int = 8192) -> np.ndarray:
    if not len(x):
        return np.zeros(0)
    return torch.cat([net(x[i:i + batch], ctx[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


def calibrate(s: np.ndarray, cal) -> float:
    """The logit at which false detections on the calibration frames (scores ``s``) reach TARGET_FP_PER_MP."""
    neg = np.sort(s[cal.y.numpy() == 0])[::-1]
    allowed = int(np.floor(TARGET_FP_PER_MP * cal.n_sites / 1e6))
    return float(neg[allowed]) if allowed < len(neg) else float(neg[-1] - 1.0) if len(neg) else 0.0


def fp_by_kind(s: np.ndarray, data, thr: float) -> dict:
    """False detections per MP of scores ``s`` above ``thr``, per scene kind (frames share one size: MP
    per kind by frames)."""
    neg = data.y.numpy() == 0
    kinds = np.asarray(data.kind)
    frame_kind = dict(zip(data.frame.tolist(), kinds.tolist()))
    mp_frame = data.n_sites / 1e6 / max(len(frame_kind), 1)
    return {str(k): round(float(((s > thr) & neg & (kinds == k)).sum())
                          / max(mp_frame * sum(v == k for v in frame_kind.values()), 1e-9), 2)
            for k in np.unique(kinds)}


def validate(net: PatchNet, val, thr: float) -> dict:
    """False detections and recall per amplitude band on the validation frames at the cut ``thr``."""
    s = scores(net, val.x, val.ctx)
    mp = val.n_sites / 1e6
    pos = val.y.numpy() == 1
    out = {"val_megapixels": round(mp, 3), "fp_per_mp": round(float((s[~pos] > thr).sum()) / mp, 3),
           "fp_per_mp_by_kind": fp_by_kind(s, val, thr)}
    for lo, hi in ((5, 8), (8, 1e9)):
        band_found = pos & (val.amp_sigma >= lo) & (val.amp_sigma < hi)
        n_missed = int(((val.missed >= lo) & (val.missed < hi)).sum())
        n = int(band_found.sum()) + n_missed
        out[f"recall_{lo}_{int(hi) if hi < 1e9 else 'up'}"] = round(float((s[band_found] > thr).sum()) / max(n, 1), 4)
    return out


def save_model(net: PatchNet, meta: dict, path: str | Path) -> Path:
    """Atomically write ``{"state_dict", "meta"}`` (weights_only-loadable) and its torch-free ``.npz``
    export beside it (:mod:`.weights`)."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
    os.close(fd)
    try:
        torch.save({"state_dict": {k: v.clone() for k, v in net.state_dict().items()}, "meta": meta}, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    from .export import export_weights

    export_weights(path)
    return path
