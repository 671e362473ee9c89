"""``profiles.*`` methods: build, list, show, match, rename, delete, import and export profiles.

Each takes an optional ``library`` (a folder; default: the worker's ``--library``,
``HOTPIXELS_LIBRARY`` or the user's data folder). ``profiles.create`` is a job (progress, cancel;
nothing is written until the profile is complete); ``profiles.import``/``export`` copy files and
also run on the job lane; the rest are quick calls answered beside a running job.
"""

from __future__ import annotations

from typing import Any

from ..errors import bad_param
from ..params import Bool, Folder, InputFile, List, Number, Objects, PathStr, Photo, Str, check_input_file
from . import rpc_method

LIBRARY = Folder(null_ok=True)
NAME = Str(required=True, max_chars=200)


def _library(call: Any, p: Any) -> Any:
    directory = p.str("library", None)
    return call.state.library(directory)


def _summary(lib: Any, name: str) -> dict[str, Any]:
    return lib.summary(name)


@rpc_method("profiles.create", lane="job", params={
    "paths": List(item=InputFile(), required=True), "name": NAME, "threshold": Number(lo=2.0, hi=50.0, null_ok=True),
    "allow_mismatch": Bool(), "keep_master": Bool(), "library": LIBRARY})
def create(call: Any, p: Any) -> dict[str, Any]:
    """Build a profile from dark frames of one body and store it in the library."""
    paths = p.str_list("paths")
    name = p.str("name")
    threshold = p.number("threshold", None, lo=2.0, hi=50.0)
    allow_mismatch = p.bool("allow_mismatch", False)
    keep_master = p.bool("keep_master", False)
    lib = _library(call, p)
    p.done()
    for path in paths:
        check_input_file(path, "paths")
    from ...profiles.build import create_profile
    from ...profiles.library import check_name

    check_name(name)
    kwargs: dict[str, Any] = {"allow_mismatch": allow_mismatch, "keep_master": keep_master,
                              "progress": call.progress, "cancel": call.cancel}
    if threshold is not None:
        kwargs["threshold_sigma"] = threshold
    made = create_profile(paths, name, lib, **kwargs)
    summary = _summary(lib, made["name"])
    return {"profile": summary, "mismatches": made.get("mismatches", []), "notes": made.get("notes", []),
            "pictures": made.get("pictures") or summary.get("pictures", {}), "seconds": made.get("seconds")}


@rpc_method("profiles.list", lane="quick", params={"library": LIBRARY})
def list_profiles(call: Any, p: Any) -> dict[str, Any]:
    """Every profile's summary (no pixel data is read) and the files that could not be read."""
    lib = _library(call, p)
    p.done()
    listed = lib.list()
    return {"library": listed.get("library", str(lib.dir)), "profiles": listed["profiles"], "errors": listed["errors"]}


@rpc_method("profiles.get", lane="quick", params={"name": NAME, "library": LIBRARY})
def get(call: Any, p: Any) -> dict[str, Any]:
    """One profile: summary, frames, mismatches and its pictures (PNG paths)."""
    name = p.str("name")
    lib = _library(call, p)
    p.done()
    return {"profile": _summary(lib, name)}


@rpc_method("profiles.match", lane="quick", params={"path": InputFile(required=True), "library": LIBRARY})
def match(call: Any, p: Any) -> dict[str, Any]:
    """Rank the library's profiles for one image (hard constraints, then ISO/exposure/temperature/age)."""
    path = p.input_file("path")
    lib = _library(call, p)
    p.done()
    from ...dng.reader import read_dng
    from ...profiles.match import match_profiles

    raw = read_dng(path, metadata=True, pixels=False)
    return match_profiles(raw, lib)


@rpc_method("profiles.rename", lane="quick", params={"name": NAME, "new_name": NAME, "library": LIBRARY})
def rename(call: Any, p: Any) -> dict[str, Any]:
    """Give a profile a new name (its file is rewritten atomically)."""
    name = p.str("name")
    new_name = p.str("new_name")
    lib = _library(call, p)
    p.done()
    renamed = lib.rename(name, new_name)
    return {"profile": _summary(lib, renamed["name"])}


