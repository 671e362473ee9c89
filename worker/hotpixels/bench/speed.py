"""``./run.sh bench speed``: the whole-job speed of HotPixels against floors measured in the same run.

Data (made once per run, not timed): ``hotpixels simulate --preset 24mp --layout ljpeg-tiles-subifd
--darks 16 --lights 1 --scene stars`` (a 24 MP lossless-JPEG DNG of a dense star field) and
``hotpixels profile create`` from its 16 darks. ``--quick`` uses the ``small`` preset, 4 darks and a
batch of 3: a run of every code path, not the figures. ``--data DIR`` keeps (and reuses) the data.

Figures (wall time with ``time.perf_counter``; peak memory with ``/usr/bin/time -v`` around whole
processes, or the kernel's high-water mark ``VmHWM`` when that program is missing):

* **codec floor** — read the file, decode every tile, re-encode every tile losslessly with its
  own predictor, MD5 over the pixels; imagecodecs (libjpeg-turbo) on 2 threads; best of 3. What
  any correction of this file must at least do.
* **warm worker** — one ``image.correct`` of the file (all stages, the profile, previews and report
  included) in a running worker that has corrected it once already; best of 2; ratio to the floor
  (target <= 2.0x, goal 1.3x).
* **whole CLI process** — ``hotpixels correct`` of the file, process start to exit, against
  ``darktable-cli``'s render of the same file to JPEG with its hot pixels module switched on (an XMP
  sidecar), when darktable-cli is installed; best of 2 after one warm-up each (target <= 1.0x).
* **stage 3 first call** — in a fresh process, after reading the file and importing stage 3's
  module: the first call of stage 3 (loading the detector included) and a second one (target <= 1.0 s).
* **batch** — ``--batch`` (20) links to the file in ONE ``image.correct`` request to a fresh worker
  whose model has loaded (``batch: "off"``: the copies are one frame, whose stars would "recur");
  photos per second (target >= 1.0 on 2 cores), the worker's peak memory (<= 1.5 GB), and the time
  from the request to the first ``$/result`` (<= 3 s).
* **frozen worker** — ``hotpixels.bench.frozen.frozen_figures()`` (folder size, cold start to a
  ``worker.hello`` answer) when that module is present.

The machine may be shared: the load average at the start and the end is printed with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PROFILE = "bench speed"
FLOOR_THREADS = 2
TARGETS = {"worker_vs_floor": 2.0, "cli_vs_darktable": 1.0, "stage3_first_s": 1.0, "batch_photos_per_s": 1.0,
           "batch_peak_mb": 1536.0, "batch_first_result_s": 3.0}
TIME_V = "/usr/bin/time"


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench speed")
    parser.add_argument("--quick", action="store_true", help="small frame, 4 darks, batch of 3: the code path only")
    parser.add_argument("--out", default=None)
    parser.add_argument("--batch", type=int, default=None, help="photos in the batch request (default 20; quick 3)")
    parser.add_argument("--data", default=None, metavar="DIR", help="keep the simulated data here and reuse it")
    args, _ = parser.parse_known_args(argv)
    figures = measure(quick=args.quick, batch=args.batch or (3 if args.quick else 20), data=args.data)
    print_figures(figures)
    return figures


def measure(*, quick: bool, batch: int, data: str | None = None) -> dict[str, Any]:
    """Every figure of the module docstring, in one run."""
    work = Path(tempfile.mkdtemp(prefix="hp-bench-speed-"))
    data_dir = Path(data) if data else work / "data"
    try:
        load_start = os.getloadavg()[0]
        src, library = prepare(data_dir, quick)
        figures: dict[str, Any] = {
            "preset": "small" if quick else "24mp", "file": src.name, "file_mb": round(src.stat().st_size / 1e6, 1),
            "cpus": os.cpu_count(), "load_average_start": round(load_start, 2),
        }
        floors = [codec_floor(src) for _ in range(3)]
        figures["floor_s"] = round(min(w for w, _ in floors), 3)
        figures["floor_cpu_s"] = round(min(c for _, c in floors), 3)
        figures.update(warm_worker(src, library, work))
        figures["worker_vs_floor"] = round(figures["worker_correct_s"] / figures["floor_s"], 2)
        figures["worker_vs_floor_cpu"] = round(figures["worker_correct_cpu_s"] / figures["floor_cpu_s"], 2)
        figures.update(cli_and_darktable(src, library, work))
        figures.update(stage3_first_call(src, library))
        figures["batch"] = batch_request(src, library, work, batch)
        figures["frozen"] = frozen(2 if quick else 5)
        figures["load_average_end"] = round(os.getloadavg()[0], 2)
        figures["targets"] = TARGETS
        return figures
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- data ----------------------------------------------------------------------------------------
def prepare(folder: Path, quick: bool) -> tuple[Path, Path]:
    """The light DNG and the profile library (made with the ``hotpixels`` CLI; reused when present)."""
    light = folder / "sim" / "lights" / "light_0001.dng"
    library = folder / "library"
    done = folder / "ready.json"
    if done.is_file() and json.loads(done.read_text()).get("quick") == quick and light.is_file():
        return light, library
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    hp = [sys.executable, "-m", "hotpixels"]
    _check([*hp, "simulate", str(folder / "sim"), "--preset", "small" if quick else "24mp", "--layout",
            "ljpeg-tiles-subifd", "--darks", "4" if quick else "16", "--lights", "1", "--scene", "stars", "--seed", "7"])
    darks = sorted(str(p) for p in (folder / "sim" / "darks").glob("*.dng"))
    _check([*hp, "profile", "create", *darks, "--name", PROFILE, "--library", str(library)])
    shutil.rmtree(folder / "sim" / "darks")  # 16 x 24 MP: not needed any more
    done.write_text(json.dumps({"quick": quick}))
    return light, library


def _check(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} … failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


# --- the codec floor -----------------------------------------------------------------------------
def codec_floor(path: Path, threads: int = FLOOR_THREADS) -> tuple[float, float]:
    """(wall, CPU) seconds to read ``path``, decode its raw tiles, re-encode them losslessly and MD5
    the pixels. CPU seconds (all threads of this process) hardly depend on a shared machine's load."""
    import imagecodecs
    import numpy as np

    from ..dng.decode import parse_jpeg_geometry
    from ..dng.reader import read_dng

    layout = read_dng(path, metadata=False, pixels=False).layout
    c0, t0 = time.process_time(), time.perf_counter()
    with open(path, "rb") as fh:
        buf = fh.read()
    frame = np.empty((layout.height, layout.width), dtype=np.uint16)

    def one(seg) -> int:
        data = memoryview(buf)[layout.offsets[seg.index]:layout.offsets[seg.index] + layout.byte_counts[seg.index]]
        tile = np.asarray(imagecodecs.jpeg8_decode(data))
        ys, xs = seg.frame_slices(layout.height, layout.width)
        frame[ys, xs] = tile.reshape(seg.seg_h, seg.seg_w)[: ys.stop - ys.start, : xs.stop - xs.start]
        geom = parse_jpeg_geometry(data)
        stream = imagecodecs.jpeg8_encode(tile, lossless=True, predictor=geom.predictor, bitspersample=geom.precision)
        return len(stream)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, layout.segments))
    hashlib.md5(memoryview(frame).cast("B")).digest()
    return time.perf_counter() - t0, time.process_time() - c0


