"""Damaged files never crash, hang or mislead: a seeded corpus of mutants and the regression inputs.

Every file goes through ``inspect`` and ``correct`` in a child process
(:func:`hotpixels.bench.robustness.run_cases`), so a crash is seen as the child's signal exit and a
hang as its silence, not as this test process dying. ``./run.sh bench robustness`` runs the same
checks on thousands of files.

``tests/data/regressions/`` holds mutants (made by :mod:`hotpixels.bench.mutate` from the
simulator's layouts) that crashed, hung, ended in error 1000 or were "corrected" into unreadable
files before the fixes of issue 12; each has the outcome it must keep.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hotpixels.bench.mutate import KINDS, corpus, mutate, simulated_sources
from hotpixels.bench.robustness import real_sources, run_cases, summarise, write_corpus

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = ROOT / "tests" / "data" / "regressions"
N_MUTANTS = 260  # of the simulated layouts (small frames)
N_REAL_MUTANTS = 40  # of the real files in tests/data (megapixel frames: slower)

# the outcome of `correct` each regression input must keep ("ok": a readable correction)
EXPECTED = {
    "ljpeg-tile-crashed-fallback-decoder.dng": "corrupt",  # liblj92 crashed the process (exit 139)
    "ljpeg-tile-decodes-to-garbage.dng": "corrupt",  # libjpeg-turbo decoded damaged data silently
    "packed-bad-count-hung.dng": "too_large",  # billions of strips listed before any check
    "ljpeg-huge-dims-hung.dng": "too_large",
    "subifd-huge-dims.dng": "too_large",
    "strip-300mp-declared-in-30kb.dng": "truncated",  # within the budget, far beyond the file
    "strip-bad-count-valueerror.dng": "corrupt",  # these four ended in error 1000
    "packed-bad-count-indexerror.dng": "corrupt",
    "ljpeg-swap-type-typeerror.dng": "corrupt",
    "ljpeg-zero-black-repeat-left-output.dng": "corrupt",  # also left a DNG behind
    "packed-software-span-struct-error.dng": "ok",  # error 1000 in the writer
    "subifd-software-span-zero-filled-raw-subifd.dng": "ok",  # written into an unreadable file
    "strip-software-span-unreadable-output.dng": "ok",
}


def assert_clean(summary: dict) -> None:
    bad = {k: summary[k] for k in ("crashes", "hangs", "errors_1000", "originals_changed", "leftovers",
                                   "unreadable_successes", "harness_errors") if summary[k]}
    assert not bad, f"{bad}: {summary['examples']}"


def test_the_mutator_is_seeded_and_covers_every_kind(tmp_path):
    sources = simulated_sources(tmp_path / "src", seed=1)
    a = list(corpus(sources, 60, seed=7))
    b = list(corpus(sources, 60, seed=7))
    assert [(n, d) for n, _, d in a] == [(n, d) for n, _, d in b]
    data = sources[0].read_bytes()
    for kind in KINDS:
        assert mutate(data, kind, 3) == mutate(data, kind, 3)
        assert any(mutate(data, kind, s) != data for s in range(5)), kind


def test_the_regression_inputs_end_in_their_named_errors_or_readable_corrections(tmp_path):
    files = sorted(REGRESSIONS.glob("*.dng"))
    assert {f.name for f in files} == set(EXPECTED)
    run = run_cases(files, tmp_path / "work")
    assert_clean(summarise(run))
    got = {r["name"]: ("ok" if r["correct"]["ok"] else r["correct"]["error"]) for r in run["results"]}
    assert got == EXPECTED
    for r in run["results"]:
        if r["correct"]["ok"]:
            assert r["readback"]["ok"], r


# mutants of the real files (too large to keep), regenerated from their seed: (source, kind, seed, outcome)
SEEDED = [
    # BitsPerSample's type changed to BYTE: 1 bit per sample, and writing it back clipped every pixel
    ("sdk_colorchart_ljpeg.dng", "swap_type", 635514800, "corrupt"),
    # RowInterleaveFactor of another type: error 5001 (a request's fault) instead of the file's
    ("sdk_colorchart_jxl.dng", "swap_type", 221261515, "unsupported_layout"),
]


def test_seeded_mutants_of_the_real_files_keep_their_outcomes(tmp_path):
    files = []
    for k, (name, kind, seed, _) in enumerate(SEEDED):
        path = tmp_path / f"{k}-{name}"
        path.write_bytes(mutate((ROOT / "tests" / "data" / name).read_bytes(), kind, seed))
        files.append(path)
    run = run_cases(files, tmp_path / "work")
    assert_clean(summarise(run))
    got = [r["correct"]["error"] if not r["correct"]["ok"] else "ok" for r in run["results"]]
    assert got == [want for *_, want in SEEDED]


def test_huge_declared_dimensions_are_refused_under_1_gb_of_memory(tmp_path):
    files = [REGRESSIONS / n for n, want in EXPECTED.items() if want in ("too_large", "truncated")]
    run = run_cases(files, tmp_path / "work")
    assert_clean(summarise(run))
    peak_mb = run["peak_rss_kb"] / 1024
    print(f"peak resident memory of the child (the interpreter and numpy included): {peak_mb:.0f} MB")
    assert peak_mb < 1024


def test_a_seeded_corpus_of_mutants_never_crashes_hangs_or_misleads(tmp_path):
    cases = write_corpus(tmp_path / "corpus", N_MUTANTS, seed=2024)
    cases += write_corpus(tmp_path / "real", N_REAL_MUTANTS, seed=2024, extra_sources=real_sources(), simulated=False)
    summary = summarise(run_cases([p for p, _ in cases], tmp_path / "work"))
    print(summary["outcomes"])
    assert summary["files"] == N_MUTANTS + N_REAL_MUTANTS
    assert_clean(summary)
    assert summary["successes"] > 0 and summary["successes"] < N_MUTANTS  # both paths were exercised


@pytest.mark.parametrize("kind", ["huge_dims", "software_span"])
def test_each_famous_mutation_is_made_from_the_projects_own_files(tmp_path, kind):
    """The mutator recreates the issue's files from a simulated layout at any seed."""
    from hotpixels.dng.tiff import TAG_IMAGE_LENGTH, TAG_IMAGE_WIDTH, TAG_SOFTWARE, TiffFile

    src = simulated_sources(tmp_path / "src", seed=0)[2]  # raw image in a SubIFD
    before = TiffFile(src.read_bytes())
    after = TiffFile(mutate(src.read_bytes(), kind, 11))
    if kind == "huge_dims":
        raw0, raw1 = before.ifds[0].subifds[0], after.ifds[0].subifds[0]
        dims = lambda tf, ifd: (tf.get1(ifd, TAG_IMAGE_WIDTH), tf.get1(ifd, TAG_IMAGE_LENGTH))  # noqa: E731
        assert dims(after, raw1) != dims(before, raw0)
    else:
        e = after.ifd0.entries[TAG_SOFTWARE]
        sub = before.ifds[0].subifds[0]
        assert e.value_pos <= sub.offset < e.value_pos + e.nbytes, "its declared span covers the raw SubIFD"
