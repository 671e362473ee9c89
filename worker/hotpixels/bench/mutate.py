"""A seeded mutator of DNG files, for the fuzz tests and ``./run.sh bench robustness``.

Sources: the project's own layouts (:func:`simulated_sources`, written by
:func:`hotpixels.dng.create.write_dng`: 16-bit strip, packed 12-bit, raw in a SubIFD, lossless JPEG
tiles with 1 and 2 components, tiles in a SubIFD, packed 12-bit tiles), each a small frame with a few hot pixels, plus
any real files the caller adds (the test suite's ``tests/data``).

Mutations (:data:`KINDS`), each a pure function of the source bytes and a ``random.Random``:

* ``truncate`` — cut the file inside its raw data, its IFDs or anywhere;
* ``flip_header`` / ``flip_ifd`` / ``flip_tile`` — flip bits in the TIFF header, in the 12-byte
  entries of an IFD, or in a strip/tile (for lossless JPEG, mostly in its SOF/DHT/SOS header);
* ``bad_count`` / ``bad_offset`` — an entry's count or value offset set to a wrong or huge value;
* ``huge_dims`` — ImageWidth/ImageLength (or the tile size) of the raw IFD set huge, the file
  staying small (what drove memory past 5.8 GB before the fix);
* ``software_span`` — the Software tag re-pointed so its declared length spans the raw IFD and its
  data, still inside the file (what made the writer zero-fill over the raw SubIFD);
* ``swap_type`` — an entry's TIFF type changed;
* ``zero_tile`` — a strip/tile's bytes zeroed;
* ``not_dng`` — random bytes, a PNG signature, a text file, or a TIFF without DNGVersion.

:func:`corpus` yields ``(name, kind, bytes)`` for a seed: the same seed gives the same files.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..dng.tiff import (
    TAG_DNG_VERSION, TAG_IMAGE_LENGTH, TAG_IMAGE_WIDTH, TAG_SOFTWARE, TAG_STRIP_BYTE_COUNTS, TAG_STRIP_OFFSETS,
    TAG_TILE_BYTE_COUNTS, TAG_TILE_LENGTH, TAG_TILE_OFFSETS, TAG_TILE_WIDTH, TYPES, Entry, Ifd, TiffFile,
)

# (layout, write_dng keywords): every layout of dng/create.py, tiles of both JPEG geometries
SIM_LAYOUTS = (("strip", {}), ("packed", {"bits": 12}), ("subifd", {}),
               ("ljpeg-tiles", {"tile_px": 32, "ljpeg_components": 2}),
               ("ljpeg-tiles", {"tile_px": 48, "ljpeg_components": 1}),
               ("ljpeg-tiles-subifd", {"tile_px": 32}), ("packed-tiles", {"tile_px": 32}))


# -- sources ---------------------------------------------------------------------------------------
def simulated_sources(folder: Path, seed: int = 0, shape: tuple[int, int] = (80, 112)) -> list[Path]:
    """Small DNGs in every layout of :mod:`hotpixels.dng.create`: a noisy sky with 12 hot pixels."""
    from ..dng.cfa import CfaPattern
    from ..dng.create import write_dng
    from ..dng.rawimage import CameraMetadata

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = shape
    frame = np.clip(rng.normal(600, 12, size=(h, w)), 0, 4095).astype(np.uint16)
    ys, xs = rng.integers(4, h - 4, 12), rng.integers(4, w - 4, 12)
    frame[ys, xs] = 3800
    meta = CameraMetadata(make="Fuzz", model="Mutator", serial="F123", iso=800, exposure_s=30.0,
                          capture_time="2024-05-01T22:00:00", temperature_c=21.0)
    out = []
    for k, (layout, kw) in enumerate(SIM_LAYOUTS):
        path = folder / f"sim-{k}-{layout}.dng"
        write_dng(path, frame, cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, h, w), black_level_dn=512,
                  white_level_dn=4095, layout=layout, metadata=meta, **{"bits": 12, **kw})
        out.append(path)
    return out


# -- the structure of a file -----------------------------------------------------------------------
def _parse(data: bytes) -> TiffFile | None:
    try:
        return TiffFile(data, name="mutant")
    except Exception:  # noqa: BLE001 - a source that is not TIFF gets byte-level mutations only
        return None


def _all_ifds(tf: TiffFile) -> list[Ifd]:
    ifds = list(tf.walk())
    return ifds + [i.exif for i in ifds if i.exif is not None]


def _raw_ifd(tf: TiffFile) -> Ifd | None:
    for ifd in tf.walk():
        if tf.get1(ifd, 262) == 32803:
            return ifd
    return None


def _segments(tf: TiffFile) -> list[tuple[int, int]]:
    """(offset, length) of every strip/tile of the raw IFD that lies inside the file."""
    ifd = _raw_ifd(tf)
    if ifd is None:
        return []
    for off_tag, cnt_tag in ((TAG_TILE_OFFSETS, TAG_TILE_BYTE_COUNTS), (TAG_STRIP_OFFSETS, TAG_STRIP_BYTE_COUNTS)):
        if off_tag in ifd.entries and cnt_tag in ifd.entries:
            try:
                spans = list(zip(tf.ints(ifd.entries[off_tag]), tf.ints(ifd.entries[cnt_tag])))
            except Exception:  # noqa: BLE001
                return []
            return [(o, n) for o, n in spans if n and o + n <= tf.size]
    return []


def _put(buf: bytearray, pos: int, fmt: str, *values) -> None:
    size = struct.calcsize(fmt)
    if 0 <= pos and pos + size <= len(buf):
        struct.pack_into(fmt, buf, pos, *values)


def _flip(buf: bytearray, lo: int, hi: int, rng: random.Random, n: int) -> None:
    hi = min(hi, len(buf))
    if hi <= lo:
        return
    for _ in range(n):
        pos = rng.randrange(lo, hi)
        buf[pos] ^= 1 << rng.randrange(8) if rng.random() < 0.6 else rng.randrange(1, 256)


def _huge(rng: random.Random) -> int:
    return rng.choice([0, 1, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 20, 1 << 24, rng.randrange(1 << 32)])


# -- mutations -------------------------------------------------------------------------------------
def m_truncate(data: bytes, rng: random.Random) -> bytes:
    tf = _parse(data)
    segs = _segments(tf) if tf else []
    r = rng.random()
    if segs and r < 0.5:
        o, n = rng.choice(segs)
        return data[:o + rng.randrange(max(n, 1))]
    if tf and r < 0.75:
        ifd = rng.choice(_all_ifds(tf))
        return data[:min(len(data), ifd.offset + rng.randrange(ifd.next_pos + 4 - ifd.offset))]
    return data[:rng.randrange(len(data))]


def m_flip_header(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    _flip(buf, 0, 8, rng, rng.randint(1, 2))
    return bytes(buf)


def m_flip_ifd(data: bytes, rng: random.Random) -> bytes:
    tf = _parse(data)
    buf = bytearray(data)
    if tf is None:
        _flip(buf, 0, len(buf), rng, 4)
        return bytes(buf)
    ifd = rng.choice(_all_ifds(tf))
    _flip(buf, ifd.offset, ifd.next_pos + 4, rng, rng.randint(1, 6))
    return bytes(buf)


def m_flip_tile(data: bytes, rng: random.Random) -> bytes:
    tf = _parse(data)
    segs = _segments(tf) if tf else []
    buf = bytearray(data)
    if not segs:
        _flip(buf, 0, len(buf), rng, 8)
        return bytes(buf)
    for _ in range(rng.randint(1, 3)):
        o, n = rng.choice(segs)
        header = bytes(buf[o:o + 2]) == b"\xff\xd8"
        hi = o + (min(n, 200) if header and rng.random() < 0.7 else n)
        _flip(buf, o, hi, rng, rng.randint(1, 8))
    return bytes(buf)


def _pick_entry(tf: TiffFile, rng: random.Random, tags: tuple[int, ...] = ()) -> tuple[Ifd, Entry] | None:
    pairs = [(ifd, e) for ifd in _all_ifds(tf) for e in ifd.entries.values() if not tags or e.tag in tags]
    return rng.choice(pairs) if pairs else None


def m_bad_count(data: bytes, rng: random.Random) -> bytes:
    tf = _parse(data)
    if tf is None:
        return m_flip_ifd(data, rng)
    buf = bytearray(data)
    prefer = (TAG_STRIP_OFFSETS, TAG_STRIP_BYTE_COUNTS, TAG_TILE_OFFSETS, TAG_TILE_BYTE_COUNTS, 33421, 33422,
              50713, 50714, 50829, 258, 330, 34665)
    pick = _pick_entry(tf, rng, prefer if rng.random() < 0.6 else ())
    if pick:
        _, e = pick
        count = rng.choice([0, 1, e.count - 1, e.count + 1, 2 * e.count, _huge(rng)])
        _put(buf, e.entry_pos + 4, tf.bo + "I", max(0, count) & 0xFFFFFFFF)
    return bytes(buf)


def m_bad_offset(data: bytes, rng: random.Random) -> bytes:
    tf = _parse(data)
    if tf is None:
        return m_flip_ifd(data, rng)
    buf = bytearray(data)
    r = rng.random()
    if r < 0.4:  # a strip/tile offset or byte count
        ifd = _raw_ifd(tf)
        tags = (TAG_STRIP_OFFSETS, TAG_STRIP_BYTE_COUNTS, TAG_TILE_OFFSETS, TAG_TILE_BYTE_COUNTS)
        es = [ifd.entries[t] for t in tags if ifd is not None and t in ifd.entries]
        if es:
            e = rng.choice(es)
            k = rng.randrange(max(e.count, 1))
            size = TYPES[e.type][1]
            value = rng.choice([len(data), len(data) - 3, _huge(rng), rng.randrange(len(data))])
            _put(buf, e.value_pos + k * size, tf.bo + ("H" if size == 2 else "I"), value & (0xFFFF if size == 2 else 0xFFFFFFFF))
            return bytes(buf)
    pick = _pick_entry(tf, rng, (330, 34665) if r < 0.6 else ())
    if pick:
        _, e = pick
        value = rng.choice([len(data), len(data) - 2, 0, 8, _huge(rng), rng.randrange(len(data))])
        _put(buf, e.entry_pos + 8, tf.bo + "I", value & 0xFFFFFFFF)
    return bytes(buf)


def m_huge_dims(data: bytes, rng: random.Random) -> bytes:
    tf = _parse(data)
    ifd = _raw_ifd(tf) if tf else None
    if ifd is None:
        return m_bad_count(data, rng)
    buf = bytearray(data)
    tags = [t for t in (TAG_IMAGE_WIDTH, TAG_IMAGE_LENGTH, TAG_TILE_WIDTH, TAG_TILE_LENGTH) if t in ifd.entries]
    for tag in rng.sample(tags, rng.randint(1, len(tags))):
        e = ifd.entries[tag]
        size = TYPES[e.type][1]
        big = rng.choice([0xFFFF, 40000, 65000, 100_000, 1 << 20, 0xFFFFFFFF, 0x7FFFFFFF])
        if size == 2:
            _put(buf, e.value_pos, tf.bo + "H", min(big, 0xFFFF))
        else:
            _put(buf, e.value_pos, tf.bo + "I", big)
    return bytes(buf)


def m_software_span(data: bytes, rng: random.Random) -> bytes:
    """Software's value re-pointed before the raw IFD (or its data) with a count that spans it,
    staying inside the file; falls back to a huge count when there is no Software tag."""
    tf = _parse(data)
    if tf is None:
        return m_bad_count(data, rng)
    ifd0 = tf.ifd0
    e = ifd0.entries.get(TAG_SOFTWARE)
    raw = _raw_ifd(tf)
    if e is None or raw is None:
        return m_bad_count(data, rng)
    buf = bytearray(data)
    targets = [raw.offset] + [o for o, _ in _segments(tf)[:1]]
    start = max(8, rng.choice(targets) - rng.randrange(1, 64))
    end = rng.choice([len(data), raw.next_pos + 4 + rng.randrange(0, 256), len(data) + rng.randrange(1, 1 << 20)])
    count = max(e.count, end - start)
    struct.pack_into(tf.bo + "II", buf, e.entry_pos + 4, count, start)
    return bytes(buf)


def m_swap_type(data: bytes, rng: random.Random) -> bytes:
    tf = _parse(data)
    pick = _pick_entry(tf, rng) if tf else None
    if pick is None:
        return m_flip_ifd(data, rng)
    buf = bytearray(data)
    _put(buf, pick[1].entry_pos + 2, tf.bo + "H", rng.choice([1, 2, 3, 4, 5, 7, 9, 10, 11, 12, 13, 0, 99]))
    return bytes(buf)


def m_zero_tile(data: bytes, rng: random.Random) -> bytes:
    tf = _parse(data)
    segs = _segments(tf) if tf else []
    if not segs:
        return m_truncate(data, rng)
    buf = bytearray(data)
    o, n = rng.choice(segs)
    lo = o + rng.randrange(max(n, 1))
    buf[lo:o + n] = bytes(o + n - lo)
    return bytes(buf)


def m_not_dng(data: bytes, rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.25:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 4096)))
    if r < 0.5:
        return b"\x89PNG\r\n\x1a\n" + data[8:rng.randrange(8, len(data))]
    if r < 0.65:
        return b"this is not a photo\n" * rng.randint(0, 50)
    tf = _parse(data)
    buf = bytearray(data)
    if tf is not None and TAG_DNG_VERSION in tf.ifd0.entries:  # a TIFF without DNGVersion
        _put(buf, tf.ifd0.entries[TAG_DNG_VERSION].entry_pos, tf.bo + "H", 0xFFFE)
        return bytes(buf)
    return bytes(buf[:rng.randrange(8)])


MUTATORS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate": m_truncate, "flip_header": m_flip_header, "flip_ifd": m_flip_ifd, "flip_tile": m_flip_tile,
    "bad_count": m_bad_count, "bad_offset": m_bad_offset, "huge_dims": m_huge_dims,
    "software_span": m_software_span, "swap_type": m_swap_type, "zero_tile": m_zero_tile, "not_dng": m_not_dng,
}
KINDS = tuple(MUTATORS)
# how often each kind is drawn (the structured mutations find the most)
WEIGHTS = {"truncate": 2, "flip_header": 1, "flip_ifd": 3, "flip_tile": 4, "bad_count": 3, "bad_offset": 3,
           "huge_dims": 2, "software_span": 1, "swap_type": 2, "zero_tile": 1, "not_dng": 1}


def mutate(data: bytes, kind: str, seed: int) -> bytes:
    """One mutant of ``data`` (deterministic in ``kind`` and ``seed``). A file already too damaged
    for a structured mutation to find its target gets random bit flips instead."""
    try:
        return MUTATORS[kind](data, random.Random(seed))
    except Exception:  # noqa: BLE001 - the mutator reads damaged structure too
        buf = bytearray(data)
        _flip(buf, 0, len(buf), random.Random(seed), 8)
        return bytes(buf)


def corpus(sources: list[Path], n: int, seed: int) -> Iterator[tuple[str, str, bytes]]:
    """``n`` mutants ``(name, kind, bytes)`` of ``sources``, round robin over the sources, kinds
    drawn by :data:`WEIGHTS`; 1 in 8 mutants gets a second mutation on top."""
    rng = random.Random(seed)
    blobs = [(p.stem, p.read_bytes()) for p in sources]
    kinds = list(WEIGHTS)
    weights = [WEIGHTS[k] for k in kinds]
    for i in range(n):
        stem, data = blobs[i % len(blobs)]
        kind = rng.choices(kinds, weights)[0]
        s = rng.randrange(1 << 30)
        out = mutate(data, kind, s)
        if rng.random() < 0.125 and out:
            kind2 = rng.choices(kinds, weights)[0]
            out = mutate(out, kind2, s + 1)
            kind = f"{kind}+{kind2}"
        yield f"{i:05d}-{stem}-{kind}-{s}.dng", kind, out
