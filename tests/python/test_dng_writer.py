"""Writing corrected DNGs: the intended pixels and nothing else change, real readers (tifffile,
LibRaw, the Adobe DNG SDK, exiftool) agree, the source is never touched, errors leave nothing."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import threading

import numpy as np
import pytest

from conftest import require_tool, sample
from dng_testing import (
    dngpy_read, fake_correction, leftovers, metadata_differences, rawpy_raw, tifffile_raw, validate_warnings,
)
from hotpixels.dng.digest import new_raw_image_digest
from hotpixels.dng.reader import read_dng
from hotpixels.dng.writer import inverse_linearization, write_corrected_dng
from hotpixels.dng import writer as writer_mod
from hotpixels.errors import Cancelled, CorruptData, DestinationUnwritable, FileNotReadable, OutputExists

CFA_SAMPLES = ["tinydng_colorchart.dng", "sdk_colorchart_ljpeg.dng", "sdk_xtrans_ljpeg.dng",
               "built_gbrg_10bit_packed.dng"]
SDK_READABLE = ["tinydng_colorchart.dng", "sdk_colorchart_ljpeg.dng", "sdk_xtrans_ljpeg.dng"]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Each CFA sample corrected once (300 changed sites): (source, output, intended array)."""
    out_dir = tmp_path_factory.mktemp("written")
    cache = {}

    def get(name):
        if name not in cache:
            src = sample(name)
            before = sha(src)
            raw = read_dng(src)
            new = fake_correction(raw, seed=len(name))
            dst = out_dir / name.replace(".dng", "-hp.dng")
            result = write_corrected_dng(raw, new, dst, note={"Profile": "test body", "Sites": 300})
            assert sha(src) == before  # the source's bytes never change
            cache[name] = (src, dst, new, result)
        return cache[name]

    return get


@pytest.mark.parametrize("name", CFA_SAMPLES)
def test_round_trip_reads_back_the_intended_pixels_everywhere(written, name):
    src, dst, new, result = written(name)
    np.testing.assert_array_equal(read_dng(dst, metadata=False).cfa_dn, new)
    np.testing.assert_array_equal(tifffile_raw(dst), new)
    np.testing.assert_array_equal(rawpy_raw(dst), new)
    assert result["path"] == str(dst) and result["bytes"] == dst.stat().st_size
    assert result["segments_rewritten"] >= 1


@pytest.mark.parametrize("name", CFA_SAMPLES)
def test_every_other_tag_is_unchanged_in_a_full_exiftool_dump(written, name):
    src, dst, _, _ = written(name)
    assert metadata_differences(src, dst) == {}


@pytest.mark.parametrize("name", CFA_SAMPLES)
def test_output_is_marked_as_corrected_in_software_and_xmp(written, name):
    src, dst, _, _ = written(name)
    raw = read_dng(dst, metadata=False)
    assert raw.metadata.corrected_by_hotpixels
    assert not read_dng(src, metadata=False, pixels=False).metadata.corrected_by_hotpixels
    assert raw.metadata.software.endswith("HotPixels 0.1.0")
    assert b'hotpixels:Corrected="1"' in dst.read_bytes()
    exe = require_tool("exiftool")
    out = subprocess.run([exe, "-s", "-XMP-hotpixels:all", str(dst)], capture_output=True, text=True).stdout
    assert "Corrected" in out and "Profile" in out and "test body" in out


@pytest.mark.parametrize("name", CFA_SAMPLES)
def test_exiftool_validate_reports_nothing_new(written, name):
    src, dst, _, _ = written(name)
    assert validate_warnings(dst) - validate_warnings(src) == set()


@pytest.mark.parametrize("name", ["sdk_colorchart_ljpeg.dng", "sdk_xtrans_ljpeg.dng"])
def test_digests_and_unique_id_are_recomputed(written, name):
    src, dst, new, result = written(name)
    out = read_dng(dst, metadata=False)
    assert out.layout.digest_stored_hex == new_raw_image_digest(new).hex() == result["digest"]
    old = read_dng(src, metadata=False, pixels=False).layout
    assert out.layout.unique_id_hex == result["raw_data_unique_id"] != old.unique_id_hex
    # deterministic: the same correction of the same source gets the same ID
    again = write_corrected_dng(read_dng(src, metadata=False), new, dst.with_name("again-" + name))
    assert again["raw_data_unique_id"] == result["raw_data_unique_id"]


