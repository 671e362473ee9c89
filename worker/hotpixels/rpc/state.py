"""What the worker keeps warm between requests: profile libraries, a profile cache, the model.

* Profiles are cached under a memory budget, least recently used first out, counted in bytes of
  the numpy arrays they hold (``HOTPIXELS_PROFILE_CACHE_MB``, default 512 MB). A cached profile is
  keyed by its library folder, name, and the profile file's size and mtime, so a file changed by the
  CLI behind the worker's back is re-read.
* The model (stage 3's CNN) loads once, on first need or in the background after ``worker.hello``
  (numpy on the CPU: no torch; hello must answer in milliseconds whatever the model costs).
* Batch scans (``image.scanBatch``): the last ``BATCH_KEEP`` results, each under an unguessable id,
  holding per photo only its group's defect sites (a few numbers per site), for the
  ``image.correct`` calls that name the id.
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import sys
import threading
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

PROFILE_CACHE_ENV = "HOTPIXELS_PROFILE_CACHE_MB"
DEFAULT_PROFILE_CACHE_MB = 512
BATCH_KEEP = 8


def array_bytes(obj: Any, _depth: int = 0, _seen: set[int] | None = None) -> int:
    """Bytes held by numpy arrays reachable from ``obj`` (attributes, dicts, lists; 4 levels deep)."""
    seen = _seen if _seen is not None else set()
    if id(obj) in seen or _depth > 4:
        return 0
    seen.add(id(obj))
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int) and hasattr(obj, "dtype"):
        return nbytes
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, (list, tuple)):
        children = obj
    elif hasattr(obj, "__dict__"):
        children = vars(obj).values()
    else:
        return 0
    return sum(array_bytes(c, _depth + 1, seen) for c in children)


class ProfileCache:
    """LRU of loaded profiles, bounded by the bytes of their arrays."""

    def __init__(self, budget_bytes: int | None = None):
        if budget_bytes is None:
            mb = float(os.environ.get(PROFILE_CACHE_ENV, DEFAULT_PROFILE_CACHE_MB))
            budget_bytes = int(mb * 1024 * 1024)
        self.budget_bytes = budget_bytes
        self._items: collections.OrderedDict[tuple, tuple[Any, int]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(n for _, n in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key][0]
        value = load()
        size = array_bytes(value)
        with self._lock:
            self.misses += 1
            if size <= self.budget_bytes:  # one profile larger than the budget is used, not kept
                self._items[key] = (value, size)
                self._items.move_to_end(key)
                while sum(n for _, n in self._items.values()) > self.budget_bytes:
                    self._items.popitem(last=False)
        return value

    def invalidate(self, library_dir: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == library_dir]:
                del self._items[key]

    def stats(self) -> dict[str, Any]:
        return {"profiles": len(self._items), "bytes": self.used_bytes, "budget_bytes": self.budget_bytes,
                "hits": self.hits, "misses": self.misses}


def cached_library_class() -> type:
    """A :class:`~hotpixels.profiles.library.ProfileLibrary` subclass whose ``get`` goes through a
    :class:`ProfileCache` (made on first use: importing the library module pulls in numpy)."""
    global _CACHED_LIBRARY_CLASS
    if _CACHED_LIBRARY_CLASS is None:
        from ..profiles.library import ProfileLibrary

        class CachedProfileLibrary(ProfileLibrary):
            """A library whose loaded profiles stay in the worker's cache (keyed by file size+mtime)."""

            def __init__(self, directory: str, cache: ProfileCache):
                super().__init__(directory)
                self.cache = cache

            def get(self, name: str) -> Any:
                path = Path(self.path_of(name))
                try:
                    st = path.stat()
                except OSError:
                    return super().get(name)  # let the loader raise the proper error
                key = (str(self.dir), str(path), st.st_size, st.st_mtime_ns)
                return self.cache.get(key, lambda: super(CachedProfileLibrary, self).get(name))

            def delete(self, name: str) -> Any:
                try:
                    return super().delete(name)
                finally:
                    self.cache.invalidate(str(self.dir))

            def rename(self, old: str, new: str) -> Any:
                try:
                    return super().rename(old, new)
                finally:
                    self.cache.invalidate(str(self.dir))

        _CACHED_LIBRARY_CLASS = CachedProfileLibrary
    return _CACHED_LIBRARY_CLASS


