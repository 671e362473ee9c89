"""Write a corrected DNG: a byte copy of the source with only the raw pixels (and what must follow
them) changed.

What changes, and nothing else:

1. raw pixel bytes. Uncompressed strips/tiles are re-packed in place (same bit depth, same
   packing, same byte order). Lossless JPEG tiles are re-encoded only when at least one of their
   pixels changed, with the source's JPEG frame geometry, predictor and precision. Inside each
   run of back-to-back tile slots the tiles are laid out again in file order (a stream that grew
   a little pushes the next ones along; unchanged tiles are copied byte for byte; a stream that
   shrank leaves zero bytes), and whatever no longer fits the run is appended at the end of the
   file (4-byte aligned); StripOffsets/TileOffsets and byte counts are rewritten in place.
   MakerNotes, DNGPrivateData and every other tag's data never move.
2. NewRawImageDigest and RawImageDigest (when present, DNG spec 1.7; see :mod:`digest`; hashed on
   a side thread while the file is copied and the tiles are encoded) and
   RawDataUniqueID = MD5(old ID + new digest) when a raw value changed (deterministic; tells
   Adobe's caches the raw changed); a write that changes no raw value keeps the source's ID.
3. the HotPixels marker (:mod:`marker`): Software and the XMP packet, in place when they fit,
   else appended and re-pointed; a tag the source lacks is added by writing a new IFD0 at the end
   (the old entries, in their order and with any duplicates, and all their out-of-line values stay
   as they are).

Embedded previews (IFD0 thumbnail, preview SubIFDs) are left as they were: they still show the
uncorrected image until a raw converter regenerates them.

Safety: the source is opened read-only; the output is written to a temporary file in the
destination folder (its name carries the process id: a run killed mid-write leaves a file the next
run there removes, see :func:`hotpixels.fileio.remove_stale_temps`), then **read back** with the
project's own reader (:func:`verify_output`: every raw pixel equal to what was meant — each
re-encoded tile is decoded again on the encoding thread right after it is encoded, and the file
must hold exactly those streams —, and every IFD, SubIFD and Exif IFD holding the source's tags
with the source's values, but for the tags a correction changes) and only then takes its name:
atomically and exclusively (:func:`hotpixels.fileio.claim_name`: when ``dst_path`` was taken
meanwhile, the next of ``alternatives``), so two runs never share an output. Any failure or cancel removes the
temporary file. The destination must differ from the source and not exist (``overwrite=True``
replaces an existing output). JPEG XL sources are rewritten as lossless
JPEG tiles (Compression 7, interleave factors 1): this project never writes deflate or JPEG XL CFA
data.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import (
    CorruptData, DestinationUnwritable, FileNotReadable, HotPixelsError, InvalidOption, OutputExists,
    UnsupportedCompression, UnsupportedLayout,
)
from ..fileio import claim_name, remove_stale_temps, temp_path
from ..parallel import in_groups
from ..progress import check_cancel, report
from .decode import (
    N_THREADS, decode_all, decode_own_ljpeg, decode_segment, interleave, parse_jpeg_geometry, segment_bytes,
)
from .digest import new_raw_data_unique_id, new_raw_image_digest, raw_image_digest
from .encode import encode_ljpegs, encode_uncompressed
from .layout import JPEG_XL, LJPEG, UNCOMPRESSED, JpegGeometry, RawLayout, Segment, compression_name
from .marker import mark_xmp, software_value
from .reader import open_tiff, read_layout
from .tiff import (
    ASCII, BYTE, TAG_CFA_REPEAT_DIM, TAG_COLUMN_INTERLEAVE, TAG_COMPRESSION, TAG_NEW_RAW_IMAGE_DIGEST,
    TAG_RAW_DATA_UNIQUE_ID, TAG_RAW_IMAGE_DIGEST, TAG_ROW_INTERLEAVE, TAG_SOFTWARE, TAG_STRIP_BYTE_COUNTS,
    TAG_STRIP_OFFSETS, TAG_TILE_BYTE_COUNTS, TAG_TILE_OFFSETS, TAG_XMP, TYPES, Entry, Ifd, TiffFile,
)

ALIGN = 4
JXL_SETTING_TAGS = (52553, 52554, 52555)  # JXLDistance, JXLEffort, JXLDecodeSpeed (DNG 1.7)


# -- stored values ----------------------------------------------------------------------------------
def inverse_linearization(table: np.ndarray) -> np.ndarray:
    """(65536,) stored value for every linear DN: exact where the DN is in the table's image
    (the lowest stored value that maps to it), else the stored value of the nearest table entry."""
    table = np.asarray(table, dtype=np.int64)
    order = np.argsort(table, kind="stable")
    sorted_vals = table[order]
    dn = np.arange(65536)
    pos = np.clip(np.searchsorted(sorted_vals, dn), 0, len(table) - 1)
    below = np.clip(pos - 1, 0, len(table) - 1)
    use_below = np.abs(sorted_vals[below] - dn) < np.abs(sorted_vals[pos] - dn)
    idx = np.where(use_below, below, pos)
    # among equal table values searchsorted gives the first in sorted order = lowest stored index
    return order[idx].astype(np.uint16)


def stored_frame(new_cfa_dn: np.ndarray, layout: RawLayout) -> np.ndarray:
    """The stored (pre-LinearizationTable) values to write, in sensor order, uint16.

    Values are rounded to integers and clipped to what the storage holds (0 .. 2**bits - 1);
    with a LinearizationTable, unchanged sites keep their stored value and changed ones get the
    stored value whose linear DN is nearest (:func:`inverse_linearization`).
    """
    maxval = (1 << layout.bits) - 1
    new = np.asarray(new_cfa_dn)
    if not np.issubdtype(new.dtype, np.integer):
        new = np.rint(new)  # float DN from a correction: nearest integer, not truncation
    if layout.linearization is None:
        if new.dtype == np.uint16 and (layout.bits == 16 or int(new.max(initial=0)) <= maxval):
            return new
        return np.clip(new, 0, maxval).astype(np.uint16)
    table = layout.linearization
    old_stored = _decode_source(layout)
    old_linear = table[np.minimum(old_stored, len(table) - 1)]
    changed = new != old_linear
    out = old_stored.copy()
    inv = inverse_linearization(table)
    out[changed] = inv[np.clip(new[changed], 0, 65535).astype(np.int64)]
    return np.minimum(out, maxval).astype(np.uint16)


def _decode_source(layout: RawLayout) -> np.ndarray:
    """The source's stored values again (files with a LinearizationTable need them)."""
    with open_tiff(layout.path) as tf:
        return decode_all(tf.data, layout)