@pytest.mark.parametrize("name", SDK_READABLE)
def test_adobe_dng_sdk_reads_the_intended_pixels_without_new_warnings(written, name, tmp_path):
    src, dst, new, _ = written(name)
    src_pixels, src_msgs = dngpy_read(src, tmp_path / "src.npy")
    out_pixels, out_msgs = dngpy_read(dst, tmp_path / "out.npy")
    assert src_pixels is not None and out_pixels is not None
    np.testing.assert_array_equal(out_pixels, new)
    assert out_msgs - src_msgs == set()


def test_adobe_dng_sdk_would_notice_a_stale_digest(written, tmp_path):
    """The SDK check above can fail: a wrong NewRawImageDigest is reported."""
    _, dst, _, _ = written("sdk_colorchart_ljpeg.dng")
    stale = tmp_path / "stale.dng"
    data = bytearray(dst.read_bytes())
    pos = read_dng(dst, metadata=False, pixels=False).layout.new_digest_entry.value_pos
    data[pos] ^= 0xFF
    stale.write_bytes(bytes(data))
    _, msgs = dngpy_read(stale, tmp_path / "stale.npy")
    assert any("NewRawImageDigest does not match" in m for m in msgs)


def test_unmodified_write_keeps_the_sdk_digest_and_every_tile(tmp_path):
    src = sample("sdk_colorchart_ljpeg.dng")
    raw = read_dng(src, metadata=False)
    result = write_corrected_dng(raw, raw.cfa_dn, tmp_path / "same.dng")
    assert result["segments_rewritten"] == 0
    assert result["digest"] == raw.layout.digest_stored_hex
    out = read_dng(tmp_path / "same.dng", metadata=False)
    assert out.layout.offsets == raw.layout.offsets and out.layout.byte_counts == raw.layout.byte_counts


