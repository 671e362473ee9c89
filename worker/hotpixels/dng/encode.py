"""Encode stored sample values back into the source's segment format.

* Uncompressed: 16-bit in the file's byte order, 8-bit, or 9..15-bit packed MSB-first with each
  row starting on a byte boundary (exactly what :mod:`decode` reads).
* Lossless JPEG: the tile is reshaped row-major into the *source's* JPEG frame (height, width,
  components — Adobe's 2-component Bayer frames stay 2-component) and encoded with the source's
  predictor and precision by :mod:`hotpixels.dng.ljpeg` (numpy; on a 24 MP photo 0.39 CPU-s where
  libjpeg-turbo's lossless encoder takes 0.87, streams of the same size within 0.1 %). The
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
from .ljpeg import encode_lossless_jpeg


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
    if geom.point_transform:
        raise UnsupportedLayout("re-encoding lossless JPEG tiles with a point transform is not supported")
    if not 1 <= geom.components <= 4 or not 1 <= geom.predictor <= 7 or not 2 <= geom.precision <= 16:
        raise UnsupportedLayout(f"re-encoding lossless JPEG tiles of {geom.components} components, predictor "
                                f"{geom.predictor} and {geom.precision}-bit precision is not supported")
    frame_size = geom.height * geom.width * geom.components
    flat = np.ascontiguousarray(tile, dtype=np.uint16).reshape(-1)
    if flat.size > frame_size:
        raise UnsupportedLayout(f"tile {seg.index} is larger than its lossless JPEG frame")
    if flat.size < frame_size:  # a frame taller than the segment (last strip): repeat the last row
        flat = np.concatenate([flat, np.resize(flat[-seg.seg_w:], frame_size - flat.size)])
    shape = (geom.height, geom.width) if geom.components == 1 else (geom.height, geom.width, geom.components)
    frame = flat.reshape(shape)
    if geom.precision < 16:  # what the frame cannot hold is clipped, like every other storage
        frame = np.minimum(frame, (1 << geom.precision) - 1)
    return encode_lossless_jpeg(frame, geom.predictor, geom.precision)
