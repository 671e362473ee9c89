"""The batch scan: each photo read once, stage-3 batch evidence gathered per camera body and layout.

A batch of photos (one night's tripod or tracked frames) holds more evidence than any one photo: a
defect stays on its site while stars and scene move (:mod:`hotpixels.correct.batch`). The scan
reads every photo's tags, groups the photos by body and layout (make, model, serial, raw size,
ActiveArea, CFA pattern and origin), then, one group at a time, decodes each photo of a group of at
least ``MIN_GROUP_FRAMES`` and feeds its raw CFA values (DN as read, before any stage) to that
group's :class:`~hotpixels.correct.batch.BatchEvidence`; the frame is dropped right after. A reader
thread decodes the next photo while the current one is added, so at most two frames and one
group's accumulators are in memory however many photos and groups there are.

A photo that cannot be read (or that HotPixels already corrected, unless ``force``) is left out
of the evidence and listed in ``skipped``; the correction pass meets the same error again. Photos
of one model whose files carry no serial number share a group (they cannot be told apart).

The result, :class:`BatchScan`, holds per photo only its group's defect sites and their figures
(:class:`BatchSites`, a few numbers per site), small enough for the worker to keep between a scan
and the corrections that use it.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..dng.rawimage import RawImage
from ..errors import AlreadyCorrected, HotPixelsError, as_hotpixels_error
from ..progress import ProgressFn, check_cancel, report

MIN_GROUP_FRAMES = 3  # photos of one body and layout that batch evidence needs


@dataclass(frozen=True)
class BatchSites:
    """One photo's share of a batch scan: the defects of its group, full-frame (y, x).

    ``frames``: photos of the scan that could be read; ``group_frames``: photos of this body and
    layout whose frames fed the evidence (0 when there was none, ``reason`` then says why);
    ``shape`` / ``active_area``: the group's layout, so evidence is never applied to a photo of
    another layout (a file replaced since the scan).
    """

    sites: np.ndarray  # (N, 2) int64
    excess_dn: np.ndarray  # (N,) mean excess over the ring mean, DN
    frames_hit: np.ndarray  # (N,) frames where the site stood out
    mean_sigma: np.ndarray  # (N,) that excess in single-frame σ
    frames: int = 0
    group_frames: int = 0
    shape: tuple[int, int] | None = None
    active_area: tuple[int, int, int, int] | None = None
    reason: str | None = None

    @classmethod
    def none(cls, reason: str, frames: int = 0, group_frames: int = 0) -> "BatchSites":
        """No evidence for this photo, and why."""
        z = np.zeros(0)
        return cls(np.zeros((0, 2), np.int64), z, z.astype(np.int64), z, frames, group_frames, reason=reason)

    @classmethod
    def from_result(cls, result: dict, shape, active_area, group_frames: int) -> "BatchSites":
        """From :meth:`hotpixels.correct.batch.BatchEvidence.finish`'s result."""
        return cls(np.asarray(result["sites"], np.int64).reshape(-1, 2), np.asarray(result["excess_dn"], np.float64),
                   np.asarray(result["frames_hit"], np.int64), np.asarray(result["mean_sigma"], np.float64),
                   group_frames=group_frames, shape=tuple(shape), active_area=tuple(int(v) for v in active_area))

    def fits(self, raw: RawImage) -> bool:
        """The evidence was gathered on frames of this photo's size and ActiveArea."""
        return self.shape == tuple(raw.shape) and self.active_area == tuple(int(v) for v in raw.active_area)

    def proposals(self, known_mask: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Sites to add to a profile: those ``known_mask`` (H, W bool, the profile's sites) lacks."""
        if not len(self.sites):
            return []
        from .batch import propose_profile_additions  # on first use: not at start-up

        return propose_profile_additions({"sites": self.sites, "excess_dn": self.excess_dn,
                                          "frames_hit": self.frames_hit, "mean_sigma": self.mean_sigma}, known_mask)


@dataclass
class BatchScan:
    """What a scan found: per photo its :class:`BatchSites`, per group a summary, and the skipped photos.

    ``groups``: ``[{"paths", "frames", "sites", "evidence"}]`` in order of first appearance
    (``frames``: photos whose frames fed the evidence, 0 for a group of fewer than
    ``MIN_GROUP_FRAMES``; ``evidence``: the group's :class:`BatchSites`); ``skipped``: ``[(path,
    HotPixelsError)]``; ``frames``: photos that could be read. Paths in ``groups`` and ``skipped``
    are spelled as the caller gave them; ``by_path`` is keyed by absolute path.
    """

    by_path: dict[str, BatchSites] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, HotPixelsError]] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0

    def sites_for(self, path) -> BatchSites | None:
        """The evidence for ``path`` (any spelling of it), or None when it was not in the scan."""
        return self.by_path.get(_key(path))


def group_key(raw: RawImage) -> tuple:
    """Body and layout: frames with the same key share their defects' sites."""
    m = raw.metadata

    def norm(s: str | None) -> str:
        return (s or "").strip().casefold()

    return (norm(m.make), norm(m.model), norm(m.serial), tuple(raw.shape), tuple(int(v) for v in raw.active_area),
            raw.cfa.pattern, tuple(raw.cfa.origin_yx))