def test_one_changed_pixel_re_encodes_only_its_tile(tmp_path):
    src = sample("sdk_colorchart_ljpeg.dng")
    raw = read_dng(src, metadata=False)
    new = raw.cfa_dn.copy()
    new[700, 1000] = 5000  # tile row 2, tile column 4 of 240 px tiles
    result = write_corrected_dng(raw, new, tmp_path / "one.dng")
    assert result["segments_rewritten"] == 1
    out = read_dng(tmp_path / "one.dng", metadata=False)
    np.testing.assert_array_equal(out.cfa_dn, new)
    src_bytes, out_bytes = src.read_bytes(), (tmp_path / "one.dng").read_bytes()
    across = -(-1888 // 240)
    changed = 2 * across + 4
    for i, (o0, n0, o1, n1) in enumerate(zip(raw.layout.offsets, raw.layout.byte_counts,
                                              out.layout.offsets, out.layout.byte_counts)):
        if i != changed:
            assert src_bytes[o0:o0 + n0] == out_bytes[o1:o1 + n1], f"tile {i} changed"
    assert out.layout.jpeg[changed] == raw.layout.jpeg[changed]  # same frame geometry and predictor


# -- linearization ---------------------------------------------------------------------------------
def test_inverse_linearization_is_exact_on_the_tables_image_and_nearest_elsewhere():
    table = np.round(np.linspace(0, 1, 4096) ** 2.2 * 65535).astype(np.uint16)
    inv = inverse_linearization(table)
    np.testing.assert_array_equal(table[inv[table]], table)
    rng = np.random.default_rng(3)
    dn = rng.integers(0, 65536, 1000)
    got = table[inv[dn]].astype(np.int64)
    best = np.abs(table[None, :].astype(np.int64) - dn[:, None]).min(axis=1)
    np.testing.assert_array_equal(np.abs(got - dn), best)


# -- errors leave nothing behind -------------------------------------------------------------------
@pytest.fixture()
def small_raw(tmp_path):
    src = tmp_path / "src.dng"
    shutil.copyfile(sample("built_gbrg_10bit_packed.dng"), src)
    return src, read_dng(src, metadata=False)


def test_writing_over_the_source_gets_output_exists_and_source_untouched(small_raw):
    src, raw = small_raw
    before = sha(src)
    with pytest.raises(OutputExists) as info:
        write_corrected_dng(raw, raw.cfa_dn, src)
    assert info.value.code == 1012 and "source" in info.value.message
    assert sha(src) == before and leftovers(src.parent) == []


def test_existing_output_gets_output_exists_unless_overwrite(small_raw):
    src, raw = small_raw
    dst = src.with_name("out.dng")
    dst.write_bytes(b"keep me")
    with pytest.raises(OutputExists):
        write_corrected_dng(raw, raw.cfa_dn, dst)
    assert dst.read_bytes() == b"keep me" and leftovers(src.parent) == []
    write_corrected_dng(raw, raw.cfa_dn, dst, overwrite=True)
    np.testing.assert_array_equal(read_dng(dst, metadata=False).cfa_dn, raw.cfa_dn)


@pytest.mark.parametrize("where", ["missing-folder", "parent-is-a-file", "proc"])
def test_unwritable_destination_gets_error_1011_and_no_file(small_raw, where):
    src, raw = small_raw
    if where == "missing-folder":
        dst = src.parent / "nope" / "out.dng"
    elif where == "parent-is-a-file":
        dst = src / "out.dng"
    else:
        dst = __import__("pathlib").Path("/proc/hotpixels-out.dng")
    with pytest.raises(DestinationUnwritable) as info:
        write_corrected_dng(raw, raw.cfa_dn, dst)
    assert info.value.code == 1011
    assert not dst.exists() and leftovers(src.parent) == []


def test_jpeg_xl_source_is_rewritten_as_lossless_jpeg_that_every_reader_opens(tmp_path):
    src = sample("sdk_colorchart_jxl.dng")
    raw = read_dng(src, metadata=False)
    new = fake_correction(raw, 8)
    dst = tmp_path / "out.dng"
    result = write_corrected_dng(raw, new, dst)
    assert result["compression"] == "7 (lossless JPEG)"
    out = read_dng(dst, metadata=False)
    assert out.layout.compression == 7 and (out.layout.row_interleave, out.layout.column_interleave) == (1, 1)
    assert out.layout.jpeg[0].components == 2  # Adobe's Bayer geometry
    np.testing.assert_array_equal(out.cfa_dn, new)
    np.testing.assert_array_equal(tifffile_raw(dst), new)
    np.testing.assert_array_equal(rawpy_raw(dst), new)  # LibRaw cannot read the JPEG XL source
    assert out.layout.digest_stored_hex == new_raw_image_digest(new).hex()
    src_pixels, src_msgs = dngpy_read(src, tmp_path / "src.npy")
    out_pixels, out_msgs = dngpy_read(dst, tmp_path / "out.npy")
    np.testing.assert_array_equal(out_pixels, new)
    assert out_msgs - src_msgs == set()
    assert metadata_differences(src, dst) == {"SubIFD:Compression": ("52546", "7"),
                                              "SubIFD:RowInterleaveFactor": ("2", "1")}
    assert validate_warnings(dst) - validate_warnings(src) == set()


def test_cancel_leaves_no_partial_file(tmp_path):
    raw = read_dng(sample("sdk_colorchart_ljpeg.dng"), metadata=False)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        write_corrected_dng(raw, fake_correction(raw, 1), tmp_path / "out.dng", cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_a_codec_that_encodes_a_wrong_sample_leaves_no_file(tmp_path, monkeypatch):
    """Each re-encoded tile is decoded again right away: a codec fault (here one sample off by one
    in one tile's stream) is caught before the file can take its name."""
    real_encode = writer_mod.encode_ljpegs

    def faulty(tiles, geom, segs):
        tiles = [np.array(t, dtype=np.uint16) for t in tiles]
        for tile, seg in zip(tiles, segs):
            if seg.index == 1:
                tile[3, 5] ^= 1
        return real_encode(tiles, geom, segs)

    monkeypatch.setattr(writer_mod, "encode_ljpegs", faulty)
    raw = read_dng(sample("sdk_colorchart_ljpeg.dng"), metadata=False)
    new = np.full_like(raw.cfa_dn, 200)
    with pytest.raises(CorruptData, match="tile 1 differ"):
        write_corrected_dng(raw, new, tmp_path / "out.dng")
    assert list(tmp_path.iterdir()) == []


def test_a_checked_stream_put_in_the_wrong_tile_slot_leaves_no_file(tmp_path, monkeypatch):
    """The read-back checks that the file holds, segment by segment, the very streams that were
    decoded and compared: two tiles' streams swapped on their way into the file are refused."""
    real_place = writer_mod._place_streams

    def swapping(tf, layout, out, contents):
        a, b = sorted(contents)[:2]
        return real_place(tf, layout, out, {**contents, a: contents[b], b: contents[a]})

    monkeypatch.setattr(writer_mod, "_place_streams", swapping)
    raw = read_dng(sample("sdk_colorchart_ljpeg.dng"), metadata=False)
    new = fake_correction(raw, 3)
    new[::7, ::5] = 100
    with pytest.raises(CorruptData, match="does not hold the stream that was checked"):
        write_corrected_dng(raw, new, tmp_path / "out.dng")
    assert list(tmp_path.iterdir()) == []


def test_digest_tag_is_patched_in_place_not_moved(written):
    src, dst, _, _ = written("sdk_colorchart_ljpeg.dng")
    a = read_dng(src, metadata=False, pixels=False).layout
    b = read_dng(dst, metadata=False, pixels=False).layout
    assert a.new_digest_entry.value_pos == b.new_digest_entry.value_pos
    assert a.unique_id_entry.value_pos == b.unique_id_entry.value_pos
    # the header still points at the same IFD0 when the marker fitted into the existing tags
    assert struct.unpack("<I", dst.read_bytes()[4:8])[0] in (a.ifd0_offset, b.ifd0_offset)


# -- big-endian files written by another TIFF library -----------------------------------------------
@pytest.mark.parametrize("storage", [{"rowsperstrip": 7}, {"tile": (16, 32)}], ids=["7-row-strips", "16x32-tiles"])
def test_big_endian_strips_and_tiles_round_trip(storage, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    truth = np.random.default_rng(2).integers(0, 4096, (45, 67)).astype(np.uint16)
    ext = [(33421, "H", 2, (2, 2), False), (33422, "B", 4, (1, 0, 2, 1), False), (50706, "B", 4, (1, 4, 0, 0), False),
           (50717, "H", 1, (4095,), False), (50714, "H", 1, (100,), False), (50829, "H", 4, (1, 2, 44, 66), False),
           (271, "s", 0, "Sim", False), (50708, "s", 0, "Sim BE", False)]
    src = tmp_path / "be.dng"
    tifffile.imwrite(src, truth, byteorder=">", photometric=32803, extratags=ext, subfiletype=0, **storage)
    raw = read_dng(src, metadata=False)
    assert raw.layout.byteorder == ">" and raw.cfa.name == "GRBG" and raw.cfa.origin_yx == (1, 2)
    np.testing.assert_array_equal(raw.cfa_dn, truth)
    new = fake_correction(raw, 5, n=60)
    write_corrected_dng(raw, new, tmp_path / "out.dng")
    np.testing.assert_array_equal(read_dng(tmp_path / "out.dng", metadata=False).cfa_dn, new)
    np.testing.assert_array_equal(tifffile_raw(tmp_path / "out.dng"), new)
    np.testing.assert_array_equal(rawpy_raw(tmp_path / "out.dng"), new)
    assert metadata_differences(src, tmp_path / "out.dng") == {}


def test_maker_note_and_private_data_never_move(tmp_path):
    from hotpixels.dng.cfa import CfaPattern
    from hotpixels.dng.create import write_dng
    from hotpixels.dng.rawimage import CameraMetadata
    from hotpixels.dng.tiff import TAG_MAKER_NOTE, TiffFile

    truth = np.random.default_rng(1).integers(0, 4096, (64, 96)).astype(np.uint16)
    src = tmp_path / "src.dng"
    write_dng(src, truth, cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, 64, 96), black_level_dn=64,
              white_level_dn=4095, bits=12, layout="ljpeg-tiles", tile_px=32,
              metadata=CameraMetadata(make="Sim", model="S1", temperature_c=12.0))
    raw = read_dng(src, metadata=False)
    write_corrected_dng(raw, fake_correction(raw, 2, n=200), tmp_path / "out.dng")
    a = TiffFile(src.read_bytes())
    b = TiffFile((tmp_path / "out.dng").read_bytes())
    ea, eb = a.ifd0.exif.entries[TAG_MAKER_NOTE], b.ifd0.exif.entries[TAG_MAKER_NOTE]
    assert ea.value_pos == eb.value_pos and a.raw_bytes(ea) == b.raw_bytes(eb)
    assert read_dng(tmp_path / "out.dng").metadata.temperature_c == 12.0


def test_progress_is_reported_per_tile(tmp_path):
    raw = read_dng(sample("sdk_xtrans_ljpeg.dng"), metadata=False)
    calls = []
    write_corrected_dng(raw, fake_correction(raw, 3), tmp_path / "out.dng",
                        progress=lambda done, total, msg: calls.append((done, total)))
    assert calls[-1] == (12, 12) and len(calls) == 12


def test_source_changed_since_it_was_read_is_refused(tmp_path):
    import os

    src = tmp_path / "src.dng"
    shutil.copyfile(sample("built_gbrg_10bit_packed.dng"), src)
    raw = read_dng(src, metadata=False)
    os.utime(src, ns=(raw.layout.file_mtime_ns + 10**9, raw.layout.file_mtime_ns + 10**9))
    with pytest.raises(FileNotReadable) as info:
        write_corrected_dng(raw, raw.cfa_dn, tmp_path / "out.dng")
    assert "changed since it was read" in info.value.message
    assert not (tmp_path / "out.dng").exists() and leftovers(tmp_path) == []


def test_wrong_shape_is_an_invalid_option_and_float_values_are_rounded(tmp_path):
    from hotpixels.errors import InvalidOption

    raw = read_dng(sample("built_gbrg_10bit_packed.dng"), metadata=False)
    with pytest.raises(InvalidOption) as info:
        write_corrected_dng(raw, raw.cfa_dn[:-1], tmp_path / "out.dng")
    assert info.value.data["param"] == "new_cfa_dn" and list(tmp_path.iterdir()) == []
    new = raw.cfa_dn.astype(np.float32)
    new[10, 10] = 100.7  # -> 101
    new[11, 11] = 5000.0  # above the 10-bit range -> 1023
    write_corrected_dng(raw, new, tmp_path / "out.dng")
    back = read_dng(tmp_path / "out.dng", metadata=False).cfa_dn
    assert back[10, 10] == 101 and back[11, 11] == 1023


def test_tiles_sharing_their_bytes_are_never_overwritten(tmp_path):
    """Some writers store identical tiles once; correcting one of them must not change the other."""
    from hotpixels.dng.cfa import CfaPattern
    from hotpixels.dng.create import write_dng
    from hotpixels.dng.tiff import TiffFile

    flat = np.full((64, 64), 1000, np.uint16)  # four identical 32 px tiles
    src = tmp_path / "src.dng"
    write_dng(src, flat, cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, 64, 64), black_level_dn=0,
              white_level_dn=4095, bits=12, layout="ljpeg-tiles", tile_px=32)
    data = bytearray(src.read_bytes())
    tf = TiffFile(bytes(data))
    raw_ifd = next(i for i in tf.walk() if tf.get1(i, 262) == 32803)
    offs, counts = raw_ifd.entries[324], raw_ifd.entries[325]
    first, n = tf.ints(offs)[0], tf.ints(counts)[0]
    data[offs.value_pos:offs.value_pos + 16] = struct.pack("<4I", *[first] * 4)  # all tiles -> tile 0's bytes
    data[counts.value_pos:counts.value_pos + 16] = struct.pack("<4I", *[n] * 4)
    src.write_bytes(bytes(data))
    raw = read_dng(src, metadata=False)
    np.testing.assert_array_equal(raw.cfa_dn, flat)
    new = flat.copy()
    new[5, 5] = 3000  # in tile 0 only
    write_corrected_dng(raw, new, tmp_path / "out.dng")
    np.testing.assert_array_equal(read_dng(tmp_path / "out.dng", metadata=False).cfa_dn, new)
    np.testing.assert_array_equal(tifffile_raw(tmp_path / "out.dng"), new)  # (LibRaw misreads even this source)


@pytest.mark.parametrize("layout", ["strip", "packed", "subifd", "ljpeg-tiles", "ljpeg-tiles-subifd"])
def test_adobe_dng_sdk_reads_corrected_simulated_files_of_every_layout(layout, tmp_path):
    from hotpixels.dng.cfa import CfaPattern
    from hotpixels.dng.create import write_dng
    from hotpixels.dng.rawimage import CameraMetadata

    truth = np.random.default_rng(7).normal(800, 30, (150, 214)).clip(0, 4095).astype(np.uint16)
    src = tmp_path / "src.dng"
    write_dng(src, truth, cfa=CfaPattern.bayer("BGGR", (6, 8)), active_area=(6, 8, 146, 210), black_level_dn=64,
              white_level_dn=4095, bits=12, layout=layout, tile_px=64,
              metadata=CameraMetadata(make="Sim", model="S1", iso=800, exposure_s=30.0))
    raw = read_dng(src, metadata=False)
    new = fake_correction(raw, 6, n=100)
    write_corrected_dng(raw, new, tmp_path / "out.dng")
    src_pixels, src_msgs = dngpy_read(src, tmp_path / "src.npy")
    out_pixels, out_msgs = dngpy_read(tmp_path / "out.dng", tmp_path / "out.npy")
    assert src_pixels is not None, src_msgs
    np.testing.assert_array_equal(out_pixels, new)
    assert out_msgs - src_msgs == set()
    assert validate_warnings(tmp_path / "out.dng") - validate_warnings(src) == set()


def test_the_frame_as_read_is_read_only_so_an_edit_cannot_be_lost_silently():
    raw = read_dng(sample("sdk_colorchart_ljpeg.dng"), metadata=False)
    with pytest.raises(ValueError):
        raw.cfa_dn[600, 600] = 9999


def test_changes_made_in_place_in_raw_cfa_dn_are_still_written(tmp_path):
    """A caller that makes raw.cfa_dn writable and edits it must not lose its changes in
    unchanged-looking tiles: the writer then compares every tile with the source file."""
    raw = read_dng(sample("sdk_colorchart_ljpeg.dng"), metadata=False)
    raw.cfa_dn.flags.writeable = True
    raw.cfa_dn[600, 600] = 9999  # in place: raw.cfa_dn no longer holds the source's pixels
    new = raw.cfa_dn.copy()
    new[100, 100] = 1  # a second change, only in the new frame
    result = write_corrected_dng(raw, new, tmp_path / "out.dng")
    assert result["segments_rewritten"] == 2
    np.testing.assert_array_equal(read_dng(tmp_path / "out.dng", metadata=False).cfa_dn, new)


def test_a_tile_edited_in_place_and_then_restored_in_the_new_frame_is_not_rewritten(tmp_path):
    """Edited in place (made writable first), raw.cfa_dn is no longer trusted: each tile is
    compared with the source itself, so writing the source's own values changes nothing."""
    raw = read_dng(sample("sdk_colorchart_ljpeg.dng"), metadata=False)
    source = raw.cfa_dn.copy()
    raw.cfa_dn.flags.writeable = True
    raw.cfa_dn[600, 600] ^= 1
    result = write_corrected_dng(raw, source, tmp_path / "out.dng")
    assert result["segments_rewritten"] == 0
    np.testing.assert_array_equal(read_dng(tmp_path / "out.dng", metadata=False).cfa_dn, source)


def test_a_frame_swapped_into_raw_cfa_dn_is_not_taken_for_the_source(tmp_path):
    """A read-only frame that is not the one the reader returned (another photo's, a view) is
    compared tile by tile with the source too."""
    raw = read_dng(sample("sdk_colorchart_ljpeg.dng"), metadata=False)
    source = raw.cfa_dn.copy()
    other = raw.cfa_dn.copy()
    other[600, 600] ^= 1
    other.flags.writeable = False
    raw.cfa_dn = other
    result = write_corrected_dng(raw, source, tmp_path / "out.dng")
    assert result["segments_rewritten"] == 0


# -- IFD0 kept as it was, RawDataUniqueID kept when no raw value changed ------------------------------
def _ifd0_entries(path) -> list[tuple[int, int, int, bytes]]:
    """IFD0 as stored: (tag, type, count, value bytes) in file order, duplicates included."""
    from hotpixels.dng.tiff import TYPES

    data = path.read_bytes()
    bo = "<" if data[:2] == b"II" else ">"
    (off,) = struct.unpack(bo + "I", data[4:8])
    (n,) = struct.unpack(bo + "H", data[off:off + 2])
    entries = []
    for i in range(n):
        pos = off + 2 + 12 * i
        tag, typ, count = struct.unpack(bo + "HHI", data[pos:pos + 8])
        size = TYPES[typ][1] * count
        at = pos + 8 if size <= 4 else struct.unpack(bo + "I", data[pos + 8:pos + 12])[0]
        entries.append((tag, typ, count, data[at:at + size]))
    return entries


@pytest.mark.parametrize("order", ["as-written", "unsorted"])
def test_rebuilt_ifd0_keeps_every_entry_in_order_with_its_duplicates(order, tmp_path):
    """The GBRG stand-in stores DNGVersion and DNGBackwardVersion twice and has no XMP, so the
    marker needs a new IFD0: every old entry comes back unchanged (only Software gets the mark)."""
    src = tmp_path / "src.dng"
    shutil.copyfile(sample("built_gbrg_10bit_packed.dng"), src)
    before = _ifd0_entries(src)
    assert [e[0] for e in before].count(50706) == 2 and [e[0] for e in before].count(50707) == 2
    if order == "unsorted":  # swap Make and Model: another writer's order, kept as it is
        data = bytearray(src.read_bytes())
        (off,) = struct.unpack("<I", data[4:8])
        i = [e[0] for e in before].index(271)
        a, b = off + 2 + 12 * i, off + 2 + 12 * (i + 1)
        data[a:a + 12], data[b:b + 12] = data[b:b + 12], data[a:a + 12]
        src.write_bytes(bytes(data))
        before = _ifd0_entries(src)
        assert [e[0] for e in before][i:i + 2] == [272, 271]
    raw = read_dng(src, metadata=False)
    write_corrected_dng(raw, fake_correction(raw, 9, n=50), tmp_path / "out.dng")
    after = _ifd0_entries(tmp_path / "out.dng")
    assert [e for e in after if e[0] != 700] == [e if e[0] != 305 else next(a for a in after if a[0] == 305)
                                                 for e in before]
    assert [e[0] for e in after if e[0] == 700] == [700]  # the XMP packet, the one entry added
    software = next(e for e in after if e[0] == 305)[3]
    assert software.rstrip(b"\0").endswith(b"+ HotPixels 0.1.0")


def _id_of(path) -> str:
    return read_dng(path, metadata=False, pixels=False).layout.unique_id_hex


@pytest.mark.parametrize("source", ["sdk_colorchart_ljpeg.dng", "packed-strip"])
@pytest.mark.parametrize("pixels", [True, False], ids=["read-with-pixels", "read-without-pixels"])
def test_raw_data_unique_id_is_kept_when_no_raw_value_changed(source, pixels, tmp_path):
    """Lightroom's caches are keyed on RawDataUniqueID: a write that changes no raw value (lossless
    JPEG tiles or uncompressed packed data) keeps it; one changed value gives a new one."""
    if source == "packed-strip":
        from hotpixels.dng.cfa import CfaPattern
        from hotpixels.dng.create import write_dng

        src = tmp_path / "src.dng"
        truth = np.random.default_rng(11).integers(0, 4096, (64, 96)).astype(np.uint16)
        write_dng(src, truth, cfa=CfaPattern.bayer("GRBG"), active_area=(0, 0, 64, 96), black_level_dn=0,
                  white_level_dn=4095, bits=12, layout="packed")
    else:
        src = sample(source)
    full = read_dng(src, metadata=False)
    raw = full if pixels else read_dng(src, metadata=False, pixels=False)
    same = write_corrected_dng(raw, full.cfa_dn.copy(), tmp_path / "same.dng")
    assert _id_of(src) is not None
    assert same["raw_data_unique_id"] == _id_of(tmp_path / "same.dng") == _id_of(src)
    new = full.cfa_dn.copy()
    new[30, 40] ^= 1
    changed = write_corrected_dng(raw, new, tmp_path / "changed.dng")
    assert changed["raw_data_unique_id"] == _id_of(tmp_path / "changed.dng") != _id_of(src)