# --- the worker ----------------------------------------------------------------------------------
def _worker_argv(peak_file: Path | None = None) -> list[str]:
    argv = [sys.executable, "-m", "hotpixels.rpc.cli", "--stdio"]
    if peak_file is not None and os.access(TIME_V, os.X_OK):
        argv = [TIME_V, "-v", "-o", str(peak_file), *argv]
    return argv


def _spawn(work: Path, library: Path, peak_file: Path | None = None):
    from ..rpc.client import WorkerClient

    env = dict(os.environ, HOTPIXELS_LIBRARY=str(library), HOTPIXELS_REPORTS=str(work / "reports"))
    client = WorkerClient.spawn(_worker_argv(peak_file), env=env)
    client.result("worker.hello", {"protocol": 1}, timeout_s=120)
    return client


def _correct_params(paths: list[str], library: Path, out: Path, **extra: Any) -> dict[str, Any]:
    return {"paths": paths, "profile": PROFILE, "library": str(library), "output_dir": str(out),
            "report_dir": str(out / "reports"), **extra}


def warm_worker(src: Path, library: Path, work: Path) -> dict[str, Any]:
    """One ``image.correct`` of ``src`` in a warm worker: best of 2 after a warm-up."""
    client = _spawn(work, library)
    try:
        times, cpus = [], []
        for k in range(3):
            c0, t0 = _proc_cpu_s(client.process.pid), time.perf_counter()
            r = client.result("image.correct", _correct_params([str(src)], library, work / f"warm-{k}"), timeout_s=600)
            times.append(time.perf_counter() - t0)
            cpus.append(_proc_cpu_s(client.process.pid) - c0)
            (res,) = r["results"]
            if not res["ok"]:
                raise RuntimeError(f"the worker failed to correct {src.name}: {res['error']}")
        write = res.get("write") or {}
        return {"worker_correct_s": round(min(times[1:]), 3), "worker_first_correct_s": round(times[0], 3),
                "worker_correct_cpu_s": round(min(cpus[1:]), 3),
                "worker_parts_s": res.get("seconds"), "stage3_candidates": res["stages"]["residual"].get("candidates"),
                "sites_changed": sum(int(v) for k, v in res["counts"].items() if k in ("dark", "hot", "residual", "batch")),
                "tiles_rewritten": write.get("segments_rewritten"), "tiles": write.get("segments")}
    finally:
        _stop(client)