# -- the file being written ------------------------------------------------------------------------
class _Output:
    """Random-access writes into the temporary copy, plus appends at its (aligned) end."""

    def __init__(self, f, byteorder: str):
        self.f = f
        self.bo = byteorder
        f.seek(0, os.SEEK_END)
        self.end = f.tell()

    def write_at(self, pos: int, data) -> None:
        self.f.seek(pos)
        self.f.write(data)

    def read_at(self, pos: int, n: int) -> bytes:
        self.f.seek(pos)
        return self.f.read(n)

    def append(self, data) -> int:
        pad = (-self.end) % ALIGN
        if pad:
            self.write_at(self.end, b"\0" * pad)
            self.end += pad
        pos = self.end
        self.write_at(pos, data)
        self.end += len(data)
        if self.end >= 1 << 32:
            raise DestinationUnwritable("the corrected file would exceed the 4 GB TIFF limit")
        return pos

    def write_entry_values(self, e: Entry, values: list[int]) -> None:
        char = TYPES[e.type][0]
        if e.type not in (3, 4) or len(values) != e.count:  # the source's own tag: its layout, not a request
            raise UnsupportedLayout(f"tag {e.tag} of this file (type {e.type}, {e.count} values) cannot be "
                                    f"rewritten with {len(values)} numbers")
        limit = 0xFFFF if e.type == 3 else 0xFFFFFFFF
        if max(values, default=0) > limit:
            raise DestinationUnwritable(f"tag {e.tag} (16-bit offsets) cannot point past 64 kB")
        self.write_at(e.value_pos, struct.pack(f"{self.bo}{len(values)}{char}", *values))


def _check_destination(src: Path, dst: Path, overwrite: bool) -> None:
    same = dst.resolve() == src.resolve() or (dst.exists() and src.exists() and os.path.samefile(dst, src))
    if same:
        raise OutputExists(f"the output would replace the source file {src}; choose another name", path=str(dst))
    if dst.exists() and not overwrite:
        raise OutputExists(f"the output file already exists: {dst}", path=str(dst))
    if dst.is_dir():
        raise DestinationUnwritable(f"the output path is a folder: {dst}", path=str(dst))
    if not dst.parent.is_dir():
        raise DestinationUnwritable(f"the destination folder does not exist: {dst.parent}", path=str(dst))


