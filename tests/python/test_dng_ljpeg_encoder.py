"""The numpy lossless JPEG encoder writes streams every decoder reads back exactly.

Checked against libjpeg-turbo's decoder (what the reader uses) for every predictor, component
count and precision, against a slow per-sample reference encoder byte for byte, and against
libjpeg-turbo's own encoder for size.
"""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest

from hotpixels.dng.ljpeg import category_and_extra, encode_lossless_jpeg, huffman_table, prediction_differences


def _scene(rng, shape, precision):
    """Smooth light with noise, a few hot sites and clipped ones: what a raw tile holds."""
    top = (1 << precision) - 1
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    base = top * (0.1 + 0.3 * (yy / shape[0]) + 0.2 * (xx / shape[1]))
    frame = base[..., None] + rng.normal(0, top * 0.01, shape) if len(shape) == 3 else base + rng.normal(0, top * 0.01, shape)
    flat = frame.reshape(-1)
    flat[rng.integers(0, flat.size, 5)] = top
    flat[rng.integers(0, flat.size, 5)] = 0
    return np.clip(frame, 0, top).astype(np.uint16)


@pytest.mark.parametrize("predictor", range(1, 8))
@pytest.mark.parametrize("components", [1, 2, 3, 4])
@pytest.mark.parametrize("precision", [8, 12, 14, 16])
def test_every_predictor_components_and_precision_decode_back_exactly(predictor, components, precision):
    rng = np.random.default_rng(predictor * 100 + components * 10 + precision)
    frame = _scene(rng, (19, 13, components), precision)
    stream = encode_lossless_jpeg(frame, predictor, precision)
    back = np.asarray(imagecodecs.jpeg8_decode(stream)).reshape(frame.shape)
    assert np.array_equal(back, frame)


@pytest.mark.parametrize("predictor", [1, 6])
def test_full_range_noise_and_the_minus_32768_difference_decode_back(predictor):
    """16-bit white noise reaches category 16; 0 next to 32768 is the difference −32768, the one
    category-16 value that carries no extra bits."""
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 65536, (64, 32, 2), dtype=np.uint16)
    steps = np.tile(np.array([0, 32768], dtype=np.uint16), (16, 16))[..., None]
    for frame in (noise, steps, np.zeros((8, 8), np.uint16), np.full((3, 5), 65535, np.uint16)):
        stream = encode_lossless_jpeg(frame, predictor, 16)
        back = np.asarray(imagecodecs.jpeg8_decode(stream)).reshape(frame.shape)
        assert np.array_equal(back, frame)


def test_a_one_row_one_column_and_odd_sized_frame_decode_back():
    rng = np.random.default_rng(2)
    for shape in [(1, 17), (17, 1), (3, 5), (1, 1)]:
        frame = rng.integers(0, 4096, shape, dtype=np.uint16)
        back = np.asarray(imagecodecs.jpeg8_decode(encode_lossless_jpeg(frame, 1, 12))).reshape(shape)
        assert np.array_equal(back, frame)


def _reference_stream(frame: np.ndarray, predictor: int, precision: int) -> bytes:
    """A slow, per-sample encoder written from T.81 directly, using the table the fast one chose."""
    fast = encode_lossless_jpeg(frame, predictor, precision)
    dht = fast.index(b"\xff\xc4")
    bits = list(fast[dht + 5: dht + 21])
    huffval = list(fast[dht + 21: dht + 21 + sum(bits)])
    codes, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[huffval[k]] = format(code, f"0{length}b")
            code, k = code + 1, k + 1
        code <<= 1
    h, w, c = frame.shape
    s = frame.astype(int).tolist()
    out = []
    for y in range(h):
        for x in range(w):
            for i in range(c):
                if y == 0 and x == 0:
                    pred = 1 << (precision - 1)
                elif y == 0:
                    pred = s[y][x - 1][i]
                elif x == 0:
                    pred = s[y - 1][x][i]
                else:
                    a, b, cc = s[y][x - 1][i], s[y - 1][x][i], s[y - 1][x - 1][i]
                    pred = {1: a, 2: b, 3: cc, 4: a + b - cc, 5: a + ((b - cc) >> 1),
                            6: b + ((a - cc) >> 1), 7: (a + b) >> 1}[predictor]
                diff = (s[y][x][i] - pred) % 65536
                diff = diff - 65536 if diff >= 32768 else diff
                size = 0 if diff == 0 else abs(diff).bit_length()
                out.append(codes[size])
                if 0 < size < 16:
                    out.append(format(diff if diff > 0 else diff - 1 + (1 << size), f"0{size}b"))
    bitstring = "".join(out)
    bitstring += "1" * (-len(bitstring) % 8)
    data = bytearray()
    for j in range(0, len(bitstring), 8):
        data.append(int(bitstring[j:j + 8], 2))
        if data[-1] == 0xFF:
            data.append(0)
    header_end = fast.index(b"\xff\xda")
    sos_len = int.from_bytes(fast[header_end + 2: header_end + 4], "big")
    return fast[: header_end + 2 + sos_len] + bytes(data) + b"\xff\xd9"


