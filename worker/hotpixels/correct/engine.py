"""The batch engine: correct a group of DNGs, yielding each image's result as soon as it is written.

One engine for every caller: ``hotpixels correct`` (the CLI), the worker's ``image.correct`` (which
turns each yielded result into a ``$/result`` notification) and, through the worker, the Lightroom
plug-in, which sends a group of photos as one request.

:func:`correct_stream` is a generator of ``(index, result)``: ``index`` into ``paths``, ``result``
in the one shape of :mod:`hotpixels.correct.pipeline` (``ok: true`` with the outputs, or
``ok: false`` with the error table's ``{code, name, message, ...}``). Every index is yielded exactly
once, in order. :func:`correct_files` collects them into a list.

Pipeline (bounded memory)
    Three threads overlap the work: a reader decodes image i+1, the engine thread computes image i
    (numpy, the codecs and torch release the GIL), a writer encodes image i-1 and writes its
    report and previews; image i goes to the writer only when image i-1 is written, so at most
    three images are in memory however long the batch. The calling thread only waits for results.
    Image 1 is computed only once image 0 is written: the first result (what a user watches for)
    comes as fast as a single image's, for the cost of one computation not overlapped.

Batch evidence
    With ``evidence`` (a scan held by the worker since ``image.scanBatch``) stage 3 uses it; without,
    the engine scans first when the options call for it (:func:`~hotpixels.correct.pipeline.batch_scan_for`;
    progress ``done`` stays 0 and the message says ``scanning i/n: …``).

Progress (one unit everywhere)
    ``progress(done, total, message)`` counts thousandths of the request: ``total = 1000 × images``;
    image i reports ``1000 i`` (reading), ``+333`` (correcting), ``+667`` (writing) and ``1000 (i+1)``
    once written; ``done`` never goes back, and reaches ``1000 k`` only once the first k images are
    final (an image computed while the previous one is still written counts up to ``1000 i − 1``).
    With several images ``message`` starts with ``"image i/n: "``.

Cancel
    ``cancel`` (the whole request) stops at the next check: the image in flight leaves nothing,
    images already yielded keep their files, and :class:`~hotpixels.errors.Cancelled` is raised.
    ``image_cancelled(path)`` cancels one image: it is skipped (or stopped and its partial output
    removed) and its result is ``ok: false`` with the ``cancelled`` error (-32800); the others go on.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import Cancelled
from ..progress import ProgressFn, check_cancel
from .batchscan import BatchScan
from .pipeline import (
    CorrectOptions, ImageJob, batch_scan_for, batch_sites_for, compute_image, failure_result, finish_image,
    open_library, read_image,
)

UNITS_PER_IMAGE = 1000
_END = object()


def correct_stream(paths: Sequence, options: CorrectOptions | None = None, *, library=None,
                   progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                   evidence: BatchScan | str | None = None, image_cancelled: Callable[[str], bool] | None = None,
                   param: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Correct ``paths``, yielding ``(index, result)`` as each image is written (see the module doc).

    ``evidence``: a batch scan to use (or the reason there is none); None: scan when the options
    call for it. ``param``: the request parameter or argument that named the paths (a missing file's
    error names it). Closing the generator early stops the work like a cancel.
    """
    options = (options or CorrectOptions()).validated()
    run = _Run([os.fspath(p) for p in paths], options, library if library is not None else open_library(options),
               progress, cancel, evidence, image_cancelled, param)
    if not run.paths:
        return
    thread = threading.Thread(target=run.drive, name="hp-engine", daemon=True)
    thread.start()
    ended = False
    try:
        while True:
            item = run.results.get()
            if item is _END:
                ended = True
                break
            if isinstance(item, BaseException):
                ended = True
                raise item
            yield item
    finally:
        if not ended:
            run.halt.set()
        thread.join()
    run.progress.done_all()


def correct_files(paths: Sequence, options: CorrectOptions | None = None, **kw: Any) -> list[dict[str, Any]]:
    """Correct many DNGs; one result dict per path, in order (``ok: False`` with ``error`` on failure).

    Keyword arguments as :func:`correct_stream`. Raises :class:`Cancelled` when cancelled."""
    results: list[dict[str, Any]] = [{} for _ in paths]
    for i, result in correct_stream(paths, options, **kw):
        results[i] = result
    return results


class AnyCancel:
    """Set when any of its events is (duck-types ``threading.Event.is_set`` for ``check_cancel`` and
    the writer), plus an optional per-image test."""

    def __init__(self, *events: Any, test: Callable[[], bool] | None = None):
        self.events = [e for e in events if e is not None]
        self.test = test

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events) or (self.test is not None and bool(self.test()))


