"""DNGs written from scratch open bit-exact in LibRaw, tifffile and the Adobe DNG SDK, and carry
the camera's identity, exposure and sensor temperature where real readers look for them."""

import json
import struct
import subprocess

import numpy as np
import pytest

from hotpixels.dng.cfa import CfaPattern
from hotpixels.dng.create import LAYOUTS, pack_bits_msb, pentax_makernote, write_dng
from hotpixels.dng.rawimage import CameraMetadata
from hotpixels.errors import InvalidOption
from hotpixels.simulate import simulate_session

from conftest import require_module, require_tool

CFAS = ["RGGB", "BGGR", "GRBG", "GBRG", "XTRANS"]


@pytest.fixture(scope="module")
def sessions():
    """One tiny light frame per CFA (small preset: odd ActiveArea offsets 3, 5), built once."""
    return {cfa: simulate_session("small", seed=21, n_darks=0, n_lights=1, cfa=cfa, clean=False) for cfa in CFAS}


def _write(session, tmp_path, layout):
    raw = session.lights[0]
    path = tmp_path / f"{layout}.dng"
    write_dng(path, raw.cfa_dn, cfa=raw.cfa, active_area=raw.active_area, black_level_dn=raw.black_repeat_dn,
              white_level_dn=raw.white_level_dn, bits=raw.bits_per_sample, layout=layout, metadata=raw.metadata)
    return path, raw


def _tifffile_raw(path):
    import tifffile

    with tifffile.TiffFile(path) as tf:
        pages = [tf.pages[0], *(tf.pages[0].pages or [])]
        raw_page = next(p for p in pages if p.photometric == 32803)
        return raw_page.asarray()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("cfa", CFAS)
def test_rawpy_reads_every_layout_and_cfa_bit_exact(sessions, tmp_path, cfa, layout):
    rawpy = require_module("rawpy")
    path, raw = _write(sessions[cfa], tmp_path, layout)
    with rawpy.imread(str(path)) as r:
        np.testing.assert_array_equal(r.raw_image, raw.cfa_dn)  # full frame incl. the masked border
        assert r.white_level == raw.white_level_dn


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tifffile_decodes_every_layout_bit_exact(sessions, tmp_path, layout):
    path, raw = _write(sessions["GBRG"], tmp_path, layout)
    np.testing.assert_array_equal(_tifffile_raw(path), raw.cfa_dn)


@pytest.mark.parametrize("layout", ["strip", "packed", "ljpeg-tiles-subifd"])
@pytest.mark.parametrize("cfa", ["RGGB", "XTRANS"])
def test_adobe_dng_sdk_reads_the_raw_bit_exact(sessions, tmp_path, cfa, layout):
    dngpy = require_module("dngpy")
    path, raw = _write(sessions[cfa], tmp_path, layout)
    dng = dngpy.Dng(str(path))
    np.testing.assert_array_equal(dng.raw_pixels[:, :, 0], raw.cfa_dn)
    assert (dng.metadata.make, dng.metadata.model) == ("HotPixels", "SimCam Mk1")


@pytest.mark.parametrize("cfa", CFAS)
def test_masked_and_active_sites_get_the_colour_of_the_cfa_anchored_at_the_active_area(sessions, tmp_path, cfa):
    rawpy = require_module("rawpy")
    path, raw = _write(sessions[cfa], tmp_path, "strip")
    with rawpy.imread(str(path)) as r:
        colours = r.raw_colors.copy()
        colours[colours == 3] = 1  # LibRaw's second green
    expected = raw.cfa.color_map(raw.shape)
    np.testing.assert_array_equal(colours, expected)
    # ignoring the odd (3, 5) ActiveArea offset would give other colours
    assert not np.array_equal(colours, raw.cfa.with_origin((0, 0)).color_map(raw.shape))


def test_exiftool_reads_back_iso_exposure_serial_time_and_pentax_temperature(tmp_path):
    exiftool = require_tool("exiftool")
    s = simulate_session("small", seed=22, n_darks=1, n_lights=1, exposure_s=120, iso=3200, temp_dark_c=14.0)
    written = s.write(tmp_path, layout="ljpeg-tiles-subifd")
    out = subprocess.run([exiftool, "-j", "-n", "-G1", "-a", written["darks"][0]], capture_output=True, text=True,
                         check=True)
    tags = json.loads(out.stdout)[0]
    meta = s.darks[0].metadata
    assert tags["ExifIFD:ISO"] == 3200
    assert tags["ExifIFD:ExposureTime"] == 120
    assert tags["ExifIFD:SerialNumber"] == meta.serial  # BodySerialNumber (42033)
    assert tags["IFD0:CameraSerialNumber"] == meta.serial  # DNG CameraSerialNumber (50735)
    assert tags["IFD0:Make"] == "HotPixels" and tags["IFD0:Model"] == "SimCam Mk1"
    assert tags["ExifIFD:DateTimeOriginal"] == meta.capture_time.replace("-", ":").replace("T", " ")
    assert tags["Pentax:CameraTemperature"] == meta.temperature_c == s.truth["temp_dark_recorded_c"][0]
    assert abs(tags["Pentax:CameraTemperature"] - 14.0) <= 3.5
    assert "ExifIFD:AmbientTemperature" not in tags


