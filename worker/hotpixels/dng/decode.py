"""Decode the stored segments (strips/tiles) of a raw IFD into stored sample values.

* Uncompressed: 8- and 16-bit samples (16-bit in the file's byte order), and 9..15-bit samples
  packed MSB-first with every stored row starting on a byte boundary (TIFF/DNG packing).
* Lossless JPEG (compression 7): any frame geometry. Adobe writes Bayer tiles as a frame of half
  the tile width with 2 components (each frame row holds one tile row, components interleaved);
  others use 1 component. The decoded frame is reshaped row-major into the tile (DNG spec 1.7,
  "Lossless JPEG": the frame's samples in scan order fill the tile's rows).
* JPEG XL (compression 52546, DNG 1.7).
* RowInterleaveFactor (DNG 1.2) / ColumnInterleaveFactor (DNG 1.7) R, C > 1: the *whole stored
  image* holds its fields one after another (rows 0, R, 2R, … first, then rows 1, R+1, …; the
  same for columns), and the strips/tiles cut that stored image as usual. The frame is assembled
  first, then :func:`deinterleave` restores the sensor order (checked against the SDK's JPEG XL
  sample, whose pixels equal the uncompressed original).

Every function returns *stored* values; linearisation is the reader's job. A segment that fails
to decode or decodes to the wrong size raises :class:`CorruptData`.
"""

from __future__ import annotations

import os
import struct

import imagecodecs
import numpy as np

from ..errors import CorruptData, UnsupportedCompression
from ..parallel import in_groups, map_chunks
from .layout import JPEG_XL, LJPEG, UNCOMPRESSED, JpegGeometry, RawLayout, Segment, compression_name

N_THREADS = max(1, min(8, os.cpu_count() or 1))


_SOF_OTHER = (0xC0, 0xC1, 0xC2, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)


def parse_jpeg_geometry(data: bytes | memoryview) -> JpegGeometry:
    """Read and check SOF3, DHT and SOS of a lossless JPEG stream (ITU T.81) without decoding it.

    Every marker segment must lie inside the stream; SOF3: precision 2..16, a non-zero height
    and width, 1..4 components; DHT: well-formed tables; SOS: the frame's components, Huffman
    tables that were defined, predictor 1..7, Se = 0, Ah = 0 and Al below the precision, and
    entropy-coded data after it. Anything else raises :class:`CorruptData` (the codec never sees it).
    """
    data = bytes(data[:65536]) if len(data) > 65536 else bytes(data)
    if data[:2] != b"\xff\xd8":
        raise CorruptData("a lossless JPEG tile does not start with a JPEG SOI marker")
    pos, sof, tables = 2, None, set()
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise CorruptData("a lossless JPEG tile has a damaged header")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise CorruptData("a lossless JPEG tile has a damaged header (a marker segment runs past its end)")
        body = data[pos + 4:pos + 2 + length]
        if marker in _SOF_OTHER:
            raise CorruptData(f"a raw tile is not lossless JPEG (SOF marker 0xFF{marker:02X})")
        if marker == 0xC3:
            if sof is not None or len(body) < 6:
                raise CorruptData("a lossless JPEG tile has a damaged frame header")
            precision, height, width, comps = struct.unpack(">BHHB", body[:6])
            if not (2 <= precision <= 16 and height and width and 1 <= comps <= 4 and len(body) == 6 + 3 * comps):
                raise CorruptData(f"a lossless JPEG tile has an impossible frame header ({precision} bits, "
                                  f"{height}x{width}, {comps} components)")
            sof = (precision, height, width, comps)
        elif marker == 0xC4:
            tables |= _dht_tables(body)
        elif marker == 0xDA:
            if sof is None:
                break
            return JpegGeometry(sof[0], sof[1], sof[2], sof[3], *_sos(body, sof, tables, len(data) > pos + 2 + length))
        elif marker in (0xD9, 0xDC):  # EOI, DNL before any scan
            break
        pos += 2 + length
    raise CorruptData("a lossless JPEG tile has no SOF3/SOS header")


def _dht_tables(body: bytes) -> set[int]:
    """The Huffman table ids (class 0, DC/lossless) a DHT segment defines; CorruptData if malformed."""
    ids, k = set(), 0
    while k < len(body):
        if k + 17 > len(body):
            raise CorruptData("a lossless JPEG tile has a damaged Huffman table")
        tc_th = body[k]
        n = sum(body[k + 1:k + 17])
        if tc_th >> 4 > 1 or tc_th & 0x0F > 3 or n > 256 or k + 17 + n > len(body):
            raise CorruptData("a lossless JPEG tile has a damaged Huffman table")
        if tc_th >> 4 == 0:
            ids.add(tc_th & 0x0F)
        k += 17 + n
    return ids


