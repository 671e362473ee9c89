"""Encode stored sample values back into the source's segment format.

* Uncompressed: 16-bit in the file's byte order, 8-bit, or 9..15-bit packed MSB-first with each
  row starting on a byte boundary (exactly what :mod:`decode` reads).
* Lossless JPEG: the tile is reshaped row-major into the *source's* JPEG frame (height, width,
  components — Adobe's 2-component Bayer frames stay 2-component) and encoded with the source's
  predictor and precision by :mod:`hotpixels.dng.ljpeg` (numpy; on a 24 MP photo 0.36 CPU-s where
  libjpeg-turbo's lossless encoder takes 0.86, streams 0.02 % smaller), a few tiles per call. The
  streams are not decoded here: the writer decodes each one again on the encoding thread
  (:func:`hotpixels.dng.writer._encode_checked`: every sample equal to what was meant) and checks
  that the output file holds exactly those streams (:func:`hotpixels.dng.writer.verify_output`), so
  a codec problem can never write wrong pixels silently, and each tile is decoded once, not twice.
"""

from __future__ import annotations

import imagecodecs
import numpy as np

from ..errors import UnsupportedLayout
from .layout import JpegGeometry, RawLayout, Segment
from .ljpeg import encode_lossless_jpegs


def encode_uncompressed(tile: np.ndarray, layout: RawLayout, seg: Segment) -> bytes | memoryview:
    """Bytes of one uncompressed (seg_h, seg_w) segment, ready to overwrite the source's bytes."""
    tile = np.ascontiguousarray(tile, dtype=np.uint16)
    if layout.bits == 16:
        return memoryview(np.ascontiguousarray(tile.astype(layout.byteorder + "u2", copy=False))).cast("B")
    if layout.bits == 8:
        return tile.astype(np.uint8).tobytes()
    return imagecodecs.packints_encode(tile, layout.bits, runlen=seg.seg_w)


def encode_ljpeg(tile: np.ndarray, geom: JpegGeometry, seg: Segment) -> bytes:
    """One lossless JPEG stream with the source tile's frame geometry, predictor and precision."""
    return encode_ljpegs([tile], geom, [seg])[0]


def encode_ljpegs(tiles: list[np.ndarray], geom: JpegGeometry, segs: list[Segment]) -> list[bytes]:
    """One stream per tile, for tiles of one frame geometry, encoded together (a few tiles per
    call: the writer's threads hand the GIL over less often); each stream is exactly what its tile
    alone would give."""
    if geom.point_transform:
        raise UnsupportedLayout("re-encoding lossless JPEG tiles with a point transform is not supported")
    if not 1 <= geom.components <= 4 or not 1 <= geom.predictor <= 7 or not 2 <= geom.precision <= 16:
        raise UnsupportedLayout(f"re-encoding lossless JPEG tiles of {geom.components} components, predictor "
                                f"{geom.predictor} and {geom.precision}-bit precision is not supported")
    frames = np.empty((len(tiles), geom.height, geom.width, geom.components), dtype=np.uint16)
    for frame, tile, seg in zip(frames, tiles, segs):
        _fill_frame(frame.reshape(-1), np.asarray(tile), seg)
    if geom.precision < 16:  # what the frame cannot hold is clipped, like every other storage
        np.minimum(frames, (1 << geom.precision) - 1, out=frames)
    return encode_lossless_jpegs(frames, geom.predictor, geom.precision)


def _fill_frame(flat: np.ndarray, tile: np.ndarray, seg: Segment) -> None:
    """The tile's samples row-major into its frame's samples ``flat`` (one copy)."""
    if tile.size > flat.size:
        raise UnsupportedLayout(f"tile {seg.index} is larger than its lossless JPEG frame")
    flat[:tile.size].reshape(tile.shape)[...] = tile
    if tile.size < flat.size:  # a frame taller than the segment (last strip): repeat the last row
        flat[tile.size:] = np.resize(flat[tile.size - seg.seg_w:tile.size], flat.size - tile.size)
