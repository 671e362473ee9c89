"""Auto-match: the right profile among several, explained; or the reason there is none."""

from __future__ import annotations

import dataclasses

import pytest

from hotpixels.profiles import library as library_mod
from hotpixels.profiles.build import create_profile
from hotpixels.profiles.library import ProfileLibrary
from hotpixels.profiles.match import match_profiles
from hotpixels.simulate.sensor import make_sensor
from hotpixels.simulate.session import simulate_session

BODY, OTHER_BODY = 30, 31
PROFILES = {
    "iso1600 30s 20C": dict(seed=BODY, iso=1600, exposure_s=30, temp_dark_c=20),
    "iso3200 30s 20C": dict(seed=BODY, iso=3200, exposure_s=30, temp_dark_c=20),
    "iso1600 60s 20C": dict(seed=BODY, iso=1600, exposure_s=60, temp_dark_c=20),
    "iso1600 30s 32C": dict(seed=BODY, iso=1600, exposure_s=30, temp_dark_c=32),
    "other body": dict(seed=OTHER_BODY, iso=1600, exposure_s=30, temp_dark_c=20),
}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = ProfileLibrary(tmp_path_factory.mktemp("lib"))
    for name, kw in PROFILES.items():
        darks = simulate_session("small", n_darks=3, n_lights=0, **kw).darks
        create_profile(darks, name, lib)
    return lib


def light(**kw):
    kw.setdefault("seed", BODY)
    return simulate_session("small", n_darks=0, n_lights=1, residual=False, clean=False, **kw).lights[0]


@pytest.mark.parametrize("image, best", [
    (dict(iso=1600, exposure_s=30, temp_light_c=21), "iso1600 30s 20C"),
    (dict(iso=3200, exposure_s=30, temp_light_c=21), "iso3200 30s 20C"),
    (dict(iso=1600, exposure_s=55, temp_light_c=20), "iso1600 60s 20C"),
    (dict(iso=1600, exposure_s=30, temp_light_c=31), "iso1600 30s 32C"),
])
def test_match_picks_the_profile_closest_in_iso_exposure_and_temperature(lib, image, best):
    result = match_profiles(light(**image), lib)
    assert result["best"] == best and result["reason"] is None
    names = [c["name"] for c in result["candidates"]]
    assert "other body" not in names and len(names) == 4
    assert [c["score"] for c in result["candidates"]] == sorted(c["score"] for c in result["candidates"])


def test_each_candidate_is_explained_in_one_sentence(lib):
    result = match_profiles(light(iso=1600, exposure_s=25, temp_light_c=21), lib)
    serial = make_sensor("small", BODY).serial
    top = result["candidates"][0]
    assert top["name"] == "iso1600 30s 20C"
    assert top["explanation"].startswith(f"same body (serial …{serial[-4:]}), ISO 1600 = 1600, 25 s vs 30 s (-0.26 EV, scaled)")
    assert "°C vs" in top["explanation"] and "\n" not in top["explanation"]


def test_image_without_serial_matches_by_model_and_says_so(lib):
    raw = light(iso=1600, exposure_s=30, temp_light_c=21)
    raw = dataclasses.replace(raw, metadata=dataclasses.replace(raw.metadata, serial=None))
    result = match_profiles(raw, lib)
    assert len(result["candidates"]) == 5  # the other body too: without a serial it cannot be ruled out
    assert "serial not recorded" in result["candidates"][0]["explanation"]


def test_no_candidate_gives_the_reason(lib):
    stranger = light(seed=99, iso=1600, exposure_s=30, temp_light_c=20)
    result = match_profiles(stranger, lib)
    assert result["best"] is None and result["candidates"] == []
    assert result["reason"].startswith(f"no profile for HotPixels SimCam Mk1 serial …{stranger.metadata.serial[-4:]}")
    assert "5 profiles are for other bodies" in result["reason"]


def test_same_body_with_another_raw_size_is_not_a_candidate(lib):
    cropped = simulate_session(sensor=make_sensor("small", BODY, width=640), n_darks=0, n_lights=1,
                               residual=False, clean=False).lights[0]
    result = match_profiles(cropped, lib)
    assert result["best"] is None and "4 have a different raw size" in result["reason"]


def test_match_reads_only_the_index(lib, monkeypatch):
    lib.list()

    def no_pixels(*a, **k):
        raise AssertionError("match must not open profile files")

    monkeypatch.setattr(library_mod, "read_meta", no_pixels)
    monkeypatch.setattr(library_mod, "load_profile", no_pixels)
    assert match_profiles(light(iso=1600, exposure_s=30, temp_light_c=21), lib)["best"] == "iso1600 30s 20C"
