"""The ``correct`` job: read a DNG, run the stages, write the corrected copy, its report and previews.

One image (:func:`correct_file`)
    read (``hotpixels.dng.reader.read_dng``) → refuse a file HotPixels already corrected unless
    ``force`` → pick the profile (``"auto"``: the best match of
    ``hotpixels.profiles.match.match_profiles``; a name: that profile, refused with
    :class:`ProfileIncompatible` when it was made on another body or sensor layout; ``None`` /
    ``"none"``: no profile) → stage 1 (:mod:`.darkframe`) → stage 2 (:mod:`.knownhot`) → stage 3
    (:mod:`.residual`; a model that cannot be loaded is error 3002, never a silent skip) → write ``<name><suffix>.dng``
    (``hotpixels.dng.writer.write_corrected_dng``: a new file, temp file + rename) → the JSON
    report and sites file (:mod:`.report`) → before/after PNG crops (:mod:`.previews`).

Output names
    ``<stem><suffix>.dng`` in ``output_dir`` (created when missing) or next to the source. Nothing is ever overwritten:
    when that name is taken (on disk, or earlier in the same batch) the output is numbered
    ``<stem><suffix>_2.dng``, ``_3`` …; the report and previews take the output's stem.

Without a profile (none requested, or no match in the library) stages 1 and 2 are skipped and the
report says why; stage 3 still runs.

Batch evidence (``engine.correct_stream`` with ``batch="auto"``, the default, and stage 3 selected)
    A first pass reads every photo once (:func:`hotpixels.correct.batchscan.scan_batch`, progress
    ``scanning i/n``) and gathers, per body and layout with at least 3 photos, the sites that stand
    out at the same place in many frames (:mod:`.batch`). Stage 3 of the correction pass then
    repairs the union of its single-frame detections and the photo's batch sites (less the sites
    the profile's stages own), with the same interpolation; the report's ``batch`` section lists the
    batch sites the applied profile lacks as proposed additions, and ``counts.batch`` the sites
    repaired only because of batch evidence. :func:`correct_file` uses batch evidence only when
    given (``batch_sites``, e.g. held by the worker since an ``image.scanBatch``).

Batches
    :mod:`hotpixels.correct.engine` (``correct_stream`` / ``correct_files``) runs these same steps
    (:func:`read_image`, :func:`compute_image`, :func:`finish_image`) for a group of photos, with
    reading, computing and writing overlapped; it is what the CLI and the worker use.

Results (one shape, the CLI's ``--json`` and the worker's ``results[]`` alike)
    ``{path, ok: true, output, report_path, sites_file, profile: {name, how, reason, why},
    counts: {dark, hot, residual, batch, dark_field_pixels}, batch: {...}, scale: number | null,
    previews: {before, after, regions: [...]}, stages, seconds, camera, write, source}``; a failure
    is ``{path, ok: false, error: {code, name, message, path?, param?, ...}}`` (the error table's
    shape, :meth:`hotpixels.errors.HotPixelsError.to_dict`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..dng.rawimage import RawImage
from ..errors import (
    AlreadyCorrected, DestinationUnwritable, HotPixelsError, InvalidOption, NoMatchingProfile,
    OutputExists, ProfileIncompatible, as_hotpixels_error,
)
from ..fileio import remove_stale_temps
from ..progress import ProgressFn, check_cancel, report
from .darkframe import DarkOptions, check_geometry, estimate_scale, model_site_stats, subtract_dark
from .knownhot import REASONS, interpolate_known
from .learnedhot import run_learned, owned_sites, split_profile
from .batchscan import MIN_GROUP_FRAMES, BatchScan, BatchSites
from .report import SiteChanges, batch_section, write_report

log = logging.getLogger(__name__)

STAGES = ("dark", "hot", "residual")
BATCH_MODES = ("auto", "off")
MAX_NUMBERED = 10000


NAME_MAX_BYTES = 255  # one file name (Linux, macOS, Windows)
LONGEST_SIDE_FILE = f"_{MAX_NUMBERED}.preview99_before.png"  # what the longest output/side name adds to stem+suffix


def check_output_name_length(src: Path, options: CorrectOptions, folder: Path) -> None:
    """1011 naming ``suffix`` when the output's (or a side file's) name would exceed 255 bytes,
    before anything is written (the system would refuse it half-way with ENAMETOOLONG)."""
    longest = f"{src.stem}{options.suffix}{LONGEST_SIDE_FILE}".encode("utf-8")
    if len(longest) > NAME_MAX_BYTES:
        raise DestinationUnwritable(
            f"the corrected file's name would be too long ({len(longest)} bytes with its numbering and previews, "
            f"at most {NAME_MAX_BYTES}): choose a shorter suffix or rename {src.name}",
            path=str(folder / src.name), data={"param": "suffix"})


@dataclass
class CorrectOptions:
    profile: str | None = "auto"  # "auto" | a profile name | None / "none"
    stages: tuple[str, ...] = STAGES
    sensitivity: float = 0.5  # stage 3 cut, 0 (few detections) … 1 (many)
    output_dir: str | None = None
    suffix: str = "_hotpixels"
    force: bool = False  # correct a file HotPixels already corrected
    library_dir: str | None = None
    temp_doubling_c: float = 6.0
    previews: bool = True
    report_dir: str | None = None  # reports, sites files and previews; None = beside the output DNG
    batch: str = "auto"  # "auto": batch evidence when correcting >= 3 photos of one body; "off"
    tracked: bool = False  # frames from a tracking mount: stars stay on their sites (batch evidence)

    def validated(self) -> "CorrectOptions":
        stages = tuple(s.strip().lower() for s in (self.stages.split(",") if isinstance(self.stages, str) else self.stages)
                       if s.strip())
        unknown = [s for s in stages if s not in STAGES]
        if unknown or not stages:
            raise InvalidOption(f"unknown stage(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(STAGES)}",
                                data={"param": "stages"})
        if not (0.0 <= float(self.sensitivity) <= 1.0):
            raise InvalidOption(f"sensitivity must be between 0 and 1, got {self.sensitivity}", data={"param": "sensitivity"})
        if not self.suffix or any(c in self.suffix for c in "/\\\0"):
            raise InvalidOption(f"suffix {self.suffix!r} must be non-empty and contain no path separator",
                                data={"param": "suffix"})
        if not (float(self.temp_doubling_c) > 0):
            raise InvalidOption("temp_doubling_c must be a positive number of °C", data={"param": "temp_doubling_c"})
        batch = str(self.batch).strip().lower()
        if batch not in BATCH_MODES:
            raise InvalidOption(f"batch must be one of {', '.join(BATCH_MODES)}, got {self.batch!r}",
                                data={"param": "batch"})
        profile = self.profile
        if isinstance(profile, str) and profile.strip().lower() in ("", "none"):
            profile = None
        return replace(self, stages=stages, profile=profile, sensitivity=float(self.sensitivity), batch=batch,
                       tracked=bool(self.tracked))


# --- one image -----------------------------------------------------------------------------------
def correct_file(path, options: CorrectOptions | None = None, *, library=None, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None, batch_sites: BatchSites | None = None) -> dict[str, Any]:
    """Correct one DNG; returns the result dict (the report plus output paths). Raises on failure.

    ``batch_sites``: this photo's share of a batch scan (:func:`hotpixels.correct.batchscan.scan_batch`),
    repaired in stage 3 besides its single-frame detections; None: no batch evidence. Progress in
    thousandths of the image (``total`` 1000), as the batch engine counts.
    """
    options = (options or CorrectOptions()).validated()
    library = library if library is not None else open_library(options)
    report(progress, 0, 1000, f"reading {Path(path).name}")
    raw = read_image(path)
    check_cancel(cancel)
    report(progress, 333, 1000, f"correcting {Path(path).name}")
    job = compute_image(raw, options, library, {}, set(), batch_sites)
    check_cancel(cancel)
    report(progress, 667, 1000, f"writing {job.output.name}")
    result = finish_image(job, options, cancel)
    report(progress, 1000, 1000, "done")
    return result


def batch_scan_for(paths: Sequence, options: CorrectOptions, *, progress: ProgressFn | None = None,
                   cancel: threading.Event | None = None) -> BatchScan | str:
    """The batch scan of ``paths`` when ``options`` call for one, else the reason there is none.

    A missing or broken stage-3 model raises its error (3001 / 3002): the run asked for stage 3.
    """
    if options.batch == "off":
        return "batch evidence turned off"
    if "residual" not in options.stages:
        return "stage 3 (residual) not selected"
    if len({os.path.abspath(os.fspath(p)) for p in paths}) < MIN_GROUP_FRAMES:
        return f"fewer than {MIN_GROUP_FRAMES} photos corrected together"
    from .batchscan import scan_batch

    return scan_batch(paths, tracked=options.tracked, force=options.force, progress=progress, cancel=cancel)


def batch_sites_for(scan: BatchScan | str | None, path) -> BatchSites:
    """``path``'s share of ``scan`` (or, when there is none, an empty share saying why)."""
    if scan is None:
        return BatchSites.none("no batch evidence")
    if isinstance(scan, str):
        return BatchSites.none(scan)
    return scan.sites_for(path) or BatchSites.none("not part of the batch scan", frames=scan.frames)


