"""The correction benchmark's quick mode runs and its figures say what the stages achieve."""

from __future__ import annotations

from hotpixels.bench import correct as bench


def test_quick_quality_bench_shows_stages_1_2_beating_the_gkyle_rule_on_hot_sites(capsys):
    figures = bench.run(["--quick", "--no-speed"])

    rows = figures["quality"]
    assert {row["delta_t_c"] for row in rows} == {0.0, 6.0}
    for row in rows:
        rmse = row["rmse_hot_dn"]
        assert rmse["stages 1-2"] < rmse["gkyle"] < rmse["input"]
        assert row["within_3_sigma"]["stages 1-2"] >= 0.99
        assert abs(row["scale"] - row["true_scale"]) / row["true_scale"] < 0.03
    assert "RMSE hot" in capsys.readouterr().out
