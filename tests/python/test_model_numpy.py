"""Stage 3's classifier without torch: the numpy network scores exactly what the torch network does.

The CLI and the frozen worker run the residual detector in numpy from ``models/residual-v2.npz``,
an export of the torch-trained ``models/residual-v2.pt``; torch stays for training and GPUs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hotpixels.candidates import estimate_noise, find_candidates
from hotpixels.correct.residual import threshold_for
from hotpixels.errors import ModelCorrupt
from hotpixels.model.export import export_weights
from hotpixels.model.features import frame_context, patch_features
from hotpixels.model.load import load_detector, model_path
from hotpixels.model.net import load_torch_net, torch_logits
from hotpixels.model.weights import StaleExport, export_path, file_sha256, read_export, read_weights
from hotpixels.simulate.render import render_light
from hotpixels.simulate.scene import make_scene
from hotpixels.simulate.sensor import make_sensor, rng_for

ROOT = Path(__file__).resolve().parents[2]


def _stage3_inputs(cfa: str, kind: str, seed: int = 8):
    """Features and context of every stage-3 candidate of a simulated light frame with hot pixels."""
    sensor = make_sensor("small", seed, cfa=cfa, height=300, width=420)
    scene = make_scene(sensor, kind, seed, star_density_per_mpx=5000)
    fr = render_light(sensor, scene, rng_for(seed, "numpy-net"), exposure_s=120.0, temp_c=25.0, iso=1600)
    black = sensor.black_map()
    noise = estimate_noise(fr.cfa_dn, sensor.cfa, sensor.active_area, black)
    cand = find_candidates(fr.cfa_dn, sensor.cfa, sensor.active_area, noise, black)
    x = patch_features(fr.cfa_dn, sensor.cfa, cand.yx, noise, active_area=sensor.active_area, black_level_dn=black,
                       white_level_dn=sensor.white_level_dn)
    return x, frame_context(x)


def test_the_committed_export_holds_exactly_the_trained_tensors():
    pt = model_path()
    blob = torch.load(pt, map_location="cpu", weights_only=True)
    state, meta, source = read_export(export_path(pt))
    assert source == file_sha256(pt)
    assert meta == blob["meta"]
    assert set(state) == set(blob["state_dict"])
    for name, tensor in blob["state_dict"].items():
        assert state[name].dtype == np.float32
        np.testing.assert_array_equal(state[name], tensor.numpy(), err_msg=name)


@pytest.mark.parametrize("cfa,kind", [("RGGB", "stars"), ("GBRG", "narrowband"), ("BGGR", "noaa"),
                                      ("XTRANS", "stars"), ("XTRANS", "foreground")])
def test_numpy_logits_equal_torch_logits_on_stage3_candidates(cfa, kind):
    x, ctx = _stage3_inputs(cfa, kind)
    numpy_det = load_detector(model_path())
    assert numpy_det.backend == "numpy"
    net, _, _ = load_torch_net(model_path(), "cpu")
    want = torch_logits(net, x, ctx)
    got = numpy_det.logits(x, ctx)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4
    thr = threshold_for(0.5, numpy_det.meta)
    assert len(x) >= 100 and (want > thr).sum() >= 3 and (want < thr).sum() >= 50  # both kinds of candidate
    for n in (1, 3, 5, 257):  # batches that are no whole number of product groups
        np.testing.assert_allclose(numpy_det.logits(x[:n], ctx[:n]), want[:n], atol=1e-4, rtol=0)


def test_the_numpy_network_reads_no_pickle(tmp_path):
    bad = tmp_path / "residual-v2.npz"
    np.savez(bad, **{"convs.0.weight": np.array([object()], dtype=object)}, meta_json=np.array("{}"))
    with pytest.raises(ValueError):
        read_export(bad)
    (tmp_path / "residual-v2.pt").write_bytes(b"not a torch file either")
    with pytest.raises(ModelCorrupt):
        load_detector(tmp_path / "residual-v2.npz")


def test_a_file_that_is_no_weights_export_is_3002_in_plain_words(tmp_path):
    junk = tmp_path / "residual-broken.npz"
    junk.write_bytes(b"not a weights file")
    with pytest.raises(ModelCorrupt) as err:
        load_detector(junk)
    assert "not a weights export" in err.value.message
    assert "pickle" not in err.value.message, "never a hint to load the file unsafely"


def test_a_stale_export_is_never_used(tmp_path):
    pt = tmp_path / "residual-v2.pt"
    shutil.copy(model_path(), pt)
    shutil.copy(export_path(model_path()), export_path(pt))
    blob = torch.load(pt, weights_only=True)
    blob["state_dict"]["head.2.bias"] += 1.0  # "retrained" without writing the export
    torch.save(blob, pt)
    with pytest.raises(StaleExport):
        read_weights(pt)
    det = load_detector(pt)  # torch is installed here: the .pt itself is read, on the CPU
    assert det.backend == "torch"
    x, ctx = _stage3_inputs("RGGB", "stars")
    np.testing.assert_allclose(det.logits(x[:20], ctx[:20]), load_detector(model_path()).logits(x[:20], ctx[:20]) + 1.0,
                               atol=1e-4)
    export_weights(pt)  # the export step makes the pair agree again
    assert load_detector(pt).backend == "numpy"


def test_auto_device_without_a_gpu_is_numpy(monkeypatch):
    if torch.cuda.is_available():
        det = load_detector(model_path(), "auto")
        assert det.backend == "torch" and det.device.startswith("cuda")
        x, ctx = _stage3_inputs("XTRANS", "stars")
        np.testing.assert_allclose(det.logits(x, ctx), load_detector(model_path()).logits(x, ctx), atol=1e-4, rtol=0)
    else:
        assert load_detector(model_path(), "auto").backend == "numpy"
        monkeypatch.setenv("HOTPIXELS_DEVICE", "auto")
        assert load_detector(model_path()).backend == "numpy"