def _stop(client) -> None:
    try:
        client.close_input()
        client.wait_exit(60)
    except Exception:  # noqa: BLE001 - the figures are taken; make sure the process goes
        client.kill()


def batch_request(src: Path, library: Path, work: Path, n: int) -> dict[str, Any]:
    """``n`` photos (hard links to ``src``) in one ``image.correct`` request to a fresh, loaded worker."""
    folder = work / "batch-src"
    folder.mkdir()
    paths = []
    for i in range(n):
        dst = folder / f"night_{i:03d}.dng"
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
        paths.append(str(dst))
    peak_file = work / "batch-worker.time"
    client = _spawn(work, library, peak_file)
    try:
        _wait_for_model(client)
        t0 = time.perf_counter()
        rid = client.request("image.correct", _correct_params(paths, library, work / "batch-out", batch="off"))
        first = client.wait_for(lambda m: m.get("method") == "$/result" and m["params"]["id"] == rid, timeout_s=600)
        first_s = time.perf_counter() - t0
        response = client.wait(rid, timeout_s=3600)
        total_s = time.perf_counter() - t0
        results = response["result"]["results"]
        hwm = _vm_hwm_mb(client.process.pid)
    finally:
        _stop(client)
    peak = _time_v_peak_mb(peak_file) or hwm
    cpu = _time_v_cpu_s(peak_file)
    return {"photos": n, "ok": sum(bool(r["ok"]) for r in results), "seconds": round(total_s, 2),
            "cpu_s_per_photo": round(cpu / n, 2) if cpu else None,
            "photos_per_s": round(n / total_s, 3), "first_result_s": round(first_s, 2),
            "first_result_index": first["params"]["index"], "peak_mb": round(peak, 0) if peak else None}