def _sos(body: bytes, sof: tuple[int, int, int, int], tables: set[int], has_data: bool) -> tuple[int, int]:
    """(predictor, point transform) of a checked SOS header."""
    ns = body[0] if body else 0
    if ns != sof[3] or len(body) != 4 + 2 * ns:
        raise CorruptData(f"a lossless JPEG tile's scan has {ns} components, its frame {sof[3]}")
    if any((body[2 + 2 * i] >> 4) not in tables for i in range(ns)):
        raise CorruptData("a lossless JPEG tile's scan uses a Huffman table it does not define")
    ss, se, ahal = body[1 + 2 * ns], body[2 + 2 * ns], body[3 + 2 * ns]
    if not (1 <= ss <= 7 and se == 0 and ahal >> 4 == 0 and (ahal & 0x0F) < sof[0]) or not has_data:
        raise CorruptData(f"a lossless JPEG tile has a damaged scan header (predictor {ss})")
    return int(ss), int(ahal & 0x0F)


def check_jpeg_fits(geom: JpegGeometry, seg: Segment, max_rows: int) -> None:
    """The frame must fill the segment exactly, or (the last strip) be a wider-than-needed strip of
    whole rows no taller than the strips (``max_rows``); else CorruptData before any decode."""
    samples, need = geom.height * geom.width * geom.components, seg.seg_h * seg.seg_w
    if samples == need:
        return
    if geom.width * geom.components == seg.seg_w and seg.seg_h <= geom.height <= max_rows:
        return
    raise CorruptData(f"lossless JPEG tile {seg.index} holds a {geom.height}x{geom.width}x{geom.components} "
                      f"frame, which does not fill its {seg.seg_h}x{seg.seg_w} tile")


def segment_bytes(buf, layout: RawLayout, seg: Segment) -> memoryview:
    off, n = layout.offsets[seg.index], layout.byte_counts[seg.index]
    return memoryview(buf)[off:off + n]


def decode_uncompressed(data, layout: RawLayout, seg: Segment) -> np.ndarray:
    """(seg_h, seg_w) uint16 stored values of one uncompressed segment."""
    h, w = seg.seg_h, seg.seg_w
    need = h * layout.row_bytes(seg)
    if len(data) < need:
        raise CorruptData(f"strip/tile {seg.index} holds {len(data)} bytes, {need} expected for "
                          f"{h}x{w} samples of {layout.bits} bits")
    data = data[:need]
    if layout.bits == 16:
        return np.frombuffer(data, dtype=layout.byteorder + "u2").reshape(h, w).astype(np.uint16)
    if layout.bits == 8:
        return np.frombuffer(data, dtype=np.uint8).reshape(h, w).astype(np.uint16)
    out = imagecodecs.packints_decode(bytes(data), np.uint16, layout.bits, runlen=w)
    return np.asarray(out).reshape(h, w)


def decode_ljpeg(data, seg: Segment, max_rows: int | None = None) -> tuple[np.ndarray, JpegGeometry]:
    """Decode one lossless JPEG segment and reshape its frame row-major into (seg_h, seg_w).

    The header is checked first (:func:`parse_jpeg_geometry`, :func:`check_jpeg_fits`); a stream
    libjpeg-turbo rejects is CorruptData: it is never handed to a second decoder (liblj92 crashed
    the process on such a tile).
    """
    data = bytes(data)
    geom = parse_jpeg_geometry(data)
    check_jpeg_fits(geom, seg, seg.seg_h if max_rows is None else max_rows)
    if not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        # libjpeg-turbo "decodes" cut-off or zeroed streams without complaint
        raise CorruptData(f"lossless JPEG tile {seg.index} is cut short or damaged (no end-of-image marker)")
    try:
        frame = imagecodecs.jpeg8_decode(data)
    except Exception as exc:  # noqa: BLE001 - the codec's refusal is the file's damage
        raise CorruptData(f"lossless JPEG tile {seg.index} failed to decode ({exc})") from None
    frame = np.asarray(frame)
    if frame.size and int(frame.max()) >= 1 << geom.precision:
        # libjpeg-turbo decodes damaged entropy-coded data into garbage without an error; values a
        # frame of this precision cannot hold are the sign of it
        raise CorruptData(f"lossless JPEG tile {seg.index} is damaged (it decodes to values beyond its "
                          f"{geom.precision}-bit precision)")
    return _frame_to_segment(frame, seg), geom


def decode_own_ljpeg(stream: bytes, seg: Segment) -> np.ndarray:
    """(seg_h, seg_w) samples of a lossless JPEG stream this process has just made (the writer's
    read-back of each re-encoded tile): libjpeg-turbo, as for the files read, without the header
    checks that guard the codec from untrusted files; the caller compares every sample."""
    try:
        frame = np.asarray(imagecodecs.jpeg8_decode(stream))
    except Exception as exc:  # noqa: BLE001 - the codec's refusal is a fault of the new stream
        raise CorruptData(f"lossless JPEG tile {seg.index} failed to decode ({exc})") from None
    return _frame_to_segment(frame, seg)


