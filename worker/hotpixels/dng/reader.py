"""Read the CFA raw image of any DNG into a :class:`~hotpixels.dng.rawimage.RawImage`.

The raw IFD is the first IFD (IFD0 or a SubIFD, at any depth) with NewSubFileType 0 and
PhotometricInterpretation CFA (32803). Its tags give the frame size, the CFA (CFARepeatPatternDim,
CFAPattern through CFAPlaneColor, anchored at the ActiveArea's top-left), BlackLevel with
BlackLevelRepeatDim and BlackLevelDeltaH/V, WhiteLevel, ActiveArea (default: the whole frame) and
the LinearizationTable. ``cfa_dn`` holds the full frame in linearised DN, black not subtracted.

Order of checks, so that each bad file gets the one error that explains it: TIFF header
(NotTiff) → DNGVersion (NotDng) → a CFA raw IFD (NotCfaRaw, e.g. LinearRaw) → layout and
compression (UnsupportedLayout / UnsupportedCompression) → declared sizes against the file size
and the memory budget (TruncatedFile / TooLarge, before anything of that size is allocated) →
every strip/tile inside the file (TruncatedFile, *before* decoding: LibRaw silently returns
garbage there) → each lossless JPEG header against its tile (CorruptData, before the codec sees
the bytes) → decode (CorruptData).

Only regular files are opened (:func:`hotpixels.fileio.open_regular`: a FIFO or device is 1002 at
once). A malformed file whose tags contradict each other in a way no check above names still ends
in :class:`CorruptData`, never in a bare Python exception (:func:`_named_errors`).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import weakref
from typing import Iterator

import numpy as np

from ..errors import (
    CorruptData, FileNotReadable, NotCfaRaw, NotDng, NotTiff, TooLarge, TruncatedFile,
    UnsupportedCompression, UnsupportedLayout, UnsupportedLinearization,
)
from ..fileio import open_regular
from .cfa import CfaPattern
from .decode import decode_all
from .layout import JPEG_XL, LJPEG, UNCOMPRESSED, RawLayout, Segment, compression_name
from .metadata import add_exiftool_metadata, metadata_from_tags
from .rawimage import CameraMetadata, RawImage
from .tiff import (
    LONG, SHORT, PHOTOMETRIC_CFA, PHOTOMETRIC_LINEAR_RAW, TAG_ACTIVE_AREA, TAG_AS_SHOT_NEUTRAL, TAG_BITS_PER_SAMPLE,
    TAG_BLACK_DELTA_H, TAG_BLACK_DELTA_V, TAG_BLACK_LEVEL, TAG_BLACK_REPEAT_DIM, TAG_CFA_LAYOUT,
    TAG_CFA_PATTERN, TAG_CFA_PLANE_COLOR, TAG_CFA_REPEAT_DIM, TAG_COLUMN_INTERLEAVE, TAG_COMPRESSION,
    TAG_DNG_VERSION, TAG_IMAGE_LENGTH, TAG_IMAGE_WIDTH, TAG_LINEARIZATION_TABLE, TAG_NEW_RAW_IMAGE_DIGEST,
    TAG_NEW_SUBFILE_TYPE, TAG_PHOTOMETRIC, TAG_RAW_DATA_UNIQUE_ID, TAG_RAW_IMAGE_DIGEST,
    TAG_ROW_INTERLEAVE, TAG_ROWS_PER_STRIP, TAG_SAMPLE_FORMAT, TAG_SAMPLES_PER_PIXEL, TAG_SOFTWARE,
    TAG_STRIP_BYTE_COUNTS, TAG_STRIP_OFFSETS, TAG_TILE_BYTE_COUNTS, TAG_TILE_LENGTH, TAG_TILE_OFFSETS,
    TAG_TILE_WIDTH, TAG_WHITE_LEVEL, TAG_XMP, Ifd, TiffFile,
)

SUPPORTED_COMPRESSIONS = (UNCOMPRESSED, LJPEG, JPEG_XL)
DEFAULT_MAX_FRAME_MP = 400.0  # largest raw frame accepted (megapixels); HOTPIXELS_MAX_FRAME_MP overrides
# exceptions that, raised while interpreting a file's tags, mean the file contradicts itself
_MALFORMED = (struct.error, IndexError, ValueError, TypeError, KeyError, OverflowError, ZeroDivisionError)


def max_frame_pixels() -> int:
    """The memory budget for one raw frame, in samples (uint16 each)."""
    try:
        mp = float(os.environ.get("HOTPIXELS_MAX_FRAME_MP", DEFAULT_MAX_FRAME_MP))
    except ValueError:
        mp = DEFAULT_MAX_FRAME_MP
    return int(max(mp, 0.001) * 1e6)


@contextlib.contextmanager
def _named_errors(path: str) -> Iterator[None]:
    """Turn a bare exception raised while interpreting a malformed file into :class:`CorruptData`."""
    try:
        yield
    except _MALFORMED as exc:
        raise CorruptData(f"the file is damaged: its raw image tags contradict each other "
                          f"({type(exc).__name__}: {exc})", path=path) from exc


@contextlib.contextmanager
def open_tiff(path) -> Iterator[TiffFile]:
    """Map the file read-only and parse its TIFF structure (the file is never opened for writing)."""
    path = os.fspath(path)
    f = open_regular(path)
    with f:
        st = os.fstat(f.fileno())
        size = st.st_size
        if size < 8:
            raise NotTiff(f"not a TIFF/DNG file: {path} is only {size} bytes long", path=path)
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise FileNotReadable(f"cannot read {path}: {exc}", path=path) from None
        try:
            with _named_errors(path):
                tf = TiffFile(mm, name=path, mtime_ns=st.st_mtime_ns)
            yield tf
        finally:
            try:
                mm.close()
            except BufferError:  # a view is still referenced (an exception in flight): GC closes it
                pass


def find_raw_ifd(tf: TiffFile) -> Ifd:
    """The CFA raw IFD, or NotDng / NotCfaRaw saying what the file holds instead."""
    if TAG_DNG_VERSION not in tf.ifd0.entries:
        raise NotDng(f"not a DNG file: {tf.name} is a TIFF without a DNGVersion tag", path=tf.name)
    main_kinds = []
    for ifd in tf.walk():
        if tf.get1(ifd, TAG_NEW_SUBFILE_TYPE, 0) != 0:
            continue
        photometric = tf.get1(ifd, TAG_PHOTOMETRIC)
        if photometric == PHOTOMETRIC_CFA:
            return ifd
        main_kinds.append(photometric)
    if PHOTOMETRIC_LINEAR_RAW in main_kinds:
        raise NotCfaRaw("not a CFA raw DNG: this file holds demosaiced data (LinearRaw)", path=tf.name)
    raise NotCfaRaw("not a CFA raw DNG: this file holds no colour-filter-array raw image", path=tf.name)


def _cfa_pattern(tf: TiffFile, ifd: Ifd, origin_yx: tuple[int, int]) -> CfaPattern:
    layout = tf.get1(ifd, TAG_CFA_LAYOUT, 1)
    if layout != 1:
        raise UnsupportedLayout(f"CFALayout {layout} (non-rectangular sensor) is not supported", path=tf.name)
    rows, cols = tf.get(ifd, TAG_CFA_REPEAT_DIM, (2, 2))[:2]
    if not (1 <= rows <= 16 and 1 <= cols <= 16):
        raise CorruptData(f"CFARepeatPatternDim {rows}x{cols} is not a colour filter pattern", path=tf.name)
    raw = tf.get(ifd, TAG_CFA_PATTERN)
    if raw is None:
        raise CorruptData("the raw image has no CFAPattern tag", path=tf.name)
    codes = _as_list(raw)
    if len(codes) < rows * cols or rows * cols == 0:
        raise CorruptData(f"CFAPattern holds {len(codes)} values for a {rows}x{cols} repeat", path=tf.name)
    plane_color = _as_list(tf.get(ifd, TAG_CFA_PLANE_COLOR, (0, 1, 2)))
    colours = []
    for code in codes[: rows * cols]:
        colour = plane_color[code] if code < len(plane_color) else 99
        if colour > 2:
            raise UnsupportedLayout(
                "only red/green/blue colour filter arrays are supported (this one uses "
                "cyan, magenta, yellow or white filters)", path=tf.name)
        colours.append(colour)
    return CfaPattern.from_array(np.array(colours).reshape(rows, cols), origin_yx=origin_yx)


def _as_list(values: tuple) -> list[int]:
    """Small integer arrays stored as BYTE (a tuple) or UNDEFINED (one bytes object)."""
    return list(values[0]) if values and isinstance(values[0], bytes) else [int(v) for v in values]


def _black_levels(tf: TiffFile, ifd: Ifd, active: tuple[int, int, int, int]):
    ry, rx = tf.get(ifd, TAG_BLACK_REPEAT_DIM, (1, 1))[:2]
    if not (1 <= ry <= 64 and 1 <= rx <= 64):
        raise CorruptData(f"BlackLevelRepeatDim {ry}x{rx} is not a repeat pattern", path=tf.name)
    values = np.array(tf.get(ifd, TAG_BLACK_LEVEL, (0,)), dtype=np.float64)
    if values.size == 1:
        repeat = np.full((ry, rx), values[0])
    elif values.size >= ry * rx:
        repeat = values[: ry * rx].reshape(ry, rx)
    else:
        raise CorruptData(f"BlackLevel holds {values.size} values for a {ry}x{rx} repeat", path=tf.name)
    t, l, b, r = active
    delta_h = tf.get(ifd, TAG_BLACK_DELTA_H)
    delta_v = tf.get(ifd, TAG_BLACK_DELTA_V)
    dh = np.array(delta_h, dtype=np.float64) if delta_h is not None and len(delta_h) == r - l else None
    dv = np.array(delta_v, dtype=np.float64) if delta_v is not None and len(delta_v) == b - t else None
    return repeat, dh, dv


def _segments(tf: TiffFile, ifd: Ifd, height: int, width: int):
    if TAG_TILE_WIDTH in ifd.entries:
        tw, th = tf.get1(ifd, TAG_TILE_WIDTH), tf.get1(ifd, TAG_TILE_LENGTH)
        off_tag, cnt_tag = TAG_TILE_OFFSETS, TAG_TILE_BYTE_COUNTS
        if not tw or not th:
            raise CorruptData("the raw image has a zero tile size", path=tf.name)
        across, down = -(-width // tw), -(-height // th)
        n, padded = across * down, (across * tw) * (down * th)
        tiled = True
    else:
        rps = min(tf.get1(ifd, TAG_ROWS_PER_STRIP, height) or height, height)
        off_tag, cnt_tag = TAG_STRIP_OFFSETS, TAG_STRIP_BYTE_COUNTS
        n, padded = -(-height // rps), height * width
        tiled = False
    if padded > max_frame_pixels():
        raise TooLarge(f"the raw image's tiles cover {padded / 1e6:.0f} megapixels, more than the "
                       f"{max_frame_pixels() / 1e6:.0f} MP this worker accepts", path=tf.name)
    if off_tag not in ifd.entries or cnt_tag not in ifd.entries:
        raise CorruptData("the raw image has no strip/tile offsets", path=tf.name)
    if {ifd.entries[off_tag].type, ifd.entries[cnt_tag].type} - {SHORT, LONG}:
        raise CorruptData("the raw image's strip/tile offsets are not stored as SHORT or LONG numbers", path=tf.name)
    listed = min(ifd.entries[off_tag].count, ifd.entries[cnt_tag].count)
    if listed < n:  # checked before n Segment objects exist: a damaged size could ask for billions
        raise TruncatedFile(
            f"the file is truncated or its raw data was stripped: it lists {listed} "
            f"of the {n} raw strips/tiles", path=tf.name)
    if tiled:
        segs = [Segment(i, (i // across) * th, (i % across) * tw, th, tw) for i in range(n)]
    else:
        segs = [Segment(i, i * rps, 0, min(rps, height - i * rps), width) for i in range(n)]
    offsets = tf.ints(ifd.entries[off_tag])
    counts = tf.ints(ifd.entries[cnt_tag])
    for i, (off, n) in enumerate(zip(offsets, counts)):
        if off + n > tf.size:
            raise TruncatedFile(
                f"the file is truncated: raw strip/tile {i} needs bytes {off}..{off + n} but the "
                f"file has only {tf.size} bytes", path=tf.name)
    if min(len(offsets), len(counts)) < len(segs):
        raise TruncatedFile(
            f"the file is truncated or its raw data was stripped: it lists {min(len(offsets), len(counts))} "
            f"of the {len(segs)} raw strips/tiles", path=tf.name)
    if len(offsets) != len(segs) or len(counts) != len(segs):
        raise CorruptData(f"the raw image lists {len(offsets)} strips/tiles, {len(segs)} expected", path=tf.name)
    return tiled, segs, offsets, counts, ifd.entries[off_tag], ifd.entries[cnt_tag]


def read_layout(tf: TiffFile, path: str) -> tuple[RawLayout, dict]:
    """The raw IFD's storage layout plus its interpretation tags (CFA, levels, area)."""
    ifd = find_raw_ifd(tf)
    width, height = tf.get1(ifd, TAG_IMAGE_WIDTH), tf.get1(ifd, TAG_IMAGE_LENGTH)
    if not width or not height:
        raise CorruptData("the raw image has no size", path=path)
    if tf.get1(ifd, TAG_SAMPLES_PER_PIXEL, 1) != 1:
        raise UnsupportedLayout("the CFA raw image has more than one sample per pixel", path=path)
    bits = int(tf.get1(ifd, TAG_BITS_PER_SAMPLE, 1))
    sample_format = tf.get1(ifd, TAG_SAMPLE_FORMAT, 1)
    if sample_format != 1:
        raise UnsupportedLayout(f"raw samples of SampleFormat {sample_format} (not unsigned integer) "
                                "are not supported", path=path)
    compression = tf.get1(ifd, TAG_COMPRESSION, 1)
    if compression not in SUPPORTED_COMPRESSIONS:
        raise UnsupportedCompression(
            f"raw data compression {compression_name(compression)} is not supported; "
            "supported: uncompressed, lossless JPEG (7), JPEG XL (52546)", path=path)
    if compression == UNCOMPRESSED and not (bits in (8, 16) or 9 <= bits <= 15):
        raise UnsupportedLayout(f"uncompressed raw data with {bits} bits per sample is not supported", path=path)
    if bits > 16 or bits < 1:
        raise UnsupportedLayout(f"raw data with {bits} bits per sample is not supported", path=path)
    _check_declared_size(tf, height, width, bits, compression, path)

    active = tuple(int(v) for v in tf.get(ifd, TAG_ACTIVE_AREA, (0, 0, height, width))[:4])
    t, l, b, r = active
    if not (0 <= t < b <= height and 0 <= l < r <= width):
        raise CorruptData(f"ActiveArea {list(active)} lies outside the {height}x{width} raw frame", path=path)
    cfa = _cfa_pattern(tf, ifd, (t, l))
    black, dh, dv = _black_levels(tf, ifd, active)
    lin = tf.get(ifd, TAG_LINEARIZATION_TABLE)
    table = None
    if lin is not None:
        table = np.array(lin, dtype=np.int64)
        if table.size == 0 or table.min() < 0 or table.max() > 65535:
            raise UnsupportedLinearization("the LinearizationTable maps outside 0..65535 DN", path=path)
        table = table.astype(np.uint16)
    white_default = (int(table.max()) if table is not None else (1 << bits) - 1)
    white = tf.get(ifd, TAG_WHITE_LEVEL, (white_default,))
    tiled, segs, offsets, counts, off_e, cnt_e = _segments(tf, ifd, height, width)

    ifd0 = tf.ifd0
    layout = RawLayout(
        path=path, file_size=tf.size, file_mtime_ns=tf.mtime_ns, byteorder=tf.bo, ifd_name=ifd.name,
        height=height, width=width,
        bits=bits, compression=compression, tiled=tiled, segments=segs, offsets=offsets,
        byte_counts=counts, offsets_entry=off_e, byte_counts_entry=cnt_e, linearization=table,
        row_interleave=int(tf.get1(ifd, TAG_ROW_INTERLEAVE, 1)),
        column_interleave=int(tf.get1(ifd, TAG_COLUMN_INTERLEAVE, 1)),
        new_digest_entry=ifd0.entries.get(TAG_NEW_RAW_IMAGE_DIGEST),
        old_digest_entry=ifd0.entries.get(TAG_RAW_IMAGE_DIGEST),
        unique_id_entry=ifd0.entries.get(TAG_RAW_DATA_UNIQUE_ID),
        software_entry=ifd0.entries.get(TAG_SOFTWARE),
        xmp_entry=ifd0.entries.get(TAG_XMP),
        ifd0_offset=ifd0.offset,
    )
    for attr, entry in (("digest_stored_hex", layout.new_digest_entry),
                        ("raw_digest_stored_hex", layout.old_digest_entry),
                        ("unique_id_hex", layout.unique_id_entry)):
        if entry is not None and entry.nbytes == 16:
            setattr(layout, attr, tf.raw_bytes(entry).hex())
    neutral = tf.get(ifd0, TAG_AS_SHOT_NEUTRAL)
    info = {
        "cfa": cfa, "active_area": active, "black": black, "delta_h": dh, "delta_v": dv,
        "white": float(white[0]), "as_shot_neutral": tuple(float(v) for v in neutral) if neutral else None,
    }
    return layout, info


