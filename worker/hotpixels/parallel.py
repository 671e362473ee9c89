"""Chunks of whole-array work on a few threads: the one pattern stage 3's passes share.

numpy releases the GIL inside its kernels, so cache-sized chunks of one vectorised pass (the
candidate detector's row chunks, the feature patches, the numpy network's batches of candidates)
run side by side on threads without copies. :func:`map_chunks` runs them, in order, on up to
:data:`N_THREADS` threads; too few chunks to be worth a pool run in the calling thread.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

N_THREADS = max(1, min(4, os.cpu_count() or 1))  # threads per pass (the machine's cores, at most 4)
ITEMS_PER_TASK = 8  # tiles per task when every tile of a frame is decoded, encoded or hashed


def map_chunks(one: Callable[[T], R], chunks: Sequence[T], threads: int | None = None, *,
               min_chunks: int = 2) -> list[R]:
    """``[one(c) for c in chunks]``, in order, on up to ``threads`` threads (default :data:`N_THREADS`)
    when there are at least ``min_chunks`` chunks, else in the calling thread. ``one`` must be
    thread-safe or write disjoint parts of its output."""
    n_threads = N_THREADS if threads is None else threads
    if n_threads <= 1 or len(chunks) < max(2, min_chunks):
        return [one(c) for c in chunks]
    with ThreadPoolExecutor(min(n_threads, len(chunks))) as pool:
        return list(pool.map(one, chunks))


def in_groups(items: Sequence[T], size: int = ITEMS_PER_TASK) -> list[Sequence[T]]:
    """``items`` in consecutive groups of ``size`` (the last may be shorter): thread-pool tasks of a
    few tiles each, where one task per 256 x 256 tile costs more in futures than in the work."""
    return [items[i:i + size] for i in range(0, len(items), size)]
