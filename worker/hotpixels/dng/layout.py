"""How the raw pixels of one DNG are stored: the writer's private map of the source file.

A raw IFD's pixels are cut into *segments* (strips or tiles). Each segment covers a rectangle of
the full frame starting at (y0, x0) and is stored as ``seg_h`` x ``seg_w`` samples (tiles are
padded to the full tile size at the right and bottom edges; the last strip holds only the rows
that remain). :class:`RawLayout` records the segment grid, the compression, the bit depth, where
the offset/byte-count arrays and the digest tags lie in the file, and the LinearizationTable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .tiff import Entry

COMPRESSION_NAMES = {
    1: "uncompressed", 2: "CCITT RLE", 5: "LZW", 6: "old-style JPEG", 7: "lossless JPEG",
    8: "Deflate (Adobe)", 32773: "PackBits", 32946: "Deflate", 34892: "lossy JPEG",
    52546: "JPEG XL",
}
UNCOMPRESSED, LJPEG, DEFLATE, LOSSY_JPEG, JPEG_XL = 1, 7, 8, 34892, 52546


def compression_name(code: int) -> str:
    return f"{code} ({COMPRESSION_NAMES.get(code, 'unknown')})"


@dataclass(frozen=True)
class Segment:
    """One strip or tile: its index, where it starts in the frame and its stored size."""

    index: int
    y0: int
    x0: int
    seg_h: int
    seg_w: int

    def frame_slices(self, height: int, width: int) -> tuple[slice, slice]:
        """The part of the full frame this segment covers (clipped at the frame edges)."""
        return slice(self.y0, min(self.y0 + self.seg_h, height)), slice(self.x0, min(self.x0 + self.seg_w, width))

    def visible_shape(self, height: int, width: int) -> tuple[int, int]:
        return min(self.seg_h, height - self.y0), min(self.seg_w, width - self.x0)


@dataclass(frozen=True)
class JpegGeometry:
    """The frame of one lossless JPEG stream (SOF3 + SOS): what the re-encoder must reproduce."""

    precision: int  # bits per sample of the JPEG frame (2..16)
    height: int
    width: int
    components: int
    predictor: int  # 1..7 (ITU T.81 table H.1)
    point_transform: int  # Al; re-encoding requires 0


@dataclass
class RawLayout:
    """Everything the writer needs to put new pixels back exactly where the source had them."""

    path: str
    file_size: int
    file_mtime_ns: int  # the source's modification time when it was read (the writer checks it)
    byteorder: str  # "<" or ">"
    ifd_name: str
    height: int
    width: int
    bits: int  # BitsPerSample of the stored samples
    compression: int
    tiled: bool
    segments: list[Segment]
    offsets: list[int]
    byte_counts: list[int]
    offsets_entry: Entry
    byte_counts_entry: Entry
    linearization: np.ndarray | None = None  # LinearizationTable (stored value -> linear DN)
    row_interleave: int = 1
    column_interleave: int = 1
    jpeg: dict[int, JpegGeometry] = field(default_factory=dict)  # per segment index, LJPEG only
    new_digest_entry: Entry | None = None  # NewRawImageDigest (IFD0)
    old_digest_entry: Entry | None = None  # RawImageDigest (IFD0)
    unique_id_entry: Entry | None = None  # RawDataUniqueID (IFD0)
    software_entry: Entry | None = None
    xmp_entry: Entry | None = None
    ifd0_offset: int = 0
    digest_stored_hex: str | None = None
    raw_digest_stored_hex: str | None = None
    unique_id_hex: str | None = None
    # weak reference to the frame the reader returned (RawImage.cfa_dn, made read-only): while it is
    # still raw.cfa_dn and still read-only it holds the source's pixels (see the writer)
    source_pixels: Any = None

    @property
    def compression_name(self) -> str:
        return compression_name(self.compression)

    @property
    def packed(self) -> bool:
        return self.compression == UNCOMPRESSED and self.bits not in (8, 16)

    def row_bytes(self, seg: Segment) -> int:
        """Bytes of one stored row of an uncompressed segment (rows start on byte boundaries)."""
        return (seg.seg_w * self.bits + 7) // 8

    def describe(self) -> dict:
        return {
            "ifd": self.ifd_name,
            "compression": self.compression_name,
            "storage": ("tiles" if self.tiled else "strips"),
            "segments": len(self.segments),
            "segment_size": [self.segments[0].seg_h, self.segments[0].seg_w] if self.segments else None,
            "bits_per_sample": self.bits,
            "packed": self.packed,
            "linearization_table": None if self.linearization is None else int(len(self.linearization)),
            "interleave": [self.row_interleave, self.column_interleave],
            "jpeg": (None if not self.jpeg else _jpeg_summary(self.jpeg)),
            "new_raw_image_digest": self.digest_stored_hex,
            "raw_image_digest": self.raw_digest_stored_hex,
            "raw_data_unique_id": self.unique_id_hex,
        }


def _jpeg_summary(jpeg: dict[int, JpegGeometry]) -> dict:
    g = next(iter(jpeg.values()))
    return {"precision": g.precision, "frame": [g.height, g.width], "components": g.components,
            "predictor": g.predictor}
