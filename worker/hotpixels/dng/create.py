"""Write a CFA DNG from scratch (used by the simulator and tests), with our own little TIFF writer.

The file is little-endian TIFF ("II*"), DNG 1.4. Layouts (``layout=``):

* ``"strip"`` — uncompressed 16-bit samples, one strip, raw image in IFD0;
* ``"packed"`` — uncompressed, BitsPerSample = ``bits`` (10/12/14), DNG bit packing: samples are
  packed most-significant bit first (big-endian bit order) and every row is padded to a byte;
* ``"subifd"`` — IFD0 holds a small 8-bit RGB preview (NewSubFileType 1), the raw image is in a
  SubIFD (NewSubFileType 0), as Adobe's converter writes;
* ``"ljpeg-tiles"`` — lossless JPEG (Compression 7, predictor 1) in ``tile_px`` tiles, edge tiles
  padded by replication; ``ljpeg_components=2`` encodes each tile as a 2-component JPEG of half
  width (Adobe's Bayer layout: one JPEG row = one tile row, components interleaved), 1 = plain;
* ``"ljpeg-tiles-subifd"`` — the same tiles in a SubIFD behind a preview IFD0;
* ``"packed-tiles"`` — uncompressed tiles (``tile_px``, an int or (height, width)), each packed at
  ``bits`` like ``"packed"`` (a tile row is padded to a byte), edge tiles padded by replication, as
  PiDNG writes (one tile of the whole frame there).

Options for test inputs that imitate other writers: ``color_matrix=None`` leaves ColorMatrix1 out;
``extra_ifd0`` adds IFD0 entries as given, duplicates included (PiDNG writes DNGVersion and
DNGBackwardVersion twice); ``pixel_data=False`` writes every tag but no pixel bytes, the
strip/tile offsets pointing past the end of the file (a file whose pixel data was stripped; readers
must call it truncated). :func:`write_linear_dng` writes a LinearRaw (demosaiced, 3 samples per
pixel) DNG, which is not a CFA raw.

Tags: NewSubFileType, ImageWidth/Length, BitsPerSample, Compression, Photometric 32803 (CFA),
Make, Model, Orientation, strips or tiles, CFARepeatPatternDim, CFAPattern (anchored at the
ActiveArea's top-left, see :mod:`hotpixels.dng.cfa`), CFAPlaneColor 0,1,2, CFALayout 1,
BlackLevelRepeatDim/BlackLevel (the repeat also anchored at the ActiveArea), WhiteLevel,
ActiveArea, DefaultCropOrigin/Size, ColorMatrix1 + CalibrationIlluminant1, AsShotNeutral,
BaselineExposure, UniqueCameraModel, CameraSerialNumber (50735), DNGVersion 1.4, NewRawImageDigest
and RawDataUniqueID (optional), and an EXIF IFD
with ExposureTime, ISOSpeedRatings, DateTimeOriginal, BodySerialNumber (42033) and a MakerNote.

Sensor temperature: the MakerNote is a Pentax-style note (``"AOC\\0"`` + ``"II"`` + an IFD, no
out-of-line values so it survives being moved) with tag 0x0047 CameraTemperature (int8s, °C).
exiftool picks the Pentax decoder from the ``AOC\\0`` header alone (any Make), so it reports
``-G1``: ``[Pentax] CameraTemperature`` (``-G``: ``MakerNotes``), e.g. "19 C"; with ``-n``: 19.
The metadata reader finds it under the tag name ``CameraTemperature``.
"""

from __future__ import annotations

import datetime as _dt
import os
import struct
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from ..errors import InvalidOption
from ..fileio import atomic_write
from .cfa import CfaPattern
from .rawimage import CameraMetadata

LAYOUTS = ("strip", "packed", "subifd", "ljpeg-tiles", "ljpeg-tiles-subifd", "packed-tiles")

# TIFF field types
BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
_SIZES = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, SBYTE: 1, UNDEFINED: 1, SSHORT: 2, SLONG: 4, SRATIONAL: 8}

# sRGB D65 -> camera-ish matrix (XYZ to camera), a plausible CMOS body
DEFAULT_COLOR_MATRIX = (0.6722, -0.0635, -0.0963, -0.4287, 1.2460, 0.2028, -0.0908, 0.2162, 0.5668)