class _Progress:
    """Thousandths of the request, never going back, from the engine and writer threads alike.

    ``done`` reaches ``1000 k`` only when the first k images are final (their results handed
    over): while image i−1 is still being written, image i's steps count at most up to
    ``1000 i − 1``, so a client may read ``done // 1000`` as the number of finished images.
    """

    def __init__(self, fn: ProgressFn | None, n: int):
        self.fn, self.n = fn, n
        self.total = UNITS_PER_IMAGE * n
        self.done = 0
        self.final = 0  # images handed over (in order)
        self.lock = threading.Lock()

    def image(self, index: int, thousandths: int, message: str) -> None:
        """Image ``index`` reached ``thousandths`` of its work (1000: final, reported in order)."""
        with self.lock:
            if thousandths >= UNITS_PER_IMAGE:
                self.final = index + 1
            reached = min(UNITS_PER_IMAGE * index + thousandths, UNITS_PER_IMAGE * self.final + UNITS_PER_IMAGE - 1)
            self.done = max(self.done, reached)
            if self.fn is not None:
                prefix = f"image {index + 1}/{self.n}: " if self.n > 1 else ""
                self.fn(self.done, self.total, prefix + message)

    def scanning(self, done: int, of: int, message: str = "") -> None:
        """The batch scan's progress: ``done`` stays where it is, the message says how far it is."""
        if self.fn is not None:
            with self.lock:
                self.fn(self.done, self.total, message)

    def done_all(self) -> None:
        if self.fn is not None:
            with self.lock:
                self.done = self.total
                self.fn(self.total, self.total, "done")


class _Run:
    """One call of :func:`correct_stream`: the pipeline's state, driven on the engine thread."""

    def __init__(self, paths: list[str], options: CorrectOptions, library: Any, progress: ProgressFn | None,
                 cancel: threading.Event | None, evidence: Any, image_cancelled: Callable[[str], bool] | None,
                 param: str | None):
        self.paths, self.options, self.library = paths, options, library
        self.progress = _Progress(progress, len(paths))
        self.halt = threading.Event()  # the consumer went away
        self.whole = AnyCancel(cancel, self.halt)
        self.evidence = evidence
        self.image_cancelled = image_cancelled
        self.param = param
        self.results: queue.Queue = queue.Queue()
        self.profiles: dict[str, Any] = {}
        self.reserved: set[Path] = set()

    def drive(self) -> None:
        try:
            self._pipeline()
            self.results.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self.results.put(exc)

    def cancel_of(self, path: str) -> AnyCancel:
        """The cancel one image obeys: the whole request's, or its own."""
        test = (lambda: self.image_cancelled(path)) if self.image_cancelled is not None else None
        return AnyCancel(self.whole, test=test)

    def _pipeline(self) -> None:
        paths, n = self.paths, len(self.paths)
        scan = self.evidence
        if scan is None:
            scan = batch_scan_for(paths, self.options, progress=self.progress.scanning, cancel=self.whole)
        with ThreadPoolExecutor(1, thread_name_prefix="hp-read") as reader, \
                ThreadPoolExecutor(1, thread_name_prefix="hp-write") as writer:
            last: Future | None = None  # the writer's last task: it runs them in order
            before_last: Future | None = None
            reading: Future | None = reader.submit(read_image, paths[0], self.param)
            try:
                for i, path in enumerate(paths):
                    if i == 1:
                        _wait(last)  # the first result first: image 0's write gets the cores to itself
                    check_cancel(self.whole)
                    current, reading = reading, (reader.submit(read_image, paths[i + 1], self.param)
                                                 if i + 1 < n else None)
                    own = self.cancel_of(path)
                    try:
                        job = self._compute(i, path, current, own, scan)
                    except Exception as exc:  # noqa: BLE001 - one bad image must not stop the batch
                        outcome = self.failure(path, exc)
                        before_last, last = last, writer.submit(self.post, i, outcome)
                        continue
                    finally:
                        current = None
                    self.progress.image(i, 667, f"writing {job.output.name}")
                    _wait(before_last)  # at most two images wait for the writer
                    before_last, last = last, writer.submit(self.write, i, job, own)
                    del job
            finally:
                if reading is not None:
                    reading.cancel()
                _wait(last)

    def _compute(self, i: int, path: str, current: Future, own: AnyCancel, scan: Any) -> ImageJob:
        name = Path(path).name
        self.progress.image(i, 0, f"reading {name}")
        check_cancel(own)
        raw = current.result()
        check_cancel(own)
        self.progress.image(i, 333, f"correcting {name}")
        job = compute_image(raw, self.options, self.library, self.profiles, self.reserved, batch_sites_for(scan, path))
        check_cancel(own)
        return job

    def write(self, i: int, job: ImageJob, own: AnyCancel) -> None:
        """On the writer thread: write image i and post its result (before the task ends, so that a
        finished image's result always reaches the consumer ahead of a later cancel)."""
        try:
            result = finish_image(job, self.options, own)
        except Exception as exc:  # noqa: BLE001
            result = self.failure(self.paths[i], exc)
        self.post(i, result)

    def post(self, i: int, result: dict[str, Any]) -> None:
        self.results.put((i, result))
        self.progress.image(i, UNITS_PER_IMAGE, "written" if result.get("ok") else "failed")

    def failure(self, path: str, exc: BaseException) -> dict[str, Any]:
        """The failed image's result; a cancel of the whole request is raised on instead."""
        if isinstance(exc, Cancelled) and self.whole.is_set():
            raise exc
        if isinstance(exc, Cancelled):
            exc = Cancelled("cancelled by the user: this photo was not corrected", path=path)
        return failure_result(path, exc)


def _wait(task: Future | None) -> None:
    if task is not None:
        task.result()
