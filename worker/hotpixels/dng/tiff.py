"""The TIFF structure of a DNG with exact byte positions, for reading tags and patching a copy.

tifffile decodes tags well but hides where each value lies in the file; the writer patches pixel
data, offsets, byte counts, digests and a few tags *in place* in a copy of the source, so it needs
the position of every IFD entry and of every out-of-line value. This module parses classic TIFF
(little- or big-endian; DNG does not use BigTIFF) into :class:`Ifd` objects that know those
positions: IFD0 and its chain, SubIFDs (tag 330, recursively) and the Exif IFD (34665). MakerNotes
and DNGPrivateData are never parsed as IFDs: they are opaque bytes that never move.

Errors: a file that does not start like a TIFF raises :class:`NotTiff`; an IFD or tag value that
points past the end of the file raises :class:`TruncatedFile` (checked here, before any decode).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterator

from ..errors import CorruptData, NotTiff, TruncatedFile

# TIFF field types: code -> (struct char, size in bytes of one value)
TYPES: dict[int, tuple[str, int]] = {
    1: ("B", 1), 2: ("s", 1), 3: ("H", 2), 4: ("I", 4), 5: ("II", 8), 6: ("b", 1), 7: ("s", 1),
    8: ("h", 2), 9: ("i", 4), 10: ("ii", 8), 11: ("f", 4), 12: ("d", 8), 13: ("I", 4),
}
BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE, IFD = range(1, 14)

TAG_NEW_SUBFILE_TYPE = 254
TAG_IMAGE_WIDTH, TAG_IMAGE_LENGTH, TAG_BITS_PER_SAMPLE, TAG_COMPRESSION = 256, 257, 258, 259
TAG_PHOTOMETRIC = 262
TAG_MAKE, TAG_MODEL = 271, 272
TAG_STRIP_OFFSETS, TAG_SAMPLES_PER_PIXEL, TAG_ROWS_PER_STRIP, TAG_STRIP_BYTE_COUNTS = 273, 277, 278, 279
TAG_PLANAR_CONFIG = 284
TAG_SOFTWARE, TAG_DATETIME = 305, 306
TAG_PREDICTOR = 317
TAG_TILE_WIDTH, TAG_TILE_LENGTH, TAG_TILE_OFFSETS, TAG_TILE_BYTE_COUNTS = 322, 323, 324, 325
TAG_SUBIFDS = 330
TAG_SAMPLE_FORMAT = 339
TAG_XMP = 700
TAG_CFA_REPEAT_DIM, TAG_CFA_PATTERN = 33421, 33422
TAG_EXPOSURE_TIME = 33434
TAG_EXIF_IFD = 34665
TAG_ISO = 34855
TAG_DATETIME_ORIGINAL = 36867
TAG_OFFSET_TIME_ORIGINAL = 36881
TAG_SUBSEC_TIME_ORIGINAL = 37521
TAG_MAKER_NOTE = 37500
TAG_AMBIENT_TEMPERATURE = 37888
TAG_BODY_SERIAL = 42033
TAG_DNG_VERSION = 50706
TAG_UNIQUE_CAMERA_MODEL = 50708
TAG_CFA_PLANE_COLOR, TAG_CFA_LAYOUT, TAG_LINEARIZATION_TABLE = 50710, 50711, 50712
TAG_BLACK_REPEAT_DIM, TAG_BLACK_LEVEL, TAG_BLACK_DELTA_H, TAG_BLACK_DELTA_V = 50713, 50714, 50715, 50716
TAG_WHITE_LEVEL = 50717
TAG_AS_SHOT_NEUTRAL = 50728
TAG_CAMERA_SERIAL = 50735
TAG_DNG_PRIVATE_DATA = 50740
TAG_RAW_DATA_UNIQUE_ID = 50781
TAG_ACTIVE_AREA = 50829
TAG_RAW_IMAGE_DIGEST = 50972
TAG_NEW_RAW_IMAGE_DIGEST = 51111
TAG_ROW_INTERLEAVE, TAG_COLUMN_INTERLEAVE = 50975, 52547  # DNG 1.2 and DNG 1.7

PHOTOMETRIC_CFA, PHOTOMETRIC_LINEAR_RAW = 32803, 34892


@dataclass
class Entry:
    """One IFD entry: its tag, type, count and where its bytes lie in the file.

    ``entry_pos`` is the file offset of the 12-byte entry; ``value_pos`` the file offset of the
    value bytes (inside the entry when ``inline``, else the out-of-line block it points to).
    """

    tag: int
    type: int
    count: int
    entry_pos: int
    value_pos: int
    inline: bool

    @property
    def nbytes(self) -> int:
        return TYPES[self.type][1] * self.count


@dataclass
class Ifd:
    """One image file directory: entries by tag, child IFDs, and its place in the file."""

    offset: int
    name: str
    entries: dict[int, Entry]
    next_pos: int  # file offset of the 4-byte "next IFD" pointer
    subifds: list["Ifd"] = field(default_factory=list)
    exif: "Ifd | None" = None

    def __contains__(self, tag: int) -> bool:
        return tag in self.entries


class TiffFile:
    """A parsed classic TIFF held in memory (``data``) with typed tag access by position."""

    def __init__(self, data: bytes | bytearray | memoryview, name: str = "file", mtime_ns: int = 0):
        self.data = data
        self.mtime_ns = mtime_ns
        self.size = len(data)
        self.name = name
        if self.size < 8 or bytes(data[:2]) not in (b"II", b"MM"):
            raise NotTiff(f"not a TIFF/DNG file: {name} does not start with a TIFF header", path=name)
        self.bo = "<" if bytes(data[:2]) == b"II" else ">"
        magic, first = struct.unpack(self.bo + "HI", bytes(data[2:8]))
        if magic == 43:
            raise NotTiff(f"{name} is a BigTIFF file; DNG files are classic TIFF", path=name)
        if magic != 42:
            raise NotTiff(f"not a TIFF/DNG file: {name} has a bad TIFF magic number ({magic})", path=name)
        self._seen: set[int] = set()
        self.ifds: list[Ifd] = []
        offset, k = first, 0
        while offset and k < 64:
            try:
                ifd = self._parse_ifd(offset, f"IFD{k}")
            except (TruncatedFile, CorruptData):
                if k == 0:
                    raise
                break  # a damaged link after IFD0 ends the chain; what came before is usable
            self.ifds.append(ifd)
            offset = struct.unpack(self.bo + "I", bytes(data[ifd.next_pos:ifd.next_pos + 4]))[0]
            k += 1

    # -- parsing ---------------------------------------------------------------------------------
    def _need(self, pos: int, nbytes: int, what: str) -> None:
        if pos < 0 or pos + nbytes > self.size:
            raise TruncatedFile(
                f"the file is truncated or damaged: {what} lies beyond the end of the file "
                f"(bytes {pos}..{pos + nbytes} of {self.size})", path=self.name)

    def _parse_ifd(self, offset: int, name: str, depth: int = 0) -> Ifd:
        if offset in self._seen or depth > 8:
            raise CorruptData(f"the file is damaged: its IFDs form a loop ({name})", path=self.name)
        self._seen.add(offset)
        self._need(offset, 2, f"{name}")
        (n,) = struct.unpack(self.bo + "H", bytes(self.data[offset:offset + 2]))
        self._need(offset + 2, 12 * n + 4, f"{name} ({n} entries)")
        entries: dict[int, Entry] = {}
        for i in range(n):
            pos = offset + 2 + 12 * i
            tag, typ, count = struct.unpack(self.bo + "HHI", bytes(self.data[pos:pos + 8]))
            if typ not in TYPES:
                continue  # unknown type: TIFF readers must skip it
            nbytes = TYPES[typ][1] * count
            if nbytes <= 4:
                value_pos, inline = pos + 8, True
            else:
                (value_pos,) = struct.unpack(self.bo + "I", bytes(self.data[pos + 8:pos + 12]))
                inline = False
            entries[tag] = Entry(tag, typ, count, pos, value_pos, inline)
        ifd = Ifd(offset, name, entries, offset + 2 + 12 * n)
        for tag in (TAG_SUBIFDS,):
            if tag in entries:
                for j, sub_off in enumerate(self.ints(entries[tag])):
                    ifd.subifds.append(self._parse_ifd(sub_off, f"{name}.SubIFD{j}", depth + 1))
        if TAG_EXIF_IFD in entries:
            try:
                exif_at = self.ints(entries[TAG_EXIF_IFD])
                ifd.exif = self._parse_ifd(exif_at[0], f"{name}.Exif", depth + 1) if exif_at else None
            except (TruncatedFile, CorruptData):
                ifd.exif = None  # a damaged Exif IFD costs metadata, not the pixels
        return ifd

    # -- values ----------------------------------------------------------------------------------
    def raw_bytes(self, e: Entry) -> bytes:
        self._need(e.value_pos, e.nbytes, f"the value of tag {e.tag}")
        return bytes(self.data[e.value_pos:e.value_pos + e.nbytes])

    def values(self, e: Entry) -> tuple:
        """Decoded values: numbers as a tuple (rationals as floats), ASCII/UNDEFINED as bytes."""
        raw = self.raw_bytes(e)
        char, _ = TYPES[e.type]
        if e.type in (ASCII, UNDEFINED):
            return (raw,)
        if e.type in (RATIONAL, SRATIONAL):
            nums = struct.unpack(f"{self.bo}{2 * e.count}{char[0]}", raw)
            return tuple(nums[i] / nums[i + 1] if nums[i + 1] else 0.0 for i in range(0, len(nums), 2))
        return struct.unpack(f"{self.bo}{e.count}{char}", raw)

    def ints(self, e: Entry) -> list[int]:
        return [int(v) for v in self.values(e)]

    def text(self, e: Entry) -> str | None:
        raw = self.values(e)[0]
        if not isinstance(raw, bytes):
            return None
        s = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
        return s or None

    def get(self, ifd: Ifd | None, tag: int, default=None):
        """Values of ``tag`` in ``ifd`` (tuple; bytes for ASCII/UNDEFINED), or ``default``."""
        if ifd is None or tag not in ifd.entries:
            return default
        return self.values(ifd.entries[tag])

    def get1(self, ifd: Ifd | None, tag: int, default=None):
        v = self.get(ifd, tag)
        return default if v is None else v[0]

    # -- walking ---------------------------------------------------------------------------------
    def walk(self) -> Iterator[Ifd]:
        """Every image IFD: the IFD0 chain and all SubIFDs, depth first (not the Exif IFD)."""
        stack = list(reversed(self.ifds))
        while stack:
            ifd = stack.pop()
            yield ifd
            stack.extend(reversed(ifd.subifds))

    @property
    def ifd0(self) -> Ifd:
        if not self.ifds:
            raise NotTiff(f"not a TIFF/DNG file: {self.name} has no image directory", path=self.name)
        return self.ifds[0]

    def pack(self, typ: int, values) -> bytes:
        """Encode ``values`` as TIFF type ``typ`` in this file's byte order."""
        char, _ = TYPES[typ]
        if typ in (ASCII, UNDEFINED):
            return bytes(values)
        return struct.pack(f"{self.bo}{len(values)}{char}", *values)