def test_project_metadata_reader_finds_the_simulated_temperature(tmp_path):
    require_tool("exiftool")
    from hotpixels.dng.reader import read_camera_metadata

    s = simulate_session("small", seed=23, n_darks=1, n_lights=0, temp_dark_c=-5.0, iso=800, exposure_s=240)
    written = s.write(tmp_path)
    meta = read_camera_metadata(written["darks"][0])
    want = s.darks[0].metadata
    assert (meta.make, meta.model, meta.serial, meta.iso, meta.exposure_s) == (
        want.make, want.model, want.serial, 800, 240)
    assert meta.temperature_c == want.temperature_c
    assert meta.temperature_source == want.temperature_source == "Pentax:CameraTemperature"


def test_packed_rows_are_msb_first_and_padded_to_bytes_like_a_per_pixel_reference():
    rng = np.random.default_rng(0)
    for bits, width in ((10, 5), (12, 7), (14, 3), (14, 9)):
        a = rng.integers(0, 1 << bits, (4, width)).astype(np.uint16)
        ref = bytearray()
        for row in a:
            s = "".join(format(int(v), f"0{bits}b") for v in row)
            s += "0" * ((-len(s)) % 8)
            ref += bytes(int(s[i:i + 8], 2) for i in range(0, len(s), 8))
        assert pack_bits_msb(a, bits) == bytes(ref)


@pytest.mark.parametrize("bits", [10, 12])
def test_packed_low_bit_depths_read_back_bit_exact(tmp_path, bits):
    rawpy = require_module("rawpy")
    rng = np.random.default_rng(bits)
    a = rng.integers(0, 1 << bits, (37, 51)).astype(np.uint16)  # odd width: row padding matters
    path = tmp_path / "p.dng"
    write_dng(path, a, cfa=CfaPattern.bayer("GRBG", (1, 1)), active_area=(1, 1, 37, 51), black_level_dn=16,
              white_level_dn=(1 << bits) - 1, bits=bits, layout="packed", metadata=CameraMetadata(make="X", model="Y"))
    with rawpy.imread(str(path)) as r:
        np.testing.assert_array_equal(r.raw_image, a)
    np.testing.assert_array_equal(_tifffile_raw(path), a)


@pytest.mark.parametrize("layout", ["strip", "packed", "ljpeg-tiles"])
def test_twelve_bit_gbrg_preset_without_masked_border_reads_back_bit_exact(tmp_path, layout):
    rawpy = require_module("rawpy")
    s = simulate_session("small-gbrg", seed=24, n_darks=1, n_lights=0)
    raw = s.darks[0]
    assert raw.bits_per_sample == 12 and raw.white_level_dn == 4095 and raw.active_area == (0, 0, 400, 600)
    path = tmp_path / "d.dng"
    write_dng(path, raw.cfa_dn, cfa=raw.cfa, active_area=raw.active_area, black_level_dn=raw.black_repeat_dn,
              white_level_dn=raw.white_level_dn, bits=12, layout=layout, metadata=raw.metadata)
    with rawpy.imread(str(path)) as r:
        np.testing.assert_array_equal(r.raw_image, raw.cfa_dn)
        assert r.white_level == 4095
        # no masked border: LibRaw's per-channel black must match the repeat phase by phase
        for py in range(2):
            for px in range(2):
                assert r.black_level_per_channel[r.raw_pattern[py, px]] == raw.black_repeat_dn[py, px]


def test_ljpeg_one_component_tiles_read_back_bit_exact(sessions, tmp_path):
    rawpy = require_module("rawpy")
    raw = sessions["RGGB"].lights[0]
    path = tmp_path / "one.dng"
    write_dng(path, raw.cfa_dn, cfa=raw.cfa, active_area=raw.active_area, black_level_dn=raw.black_repeat_dn,
              white_level_dn=raw.white_level_dn, bits=14, layout="ljpeg-tiles", ljpeg_components=1, tile_px=128)
    with rawpy.imread(str(path)) as r:
        np.testing.assert_array_equal(r.raw_image, raw.cfa_dn)


def test_pentax_makernote_has_the_aoc_header_and_a_signed_temperature():
    note = pentax_makernote(-7.4)
    assert note[:6] == b"AOC\0II"
    count = struct.unpack_from("<H", note, 6)[0]
    entries = [struct.unpack_from("<HHI4s", note, 8 + 12 * i) for i in range(count)]
    temp = next(e for e in entries if e[0] == 0x0047)
    assert temp[1] == 6 and struct.unpack("b", temp[3][:1])[0] == -7