def write_corrected_dng(raw, new_cfa_dn: np.ndarray, dst_path, *, note: dict | None = None,
                        overwrite: bool = False, progress: Callable[[int, int, str], None] | None = None,
                        cancel: threading.Event | None = None, alternatives: Iterable = ()) -> dict[str, Any]:
    """Write ``new_cfa_dn`` (full frame, linearised DN like ``raw.cfa_dn``) as a new DNG.

    ``alternatives``: names to take, in order, when ``dst_path`` is taken by the time the file is
    complete (another run); without them that is :class:`OutputExists`. ``"path"`` in the result
    is the name the file got.

    ``raw`` is the :class:`RawImage` the reader returned for the source (with or without
    pixels). Returns ``{"path", "bytes", "digest", "raw_data_unique_id", "segments",
    "segments_rewritten", "segments_appended", "compression", "seconds"}`` (``compression`` is the
    output's: a JPEG XL source comes out as lossless JPEG).
    """
    t0 = time.perf_counter()
    layout: RawLayout = raw.layout
    if not isinstance(layout, RawLayout):
        raise InvalidOption("write_corrected_dng needs a RawImage from hotpixels.dng.reader.read_dng",
                            data={"param": "raw"})
    new = np.asarray(new_cfa_dn)
    if new.shape != (layout.height, layout.width):
        raise InvalidOption(f"new_cfa_dn has shape {new.shape}, the raw frame is {(layout.height, layout.width)}",
                            data={"param": "new_cfa_dn"})
    if layout.compression not in (UNCOMPRESSED, LJPEG, JPEG_XL):
        raise UnsupportedCompression(f"cannot write raw data with compression {compression_name(layout.compression)}",
                                     path=layout.path)
    src, dst = Path(layout.path), Path(os.fspath(dst_path))
    names = iter(alternatives)
    if not overwrite and dst.exists():  # taken since the caller chose it (another run): the next free one
        dst = next((Path(c) for c in names if not Path(c).exists()), dst)
    _check_destination(src, dst, overwrite)
    try:
        st = os.stat(src)
    except OSError as exc:
        raise FileNotReadable(f"cannot read the source {src}: {exc.strerror or exc}", path=str(src)) from None
    if st.st_size != layout.file_size or st.st_mtime_ns != layout.file_mtime_ns:
        raise FileNotReadable(f"the source {src} changed since it was read; read it again", path=str(src))

    stored = stored_frame(new, layout)
    file_order = interleave(stored, layout.row_interleave, layout.column_interleave)
    remove_stale_temps(dst.parent)
    tmp = temp_path(dst)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise DestinationUnwritable(f"cannot write into {dst.parent}: {exc.strerror or exc}", path=str(dst)) from None
    side = ThreadPoolExecutor(1, thread_name_prefix="hp-digest")
    digests = side.submit(_digests_of, stored, layout)  # hashed while the file is copied and the tiles encoded
    try:
        shutil.copyfile(src, tmp)  # sendfile/copy_file_range on Linux: no copy through Python
        with open(tmp, "r+b") as f:
            out = _Output(f, layout.byteorder)
            with open_tiff(src) as tf:
                fresh, _ = read_layout(tf, str(src))  # exact positions in this very file
                if fresh.compression == JPEG_XL:
                    stats, checked = _write_jxl_as_ljpeg(tf, fresh, stored, out, progress, cancel)
                else:
                    stats, checked = _write_pixels(tf, fresh, raw, file_order, out, progress, cancel)
                check_cancel(cancel)
                digest = _write_digests(tf, fresh, digests.result(), out, _raw_changed(tf, fresh, raw, stored, stats))
                _write_marker(tf, out, note)
            f.flush()
            os.fsync(f.fileno())
            size = out.end
        check_cancel(cancel)
        verify_output(src, tmp, stored, jxl_source=fresh.compression == JPEG_XL, checked_segments=checked)
        os.chmod(tmp, 0o644 & ~_UMASK)
        if overwrite:
            os.replace(tmp, dst)
        else:
            dst = claim_name(tmp, _then(dst, names))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DestinationUnwritable(f"cannot write {dst}: {exc.strerror or exc}", path=str(dst)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        side.shutdown(wait=True)
    return {
        "path": str(dst), "bytes": size, "digest": digest["new"], "raw_data_unique_id": digest["unique_id"],
        "segments": len(fresh.segments), **stats,
        "compression": compression_name(LJPEG if fresh.compression == JPEG_XL else fresh.compression),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _then(first: Path, rest: Iterable):
    yield first
    yield from rest


# tags a correction may change (value, count or position); everything else must read back equal
_IFD0_CHANGES = {TAG_NEW_RAW_IMAGE_DIGEST, TAG_RAW_IMAGE_DIGEST, TAG_RAW_DATA_UNIQUE_ID, TAG_SOFTWARE, TAG_XMP}
_IFD0_ADDS = {TAG_SOFTWARE, TAG_XMP}
_RAW_CHANGES = {TAG_STRIP_OFFSETS, TAG_STRIP_BYTE_COUNTS, TAG_TILE_OFFSETS, TAG_TILE_BYTE_COUNTS}
_JXL_CHANGES = {TAG_COMPRESSION, TAG_ROW_INTERLEAVE, TAG_COLUMN_INTERLEAVE, *JXL_SETTING_TAGS}


def verify_output(src: Path, written: Path, stored: np.ndarray, *, jxl_source: bool = False,
                  checked_segments: dict[int, bytes] | None = None) -> None:
    """Read ``written`` back with the project's reader before it may take its name.

    Its raw pixels (stored values, sensor order) must equal ``stored`` sample for sample, and its
    directory structure must be the source's: the same IFDs, SubIFDs and Exif IFD, each with the
    source's tags and values, except the tags a correction changes (raw offsets/byte counts, the
    digests and unique ID, Software and XMP; compression and interleave for a JPEG XL source).
    Raises :class:`CorruptData` naming what differs (the caller removes the file).

    ``checked_segments`` (lossless JPEG output): segment index -> the stream that was decoded again
    right after it was encoded and gave exactly the values meant (:func:`_encode_checked`); every
    other segment was found unchanged (its values equal the source's). The pixels are then checked
    without decoding the whole file a second time: the raw layout is read from the written file,
    and each segment's bytes there must be that checked stream, or the source's own bytes of it.
    Without it the written raw data are decoded and compared with ``stored``.
    """
    def fail(why: str):
        return CorruptData(f"the corrected file did not read back correctly ({why}); nothing was written",
                           path=str(src))

    try:
        with open_tiff(written) as out_tf, open_tiff(src) as src_tf:
            out_layout, _ = read_layout(out_tf, str(written))
            src_layout, _ = read_layout(src_tf, str(src))
            if out_layout.ifd_name != src_layout.ifd_name:
                raise fail(f"the raw image moved from {src_layout.ifd_name} to {out_layout.ifd_name}")
            _compare_structure(src_tf, out_tf, src_layout.ifd_name, jxl_source, fail)
            if checked_segments is not None:
                _compare_segment_bytes(src_tf, src_layout, out_tf, out_layout, checked_segments, fail)
                return
            pixels = decode_all(out_tf.data, out_layout)
    except CorruptData:
        raise
    except HotPixelsError as exc:
        raise fail(exc.message) from None
    if pixels.shape != stored.shape or not np.array_equal(pixels, stored):
        n = int(np.count_nonzero(pixels != stored)) if pixels.shape == stored.shape else -1
        raise fail(f"{n} raw samples differ from what was meant" if n >= 0 else "the raw frame changed size")


def _compare_segment_bytes(src_tf: TiffFile, src_layout: RawLayout, out_tf: TiffFile, out_layout: RawLayout,
                           checked: dict[int, bytes], fail) -> None:
    """Each raw segment of the written file holds its checked stream, or the source's bytes of it."""
    if out_layout.segments != src_layout.segments:
        raise fail("the raw strips/tiles changed their grid")
    if out_layout.compression != LJPEG:
        raise fail(f"the raw data came out as {compression_name(out_layout.compression)}")
    for seg in out_layout.segments:
        want = checked.get(seg.index)
        if want is None:
            want = bytes(segment_bytes(src_tf.data, src_layout, seg))
        if bytes(segment_bytes(out_tf.data, out_layout, seg)) != want:  # bytes == bytes: one memcmp
            raise fail(f"raw segment {seg.index} does not hold the stream that was checked")


def _compare_structure(src_tf: TiffFile, out_tf: TiffFile, raw_name: str, jxl_source: bool, fail) -> None:
    def every_ifd(tf: TiffFile) -> dict[str, Ifd]:
        found = {}
        for ifd in tf.walk():
            found[ifd.name] = ifd
            if ifd.exif is not None:
                found[ifd.exif.name] = ifd.exif
        return found

    src_ifds, out_ifds = every_ifd(src_tf), every_ifd(out_tf)
    if set(src_ifds) != set(out_ifds):
        raise fail(f"image directories {sorted(set(src_ifds) ^ set(out_ifds))} differ")
    for name, a in src_ifds.items():
        b = out_ifds[name]
        may_change = set()
        may_add: set[int] = set()
        if name == "IFD0":
            may_change |= _IFD0_CHANGES
            may_add |= _IFD0_ADDS
        if name == raw_name:
            may_change |= _RAW_CHANGES | (_JXL_CHANGES if jxl_source else set())
        missing = set(a.entries) - set(b.entries) - (set(JXL_SETTING_TAGS) if jxl_source and name == raw_name else set())
        added = set(b.entries) - set(a.entries) - may_add
        if missing or added:
            raise fail(f"{name} lost tags {sorted(missing)} / gained tags {sorted(added)}")
        for tag, ea in a.entries.items():
            if tag in may_change or tag not in b.entries:
                continue
            eb = b.entries[tag]
            if (ea.type, ea.count) != (eb.type, eb.count) or _value_bytes(src_tf, ea) != _value_bytes(out_tf, eb):
                raise fail(f"tag {tag} of {name} changed")


def _value_bytes(tf: TiffFile, e: Entry) -> bytes | None:
    try:
        return tf.raw_bytes(e)
    except HotPixelsError:
        return None  # a value the source already could not hold: compared as "absent" on both sides


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# read once at import (os.umask is process-wide: calling it later could race with other threads)
_UMASK = _read_umask()


# -- pixels -----------------------------------------------------------------------------------------
def _segment_values(file_order: np.ndarray, seg: Segment, old_tile: np.ndarray | None) -> np.ndarray:
    """(seg_h, seg_w) values of one segment; padding outside the frame keeps the old values."""
    h, w = file_order.shape
    ys, xs = seg.frame_slices(h, w)
    vh, vw = ys.stop - ys.start, xs.stop - xs.start
    if (vh, vw) == (seg.seg_h, seg.seg_w):
        return file_order[ys, xs]
    tile = old_tile.copy() if old_tile is not None else np.zeros((seg.seg_h, seg.seg_w), np.uint16)
    tile[:vh, :vw] = file_order[ys, xs]
    return tile


def _write_pixels(tf: TiffFile, layout: RawLayout, raw, file_order, out: _Output, progress,
                  cancel) -> tuple[dict, dict[int, bytes] | None]:
    """Put the new pixels into the output: ``(stats, checked streams by segment index)``; the
    streams are None for uncompressed data (:func:`verify_output` then decodes the written file)."""
    segs = layout.segments
    h, w = layout.height, layout.width
    if layout.compression == UNCOMPRESSED:
        for k, seg in enumerate(segs):
            check_cancel(cancel)
            partial = seg.visible_shape(h, w) != (seg.seg_h, seg.seg_w)
            old = decode_segment(tf.data, layout, seg) if partial else None
            values = _segment_values(file_order, seg, old)
            out.write_at(layout.offsets[seg.index], encode_uncompressed(values, layout, seg))
            report(progress, k + 1, len(segs), "writing raw data")
        return {"segments_rewritten": len(segs), "segments_appended": 0}, None

    # lossless JPEG: only tiles with a changed pixel are re-encoded. raw.cfa_dn tells which, unless
    # it was read without pixels or may have been edited since (see _has_source_pixels): then each
    # tile is decoded from the source and compared.
    old_order = (interleave(_stored_of(raw, layout), layout.row_interleave, layout.column_interleave)
                 if _has_source_pixels(raw, file_order.shape) else None)
    # each tile's frame geometry as the reader parsed it (the same file: its size and mtime were checked)
    known_geometry = raw.layout.jpeg if raw.layout.offsets == layout.offsets else {}

    def prepare(seg: Segment):
        """``(values, geometry)`` to encode for this tile, or None when none of its values changed."""
        ys, xs = seg.frame_slices(h, w)
        vh, vw = ys.stop - ys.start, xs.stop - xs.start
        partial = (vh, vw) != (seg.seg_h, seg.seg_w)
        if old_order is not None:
            if np.array_equal(old_order[ys, xs], file_order[ys, xs]):
                return None
            old_tile = decode_segment(tf.data, layout, seg) if partial else None  # padding only
        else:
            old_tile = decode_segment(tf.data, layout, seg)
            if np.array_equal(old_tile[:vh, :vw], file_order[ys, xs]):
                return None
        geom = (layout.jpeg.get(seg.index) or known_geometry.get(seg.index)
                or parse_jpeg_geometry(segment_bytes(tf.data, layout, seg)))
        return _segment_values(file_order, seg, old_tile), geom

    streams = _encode_all(segs, prepare, cancel, progress)
    contents = {seg.index: s for seg, s in zip(segs, streams) if s is not None}
    appended = _place_streams(tf, layout, out, contents)
    return {"segments_rewritten": len(contents), "segments_appended": appended}, contents


def _encode_checked(tiles: list[np.ndarray], geom: JpegGeometry, segs: list[Segment]) -> list[bytes]:
    """Lossless JPEG streams of ``tiles`` ((seg_h, seg_w) each, one frame geometry), each decoded
    again at once by libjpeg-turbo (:func:`~hotpixels.dng.decode.decode_own_ljpeg`): it must give
    back exactly its tile (a codec fault is caught here, on the encoding thread; :func:`verify_output`
    then checks that the file holds these very streams)."""
    streams = encode_ljpegs(tiles, geom, segs)
    for values, seg, stream in zip(tiles, segs, streams):
        try:
            back = decode_own_ljpeg(stream, seg)
        except CorruptData as exc:
            raise CorruptData(f"the corrected file did not read back correctly (re-encoded tile {seg.index}: "
                              f"{exc.message}); nothing was written") from None
        if not np.array_equal(back, values):
            n = int(np.count_nonzero(back != values))
            raise CorruptData(f"the corrected file did not read back correctly ({n} raw samples of re-encoded "
                              f"tile {seg.index} differ from what was meant); nothing was written")
    return streams


def _encode_all(segs, prepare, cancel, progress) -> list:
    """Streams for every segment (None where ``prepare(seg)`` says it is unchanged) on a thread
    pool, eight tiles per task and those of one frame geometry encoded together (numpy and
    imagecodecs release the GIL), with progress; after a cancel the remaining segments are skipped
    and :class:`Cancelled` raised."""
    stop = threading.Event()

    def some(group: list[Segment]) -> list:
        if stop.is_set() or (cancel is not None and cancel.is_set()):
            stop.set()
            return [None] * len(group)
        jobs = [prepare(seg) for seg in group]
        streams: list = [None] * len(group)
        by_geometry: dict[JpegGeometry, list[int]] = {}
        for k, job in enumerate(jobs):
            if job is not None:
                by_geometry.setdefault(job[1], []).append(k)
        for geom, ks in by_geometry.items():
            for k, stream in zip(ks, _encode_checked([jobs[k][0] for k in ks], geom, [group[k] for k in ks])):
                streams[k] = stream
        return streams

    streams: list = []
    with ThreadPoolExecutor(N_THREADS) as pool:
        for group in pool.map(some, in_groups(list(segs))):
            for stream in group:
                streams.append(stream)
                report(progress, len(streams), len(segs), "encoding raw tiles")
    check_cancel(cancel)
    return streams


def _place_streams(tf: TiffFile, layout: RawLayout, out: _Output, contents: dict[int, bytes]) -> int:
    """Put new segment streams into the file and rewrite the offset/byte-count arrays.

    Inside each run of back-to-back slots (:func:`_arenas`) the segments are laid out again in
    file order (unchanged ones copied byte for byte); what no longer fits is appended at the end.
    Returns how many segments were appended.
    """
    offsets, counts = list(layout.offsets), list(layout.byte_counts)
    appended = 0
    for arena_start, arena_end, members in _arenas(tf, layout):
        if not any(i in contents for i in members):
            continue
        cursor = arena_start
        for i in members:
            data = contents.get(i)
            if data is None:
                data = bytes(tf.data[layout.offsets[i]:layout.offsets[i] + layout.byte_counts[i]])
            if cursor + len(data) <= arena_end:
                out.write_at(cursor, data)
                offsets[i] = cursor
                cursor += len(data)
            else:
                offsets[i] = out.append(data)
                appended += 1
            counts[i] = len(data)
        if arena_end > cursor:
            out.write_at(cursor, b"\0" * (arena_end - cursor))
    out.write_entry_values(layout.offsets_entry, offsets)
    out.write_entry_values(layout.byte_counts_entry, counts)
    return appended


def _write_jxl_as_ljpeg(tf: TiffFile, layout: RawLayout, stored: np.ndarray, out: _Output, progress,
                       cancel) -> tuple[dict, dict[int, bytes]]:
    """Rewrite a JPEG XL raw as lossless JPEG tiles on the same tile grid.

    The tiles are encoded in sensor order (Row/ColumnInterleaveFactor set to 1 in place), with
    Adobe's 2-component frame for a Bayer CFA (1 component otherwise), predictor 1, precision =
    BitsPerSample; edge tiles are padded by repeating the last row/column. Compression becomes 7.
    The JXL encoder-setting tags (JXLDistance/Effort/DecodeSpeed) are removed from the IFD in place
    (the Adobe DNG SDK warns "JXL compression expected" when they stay).
    """
    ifd = next(i for i in tf.walk() if i.name == layout.ifd_name)
    bayer_like = tuple(tf.get(ifd, TAG_CFA_REPEAT_DIM, (2, 2))[:2]) == (2, 2)
    comps = 2 if bayer_like and all(s.seg_w % 2 == 0 for s in layout.segments) else 1
    h, w = layout.height, layout.width

    def prepare(seg: Segment):
        ys, xs = seg.frame_slices(h, w)
        vh, vw = ys.stop - ys.start, xs.stop - xs.start
        tile = np.pad(stored[ys, xs], ((0, seg.seg_h - vh), (0, seg.seg_w - vw)), mode="edge")
        return tile, JpegGeometry(layout.bits, seg.seg_h, seg.seg_w // comps, comps, 1, 0)

    streams = _encode_all(layout.segments, prepare, cancel, progress)
    contents = {seg.index: s for seg, s in zip(layout.segments, streams)}
    appended = _place_streams(tf, layout, out, contents)
    for tag, value in ((TAG_COMPRESSION, LJPEG), (TAG_ROW_INTERLEAVE, 1), (TAG_COLUMN_INTERLEAVE, 1)):
        e = ifd.entries.get(tag)
        if e is not None:
            out.write_entry_values(e, [value])
    _drop_entries(out, ifd, JXL_SETTING_TAGS)
    return {"segments_rewritten": len(streams), "segments_appended": appended}, contents


def _arenas(tf: TiffFile, layout: RawLayout) -> list[tuple[int, int, list[int]]]:
    """Runs of strip/tile slots that lie back to back in the file (gaps of < 4 zero bytes).

    Such a run holds nothing but raw data, so its tiles can be laid out again inside it: a
    re-encoded tile that grew a little pushes the following ones along instead of each being
    appended, and only what overflows the run goes to the end of the file. A slot that overlaps
    another (some writers store identical tiles once) is a run of its own with no room
    (``start == end``), so a changed tile there is always appended and the shared bytes stay.
    """
    order = sorted(range(len(layout.offsets)), key=lambda i: (layout.offsets[i], layout.byte_counts[i]))
    shared: set[int] = set()
    reach, reach_i = -1, -1
    for i in order:
        start, end = layout.offsets[i], layout.offsets[i] + layout.byte_counts[i]
        if start < reach:
            shared.update((i, reach_i))
        if end > reach:
            reach, reach_i = end, i
    runs: list[tuple[int, int, list[int]]] = []
    for i in order:
        start, end = layout.offsets[i], layout.offsets[i] + layout.byte_counts[i]
        if i in shared:
            runs.append((start, start, [i]))
            continue
        if runs and runs[-1][2][-1] not in shared:
            r_start, r_end, members = runs[-1]
            gap = start - r_end
            if 0 <= gap < ALIGN and not any(tf.data[r_end:start]):
                members.append(i)
                runs[-1] = (r_start, end, members)
                continue
        runs.append((start, end, [i]))
    return runs


def _has_source_pixels(raw, shape: tuple[int, int]) -> bool:
    """Whether ``raw.cfa_dn`` still holds the source's pixels: it is the frame the reader returned
    (read with pixels) and still read-only, so nobody can have edited it in place."""
    ref = raw.layout.source_pixels
    frame = raw.cfa_dn
    return (ref is not None and ref() is frame and not frame.flags.writeable and frame.shape == shape)


def _stored_of(raw, layout: RawLayout) -> np.ndarray:
    """The source's stored values as the reader saw them (linearised files: decode again)."""
    if layout.linearization is None:
        return raw.cfa_dn
    return _decode_source(layout)


# -- digests, unique ID, marker ---------------------------------------------------------------------
def _raw_changed(tf: TiffFile, layout: RawLayout, raw, stored: np.ndarray, stats: dict) -> bool:
    """Whether any stored raw value differs from the source's.

    Lossless JPEG: a tile is re-encoded exactly when one of its values changed. Otherwise the
    values are compared with the source's (``raw.cfa_dn`` when it still holds them, else decoded).
    """
    if layout.compression == LJPEG:
        return stats["segments_rewritten"] > 0
    old = _stored_of(raw, layout) if _has_source_pixels(raw, stored.shape) else decode_all(tf.data, layout)
    return not np.array_equal(old, stored)


def _digests_of(stored: np.ndarray, layout: RawLayout) -> tuple[bytes, bytes | None]:
    """(NewRawImageDigest, RawImageDigest or None when the source has none) of the new raw values."""
    has_old = layout.old_digest_entry is not None and layout.old_digest_entry.nbytes == 16
    return new_raw_image_digest(stored), (raw_image_digest(stored) if has_old else None)


def _write_digests(tf: TiffFile, layout: RawLayout, digests: tuple[bytes, bytes | None], out: _Output,
                   raw_changed: bool) -> dict:
    """Store the digests of the new raw values (:func:`_digests_of`); RawDataUniqueID changes only
    with them (Lightroom and Camera Raw key their caches on it: an unchanged raw keeps its ID)."""
    new, old_style = digests
    if layout.new_digest_entry is not None and layout.new_digest_entry.nbytes == 16:
        out.write_at(layout.new_digest_entry.value_pos, new)
    if old_style is not None:
        out.write_at(layout.old_digest_entry.value_pos, old_style)
    unique = None
    e = layout.unique_id_entry
    if e is not None and e.nbytes == 16:
        unique = new_raw_data_unique_id(tf.raw_bytes(e), new) if raw_changed else tf.raw_bytes(e)
        out.write_at(e.value_pos, unique)
    return {"new": new.hex(), "unique_id": unique.hex() if unique else None}


def _write_marker(tf: TiffFile, out: _Output, note: dict | None) -> None:
    ifd0 = tf.ifd0
    old_sw = _old_value(tf, ifd0.entries.get(TAG_SOFTWARE), text=True)
    software = software_value(old_sw).encode("utf-8") + b"\0"
    old_xmp = _old_value(tf, ifd0.entries.get(TAG_XMP))
    xmp = mark_xmp(old_xmp, note)
    missing: dict[int, tuple[int, bytes]] = {}
    for tag, typ, value in ((TAG_SOFTWARE, ASCII, software), (TAG_XMP, BYTE, xmp)):
        e = ifd0.entries.get(tag)
        if e is None:
            missing[tag] = (typ, value)
        else:
            _set_value(out, e, value, shared=not e.inline and _overlaps_other(tf, e))
    if missing:
        _rewrite_ifd0(tf, out, missing)


def _old_value(tf: TiffFile, e: Entry | None, text: bool = False):
    """The source's value of a tag we rewrite, or None when absent or beyond the end of the file
    (a damaged count: the new value is then appended, never written over what the count spans)."""
    if e is None:
        return None
    try:
        return tf.text(e) if text else tf.raw_bytes(e)
    except HotPixelsError:
        return None


def _set_value(out: _Output, e: Entry, value: bytes, shared: bool = False) -> None:
    """Store ``value`` (bytes of an ASCII/BYTE/UNDEFINED tag) in place if it fits, else append.

    ``shared``: the old value's bytes overlap another structure of the file (a damaged or hostile
    count, e.g. a Software tag "holding" the raw SubIFD): never written over, the value is appended.
    """
    count = len(value)
    if count <= 4:
        out.write_at(e.entry_pos + 4, struct.pack(out.bo + "I", count))
        out.write_at(e.entry_pos + 8, value.ljust(4, b"\0"))
    elif not e.inline and not shared and count <= e.nbytes:
        out.write_at(e.value_pos, value + b"\0" * (e.nbytes - count))
        out.write_at(e.entry_pos + 4, struct.pack(out.bo + "I", count))
    else:
        pos = out.append(value)
        out.write_at(e.entry_pos + 4, struct.pack(out.bo + "II", count, pos))


def _overlaps_other(tf: TiffFile, e: Entry) -> bool:
    """Whether ``e``'s out-of-line value bytes overlap any IFD, any other tag's value or any
    strip/tile of any image in the file."""
    lo, hi = e.value_pos, e.value_pos + e.nbytes
    stack: list[Ifd] = list(tf.walk())
    stack += [i.exif for i in list(stack) if i.exif is not None]
    for ifd in stack:
        if ifd.offset < hi and lo < ifd.next_pos + 4:
            return True
        for other in ifd.entries.values():
            if other is e:
                continue
            if not other.inline and other.value_pos < hi and lo < other.value_pos + other.nbytes:
                return True
        for off_tag, cnt_tag in ((TAG_STRIP_OFFSETS, TAG_STRIP_BYTE_COUNTS), (TAG_TILE_OFFSETS, TAG_TILE_BYTE_COUNTS)):
            if off_tag in ifd.entries and cnt_tag in ifd.entries:
                try:
                    spans = zip(tf.ints(ifd.entries[off_tag]), tf.ints(ifd.entries[cnt_tag]))
                    if any(o < hi and lo < o + n for o, n in spans):
                        return True
                except HotPixelsError:
                    return True
    return False


def _drop_entries(out: _Output, ifd, tags) -> None:
    """Remove entries from an IFD in place: the IFD shrinks at the same offset (the freed bytes
    at its end are zeroed); the remaining entries, as already patched in the output, keep their
    values and order."""
    (n,) = struct.unpack(out.bo + "H", out.read_at(ifd.offset, 2))
    blobs = [out.read_at(ifd.offset + 2 + 12 * i, 12) for i in range(n)]
    keep = [b for b in blobs if struct.unpack(out.bo + "H", b[:2])[0] not in tags]
    if len(keep) == n:
        return
    next_ptr = out.read_at(ifd.offset + 2 + 12 * n, 4)
    body = struct.pack(out.bo + "H", len(keep)) + b"".join(keep) + next_ptr
    out.write_at(ifd.offset, body + b"\0" * (12 * (n - len(keep))))


def _rewrite_ifd0(tf: TiffFile, out: _Output, new_tags: dict[int, tuple[int, bytes]]) -> None:
    """Append a copy of IFD0 with extra entries and point the header at it.

    The copied entries are taken from the output (with the patches already made) and kept exactly
    as they were: same order, duplicates included (some writers store DNGVersion twice); their
    out-of-line values stay where they are, so nothing else moves. Each new entry goes before the
    first entry with a higher tag (a sorted IFD stays sorted; an unsorted one keeps its order).
    """
    ifd0 = tf.ifd0
    (n_file,) = struct.unpack(out.bo + "H", out.read_at(ifd0.offset, 2))
    blobs = [out.read_at(ifd0.offset + 2 + 12 * i, 12) for i in range(n_file)]
    next_ptr = out.read_at(ifd0.offset + 2 + 12 * n_file, 4)
    for tag, (typ, value) in sorted(new_tags.items()):
        count = len(value) // TYPES[typ][1]
        if len(value) <= 4:
            blob = struct.pack(out.bo + "HHI", tag, typ, count) + value.ljust(4, b"\0")
        else:
            pos = out.append(value)
            blob = struct.pack(out.bo + "HHII", tag, typ, count, pos)
        tags = [struct.unpack(out.bo + "H", b[:2])[0] for b in blobs]
        at = next((i for i, t in enumerate(tags) if t > tag), len(blobs))
        blobs.insert(at, blob)
    body = struct.pack(out.bo + "H", len(blobs)) + b"".join(blobs) + next_ptr
    new_pos = out.append(body)
    out.write_at(4, struct.pack(out.bo + "I", new_pos))
