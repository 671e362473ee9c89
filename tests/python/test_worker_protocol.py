"""The protocol suite: every method and the errors a photographer can meet, against the real
``hotpixels-worker`` process (from source, and frozen when ``./run.sh build`` has made it).

Simulated sessions (``hotpixels.simulate``) supply small DNGs: dark frames and lights of one body,
and darks of a second body for the mismatch cases. Each test waits for responses or notifications;
none sleeps and hopes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from hotpixels.rpc.client import WorkerClient
from test_worker_process import WORKERS, existing_worker, worker_env

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """Two bodies: ``a`` (4 darks, 3 lights) and ``b`` (2 darks at another ISO)."""
    from hotpixels.simulate.session import simulate_session

    root = tmp_path_factory.mktemp("sessions")
    a = simulate_session("small", seed=11, n_darks=4, n_lights=3, batch="tripod").write(root / "a")
    b = simulate_session("small", seed=12, n_darks=2, n_lights=1, iso=400).write(root / "b")
    return {"a": a, "b": b, "root": root}


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A 1200 x 1800 body whose correction takes seconds (one long computing step)."""
    from hotpixels.simulate.sensor import make_sensor
    from hotpixels.simulate.session import simulate_session

    root = tmp_path_factory.mktemp("big")
    sensor = make_sensor("small", seed=5, height=1200, width=1800)
    return simulate_session(sensor=sensor, seed=5, n_darks=2, n_lights=1).write(root)


@pytest.fixture(scope="module")
def big_library(worker, big):
    lib = str(worker.tmp / "big-lib")
    worker.result("profiles.create", {"paths": big["darks"], "name": "Big", "library": lib}, timeout_s=240)
    return lib


