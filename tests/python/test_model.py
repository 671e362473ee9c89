"""The residual classifier's weights file, loader and training loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hotpixels.errors import ModelCorrupt, ModelMissing
from hotpixels.model.load import get_detector, load_detector, model_path
from hotpixels.model.train import train_model

ROOT = Path(__file__).resolve().parents[2]


def test_committed_model_loads_with_weights_only_and_is_small():
    path = ROOT / "models" / "residual-v2.pt"
    assert path.stat().st_size <= 5 * 1024 * 1024
    blob = torch.load(path, weights_only=True)
    assert blob["meta"]["arch"] == "patchcnn-ctx-v2"
    assert model_path() == path
    det = get_detector()
    assert det is get_detector()  # loaded once per process
    assert (det.backend, det.device, det.n_params) == ("numpy", "cpu", 10_513)  # on the CPU: no torch


def test_missing_model_is_error_3001(tmp_path):
    with pytest.raises(ModelMissing) as err:
        load_detector(tmp_path / "nope.pt")
    assert err.value.code == 3001


def test_garbage_model_file_is_error_3002(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ModelCorrupt) as err:
        load_detector(bad)
    assert err.value.code == 3002


def test_training_smoke_run_lowers_the_loss(tmp_path):
    net, meta = train_model(seed=7, frames=24, val_frames=6, epochs=4, device="cpu", log=lambda m: None)
    hist = meta["loss_history"]
    assert hist[-1] < hist[0]
    assert np.isfinite(meta["threshold_logit"])
