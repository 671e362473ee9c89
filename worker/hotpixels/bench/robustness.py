"""``./run.sh bench robustness``: thousands of damaged DNGs through ``inspect`` and ``correct``, and
hostile JSON-RPC lines through one worker.

Files: :mod:`hotpixels.bench.mutate` makes seeded mutants of the project's own simulated layouts
and of the real files in ``tests/data`` (when present). Each mutant is checked in a child process
(:func:`run_cases`), in its own folder:

* ``inspect`` then ``correct`` (no profile, every stage, previews on, batch off) end in success
  or a *named* error — never a signal exit (**crash**), never silence past the timeout
  (**hang**), never error 1000 (**errors_1000**);
* the mutant's bytes are unchanged afterwards (**originals_changed**, SHA-256);
* the folder holds the mutant plus, after a success, exactly the output DNG, its report, sites
  file and previews — no temporary file, nothing after a failure (**leftovers**);
* every success reads back with HotPixels' reader and with LibRaw (rawpy), equal to the mutant
  outside the sites the report lists (**unreadable_successes**).

Files whose raw IFD declares huge dimensions are checked in a child of their own, whose peak
resident memory (``ru_maxrss`` of that process, from ``os.wait4``) is **huge_dims_peak_mb**.

The JSON-RPC half is :func:`hotpixels.bench.hostile_rpc.run_hostile_rpc` (one worker, hostile
lines): its ``crashes``, ``hangs`` and ``errors_1000`` are reported beside.

Figures: counts above, files per kind, outcomes per error name, and the wall time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_FILES = 2000
DEFAULT_RPC_LINES = 1000
CASE_TIMEOUT_S = 60.0


# -- one case (runs in the child) ------------------------------------------------------------------
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_case(mutant: Path, case_dir: Path) -> dict[str, Any]:
    """Run inspect and correct on a copy of ``mutant`` in the empty folder ``case_dir``; return
    what happened and which invariant broke (see the module docstring)."""
    from ..correct.pipeline import CorrectOptions, correct_file
    from ..dng.cli import inspect_file
    from ..errors import as_hotpixels_error

    src = case_dir / "photo.dng"
    shutil.copyfile(mutant, src)
    before = _sha256(src)
    out: dict[str, Any] = {"name": mutant.name}
    t0 = time.perf_counter()
    for step in ("inspect", "correct"):
        try:
            if step == "inspect":
                inspect_file(str(src))
                out[step] = {"ok": True}
            else:
                res = correct_file(str(src), CorrectOptions(profile=None, batch="off"))
                out[step] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - every failure must be a named error: recorded
            err = as_hotpixels_error(exc)
            out[step] = {"ok": False, "code": err.code, "error": err.NAME}
            if err.code == 1000:
                out[step]["message"] = err.message
    out["seconds"] = round(time.perf_counter() - t0, 3)
    out["original_changed"] = _sha256(src) != before
    expected = {src.name}
    if out["correct"]["ok"]:
        expected |= {Path(res["output"]).name, Path(res["report_path"]).name, Path(res["sites_file"]).name}
        regions = (res.get("previews") or {}).get("regions") or []
        expected |= {Path(p[k]).name for p in regions for k in ("before", "after")}
        out["readback"] = _check_output(src, Path(res["output"]), Path(res["sites_file"]))
    out["leftovers"] = sorted(set(os.listdir(case_dir)) - expected)
    missing = sorted(expected - set(os.listdir(case_dir)))
    if missing:
        out["missing_outputs"] = missing
    return out


def _check_output(src: Path, output: Path, sites_file: Path) -> dict[str, Any]:
    """The output against its source: HotPixels' reader, LibRaw, and the pixels outside the sites."""
    import numpy as np

    from ..dng.reader import read_dng

    try:
        a = read_dng(src, metadata=False).cfa_dn
        b = read_dng(output, metadata=False).cfa_dn
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "why": f"HotPixels cannot read its own output: {exc}"}
    mask = np.ones(a.shape, dtype=bool)
    with open(sites_file, newline="") as fh:
        for row in csv.DictReader(fh):
            mask[int(row["y"]), int(row["x"])] = False
    if a.shape != b.shape or not np.array_equal(a[mask], b[mask]):
        return {"ok": False, "why": "pixels outside the reported sites changed"}
    libraw = _libraw_raw(output)
    if not isinstance(libraw, str) and libraw.shape == b.shape and np.array_equal(libraw, b):
        return {"ok": True, "libraw": "equal"}
    # the mutant's own damage (kept byte for byte) may be what LibRaw refuses or misreads: it is
    # an unreadable success only when LibRaw reads the source as HotPixels does (read in a
    # throwaway process: LibRaw on a damaged file could crash) but not the output
    theirs = _libraw_elsewhere(src)
    if theirs is None or theirs.shape != a.shape or not np.array_equal(theirs, a):
        return {"ok": True, "libraw": "refuses or misreads the damaged source too"}
    if isinstance(libraw, str):
        return {"ok": False, "why": f"LibRaw cannot open the output ({libraw})"}
    return {"ok": False, "why": "LibRaw reads other pixels from the output than HotPixels"}