class _Entry:
    __slots__ = ("tag", "type", "count", "payload")

    def __init__(self, tag: int, typ: int, values: Any):
        self.tag, self.type = tag, typ
        self.payload, self.count = _encode(typ, values)


def _rational(v: float, signed: bool) -> tuple[int, int]:
    f = Fraction(v).limit_denominator(1_000_000)
    num, den = f.numerator, f.denominator
    limit = 2**31 - 1 if signed else 2**32 - 1
    while abs(num) > limit or den > limit:
        num, den = num // 2, max(1, den // 2)
    return num, den


def _encode(typ: int, values: Any) -> tuple[bytes, int]:
    if typ == ASCII:
        b = values.encode("ascii", "replace") + b"\0"
        return b, len(b)
    if typ == UNDEFINED or (typ == BYTE and isinstance(values, (bytes, bytearray))):
        return bytes(values), len(values)
    vals = list(values) if isinstance(values, (list, tuple, np.ndarray)) else [values]
    if typ in (RATIONAL, SRATIONAL):
        fmt = "<ii" if typ == SRATIONAL else "<II"
        return b"".join(struct.pack(fmt, *_rational(float(v), typ == SRATIONAL)) for v in vals), len(vals)
    fmt = {BYTE: "B", SHORT: "H", LONG: "I", SBYTE: "b", SSHORT: "h", SLONG: "i"}[typ]
    return struct.pack("<" + fmt * len(vals), *[int(v) for v in vals]), len(vals)


def _ifd_bytes(entries: list[_Entry], offset: int, next_ifd: int = 0) -> bytes:
    """One IFD at file ``offset``: table, next-IFD pointer, then out-of-line values (word aligned)."""
    entries = sorted(entries, key=lambda e: e.tag)
    table_len = 2 + 12 * len(entries) + 4
    table = bytearray(struct.pack("<H", len(entries)))
    extra = bytearray()
    for e in entries:
        table += struct.pack("<HHI", e.tag, e.type, e.count)
        if len(e.payload) <= 4:
            table += e.payload.ljust(4, b"\0")
        else:
            if (table_len + len(extra)) % 2:
                extra += b"\0"
            table += struct.pack("<I", offset + table_len + len(extra))
            extra += e.payload
    table += struct.pack("<I", next_ifd)
    return bytes(table + extra)