def failure_result(path: str, exc: BaseException) -> dict[str, Any]:
    """``{path, ok: false, error}`` for an image that failed (the error table's shape)."""
    if not isinstance(exc, HotPixelsError):
        log.error("unexpected error correcting %s", path, exc_info=exc)
    return {"path": path, "ok": False, "error": as_hotpixels_error(exc).to_dict()}


def open_library(options: CorrectOptions):
    """The profile library the options name (None when no profile is wanted)."""
    if options.profile is None:
        return None
    from ..profiles.library import ProfileLibrary

    return ProfileLibrary(options.library_dir)


def read_image(path, param: str | None = None) -> RawImage:
    """Check the path (1001/1002 naming ``param``, the request parameter or argument that gave it)
    and read the DNG, pixels and metadata."""
    from ..dng.reader import read_dng
    from ..fileio import check_input_file

    check_input_file(path, param)
    return read_dng(path)


# --- the computation -----------------------------------------------------------------------------
@dataclass
class ImageJob:
    raw: RawImage
    new_cfa_dn: np.ndarray
    output: Path
    report: dict[str, Any]
    changes: SiteChanges
    seconds: dict[str, float] = field(default_factory=dict)


def correct_raw(raw: RawImage, options: CorrectOptions, profile=None, profile_info: dict | None = None,
                batch_sites: BatchSites | None = None) -> tuple[np.ndarray, dict[str, Any], SiteChanges]:
    """The stages on an in-memory frame: ``(new_cfa_dn, stage report, site changes)``.

    ``profile`` is a :class:`hotpixels.profiles.profile_file.Profile`, a bare
    :class:`~hotpixels.profiles.darkmodel.DarkModel` or ``None``. ``batch_sites``: batch evidence
    for this frame (stage 3 repairs those sites too). ``raw.cfa_dn`` is never modified.
    """
    options = options.validated()
    changes = SiteChanges()
    stages: dict[str, Any] = {}
    info = dict(profile_info or {})
    dark, learned = split_profile(profile)
    model = getattr(dark, "model", dark)
    cfa_dn = raw.cfa_dn
    t0 = time.perf_counter()
    if model is None:
        why = info.get("reason") or "no profile"
        if learned is not None:
            why = "a learned profile has no dark field (stage 1 needs a dark-frame profile)"
        for name in ("dark", "hot"):
            stages[name] = {"ran": False, "reason": f"skipped: {why}"} if name in options.stages else {"ran": False, "reason": "not selected"}
    else:
        check_geometry(raw, model)
        stats = model_site_stats(raw, model)
        fit = estimate_scale(raw, model, stats, DarkOptions(temp_doubling_c=options.temp_doubling_c))
        subtracted = False
        if "dark" in options.stages:
            cfa_dn, r1 = subtract_dark(raw, model, DarkOptions(temp_doubling_c=options.temp_doubling_c), fit=fit, stats=stats)
            subtracted = r1.applied
            stages["dark"] = {"ran": r1.applied, **r1.to_json()}
            changes.add("dark", r1.moved_yx, r1.moved_old_dn, r1.moved_new_dn, "moved_over_1_sigma")
        else:
            stages["dark"] = {"ran": False, "reason": "not selected", **fit.to_json()}
        if "hot" in options.stages:
            cfa_dn, r2 = interpolate_known(cfa_dn, raw, model, fit, stats, subtracted=subtracted,
                                           copy=cfa_dn is raw.cfa_dn)
            stages["hot"] = {"ran": True, **r2.to_json()}
            changes.add("hot", r2.yx, r2.old_dn, r2.new_dn, [REASONS[k] for k in r2.reason])
        else:
            stages["hot"] = {"ran": False, "reason": "not selected"}
    if learned is not None and "hot" in options.stages:
        cfa_dn, stages["hot"] = run_learned(cfa_dn, raw, learned, model if stages["hot"].get("ran") else None,
                                            stages["hot"], changes)
    owned = owned_sites(model if any(stages[k].get("ran") for k in ("dark", "hot")) else None, learned)
    t1 = time.perf_counter()
    batch = batch_sites if batch_sites is not None else BatchSites.none("no batch evidence")
    if batch.group_frames and not batch.fits(raw):
        batch = BatchSites.none("the photo's raw size or ActiveArea differs from the scanned batch's", batch.frames)
    if "residual" in options.stages:
        cfa_dn, stages["residual"] = _run_residual(cfa_dn, raw, owned, options, changes, batch.sites)
    else:
        stages["residual"] = {"ran": False, "reason": "not selected"}
    t2 = time.perf_counter()
    out = {
        "profile": info, "stages": stages,
        "scale": stages.get("dark", {}).get("scale") if stages.get("dark", {}).get("ran") else None,
        "counts": {"dark": int(stages["dark"].get("n_sites_subtracted", 0)) if stages["dark"].get("ran") else 0,
                   "dark_field_pixels": int(stages["dark"].get("n_field_pixels", 0)) if stages["dark"].get("ran") else 0,
                   "hot": int(stages["hot"].get("n_interpolated", 0)),
                   "residual": int(stages["residual"].get("n_corrected", 0)),
                   "batch": int(stages["residual"].get("n_batch", 0))},
        # the profile's full-frame site mask only when there are batch sites to check against it
        "batch": batch_section(batch, profile_site_mask(raw, owned_sites(model, learned)) if len(batch.sites) else None),
        "seconds": {"stages_1_2": round(t1 - t0, 3), "stage_3": round(t2 - t1, 3)},
    }
    return cfa_dn, out, changes