@rpc_method("profiles.delete", lane="quick", params={"name": NAME, "library": LIBRARY})
def delete(call: Any, p: Any) -> dict[str, Any]:
    """Remove a profile and its pictures from the library."""
    name = p.str("name")
    lib = _library(call, p)
    p.done()
    lib.delete(name)
    return {"deleted": name}


@rpc_method("profiles.import", lane="job", params={
    "path": InputFile(required=True), "name": Str(max_chars=200, null_ok=True), "overwrite": Bool(), "library": LIBRARY})
def import_profile(call: Any, p: Any) -> dict[str, Any]:
    """Copy a ``.hpprofile`` file into the library (checked by loading it), optionally renamed."""
    path = p.input_file("path")
    name = p.str("name", None)
    overwrite = p.bool("overwrite", False)
    lib = _library(call, p)
    p.done()
    call.progress(0, 1, "importing")
    imported = lib.import_file(path, name, overwrite=overwrite)
    call.progress(1, 1, "imported")
    return {"profile": _summary(lib, imported["name"])}


@rpc_method("profiles.export", lane="job", params={"name": NAME, "path": PathStr(required=True), "library": LIBRARY})
def export(call: Any, p: Any) -> dict[str, Any]:
    """Copy a profile's file to ``path`` (a file name, or an existing folder to put it in)."""
    name = p.str("name")
    dst = p.str("path")
    lib = _library(call, p)
    p.done()
    from pathlib import Path

    from ..params import check_output_dir

    target = Path(dst)
    check_output_dir(str(target if target.is_dir() else (target.parent if str(target.parent) else ".")), "path",
                     create=False)
    if not target.is_dir() and target.suffix.lower() != ".hpprofile":
        raise bad_param("path", "the exported file name must end in .hpprofile (or give a folder)")
    exported = lib.export(name, dst)
    return {"path": exported["path"], "bytes": exported.get("bytes")}


@rpc_method("profiles.learn", lane="job", params={
    "paths": List(item=Photo(), required=True), "name": NAME, "update": Bool(), "tracked": Bool(), "library": LIBRARY})
def learn(call: Any, p: Any) -> dict[str, Any]:
    """Learn a body's hot pixels from >= 8 of its photos (or add photos to a learned profile: ``update``).

    A photo that cannot be read is that photo's ``skipped`` entry, not the call's error."""
    paths = p.str_list("paths")
    name = p.str("name")
    update = p.bool("update", False)
    tracked = p.bool("tracked", False)
    lib = _library(call, p)
    p.done()
    from ...profiles.learn import MIN_PHOTOS, learn_profile
    from ...profiles.library import check_name

    check_name(name)
    if not update and len(set(paths)) < MIN_PHOTOS:
        raise bad_param("paths", f"learning needs at least {MIN_PHOTOS} photos of one body, got {len(set(paths))}")
    return learn_profile(paths, name, lib, update=update, tracked=tracked, progress=call.progress, cancel=call.cancel)


SITE = {"y": Number(lo=0, hi=1e6, integer=True, required=True), "x": Number(lo=0, hi=1e6, integer=True, required=True),
        "excess_dn": Number(null_ok=True), "frames_hit": Number(lo=0, hi=1e6, integer=True, null_ok=True),
        "mean_sigma": Number(null_ok=True)}


@rpc_method("profiles.addSites", lane="job", params={
    "name": NAME, "sites": Objects(fields=SITE, required=True, min_items=0), "paths": List(item=InputFile(), null_ok=True),
    "library": LIBRARY})
def add_sites(call: Any, p: Any) -> dict[str, Any]:
    """Add batch-evidence sites (a batch's ``proposed_profile_additions``) to a profile."""
    name = p.str("name")
    sites = p.any("sites")
    paths = p.str_list("paths", None) or []
    lib = _library(call, p)
    p.done()
    for path in paths:
        check_input_file(path, "paths")
    from ...profiles.addsites import add_sites as add
    from ...profiles.library import check_name

    check_name(name)
    call.progress(0, 1, "adding sites")
    out = add(name, sites, lib, paths=paths)
    call.progress(1, 1, "added")
    return out
