"""``image.*`` methods: inspect a DNG, scan a batch, correct one or many.

``image.correct`` is a job (one at a time, progress, cancel). Each image is corrected on its own:
a bad file becomes ``{path, ok: false, error}`` in ``results`` and the others go on. Cancelling
stops at the next unit of work; the engine removes the image's partial output, and the call ends
with -32800 (``data.results`` lists the images finished before the cancel, whose files stay).

``image.scanBatch`` is a job too: it reads the photos once for stage 3's batch evidence
(:mod:`hotpixels.correct.batchscan`) and the worker holds the result (per photo its group's defect
sites) under a ``batch_id``; ``image.correct`` calls naming that id, one per photo as the plugin
sends them, repair those sites too. A multi-photo ``image.correct`` with ``batch: "auto"`` scans
by itself first.
"""

from __future__ import annotations

from typing import Any

from ...errors import Cancelled, HotPixelsError
from ..errors import bad_param, error_result
from ..params import Bool, Folder, InputFile, List, Number, OutputFolder, Photo, Str, Suffix, check_input_file, check_output_dir
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
    """Correct one image (``path``) or several (``paths``); per-image failures are results."""
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
    from ...correct.pipeline import CorrectOptions, batch_scan_for, batch_sites_for

    options = CorrectOptions(profile=profile, stages=tuple(stages), sensitivity=sensitivity, output_dir=output_dir,
                             suffix=suffix, force=force, library_dir=library_dir,
                             report_dir=report_dir, batch=batch).validated()
    library = call.state.library(library_dir) if options.profile is not None else None
    if options.profile not in (None, "auto"):
        library.path_of(options.profile)  # a missing named profile fails the call before any work
    n = len(paths)
    results: list[dict[str, Any]] = []
    try:
        evidence = held if held is not None else batch_scan_for(paths, options, progress=_scanning(call, n),
                                                                  cancel=call.cancel)
        for i, path in enumerate(paths):
            results.append(_correct_one(call, path, param, options, library, i, n, batch_sites_for(evidence, path)))
    except Cancelled as exc:
        exc.data["results"] = results
        raise
    call.progress(1000 * n, 1000 * n, "done")
    return {"results": results}


def _held_scan(call: Any, batch_id: str | None, batch: str) -> Any:
    """The scan held under ``batch_id`` (None when no id was given); refuses an unknown one."""
    if batch_id is None:
        return None
    if batch == "off":
        raise bad_param("batch", "'batch': \"off\" and a 'batch_id' contradict each other; give one of them")
    held = call.state.batches.get(batch_id)
    if held is None:
        raise bad_param("batch_id", "this batch scan is unknown or has expired (the worker keeps the last "
                                    f"{call.state.batches.keep}); scan the photos again with image.scanBatch")
    return held


def _scanning(call: Any, count: int) -> Any:
    """Progress of the scan before the corrections: ``done`` stays 0 of ``1000 × count`` (so ``done``
    still counts thousandths of corrected images), the message says how far the scan is."""
    def progress(done: int, total: int, message: str = "") -> None:
        call.progress(0, 1000 * count, message)

    return progress


def _paths(p: Any) -> tuple[list[str], str]:
    if p.has("paths") and p.has("path"):
        raise bad_param("path", "give either 'path' or 'paths', not both")
    if p.has("path"):
        return [p.str("path")], "path"
    if not p.has("paths"):
        raise bad_param("paths", "image.correct needs 'path' (one image) or 'paths' (a list)")
    return p.str_list("paths"), "paths"


def _correct_one(call: Any, path: str, param: str, options: Any, library: Any, index: int, count: int,
                 batch_sites: Any) -> dict[str, Any]:
    """One image: its result dict, or ``{path, ok: false, error}``; only a cancel escapes."""
    from ...correct.pipeline import correct_file

    def progress(done: int, total: int, message: str = "") -> None:
        frac = done / total if total else 0.0
        prefix = f"image {index + 1}/{count}: " if count > 1 else ""
        call.progress(1000 * index + int(1000 * frac), 1000 * count, prefix + message)

    try:
        check_input_file(path, param)
        result = correct_file(path, options, library=library, progress=progress, cancel=call.cancel,
                              batch_sites=batch_sites)
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad image must not fail the others
        return {"path": path, "ok": False, "error": error_result(exc)}
    return shape_result(result)


def shape_result(result: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's result in the documented shape (its own fields are kept as they are)."""
    out = dict(result)
    profile = dict(out.get("profile") or {})
    profile.setdefault("why", profile.get("reason"))
    out["profile"] = profile
    out.setdefault("report_path", out.get("report"))
    previews = out.get("previews")
    if isinstance(previews, list):
        first = previews[0] if previews else {}
        out["previews"] = {"before": first.get("before"), "after": first.get("after"), "regions": previews}
    return out
