"""Lossless JPEG encoder (ITU-T T.81 process 14, SOF3) in whole-array numpy.

Why our own: the writer re-encodes every changed raw tile, and on a night photo with a dark
profile that is every tile. libjpeg-turbo's lossless path (``imagecodecs.jpeg8_encode(lossless=
True)``) has no SIMD and makes two passes for its optimal Huffman table: ≈ 2.2 ms per 256 × 256
tile, ≈ 0.9 CPU-s per 24 MP photo, six times its decode and the largest single cost of a
correction. This encoder does the same work as a handful of array passes per tile (≈ 0.9 ms; two
tiles share each pass, and it runs on the writer's threads because numpy releases the GIL):

1. prediction differences with the frame's predictor (1–7), modulo 2^16 as T.81 H.1.2.1 defines
   them (so the arithmetic is uint16 wrap-around for predictors 1–3);
2. each difference's category SSSS (its bit length; 16 only for −32768, with no extra bits) and
   its extra bits (the low SSSS bits of the difference, or of difference − 1 when negative), both
   from 65,536-entry tables indexed by the difference's bit pattern;
3. an optimal Huffman table for the categories (code lengths limited to 16, no all-ones code:
   libjpeg's ``jpeg_gen_optimal_table``), built from every seventh sample's category plus one
   count for each category up to the largest present, so every category that occurs has a code;
4. bit packing without a per-sample loop: codes are joined in pairs (≤ 62 bits), their bit
   offsets are a prefix sum, and each pair is split into the two 64-bit words it touches and
   OR-reduced per word (bits of different codes never overlap, so OR is exact);
5. 0xFF bytes stuffed with 0x00, the last byte padded with 1 bits.

Output: SOI, one DHT (table 0, used by every component), SOF3, SOS (point transform 0), the
entropy-coded segment, EOI: what every DNG reader decodes (Adobe's DNG SDK, LibRaw, rawspeed,
libjpeg-turbo). The writer decodes each stream again right after encoding it
(:func:`hotpixels.dng.writer._encode_checked`), so a fault here can never write wrong pixels.
"""

from __future__ import annotations

import functools
import heapq
import threading

import numpy as np

_U64 = np.uint64
BATCH_SAMPLES = 1 << 17  # samples worked together (two 256 x 256 tiles): most of the gain, ~6 MB of buffers


@functools.cache
def category_and_extra() -> np.ndarray:
    """For each 16-bit difference pattern (two's complement, −32768..32767): its extra bits in the
    low 16 bits and its category SSSS above them (uint32), so one gather gives both. Made on the
    first encode, not at import (worker start-up)."""
    d = np.arange(65536, dtype=np.int64)
    d[d >= 32768] -= 65536
    magnitude = np.abs(d)
    ssss = np.zeros(65536, dtype=np.int64)
    nonzero = magnitude > 0
    ssss[nonzero] = np.floor(np.log2(magnitude[nonzero])).astype(np.int64) + 1
    extra = np.where(d < 0, d - 1, d) & ((1 << ssss) - 1)
    extra[ssss == 16] = 0  # −32768: category 16 carries no extra bits (T.81 H.1.2.2)
    return (extra | (ssss << 16)).astype(np.uint32)



def encode_lossless_jpeg(frame: np.ndarray, predictor: int = 1, precision: int = 16) -> bytes:
    """One lossless JPEG stream of ``frame`` ((height, width) or (height, width, components)
    unsigned samples below 2**precision) with the given predictor (1–7) and point transform 0."""
    if frame.ndim == 2:
        frame = frame[:, :, None]
    return encode_lossless_jpegs(frame[None], predictor, precision)[0]


