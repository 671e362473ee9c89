"""The package's layers: what each part imports, checked in a fresh interpreter and in the source.

* stage 3 on the CPU (candidates, features, the numpy network) needs neither torch, the simulator,
  the trainer nor the benches: a correction through the pipeline loads none of them;
* ``hotpixels.candidates`` sits below ``correct`` and ``model`` (both import it; it imports neither),
  ``model`` never imports ``correct`` (no cycle);
* ``dng.metadata`` does not import ``dng.reader`` (the reader imports the metadata, not both ways).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotpixels.simulate import simulate_session

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "worker" / "hotpixels"
HEAVY = ["torch", "hotpixels.simulate", "hotpixels.model.train", "hotpixels.model.dataset", "hotpixels.model.net",
         "hotpixels.bench"]


def _loaded_after(code: str, env: dict | None = None) -> set[str]:
    """Module names loaded in a fresh interpreter after running ``code``."""
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}, cwd=ROOT)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _forbidden(loaded: set[str], names: list[str]) -> list[str]:
    return sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in names))


def test_correcting_a_photo_with_all_stages_loads_no_torch_simulator_trainer_or_bench(tmp_path):
    s = simulate_session("small", seed=61, n_darks=0, n_lights=1, scene="stars")
    light = s.write(tmp_path)["lights"][0]
    code = ("from hotpixels.correct.pipeline import CorrectOptions, correct_file\n"
            f"r = correct_file({str(light)!r}, CorrectOptions(profile=None, stages=('residual',), previews=False,"
            f" output_dir={str(tmp_path / 'out')!r}))\n"
            "assert r['stages']['residual']['candidates'] > 0, r['stages']['residual']\n")
    loaded = _loaded_after(code, {"HOTPIXELS_DEVICE": "cpu"})
    assert "hotpixels.model.numpy_net" in loaded  # stage 3 did run its network
    assert _forbidden(loaded, HEAVY) == []


@pytest.mark.parametrize("code", [
    "import hotpixels.cli",
    "import hotpixels.rpc.server, hotpixels.rpc.methods.image, hotpixels.rpc.methods.profiles\n"
    "from hotpixels.rpc.state import ModelHolder\nModelHolder().get()",
    "import hotpixels.correct.batch, hotpixels.correct.batchscan, hotpixels.correct.residual",
    "from hotpixels.model.load import get_detector\nget_detector()",
])
def test_the_worker_and_the_cli_load_no_torch_simulator_trainer_or_bench(code):
    assert _forbidden(_loaded_after(code, {"HOTPIXELS_DEVICE": "cpu"}), HEAVY) == []


def test_candidates_load_neither_correct_nor_model_and_metadata_not_the_reader():
    assert _forbidden(_loaded_after("import hotpixels.candidates"), ["hotpixels.correct", "hotpixels.model", "torch"]) == []
    assert _forbidden(_loaded_after("import hotpixels.model.features, hotpixels.model.load"),
                      ["hotpixels.correct", "torch"]) == []
    assert "hotpixels.dng.reader" not in _loaded_after("import hotpixels.dng.metadata")


def _imports(path: Path) -> set[str]:
    """Every hotpixels module ``path`` imports, at the top or inside a function (absolute names)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {n for n in out if n.startswith("hotpixels")}


@pytest.mark.parametrize("layer,never", [
    ("candidates.py", ["hotpixels.correct", "hotpixels.model", "hotpixels.simulate"]),
    ("model", ["hotpixels.correct", "hotpixels.rpc", "hotpixels.bench"]),
    ("dng/metadata.py", ["hotpixels.dng.reader"]),
    ("correct", ["hotpixels.model.train", "hotpixels.model.dataset", "hotpixels.simulate", "hotpixels.bench"]),
    ("rpc", ["hotpixels.model.train", "hotpixels.model.dataset", "hotpixels.simulate", "hotpixels.bench"]),
])
def test_no_module_of_a_layer_imports_what_sits_above_it_even_lazily(layer, never):
    files = [PACKAGE / layer] if layer.endswith(".py") else sorted((PACKAGE / layer).rglob("*.py"))
    bad = {str(f.relative_to(PACKAGE)): _forbidden(_imports(f), never) for f in files}
    assert {f: b for f, b in bad.items() if b} == {}
