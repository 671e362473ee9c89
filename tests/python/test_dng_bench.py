"""Smoke test of the DNG I/O benchmark (``--quick``: a 1.9 MP frame; the figures are not asserted)."""

from hotpixels.bench import dng_io


def test_dng_io_bench_quick_runs_and_verifies_its_round_trips(capsys):
    res = dng_io.run(["--quick", "--repeat", "1"])
    assert res["round_trips_verified"] is True
    for key in dng_io.TARGETS:
        assert res[key] > 0 and res["mb_per_cpu_s"][key] > 0
    assert 0 < res["peak_memory_x_raw"] < 10
    assert "ljpeg_decode_mb_s" in capsys.readouterr().out