def _libraw_raw(path: Path):
    try:
        import rawpy
    except ImportError:
        return "rawpy is not installed"
    try:
        with rawpy.imread(str(path)) as rp:
            return rp.raw_image.copy()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


def _libraw_elsewhere(path: Path):
    """LibRaw's raw_image of ``path`` read in a throwaway process, or None when it fails there."""
    import numpy as np

    code = "import rawpy,sys,numpy\nwith rawpy.imread(sys.argv[1]) as r: numpy.save(sys.argv[2], r.raw_image)"
    npy = path.with_name(".libraw-source.npy")
    try:
        ok = subprocess.run([sys.executable, "-c", code, str(path), str(npy)], capture_output=True,
                            timeout=60).returncode == 0
        return np.load(npy) if ok and npy.exists() else None
    except subprocess.TimeoutExpired:
        return None
    finally:
        npy.unlink(missing_ok=True)


def child_main(list_file: str, work: str) -> int:
    """The child: one JSON line ``{"start": name}`` before and one result line after each case."""
    names = json.loads(Path(list_file).read_text())
    for name in names:
        print(json.dumps({"start": name}), flush=True)
        case_dir = Path(tempfile.mkdtemp(prefix="case-", dir=work))
        try:
            result = check_case(Path(name), case_dir)
        except Exception as exc:  # noqa: BLE001 - a bug of this harness, reported as such
            result = {"name": Path(name).name, "harness_error": f"{type(exc).__name__}: {exc}"}
        shutil.rmtree(case_dir, ignore_errors=True)
        print(json.dumps({"done": result}), flush=True)
    return 0


# -- the parent: children, crashes, hangs, memory --------------------------------------------------
def _child(names: list[str], work: Path) -> subprocess.Popen:
    list_file = work / f"list-{time.monotonic_ns()}.json"
    list_file.write_text(json.dumps(names))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "worker"), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-m", "hotpixels.bench.robustness", "--child", str(list_file), str(work)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def _reap(proc: subprocess.Popen) -> tuple[int, int]:
    """(exit status as Popen reports it, peak RSS in KB) of a finished child."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, int(usage.ru_maxrss)


def run_cases(files: list[Path], work: Path, *, timeout_s: float = CASE_TIMEOUT_S) -> dict[str, Any]:
    """Check ``files`` in child processes; a child that dies on a signal or stays silent past
    ``timeout_s`` on one case is recorded as a crash / hang of that case and replaced by a fresh
    one for the rest. Returns ``{"results": [...], "crashes": [...], "hangs": [...], "peak_rss_kb"}``."""
    work.mkdir(parents=True, exist_ok=True)
    todo = [str(f) for f in files]
    results, crashes, hangs, peak_kb = [], [], [], 0
    while todo:
        proc = _child(todo, work)
        current, buf = None, b""
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s + 30  # the first case also pays the imports
        finished = False
        while True:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:  # silent past the deadline: a hang
                os.killpg(proc.pid, signal.SIGKILL)
                _, kb = _reap(proc)
                peak_kb = max(peak_kb, kb)
                hangs.append(Path(current or todo[0]).name)
                todo = todo[todo.index(current) + 1:] if current in todo else todo[1:]
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                rc, kb = _reap(proc)
                peak_kb = max(peak_kb, kb)
                if current is not None and rc != 0:
                    crashes.append({"name": Path(current).name, "exit": rc})
                    todo = todo[todo.index(current) + 1:]
                else:
                    if rc != 0:  # the child died before its first case: nothing more can be learned
                        crashes.append({"name": "(child start)", "exit": rc})
                    finished = True
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                if "start" in msg:
                    current = msg["start"]
                    deadline = time.monotonic() + timeout_s
                else:
                    results.append(msg["done"])
                    todo.remove(current)
                    current = None
        if finished:
            break
    return {"results": results, "crashes": crashes, "hangs": hangs, "peak_rss_kb": peak_kb}


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """The counts the issue asks for, plus outcomes by error name."""
    res = run["results"]
    outcomes: Counter = Counter()
    errors_1000, unreadable, changed, leftovers, harness = [], [], [], [], []
    for r in res:
        if "harness_error" in r:
            harness.append(r)
            continue
        for step in ("inspect", "correct"):
            o = r[step]
            outcomes[f"{step}:{'ok' if o['ok'] else o['error']}"] += 1
            if not o["ok"] and o["code"] == 1000:
                errors_1000.append({"name": r["name"], "step": step, "message": o.get("message")})
        if r["original_changed"]:
            changed.append(r["name"])
        if r["leftovers"] or r.get("missing_outputs"):
            leftovers.append({"name": r["name"], "left": r["leftovers"], "missing": r.get("missing_outputs")})
        if r.get("readback") and not r["readback"]["ok"]:
            unreadable.append({"name": r["name"], "why": r["readback"]["why"]})
    return {
        "files": len(res) + len(run["crashes"]) + len(run["hangs"]),
        "crashes": len(run["crashes"]), "hangs": len(run["hangs"]), "errors_1000": len(errors_1000),
        "originals_changed": len(changed), "leftovers": len(leftovers), "unreadable_successes": len(unreadable),
        "harness_errors": len(harness), "successes": outcomes.get("correct:ok", 0),
        "outcomes": dict(sorted(outcomes.items())),
        "examples": {"crashes": run["crashes"][:5], "hangs": run["hangs"][:5], "errors_1000": errors_1000[:5],
                     "originals_changed": changed[:5], "leftovers": leftovers[:5], "unreadable": unreadable[:5],
                     "harness": harness[:5]},
    }


def real_sources(folder: Path = ROOT / "tests" / "data", max_bytes: int = 8_000_000) -> list[Path]:
    """The real DNG files of the test suite (small ones), when the folder exists."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.dng") if p.is_file() and p.stat().st_size <= max_bytes
                  and "regressions" not in p.parts)


