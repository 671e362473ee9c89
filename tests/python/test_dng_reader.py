"""Reading real DNG samples: bit-exact against LibRaw (rawpy), the JPEG XL sample against the
uncompressed original, every bad file gets its own error code, ``hotpixels inspect`` shows it."""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import time

import numpy as np
import pytest
import tifffile

from conftest import extra_samples, require_module, require_tool, sample
from hotpixels.dng import cli as dng_cli
from hotpixels.dng.digest import compressed_tiles_digest, new_raw_image_digest
from hotpixels.dng.reader import open_tiff, read_camera_metadata, read_dng
from hotpixels.errors import (
    CorruptData, FileNotFound, NotCfaRaw, NotDng, NotTiff, TruncatedFile, UnsupportedCompression,
)

PIXEL_SAMPLES = ["tinydng_colorchart.dng", "sdk_colorchart_ljpeg.dng", "sdk_xtrans_ljpeg.dng",
                 "built_gbrg_10bit_packed.dng"]


@pytest.mark.parametrize("name", PIXEL_SAMPLES)
def test_every_sample_reads_bit_exact_to_libraw(name):
    rawpy = require_module("rawpy")
    raw = read_dng(sample(name), metadata=False)
    with rawpy.imread(str(sample(name))) as rp:
        ref = rp.raw_image.copy()
        ref_pattern = rp.raw_pattern.copy()
        ref_colors = rp.color_desc.decode()
    assert raw.cfa_dn.dtype == np.uint16
    assert raw.cfa_dn.shape == ref.shape
    np.testing.assert_array_equal(raw.cfa_dn, ref)
    # LibRaw's raw_pattern is anchored at the visible (active) corner, like ours
    t, l = raw.active_area[:2]
    rows, cols = raw.cfa.repeat
    for py in range(rows):
        for px in range(cols):
            ours = "RGB"[int(raw.cfa.color_at(t + py, l + px))]
            assert ref_colors[ref_pattern[py, px]] == ours


def test_sample_levels_and_cfa_match_the_readme():
    raw = read_dng(sample("tinydng_colorchart.dng"), metadata=False)
    assert raw.cfa.name == "RGGB" and raw.cfa.origin_yx == (26, 152)
    assert raw.active_area == (26, 152, 1182, 1886)
    assert raw.black_repeat_dn.tolist() == [[2056.0]] and raw.white_level_dn == 15000
    assert raw.bits_per_sample == 14 and raw.layout.packed
    gbrg = read_dng(sample("built_gbrg_10bit_packed.dng"), metadata=False)
    assert gbrg.cfa.name == "GBRG" and gbrg.bits_per_sample == 10 and gbrg.layout.packed
    xt = read_dng(sample("sdk_xtrans_ljpeg.dng"), metadata=False)
    assert xt.cfa.is_xtrans and xt.black_repeat_dn.tolist() == [[1024.0]] and xt.white_level_dn == 16383
    assert xt.layout.jpeg[0].components == 1
    bayer = read_dng(sample("sdk_colorchart_ljpeg.dng"), metadata=False)
    assert bayer.layout.jpeg[0].components == 2 and bayer.layout.ifd_name.endswith("SubIFD0")


def test_jpeg_xl_sample_equals_the_uncompressed_original():
    jxl = read_dng(sample("sdk_colorchart_jxl.dng"), metadata=False)
    original = read_dng(sample("tinydng_colorchart.dng"), metadata=False)
    assert (jxl.layout.row_interleave, jxl.layout.column_interleave) == (2, 2)
    np.testing.assert_array_equal(jxl.cfa_dn, original.cfa_dn)
    assert jxl.active_area == original.active_area and jxl.cfa == original.cfa


@pytest.mark.parametrize("name", ["sdk_colorchart_ljpeg.dng", "sdk_xtrans_ljpeg.dng"])
def test_new_raw_image_digest_of_sdk_samples_is_reproduced(name):
    raw = read_dng(sample(name), metadata=False)
    assert raw.layout.digest_stored_hex is not None
    assert new_raw_image_digest(raw.cfa_dn).hex() == raw.layout.digest_stored_hex


