"""``./run.sh bench speed --quick`` runs every measurement on a small frame and prints every figure
(a run of the code path: the machine is shared, so nothing here is timed against a target)."""

from __future__ import annotations

import shutil

import pytest

from hotpixels.bench import speed as bench

pytestmark = pytest.mark.timeout(900)


def test_the_quick_speed_bench_measures_every_figure_in_one_run_and_prints_them(capsys):
    figures = bench.run(["--quick"])

    for key in ("floor_s", "floor_cpu_s", "worker_correct_s", "worker_correct_cpu_s", "worker_vs_floor",
                "worker_vs_floor_cpu", "cli_s", "stage3_first_s", "stage3_warm_s"):
        assert figures[key] > 0, key
    assert figures["worker_vs_floor"] == pytest.approx(figures["worker_correct_s"] / figures["floor_s"], rel=0.02)
    batch = figures["batch"]
    assert batch["photos"] == batch["ok"] == 3
    assert batch["photos_per_s"] > 0 and 0 < batch["first_result_s"] <= batch["seconds"]
    assert batch["peak_mb"] is None or batch["peak_mb"] > 50
    assert batch["cpu_s_per_photo"] is None or batch["cpu_s_per_photo"] > 0
    if shutil.which("darktable-cli"):
        assert figures["darktable_hotpixels_ran"] is True, "the XMP sidecar switches darktable's hot pixels module on"
        assert figures["cli_vs_darktable"] == pytest.approx(figures["cli_s"] / figures["darktable_s"], rel=0.02)
    assert "available" in figures["frozen"]
    out = capsys.readouterr().out
    for label in ("codec floor", "warm worker", "CLI / darktable-cli", "stage 3 first call", "photos/s",
                  "peak memory", "first $/result", "frozen worker"):
        assert label in out, label

