"""Stage 3's passes split whole-array work into chunks on a few threads: the answer is the same,
in the same order, whether the chunks run on one thread or on several."""

import threading

import numpy as np
import pytest

from hotpixels.parallel import map_chunks


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_chunks_come_back_in_order_and_equal_a_plain_loop(threads):
    frame = np.arange(10_000, dtype=np.float32).reshape(100, 100)
    chunks = [(y, y + 7) for y in range(0, 100, 7)]

    got = map_chunks(lambda c: frame[c[0]:c[1]].sum(axis=0), chunks, threads)

    assert len(got) == len(chunks)
    np.testing.assert_array_equal(np.sum(got, axis=0), frame.sum(axis=0))
    for (y0, y1), part in zip(chunks, got):
        np.testing.assert_array_equal(part, frame[y0:y1].sum(axis=0))


def test_several_chunks_share_threads_and_a_few_stay_on_the_calling_thread():
    caller = threading.get_ident()
    seen = map_chunks(lambda _: threading.get_ident(), range(8), 4)
    assert caller not in seen, "with 8 chunks and 4 threads the pool runs them"
    few = map_chunks(lambda _: threading.get_ident(), range(3), 4, min_chunks=4)
    assert few == [caller] * 3, "below min_chunks a pool is not worth its start"