def profile_site_mask(raw: RawImage, model) -> np.ndarray | None:
    """(H, W) bool of the profile's hot sites, or None without a profile."""
    if model is None:
        return None
    mask = np.zeros(raw.shape, dtype=bool)
    if model.n_hot:
        mask[model.hot_yx[:, 0], model.hot_yx[:, 1]] = True
    return mask


def _run_residual(cfa_dn, raw, model, options, changes, batch_yx=None) -> tuple[np.ndarray, dict[str, Any]]:
    """Stage 3 through :func:`hotpixels.correct.residual.correct_residual`, when installed.

    ``model`` is the profile's dark model when stage 1 or 2 ran: its sites are then excluded
    (those stages own them). A detector model that is missing or cannot be loaded fails the image
    with :class:`~hotpixels.errors.ModelMissing` (3001) / :class:`~hotpixels.errors.ModelCorrupt` (3002): stage 3 was asked for, and a
    "corrected" file without it would mislead. ``batch_yx`` (N, 2): batch-evidence sites, repaired with the
    single-frame detections in one interpolation call (``extra_sites`` of ``correct_residual``).
    """
    from .residual import correct_residual

    exclude = profile_site_mask(raw, model) if model is not None and model.n_hot else None
    kw = dict(active_area=raw.active_area, white_level_dn=raw.white_level_dn, black_level_dn=raw.black_repeat_dn,
              sensitivity=options.sensitivity, exclude_mask=exclude)
    new, rep = correct_residual(cfa_dn, raw.cfa, extra_sites=batch_yx, in_place=cfa_dn is not raw.cfa_dn, **kw)
    yx = np.asarray(rep.get("sites", np.zeros((0, 2))), dtype=np.int64).reshape(-1, 2)
    changes.add("residual", yx, rep.get("old", np.zeros(0)), rep.get("new", np.zeros(0)), "residual")
    extra = np.asarray(rep.get("extra_sites", np.zeros((0, 2))), dtype=np.int64).reshape(-1, 2)
    changes.add("residual", extra, rep.get("extra_old", np.zeros(0)), rep.get("extra_new", np.zeros(0)), "batch")
    summary = {"ran": True, "n_corrected": int(len(yx)), "n_second_look": int(rep.get("n_second_look", 0)),
               "n_batch": int(len(extra)),
               "candidates": int(rep.get("candidates", 0)),
               "sensitivity": options.sensitivity, "noise": rep.get("noise"),
               "seconds": {k: round(float(v), 3) for k, v in (rep.get("seconds") or {}).items()}}
    return new, summary