def test_three_plane_digest_is_the_one_the_adobe_dng_sdk_checks(tmp_path):
    """A LinearRaw frame (3 different planes, 2 x 2 digest tiles) is a digest test vector: the
    Adobe DNG SDK recomputes NewRawImageDigest when it reads the file and reports a mismatch."""
    from dng_testing import dngpy_read

    path = sample("built_linear_raw_uint16.dng")
    frame = tifffile.imread(path)
    assert frame.shape == (300, 280, 3) and not np.array_equal(frame[..., 0], frame[..., 1])
    with open_tiff(path) as tf:
        entry = tf.ifd0.entries[51111]
        stored = tf.raw_bytes(entry)
    assert new_raw_image_digest(frame) == stored
    _, messages = dngpy_read(path, tmp_path / "ok.npy")
    assert not any("NewRawImageDigest" in m for m in messages), messages
    wrong = bytearray(path.read_bytes())
    wrong[entry.value_pos] ^= 1
    (tmp_path / "wrong.dng").write_bytes(bytes(wrong))
    _, messages = dngpy_read(tmp_path / "wrong.dng", tmp_path / "wrong.npy")
    assert any("NewRawImageDigest does not match" in m for m in messages)


def test_jpeg_xl_digest_is_over_the_compressed_tiles():
    raw = read_dng(sample("sdk_colorchart_jxl.dng"), metadata=False, pixels=False)
    data = sample("sdk_colorchart_jxl.dng").read_bytes()
    tiles = [data[o:o + n] for o, n in zip(raw.layout.offsets, raw.layout.byte_counts)]
    assert compressed_tiles_digest(tiles).hex() == raw.layout.digest_stored_hex


def test_pixels_false_reads_tags_without_decoding():
    raw = read_dng(sample("sdk_colorchart_ljpeg.dng"), metadata=False, pixels=False)
    assert raw.shape == (1182, 1888) and not raw.layout.jpeg  # no tile was decoded
    assert raw.cfa_dn.strides == (0, 0)


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["built_linear_raw_uint16.dng", "built_linear_raw_subifd_stripped.dng"])
def test_linear_raw_gets_not_cfa_raw_error_1005(name):
    with pytest.raises(NotCfaRaw) as info:
        read_dng(sample(name))
    assert info.value.code == 1005
    assert info.value.message == "not a CFA raw DNG: this file holds demosaiced data (LinearRaw)"


def test_stripped_pixel_data_gets_truncated_error_1006_not_garbage():
    with pytest.raises(TruncatedFile) as info:
        read_dng(sample("built_canon_350d_pixels_stripped.dng"))
    assert info.value.code == 1006 and "truncated" in info.value.message


@pytest.mark.parametrize("name", ["tinydng_colorchart.dng", "sdk_colorchart_ljpeg.dng"])
def test_cut_off_file_gets_truncated_error_before_decoding(name, tmp_path):
    """Cut in the middle of its one strip, or of its lossless-JPEG tiles (every tag still there)."""
    src = sample(name).read_bytes()
    raw = read_dng(sample(name), metadata=False, pixels=False)
    at = len(src) // 2
    assert min(raw.layout.offsets) < at < max(o + n for o, n in zip(raw.layout.offsets, raw.layout.byte_counts))
    cut = tmp_path / "cut.dng"
    cut.write_bytes(src[:at])
    with pytest.raises(TruncatedFile) as info:
        read_dng(cut)
    assert "beyond" in info.value.message or "truncated" in info.value.message
    assert info.value.path == str(cut)


def test_damaged_lossless_jpeg_tile_gets_corrupt_error_1007(tmp_path):
    raw = read_dng(sample("sdk_colorchart_ljpeg.dng"), metadata=False, pixels=False)
    data = bytearray(sample("sdk_colorchart_ljpeg.dng").read_bytes())
    off, n = raw.layout.offsets[3], raw.layout.byte_counts[3]
    data[off + 200:off + n] = bytes(n - 200)  # wipe the entropy-coded data after the header
    bad = tmp_path / "bad.dng"
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptData) as info:
        read_dng(bad, metadata=False)
    assert info.value.code == 1007 and "tile 3" in info.value.message