def test_writing_is_atomic_and_refuses_bad_input(tmp_path):
    a = np.zeros((8, 8), np.uint16)
    cfa = CfaPattern.bayer("RGGB")
    with pytest.raises(InvalidOption):
        write_dng(tmp_path / "x.dng", a, cfa=cfa, active_area=(0, 0, 8, 8), black_level_dn=0, white_level_dn=255,
                  layout="jpeg-xl")
    with pytest.raises(InvalidOption):
        write_dng(tmp_path / "x.dng", a + 300, cfa=cfa, active_area=(0, 0, 8, 8), black_level_dn=0,
                  white_level_dn=255, bits=8)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("cfa", ["GRBG", "XTRANS"])
def test_project_reader_returns_the_simulated_raw_image(sessions, tmp_path, cfa, layout):
    from hotpixels.dng.reader import read_dng

    path, raw = _write(sessions[cfa], tmp_path, layout)
    back = read_dng(str(path), metadata=False)
    np.testing.assert_array_equal(back.cfa_dn, raw.cfa_dn)
    assert back.cfa == raw.cfa and back.active_area == raw.active_area
    np.testing.assert_array_equal(back.black_repeat_dn, raw.black_repeat_dn)
    assert back.white_level_dn == raw.white_level_dn


@pytest.mark.parametrize("layout", ["strip", "ljpeg-tiles-subifd"])
def test_adobe_dng_sdk_accepts_the_new_raw_image_digest_and_catches_a_changed_pixel(sessions, tmp_path, capfd,
                                                                                     layout):
    dngpy = require_module("dngpy")
    path, raw = _write(sessions["RGGB"], tmp_path, layout)
    dngpy.Dng(str(path)).raw_pixels
    assert "does not match" not in "".join(capfd.readouterr())
    if layout == "strip":  # the strip starts right after the 8-byte header: flip one sample's bit
        data = bytearray(path.read_bytes())
        data[8 + 2 * 5000] ^= 1
        bad = tmp_path / "tampered.dng"
        bad.write_bytes(bytes(data))
        dngpy.Dng(str(bad)).raw_pixels
        assert "NewRawImageDigest does not match" in "".join(capfd.readouterr())


def test_linear_raw_dng_holds_the_three_planes_and_is_refused_as_not_cfa(tmp_path):
    import tifffile

    from hotpixels.dng.create import write_linear_dng
    from hotpixels.dng.reader import read_dng
    from hotpixels.errors import NotCfaRaw

    rgb = np.random.default_rng(3).integers(0, 65536, (40, 56, 3)).astype(np.uint16)
    for subifd in (False, True):
        path = tmp_path / f"linear-{subifd}.dng"
        write_linear_dng(path, rgb, subifd=subifd)
        with tifffile.TiffFile(path) as tf:
            page = next(p for p in [tf.pages[0], *(tf.pages[0].pages or [])] if p.photometric == 34892)
            np.testing.assert_array_equal(page.asarray(), rgb)
        with pytest.raises(NotCfaRaw):
            read_dng(path)


@pytest.mark.parametrize("layout", ["packed-tiles", "ljpeg-tiles-subifd", "strip"])
def test_pixel_data_false_keeps_every_tag_but_points_past_the_end(tmp_path, layout):
    from hotpixels.dng.reader import read_camera_metadata, read_dng
    from hotpixels.dng.tiff import TiffFile
    from hotpixels.errors import TruncatedFile

    truth = np.random.default_rng(4).integers(0, 4096, (64, 96)).astype(np.uint16)
    meta = CameraMetadata(make="Canon", model="Body", serial="42", iso=400, exposure_s=1 / 15)
    kw = dict(cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, 64, 96), black_level_dn=0, white_level_dn=4095,
              bits=12, layout=layout, tile_px=32, metadata=meta)
    full, stripped = tmp_path / "full.dng", tmp_path / "stripped.dng"
    write_dng(full, truth, **kw)
    write_dng(stripped, truth, pixel_data=False, **kw)
    assert stripped.stat().st_size < full.stat().st_size
    tf = TiffFile(stripped.read_bytes())
    raw_ifd = next(i for i in tf.walk() if tf.get1(i, 262) == 32803)
    offsets = tf.ints(raw_ifd.entries[324 if 324 in raw_ifd.entries else 273])
    assert min(offsets) > stripped.stat().st_size and tf.get1(raw_ifd, 256) == 96
    got = read_camera_metadata(stripped)
    assert (got.make, got.serial, got.iso, got.exposure_s) == ("Canon", "42", 400, pytest.approx(1 / 15))
    with pytest.raises(TruncatedFile):
        read_dng(stripped)