def resolve_profile(raw: RawImage, options: CorrectOptions, library, cache: dict | None = None):
    """``(profile or None, info)``: which profile corrects this image and why."""
    cache = cache if cache is not None else {}
    if options.profile is None:
        return None, _no_profile("none", "no profile requested (--profile none)")
    if options.profile == "auto":
        from ..profiles.match import match_profiles

        m = match_profiles(raw, library)
        if not m.get("best"):
            reason = m.get("reason") or "no matching profile"
            if "residual" not in options.stages:  # every stage asked for needs a profile: nothing to do
                raise NoMatchingProfile(
                    f"no profile matches this photo ({reason}): create one from dark frames of this camera, "
                    "or add residual detection, which needs none", path=raw.path, data={"reason": reason})
            return None, _no_profile("auto", reason)
        return auto_profiles(raw, m["candidates"], library, cache)
    else:
        name, why, how = options.profile, "chosen by the user", "named"
    if name not in cache:
        cache[name] = _load_profile(library, name)
    profile = cache[name]
    check_profile_compatible(raw, profile)
    return profile, {"name": name, "how": how, "reason": why, "why": why}


def _no_profile(how: str, why: str) -> dict[str, Any]:
    return {"name": None, "how": how, "reason": why, "why": why}


def auto_profiles(raw: RawImage, candidates: list[dict], library, cache: dict):
    """``--profile auto``: the best dark-frame profile (stage 1 needs darks, so it wins over a
    learned one whatever the scores), joined by the body's best learned profile when there is one
    (its sites the darks lack are interpolated after stage 2); a learned profile alone otherwise."""
    from .learnedhot import CombinedProfile

    best = {}
    for c in candidates:
        best.setdefault(c.get("kind") or "dark", c)
    first = best.get("dark") or best["learned"]
    for c in best.values():
        if c["name"] not in cache:
            cache[c["name"]] = _load_profile(library, c["name"])
        check_profile_compatible(raw, cache[c["name"]])
    why = first.get("explanation", "")
    info = {"name": first["name"], "how": "auto", "reason": why, "why": why, "kind": first.get("kind")}
    if "dark" in best and "learned" in best:
        why = (f"{why}; with learned profile {best['learned']['name']!r} ({best['learned'].get('explanation', '')}) "
               "for the defects the darks lack")
        info.update(learned=best["learned"]["name"], kind="dark+learned", reason=why, why=why)
        return CombinedProfile(cache[first["name"]], cache[best["learned"]["name"]]), info
    return cache[first["name"]], info