def _check_declared_size(tf: TiffFile, height: int, width: int, bits: int, compression: int, path: str) -> None:
    """Refuse a declared frame the file cannot hold or the memory budget cannot take, before any
    array of that size (or any per-row/per-tile list) exists.

    Uncompressed data needs every stored bit in the file; lossless JPEG needs at least one bit per
    sample (the shortest Huffman code); JPEG XL has no useful lower bound, only the budget.
    """
    pixels = height * width
    if pixels > max_frame_pixels():
        raise TooLarge(f"the raw image declares {height}x{width} samples ({pixels / 1e6:.0f} MP), more than "
                       f"the {max_frame_pixels() / 1e6:.0f} MP this worker accepts", path=path)
    need = {UNCOMPRESSED: height * ((width * bits + 7) // 8), LJPEG: pixels // 8}.get(compression, 0)
    if need > tf.size:
        raise TruncatedFile(f"the file is truncated or its size tags are damaged: a {height}x{width} raw image "
                            f"needs at least {need} bytes, the file has {tf.size}", path=path)


def linearize(stored: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Apply a LinearizationTable: stored value v -> table[min(v, len-1)] (DNG spec), uint16."""
    idx = np.minimum(stored, len(table) - 1)
    return table[idx]


def read_dng(path, *, metadata: bool = True, pixels: bool = True) -> RawImage:
    """Read a CFA raw DNG.

    ``metadata=False`` reads the tag metadata only (no exiftool, so temperature is None);
    ``pixels=False`` skips decoding: ``cfa_dn`` is then a read-only all-zero view of the frame's
    shape (no memory), everything else is filled in. Raises the errors in the module docstring.

    ``cfa_dn`` is read-only: the stages make new frames, and the writer trusts it to hold the
    source's pixels (to skip unchanged tiles) only while it is the array returned here and still
    read-only. A caller that edits it makes it writable first (``flags.writeable = True``); the
    writer then compares every tile with the source file itself.
    """
    path = os.fspath(path)
    with open_tiff(path) as tf:
        with _named_errors(path):
            layout, info = read_layout(tf, path)
            meta = metadata_from_tags(tf)
        if pixels:
            stored = decode_all(tf.data, layout)
        else:
            stored = np.broadcast_to(np.uint16(0), (layout.height, layout.width))
    if pixels and layout.compression != UNCOMPRESSED and stored.size and int(stored.max()) > (1 << layout.bits) - 1:
        # a compressed stream can hold more bits than BitsPerSample says: the file contradicts
        # itself, and writing it back at its declared depth would clip every pixel
        raise CorruptData(f"the raw data holds values beyond its {layout.bits} bits per sample", path=path)
    cfa_dn = stored
    if pixels and layout.linearization is not None:
        cfa_dn = linearize(stored, layout.linearization)
    if pixels:  # read-only: while it stays so, the writer knows it still holds the source's pixels
        cfa_dn.flags.writeable = False
        layout.source_pixels = weakref.ref(cfa_dn)
    if metadata:
        meta = add_exiftool_metadata(meta, path)
    return RawImage(
        cfa_dn=cfa_dn, cfa=info["cfa"], active_area=info["active_area"], white_level_dn=info["white"],
        black_repeat_dn=info["black"], black_delta_h_dn=info["delta_h"], black_delta_v_dn=info["delta_v"],
        bits_per_sample=layout.bits, metadata=meta, path=path, layout=layout,
        as_shot_neutral=info["as_shot_neutral"],
    )


def read_stored(raw_layout: RawLayout) -> np.ndarray:
    """Decode the source's stored (not linearised) values again, for the writer."""
    with open_tiff(raw_layout.path) as tf:
        return decode_all(tf.data, raw_layout)


def read_camera_metadata(path, tags: TiffFile | None = None) -> CameraMetadata:
    """Metadata of the DNG at ``path``: its tags, plus exiftool's temperature when available.

    ``tags`` may be an already parsed :class:`~hotpixels.dng.tiff.TiffFile` of the same file.
    """
    path = os.fspath(path)
    if tags is None:
        with open_tiff(path) as tf:
            meta = metadata_from_tags(tf)
    else:
        meta = metadata_from_tags(tags)
    return add_exiftool_metadata(meta, path)
