"""``hotpixels correct`` end to end on simulated DNG files: real reader, real profile library,
real writer, the CLI. Small frames; stage 3 is left out where it is not the subject."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import imagecodecs
import numpy as np
import pytest

from hotpixels.cli import main
from hotpixels.correct.engine import correct_files
from hotpixels.correct.pipeline import CorrectOptions, correct_file
from hotpixels.dng.reader import read_dng
from hotpixels.errors import AlreadyCorrected, Cancelled, ProfileIncompatible
from hotpixels.profiles.build import create_profile
from hotpixels.simulate import make_sensor, simulate_session

STAGES_1_2 = ("dark", "hot")


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def _session(root, preset, seed, layout, n_lights=2, temp_light_c=26.0):
    sensor = make_sensor(preset, seed=seed)
    darks = simulate_session(preset, seed, n_darks=5, n_lights=0, sensor=sensor, exposure_s=60)
    lights = simulate_session(preset, seed, n_darks=0, n_lights=n_lights, sensor=sensor, exposure_s=60,
                              temp_light_c=temp_light_c, scene="stars")
    d = darks.write(root / "darks_src")
    w = lights.write(root / "lights_src", layout=layout)
    return d["darks"], w["lights"], lights


@pytest.fixture(scope="module")
def rggb(tmp_path_factory):
    root = tmp_path_factory.mktemp("rggb")
    darks, lights, session = _session(root, "small", 5, "ljpeg-tiles")
    create_profile(darks, "SimCam body 5", root / "library")
    return {"root": root, "lights": lights, "library": root / "library", "session": session}


def _fresh_copy(src, folder):
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / src.split("/")[-1]
    shutil.copyfile(src, dst)
    return str(dst)


def test_correct_writes_a_new_dng_with_report_sites_and_previews_and_leaves_the_source_untouched(rggb, tmp_path):
    src = _fresh_copy(rggb["lights"][0], tmp_path)
    before = _md5(src)

    result = correct_file(src, CorrectOptions(library_dir=str(rggb["library"]), stages=STAGES_1_2))

    assert _md5(src) == before
    assert result["ok"] and result["output"] == str(tmp_path / "light_0001_hotpixels.dng")
    assert result["profile"]["name"] == "SimCam body 5" and result["profile"]["how"] == "auto"
    dark = result["stages"]["dark"]
    assert dark["method"] == "fit" and dark["scale"] > 1.3  # 6 °C warmer than the darks
    out = read_dng(result["output"])
    assert out.metadata.corrected_by_hotpixels
    src_raw = read_dng(src)
    changed = np.argwhere(out.cfa_dn != src_raw.cfa_dn)
    assert len(changed) > 0

    report = json.loads(open(result["report_path"]).read())
    assert report["stages"]["dark"]["scale"] == pytest.approx(dark["scale"])
    assert report["profile"]["reason"]
    lines = open(result["sites_file"]).read().splitlines()
    assert lines[0] == "stage,y,x,old_dn,new_dn,reason"
    rows = [line.split(",") for line in lines[1:]]
    hot_rows = [r for r in rows if r[0] == "hot"]
    assert len(hot_rows) == result["counts"]["hot"] > 0
    for stage, y, x, old, new, _ in rows[:200]:
        if stage == "hot":
            assert out.cfa_dn[int(y), int(x)] == int(float(new))
    assert result["previews"]["regions"]
    png = imagecodecs.png_decode(open(result["previews"]["after"], "rb").read())
    assert png.shape == (192, 192, 3)  # 48 raw sites enlarged 4x


def test_an_existing_output_is_never_overwritten_the_new_one_is_numbered(rggb, tmp_path):
    src = _fresh_copy(rggb["lights"][1], tmp_path)
    taken = tmp_path / "light_0002_hotpixels.dng"
    taken.write_bytes(b"someone else's file")

    result = correct_file(src, CorrectOptions(library_dir=str(rggb["library"]), stages=STAGES_1_2, previews=False))

    assert result["output"] == str(tmp_path / "light_0002_hotpixels_2.dng")
    assert taken.read_bytes() == b"someone else's file"


def test_a_corrected_file_is_refused_unless_forced(rggb, tmp_path):
    src = _fresh_copy(rggb["lights"][0], tmp_path)
    first = correct_file(src, CorrectOptions(library_dir=str(rggb["library"]), stages=STAGES_1_2, previews=False))

    with pytest.raises(AlreadyCorrected) as err:
        correct_file(first["output"], CorrectOptions(library_dir=str(rggb["library"]), stages=STAGES_1_2))
    assert "already corrected" in err.value.message

    again = correct_file(first["output"], CorrectOptions(library_dir=str(rggb["library"]), stages=STAGES_1_2,
                                                         previews=False, force=True))
    assert again["ok"]


def test_one_bad_file_in_a_batch_does_not_stop_the_others(rggb, tmp_path):
    good = [_fresh_copy(p, tmp_path) for p in rggb["lights"]]
    truncated = tmp_path / "truncated.dng"
    truncated.write_bytes(open(good[0], "rb").read()[:5000])
    paths = [good[0], str(truncated), str(tmp_path / "missing.dng"), good[1]]
    seen = []

    results = correct_files(paths, CorrectOptions(library_dir=str(rggb["library"]), stages=STAGES_1_2, previews=False),
                            progress=lambda done, total, msg: seen.append((done, total)))

    assert [r["ok"] for r in results] == [True, False, False, True]
    assert results[1]["error"]["code"] in (1006, 1007, 1003)
    assert results[2]["error"]["code"] == 1001
    assert seen[-1] == (4000, 4000)  # thousandths of the request, as the worker counts
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_named_profile_from_another_body_is_refused_with_a_clear_error(rggb, tmp_path):
    other_darks, _, _ = _session(tmp_path, "small", 6, "strip", n_lights=0)
    create_profile(other_darks, "another body", rggb["library"]) if not (rggb["library"] / "another body.hpprofile").exists() else None
    src = _fresh_copy(rggb["lights"][0], tmp_path / "in")

    with pytest.raises(ProfileIncompatible) as err:
        correct_file(src, CorrectOptions(profile="another body", library_dir=str(rggb["library"]), stages=STAGES_1_2))
    assert "another camera body" in err.value.message and "serial" in err.value.message
    assert not list((tmp_path / "in").glob("*_hotpixels*"))


def test_without_a_matching_profile_stages_1_and_2_are_skipped_with_the_reason(rggb, tmp_path):
    src = _fresh_copy(rggb["lights"][0], tmp_path)

    result = correct_file(src, CorrectOptions(library_dir=str(tmp_path / "empty-library"), previews=False))

    assert result["profile"]["name"] is None
    for stage in ("dark", "hot"):
        assert not result["stages"][stage]["ran"]
        assert "library is empty" in result["stages"][stage]["reason"]
    assert "ran" in result["stages"]["residual"]  # stage 3 ran or said why not


def test_without_a_matching_profile_and_without_stage_3_nothing_can_be_done_error_2006(rggb, tmp_path):
    from hotpixels.errors import NoMatchingProfile

    src = _fresh_copy(rggb["lights"][0], tmp_path)
    with pytest.raises(NoMatchingProfile) as err:
        correct_file(src, CorrectOptions(library_dir=str(tmp_path / "empty-library"), stages=STAGES_1_2,
                                         previews=False, output_dir=str(tmp_path / "out")))
    assert err.value.code == 2006 and "library is empty" in err.value.message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())  # no file written


def test_cli_json_prints_only_json_and_reports_failures_in_it(rggb, tmp_path, capsys):
    src = _fresh_copy(rggb["lights"][0], tmp_path)

    code = main(["correct", src, str(tmp_path / "missing.dng"), "--library", str(rggb["library"]),
                 "--stages", "dark,hot", "--output-dir", str(tmp_path / "out"), "--suffix=-fixed", "--json"])

    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert code == 2
    assert results[0]["ok"] and results[0]["output"].endswith("out/light_0001-fixed.dng")
    assert results[1]["error"]["name"] == "file_not_found"


def test_cli_refuses_a_bad_stage_name(rggb, tmp_path, capsys):
    code = main(["correct", rggb["lights"][0], "--stages", "dark,sky", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and out["error"]["name"] == "invalid_option"


def test_cancel_before_the_batch_leaves_no_files(rggb, tmp_path):
    src = _fresh_copy(rggb["lights"][0], tmp_path)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        correct_files([src], CorrectOptions(library_dir=str(rggb["library"]), stages=STAGES_1_2), cancel=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["light_0001.dng"]


def test_xtrans_dng_with_odd_active_area_is_corrected_on_disk(tmp_path):
    darks, lights, session = _session(tmp_path, "small-xtrans", 7, "strip", n_lights=1)
    create_profile(darks, "xtrans", tmp_path / "library")
    assert session.sensor.active_area[:2] == (1, 3)

    result = correct_file(lights[0], CorrectOptions(library_dir=str(tmp_path / "library"), stages=STAGES_1_2,
                                                    previews=True))

    out = read_dng(result["output"]).cfa_dn
    truth = session.truth
    yx = truth["hot_yx"]
    t, l, b, r = session.sensor.active_area
    inside = (yx[:, 0] >= t) & (yx[:, 0] < b) & (yx[:, 1] >= l) & (yx[:, 1] < r)
    strong = inside & (truth["hot_light_dn"][0] > 500) & ~truth["hot_saturated_light"][0]
    noiseless = truth["expected_light_dn"][0][yx[strong, 0], yx[strong, 1]]
    before = session.lights[0].cfa_dn[yx[strong, 0], yx[strong, 1]]
    after = out[yx[strong, 0], yx[strong, 1]]
    assert np.median(np.abs(after - noiseless)) < 0.1 * np.median(np.abs(before - noiseless))
    assert result["previews"]["regions"]


def test_a_write_that_fails_leaves_no_output_and_no_previews(rggb, tmp_path):
    src = _fresh_copy(rggb["lights"][0], tmp_path)

    def source_changes_before_writing(done, total, message):
        if message.startswith("writing"):
            with open(src, "ab") as f:  # someone touches the source between read and write
                f.write(b"\0")

    with pytest.raises(Exception) as err:
        correct_file(src, CorrectOptions(library_dir=str(rggb["library"]), stages=STAGES_1_2),
                     progress=source_changes_before_writing)
    assert "changed since it was read" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["light_0001.dng"]


def test_cli_refuses_a_corrected_file_without_force_and_corrects_it_with_force(rggb, tmp_path, capsys):
    src = _fresh_copy(rggb["lights"][1], tmp_path)
    common = ["--library", str(rggb["library"]), "--stages", "dark,hot", "--no-previews", "--json"]
    assert main(["correct", src, *common]) == 0
    corrected = json.loads(capsys.readouterr().out)[0]["output"]

    assert main(["correct", corrected, *common]) == 2
    refused = json.loads(capsys.readouterr().out)[0]
    assert refused["error"]["name"] == "already_corrected" and "--force" in refused["error"]["message"]

    assert main(["correct", corrected, *common, "--force"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["ok"]


def test_report_dir_keeps_the_photo_folder_to_the_corrected_dng_alone(tmp_path):
    """Lightroom users want only photos beside their photos: reports and previews go elsewhere."""
    from hotpixels.correct.pipeline import CorrectOptions, correct_file
    from hotpixels.simulate import simulate_session

    photos = tmp_path / "photos"
    s = simulate_session("small", seed=41, n_darks=2, n_lights=1, scene="stars")
    light = s.write(photos, layout="strip")["lights"][0]
    reports = tmp_path / "reports"
    result = correct_file(light, CorrectOptions(profile=None, stages=("residual",), report_dir=str(reports)))
    beside = sorted(p.name for p in (photos / "lights").iterdir())
    assert beside == sorted([Path(light).name, Path(result["output"]).name])
    assert Path(result["report_path"]).parent == reports and Path(result["report_path"]).is_file()
    assert all(Path(p["before"]).parent == reports for p in result["previews"]["regions"])


def _sites_csv_slowly(parts) -> str:
    """The sites file written row by row, as a person would: the reference for the fast writer."""
    lines = ["stage,y,x,old_dn,new_dn,reason"]
    for stage, yx, old, new, reasons in parts:
        for (y, x), o, n, r in zip(yx.tolist(), np.rint(old).tolist(), np.rint(new).tolist(), reasons):
            lines.append(f"{stage},{y},{x},{int(o)},{int(n)},{r}")
    return "\n".join(lines) + "\n"


def test_the_sites_file_equals_one_written_row_by_row():
    """Zeros, numbers past 65535, mixed reasons, an empty stage and a stage with negative values
    (the slow path) all come out as a plain row-by-row writer would put them."""
    from hotpixels.correct.report import SiteChanges

    rng = np.random.default_rng(4)
    changes = SiteChanges()
    n = 5000
    yx = np.c_[rng.integers(0, 70000, n), rng.integers(0, 10, n)]
    yx[:3] = 0
    old = rng.uniform(0, 70000, n)
    old[5] = 0.4
    changes.add("dark", yx, old, old - 1.6, "moved_over_1_sigma")
    reasons = rng.choice(["hot", "saturated", "rts"], n).tolist()
    changes.add("hot", yx[::-1], old, old / 2, reasons)
    changes.add("residual", np.zeros((0, 2)), np.zeros(0), np.zeros(0), "residual")
    changes.add("batch", np.array([[1, 2]]), np.array([-3.0]), np.array([7.0]), "batch")
    parts = [("dark", yx, old, old - 1.6, ["moved_over_1_sigma"] * n), ("hot", yx[::-1], old, old / 2, reasons),
             ("batch", np.array([[1, 2]]), np.array([-3.0]), np.array([7.0]), ["batch"])]
    assert changes.to_csv() == _sites_csv_slowly(parts)
