"""The batch engine (``hotpixels.correct.engine``) as the CLI and the worker use it: each photo's
result comes out as soon as it is written, one photo can be cancelled while the others go on, and the
CLI and the worker give the same result and error shapes. Small simulated frames, stages 1–2."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from hotpixels.cli import main
from hotpixels.correct.engine import correct_files, correct_stream
from hotpixels.correct.pipeline import CorrectOptions
from hotpixels.errors import Cancelled
from hotpixels.profiles.build import create_profile
from hotpixels.simulate import make_sensor, simulate_session

STAGES_1_2 = ("dark", "hot")


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """Five lights of one body and a profile for it."""
    root = tmp_path_factory.mktemp("engine")
    sensor = make_sensor("small", seed=21)
    darks = simulate_session("small", 21, n_darks=4, n_lights=0, sensor=sensor).write(root / "darks")["darks"]
    lights = simulate_session("small", 21, n_darks=0, n_lights=5, sensor=sensor, scene="stars").write(
        root / "lights", layout="ljpeg-tiles")["lights"]
    create_profile(darks, "Engine body", root / "library")
    return {"lights": lights, "library": str(root / "library")}


def _options(night, out: Path, **kw) -> CorrectOptions:
    return CorrectOptions(library_dir=night["library"], stages=STAGES_1_2, output_dir=str(out), previews=False, **kw)


def test_each_photo_is_handed_over_as_soon_as_it_is_written_while_the_rest_are_still_to_come(night, tmp_path):
    n = len(night["lights"])
    progress: list[int] = []
    first_seen = threading.Event()

    def on_progress(done: int, total: int, message: str) -> None:
        progress.append(done)
        if done >= 1000 * (n - 1) + 333:  # the last photo may not be corrected before we saw the first
            first_seen.wait(60)

    stream = correct_stream(night["lights"], _options(night, tmp_path), progress=on_progress)
    index, first = next(stream)
    seen_then = max(progress)
    first_seen.set()

    assert index == 0 and first["ok"] and Path(first["output"]).is_file()
    assert seen_then < 1000 * n, "the later photos were not finished yet"
    rest = list(stream)
    assert [i for i, _ in rest] == list(range(1, n))
    assert all(r["ok"] for _, r in rest)
    assert progress == sorted(progress) and progress[-1] == 1000 * n


def test_progress_reaches_a_thousand_per_image_only_when_that_image_is_final(night, tmp_path):
    def written() -> int:
        return sum(1 for p in tmp_path.iterdir() if p.suffix == ".dng" and not p.name.startswith("."))

    seen: list[tuple[int, int]] = []  # (done, corrected DNGs on disk when it was reported)
    list(correct_stream(night["lights"], _options(night, tmp_path),
                        progress=lambda done, total, message: seen.append((done, written()))))

    # photo i+1 is computed while photo i is written: its steps must not count as a finished photo
    assert all(done // 1000 <= on_disk for done, on_disk in seen), seen
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_one_photo_cancelled_by_path_is_reported_cancelled_and_the_others_are_corrected(night, tmp_path):
    skip = night["lights"][2]

    results = correct_files(night["lights"], _options(night, tmp_path), image_cancelled=lambda path: path == skip)

    assert [r["ok"] for r in results] == [True, True, False, True, True]
    assert results[2]["path"] == skip
    assert results[2]["error"]["code"] == -32800 and results[2]["error"]["name"] == "cancelled"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".dng") == [
        "light_0001_hotpixels.dng", "light_0002_hotpixels.dng", "light_0004_hotpixels.dng", "light_0005_hotpixels.dng"]


def test_cancelling_the_whole_batch_keeps_the_photos_already_handed_over_and_leaves_nothing_partial(night, tmp_path):
    cancel = threading.Event()
    handed: list[dict] = []

    with pytest.raises(Cancelled):
        for _, result in correct_stream(night["lights"], _options(night, tmp_path), cancel=cancel):
            handed.append(result)
            cancel.set()

    assert len(handed) >= 1 and all(r["ok"] for r in handed)
    kept = {Path(r["output"]).name for r in handed}
    assert {p.name for p in tmp_path.iterdir()} - {n for k in kept for n in (k, Path(k).stem + ".hotpixels.json",
                                                                          Path(k).stem + ".sites.csv")} == set()


def test_the_cli_prints_the_same_result_and_error_shapes_as_the_engine_gives_the_worker(night, tmp_path, capsys):
    missing = str(tmp_path / "missing.dng")
    code = main(["correct", night["lights"][0], missing, "--library", night["library"], "--stages", "dark,hot",
                 "--output-dir", str(tmp_path / "cli"), "--no-previews", "--json"])
    cli = json.loads(capsys.readouterr().out)
    engine = correct_files([night["lights"][0], missing], _options(night, tmp_path / "engine"), param="paths")

    assert code == 2
    assert set(cli[0]) == set(engine[0])
    assert {"output", "report_path", "sites_file", "profile", "counts", "scale", "previews"} <= set(cli[0])
    assert cli[1]["error"] == {"code": 1001, "name": "file_not_found", "message": f"file not found: {missing}",
                               "path": missing}
    assert engine[1]["error"] == {**cli[1]["error"], "param": "paths"}
