"""Benchmark of stage 3 (residual hot pixels) against the free single-frame alternatives.

Scenes: the seeded simulator (:mod:`hotpixels.simulate`) with its default scene statistics
(1200 stars per MP, star sigma 0.5-1.5 px; ``noaa`` 0.3-0.6 px; ``narrowband`` stars on red sites
only; ``real`` = the Canon sample DNG's content plus stars), seeds ``BENCH_SEED + i`` (training
draws its bodies and scenes from ``rng_for(seed, "train-frame", i)`` streams: no scene is shared).
Each frame is the *clean* light (sky, stars, shot and read noise; no dark signal) plus injected
residual hot pixels of known amplitude in σ of their local background (σ = the true noise:
``sqrt(read² + background_e) / gain``), 20 % with a touching partner.

Methods, all repaired with the same stage-2 interpolation:

* ``ours``: :func:`hotpixels.correct.residual.correct_residual` at sensitivity 0.5;
* ``lacosmic-default`` / ``lacosmic-tuned``: ``astroscrappy.detect_cosmics`` on each CFA colour plane
  (Bayer: the four ``raw[py::2, px::2]`` planes) with the camera's gain and read noise, at its
  defaults and at the (sigclip, objlim) that gave the best F1 on a separate tuning scene;
* ``global-ksigma``: gkyle/hotpixels' rule, hot when ``v > mean + k·std`` of its colour plane,
  k tuned the same way;
* ``neighbour-ratio``: darktable-like, hot when ``v - black`` exceeds ``factor`` times each of its
  four same-colour neighbours at (0, ±2), (±2, 0) (above black) and a floor, tuned the same way.

Figures: recall per amplitude band, false detections per megapixel (detections that are not
injected sites; hot pixels of 3-5 σ and the ``real`` scene content's own single-site spikes — the
source camera's hot pixels, see :func:`_content_spikes` — neither counted as hits nor as false
detections, and detections on the latter reported as ``on_content_spikes``), F1 on
>= 5 σ, star damage (share of stars with a peak >= 5 σ whose peak drops by > 20 % after
correction), a ROC curve over sensitivity (table + PNG), the 10-frame tripod batch recall, and
speed on a 24 MP frame (stage 3, model load, astroscrappy on the same frame).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..correct.batch import detect_batch
from ..correct.interpolate import interpolate_sites
from ..correct.residual import correct_residual, detect_residual, gate_for, threshold_for
from ..model.load import load_detector, model_path
from ..simulate.render import render_light
from ..simulate.scene import make_scene
from ..simulate.sensor import make_sensor, rng_for

BENCH_SEED = 9000
TUNE_SEED = 8000
BANDS = ((3, 5), (5, 8), (8, 15), (15, 1e9))
KINDS = ("stars", "narrowband", "noaa", "foreground", "real")
DAMAGE_DROP = 0.2


# -- scenes ---------------------------------------------------------------------------------------
def bench_frame(kind: str, seed: int, preset: str = "small", cfa: str | None = None, n_hot: int = 150,
                samples_dir: Path | None = None):
    """(sensor, scene, clean frame DN, frame with hot pixels DN, truth dict)."""
    from ..model.dataset import REAL_SAMPLE, default_samples_dir

    sensor = make_sensor(preset, seed, cfa=cfa)
    scene_from = (samples_dir or default_samples_dir()) / REAL_SAMPLE if kind == "real" else None
    scene = make_scene(sensor, kind, seed, scene_from=scene_from)
    iso = 1600.0
    fr = render_light(sensor, scene, rng_for(seed, "bench-light", kind), exposure_s=60.0, temp_c=20.0, iso=iso,
                      residual=False)
    gain = sensor.gain_e_per_dn(iso)
    black = sensor.black_map()
    clean = fr.clean_dn
    rng = rng_for(seed, "bench-hot", kind)
    t, l, b, r = sensor.active_area
    ys = rng.integers(t + 3, b - 3, n_hot)
    xs = rng.integers(l + 3, r - 3, n_hot)
    band = rng.integers(0, len(BANDS), n_hot)
    lo = np.array([BANDS[i][0] for i in band], dtype=float)
    hi = np.array([min(BANDS[i][1], 100.0) for i in band], dtype=float)
    amp = rng.uniform(lo, hi)
    pair = rng.random(n_hot) < 0.2
    d = np.array([(0, 1), (1, 0), (1, 1), (0, -1)])[rng.integers(0, 4, n_hot)]
    yx = np.concatenate([np.stack([ys, xs], 1), (np.stack([ys, xs], 1) + d)[pair]])
    amp = np.concatenate([amp, amp[pair] * rng.uniform(0.6, 1.0, int(pair.sum()))])
    _, first = np.unique(yx[:, 0] * clean.shape[1] + yx[:, 1], return_index=True)
    yx, amp = yx[np.sort(first)], amp[np.sort(first)]
    expected_e = (fr.expected_dn - black) * gain
    bg_e = _ring_median(expected_e, yx)
    sigma_dn = np.sqrt(sensor.read_noise_e ** 2 + np.maximum(bg_e, 0)) / gain
    hot = clean.astype(np.float64)
    hot[yx[:, 0], yx[:, 1]] += amp * sigma_dn
    frame = np.clip(np.rint(hot), 0, sensor.white_level_dn).astype(np.uint16)
    truth = {"yx": yx.astype(np.int64), "amp_sigma": amp, "gain": gain, "read_e": sensor.read_noise_e,
             "black": black, "expected_dn": fr.expected_dn,
             "stars": _star_peaks(sensor, scene, fr.expected_dn, black, gain),
             "content_spikes": _content_spikes(sensor, scene, fr.expected_dn, black, gain) if kind == "real"
             else np.zeros((0, 2), np.int64)}
    return sensor, scene, clean, frame, truth


def _content_spikes(sensor, scene, expected_dn, black, gain) -> np.ndarray:
    """(K, 2) sites where the *noiseless* scene itself is a single-site spike, no star within 3 px.

    A spike: 5 σ above the *highest* of its 8 same-colour ring sites (texture peaks are not).

    The ``real`` scene is a real camera's raw content, which holds that camera's own hot pixels
    (single sites 9-22 σ over their ring in the noiseless frame, at the same places in every bench
    frame). They are hot pixels, but not injected ones: they count neither as hits nor as false
    detections (``score`` reports how many detections fell on them).
    """
    t, l, b, r = sensor.active_area
    sig = (expected_dn - black)[t:b, l:r]
    h, w = sig.shape
    c = sig[2:h - 2, 2:w - 2]
    ring = np.stack([sig[2 + dy:h - 2 + dy, 2 + dx:w - 2 + dx] for dy, dx in
                     ((0, 2), (0, -2), (2, 0), (-2, 0), (2, 2), (2, -2), (-2, 2), (-2, -2))])
    bg = np.median(ring, axis=0)
    sd = np.sqrt(sensor.read_noise_e ** 2 + np.maximum(bg, 0) * gain) / gain
    yx = np.argwhere((c - ring.max(axis=0)) >= 5 * sd) + 2  # above every same-colour neighbour
    if len(yx) and len(scene.star_yx_active):
        near = np.zeros((h, w), dtype=bool)
        sy = np.round(scene.star_yx_active).astype(np.int64)
        ok = (sy[:, 0] >= 0) & (sy[:, 0] < h) & (sy[:, 1] >= 0) & (sy[:, 1] < w)
        near[sy[ok, 0], sy[ok, 1]] = True
        pad = np.pad(near, 3)
        grow = np.zeros_like(near)
        for dy in range(7):
            for dx in range(7):
                grow |= pad[dy:dy + h, dx:dx + w]
        yx = yx[~grow[yx[:, 0], yx[:, 1]]]
    return (yx + np.array([t, l])).astype(np.int64)


def _ring_median(img: np.ndarray, yx: np.ndarray) -> np.ndarray:
    offs = np.array([(0, 2), (0, -2), (2, 0), (-2, 0), (2, 2), (2, -2), (-2, 2), (-2, -2)])
    return np.median(img[yx[:, 0, None] + offs[None, :, 0], yx[:, 1, None] + offs[None, :, 1]], axis=1)


def _star_peaks(sensor, scene, expected_dn, black, gain) -> dict:
    """Peak site of every visible star (peak excess >= 5 σ over its background), full frame."""
    t, l, b, r = sensor.active_area
    yx = np.round(scene.star_yx_active).astype(np.int64) + np.array([t, l])
    inside = (yx[:, 0] >= t + 4) & (yx[:, 0] < b - 4) & (yx[:, 1] >= l + 4) & (yx[:, 1] < r - 4)
    yx = yx[inside]
    sig = expected_dn - black
    win = np.arange(-2, 3)
    wy = yx[:, 0, None, None] + win[None, :, None]
    wx = yx[:, 1, None, None] + win[None, None, :]
    vals = sig[wy, wx].reshape(len(yx), -1)
    k = np.argmax(vals, axis=1)
    py, px = yx[:, 0] + win[k // 5], yx[:, 1] + win[k % 5]
    peak = vals[np.arange(len(yx)), k]
    bg = _ring_median(sig, np.stack([py, px], 1))
    sd = np.sqrt(sensor.read_noise_e ** 2 + np.maximum(bg, 0) * gain) / gain
    ok = (peak - bg) >= 5 * sd
    if scene.foreground_mask is not None:
        ok &= ~scene.foreground_mask[py - t, px - l]
    return {"yx": np.stack([py, px], 1)[ok], "bg": bg[ok]}


# -- methods --------------------------------------------------------------------------------------
def _plane_views(cfa, shape):
    return [sl for p in range(cfa.n_planes) for sl in cfa.plane_slices(p, shape)]


def lacosmic_sites(frame, sensor, truth, **kw) -> np.ndarray:
    import astroscrappy

    black = truth["black"]
    mask = np.zeros(frame.shape, dtype=bool)
    t, l, b, r = sensor.active_area
    act = (frame.astype(np.float32) - black)[t:b, l:r]
    sub = sensor.cfa.with_origin((0, 0))
    for sy, sx in _plane_views(sub, act.shape):
        plane = np.ascontiguousarray(act[sy, sx])
        m, _ = astroscrappy.detect_cosmics(plane, gain=truth["gain"], readnoise=truth["read_e"],
                                           satlevel=float(sensor.white_level_dn), verbose=False, **kw)
        mask[t:b, l:r][sy, sx] |= m
    return np.argwhere(mask)


def ksigma_sites(frame, sensor, truth, k=5.0) -> np.ndarray:
    mask = np.zeros(frame.shape, dtype=bool)
    t, l, b, r = sensor.active_area
    act = frame.astype(np.float64)[t:b, l:r]
    sub = sensor.cfa.with_origin((0, 0))
    for sy, sx in _plane_views(sub, act.shape):
        p = act[sy, sx]
        mask[t:b, l:r][sy, sx] = p > p.mean() + k * p.std()
    return np.argwhere(mask)


def ratio_sites(frame, sensor, truth, factor=2.0, floor_sigma=5.0) -> np.ndarray:
    t, l, b, r = sensor.active_area
    v = frame.astype(np.float64) - truth["black"]
    c = v[t + 2:b - 2, l + 2:r - 2]
    nbs = [v[t + 2 + dy:b - 2 + dy, l + 2 + dx:r - 2 + dx] for dy, dx in ((0, 2), (0, -2), (2, 0), (-2, 0))]
    floor = floor_sigma * truth["read_e"] / truth["gain"]
    hot = c > floor
    for n in nbs:
        hot &= c > factor * np.maximum(n, 0.0) + floor
    return np.argwhere(hot) + np.array([t + 2, l + 2])


def repair(frame, sensor, sites) -> np.ndarray:
    out = frame.copy()
    if len(sites):
        vals = interpolate_sites(frame, sensor.cfa, sites, white_level_dn=sensor.white_level_dn,
                                 bounds=sensor.active_area)
        out[sites[:, 0], sites[:, 1]] = np.clip(np.rint(vals), 0, sensor.white_level_dn).astype(out.dtype)
    return out


# -- scoring --------------------------------------------------------------------------------------
def score(sites, corrected, clean, sensor, truth) -> dict:
    w = clean.shape[1]
    lin = set((sites[:, 0] * w + sites[:, 1]).tolist()) if len(sites) else set()
    tl = truth["yx"][:, 0] * w + truth["yx"][:, 1]
    hit = np.array([v in lin for v in tl.tolist()], dtype=bool)
    amp = truth["amp_sigma"]
    t, l, b, r = sensor.active_area
    mp = (b - t) * (r - l) / 1e6
    weak = set(tl[amp < 5].tolist())
    spikes = truth.get("content_spikes", np.zeros((0, 2), np.int64))
    spikes = set((spikes[:, 0] * w + spikes[:, 1]).tolist()) - set(tl.tolist())
    fp = len(lin - set(tl.tolist()) - weak - spikes)
    out = {"mp": mp, "fp": fp, "tp5": int(hit[amp >= 5].sum()), "n5": int((amp >= 5).sum()),
           "on_content_spikes": len(lin & spikes)}
    for lo, hi in BANDS:
        sel = (amp >= lo) & (amp < hi)
        out[f"hit_{lo}"] = int(hit[sel].sum())
        out[f"n_{lo}"] = int(sel.sum())
    stars = truth["stars"]
    sy, sx = stars["yx"][:, 0], stars["yx"][:, 1]
    # stars with an injected hot pixel within 2 px are not judged (their peak was changed on purpose)
    near = np.zeros(len(sy), dtype=bool)
    if len(sy):
        hot_map = np.zeros(clean.shape, dtype=bool)
        hot_map[truth["yx"][:, 0], truth["yx"][:, 1]] = True
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                near |= hot_map[sy + dy, sx + dx]
    base = clean[sy, sx].astype(float) - truth["black"][sy, sx] - stars["bg"]
    after = corrected[sy, sx].astype(float) - truth["black"][sy, sx] - stars["bg"]
    judged = ~near & (base > 0)
    out["stars"] = int(judged.sum())
    out["stars_damaged"] = int(((base - after) > DAMAGE_DROP * base)[judged].sum())
    return out


def summarise(rows: list[dict]) -> dict:
    tot = {k: sum(r[k] for r in rows) for k in rows[0]}
    rec = {f"recall_{lo}_{hi if hi < 1e9 else 'up'}": tot[f"hit_{lo}"] / max(tot[f"n_{lo}"], 1) for lo, hi in BANDS}
    prec = tot["tp5"] / max(tot["tp5"] + tot["fp"], 1)
    recall5 = tot["tp5"] / max(tot["n5"], 1)
    return {**{k: round(v, 4) for k, v in rec.items()}, "recall_8_up": round(
        (tot["hit_8"] + tot["hit_15"]) / max(tot["n_8"] + tot["n_15"], 1), 4),
        "fp_per_mp": round(tot["fp"] / tot["mp"], 3), "f1": round(2 * prec * recall5 / max(prec + recall5, 1e-9), 4),
        "stars_damaged_pct": round(100 * tot["stars_damaged"] / max(tot["stars"], 1), 3), "stars": tot["stars"],
        "megapixels": round(tot["mp"], 2), "on_content_spikes": tot["on_content_spikes"]}


# -- the run --------------------------------------------------------------------------------------
def run(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="bench residual")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="bench-output")
    ap.add_argument("--frames", type=int, default=None, help="frames per scene kind (default 8, quick 1)")
    ap.add_argument("--no-24mp", action="store_true", help="skip the 24 MP speed part")
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_frames = args.frames or (1 if args.quick else 8)
    t_load = time.perf_counter()
    det = load_detector(model_path())
    load_s = time.perf_counter() - t_load
    results: dict = {"model": str(model_path()), "model_load_s": round(load_s, 3), "frames_per_kind": n_frames}

    tuned = tune_baselines(det, quick=args.quick)
    results["tuned"] = tuned
    methods = ["ours", "lacosmic-default", "lacosmic-tuned", "global-ksigma", "neighbour-ratio"]
    rows: dict = {m: {} for m in methods}
    roc_rows = []
    for kind in KINDS:
        for i in range(n_frames):
            cfa = "XTRANS" if (kind == "stars" and i % 4 == 3) else None
            sensor, scene, clean, frame, truth = bench_frame(kind, BENCH_SEED + i, cfa=cfa)
            for m in methods:
                if m.startswith("lacosmic") and not sensor.cfa.is_bayer:
                    continue
                sites, corrected = apply_method(m, frame, sensor, truth, det, tuned)
                rows[m].setdefault(kind, []).append(score(sites, corrected, clean, sensor, truth))
            roc_rows.append(roc_frame(frame, clean, sensor, truth, det))
    table = {m: {k: summarise(v) for k, v in rows[m].items()} for m in methods}
    for m in methods:
        table[m]["all"] = summarise([r for v in rows[m].values() for r in v])
    results["single_frame"] = table
    results["roc"] = roc_summary(roc_rows, det)
    write_roc_png(results["roc"], out_dir / "residual_roc.png")
    results["batch"] = batch_bench(det, quick=args.quick)
    if not args.quick and not args.no_24mp:
        results["speed_24mp"] = speed_bench(det)
    print_tables(results)
    return results


def apply_method(m, frame, sensor, truth, det, tuned):
    if m == "ours":
        corrected, rep = correct_residual(frame, sensor.cfa, active_area=sensor.active_area,
                                          white_level_dn=sensor.white_level_dn, black_level_dn=truth["black"],
                                          detector=det)
        return rep["sites"], corrected
    if m == "lacosmic-default":
        sites = lacosmic_sites(frame, sensor, truth)
    elif m == "lacosmic-tuned":
        sites = lacosmic_sites(frame, sensor, truth, **tuned["lacosmic"])
    elif m == "global-ksigma":
        sites = ksigma_sites(frame, sensor, truth, **tuned["ksigma"])
    else:
        sites = ratio_sites(frame, sensor, truth, **tuned["ratio"])
    return sites, repair(frame, sensor, sites)


def tune_baselines(det, quick: bool) -> dict:
    """Best-F1 parameters of each baseline on a separate scene (seed TUNE_SEED, stars + foreground)."""
    frames = [bench_frame(k, TUNE_SEED) for k in (("stars",) if quick else ("stars", "foreground"))]
    grids = {
        "lacosmic": [dict(sigclip=s, objlim=o) for s in (4.5, 6.0, 9.0) for o in (5.0, 15.0, 40.0)],
        "ksigma": [dict(k=k) for k in (3.0, 5.0, 8.0, 12.0)],
        "ratio": [dict(factor=f, floor_sigma=s) for f in (1.5, 2.0, 3.0) for s in (3.0, 6.0, 10.0)],
    }
    fns = {"lacosmic": lacosmic_sites, "ksigma": ksigma_sites, "ratio": ratio_sites}
    best = {}
    for name, grid in grids.items():
        scored = []
        for params in grid:
            rows = []
            for sensor, scene, clean, frame, truth in frames:
                sites = fns[name](frame, sensor, truth, **params)
                rows.append(score(sites, repair(frame, sensor, sites), clean, sensor, truth))
            scored.append((summarise(rows)["f1"], params))
        best[name] = max(scored, key=lambda s: s[0])[1]
    return best


def roc_frame(frame, clean, sensor, truth, det) -> dict:
    # sensitivity 1.0: the lowest amplitude gate, so every candidate of every ROC point is scored
    rep = detect_residual(frame, sensor.cfa, active_area=sensor.active_area, white_level_dn=sensor.white_level_dn,
                          black_level_dn=truth["black"], detector=det, sensitivity=1.0)
    w = frame.shape[1]
    cl = rep["all_candidates"][:, 0] * w + rep["all_candidates"][:, 1]
    tl = truth["yx"][:, 0] * w + truth["yx"][:, 1]
    amp = truth["amp_sigma"]
    is_hot = np.isin(cl, tl)
    sp = truth["content_spikes"]
    is_weak = np.isin(cl, tl[amp < 5]) | np.isin(cl, sp[:, 0] * w + sp[:, 1])
    strong = np.full((int((amp >= 5).sum()), 2), -np.inf)
    pos = {v: i for i, v in enumerate(tl[amp >= 5].tolist())}
    for c, s, e in zip(cl.tolist(), rep["all_scores"].tolist(), rep["all_excess_sigma"].tolist()):
        if c in pos:
            strong[pos[c]] = (s, e)
    neg = np.stack([rep["all_scores"], rep["all_excess_sigma"]], 1)[~is_hot & ~is_weak]
    t, l, b, r = sensor.active_area
    return {"neg": neg, "pos": strong, "mp": (b - t) * (r - l) / 1e6}


def roc_summary(rows, det) -> list[dict]:
    neg = np.concatenate([r["neg"] for r in rows])
    pos = np.concatenate([r["pos"] for r in rows])
    mp = sum(r["mp"] for r in rows)
    out = []
    for s in np.linspace(0.0, 1.0, 11):
        thr, gate = threshold_for(float(s), det.meta), gate_for(float(s))
        hit_p = (pos[:, 0] > thr) & (pos[:, 1] >= gate)
        hit_n = (neg[:, 0] > thr) & (neg[:, 1] >= gate)
        out.append({"sensitivity": round(float(s), 2), "recall_5_up": round(float(hit_p.mean()), 4),
                    "fp_per_mp": round(float(hit_n.sum()) / mp, 3)})
    return out


def write_roc_png(roc: list[dict], path: Path) -> None:
    """A small line plot (recall vs log10 false detections per MP) drawn with numpy, PNG via imagecodecs."""
    import imagecodecs

    h, w, m = 240, 360, 30
    img = np.full((h, w, 3), 255, np.uint8)
    img[h - m, m:w - 10] = 0
    img[10:h - m, m] = 0
    xs = [np.log10(max(r["fp_per_mp"], 0.01)) for r in roc]  # 0.01 .. 1000 FP/MP -> -2 .. 3
    ys = [r["recall_5_up"] for r in roc]
    px = [int(m + (x + 2) / 5 * (w - m - 10)) for x in xs]
    py = [int(h - m - y * (h - m - 10)) for y in ys]
    for dec in range(-2, 4):  # ticks every decade
        img[h - m:h - m + 5, int(m + (dec + 2) / 5 * (w - m - 10))] = 0
    for q in (0.8, 0.97):
        img[int(h - m - q * (h - m - 10)), m:w - 10:3] = (150, 150, 150)
    for (x0, y0), (x1, y1) in zip(zip(px, py), zip(px[1:], py[1:])):
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for k in range(n + 1):
            img[np.clip(y0 + (y1 - y0) * k // n, 0, h - 1), np.clip(x0 + (x1 - x0) * k // n, 0, w - 1)] = (200, 0, 0)
    for x, y in zip(px, py):
        img[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3] = (0, 0, 200)
    path.write_bytes(imagecodecs.png_encode(img))


def batch_bench(det, quick: bool) -> dict:
    """10 tripod frames (drifting stars), defects of 5-15 σ in every frame."""
    n = 4 if quick else 10
    sensor = make_sensor("small", BENCH_SEED + 77)
    scene = make_scene(sensor, "foreground", BENCH_SEED + 77)
    rng = rng_for(BENCH_SEED, "batch-defects")
    t, l, b, r = sensor.active_area
    k = 200
    yx = np.stack([rng.integers(t + 3, b - 3, k), rng.integers(l + 3, r - 3, k)], 1)
    _, first = np.unique(yx[:, 0] * sensor.width + yx[:, 1], return_index=True)
    yx = yx[np.sort(first)]
    amp = rng.uniform(5.0, 15.0, len(yx))
    gain = sensor.gain_e_per_dn(1600.0)
    frames = []
    for i in range(n):
        fr = render_light(sensor, scene, rng_for(BENCH_SEED, "batch", i), exposure_s=60.0, temp_c=20.0, iso=1600.0,
                          shift_yx=(2.2 * i, 1.3 * i), residual=False)
        exp_e = (fr.expected_dn - sensor.black_map()) * gain
        sd = np.sqrt(sensor.read_noise_e ** 2 + np.maximum(_ring_median(exp_e, yx), 0)) / gain
        f = fr.clean_dn.astype(np.float64)
        f[yx[:, 0], yx[:, 1]] += amp * sd
        frames.append(np.clip(np.rint(f), 0, sensor.white_level_dn).astype(np.uint16))
    t0 = time.perf_counter()
    res = detect_batch(frames, sensor.cfa, active_area=sensor.active_area, black_level_dn=sensor.black_map(),
                       white_level_dn=sensor.white_level_dn, detector=det)
    took = time.perf_counter() - t0
    w = sensor.width
    found = set((res["sites"][:, 0] * w + res["sites"][:, 1]).tolist())
    truth = yx[:, 0] * w + yx[:, 1]
    hit = np.array([v in found for v in truth.tolist()])
    mp = (b - t) * (r - l) / 1e6
    return {"frames": n, "defects": int(len(yx)), "recall_5_up": round(float(hit.mean()), 4),
            "recurring_sites": res["recurring"],
            "false_sites": int(len(found - set(truth.tolist()))), "megapixels": round(mp, 3), "seconds": round(took, 2)}


def speed_bench(det) -> dict:
    """Stage 3 and astroscrappy on the same 24 MP frame (2 cores here)."""
    sensor = make_sensor("24mp", BENCH_SEED + 5)
    scene = make_scene(sensor, "foreground", BENCH_SEED + 5)
    fr = render_light(sensor, scene, rng_for(BENCH_SEED, "speed"), exposure_s=60.0, temp_c=20.0, iso=1600.0,
                      residual=True)
    # what stage 3 sees: the light after stages 1-2 (no profile defects) with its random residuals
    frame = fr.clean_dn.astype(np.float32)
    frame[fr.residual_yx[:, 0], fr.residual_yx[:, 1]] += fr.residual_dn
    frame = np.clip(np.rint(frame), 0, sensor.white_level_dn).astype(np.uint16)
    black = sensor.black_map()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        _, rep = correct_residual(frame, sensor.cfa, active_area=sensor.active_area,
                                  white_level_dn=sensor.white_level_dn, black_level_dn=black, detector=det)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    load_detector(model_path())
    load_s = time.perf_counter() - t0
    truth = {"black": black, "gain": sensor.gain_e_per_dn(1600.0), "read_e": sensor.read_noise_e}
    t0 = time.perf_counter()
    lacosmic_sites(frame, sensor, truth)
    astro_s = time.perf_counter() - t0
    best = min(times)
    return {"stage3_s": round(best, 3), "stage3_parts_s": {k: round(v, 3) for k, v in rep["seconds"].items()},
            "candidates": rep["candidates"], "detections": rep["count"], "model_load_s": round(load_s, 3),
            "astroscrappy_s": round(astro_s, 2), "speedup": round(astro_s / best, 1)}


def print_tables(res: dict) -> None:
    print(f"model {res['model']} (load {res['model_load_s']} s); tuned baselines: {res['tuned']}")
    print("\nsingle frame (recall by amplitude in σ; FP = false detections per MP; damage = % of stars)")
    head = f"{'method':18s} {'scene':11s} {'3-5σ':>6s} {'5-8σ':>6s} {'8σ+':>6s} {'FP/MP':>7s} {'F1':>6s} {'damage%':>8s}"
    print(head)
    for m, per in res["single_frame"].items():
        for kind, s in per.items():
            print(f"{m:18s} {kind:11s} {s['recall_3_5']:6.3f} {s['recall_5_8']:6.3f} {s['recall_8_up']:6.3f} "
                  f"{s['fp_per_mp']:7.2f} {s['f1']:6.3f} {s['stars_damaged_pct']:8.3f}")
    print("\nROC (ours, all scenes): sensitivity, recall >= 5σ, FP/MP")
    for r in res["roc"]:
        print(f"  {r['sensitivity']:4.1f}  {r['recall_5_up']:.4f}  {r['fp_per_mp']:.2f}")
    print(f"\nbatch: {res['batch']}")
    if "speed_24mp" in res:
        print(f"speed 24 MP: {res['speed_24mp']}")