def _patch_tag(data: bytearray, path, tag: int, value: int) -> None:
    with open_tiff(path) as tf:
        raw_ifd = next(i for i in tf.walk() if tf.get1(i, 262) == 32803)
        e = raw_ifd.entries[tag]
        data[e.value_pos:e.value_pos + 2] = struct.pack(tf.bo + "H", value)


def test_deflate_raw_gets_unsupported_compression_naming_it(tmp_path):
    src = sample("sdk_colorchart_ljpeg.dng")
    data = bytearray(src.read_bytes())
    _patch_tag(data, src, 259, 8)
    bad = tmp_path / "deflate.dng"
    bad.write_bytes(bytes(data))
    with pytest.raises(UnsupportedCompression) as info:
        read_dng(bad)
    assert info.value.code == 1008 and "8 (Deflate (Adobe))" in info.value.message


def test_plain_tiff_gets_not_dng_error_1004(tmp_path):
    p = tmp_path / "plain.tif"
    tifffile.imwrite(p, np.zeros((16, 16), np.uint16))
    with pytest.raises(NotDng) as info:
        read_dng(p)
    assert info.value.code == 1004


def test_text_file_gets_not_tiff_error_1003(tmp_path):
    p = tmp_path / "notes.dng"
    p.write_text("these are not pixels\n" * 10)
    with pytest.raises(NotTiff) as info:
        read_dng(p)
    assert info.value.code == 1003


def test_missing_file_gets_file_not_found(tmp_path):
    with pytest.raises(FileNotFound):
        read_dng(tmp_path / "nothing.dng")


def test_reading_never_changes_the_source():
    p = sample("sdk_colorchart_ljpeg.dng")
    before = hashlib.sha256(p.read_bytes()).hexdigest()
    read_dng(p)
    assert hashlib.sha256(p.read_bytes()).hexdigest() == before


# -- metadata -------------------------------------------------------------------------------------
def test_metadata_of_the_canon_350d_sample():
    meta = read_camera_metadata(sample("built_canon_350d_pixels_stripped.dng"))
    assert (meta.make, meta.model, meta.serial) == ("Canon", "Canon EOS 350D DIGITAL", "012345678")
    assert meta.iso == 400 and meta.exposure_s == pytest.approx(1 / 15)
    assert meta.capture_time == "2005-08-03T18:59:18"
    assert meta.temperature_c is None  # the 350D records no temperature: unknown is normal
    assert not meta.corrected_by_hotpixels


def test_zero_iso_and_exposure_mean_unknown():
    meta = read_dng(sample("tinydng_colorchart.dng"), pixels=False).metadata
    assert meta.iso is None and meta.exposure_s is None and meta.make == "Canon"


def test_reader_works_without_exiftool(monkeypatch):
    monkeypatch.setenv("HOTPIXELS_NO_EXIFTOOL", "1")
    meta = read_camera_metadata(sample("built_canon_350d_pixels_stripped.dng"))
    assert meta.serial == "012345678" and meta.temperature_c is None
    raw = read_dng(sample("built_gbrg_10bit_packed.dng"))
    assert raw.metadata.temperature_c is None and raw.cfa_dn.shape == (480, 640)


