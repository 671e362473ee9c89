"""``image.*`` methods: inspect a DNG, scan a batch, correct a group.

``image.correct`` is a job (one at a time, progress, cancel) run by the batch engine
(:mod:`hotpixels.correct.engine`), the same one the CLI uses: reading, correcting and writing
overlap across the group, and each image's result goes out as a ``$/result`` notification as soon
as its files are written; the response lists them all again. A bad file becomes
``{path, ok: false, error}`` and the others go on. ``$/cancelRequest {id}`` stops the request
(-32800, ``data.results`` lists the images finished, whose files stay; the image in flight leaves
nothing); ``$/cancelRequest {id, path}`` cancels only that photo (its result is the ``cancelled``
error) and the rest go on.

``image.scanBatch`` is a job too: it reads the photos once for stage 3's batch evidence
(:mod:`hotpixels.correct.batchscan`) and the worker holds the result (per photo its group's defect
sites) under a ``batch_id``; ``image.correct`` calls naming that id repair those sites too (an id
the worker no longer holds is 1014 ``batch_expired``). A group ``image.correct`` without one and
with ``batch: "auto"`` scans by itself first.
"""

from __future__ import annotations

from typing import Any

from ...errors import BatchExpired, Cancelled, HotPixelsError
from ..errors import bad_param, error_result
from ..params import Bool, Folder, InputFile, List, Number, OutputFolder, Photo, Str, Suffix, check_output_dir
from . import rpc_method

STAGES = ("dark", "hot", "residual")
BATCH_MODES = ("auto", "off")
LIBRARY = Folder(null_ok=True)


@rpc_method("image.inspect", lane="quick", params={"path": InputFile(required=True)})
def inspect(call: Any, p: Any) -> dict[str, Any]:
    """What the reader sees in one DNG (tags only, no pixel decoding): geometry, CFA, levels, metadata."""
    path = p.input_file("path")
    p.done()
    from ...dng.reader import read_dng

    raw = read_dng(path, metadata=True, pixels=False)
    out = raw.summary()
    layout = raw.layout.describe()
    out["compression"] = layout.get("compression")
    out["layout"] = layout
    return out


@rpc_method("image.scanBatch", lane="job",
            params={"paths": List(item=Photo(), required=True), "tracked": Bool(), "library": LIBRARY})
def scan_batch(call: Any, p: Any) -> dict[str, Any]:
    """Read photos once for stage 3's batch evidence; the worker holds it under the returned ``batch_id``."""
    paths = p.str_list("paths")
    if len(paths) < 2:
        raise bad_param("paths", "image.scanBatch needs at least 2 photos in 'paths'")
    tracked = p.bool("tracked", False)
    library_dir = p.str("library", None)
    p.done()
    from ...correct.batchscan import BatchScan, scan_batch as scan_photos

    scan = scan_photos(paths, tracked=tracked, progress=call.progress, cancel=call.cancel)
    library = call.state.library(library_dir)
    groups = [{"paths": g["paths"], "frames": g["frames"], "sites": g["sites"],
               "proposed_profile_additions": _proposals(g, library)} for g in scan.groups]
    batch_id = call.state.batches.put(BatchScan(by_path=scan.by_path, frames=scan.frames))
    return {"batch_id": batch_id, "groups": groups,
            "skipped": [{"path": path, "error": error_result(exc)} for path, exc in scan.skipped],
            "seconds": scan.seconds}


def _proposals(group: dict[str, Any], library: Any) -> int:
    """How many of a group's defect sites the profile ``"auto"`` picks for its first photo lacks
    (all of them when no profile fits)."""
    evidence = group["evidence"]
    if not len(evidence.sites):
        return 0
    from ...correct.pipeline import CorrectOptions, profile_site_mask, resolve_profile
    from ...dng.reader import read_dng

    try:
        raw = read_dng(group["paths"][0], pixels=False)
        profile, _ = resolve_profile(raw, CorrectOptions(profile="auto"), library)
    except HotPixelsError:
        return len(evidence.sites)
    return len(evidence.proposals(profile_site_mask(raw, getattr(profile, "model", profile))))