# -- pixel encodings ------------------------------------------------------------------------------
def pack_bits_msb(cfa_dn: np.ndarray, bits: int) -> bytes:
    """DNG bit packing: each row's samples MSB first, the row padded to whole bytes."""
    h, w = cfa_dn.shape
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint16)
    row_bits = w * bits
    pad = (-row_bits) % 8
    out = []
    for y0 in range(0, h, 256):  # bounded memory for large frames
        chunk = cfa_dn[y0:y0 + 256].astype(np.uint16)
        b = ((chunk[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(chunk.shape[0], row_bits)
        if pad:
            b = np.concatenate([b, np.zeros((chunk.shape[0], pad), np.uint8)], axis=1)
        out.append(np.packbits(b, axis=1).tobytes())
    return b"".join(out)


def tile_shape(tile_px: int | tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a tile from ``tile_px`` (one side, or both); TIFF wants multiples of 16."""
    th, tw = (int(tile_px), int(tile_px)) if np.ndim(tile_px) == 0 else (int(tile_px[0]), int(tile_px[1]))
    if th <= 0 or tw <= 0 or th % 16 or tw % 16:
        raise InvalidOption("tile_px must be a multiple of 16 (one side or (height, width))")
    return th, tw


def _tiles(cfa_dn: np.ndarray, th: int, tw: int) -> list[np.ndarray]:
    """(th, tw) tiles, row-major; edge tiles padded by replicating the last row/column."""
    h, w = cfa_dn.shape
    ty, tx = -(-h // th), -(-w // tw)
    padded = np.pad(cfa_dn, ((0, ty * th - h), (0, tx * tw - w)), mode="edge")
    return [np.ascontiguousarray(padded[i * th:(i + 1) * th, j * tw:(j + 1) * tw])
            for i in range(ty) for j in range(tx)]


def _ljpeg_tiles(cfa_dn: np.ndarray, th: int, tw: int, bits: int, components: int) -> list[bytes]:
    """Lossless-JPEG tiles (see :func:`_tiles`); 2 components: Adobe's half-width Bayer frame."""
    import imagecodecs

    return [imagecodecs.jpeg8_encode(tile.reshape(th, tw // 2, 2) if components == 2 else tile,
                                     lossless=True, predictor=1, bitspersample=bits)
            for tile in _tiles(cfa_dn, th, tw)]


def _preview_rgb(cfa_dn: np.ndarray, cfa: CfaPattern, black: float, white: float, max_side: int = 256) -> np.ndarray:
    """A small 8-bit RGB preview (per-colour block means, gamma 2.2) for the subifd layouts."""
    h, w = cfa_dn.shape
    step = max(cfa.repeat[0], int(np.ceil(max(h, w) / max_side / cfa.repeat[0])) * cfa.repeat[0])
    hh, ww = h // step * step, w // step * step
    colours = cfa.color_map((hh, ww))
    data = np.clip((cfa_dn[:hh, :ww].astype(np.float32) - black) / max(white - black, 1.0), 0, 1)
    rgb = np.zeros((hh // step, ww // step, 3), np.float32)
    for c in range(3):
        m = (colours == c).reshape(hh // step, step, ww // step, step).sum(axis=(1, 3))
        s = np.where(colours == c, data, 0).reshape(hh // step, step, ww // step, step).sum(axis=(1, 3))
        rgb[:, :, c] = s / np.maximum(m, 1)
    rgb = rgb / max(float(np.percentile(rgb, 99.5)), 1e-6)
    return (np.clip(rgb, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)


# -- metadata ---------------------------------------------------------------------------------------
def pentax_makernote(temperature_c: float | None) -> bytes:
    """A Pentax-style maker note: ``AOC\\0`` + ``II`` + IFD (PentaxVersion, CameraTemperature)."""
    entries = [_Entry(0x0000, BYTE, [4, 2, 0, 0])]
    if temperature_c is not None:
        entries.append(_Entry(0x0047, SBYTE, [int(np.clip(round(temperature_c), -128, 127))]))
    return b"AOC\0II" + _ifd_bytes(entries, 6)


def _exif_datetime(iso: str | None) -> str | None:
    if not iso:
        return None
    return _dt.datetime.fromisoformat(iso).strftime("%Y:%m:%d %H:%M:%S")


def _exif_entries(meta: CameraMetadata) -> list[_Entry]:
    e = [_Entry(36864, UNDEFINED, b"0230")]
    if meta.exposure_s is not None:
        e.append(_Entry(33434, RATIONAL, [meta.exposure_s]))
    if meta.iso is not None:
        e.append(_Entry(34855, SHORT, [min(int(round(meta.iso)), 65535)]))
        e.append(_Entry(34864, SHORT, [3]))  # SensitivityType: ISO speed
    dto = _exif_datetime(meta.capture_time)
    if dto:
        e.append(_Entry(36867, ASCII, dto))
        e.append(_Entry(36868, ASCII, dto))
    if meta.serial:
        e.append(_Entry(42033, ASCII, meta.serial))
    e.append(_Entry(37500, UNDEFINED, pentax_makernote(meta.temperature_c)))
    return e


def _raw_entries(shape, *, cfa: CfaPattern, active_area, black_level_dn, white_level_dn, bits: int) -> list[_Entry]:
    h, w = shape
    t, l, b, r = (int(v) for v in active_area)
    # a default crop inside the ActiveArea leaves raw converters room to demosaic the edge
    crop_margin_px = 8 if min(b - t, r - l) > 64 else 0
    black = np.atleast_2d(np.asarray(black_level_dn, dtype=np.float64))
    ry, rx = black.shape
    black_vals = black.ravel()
    black_entry = (_Entry(50714, LONG, black_vals) if np.all(black_vals == np.round(black_vals))
                   else _Entry(50714, RATIONAL, black_vals))
    return [
        _Entry(254, LONG, [0]),
        _Entry(256, LONG, [w]),
        _Entry(257, LONG, [h]),
        _Entry(262, SHORT, [32803]),
        _Entry(277, SHORT, [1]),
        _Entry(284, SHORT, [1]),
        _Entry(33421, SHORT, list(cfa.repeat)),
        _Entry(33422, BYTE, bytes(cfa.array.ravel().tolist())),
        _Entry(50710, BYTE, bytes([0, 1, 2])),
        _Entry(50711, SHORT, [1]),
        _Entry(50713, SHORT, [ry, rx]),
        black_entry,
        _Entry(50717, LONG, [int(white_level_dn)]),
        _Entry(50829, LONG, [t, l, b, r]),
        _Entry(50718, RATIONAL, [1, 1]),
        _Entry(50719, LONG, [crop_margin_px, crop_margin_px]),
        _Entry(50720, LONG, [r - l - 2 * crop_margin_px, b - t - 2 * crop_margin_px]),
        _Entry(50780, RATIONAL, [1.0]),  # BestQualityScale
    ]


def _main_entries(meta: CameraMetadata, color_matrix, as_shot_neutral) -> list[_Entry]:
    make, model = meta.make or "Unknown", meta.model or "Unknown"
    e = [
        _Entry(271, ASCII, make),
        _Entry(272, ASCII, model),
        _Entry(274, SHORT, [1]),
        _Entry(305, ASCII, "HotPixels simulator"),
        _Entry(50706, BYTE, [1, 4, 0, 0]),
        _Entry(50707, BYTE, [1, 1, 0, 0]),
        _Entry(50708, ASCII, meta.unique_camera_model or f"{make} {model}"),
        _Entry(50728, RATIONAL, list(as_shot_neutral)),
        _Entry(50730, SRATIONAL, [0.0]),
    ]
    if color_matrix is not None:
        e += [_Entry(50721, SRATIONAL, list(color_matrix)), _Entry(50778, SHORT, [21])]  # D65
    dt = _exif_datetime(meta.capture_time)
    if dt:
        e.append(_Entry(306, ASCII, dt))
    if meta.serial:
        e.append(_Entry(50735, ASCII, meta.serial))
    return e


# -- the writer -------------------------------------------------------------------------------------
def write_dng(path: str | os.PathLike, cfa_dn: np.ndarray, *, cfa: CfaPattern, active_area, black_level_dn,
              white_level_dn: float, bits: int = 16, layout: str = "strip", metadata: CameraMetadata | None = None,
              as_shot_neutral=(0.5, 1.0, 0.6), color_matrix=DEFAULT_COLOR_MATRIX,
              tile_px: int | tuple[int, int] = 256, ljpeg_components: int | None = None, digest: bool = True,
              extra_ifd0: Sequence[tuple[int, int, Any]] = (), pixel_data: bool = True) -> dict[str, Any]:
    """Write ``cfa_dn`` (full raw frame (H, W) uint16, masked border included) as a new DNG.

    ``active_area`` (top, left, bottom, right) full frame; ``cfa`` anchored at its top-left;
    ``black_level_dn`` a scalar or the BlackLevel repeat (ry, rx), also anchored there;
    ``bits`` the sample bit depth (``packed``/``packed-tiles`` store exactly that many bits, other
    layouts use it for the JPEG precision or write 16-bit samples); ``ljpeg_components`` defaults to
    2 for Bayer (Adobe's layout) and 1 otherwise. ``digest`` adds NewRawImageDigest and a
    RawDataUniqueID derived from it, as Adobe's converter does. ``extra_ifd0``: (tag, TIFF type,
    values) entries added to IFD0 as given; ``pixel_data=False``: no pixel bytes (module docstring).
    ``color_matrix=None`` leaves ColorMatrix1 out. Written atomically (temp file + rename).
    Returns ``{"path", "bytes", "layout"}``.
    """
    if layout not in LAYOUTS:
        raise InvalidOption(f"unknown DNG layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    cfa_dn = np.ascontiguousarray(cfa_dn, dtype=np.uint16)
    if cfa_dn.ndim != 2:
        raise InvalidOption("cfa_dn must be a 2-D (H, W) array")
    if not 8 <= bits <= 16:
        raise InvalidOption(f"bits must be 8..16, got {bits}")
    if int(cfa_dn.max(initial=0)) >= (1 << bits):
        raise InvalidOption(f"pixel values exceed {bits} bits")
    meta = metadata or CameraMetadata()
    h, w = cfa_dn.shape
    raw = _raw_entries(cfa_dn.shape, cfa=cfa, active_area=active_area, black_level_dn=black_level_dn,
                       white_level_dn=white_level_dn, bits=bits)

    if layout in ("strip", "subifd", "packed"):
        store_bits = bits if layout == "packed" else 16
        blobs = [_uncompressed(cfa_dn, store_bits)]
        raw += [_Entry(258, SHORT, [store_bits]), _Entry(259, SHORT, [1]), _Entry(278, LONG, [h])]
        tiled = False
    elif layout == "packed-tiles":
        th, tw = tile_shape(tile_px)
        blobs = [_uncompressed(t, bits) for t in _tiles(cfa_dn, th, tw)]
        raw += [_Entry(258, SHORT, [bits]), _Entry(259, SHORT, [1]), _Entry(322, LONG, [tw]), _Entry(323, LONG, [th])]
        tiled = True
    else:
        th, tw = tile_shape(tile_px)
        comps = ljpeg_components or (2 if cfa.is_bayer else 1)
        blobs = _ljpeg_tiles(cfa_dn, th, tw, bits, comps)
        raw += [_Entry(258, SHORT, [bits]), _Entry(259, SHORT, [7]), _Entry(322, LONG, [tw]), _Entry(323, LONG, [th])]
        tiled = True
    main = _main_entries(meta, color_matrix, as_shot_neutral) + [_Entry(t, typ, v) for t, typ, v in extra_ifd0]
    if digest:
        main += _digest_entries(cfa_dn)
    preview = None
    if layout.endswith("subifd"):
        preview = _preview_rgb(cfa_dn, cfa, float(np.mean(black_level_dn)), float(white_level_dn))
    size = _assemble(path, main, raw, blobs, tiled=tiled, meta=meta, preview=preview, pixel_data=pixel_data)
    return {"path": str(path), "bytes": size, "layout": layout}


def write_linear_dng(path: str | os.PathLike, rgb_dn: np.ndarray, *, white_level_dn: int = 65535,
                     metadata: CameraMetadata | None = None, subifd: bool = False, digest: bool = True,
                     pixel_data: bool = True, as_shot_neutral=(1.0, 1.0, 1.0),
                     color_matrix=DEFAULT_COLOR_MATRIX) -> dict[str, Any]:
    """Write ``rgb_dn`` ((H, W, 3) uint16, already demosaiced) as a LinearRaw DNG (Photometric 34892).

    Uncompressed 16-bit samples, interleaved per pixel, one strip; in IFD0, or with ``subifd`` in a
    SubIFD behind a small preview IFD0 (as phones write ProRAW). ``digest`` adds NewRawImageDigest
    over the three planes and a RawDataUniqueID. Not a CFA raw: the reader refuses it (1005).
    """
    rgb_dn = np.ascontiguousarray(rgb_dn, dtype=np.uint16)
    if rgb_dn.ndim != 3 or rgb_dn.shape[2] != 3:
        raise InvalidOption("rgb_dn must be an (H, W, 3) array")
    meta = metadata or CameraMetadata()
    h, w, _ = rgb_dn.shape
    raw = [
        _Entry(254, LONG, [0]), _Entry(256, LONG, [w]), _Entry(257, LONG, [h]), _Entry(258, SHORT, [16, 16, 16]),
        _Entry(259, SHORT, [1]), _Entry(262, SHORT, [34892]), _Entry(277, SHORT, [3]), _Entry(278, LONG, [h]),
        _Entry(284, SHORT, [1]), _Entry(50717, LONG, [white_level_dn] * 3), _Entry(50718, RATIONAL, [1, 1]),
        _Entry(50719, LONG, [0, 0]), _Entry(50720, LONG, [w, h]),
    ]
    main = _main_entries(meta, color_matrix, as_shot_neutral)
    if digest:
        main += _digest_entries(rgb_dn)
    preview = None
    if subifd:
        step = max(1, -(-max(h, w) // 256))
        preview = (rgb_dn[::step, ::step] >> 8).astype(np.uint8)
    size = _assemble(path, main, raw, [rgb_dn.astype("<u2").tobytes()], tiled=False, meta=meta,
                     preview=preview, pixel_data=pixel_data)
    return {"path": str(path), "bytes": size, "layout": "linear-raw-subifd" if subifd else "linear-raw"}


def _uncompressed(cfa_dn: np.ndarray, bits: int) -> bytes:
    return pack_bits_msb(cfa_dn, bits) if bits != 16 else cfa_dn.astype("<u2").tobytes()


def _digest_entries(frame: np.ndarray) -> list[_Entry]:
    from .digest import new_raw_image_digest

    md5 = new_raw_image_digest(frame)
    return [_Entry(51111, BYTE, md5), _Entry(50781, BYTE, md5)]  # NewRawImageDigest, RawDataUniqueID


def _assemble(path, main: list[_Entry], raw: list[_Entry], blobs: list[bytes], *, tiled: bool,
              meta: CameraMetadata, preview: np.ndarray | None, pixel_data: bool) -> int:
    """Lay the file out and write it: pixel data first (word aligned), then the Exif IFD, the raw
    SubIFD (with a ``preview``) and IFD0 last, so every pointer is known when an IFD is written.
    Without ``pixel_data`` the blobs are left out and the offsets point past the end of the file."""
    offsets_tag, counts_tag = (324, 325) if tiled else (273, 279)
    buf = bytearray(b"II*\0\0\0\0\0")
    offsets, cursor = [], len(buf)
    for blob in blobs:
        cursor += cursor % 2
        offsets.append(cursor)
        cursor += len(blob)
        if pixel_data:
            buf += b"\0" * (offsets[-1] - len(buf)) + blob
    offsets_entry = _Entry(offsets_tag, LONG, offsets)
    raw = raw + [offsets_entry, _Entry(counts_tag, LONG, [len(b) for b in blobs])]

    def append_ifd(entries: list[_Entry]) -> int:
        if len(buf) % 2:
            buf.extend(b"\0")
        off = len(buf)
        buf.extend(_ifd_bytes(entries, off))
        return off

    exif_off = append_ifd(_exif_entries(meta))
    main = main + [_Entry(34665, LONG, [exif_off])]
    if preview is not None:
        if len(buf) % 2:
            buf += b"\0"
        prev_off = len(buf)
        buf += preview.tobytes()
        sub_off = append_ifd(raw)
        ifd0 = main + [
            _Entry(254, LONG, [1]), _Entry(256, LONG, [preview.shape[1]]), _Entry(257, LONG, [preview.shape[0]]),
            _Entry(258, SHORT, [8, 8, 8]), _Entry(259, SHORT, [1]), _Entry(262, SHORT, [2]),
            _Entry(273, LONG, [prev_off]), _Entry(277, SHORT, [3]), _Entry(278, LONG, [preview.shape[0]]),
            _Entry(279, LONG, [preview.nbytes]), _Entry(284, SHORT, [1]), _Entry(330, LONG, [sub_off]),
        ]
    else:
        ifd0 = main + raw
    ifd0_off = append_ifd(ifd0)
    struct.pack_into("<I", buf, 4, ifd0_off)
    if not pixel_data:
        _point_past_the_end(buf, offsets_tag, offsets)
    atomic_write(path, bytes(buf))
    return len(buf)


def _point_past_the_end(buf: bytearray, offsets_tag: int, offsets: list[int]) -> None:
    """Move the raw IFD's strip/tile offsets past the end of ``buf`` (keeping their spacing)."""
    from .tiff import PHOTOMETRIC_CFA, PHOTOMETRIC_LINEAR_RAW, TiffFile

    tf = TiffFile(bytes(buf))
    ifd = next(i for i in tf.walk() if tf.get1(i, 262) in (PHOTOMETRIC_CFA, PHOTOMETRIC_LINEAR_RAW))
    e = ifd.entries[offsets_tag]
    shift = len(buf) + 4096 - offsets[0]
    struct.pack_into(f"<{len(offsets)}I", buf, e.value_pos, *[o + shift for o in offsets])