_CACHED_LIBRARY_CLASS: type | None = None


class ModelHolder:
    """Stage 3's detector: loaded once, in the background on request, never imported eagerly."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.detector: Any = None
        self.error: BaseException | None = None

    def preload(self) -> None:
        """Start loading in a daemon thread (no-op when loaded or loading)."""
        with self._lock:
            if self.detector is not None or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._load_quietly, name="model-preload", daemon=True)
            self._thread.start()

    def _load_quietly(self) -> None:
        try:
            self.get()
        except Exception as exc:  # noqa: BLE001 - reported by hello and by the first correction
            log.warning("model preload failed: %s", exc)

    def get(self) -> Any:
        """The loaded detector (loads it on first call; raises the model's HotPixelsError)."""
        if self.detector is not None:
            return self.detector
        from ..model.load import get_detector

        try:
            self.detector = get_detector()
            self.error = None
        except Exception as exc:
            self.error = exc
            raise
        return self.detector

    @property
    def loading(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def info(self) -> dict[str, Any]:
        """Name, file, sha256 and parameters of the model, without importing torch."""
        from . import modelinfo

        return modelinfo.describe(self.detector, loading=self.loading, error=self.error)

    def device(self) -> str:
        """Where stage 3 runs: the loaded detector's device; before it loads, ``"cpu"`` (numpy) unless
        ``HOTPIXELS_DEVICE`` asks for a GPU and torch, already imported, has one (hello imports no torch)."""
        if self.detector is not None:
            dev = getattr(self.detector, "device", None)
            if dev is not None:
                return str(dev)
        from ..model.load import DEVICE_ENV

        if os.environ.get(DEVICE_ENV, "cpu") != "cpu" and "torch" in sys.modules:
            torch = sys.modules["torch"]
            try:
                if torch.cuda.is_available():
                    return "cuda:0"
            except Exception:  # noqa: BLE001
                pass
        return "cpu"


class BatchStore:
    """The last ``keep`` batch scans, oldest out first, each under an id a client cannot guess."""

    def __init__(self, keep: int = BATCH_KEEP):
        self.keep = keep
        self._items: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def put(self, scan: Any) -> str:
        """Hold ``scan``; returns its new id (128 random bits, URL-safe text)."""
        batch_id = secrets.token_urlsafe(16)
        with self._lock:
            self._items[batch_id] = scan
            while len(self._items) > self.keep:
                self._items.popitem(last=False)
        return batch_id

    def get(self, batch_id: str) -> Any | None:
        """The scan held under ``batch_id``, or None when unknown or dropped."""
        with self._lock:
            return self._items.get(batch_id)

    def __len__(self) -> int:
        return len(self._items)


def _real(folder: str | os.PathLike) -> str:
    """The absolute, symlink-free form of a folder path; never raises (``Path.resolve`` raises on
    a symlink loop, which a hostile ``library`` or ``HOTPIXELS_LIBRARY`` can hold)."""
    return os.path.realpath(os.path.expanduser(os.fspath(folder)))


class WorkerState:
    """Long-lived state shared by every method of one worker process."""

    def __init__(self, default_library: str | None = None, profile_cache_bytes: int | None = None):
        self.default_library = default_library
        self.profile_cache = ProfileCache(profile_cache_bytes)
        self.model = ModelHolder()
        self.batches = BatchStore()
        self._libraries: dict[str, Any] = {}
        self._lock = threading.Lock()

    def library_dir(self, library: str | None) -> str:
        """The folder a request's ``library`` parameter means (default: the configured one)."""
        if library:
            return _real(library)
        if self.default_library:
            return _real(self.default_library)
        from ..userdirs import default_library_dir

        return _real(default_library_dir())

    def library(self, library: str | None = None) -> Any:
        """The profile library (with cached ``get``) for a request's ``library`` parameter."""
        directory = self.library_dir(library)
        with self._lock:
            if directory not in self._libraries:
                self._libraries[directory] = cached_library_class()(directory, self.profile_cache)
            return self._libraries[directory]

    def close(self) -> None:
        """Release external processes (exiftool) before exit."""
        mod = sys.modules.get("hotpixels.dng.metadata")
        closer = getattr(mod, "close_exiftool", None) if mod is not None else None
        if callable(closer):
            try:
                closer()
            except Exception:  # noqa: BLE001
                pass