# -- inspect --------------------------------------------------------------------------------------
def _inspect(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    dng_cli.register(parser.add_subparsers())
    args = parser.parse_args(["inspect", *argv])
    return args.func(args)


def test_inspect_json_describes_layout_cfa_and_levels(capsys):
    rc = _inspect(["--json", str(sample("sdk_colorchart_ljpeg.dng"))])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["cfa"]["name"] == "RGGB" and out["active_area"] == [26, 152, 1182, 1886]
    assert out["layout"]["compression"] == "7 (lossless JPEG)"
    assert out["layout"]["jpeg"]["components"] == 2
    assert out["white_level_dn"] == 15000 and len(out["planes"]) == 4


def test_inspect_reports_bad_files_and_goes_on(capsys):
    rc = _inspect([str(sample("built_linear_raw_subifd_stripped.dng")), str(sample("built_gbrg_10bit_packed.dng"))])
    out = capsys.readouterr().out
    assert rc == 2
    assert "error [1005 not_cfa_raw]: not a CFA raw DNG" in out
    assert "GBRG" in out and "10 bit packed" in out


def test_inspect_json_error_only_json_on_stdout(capsys):
    rc = _inspect(["--json", str(sample("built_canon_350d_pixels_stripped.dng"))])
    out = json.loads(capsys.readouterr().out)
    assert rc == 2 and out["error"]["code"] == 1006


def test_inspect_checks_the_stored_digest(capsys, tmp_path):
    rc = _inspect(["--json", str(sample("sdk_colorchart_jxl.dng"))])
    assert rc == 0 and json.loads(capsys.readouterr().out)["digest_check"] == "matches"
    raw = read_dng(sample("sdk_xtrans_ljpeg.dng"), metadata=False, pixels=False)
    data = bytearray(sample("sdk_xtrans_ljpeg.dng").read_bytes())
    data[raw.layout.new_digest_entry.value_pos] ^= 1
    stale = tmp_path / "stale.dng"
    stale.write_bytes(bytes(data))
    _inspect([str(stale)])
    assert "(DOES NOT MATCH)" in capsys.readouterr().out


def test_hotpixels_inspect_runs_as_a_real_command():
    import subprocess
    import sys

    files = [str(sample("built_gbrg_10bit_packed.dng")), str(sample("built_linear_raw_subifd_stripped.dng"))]
    proc = subprocess.run([sys.executable, "-m", "hotpixels", "inspect", "--json", *files],
                          capture_output=True, text=True, timeout=120)
    out = json.loads(proc.stdout)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert out[0]["cfa"]["name"] == "GBRG" and out[1]["error"]["code"] == 1005


def test_strip_shorter_than_its_pixels_gets_corrupt_error(tmp_path):
    src = sample("tinydng_colorchart.dng")
    data = bytearray(src.read_bytes())
    with open_tiff(src) as tf:
        e = tf.ifd0.entries[279]  # StripByteCounts, one LONG inline
        data[e.value_pos:e.value_pos + 4] = struct.pack("<I", tf.ints(e)[0] // 2)
    bad = tmp_path / "short.dng"
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptData) as info:
        read_dng(bad, metadata=False)
    assert "bytes" in info.value.message and "expected" in info.value.message


def test_8_bit_cfa_with_linearization_table_reads_like_libraw_and_round_trips(tmp_path):
    """Old 8-bit DNGs store a LinearizationTable (a tone curve) in IFD0."""
    rawpy = require_module("rawpy")
    from dng_testing import fake_correction, tifffile_raw
    from hotpixels.dng.writer import write_corrected_dng

    table = np.round((np.arange(256) / 255.0) ** 2.0 * 16383).astype(np.uint16)
    stored = np.random.default_rng(4).integers(0, 256, (31, 47)).astype(np.uint8)
    ext = [(33421, "H", 2, (2, 2), False), (33422, "B", 4, (2, 1, 1, 0), False), (50706, "B", 4, (1, 4, 0, 0), False),
           (50712, "H", 256, tuple(table.tolist()), False), (50717, "H", 1, (16383,), False),
           (271, "s", 0, "Old", False), (50708, "s", 0, "Old 8-bit", False)]
    src = tmp_path / "eight.dng"
    tifffile.imwrite(src, stored, photometric=32803, extratags=ext, subfiletype=0)
    raw = read_dng(src, metadata=False)
    assert raw.bits_per_sample == 8 and raw.cfa.name == "BGGR" and raw.layout.linearization is not None
    np.testing.assert_array_equal(raw.cfa_dn, table[stored])
    with rawpy.imread(str(src)) as rp:
        np.testing.assert_array_equal(rp.raw_image, table[stored])
    new = fake_correction(raw, 1, n=50)
    write_corrected_dng(raw, new, tmp_path / "out.dng")
    back = read_dng(tmp_path / "out.dng", metadata=False).cfa_dn
    nearest = np.abs(table[None, :].astype(int) - new.reshape(-1, 1)).min(axis=1).reshape(new.shape)
    np.testing.assert_array_equal(np.abs(back.astype(int) - new), nearest)  # nearest value the curve can store
    assert tifffile_raw(tmp_path / "out.dng").dtype == np.uint8


def test_one_long_lived_exiftool_process_is_shared_by_threads():
    from concurrent.futures import ThreadPoolExecutor

    from hotpixels.dng import metadata as md

    require_tool("exiftool")
    read_camera_metadata(sample("built_canon_350d_pixels_stripped.dng"))
    helper = md._EXIFTOOL._helper
    assert helper is not None and helper.running
    with ThreadPoolExecutor(6) as pool:
        metas = list(pool.map(read_camera_metadata, [sample("built_canon_350d_pixels_stripped.dng")] * 12))
    assert {m.serial for m in metas} == {"012345678"}
    assert md._EXIFTOOL._helper is helper  # still the same process
    from exiftool.exceptions import ExifToolExecuteError

    with pytest.raises(ExifToolExecuteError):
        md.exiftool_tags("/nonexistent/file.dng", ["Model"])
    assert md._EXIFTOOL._helper is helper  # a bad file does not cost the process
    md.close_exiftool()
    assert md._EXIFTOOL._helper is None


def test_exiftool_started_from_a_thread_that_ended_still_serves_without_warnings():
    """pyexiftool has Linux SIGTERM exiftool when the thread that started it ends; started from a
    job thread, it used to die with it and every later call (and the exit) warned "ExifTool process
    was previously running but died"."""
    import threading
    import warnings

    from hotpixels.dng import metadata as md

    require_tool("exiftool")
    md.close_exiftool()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = threading.Thread(target=read_camera_metadata, args=(sample("built_canon_350d_pixels_stripped.dng"),))
        job.start()
        job.join()
        helper = md._EXIFTOOL._helper
        assert helper is not None
        time.sleep(0.5)  # the kernel's signal would have arrived by now
        assert helper._process.poll() is None  # still alive
        meta = read_camera_metadata(sample("tinydng_colorchart.dng"))
        assert md._EXIFTOOL._helper is helper and meta.model == "Canon EOS Kiss X4"
        md.close_exiftool()
    assert [str(w.message) for w in caught] == []


# -- optional real files (HOTPIXELS_SAMPLES): they only add tests -----------------------------------
EXTRA = extra_samples()
if EXTRA:
    @pytest.mark.parametrize("path", EXTRA, ids=[p.name for p in EXTRA])
    def test_an_extra_real_file_reads_like_libraw_and_round_trips_or_gets_a_clear_error(path, tmp_path):
        """Every file of the optional folder: either a clear HotPixels error (a code a photographer can
        act on), or pixels equal to LibRaw's that a correction writes back exactly."""
        from dng_testing import fake_correction, rawpy_raw
        from hotpixels.dng.writer import write_corrected_dng
        from hotpixels.errors import HotPixelsError

        try:
            raw = read_dng(path, metadata=False)
        except HotPixelsError as exc:
            assert 1000 <= exc.code < 2000 and exc.message
            return
        if raw.layout.compression != 52546:  # LibRaw cannot read JPEG XL raws
            np.testing.assert_array_equal(raw.cfa_dn, rawpy_raw(path))
        new = fake_correction(raw, 5, n=100)
        write_corrected_dng(raw, new, tmp_path / "out.dng")
        np.testing.assert_array_equal(read_dng(tmp_path / "out.dng", metadata=False).cfa_dn, new)


def test_an_exiftool_named_but_missing_is_error_4001_not_a_lost_temperature(tmp_path, monkeypatch):
    from hotpixels.dng.cfa import CfaPattern
    from hotpixels.dng.create import write_dng
    from hotpixels.dng.metadata import exiftool_available
    from hotpixels.errors import ExiftoolMissing

    path = tmp_path / "frame.dng"
    write_dng(path, np.full((16, 16), 600, np.uint16), cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, 16, 16),
              black_level_dn=512, white_level_dn=4095)
    monkeypatch.setenv("HOTPIXELS_EXIFTOOL", str(tmp_path / "no-exiftool-here"))
    assert not exiftool_available()  # hello says so
    with pytest.raises(ExiftoolMissing) as err:
        read_dng(path)
    assert err.value.code == 4001 and "HOTPIXELS_EXIFTOOL" in err.value.message
    monkeypatch.setenv("HOTPIXELS_NO_EXIFTOOL", "1")  # told to do without: no error, temperature unknown
    assert read_dng(path).metadata.temperature_c is None

