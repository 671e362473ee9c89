"""``hotpixels-worker --self-test``: can this worker (frozen or not) do its job on this machine?

Checks, each independently:

* **model** — stage 3's detector loads (weights found; on the CPU the numpy network from the ``.npz``
  export, no pickle) and scores a patch;
* **codecs** — every imagecodecs codec the DNG reader/writer uses round-trips a small 16-bit CFA
  tile: lossless JPEG (encode with ``jpeg8``, decode with ``jpeg8`` and ``ljpeg``; the writer's own
  encoder, :mod:`hotpixels.dng.ljpeg`, decoded by ``jpeg8``), packed 12-bit
  integers, PNG (report crops), and JPEG XL decoding (read-only in DNG);
* **exiftool** — the configured exiftool (bundled in the frozen worker) reads a tag from a file.

Prints one line (``self-test OK: ...`` or ``self-test FAILED: ...``) on stdout and returns 0 or 1.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Callable

import numpy as np


def check_model() -> str:
    from .state import ModelHolder

    from ..model.features import N_CHANNELS, PATCH

    holder = ModelHolder()
    logits = holder.get().logits(np.zeros((4, N_CHANNELS, PATCH, PATCH), np.float32))
    if logits.shape != (4,) or not np.all(np.isfinite(logits)):
        raise RuntimeError(f"the model scored a blank patch as {logits!r}")
    info = holder.info()
    sha = (info.get("sha256") or "")[:12]
    return f"model {info.get('name')} {sha} ({info.get('backend')}) on {holder.device()}"


def check_codecs() -> str:
    import imagecodecs

    rng = np.random.default_rng(7)
    tile = rng.integers(0, 4096, (16, 32), dtype=np.uint16)
    done = []
    stream = imagecodecs.jpeg8_encode(tile, lossless=True, predictor=1, bitspersample=12)
    if not np.array_equal(np.asarray(imagecodecs.jpeg8_decode(stream)), tile):
        raise RuntimeError("jpeg8 lossless round trip differs")
    if not np.array_equal(np.asarray(imagecodecs.ljpeg_decode(stream)).reshape(tile.shape), tile):
        raise RuntimeError("ljpeg decode differs")
    done.append("ljpeg")
    from ..dng.ljpeg import encode_lossless_jpeg

    ours = encode_lossless_jpeg(tile.reshape(16, 16, 2), 1, 12)  # the writer's encoder, as a DNG tile
    if not np.array_equal(np.asarray(imagecodecs.jpeg8_decode(ours)).reshape(tile.shape), tile):
        raise RuntimeError("the lossless JPEG encoder's stream decodes differently")
    done.append("ljpeg-encoder")
    packed = imagecodecs.packints_encode(tile, 12, runlen=tile.shape[1])
    if not np.array_equal(imagecodecs.packints_decode(packed, np.uint16, 12, runlen=tile.shape[1]).reshape(tile.shape), tile):
        raise RuntimeError("12-bit packints round trip differs")
    done.append("packints")
    rgb = (tile[:, :, None] >> 4).astype(np.uint8).repeat(3, axis=2)
    if not np.array_equal(imagecodecs.png_decode(imagecodecs.png_encode(rgb)), rgb):
        raise RuntimeError("png round trip differs")
    done.append("png")
    jxl = imagecodecs.jpegxl_encode(tile, lossless=True)
    if not np.array_equal(np.asarray(imagecodecs.jpegxl_decode(jxl)), tile):
        raise RuntimeError("jpegxl round trip differs")
    done.append("jpegxl")
    return "codecs " + "/".join(done)


def check_exiftool() -> str:
    import imagecodecs

    from ..dng.metadata import _exiftool_path, exiftool_available, exiftool_tags, require_named_exiftool
    from ..errors import ExiftoolMissing

    require_named_exiftool()
    if not exiftool_available():  # the worker works without one; a build (and this check) needs it
        raise ExiftoolMissing("exiftool not found (set HOTPIXELS_EXIFTOOL or install it)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.png")
        with open(path, "wb") as f:
            f.write(imagecodecs.png_encode(np.zeros((4, 4), np.uint8)))
        tags = exiftool_tags(path, ["FileType", "ExifToolVersion"])
    if not any(str(v).upper() == "PNG" for v in tags.values()):
        raise RuntimeError(f"exiftool did not read the probe file ({tags})")
    version = next((v for k, v in tags.items() if k.endswith("ExifToolVersion")), "?")
    return f"exiftool {version} ({_exiftool_path()})"


CHECKS: list[tuple[str, Callable[[], str]]] = [("model", check_model), ("codecs", check_codecs),
                                              ("exiftool", check_exiftool)]


def run_checks() -> tuple[bool, list[str]]:
    ok, parts = True, []
    for name, check in CHECKS:
        try:
            parts.append(check())
        except Exception as exc:  # noqa: BLE001 - each failure is reported, the others still run
            ok = False
            parts.append(f"{name} FAILED ({type(exc).__name__}: {exc})")
    return ok, parts


def main() -> int:
    started = time.monotonic()
    ok, parts = run_checks()
    verdict = "OK" if ok else "FAILED"
    print(f"self-test {verdict}: " + "; ".join(parts) + f" ({time.monotonic() - started:.1f} s)", flush=True)
    return 0 if ok else 1