def _load_profile(library, name: str):
    """``library.get(name)``. A batch remembers its profiles in ``resolve_profile``'s cache; the
    long-lived worker hands in a library whose ``get`` is cached under its memory budget."""
    return library.get(name)


def check_profile_compatible(raw: RawImage, profile) -> None:
    """Refuse a profile from another body (make, model, serial) or sensor layout."""
    camera = (getattr(profile, "meta", None) or {}).get("camera") or {}
    model = getattr(profile, "model", profile)
    extra = getattr(model, "extra", {}) or {}
    meta = raw.metadata
    problems = []
    for key in ("make", "model", "serial"):
        mine = (getattr(meta, key) or "").strip()
        theirs = (camera.get(key) or extra.get(key) or "").strip()
        if mine and theirs and mine.casefold() != theirs.casefold():
            problems.append(f"{key} {mine!r} vs profile {theirs!r}")
    if problems:
        name = getattr(profile, "name", "this profile")
        raise ProfileIncompatible(
            f"profile {name!r} was made on another camera body and cannot correct this image: " + "; ".join(problems),
            path=raw.path, data={"problems": problems})
    try:
        check_geometry(raw, model)
    except ProfileIncompatible as exc:
        name = getattr(profile, "name", "this profile")
        raise ProfileIncompatible(f"profile {name!r}: {exc.message}", path=raw.path, data=exc.data) from None


def compute_image(raw: RawImage, options: CorrectOptions, library, profiles: dict, reserved: set,
             batch_sites: BatchSites | None = None) -> ImageJob:
    t0 = time.perf_counter()
    if raw.metadata.corrected_by_hotpixels and not options.force:
        raise AlreadyCorrected(f"{Path(raw.path or '?').name} was already corrected by HotPixels; "
                               "correct the original instead (or use --force)", path=raw.path)
    profile, info = resolve_profile(raw, options, library, profiles)
    new, rep, changes = correct_raw(raw, options, profile, info, batch_sites)
    output = output_path(raw.path, options, reserved)
    rep = {"source": raw.path, "output": str(output), "camera": raw.metadata.to_json(), **rep}
    rep["seconds"]["compute"] = round(time.perf_counter() - t0, 3)
    return ImageJob(raw=raw, new_cfa_dn=new, output=output, report=rep, changes=changes)