def write_corpus(folder: Path, n: int, seed: int, extra_sources: list[Path] = (), *,
                 simulated: bool = True) -> list[tuple[Path, str]]:
    """Write ``n`` mutants of the simulated layouts (unless ``simulated=False``) and of
    ``extra_sources`` (real files) to ``folder``: ``[(path, kind)]``."""
    from .mutate import corpus, simulated_sources

    folder.mkdir(parents=True, exist_ok=True)
    sources = (simulated_sources(folder / "sources", seed) if simulated else []) + list(extra_sources)
    out = []
    for name, kind, data in corpus(sources, n, seed):
        path = folder / name
        path.write_bytes(data)
        out.append((path, kind))
    return out


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench robustness", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 files and 200 JSON-RPC lines: a smoke run")
    parser.add_argument("--files", type=int, default=None, help=f"mutated files (default {DEFAULT_FILES})")
    parser.add_argument("--rpc-lines", type=int, default=None, help=f"hostile JSON-RPC lines (default {DEFAULT_RPC_LINES})")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=max(1, min(4, (os.cpu_count() or 2))), help="child processes")
    parser.add_argument("--out", default=None, help="(ignored; figures are returned)")
    args, _ = parser.parse_known_args(argv)
    n_files = args.files or (200 if args.quick else DEFAULT_FILES)
    n_lines = args.rpc_lines or (200 if args.quick else DEFAULT_RPC_LINES)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hp-bench-robust-") as tmp:
        work = Path(tmp)
        cases = write_corpus(work / "corpus", n_files, args.seed, real_sources())
        huge = [p for p, kind in cases if "huge_dims" in kind]
        rest = [p for p, kind in cases if "huge_dims" not in kind]
        huge_run = run_cases(huge, work / "huge")  # one child of its own: its peak RSS is the figure
        parts = [rest[k::args.jobs] for k in range(args.jobs)]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(lambda ks: run_cases(ks[1], work / f"part{ks[0]}"), enumerate(parts)))
        merged = {"results": huge_run["results"] + [r for x in runs for r in x["results"]],
                  "crashes": huge_run["crashes"] + [c for x in runs for c in x["crashes"]],
                  "hangs": huge_run["hangs"] + [h for x in runs for h in x["hangs"]], "peak_rss_kb": 0}
        figures = summarise(merged)
        figures.update(seed=args.seed, huge_dims_files=len(huge),
                       huge_dims_peak_mb=round(huge_run["peak_rss_kb"] / 1024, 1),
                       files_wall_s=round(time.perf_counter() - t0, 1))
        figures["rpc"] = _hostile_rpc(n_lines, args.seed, work / "rpc")
    _print(figures)
    return figures


def _hostile_rpc(n_lines: int, seed: int, work: Path) -> dict[str, Any]:
    try:
        from .hostile_rpc import run_hostile_rpc
    except ImportError as exc:
        return {"skipped": f"hotpixels.bench.hostile_rpc is not available ({exc})"}
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    out = dict(run_hostile_rpc(n_lines, seed, work))
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def _print(f: dict[str, Any]) -> None:
    print(f"mutated files: {f['files']} ({f['successes']} corrected; {f['huge_dims_files']} with huge dimensions)")
    for key in ("crashes", "hangs", "errors_1000", "originals_changed", "leftovers", "unreadable_successes",
                "harness_errors"):
        print(f"  {key:<22} {f[key]}")
    print(f"  huge_dims_peak_mb      {f['huge_dims_peak_mb']}")
    print(f"  wall                   {f['files_wall_s']} s")
    for k, v in f["outcomes"].items():
        print(f"    {k:<40} {v}")
    bad = {k: v for k, v in f["examples"].items() if v}
    if bad:
        print("  examples: " + json.dumps(bad, indent=1)[:3000])
    rpc = f.get("rpc") or {}
    if "skipped" in rpc:
        print(f"hostile JSON-RPC: skipped ({rpc['skipped']})")
    else:
        print("hostile JSON-RPC: " + ", ".join(f"{k} {rpc.get(k)}" for k in
                                               ("lines", "responses_ok", "crashes", "hangs", "errors_1000", "wall_s")))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2], sys.argv[3]))
    print(json.dumps(run(sys.argv[1:]), indent=2, default=str))
