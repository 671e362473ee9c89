"""Benchmark of DNG raw I/O on a simulated 24 MP frame (6000 x 4000, 14-bit content).

Files are written by :func:`hotpixels.dng.create.write_dng` in three layouts: one 16-bit strip,
14-bit packed, and 256 px lossless-JPEG tiles (Adobe's 2-component geometry). The frame is a
smooth sky with shot/read-like Gaussian noise (σ ≈ 12 DN) and sparse hot pixels, so lossless JPEG
compresses it about as much as a real night frame.

Figures (MB/s are megabytes of the uint16 raw array per second, 1 MB = 1e6 bytes):

* ``ljpeg_decode_mb_s``: ``read_dng(pixels=True, metadata=False)`` of the tiled file;
* ``ljpeg_encode_mb_s``: all tiles re-encoded (one changed site per tile) on the thread pool by
  the writer's encoder (:mod:`hotpixels.dng.ljpeg`; its read-back decode not included);
* ``ljpeg_write_mb_s``: the whole ``write_corrected_dng`` of the tiled file (copy, encode, place,
  digest, marker);
* ``uncompressed16_write_mb_s`` / ``packed14_write_mb_s``: ``write_corrected_dng`` of the strip
  and packed files (copy + in-place patch + digest);
* ``digest_mb_s``: ``new_raw_image_digest`` of the frame;
* ``peak_memory_x_raw``: the largest tracemalloc peak of one read or one write, divided by the raw
  array size (the caller's own input array not counted).
* ``mb_per_cpu_s``: the same figures per CPU-second (all threads together), which does not depend
  on what else runs on the machine; on idle cores the threaded parts (tile decode/encode, digest)
  run up to ``threads`` times faster than one CPU-second each.

Targets (issue 3): decode >= 150, encode >= 50, 16-bit write >= 300, packed write >= 150,
digest >= 300 MB/s, peak memory <= 3x the raw array.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..dng.cfa import CfaPattern
from ..dng.create import write_dng
from ..dng.decode import N_THREADS, decode_segment
from ..dng.digest import new_raw_image_digest
from ..dng.encode import encode_ljpeg
from ..dng.rawimage import CameraMetadata
from ..dng.reader import open_tiff, read_dng
from ..dng.writer import write_corrected_dng

TARGETS = {
    "ljpeg_decode_mb_s": 150, "ljpeg_encode_mb_s": 50, "uncompressed16_write_mb_s": 300,
    "packed14_write_mb_s": 150, "digest_mb_s": 300,
}


def simulated_frame(h: int, w: int, seed: int = 1) -> np.ndarray:
    """Smooth sky (a gradient) + Gaussian noise σ 12 DN + 0.05 % hot pixels, 14-bit range."""
    rng = np.random.default_rng(seed)
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    sky = 1100 + 300 * yy + 150 * xx
    frame = sky + rng.normal(0, 12, (h, w)).astype(np.float32)
    n_hot = h * w // 2000
    frame[rng.integers(0, h, n_hot), rng.integers(0, w, n_hot)] += rng.uniform(200, 12000, n_hot).astype(np.float32)
    return np.clip(frame, 0, 16383).astype(np.uint16)


def _one_change_per_tile(frame: np.ndarray, tile: int) -> np.ndarray:
    new = frame.copy()
    ys = np.arange(tile // 2, frame.shape[0], tile)
    xs = np.arange(tile // 2, frame.shape[1], tile)
    new[np.ix_(ys, xs)] = 1024
    return new


_CPU: dict[str, float] = {}


def _timed(fn, repeat: int = 1, key: str | None = None):
    """Best wall time of ``repeat`` runs; the CPU seconds (all threads) of that run go to _CPU[key]."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best = wall
            if key:
                _CPU[key] = cpu
    return best, out


