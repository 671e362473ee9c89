"""DNG raw image digests (DNG spec 1.7, tags NewRawImageDigest 51111 and RawImageDigest 50972).

Both are MD5 digests of the *stored* raw pixels (before the LinearizationTable), in sensor order
(any Row/ColumnInterleaveFactor undone), samples as little-endian 16-bit integers (8-bit data is
widened to 16 bits, as the Adobe DNG SDK does so that converting 8 <-> 16 bit storage keeps the
digest):

* NewRawImageDigest (``dng_negative::FindFastImageDigest`` in the SDK): the frame is cut into
  256 x 256 tiles (row-major, edge tiles clipped to the frame); each tile's pixels, row by row and
  plane after plane (a LinearRaw tile: all its R rows, then G, then B; checked against the digest
  the Adobe DNG SDK writes for a 3-plane image), get their own MD5; the digest is the MD5 of the
  16-byte tile digests concatenated in tile order.
  Tiles are independent, so they are hashed on a thread pool (hashlib releases the GIL).
* RawImageDigest (legacy, ``FindImageDigest``): one MD5 over the whole frame, row by row (planes
  interleaved per pixel; only CFA frames, one plane, are checked).

Checked against the SDK-written samples (their stored digests are reproduced exactly).
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..parallel import in_groups, map_chunks
from .decode import N_THREADS

DIGEST_TILE = 256


def _as_le16(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        frame = frame[:, :, None]
    return frame.astype("<u2", copy=False)


def new_raw_image_digest(frame: np.ndarray) -> bytes:
    """NewRawImageDigest (16 bytes) of a (H, W) or (H, W, planes) unsigned integer frame."""
    data = _as_le16(frame)
    h, w = data.shape[:2]
    tiles = [(y, x) for y in range(0, h, DIGEST_TILE) for x in range(0, w, DIGEST_TILE)]

    def one(yx: tuple[int, int]) -> bytes:
        y, x = yx
        block = np.ascontiguousarray(np.moveaxis(data[y:y + DIGEST_TILE, x:x + DIGEST_TILE], 2, 0))
        return hashlib.md5(memoryview(block).cast("B")).digest()

    groups = map_chunks(lambda group: [one(t) for t in group], in_groups(tiles), N_THREADS)
    digests = [d for group in groups for d in group]
    return hashlib.md5(b"".join(digests)).digest()


def raw_image_digest(frame: np.ndarray) -> bytes:
    """Legacy RawImageDigest (16 bytes): MD5 of the whole frame as little-endian 16-bit samples."""
    data = np.ascontiguousarray(_as_le16(frame))
    return hashlib.md5(memoryview(data).cast("B")).digest()


def new_raw_data_unique_id(old_id: bytes | None, new_digest: bytes) -> bytes:
    """RawDataUniqueID of the corrected file: MD5(old ID + new NewRawImageDigest), deterministic.

    A new ID tells Lightroom/Camera Raw that the raw data changed (its caches key on it), while
    the same source corrected the same way gets the same ID.
    """
    return hashlib.md5((old_id or b"") + new_digest).digest()


def compressed_tiles_digest(tiles: list[bytes]) -> bytes:
    """NewRawImageDigest of a raw stored with JPEG XL (or lossy JPEG) compression.

    For these the SDK digests the compressed bytes, not the pixels (``dng_jpeg_image::FindDigest``):
    MD5 of each tile's bytes, then MD5 of the concatenated tile digests (checked on the SDK's
    JPEG XL sample).
    """
    return hashlib.md5(b"".join(hashlib.md5(t).digest() for t in tiles)).digest()