@rpc_method("image.correct", lane="job", params={
    "path": Photo(), "paths": List(item=Photo()),
    "profile": Str(max_chars=200, null_ok=True),  # null: no profile (stage 3 only)
    "stages": List(item=Str(choices=STAGES)), "sensitivity": Number(lo=0.0, hi=1.0),
    "output_dir": OutputFolder(null_ok=True), "suffix": Suffix(), "force": Bool(), "library": LIBRARY,
    "report_dir": OutputFolder(null_ok=True), "batch_id": Str(max_chars=200, null_ok=True), "batch": Str(choices=BATCH_MODES)})
def correct(call: Any, p: Any) -> dict[str, Any]:
    """Correct one image (``path``) or a group (``paths``); per-image failures are results, each
    image's result is also sent as ``$/result`` as soon as it is written."""
    paths, param = _paths(p)
    profile = p.any("profile", "auto")
    if profile is not None and (not isinstance(profile, str) or not profile.strip()):
        raise bad_param("profile", "'profile' must be \"auto\", a profile name, or null (no profile)")
    stages = p.str_list("stages", list(STAGES), choices=STAGES)
    sensitivity = p.number("sensitivity", 0.5, lo=0.0, hi=1.0)
    output_dir = p.str("output_dir", None)
    suffix = p.str("suffix", "_hotpixels")
    force = p.bool("force", False)
    library_dir = p.str("library", None)
    report_dir = p.str("report_dir", None)
    batch_id = p.str("batch_id", None)
    batch = p.str("batch", "auto", choices=BATCH_MODES)
    p.done()
    held = _held_scan(call, batch_id, batch)
    if output_dir is not None:
        check_output_dir(output_dir, "output_dir")
    if report_dir is None:
        from ...userdirs import default_report_dir

        report_dir = str(default_report_dir())
    from ...correct.engine import correct_stream
    from ...correct.pipeline import CorrectOptions

    options = CorrectOptions(profile=profile, stages=tuple(stages), sensitivity=sensitivity, output_dir=output_dir,
                             suffix=suffix, force=force, library_dir=library_dir,
                             report_dir=report_dir, batch=batch).validated()
    library = call.state.library(library_dir) if options.profile is not None else None
    if options.profile not in (None, "auto"):
        library.path_of(options.profile)  # a missing named profile fails the call before any work
    results: list[dict[str, Any] | None] = [None] * len(paths)
    try:
        for i, result in correct_stream(paths, options, library=library, progress=call.progress, cancel=call.cancel,
                                        evidence=held, image_cancelled=call.image_cancelled, param=param):
            results[i] = result
            call.send_result(i, len(paths), result)
    except Cancelled as exc:
        exc.data["results"] = [r for r in results if r is not None]
        raise
    return {"results": results}


def _held_scan(call: Any, batch_id: str | None, batch: str) -> Any:
    """The scan held under ``batch_id`` (None when no id was given); refuses an unknown one (1014)."""
    if batch_id is None:
        return None
    if batch == "off":
        raise bad_param("batch", "'batch': \"off\" and a 'batch_id' contradict each other; give one of them")
    held = call.state.batches.get(batch_id)
    if held is None:
        raise BatchExpired("this batch scan is unknown or has expired (the worker keeps the last "
                           f"{call.state.batches.keep}); scan the photos again with image.scanBatch, or correct "
                           "without it", data={"param": "batch_id"})
    return held


def _paths(p: Any) -> tuple[list[str], str]:
    if p.has("paths") and p.has("path"):
        raise bad_param("path", "give either 'path' or 'paths', not both")
    if p.has("path"):
        return [p.str("path")], "path"
    if not p.has("paths"):
        raise bad_param("paths", "image.correct needs 'path' (one image) or 'paths' (a list)")
    return p.str_list("paths"), "paths"