def encode_lossless_jpegs(frames: np.ndarray, predictor: int = 1, precision: int = 16) -> list[bytes]:
    """One stream per frame of ``frames`` ((count, height, width, components)), each exactly what
    :func:`encode_lossless_jpeg` makes of it: the frames are worked together, so a pass of numpy
    runs once for a few tiles (fewer calls, fewer hand-overs of the GIL between the writer's threads)."""
    count, height, width, components = frames.shape
    if not 1 <= predictor <= 7 or not 2 <= precision <= 16 or not 1 <= components <= 4:
        raise ValueError(f"lossless JPEG: predictor {predictor}, precision {precision}, {components} components")
    n = height * width * components
    per_call = max(1, BATCH_SAMPLES // max(n, 1))  # the work buffers stay a few MB a thread
    if count > per_call:
        return [s for k in range(0, count, per_call)
                for s in encode_lossless_jpegs(frames[k:k + per_call], predictor, precision)]
    step = n + (n & 1)  # samples per frame in the work arrays: an odd count gets a last word of 0 bits
    work = _scratch(count * step)
    diffs = prediction_differences(np.ascontiguousarray(frames, dtype=np.uint16), predictor, precision)
    index = work.index[:count * step].reshape(count, step)
    index[:, n:] = 0
    np.copyto(index[:, :n], diffs)  # gathers take intp indices: converted once, into a reused buffer
    looked_up = category_and_extra().take(index, out=work.u32[:count * step].reshape(count, step), mode="clip")
    tops = (looked_up.max(axis=1) >> 16).tolist()  # each frame's largest category
    np.right_shift(looked_up, 16, out=index)  # the categories, again as gather indices
    tables = [huffman_table(c) for c in _category_counts(index[:, :n], tops)]
    index += np.arange(0, 17 * count, 17)[:, None]  # into the frames' code tables laid end to end
    code_words = np.concatenate([_code_words(bits, huffval) for bits, huffval in tables])
    word_and_length = code_words.take(index, out=work.u64a[:count * step].reshape(count, step), mode="clip")
    words = np.right_shift(word_and_length, _U64(8), out=work.u64b[:count * step].reshape(count, step))
    np.bitwise_and(looked_up, 0xFFFF, out=looked_up)
    np.bitwise_or(words, looked_up, out=words)
    lengths = np.bitwise_and(word_and_length, _U64(0xFF), out=word_and_length)
    if step > n:
        words[:, n:] = 0
        lengths[:, n:] = 0
    entropies = _pack_bits(words.reshape(-1), lengths.reshape(-1), count, work)
    return [_headers(height, width, components, predictor, precision, bits, huffval) + entropy + b"\xff\xd9"
            for (bits, huffval), entropy in zip(tables, entropies)]


class _Scratch:
    """Reused work arrays for frames of up to ``capacity`` samples (one set per thread): a 24 MP
    photo is 384 tiles, and fresh ~0.5 MB temporaries per pass cost the kernel's page clearing and
    cache misses more than the passes themselves."""

    def __init__(self, capacity: int):
        half = capacity // 2 + 1
        self.capacity = capacity
        self.index = np.empty(capacity, dtype=np.intp)
        self.u32 = np.empty(capacity, dtype=np.uint32)
        self.u64a = np.empty(capacity, dtype=_U64)
        self.u64b = np.empty(capacity, dtype=_U64)
        self.pairs = [np.empty(half, dtype=_U64) for _ in range(5)]


_THREAD = threading.local()


def _scratch(n: int) -> _Scratch:
    work = getattr(_THREAD, "scratch", None)
    if work is None or work.capacity < n + 1:  # + 1: room for the pad word of an odd count
        work = _THREAD.scratch = _Scratch(max(n + 1, 1 << 16))
    return work


def prediction_differences(frames: np.ndarray, predictor: int, precision: int) -> np.ndarray:
    """(count, samples) uint16 differences (sample − prediction) mod 2^16 of ``frames`` ((count,
    height, width, components)) in scan order (row, column, component), T.81 H.1.2.1: the first
    sample is predicted by 2^(P−1), the rest of the first row by the sample on the left, the first
    column by the sample above, the others by ``predictor``.

    Worked on rows of width × components samples, where the same component one column to the left
    is ``components`` samples back: long contiguous rows instead of an innermost axis of 2."""
    count, height, width, c = frames.shape
    f = frames.reshape(count, height, width * c)
    d = np.empty_like(f)
    d[:, 0, :c] = f[:, 0, :c] - np.uint16(1 << (precision - 1))
    np.subtract(f[:, 0, c:], f[:, 0, :-c], out=d[:, 0, c:])
    np.subtract(f[:, 1:, :c], f[:, :-1, :c], out=d[:, 1:, :c])
    x, ra, rb, rc = f[:, 1:, c:], f[:, 1:, :-c], f[:, :-1, c:], f[:, :-1, :-c]
    if predictor in (1, 2, 3):
        np.subtract(x, (ra, rb, rc)[predictor - 1], out=d[:, 1:, c:])
    else:
        a, b, cc = ra.astype(np.int32), rb.astype(np.int32), rc.astype(np.int32)
        if predictor == 4:
            p = a + b - cc
        elif predictor == 5:
            p = a + ((b - cc) >> 1)
        elif predictor == 6:
            p = b + ((a - cc) >> 1)
        else:
            p = (a + b) >> 1
        d[:, 1:, c:] = (x.astype(np.int32) - p).astype(np.uint16)
    return d.reshape(count, -1)


def _category_counts(categories: np.ndarray, tops: list[int]) -> list[list[int]]:
    """Per frame (a row of ``categories``), counts for its Huffman table: every seventh sample
    (enough for near-optimal lengths; an odd step visits every component and column), plus one
    for each category up to the frame's largest (``tops``): a category must never lack a code."""
    count = len(categories)
    keys = categories[:, ::7] + np.arange(0, 17 * count, 17)[:, None]
    counts = np.bincount(keys.ravel(), minlength=17 * count).reshape(count, 17) + 1
    return [row[: top + 1] for row, top in zip(counts.tolist(), tops)]


def huffman_table(counts: list[int]) -> tuple[list[int], list[int]]:
    """(BITS[1..16], HUFFVAL) of an optimal prefix code for symbols 0..len(counts)−1 with the given
    counts (every count > 0): code lengths at most 16 and no all-ones code word (T.81 K.2/K.3, as
    libjpeg builds it: a reserved symbol of count 1 takes the all-ones code and is dropped)."""
    n = len(counts) + 1  # the reserved symbol is the last one
    lengths = [0] * n
    heap = [(c, s, [s]) for s, c in enumerate([*counts, 1])]
    heapq.heapify(heap)
    while len(heap) > 1:
        c1, k1, members1 = heapq.heappop(heap)
        c2, k2, members2 = heapq.heappop(heap)
        for s in members1 + members2:
            lengths[s] += 1
        heapq.heappush(heap, (c1 + c2, min(k1, k2), members1 + members2))
    per_length = [0] * 33
    for length in lengths:
        per_length[length] += 1
    for length in range(32, 16, -1):  # K.3 Adjust_BITS: no code longer than 16 bits
        while per_length[length] > 0:
            j = length - 2
            while per_length[j] == 0:
                j -= 1
            per_length[length] -= 2
            per_length[length - 1] += 1
            per_length[j + 1] += 2
            per_length[j] -= 1
    longest = max(i for i in range(17) if per_length[i])
    per_length[longest] -= 1  # drop the reserved symbol's (all-ones) code
    # symbols by code length (shortest first), then value; the reserved one (longest) is left out
    order = sorted(range(n - 1), key=lambda s: (lengths[s], s))
    return per_length[1:17], order


def _code_words(bits: list[int], huffval: list[int]) -> np.ndarray:
    """Per category (uint64): its canonical code shifted left by its count of extra bits, times
    256, plus the total length in bits (code + extra bits): a sample's word is code | extra bits."""
    table = np.zeros(17, dtype=np.uint64)
    code, k = 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            symbol = huffval[k]
            n_extra = symbol if symbol < 16 else 0
            table[symbol] = ((code << n_extra) << 8) | (length + n_extra)
            code, k = code + 1, k + 1
        code <<= 1
    return table


def _pack_bits(words: np.ndarray, lengths: np.ndarray, count: int, work: _Scratch) -> list[bytes]:
    """Concatenate ``words`` (uint64, each ``lengths`` ≤ 31 bits, MSB first) into one entropy-coded
    segment per frame (``count`` frames of an even number of words each, one after another), each
    padded with 1 bits to a whole byte and with a 0x00 stuffed after every 0xFF (T.81 F.1.2.3,
    B.1.1.5). ``words`` and ``lengths`` are overwritten."""
    m = words.size // 2  # pairs in all
    per_frame = m // count
    pair_len, pairs, ends, word_index, bits = (a[:m] for a in work.pairs)
    np.add(lengths[0::2], lengths[1::2], out=pair_len)  # ≤ 62 bits a pair
    np.left_shift(words[0::2], lengths[1::2], out=pairs)
    np.bitwise_or(pairs, words[1::2], out=pairs)
    np.cumsum(pair_len, out=ends)  # across the frames: each frame's part starts where the last ended
    frame_end = ends[per_frame - 1::per_frame].copy()
    frame_start = np.concatenate(([0], frame_end[:-1])).astype(_U64)
    frame_bits = (frame_end - frame_start).tolist()
    frame_words = [b // 64 + 2 for b in frame_bits]  # each frame's own run of 64-bit words
    word_base = np.concatenate(([0], np.cumsum(frame_words)[:-1])).astype(_U64)
    np.subtract(ends, pair_len, out=bits)  # each pair's first bit
    np.subtract(bits.reshape(count, per_frame), frame_start[:, None], out=bits.reshape(count, per_frame))
    np.right_shift(bits, _U64(6), out=word_index)
    np.add(word_index.reshape(count, per_frame), word_base[:, None], out=word_index.reshape(count, per_frame))
    np.bitwise_and(bits, _U64(63), out=bits)  # its place in that 64-bit word
    np.subtract(_U64(64), pair_len, out=pair_len)
    np.left_shift(pairs, pair_len, out=pairs)  # the pair's first bit at bit 63
    high = np.right_shift(pairs, bits, out=ends)  # what falls into word_index
    np.subtract(_U64(64), bits, out=bits)
    low = np.left_shift(pairs, bits, out=pairs)  # what spills into word_index + 1 (0 when none)
    first = np.concatenate(([0], np.flatnonzero(word_index[1:] != word_index[:-1]) + 1))
    touched = word_index[first].astype(np.intp)
    out_words = np.zeros(sum(frame_words), dtype=_U64)
    out_words[touched] = np.bitwise_or.reduceat(high, first)
    out_words[touched + 1] |= np.bitwise_or.reduceat(low, first)
    out_bytes = out_words.astype(">u8").view(np.uint8)
    segments = []
    for base, total_bits in zip(word_base.tolist(), frame_bits):
        n_bytes = (total_bits + 7) // 8
        data = out_bytes[base * 8: base * 8 + n_bytes]
        if n_bytes * 8 > total_bits:
            data[-1] |= (1 << (n_bytes * 8 - total_bits)) - 1
        ff = np.flatnonzero(data == 0xFF)
        segments.append((np.insert(data, ff + 1, 0) if ff.size else data).tobytes())
    return segments


def _headers(height: int, width: int, components: int, predictor: int, precision: int,
             bits: list[int], huffval: list[int]) -> bytes:
    """SOI, DHT (DC table 0), SOF3 and SOS for the frame; every component uses table 0."""
    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body

    dht = bytes([0x00, *bits, *huffval])
    sof = bytes([precision]) + height.to_bytes(2, "big") + width.to_bytes(2, "big") + bytes([components])
    sof += b"".join(bytes([c, 0x11, 0]) for c in range(components))
    sos = bytes([components]) + b"".join(bytes([c, 0x00]) for c in range(components))
    sos += bytes([predictor, 0, 0])
    return b"\xff\xd8" + segment(0xC4, dht) + segment(0xC3, sof) + segment(0xDA, sos)
