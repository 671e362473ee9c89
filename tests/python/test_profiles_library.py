"""Profile files and the profile library: format, atomic writes, damage, listing, management."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hotpixels.errors import (
    CorrectedFileAsDark, DarkFramesMismatch, DestinationUnwritable, InvalidProfileName, ProfileCorrupt, ProfileExists, ProfileNotFound,
    ProfileTooNew,
)
from hotpixels.profiles import library as library_mod
from hotpixels.profiles import profile_file
from hotpixels.profiles.build import create_profile
from hotpixels import userdirs
from hotpixels.profiles.library import ProfileLibrary, default_library_dir
from hotpixels.profiles.profile_file import load_profile, read_meta, save_profile
from hotpixels.simulate.session import simulate_session


@pytest.fixture(scope="module")
def darks():
    return simulate_session("small", seed=21, n_darks=6, n_lights=0).darks


@pytest.fixture
def lib(tmp_path, darks):
    lib = ProfileLibrary(tmp_path / "lib")
    create_profile(darks, "Night ISO1600 30s", lib)
    return lib


def test_profile_round_trips_with_its_model_frames_and_pictures(lib, darks):
    summary = lib.summary("Night ISO1600 30s")
    assert summary["n_frames"] == 6 and summary["camera"]["model"] == "SimCam Mk1"
    assert [f["iso"] for f in summary["frames"]] == [1600.0] * 6
    assert set(summary["pictures"]) == {"hot_per_frame", "temperature_per_frame", "hot_map", "excess_histogram"}
    for p in summary["pictures"].values():
        assert os.path.isabs(p) and open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    prof = lib.get("Night ISO1600 30s")
    assert prof.model.n_hot == summary["stats"]["n_hot"] > 300
    assert prof.model.hot_yx.dtype == np.int32 and prof.master_dn is None


def test_keep_master_stores_the_master_dark_compressed(tmp_path, darks):
    lib = ProfileLibrary(tmp_path)
    out = create_profile(darks, "with master", lib, keep_master=True)
    prof = lib.get("with master")
    assert prof.master_dn.shape == prof.model.raw_shape and out["has_master"]
    ys, xs = prof.model.hot_yx[:, 0], prof.model.hot_yx[:, 1]
    np.testing.assert_allclose(prof.model.field_at(ys, xs) + prof.model.hot_excess_dn, prof.master_dn[ys, xs],
                               rtol=2e-3, atol=0.05)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, lib, monkeypatch):
    path = lib.path_of("Night ISO1600 30s")
    before = path.read_bytes()
    prof = load_profile(path)

    def explode(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(profile_file.np, "savez_compressed", explode)
    with pytest.raises(DestinationUnwritable, match="disk full"):  # a named error (1011), not a bare OSError
        save_profile(path, prof)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_truncated_profile_is_corrupt_and_listing_still_shows_the_others(lib, darks):
    create_profile(darks, "second", lib)
    path = lib.path_of("second")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProfileCorrupt, match="damaged"):
        load_profile(path)
    listing = lib.list()
    assert [p["name"] for p in listing["profiles"]] == ["Night ISO1600 30s"]
    assert listing["errors"][0]["file"] == path.name and listing["errors"][0]["code"] == ProfileCorrupt.CODE


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, b"PK\x03\x04" + b"\0" * 64])
def test_garbage_file_is_a_corrupt_profile(tmp_path, content):
    path = tmp_path / "x.hpprofile"
    path.write_bytes(content)
    with pytest.raises(ProfileCorrupt) as err:
        load_profile(path)
    assert "x.hpprofile" in err.value.message


def _rewrite_meta(path, change):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    change(meta, arrays)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def test_newer_format_version_says_update_hotpixels(lib):
    path = lib.path_of("Night ISO1600 30s")
    _rewrite_meta(path, lambda m, a: m.update(version=profile_file.VERSION + 1))
    with pytest.raises(ProfileTooNew, match="newer HotPixels"):
        load_profile(path)
    assert lib.list()["errors"][0]["code"] == ProfileTooNew.CODE


def test_inconsistent_arrays_are_corrupt_not_a_crash(lib):
    path = lib.path_of("Night ISO1600 30s")
    _rewrite_meta(path, lambda m, a: a.update(hot_flags=a["hot_flags"][:-1]))
    with pytest.raises(ProfileCorrupt, match="inconsistent"):
        load_profile(path)


def test_no_pickle_an_object_array_is_refused(tmp_path, lib):
    path = lib.path_of("Night ISO1600 30s")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["field_dn"] = np.array([{"evil": 1}], dtype=object)
    bad = tmp_path / "evil.hpprofile"
    with open(bad, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ProfileCorrupt):
        load_profile(bad)


def test_listing_uses_the_index_and_reads_only_changed_files(lib, darks, monkeypatch):
    create_profile(darks, "other", lib)
    lib.list()
    calls = []
    real = library_mod.read_meta
    monkeypatch.setattr(library_mod, "read_meta", lambda p: calls.append(p) or real(p))
    assert len(lib.list()["profiles"]) == 2
    assert calls == []
    path = lib.path_of("other")
    os.utime(path, ns=(1, 1))
    lib.list()
    assert calls == [str(path)]


def test_rename_delete_import_export(tmp_path, lib):
    lib.rename("Night ISO1600 30s", "R5 night")
    assert [p["name"] for p in lib.list()["profiles"]] == ["R5 night"]
    exported = lib.export("R5 night", tmp_path)
    assert read_meta(exported["path"])["name"] == "R5 night"
    with pytest.raises(ProfileExists):
        lib.import_file(exported["path"])
    lib.import_file(exported["path"], name="copy of R5")
    assert {p["name"] for p in lib.list()["profiles"]} == {"copy of R5", "R5 night"}
    lib.delete("R5 night")
    with pytest.raises(ProfileNotFound):
        lib.get("R5 night")
    assert not any(p.name.startswith("R5 night") for p in lib.dir.iterdir())


@pytest.mark.parametrize("bad", ["", "   ", "a/b", "back\\slash", "tab\there", "x" * 121, ".."])
def test_bad_profile_names_are_refused_before_any_work(tmp_path, darks, bad):
    with pytest.raises(InvalidProfileName):
        create_profile(darks, bad, ProfileLibrary(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_names_differing_in_case_or_punctuation_get_separate_files(tmp_path, darks):
    lib = ProfileLibrary(tmp_path)
    create_profile(darks, "a:b", lib)
    create_profile(darks, "a_b", lib)
    with pytest.raises(ProfileExists):
        create_profile(darks, "A:B", lib)
    assert len(list(tmp_path.glob("*.hpprofile"))) == 2


def test_default_library_follows_env_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("HOTPIXELS_LIBRARY", str(tmp_path / "env"))
    assert default_library_dir() == tmp_path / "env"
    monkeypatch.delenv("HOTPIXELS_LIBRARY")
    monkeypatch.setattr(userdirs.sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_library_dir() == tmp_path / "xdg" / "HotPixels" / "profiles"
    monkeypatch.delenv("HOTPIXELS_REPORTS", raising=False)
    assert userdirs.default_report_dir() == tmp_path / "xdg" / "HotPixels" / "reports"


def test_cancel_before_saving_leaves_nothing(tmp_path, darks):
    import threading

    from hotpixels.errors import Cancelled

    cancel = threading.Event()

    def progress(done, total, message):
        if done == 3:
            cancel.set()

    with pytest.raises(Cancelled):
        create_profile(darks, "cancelled", ProfileLibrary(tmp_path / "lib"), progress=progress, cancel=cancel)
    assert not (tmp_path / "lib").exists() or list((tmp_path / "lib").iterdir()) == []


def test_darks_that_disagree_are_reported_by_file_and_field(tmp_path, darks):
    odd = simulate_session("small", seed=21, n_darks=6, n_lights=0, iso=3200, exposure_s=20, temp_dark_c=28).darks
    other_body = simulate_session("small", seed=22, n_darks=1, n_lights=0).darks
    frames = list(darks[:4]) + [odd[0], other_body[0]]
    with pytest.raises(DarkFramesMismatch) as err:
        create_profile(frames, "mixed", ProfileLibrary(tmp_path))
    found = {(m["file"], m["field"]) for m in err.value.data["mismatches"]}
    assert {("frame 5", "iso"), ("frame 5", "exposure_s"), ("frame 5", "temperature_c"),
            ("frame 6", "serial")} <= found
    assert not any(f.startswith("frame 1") or f.startswith("frame 2") for f, _ in found)
    assert "frame 5" in err.value.message and list(tmp_path.iterdir()) == []


def test_allow_mismatch_builds_and_records_the_mismatches(tmp_path, darks):
    odd = simulate_session("small", seed=21, n_darks=1, n_lights=0, exposure_s=25).darks
    lib = ProfileLibrary(tmp_path)
    out = create_profile(list(darks) + odd, "mixed", lib, allow_mismatch=True)
    assert [(m["file"], m["field"]) for m in out["mismatches"]] == [("frame 7", "exposure_s")]
    assert lib.summary("mixed")["mismatches"][0]["value"] == 25


def test_different_raw_sizes_stop_the_build_even_when_allowed(tmp_path, darks):
    from hotpixels.simulate.sensor import make_sensor

    wide = simulate_session(sensor=make_sensor("small", 21, width=640), n_darks=1, n_lights=0).darks
    with pytest.raises(DarkFramesMismatch, match="cannot be stacked"):
        create_profile(list(darks) + wide, "sizes", ProfileLibrary(tmp_path), allow_mismatch=True)


def test_a_dark_already_corrected_by_hotpixels_is_refused(tmp_path, darks):
    import dataclasses

    marked = dataclasses.replace(darks[2], metadata=dataclasses.replace(darks[2].metadata, corrected_by_hotpixels=True))
    with pytest.raises(CorrectedFileAsDark, match="frame 3"):
        create_profile([darks[0], darks[1], marked], "x", ProfileLibrary(tmp_path))


def test_pictures_are_pngs_of_the_profile(lib):
    import imagecodecs

    from hotpixels.profiles.darkmodel import FLAG_UNSTABLE

    summary = lib.summary("Night ISO1600 30s")
    prof = lib.get("Night ISO1600 30s")
    bars = imagecodecs.png_decode(open(summary["pictures"]["hot_per_frame"], "rb").read())
    assert bars.shape == (270, 540, 3)  # 2 x 2 of them fit a 1366-px-wide screen
    bar_columns = np.unique(np.nonzero((bars == (52, 101, 164)).all(axis=-1))[1])
    assert len(bar_columns) > 6 * 10  # six frames, one bar each
    hot_map = imagecodecs.png_decode(open(summary["pictures"]["hot_map"], "rb").read())
    h, w = prof.model.raw_shape
    assert hot_map.shape == (270, 540, 3)
    scale = max(1, -(-w // (540 - 16)), -(-h // (270 - 40 - 22)))  # the frame fits between title and legend
    mw = -(-w // scale)
    top, left = 40, (540 - mw) // 2
    unstable = prof.model.hot_yx[prof.model.flagged(FLAG_UNSTABLE)] // scale + np.array([top, left])
    colours = {tuple(hot_map[y, x]) for y, x in unstable}
    assert colours <= {(255, 150, 0), (255, 40, 40)} and (255, 150, 0) in colours  # orange (red: saturated too)


def test_a_clean_sensor_gives_an_empty_table_that_still_saves_lists_and_draws(tmp_path):
    from hotpixels.dng.cfa import CfaPattern
    from hotpixels.dng.rawimage import CameraMetadata, RawImage

    rng = np.random.default_rng(4)
    meta = CameraMetadata(make="Test", model="Clean", serial="0001", iso=800, exposure_s=10)
    darks = [RawImage(cfa_dn=rng.normal(1000, 3, (64, 96)).astype(np.uint16), cfa=CfaPattern.bayer("BGGR"),
                      active_area=(0, 0, 64, 96), white_level_dn=16383, metadata=meta) for _ in range(5)]
    lib = ProfileLibrary(tmp_path)
    out = create_profile(darks, "clean", lib)
    assert out["stats"]["n_hot"] <= 1 and out["mismatches"] == []
    prof = lib.get("clean")
    assert prof.model.field_dn.shape == (4, 4, 6)
    np.testing.assert_allclose(prof.model.field_dn, 999.5, atol=1.0)  # black level 0: 1000 DN of "dark" (truncated)
    assert len(out["pictures"]) == 4 and lib.list()["profiles"][0]["name"] == "clean"