def _frame_to_segment(frame: np.ndarray, seg: Segment) -> np.ndarray:
    flat = frame.reshape(-1)
    need = seg.seg_h * seg.seg_w
    if flat.size < need:
        raise CorruptData(f"tile {seg.index} decoded to {flat.size} samples, {need} expected "
                          f"({seg.seg_h}x{seg.seg_w})")
    rows = frame.shape[0]
    per_row = flat.size // rows if rows else 0
    if flat.size != need and per_row == seg.seg_w:
        flat = flat[:need]  # a frame taller than the segment (last strip): keep its first rows
    elif flat.size != need:
        raise CorruptData(f"tile {seg.index} decoded to {frame.shape}, which does not fill "
                          f"{seg.seg_h}x{seg.seg_w}")
    return flat.reshape(seg.seg_h, seg.seg_w).astype(np.uint16, copy=False)


def decode_jpegxl(data, layout: RawLayout, seg: Segment) -> np.ndarray:
    """Decode one JPEG XL tile (stored order; the caller undoes any interleave on the frame)."""
    try:
        tile = np.asarray(imagecodecs.jpegxl_decode(bytes(data), numthreads=1))
    except Exception as exc:  # noqa: BLE001
        raise CorruptData(f"JPEG XL tile {seg.index} failed to decode ({exc})") from None
    tile = tile.reshape(tile.shape[0], -1)
    if tile.shape != (seg.seg_h, seg.seg_w):
        raise CorruptData(f"JPEG XL tile {seg.index} decoded to {tile.shape}, expected {(seg.seg_h, seg.seg_w)}")
    return tile.astype(np.uint16, copy=False)


def deinterleave(tile: np.ndarray, row_factor: int, col_factor: int) -> np.ndarray:
    """Undo DNG interleaving: the stored image holds field k (rows k, k+R, …) as one block."""
    out = tile
    if row_factor > 1:
        out = _deinterleave_axis(out, row_factor, axis=0)
    if col_factor > 1:
        out = _deinterleave_axis(out, col_factor, axis=1)
    return out


def interleave(tile: np.ndarray, row_factor: int, col_factor: int) -> np.ndarray:
    """Inverse of :func:`deinterleave` (fields stored one after another)."""
    out = tile
    if col_factor > 1:
        out = np.concatenate([out[:, k::col_factor] for k in range(col_factor)], axis=1)
    if row_factor > 1:
        out = np.concatenate([out[k::row_factor] for k in range(row_factor)], axis=0)
    return out


def _deinterleave_axis(a: np.ndarray, factor: int, axis: int) -> np.ndarray:
    n = a.shape[axis]
    out = np.empty_like(a)
    start = 0
    for k in range(factor):
        count = len(range(k, n, factor))
        block = a[start:start + count] if axis == 0 else a[:, start:start + count]
        if axis == 0:
            out[k::factor] = block
        else:
            out[:, k::factor] = block
        start += count
    return out


def decode_segment(buf, layout: RawLayout, seg: Segment) -> np.ndarray:
    """(seg_h, seg_w) uint16 stored values of one segment (records LJPEG geometry in layout)."""
    data = segment_bytes(buf, layout, seg)
    if layout.compression == UNCOMPRESSED:
        return decode_uncompressed(data, layout, seg)
    if layout.compression == LJPEG:
        tile, geom = decode_ljpeg(data, seg, layout.segments[0].seg_h)
        layout.jpeg[seg.index] = geom
        return tile
    if layout.compression == JPEG_XL:
        return decode_jpegxl(data, layout, seg)
    raise UnsupportedCompression(f"raw data compression {compression_name(layout.compression)} is not supported")


def decode_all(buf, layout: RawLayout) -> np.ndarray:
    """The full frame (height, width) uint16 of stored values in sensor order (interleave undone).

    Tiles decode on a thread pool (imagecodecs releases the GIL).
    """
    segs = layout.segments
    if len(segs) == 1 and (segs[0].seg_h, segs[0].seg_w) == (layout.height, layout.width):
        out = decode_segment(buf, layout, segs[0])  # one strip/tile = the frame: no second copy
        if layout.row_interleave > 1 or layout.column_interleave > 1:
            out = deinterleave(out, layout.row_interleave, layout.column_interleave)
        return out
    out = np.empty((layout.height, layout.width), dtype=np.uint16)

    def some(group: list[Segment]) -> None:
        for seg in group:
            tile = decode_segment(buf, layout, seg)
            ys, xs = seg.frame_slices(layout.height, layout.width)
            out[ys, xs] = tile[: ys.stop - ys.start, : xs.stop - xs.start]

    if layout.compression == UNCOMPRESSED or len(layout.segments) < 4:
        some(layout.segments)
    else:
        map_chunks(some, in_groups(layout.segments), N_THREADS)
    if layout.row_interleave > 1 or layout.column_interleave > 1:
        out = deinterleave(out, layout.row_interleave, layout.column_interleave)
    return out
