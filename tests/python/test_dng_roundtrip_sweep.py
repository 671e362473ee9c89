"""Seeded sweep of round trips on simulated DNGs: every layout the simulator writes x the four
Bayer phases and X-Trans, with random bit depths 10-16, odd frame sizes, tile sizes, ActiveArea
offsets and black-level repeats; plus a LinearizationTable file and maker-note temperature."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from conftest import require_module
from dng_testing import fake_correction, metadata_differences, rawpy_raw, tifffile_raw
from hotpixels.dng.cfa import CfaPattern
from hotpixels.dng.create import LAYOUTS, write_dng
from hotpixels.dng.rawimage import CameraMetadata
from hotpixels.dng.reader import read_dng
from hotpixels.dng.tiff import LONG, SHORT, TiffFile
from hotpixels.dng.writer import _Output, _rewrite_ifd0, write_corrected_dng

CFAS = ["RGGB", "BGGR", "GRBG", "GBRG", "X-Trans"]


def _make_cases():
    rng = np.random.default_rng(20261128)
    cases = []
    for layout in LAYOUTS:
        for cfa in CFAS:
            bits = int(rng.integers(10, 17))
            h, w = int(rng.integers(37, 120)), int(rng.integers(41, 150))
            top, left = int(rng.integers(0, 6)), int(rng.integers(0, 7))
            bottom, right = h - int(rng.integers(0, 5)), w - int(rng.integers(0, 4))
            tile = int(rng.choice([16, 32, 48, 64]))
            black_repeat = bool(rng.integers(0, 2))
            cases.append(dict(layout=layout, cfa=cfa, bits=bits, h=h, w=w, area=(top, left, bottom, right),
                              tile=tile, black_repeat=black_repeat, seed=len(cases)))
    return cases


CASES = _make_cases()


def _ident(c):
    return f"{c['layout']}-{c['cfa']}-{c['bits']}b-{c['h']}x{c['w']}-t{c['tile']}-aa{c['area'][0]}{c['area'][1]}"


def _pattern(name: str, origin) -> CfaPattern:
    return CfaPattern.xtrans(origin) if name == "X-Trans" else CfaPattern.bayer(name, origin)


@pytest.mark.parametrize("case", CASES, ids=[_ident(c) for c in CASES])
def test_simulated_dng_round_trip(case, tmp_path):
    rng = np.random.default_rng(case["seed"])
    top = (1 << case["bits"]) - 1
    truth = rng.integers(0, top + 1, (case["h"], case["w"])).astype(np.uint16)
    t, l = case["area"][:2]
    cfa = _pattern(case["cfa"], (t, l))
    black = np.array([[60.0, 64.0], [62.0, 66.0]]) if case["black_repeat"] else 64.0
    src = tmp_path / "src.dng"
    write_dng(src, truth, cfa=cfa, active_area=case["area"], black_level_dn=black, white_level_dn=top,
              bits=case["bits"], layout=case["layout"], tile_px=case["tile"],
              metadata=CameraMetadata(make="Sim", model="S1", serial="7", iso=1600, exposure_s=60.0))

    raw = read_dng(src, metadata=False)
    np.testing.assert_array_equal(raw.cfa_dn, truth)
    assert raw.cfa == cfa and raw.active_area == case["area"]
    np.testing.assert_array_equal(raw.black_repeat_dn, np.broadcast_to(black, raw.black_repeat_dn.shape))
    np.testing.assert_array_equal(rawpy_raw(src), truth)
    _assert_libraw_agrees_on_colours(src, raw)

    new = fake_correction(raw, seed=case["seed"], n=max(20, truth.size // 50))
    dst = tmp_path / "out.dng"
    write_corrected_dng(raw, new, dst)
    np.testing.assert_array_equal(read_dng(dst, metadata=False).cfa_dn, new)
    np.testing.assert_array_equal(tifffile_raw(dst), new)
    np.testing.assert_array_equal(rawpy_raw(dst), new)


@pytest.mark.parametrize("bits", range(9, 17))
@pytest.mark.parametrize("width", [33, 50])
def test_packed_every_bit_depth_with_odd_row_lengths(bits, width, tmp_path):
    """Rows of w * bits bits are padded to whole bytes: odd widths exercise the row padding."""
    rng = np.random.default_rng(bits * 100 + width)
    truth = rng.integers(0, 1 << bits, (23, width)).astype(np.uint16)
    src = tmp_path / "p.dng"
    write_dng(src, truth, cfa=CfaPattern.bayer("GBRG", (1, 1)), active_area=(1, 1, 23, width), black_level_dn=0,
              white_level_dn=(1 << bits) - 1, bits=bits, layout="packed")
    raw = read_dng(src, metadata=False)
    assert raw.bits_per_sample == bits and raw.layout.packed == (bits != 16)
    np.testing.assert_array_equal(raw.cfa_dn, truth)
    new = fake_correction(raw, bits, n=40)
    write_corrected_dng(raw, new, tmp_path / "out.dng")
    assert (tmp_path / "out.dng").stat().st_size - src.stat().st_size < 4096  # patched in place
    np.testing.assert_array_equal(read_dng(tmp_path / "out.dng", metadata=False).cfa_dn, new)
    np.testing.assert_array_equal(tifffile_raw(tmp_path / "out.dng"), new)
    np.testing.assert_array_equal(rawpy_raw(tmp_path / "out.dng"), new)


def _assert_libraw_agrees_on_colours(path, raw) -> None:
    """Our CFA (anchored at the ActiveArea) gives LibRaw's colour at every site LibRaw shows
    (LibRaw may move an odd margin by one row/column; compare in full-frame coordinates)."""
    rawpy = require_module("rawpy")
    with rawpy.imread(str(path)) as rp:
        libraw = np.array(list(rp.color_desc.decode()))[rp.raw_colors_visible]  # "RGBG": G twice
        top, left = rp.sizes.top_margin, rp.sizes.left_margin
    h, w = libraw.shape
    ours = np.array(list("RGB"))[raw.cfa.color_map(raw.shape)][top:top + h, left:left + w]
    np.testing.assert_array_equal(ours, libraw)


@pytest.mark.parametrize("layout", ["packed", "ljpeg-tiles-subifd"])
def test_simulated_files_keep_all_metadata(layout, tmp_path):
    truth = np.random.default_rng(5).integers(0, 4096, (96, 130)).astype(np.uint16)
    src = tmp_path / "src.dng"
    write_dng(src, truth, cfa=CfaPattern.bayer("GBRG", (3, 1)), active_area=(3, 1, 95, 129), black_level_dn=128,
              white_level_dn=4095, bits=12, layout=layout, tile_px=32,
              metadata=CameraMetadata(make="Sim", model="S1", serial="7", iso=1600, exposure_s=60.0,
                                      temperature_c=23.0, capture_time="2026-11-28T01:02:03"))
    raw = read_dng(src)
    write_corrected_dng(raw, fake_correction(raw, 9), tmp_path / "out.dng")
    assert metadata_differences(src, tmp_path / "out.dng") == {}


def test_maker_note_temperature_is_read_through_exiftool(tmp_path):
    p = tmp_path / "t.dng"
    write_dng(p, np.zeros((40, 40), np.uint16), cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, 40, 40),
              black_level_dn=0, white_level_dn=4095, bits=12,
              metadata=CameraMetadata(make="Sim", model="S1", temperature_c=-7.0))
    meta = read_dng(p).metadata
    assert meta.temperature_c == -7.0 and meta.temperature_source.endswith(":CameraTemperature")


def test_without_exiftool_temperature_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTPIXELS_NO_EXIFTOOL", "1")
    p = tmp_path / "t.dng"
    write_dng(p, np.zeros((40, 40), np.uint16), cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, 40, 40),
              black_level_dn=0, white_level_dn=4095, bits=12,
              metadata=CameraMetadata(make="Sim", model="S1", serial="9", temperature_c=-7.0))
    meta = read_dng(p).metadata
    assert meta.temperature_c is None and meta.serial == "9"


# -- LinearizationTable -----------------------------------------------------------------------------
def _add_linearization_table(path, table: np.ndarray) -> None:
    """Add a LinearizationTable to IFD0 (the raw IFD of a "strip" file) with the writer's own
    IFD0 rewrite: a new IFD0 at the end of the file, everything else in place."""
    tf = TiffFile(path.read_bytes(), name=str(path))
    with open(path, "r+b") as f:
        out = _Output(f, tf.bo)
        white = tf.ifd0.entries[50717]  # WhiteLevel is in the linear scale (inline: patch first)
        assert white.type == LONG and white.inline
        out.write_at(white.value_pos, struct.pack("<I", int(table.max())))
        _rewrite_ifd0(tf, out, {50712: (SHORT, struct.pack(f"<{len(table)}H", *table.tolist()))})


def test_linearization_table_round_trip_is_exact_where_it_can_be(tmp_path):
    rawpy = require_module("rawpy")
    table = np.round(np.linspace(0, 1, 4096) ** 1.8 * 60000).astype(np.uint16)  # 12-bit -> 16-bit DN
    rng = np.random.default_rng(11)
    stored = rng.integers(0, 4096, (64, 80)).astype(np.uint16)
    src = tmp_path / "lin.dng"
    write_dng(src, stored, cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, 64, 80), black_level_dn=0,
              white_level_dn=4095, bits=12, layout="strip")
    _add_linearization_table(src, table)

    raw = read_dng(src, metadata=False)
    np.testing.assert_array_equal(raw.cfa_dn, table[stored])  # linearised DN
    assert raw.white_level_dn == table.max()
    with rawpy.imread(str(src)) as rp:  # LibRaw applies the table too
        np.testing.assert_array_equal(rp.raw_image, table[stored])

    new = raw.cfa_dn.copy()
    in_image = (slice(0, 10), slice(0, 10))
    new[in_image] = table[rng.integers(0, 4096, (10, 10))]  # values the table can produce
    off_grid = (slice(20, 30), slice(20, 30))
    new[off_grid] = rng.integers(0, 60000, (10, 10))  # arbitrary DN: nearest table entry
    write_corrected_dng(raw, new, tmp_path / "out.dng")
    back = read_dng(tmp_path / "out.dng", metadata=False).cfa_dn.astype(np.int64)

    untouched = np.ones(new.shape, bool)
    untouched[in_image] = untouched[off_grid] = False
    np.testing.assert_array_equal(back[untouched], raw.cfa_dn[untouched])
    np.testing.assert_array_equal(back[in_image], new[in_image])
    nearest = np.abs(table.astype(np.int64)[None, :] - new[off_grid].reshape(-1, 1)).min(axis=1)
    np.testing.assert_array_equal(np.abs(back[off_grid].ravel() - new[off_grid].ravel()), nearest)