def _peak(fn) -> tuple[int, object]:
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, out


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="bench dng_io", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1.9 MP frame: smoke test only")
    parser.add_argument("--out", default=None, help="(ignored; figures are returned)")
    parser.add_argument("--repeat", type=int, default=2, help="timed repetitions (best is kept)")
    args, _ = parser.parse_known_args(argv)
    h, w = (1200, 1600) if args.quick else (4000, 6000)
    tile = 256
    frame = simulated_frame(h, w)
    mb = frame.nbytes / 1e6
    meta = CameraMetadata(make="Sim", model="Bench", serial="1", iso=1600, exposure_s=120.0)
    cfa = CfaPattern.bayer("RGGB", (0, 0))
    res: dict = {"frame": [h, w], "raw_mb": round(mb, 1), "threads": N_THREADS}
    peaks = {}
    with tempfile.TemporaryDirectory(prefix="hp-bench-dng-") as tmp:
        tmp = Path(tmp)
        files = {}
        for name, layout, bits in (("strip16", "strip", 14), ("packed14", "packed", 14),
                                   ("ljpeg", "ljpeg-tiles", 14)):
            files[name] = tmp / f"{name}.dng"
            write_dng(files[name], frame, cfa=cfa, active_area=(0, 0, h, w), black_level_dn=1024,
                      white_level_dn=16383, bits=bits, layout=layout, tile_px=tile, metadata=meta)
        res["ljpeg_file_mb"] = round(files["ljpeg"].stat().st_size / 1e6, 1)

        t, raw = _timed(lambda: read_dng(files["ljpeg"], metadata=False), args.repeat, "ljpeg_decode_mb_s")
        res["ljpeg_decode_mb_s"] = mb / t
        peaks["read ljpeg"], raw = _peak(lambda: read_dng(files["ljpeg"], metadata=False))
        assert np.array_equal(raw.cfa_dn, frame)

        new = _one_change_per_tile(frame, tile)
        layout = raw.layout
        with open_tiff(files["ljpeg"]) as tf:
            old_tiles = [decode_segment(tf.data, layout, s) for s in layout.segments]
        for seg, old in zip(layout.segments, old_tiles):
            ys, xs = seg.frame_slices(h, w)
            old[: ys.stop - ys.start, : xs.stop - xs.start] = new[ys, xs]

        def encode_all():
            with ThreadPoolExecutor(N_THREADS) as pool:
                return list(pool.map(lambda a: encode_ljpeg(a[1], layout.jpeg[a[0].index], a[0]),
                                     zip(layout.segments, old_tiles)))
        t, _ = _timed(encode_all, args.repeat, "ljpeg_encode_mb_s")
        res["ljpeg_encode_mb_s"] = mb / t
        del old_tiles

        def write(name, data, k=[0]):
            k[0] += 1
            src_raw = raws[name]
            return write_corrected_dng(src_raw, data, tmp / f"out-{name}-{k[0]}.dng")

        raws = {name: read_dng(p, metadata=False) for name, p in files.items()}
        t, out = _timed(lambda: write("ljpeg", new), args.repeat, "ljpeg_write_mb_s")
        res["ljpeg_write_mb_s"] = mb / t
        res["ljpeg_tiles_appended"] = out["segments_appended"]
        res["ljpeg_out_file_mb"] = round(out["bytes"] / 1e6, 1)
        peaks["write ljpeg"], _ = _peak(lambda: write("ljpeg", new))
        for name, key in (("strip16", "uncompressed16_write_mb_s"), ("packed14", "packed14_write_mb_s")):
            t, _ = _timed(lambda: write(name, new), args.repeat, key)
            res[key] = mb / t
            peaks[f"write {name}"], _ = _peak(lambda: write(name, new))
            peaks[f"read {name}"], _ = _peak(lambda: read_dng(files[name], metadata=False))
        t, _ = _timed(lambda: new_raw_image_digest(new), args.repeat, "digest_mb_s")
        res["digest_mb_s"] = mb / t
        for p in sorted(tmp.glob("out-*.dng")):  # every written file reads back as intended
            if not np.array_equal(read_dng(p, metadata=False).cfa_dn, new):
                raise RuntimeError(f"round trip failed for {p.name}")
            p.unlink()
        res["round_trips_verified"] = True

    res["mb_per_cpu_s"] = {k: round(mb / c, 1) for k, c in _CPU.items() if c > 0}
    res["load_average_1min"] = round(os.getloadavg()[0], 2)
    res["peak_memory_mb"] = {k: round(v / 1e6, 1) for k, v in peaks.items()}
    res["peak_memory_x_raw"] = round(max(peaks.values()) / frame.nbytes, 2)
    for k, v in list(res.items()):
        if k.endswith("_mb_s"):
            res[k] = round(v, 1)
    _print(res)
    return res


def _print(res: dict) -> None:
    print(f"DNG I/O on a {res['frame'][0]}x{res['frame'][1]} frame ({res['raw_mb']} MB as uint16), "
          f"{res['threads']} threads")
    print(f"load average {res['load_average_1min']} (other processes share the cores: MB per CPU-second "
          "is the load-independent figure; x threads for free cores)")
    print(f"{'figure':32s} {'MB/s wall':>10s} {'MB/cpu-s':>10s} {'target':>8s}")
    for k, v in res.items():
        if k.endswith("_mb_s"):
            target = TARGETS.get(k)
            flag = "" if target is None else ("ok" if v >= target else "BELOW")
            per_cpu = res["mb_per_cpu_s"].get(k, float("nan"))
            print(f"{k:32s} {v:10.1f} {per_cpu:10.1f} {'' if target is None else f'>= {target}':>8s} {flag}")
    print(f"{'peak_memory_x_raw':32s} {res['peak_memory_x_raw']:10.2f} {'<= 3':>8s} "
          f"{'ok' if res['peak_memory_x_raw'] <= 3 else 'ABOVE'}")
    for k, v in res["peak_memory_mb"].items():
        print(f"  peak {k:26s} {v:8.1f} MB")
    print(f"lossless JPEG file {res['ljpeg_file_mb']} MB -> corrected {res['ljpeg_out_file_mb']} MB, "
          f"{res['ljpeg_tiles_appended']} tile(s) appended")
