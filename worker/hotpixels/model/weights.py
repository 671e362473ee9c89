"""The classifier's weights without torch or pickle: an exact ``.npz`` export of the trained ``.pt``.

``hotpixels train`` writes ``models/residual-v2.pt`` (torch, ``weights_only``-loadable) and, next to
it, ``models/residual-v2.npz``: every tensor of the state dict as a float32 array under its torch
name, the metadata as JSON text (``meta_json``) and the SHA-256 of the ``.pt`` it was exported from
(``source_sha256``). It is read with ``np.load(allow_pickle=False)``: no code runs. A ``.npz``
whose ``source_sha256`` is not the ``.pt``'s beside it is stale (the ``.pt`` was retrained without
an export) and refused (:class:`StaleExport`), never silently used. ``python -m hotpixels.model.export``
rewrites the export from a ``.pt`` (needs torch); a test checks that the committed pair agrees
tensor by tensor.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..fileio import atomic_write

ARCH = "patchcnn-ctx-v2"  # the architecture the files hold (numpy_net and net implement it)
SUFFIX = ".npz"
META_KEY = "meta_json"
SOURCE_KEY = "source_sha256"


class StaleExport(ValueError):
    """The ``.npz`` was exported from another ``.pt`` than the one beside it."""


def export_path(pt_path: str | os.PathLike) -> Path:
    """Where the export of ``pt_path`` lives: the same name with ``.npz``."""
    return Path(pt_path).with_suffix(SUFFIX)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_export(state: dict[str, np.ndarray], meta: dict, source_sha256: str, path: str | os.PathLike) -> Path:
    """Atomically write the arrays of ``state``, ``meta`` and the source digest to ``path`` (.npz)."""
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}
    for reserved in (META_KEY, SOURCE_KEY):
        if reserved in arrays:
            raise ValueError(f"state dict key {reserved!r} is reserved")
    arrays[META_KEY] = np.array(json.dumps(meta, sort_keys=True))
    arrays[SOURCE_KEY] = np.array(source_sha256)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def read_export(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict, str]:
    """``(state, meta, source_sha256)`` of an export; no pickle (object arrays are refused).
    ``ValueError`` in plain words for a file that is not such an export (numpy's own message for
    one would suggest loading it with pickle)."""
    try:
        z = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{Path(path).name} is not a weights export (an .npz of arrays)") from exc
    if not hasattr(z, "files"):
        raise ValueError(f"{Path(path).name} is not a weights export (an .npz of arrays)")
    with z:
        state = {k: z[k] for k in z.files if k not in (META_KEY, SOURCE_KEY)}
        meta = json.loads(str(z[META_KEY][()]))
        source = str(z[SOURCE_KEY][()])
    return state, meta, source


def read_weights(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict, Path]:
    """The weights for ``path`` (a ``.pt`` or its ``.npz``): ``(state, meta, npz path)``.

    For a ``.pt`` its export beside it is read, checked against the ``.pt``'s digest
    (:class:`StaleExport`); ``FileNotFoundError`` when there is none.
    """
    path = Path(path)
    npz = path if path.suffix == SUFFIX else export_path(path)
    state, meta, source = read_export(npz)
    if path.suffix != SUFFIX:
        digest = file_sha256(path)
        if source != digest:
            raise StaleExport(f"{npz.name} was exported from another {path.name} (sha256 {source[:12]}, "
                              f"the file has {digest[:12]}): run python -m hotpixels.model.export {path}")
    return state, meta, npz