@pytest.mark.parametrize("predictor", range(1, 8))
def test_the_stream_equals_a_slow_per_sample_reference_byte_for_byte(predictor):
    rng = np.random.default_rng(predictor)
    frame = _scene(rng, (11, 9, 2), 14)
    frame[3, 4, 1] = 0xFF  # a byte pattern that invites 0xFF stuffing
    assert encode_lossless_jpeg(frame, predictor, 14) == _reference_stream(frame, predictor, 14)


def test_the_huffman_table_is_prefix_free_at_most_16_bits_and_never_all_ones():
    """Fibonacci counts make an unlimited Huffman code 17 deep: the table must be cut to 16."""
    fib = [1, 1]
    while len(fib) < 17:
        fib.append(fib[-1] + fib[-2])
    for counts in (fib, [5] * 17, [1000], [1, 1], list(range(1, 18))):
        bits, huffval = huffman_table(counts)
        assert len(bits) == 16 and sorted(huffval) == list(range(len(counts)))
        kraft = sum(n * 2.0 ** -(length + 1) for length, n in enumerate(bits))
        assert kraft < 1.0  # room is left: the all-ones code word is unused


def test_the_table_is_optimal_when_no_code_needs_cutting():
    counts = [40, 30, 20, 10, 5, 3, 2]
    bits, huffval = huffman_table(counts)
    length_of, k = {}, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            length_of[huffval[k]] = length
            k += 1
    cost = sum(counts[s] * length_of[s] for s in range(len(counts)))
    # Huffman by hand for these counts plus the reserved count-1 symbol: depths 2,2,2,3,4,5,6 (and
    # 6 for the reserved one), 257 bits for the real symbols
    assert cost == 257


def test_categories_and_extra_bits_follow_t81():
    for diff in (0, 1, -1, 2, -2, 3, 255, -255, 256, 32767, -32767):
        pattern = diff & 0xFFFF
        size = abs(diff).bit_length()
        assert category_and_extra()[pattern] >> 16 == size
        assert category_and_extra()[pattern] & 0xFFFF == (diff if diff >= 0 else diff - 1) & ((1 << size) - 1)
    assert category_and_extra()[32768] == 16 << 16  # −32768: category 16, no extra bits


def test_differences_wrap_modulo_2_16():
    frame = np.array([[[0], [65535]], [[1], [0]]], dtype=np.uint16)
    d = prediction_differences(frame[None], 1, 16)[0].view(np.int16)
    assert d.tolist() == [-32768, -1, 1, -1]


def test_the_stream_is_no_larger_than_libjpeg_turbos():
    """Same optimal-table method: sizes agree within 1 % on a raw-like 2-component tile."""
    rng = np.random.default_rng(9)
    frame = _scene(rng, (256, 128, 2), 14)
    ours = len(encode_lossless_jpeg(frame, 1, 14))
    theirs = len(imagecodecs.jpeg8_encode(frame, lossless=True, predictor=1, bitspersample=14))
    assert ours <= theirs * 1.01


def test_frames_of_growing_odd_sizes_on_one_thread_reuse_its_buffers_correctly():
    """The work buffers are per thread and grow: an odd sample count just above the last size must
    not lose its last sample to the pad word."""
    rng = np.random.default_rng(11)
    for shape in [(257, 257), (259, 259), (8, 8), (261, 261)]:
        frame = rng.integers(0, 1 << 14, shape, dtype=np.uint16)
        back = np.asarray(imagecodecs.jpeg8_decode(encode_lossless_jpeg(frame, 1, 14))).reshape(shape)
        assert np.array_equal(back, frame)


def test_a_source_frame_the_encoder_cannot_reproduce_is_a_named_error():
    """Five components in one frame (legal in T.81's SOF, not in a lossless scan here): the writer
    refuses with UnsupportedLayout rather than failing inside the encoder."""
    from hotpixels.dng.encode import encode_ljpeg
    from hotpixels.dng.layout import JpegGeometry, Segment
    from hotpixels.errors import UnsupportedLayout

    tile = np.zeros((4, 10), dtype=np.uint16)
    with pytest.raises(UnsupportedLayout):
        encode_ljpeg(tile, JpegGeometry(precision=14, height=4, width=2, components=5, predictor=1, point_transform=0),
                     Segment(index=0, y0=0, x0=0, seg_h=4, seg_w=10))


@pytest.mark.parametrize("predictor", [1, 6])
def test_frames_encoded_together_equal_each_encoded_alone(predictor):
    """The writer encodes a few tiles per call: every stream must be the one its tile gets alone
    (own Huffman table, own padding), odd sample counts included."""
    from hotpixels.dng.ljpeg import encode_lossless_jpegs

    rng = np.random.default_rng(predictor)
    for shape in [(6, 64, 32, 2), (3, 7, 5, 1), (1, 16, 8, 2)]:
        frames = np.stack([_scene(rng, shape[1:], 14) for _ in range(shape[0])])
        frames[1 % shape[0]] = 0  # a flat frame: one category only
        together = encode_lossless_jpegs(frames, predictor, 14)
        assert together == [encode_lossless_jpeg(f, predictor, 14) for f in frames]
        for f, stream in zip(frames, together):
            assert np.array_equal(np.asarray(imagecodecs.jpeg8_decode(stream)).reshape(f.shape), f)