def _wait_for_model(client, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        model = client.result("worker.hello", {"protocol": 1}, timeout_s=30).get("model") or {}
        if model.get("loaded") or (not model.get("loading") and model.get("error")):
            return
        time.sleep(0.2)


# --- whole processes -----------------------------------------------------------------------------
def cli_and_darktable(src: Path, library: Path, work: Path) -> dict[str, Any]:
    """``hotpixels correct`` as a whole process against darktable-cli's render with its hot pixels module."""
    out = work / "cli"
    cli = [sys.executable, "-m", "hotpixels", "correct", str(src), "--profile", PROFILE, "--library", str(library),
           "--report-dir", str(out / "reports")]
    runs = [_timed_process([*cli, "--output-dir", str(out / str(k))], work / f"cli-{k}.time") for k in range(3)]
    best = min(runs[1:], key=lambda r: r[0])
    figures: dict[str, Any] = {"cli_s": round(best[0], 3), "cli_peak_mb": best[1], "darktable_s": None,
                               "darktable_peak_mb": None, "darktable_hotpixels_ran": None, "cli_vs_darktable": None}
    exe = shutil.which("darktable-cli")
    if exe is None:
        figures["darktable_note"] = "darktable-cli is not installed"
        return figures
    xmp = work / "hotpixels.xmp"
    xmp.write_text(darktable_xmp())
    config = work / "dtconf"

    def render(k: int, *extra: str) -> list[str]:
        return [exe, str(src), str(xmp), str(work / f"dt-{k}.jpg"), "--core", "--configdir", str(config), *extra]

    probe = subprocess.run(render(0, "-d", "perf"), capture_output=True, text=True, timeout=600)
    figures["darktable_hotpixels_ran"] = "processed `hot pixels'" in probe.stdout + probe.stderr
    dt = [_timed_process(render(k), work / f"dt-{k}.time") for k in (1, 2)]
    best_dt = min(dt, key=lambda r: r[0])
    figures.update({"darktable_s": round(best_dt[0], 3), "darktable_peak_mb": best_dt[1],
                    "cli_vs_darktable": round(best[0] / best_dt[0], 2)})
    return figures


def darktable_xmp(strength: float = 0.25, threshold: float = 0.05) -> str:
    """An XMP sidecar whose history switches darktable's ``hotpixels`` module on (its version-1
    parameters: float strength, float threshold, int markfixed, int permissive; little-endian hex)."""
    import struct

    params = struct.pack("<ffii", strength, threshold, 0, 0).hex()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:darktable="http://darktable.sf.net/"
    darktable:xmp_version="5" darktable:history_end="1">
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:num="0" darktable:operation="hotpixels" darktable:enabled="1"
      darktable:modversion="1" darktable:params="{params}" darktable:multi_name="" darktable:multi_priority="0"/>
    </rdf:Seq>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def _timed_process(cmd: list[str], time_file: Path) -> tuple[float, float | None]:
    """(wall seconds, peak resident MB) of one whole process."""
    wrapped = [TIME_V, "-v", "-o", str(time_file), *cmd] if os.access(TIME_V, os.X_OK) else cmd
    t0 = time.perf_counter()
    proc = subprocess.run(wrapped, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0,):
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({proc.returncode}):\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    return seconds, _time_v_peak_mb(time_file)


def _time_v_peak_mb(path: Path) -> float | None:
    """'Maximum resident set size (kbytes)' of a ``/usr/bin/time -v`` report, in MB."""
    try:
        for line in path.read_text().splitlines():
            if "Maximum resident set size" in line:
                return round(int(line.rsplit(":", 1)[1]) / 1024.0, 0)
    except (OSError, ValueError):
        pass
    return None


def _time_v_cpu_s(path: Path) -> float | None:
    """User + system CPU seconds of a ``/usr/bin/time -v`` report."""
    try:
        text = path.read_text()
        return sum(float(line.rsplit(":", 1)[1]) for line in text.splitlines()
                   if line.strip().startswith(("User time (seconds)", "System time (seconds)")))
    except (OSError, ValueError):
        return None


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds a running process (all its threads) has used so far (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


# --- stage 3 -------------------------------------------------------------------------------------
_STAGE3_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import hotpixels.correct.residual
import_s = time.perf_counter() - t0
from hotpixels.correct.pipeline import CorrectOptions, correct_raw, resolve_profile
from hotpixels.dng.reader import read_dng
from hotpixels.profiles.library import ProfileLibrary
path, library, name = sys.argv[1:]
raw = read_dng(path)
options = CorrectOptions(profile=name, library_dir=library).validated()
profile, info = resolve_profile(raw, options, ProfileLibrary(library))
_, first, _ = correct_raw(raw, options, profile, info)
_, second, _ = correct_raw(raw, options, profile, info)
print(json.dumps({"import_s": import_s, "first": first["seconds"]["stage_3"], "warm": second["seconds"]["stage_3"],
                  "stages_1_2": second["seconds"]["stages_1_2"],
                  "candidates": first["stages"]["residual"].get("candidates")}))
"""


def stage3_first_call(src: Path, library: Path) -> dict[str, Any]:
    out = json.loads(_check([sys.executable, "-c", _STAGE3_CHILD, str(src), str(library), PROFILE]).splitlines()[-1])
    return {"stage3_first_s": round(out["first"], 3), "stage3_warm_s": round(out["warm"], 3),
            "stage3_module_import_s": round(out["import_s"], 3), "stages_1_2_s": round(out["stages_1_2"], 3)}


# --- the frozen worker ---------------------------------------------------------------------------
def frozen(repeats: int) -> dict[str, Any]:
    try:
        from .frozen import frozen_figures
    except ImportError as exc:
        return {"available": False, "reason": f"hotpixels.bench.frozen is not present ({exc})"}
    try:
        return {"available": True, **frozen_figures(repeats)}
    except Exception as exc:  # noqa: BLE001 - e.g. no frozen build: say so, keep the other figures
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}


# --- printing ------------------------------------------------------------------------------------
def print_figures(f: dict[str, Any]) -> None:
    b = f["batch"]
    print(f"\nSpeed ({f['preset']}, {f['file']}, {f['file_mb']} MB lossless-JPEG DNG, dense star field; "
          f"{f['cpus']} CPUs, load average {f['load_average_start']} -> {f['load_average_end']})")
    rows: list[tuple[str, str, str]] = [
        ("codec floor (decode + lossless re-encode + MD5, 2 threads)",
         f"{f['floor_s']:.3f} s ({f['floor_cpu_s']:.3f} s CPU)", ""),
        ("warm worker image.correct, all stages", f"{f['worker_correct_s']:.3f} s = {f['worker_vs_floor']:.2f}x floor",
         _target(f["worker_vs_floor"], TARGETS["worker_vs_floor"], "x", goal="goal 1.3x")),
        ("  in CPU seconds (load-independent)", f"{f['worker_correct_cpu_s']:.3f} s = {f['worker_vs_floor_cpu']:.2f}x "
                                                f"the floor's CPU", ""),
        ("  its parts (s)", ", ".join(f"{k} {v}" for k, v in (f.get("worker_parts_s") or {}).items()), ""),
        ("  raw tiles re-encoded (changed)", f"{f['tiles_rewritten']} of {f['tiles']} "
                                            f"({f['sites_changed']} sites changed, {f['stage3_candidates']} stage-3 candidates)", ""),
        ("whole CLI process", f"{f['cli_s']:.3f} s, peak {_mb(f['cli_peak_mb'])}", ""),
    ]
    if f["darktable_s"] is not None:
        ran = "" if f["darktable_hotpixels_ran"] else " (hot pixels module NOT seen in its perf log)"
        rows.append(("darktable-cli render with hot pixels" + ran,
                     f"{f['darktable_s']:.3f} s, peak {_mb(f['darktable_peak_mb'])}", ""))
        rows.append(("CLI / darktable-cli", f"{f['cli_vs_darktable']:.2f}x",
                     _target(f["cli_vs_darktable"], TARGETS["cli_vs_darktable"], "x", goal="goal 0.8x")))
    else:
        rows.append(("CLI / darktable-cli", "n/a", f.get("darktable_note", "")))
    rows += [
        ("stage 3 first call (fresh process)", f"{f['stage3_first_s']:.3f} s (warm {f['stage3_warm_s']:.3f} s)",
         _target(f["stage3_first_s"], TARGETS["stage3_first_s"], " s")),
        (f"batch of {b['photos']} in one request: photos/s", f"{b['photos_per_s']:.2f} ({b['seconds']:.1f} s, {b['ok']} ok)",
         _target(b["photos_per_s"], TARGETS["batch_photos_per_s"], "", at_least=True)),
        ("  worker CPU per photo (start-up included)",
         "n/a" if b["cpu_s_per_photo"] is None else f"{b['cpu_s_per_photo']:.2f} s: at most "
         f"{(f['cpus'] or 1) / b['cpu_s_per_photo']:.2f} photos/s on {f['cpus']} idle cores", ""),
        ("  worker peak memory", _mb(b["peak_mb"]),
         _target(b["peak_mb"], TARGETS["batch_peak_mb"], " MB") if b["peak_mb"] else ""),
        ("  time to the first $/result", f"{b['first_result_s']:.2f} s",
         _target(b["first_result_s"], TARGETS["batch_first_result_s"], " s")),
    ]
    fz = f["frozen"]
    if fz.get("available") and fz.get("built"):
        rows.append(("frozen worker folder", f"{fz['folder_mb']} MB (torch bundled: {fz.get('bundles_torch')})",
                     _target(fz["folder_mb"], 200.0, " MB")))
        rows.append(("frozen worker cold start to worker.hello", f"{fz['cold_start_s']} s (median "
                     f"{fz.get('cold_start_median_s')} s, bare python {fz.get('floor_python_s')} s)",
                     _target(fz["cold_start_s"], 1.0, " s")))
    else:
        rows.append(("frozen worker", "n/a", fz.get("reason") or fz.get("note", "")))
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value}  {target}".rstrip())


def _mb(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f} MB"


def _target(value: float, limit: float, unit: str, *, at_least: bool = False, goal: str = "") -> str:
    ok = value >= limit if at_least else value <= limit
    sign = ">=" if at_least else "<="
    return f"[target {sign} {limit:g}{unit}: {'met' if ok else 'NOT met'}{'; ' + goal if goal else ''}]"