def output_path(src, options: CorrectOptions, reserved: set | None = None) -> Path:
    """``<stem><suffix>.dng`` (numbered ``_2``, ``_3`` … when taken); never an existing file."""
    src = Path(src)
    folder = Path(options.output_dir) if options.output_dir else src.parent
    if options.output_dir:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DestinationUnwritable(f"cannot create the output folder {folder}: {exc.strerror or exc}",
                                        path=str(folder)) from None
    reserved = reserved if reserved is not None else set()
    check_output_name_length(src, options, folder)
    for k in range(1, MAX_NUMBERED):
        cand = folder / f"{src.stem}{options.suffix}{'' if k == 1 else f'_{k}'}.dng"
        if not cand.exists() and cand not in reserved:
            reserved.add(cand)
            return cand
    raise OutputExists(f"no free output name for {src.name} in {folder}", path=str(src))


def finish_image(job: ImageJob, options: CorrectOptions, cancel) -> dict[str, Any]:
    """Write the DNG (previews rendered meanwhile), then the report, sites file and previews;
    returns the result dict.

    All or nothing: the DNG takes its name only once complete and read back (when another run
    took ``job.output`` meanwhile, the next free number); the side files are named after the name
    it got; when any of them cannot be written (a full disk, a read-only report folder) every
    file of this image written so far, the DNG included, is removed and the error raised.
    """
    from ..dng.writer import write_corrected_dng

    t0 = time.perf_counter()
    stages_ran = ",".join(k for k, v in job.report["stages"].items() if v.get("ran"))
    note = {"Profile": job.report["profile"].get("name") or "", "Stages": stages_ran,
            "Scale": job.report["stages"].get("dark", {}).get("scale")}
    if options.report_dir:
        _report_folder(options)  # a report folder that cannot be made fails before the DNG is written
    with ThreadPoolExecutor(1, thread_name_prefix="hp-previews") as side:
        previews = side.submit(_render_previews, job) if options.previews else None
        side.submit(job.changes.to_csv)  # the sites file's text, made while the DNG is encoded (kept)
        written = write_corrected_dng(job.raw, job.new_cfa_dn, job.output, note=note, cancel=cancel,
                                      alternatives=_numbered(job.raw.path, options, start=job.output))
        job.output = Path(written["path"])
        files: list[Path] = [job.output]
        try:
            rendered = previews.result() if previews is not None else None
        except BaseException:
            job.output.unlink(missing_ok=True)
            raise
    try:
        check_cancel(cancel)
        result = dict(job.report)
        result["output"] = str(job.output)
        result["write"] = written
        result["seconds"]["write"] = round(time.perf_counter() - t0, 3)
        base = _report_base(job, options)
        remove_stale_temps(base.parent)
        regions: list[dict[str, Any]] = []
        if rendered is not None:
            from .previews import save_previews

            regions = save_previews(rendered, base, files)
        first = regions[0] if regions else {}
        result["previews"] = {"before": first.get("before"), "after": first.get("after"), "regions": regions}
        side_files = write_report(base, result, job.changes, files)
    except BaseException:
        for f in files:
            f.unlink(missing_ok=True)
        raise
    return {"path": job.raw.path, "ok": True, **result, "report_path": side_files["report"],
            "sites_file": side_files["sites_file"]}


def _numbered(src, options: CorrectOptions, start: Path):
    """The output names after ``start`` in numbering order (for a name taken meanwhile)."""
    src = Path(src)
    folder = start.parent
    seen = False
    for k in range(1, MAX_NUMBERED):
        cand = folder / f"{src.stem}{options.suffix}{'' if k == 1 else f'_{k}'}.dng"
        if seen:
            yield cand
        seen = seen or cand == start


def _report_folder(options: CorrectOptions) -> Path:
    folder = Path(options.report_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DestinationUnwritable(f"cannot create the report folder {folder}: {exc.strerror or exc}",
                                    path=str(folder)) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DestinationUnwritable(f"cannot write into the report folder {folder}", path=str(folder))
    return folder


def _report_base(job: ImageJob, options: CorrectOptions) -> Path:
    """Where the side files go: named after the output DNG, beside it or in ``report_dir``.

    Lightroom users want only photos in their photo folders, so the worker passes a report folder
    in the user's data directory; the CLI keeps them beside the DNG.
    """
    if not options.report_dir:
        return job.output
    return _report_folder(options) / job.output.name


def _render_previews(job: ImageJob) -> list[dict[str, Any]]:
    from .previews import render_previews

    return render_previews(job.raw, job.new_cfa_dn, job.changes.all_yx())