@pytest.fixture(scope="module", params=WORKERS)
def worker(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("worker")
    client = WorkerClient.spawn([str(existing_worker(request.param)), "--stdio"], env=worker_env(tmp, HOTPIXELS_WORKER_PRELOAD="1"))
    client.tmp = tmp
    assert client.result("worker.hello", {"protocol": 1}, timeout_s=120)["protocol"] == 1
    yield client
    client.kill()


@pytest.fixture(scope="module")
def library(worker, session):
    """A library holding profile "A" built from body a's darks."""
    lib = str(worker.tmp / "lib")
    r = worker.result("profiles.create", {"paths": session["a"]["darks"], "name": "A", "library": lib}, timeout_s=240)
    assert r["profile"]["name"] == "A"
    return lib


def error_of(client: WorkerClient, method: str, params=None, timeout_s: float = 120) -> dict:
    response = client.call(method, params, timeout_s)
    assert "error" in response, f"{method} should have failed: {response}"
    return response["error"]


def progress_past(rid, done: int):
    """A ``wait_for`` predicate: a ``$/progress`` of request ``rid`` past ``done`` (``$/result``
    notifications carry the request id too)."""
    return lambda m: m.get("method") == "$/progress" and m["params"]["id"] == rid and m["params"]["done"] > done


def outputs_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- worker.* -------------------------------------------------------------------------------------
def test_hello_describes_the_worker(worker):
    r = worker.result("worker.hello", {"protocol": 1, "client": "protocol-suite"})
    assert r["protocol"] == 1 and r["compatible"] is True
    assert r["capabilities"]["stages"] == ["dark", "hot", "residual"]
    assert r["capabilities"]["read_compressions"] == [1, 7, 52546]
    assert r["capabilities"]["exiftool"] is True
    assert {"name", "loaded", "path", "sha256", "params"} <= set(r["model"])
    assert r["pid"] == worker.process.pid


def test_hello_with_a_newer_protocol_is_flagged_incompatible(worker):
    assert worker.result("worker.hello", {"protocol": 2})["compatible"] is False


# --- image.inspect ----------------------------------------------------------------------------------
def test_inspect_reports_geometry_cfa_and_camera(worker, session):
    r = worker.result("image.inspect", {"path": session["a"]["lights"][0]})
    assert r["raw_size"] == [407, 611] and r["active_area"] == [3, 5, 403, 605]
    assert r["cfa"]["name"] == "RGGB"
    assert r["metadata"]["model"] == "SimCam Mk1" and r["metadata"]["iso"] == 1600
    assert r["compression"].startswith("1")


def test_inspect_of_a_missing_file_is_1001_naming_path(worker, tmp_path):
    err = error_of(worker, "image.inspect", {"path": str(tmp_path / "gone.dng")})
    assert err["code"] == 1001 and err["data"]["param"] == "path" and err["data"]["path"].endswith("gone.dng")


def test_inspect_of_a_folder_is_1002(worker, tmp_path):
    assert error_of(worker, "image.inspect", {"path": str(tmp_path)})["code"] == 1002


def test_inspect_of_a_text_file_is_1003_not_tiff(worker, tmp_path):
    p = tmp_path / "notes.dng"
    p.write_text("these are not the pixels you are looking for\n" * 20)
    err = error_of(worker, "image.inspect", {"path": str(p)})
    assert err["code"] == 1003 and err["data"]["name"] == "not_tiff"


def test_inspect_of_a_plain_tiff_is_1004_not_dng(worker, tmp_path):
    import tifffile

    p = tmp_path / "scan.tif"
    tifffile.imwrite(p, np.zeros((16, 16), np.uint16))
    assert error_of(worker, "image.inspect", {"path": str(p)})["code"] == 1004


def test_inspect_of_a_truncated_dng_fails_with_a_file_error_and_the_worker_goes_on(worker, session, tmp_path):
    src = Path(session["a"]["lights"][0]).read_bytes()
    p = tmp_path / "cut.dng"
    p.write_bytes(src[:600])
    err = error_of(worker, "image.inspect", {"path": str(p)})
    assert err["code"] in (1003, 1006, 1007) and err["message"]
    assert worker.result("worker.hello")["protocol"] == 1


# --- image.correct ----------------------------------------------------------------------------------
def test_correct_one_image_with_the_auto_profile(worker, session, library, tmp_path):
    out = tmp_path / "out"
    r = worker.result("image.correct", {"path": session["a"]["lights"][0], "profile": "auto", "library": library,
                                        "output_dir": str(out)}, timeout_s=240)
    (res,) = r["results"]
    assert res["ok"] is True and res["profile"]["name"] == "A" and res["profile"]["why"]
    assert Path(res["output"]).is_file() and Path(res["output"]).parent == out
    assert Path(res["report_path"]).is_file()
    assert res["counts"]["hot"] + res["counts"]["dark"] > 0
    assert {"before", "after"} <= set(res["previews"])
    assert worker.result("image.inspect", {"path": res["output"]})["metadata"]["corrected_by_hotpixels"] is True


def test_correct_batch_reports_per_image_errors_as_results(worker, session, library, tmp_path):
    missing = str(tmp_path / "missing.dng")
    r = worker.result("image.correct", {"paths": [missing, session["a"]["lights"][1]], "library": library,
                                        "stages": ["dark", "hot"], "output_dir": str(tmp_path / "out")}, timeout_s=240)
    bad, good = r["results"]
    assert bad == {"path": missing, "ok": False,
                   "error": {"code": 1001, "name": "file_not_found", "message": f"file not found: {missing}",
                             "path": missing, "param": "paths"}}
    assert good["ok"] is True


def test_a_group_sent_as_one_request_streams_each_photos_result_before_the_response(worker, session, library,
                                                                                    tmp_path):
    paths = session["a"]["lights"]
    rid = worker.request("image.correct", {"paths": paths, "library": library, "stages": ["dark", "hot"],
                                           "output_dir": str(tmp_path)})
    response = worker.wait(rid, timeout_s=240)
    streamed = [m["params"] for _, m in list(worker.notifications)
                if m.get("method") == "$/result" and m["params"]["id"] == rid]
    assert [s["index"] for s in streamed] == list(range(len(paths)))
    assert {s["total"] for s in streamed} == {len(paths)}
    assert [s["result"] for s in streamed] == response["result"]["results"]
    assert all(r["ok"] for r in response["result"]["results"])
    dones = [p["done"] for _, p in worker.progress_of(rid)]
    assert dones == sorted(dones) and dones[-1] == 1000 * len(paths)


def test_cancelling_one_photo_of_a_group_by_path_corrects_the_others(worker, session, library, tmp_path):
    paths = session["a"]["lights"]
    rid = worker.request("image.correct", {"paths": paths, "library": library, "stages": ["dark", "hot"],
                                           "output_dir": str(tmp_path)})
    worker.notify("$/cancelRequest", {"id": rid, "path": paths[-1]})
    results = worker.wait(rid, timeout_s=240)["result"]["results"]
    assert [r["ok"] for r in results] == [True] * (len(paths) - 1) + [False]
    assert results[-1]["error"]["code"] == -32800 and results[-1]["error"]["name"] == "cancelled"
    assert results[-1]["path"] == paths[-1]
    assert len([n for n in outputs_in(tmp_path) if n.endswith(".dng")]) == len(paths) - 1


def test_correcting_a_corrected_file_is_1013_unless_forced(worker, session, library, tmp_path):
    first = worker.result("image.correct", {"path": session["a"]["lights"][0], "library": library, "stages": ["hot"],
                                            "output_dir": str(tmp_path)}, timeout_s=240)["results"][0]
    again = worker.result("image.correct", {"path": first["output"], "library": library, "stages": ["hot"]},
                          timeout_s=240)["results"][0]
    assert again["ok"] is False and again["error"]["code"] == 1013
    forced = worker.result("image.correct", {"path": first["output"], "library": library, "stages": ["hot"],
                                             "force": True}, timeout_s=240)["results"][0]
    assert forced["ok"] is True


def test_correct_with_another_bodys_profile_is_2005_per_image(worker, session, library, tmp_path):
    r = worker.result("image.correct", {"path": session["b"]["lights"][0], "profile": "A", "library": library,
                                        "output_dir": str(tmp_path)}, timeout_s=240)
    assert r["results"][0]["error"]["code"] == 2005
    assert outputs_in(tmp_path) == []


def test_correct_with_an_unknown_profile_fails_the_call_with_2001_before_any_work(worker, session, library, tmp_path):
    err = error_of(worker, "image.correct", {"path": session["a"]["lights"][0], "profile": "nope", "library": library,
                                             "output_dir": str(tmp_path)})
    assert err["code"] == 2001
    assert outputs_in(tmp_path) == []


@pytest.mark.parametrize("params, param", [
    ({"stages": ["dark", "sharpen"]}, "stages"),
    ({"sensitivity": 2}, "sensitivity"),
    ({"force": "yes"}, "force"),
    ({"profile": 7}, "profile"),
    ({"colour": "red"}, "colour"),
])
def test_correct_with_bad_params_is_32602_naming_the_parameter(worker, session, params, param):
    err = error_of(worker, "image.correct", {"path": session["a"]["lights"][0], **params})
    assert err["code"] == -32602 and err["data"]["param"] == param


def test_correct_needs_path_or_paths(worker):
    assert error_of(worker, "image.correct", {})["data"]["param"] == "paths"


def test_correct_into_a_file_instead_of_a_folder_is_1011(worker, session, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    err = error_of(worker, "image.correct", {"path": session["a"]["lights"][0], "output_dir": str(blocker)})
    assert err["code"] == 1011 and err["data"]["param"] == "output_dir"


def run_batch_with_hello(worker, paths, library, outdir):
    """Correct ``paths`` in one request, asking hello once it runs.

    Returns (progress arrival times + the response's, hello round trip in s, hello came first)."""
    rid = worker.request("image.correct", {"paths": paths, "library": library, "output_dir": str(outdir)})
    worker.wait_for(progress_past(rid, 0), timeout_s=120)
    t0 = time.monotonic()
    hello = worker.call("worker.hello", timeout_s=5)
    hello_s = time.monotonic() - t0
    assert hello["result"]["protocol"] == 1
    answered_during_job = rid not in worker.responses
    response = worker.wait(rid, timeout_s=600)
    done_at = time.monotonic()
    assert all(r["ok"] for r in response["result"]["results"])
    dones = [p["done"] for _, p in worker.progress_of(rid)]
    assert dones == sorted(dones) and dones[-1] == 1000 * len(paths)
    return [t for t, _ in worker.progress_of(rid)] + [done_at], hello_s, answered_during_job


def test_long_correction_sends_progress_at_least_once_a_second_and_hello_is_answered(worker, big, big_library,
                                                                                     tmp_path):
    # a batch of two-megapixel images, made longer until it lasts seconds (stage 3's speed varies)
    n = 4
    while True:
        times, hello_s, during = run_batch_with_hello(worker, big["lights"] * n, big_library, tmp_path / str(n))
        assert hello_s < 0.5, f"hello took {hello_s:.2f} s during a correction"
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert max(gaps) <= 1.0, f"largest progress gap {max(gaps):.2f} s"
        if times[-1] - times[0] > 1.5 or n >= 64:
            break
        n *= 4
    assert times[-1] - times[0] > 1.5, "the batch should take seconds"
    assert during, "hello must be answered while the correction runs, not after it"


def test_cancel_right_after_the_start_leaves_no_output(worker, big, big_library, tmp_path):
    out = tmp_path / "out"
    rid = worker.request("image.correct", {"path": big["lights"][0], "library": big_library, "output_dir": str(out)})
    worker.cancel(rid)  # arrives while the job starts (or, rarely, just before: then it never starts)
    err = worker.wait(rid, timeout_s=120)["error"]
    assert err["code"] == -32800 and err["data"].get("results", []) == []
    assert outputs_in(out) == []


def test_cancel_mid_correction_leaves_no_partial_files(worker, session, library, tmp_path):
    out = tmp_path / "out"
    paths = session["a"]["lights"] * 2  # six images; the same source twice gets numbered outputs
    rid = worker.request("image.correct", {"paths": paths, "library": library, "output_dir": str(out)})
    # wait until the first image is finished and the second is under way, then cancel
    worker.wait_for(progress_past(rid, 1000), timeout_s=240)
    worker.cancel(rid)
    err = worker.wait(rid, timeout_s=120)["error"]
    assert err["code"] == -32800 and err["data"]["name"] == "cancelled"
    finished = err["data"]["results"]
    assert 1 <= len(finished) < len(paths) and all(r["ok"] for r in finished)
    kept = {Path(r["output"]).stem for r in finished}
    leftovers = [n for n in outputs_in(out) if not any(n.startswith(stem + ".") for stem in kept)]
    assert leftovers == [], f"files of unfinished images: {leftovers}"
    assert worker.result("worker.hello")["protocol"] == 1


def test_cancel_of_a_queued_correction_answers_at_once(worker, session, library, tmp_path):
    first = worker.request("image.correct", {"path": session["a"]["lights"][0], "library": library,
                                             "output_dir": str(tmp_path / "1")})
    second = worker.request("image.correct", {"path": session["a"]["lights"][1], "library": library,
                                              "output_dir": str(tmp_path / "2")})
    worker.wait_for(lambda m: m.get("params", {}).get("id") == second, timeout_s=30)  # it is queued
    worker.cancel(second)
    assert worker.wait(second, timeout_s=30)["error"]["code"] == -32800
    assert "result" in worker.wait(first, timeout_s=240)
    assert outputs_in(tmp_path / "2") == []


# --- profiles.* -------------------------------------------------------------------------------------
def test_profiles_list_get_match(worker, session, library):
    listed = worker.result("profiles.list", {"library": library})
    assert [p["name"] for p in listed["profiles"]] == ["A"] and listed["errors"] == []
    got = worker.result("profiles.get", {"name": "A", "library": library})["profile"]
    assert got["name"] == "A" and len(got["frames"]) == 4
    m = worker.result("profiles.match", {"path": session["a"]["lights"][0], "library": library})
    assert m["best"] == "A" and m["candidates"][0]["name"] == "A"
    other = worker.result("profiles.match", {"path": session["b"]["lights"][0], "library": library})
    assert other["best"] is None and other["reason"]


def test_profile_life_cycle_create_rename_export_import_delete(worker, session, tmp_path):
    lib = str(tmp_path / "lib")
    created = worker.result("profiles.create", {"paths": session["b"]["darks"], "name": "B", "library": lib,
                                                "threshold": 6.0}, timeout_s=240)
    assert created["profile"]["name"] == "B" and created["mismatches"] == []
    assert worker.result("profiles.rename", {"name": "B", "new_name": "B summer", "library": lib})["profile"]["name"] == "B summer"
    exported = worker.result("profiles.export", {"name": "B summer", "path": str(tmp_path), "library": lib})
    assert Path(exported["path"]).is_file() and exported["bytes"] > 0
    assert worker.result("profiles.delete", {"name": "B summer", "library": lib}) == {"deleted": "B summer"}
    imported = worker.result("profiles.import", {"path": exported["path"], "name": "B again", "library": lib})
    assert imported["profile"]["name"] == "B again"
    assert [p["name"] for p in worker.result("profiles.list", {"library": lib})["profiles"]] == ["B again"]


def test_profile_errors(worker, session, library, tmp_path):
    assert error_of(worker, "profiles.get", {"name": "ghost", "library": library})["code"] == 2001
    assert error_of(worker, "profiles.create", {"paths": session["a"]["darks"], "name": "A", "library": library})["code"] == 2007
    assert error_of(worker, "profiles.create", {"paths": session["a"]["darks"], "name": "a/b",
                                                "library": str(tmp_path / "l")})["code"] == 2010
    one = worker.result("profiles.create", {"paths": session["b"]["darks"][:1], "name": "one",
                                            "library": str(tmp_path / "l1")}, timeout_s=240)
    assert one["profile"]["n_frames"] == 1 and "two or more" in one["notes"][0]  # a single dark: accepted, RTS said
    lights = session["a"]["lights"] + session["b"]["lights"]
    err = error_of(worker, "profiles.create", {"paths": lights, "name": "lights", "allow_mismatch": True,
                                               "library": str(tmp_path / "l")}, timeout_s=240)
    assert err["code"] == 2011 and err["data"]["name"] == "not_a_dark_frame"
    assert err["data"]["path"] == lights[0] and "it saw light" in err["data"]["reason"]
    mixed = session["a"]["darks"][:2] + session["b"]["darks"]
    assert error_of(worker, "profiles.create", {"paths": mixed, "name": "mixed",
                                                "library": str(tmp_path / "l")}, timeout_s=240)["code"] == 2004
    junk = tmp_path / "junk.hpprofile"
    junk.write_bytes(b"PK\x03\x04 definitely not a profile")
    assert error_of(worker, "profiles.import", {"path": str(junk), "library": library})["code"] == 2002
    err = error_of(worker, "profiles.create", {"paths": session["a"]["darks"] + [str(tmp_path / "gone.dng")],
                                               "name": "x", "library": str(tmp_path / "l")})
    assert err["code"] == 1001 and err["data"]["param"] == "paths"
    assert error_of(worker, "profiles.export", {"name": "A", "path": str(tmp_path / "a.txt"),
                                                "library": library})["data"]["param"] == "path"


def test_using_a_corrected_file_as_a_dark_is_2008(worker, session, library, tmp_path):
    out = worker.result("image.correct", {"path": session["b"]["darks"][0], "profile": None, "stages": ["residual"],
                                          "output_dir": str(tmp_path)}, timeout_s=240)["results"][0]
    assert out["ok"] is True
    err = error_of(worker, "profiles.create", {"paths": [out["output"], session["b"]["darks"][1]], "name": "c",
                                               "library": str(tmp_path / "l")})
    assert err["code"] == 2008


def test_cancel_mid_profile_build_writes_nothing(worker, session, tmp_path):
    lib = tmp_path / "lib"
    rid = worker.request("profiles.create", {"paths": session["a"]["darks"] * 3, "name": "slow", "library": str(lib),
                                             "allow_mismatch": True})
    worker.wait_for(progress_past(rid, 0), timeout_s=120)
    worker.cancel(rid)
    response = worker.wait(rid, timeout_s=120)
    assert response.get("error", {}).get("code") == -32800, response
    assert not [p for p in lib.rglob("*") if p.suffix == ".hpprofile"] if lib.exists() else True


# --- protocol errors ----------------------------------------------------------------------------------
def test_protocol_level_errors(worker):
    worker.send_raw(b"{oops\n")
    assert worker.wait_orphan(1)[-1]["error"]["code"] == -32700
    worker.send_raw(b'{"jsonrpc":"2.0","id":"x1"}\n')
    assert worker.wait_orphan(2)[-1]["error"]["code"] == -32600
    assert error_of(worker, "profiles.frobnicate")["code"] == -32601
    assert error_of(worker, "test.fail", {"kind": "bug"})["code"] == 1000
    assert worker.result("worker.hello")["protocol"] == 1


@pytest.mark.parametrize("exe", WORKERS)
def test_shutdown_replies_then_the_process_exits_0(exe, tmp_path):
    client = WorkerClient.spawn([str(exe), "--stdio"], env=worker_env(tmp_path))
    try:
        assert client.result("worker.shutdown", timeout_s=60) == {"ok": True}
        assert client.wait_exit(30) == 0
    finally:
        client.kill()


def test_a_profile_is_loaded_once_for_many_corrections_and_kept_under_the_budget(worker, session, library, tmp_path):
    before = worker.result("worker.hello")["profile_cache"]
    for k in range(2):
        r = worker.result("image.correct", {"path": session["a"]["lights"][0], "profile": "A", "library": library,
                                            "stages": ["dark", "hot"], "output_dir": str(tmp_path / str(k))},
                          timeout_s=240)
        assert r["results"][0]["ok"] is True
    after = worker.result("worker.hello")["profile_cache"]
    assert after["profiles"] >= 1 and 0 < after["bytes"] <= after["budget_bytes"]
    assert after["misses"] <= before["misses"] + 1, (before, after)  # read from disk at most once