def scan_batch(paths: Sequence, *, tracked: bool = False, force: bool = False, progress: ProgressFn | None = None,
               cancel=None, detector=None) -> BatchScan:
    """Read ``paths`` once and gather each group's batch evidence (see the module docstring).

    ``tracked``: the frames were taken on a tracking mount (stars stay on their sites), which adds
    the single-site test of :mod:`hotpixels.correct.batch`. Progress ``scanning i/n`` over the
    photos decoded; cancel between photos (:class:`~hotpixels.errors.Cancelled`). A missing or
    broken stage-3 model raises its error (:class:`~hotpixels.errors.ModelMissing` / ``ModelCorrupt``).
    """
    t0 = time.perf_counter()
    spelled: dict[str, str] = {}  # the caller's spelling of each photo, for what is handed back
    for p in paths:
        spelled.setdefault(_key(p), os.fspath(p))
    unique = list(spelled)
    scan = BatchScan()
    groups: dict[tuple, list[str]] = {}
    for p in unique:
        check_cancel(cancel)
        try:
            tags = _read(p, pixels=False)
            if tags.metadata.corrected_by_hotpixels and not force:
                raise AlreadyCorrected(f"{Path(p).name} was already corrected by HotPixels; "
                                       "it does not count as evidence", path=p)
        except Exception as exc:  # noqa: BLE001 - an unreadable photo is left out, not fatal
            scan.skipped.append((spelled[p], as_hotpixels_error(exc)))
            continue
        groups.setdefault(group_key(tags), []).append(p)
    todo = [p for members in groups.values() if len(members) >= MIN_GROUP_FRAMES for p in members]
    stream = _frames(todo, progress, cancel)
    try:
        found = [_scan_group(members, stream, scan, tracked, detector, spelled) for members in groups.values()]
    finally:
        stream.close()  # after a cancel or error: waits for the read in flight
    scan.frames = len(unique) - len(scan.skipped)
    for members, (used, sites) in zip(groups.values(), found):
        scan.groups.append({"paths": [spelled[p] for p in members], "frames": len(used), "sites": int(len(sites.sites)),
                            "evidence": sites})
        for p in members:
            scan.by_path[p] = replace(sites, frames=scan.frames)
    report(progress, len(todo), len(todo), "scanned")
    scan.seconds = round(time.perf_counter() - t0, 3)
    return scan


def _scan_group(members: list[str], stream, scan: BatchScan, tracked: bool, detector,
                spelled: dict[str, str]) -> tuple[list[str], BatchSites]:
    """One group: the paths whose frames fed its evidence, and its :class:`BatchSites`."""
    if len(members) < MIN_GROUP_FRAMES:
        return [], BatchSites.none(f"{len(members)} photo(s) of this body and layout; batch evidence needs "
                                   f"at least {MIN_GROUP_FRAMES}")
    from .batch import BatchEvidence  # on first use: not at start-up

    ev, used, layout = None, [], None
    for _ in members:
        path, raw = next(stream)
        if isinstance(raw, HotPixelsError):
            scan.skipped.append((spelled[path], raw))
            continue
        if ev is None:
            ev = BatchEvidence(raw.cfa, raw.active_area, raw.shape, black_level_dn=raw.black_repeat_dn,
                               white_level_dn=raw.white_level_dn, tracked=tracked, detector=detector)
            layout = (raw.shape, raw.active_area)
        ev.add(raw.cfa_dn)
        used.append(path)
        del raw
    if ev is None or len(used) < MIN_GROUP_FRAMES:
        return used, BatchSites.none(f"only {len(used)} photo(s) of this body and layout could be read; batch "
                                     f"evidence needs at least {MIN_GROUP_FRAMES}")
    return used, BatchSites.from_result(ev.finish(), layout[0], layout[1], group_frames=len(used))


def _frames(paths: list[str], progress, cancel):
    """Yield ``(path, RawImage or HotPixelsError)`` in order; a reader thread decodes the next photo
    while the caller adds the current one."""
    n = len(paths)
    with ThreadPoolExecutor(1, thread_name_prefix="hp-scan") as reader:
        reading = reader.submit(_read_or_error, paths[0]) if paths else None
        for i, path in enumerate(paths):
            check_cancel(cancel)
            report(progress, i, n, f"scanning {i + 1}/{n}: {Path(path).name}")
            current, reading = reading, (reader.submit(_read_or_error, paths[i + 1]) if i + 1 < n else None)
            yield path, current.result()


def _read(path: str, pixels: bool = True) -> RawImage:
    from ..dng.reader import read_dng

    return read_dng(path, metadata=False, pixels=pixels)


def _read_or_error(path: str) -> RawImage | HotPixelsError:
    try:
        return _read(path)
    except Exception as exc:  # noqa: BLE001 - reported as a skipped photo
        return as_hotpixels_error(exc)


def _key(path) -> str:
    return os.path.abspath(os.fspath(path))
