"""The CFA convention: colours are anchored at the ActiveArea's top-left, greens are two planes."""

import numpy as np
import pytest

from hotpixels.dng.cfa import BLUE, GREEN, RED, CfaPattern


@pytest.mark.parametrize("name", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_bayer_color_at_origin_is_pattern_corner(name):
    cfa = CfaPattern.bayer(name, origin_yx=(3, 5))
    first = {"R": RED, "G": GREEN, "B": BLUE}[name[0]]
    assert cfa.color_at(3, 5) == first
    assert cfa.name == name


def test_odd_active_area_offset_shifts_the_colour_map():
    cfa0 = CfaPattern.bayer("RGGB", origin_yx=(0, 0))
    cfa1 = CfaPattern.bayer("RGGB", origin_yx=(1, 1))
    m0, m1 = cfa0.color_map((6, 8)), cfa1.color_map((6, 8))
    assert m1[1, 1] == RED and m0[1, 1] == BLUE
    ys, xs = np.mgrid[0:6, 0:8]
    np.testing.assert_array_equal(m1, cfa1.color_at(ys, xs))


def test_bayer_greens_are_separate_planes_and_slices_cover_each_plane():
    cfa = CfaPattern.bayer("GRBG", origin_yx=(1, 0))
    assert cfa.n_planes == 4
    pm = cfa.plane_map((7, 9))
    for p in range(4):
        mask = np.zeros((7, 9), bool)
        for sy, sx in cfa.plane_slices(p, (7, 9)):
            mask[sy, sx] = True
        np.testing.assert_array_equal(mask, pm == p)


def test_xtrans_has_three_planes_and_same_colour_neighbours():
    cfa = CfaPattern.xtrans(origin_yx=(2, 3))
    assert cfa.n_planes == 3 and cfa.is_xtrans
    cmap = cfa.color_map((30, 30))
    for py, px in cfa.phases():
        y, x = 12 + py, 12 + px
        for dy, dx in cfa.same_color_offsets(cfa.phase_of(y, x), radius=2):
            assert cmap[y + dy, x + dx] == cmap[y, x]


def test_bayer_green_neighbours_include_diagonals_and_pairs_are_opposite():
    cfa = CfaPattern.bayer("RGGB")
    offs = {tuple(o) for o in cfa.same_color_offsets((0, 1), radius=1).tolist()}
    assert offs == {(-1, -1), (-1, 1), (1, -1), (1, 1)}
    pairs = cfa.opposite_pairs((0, 0), radius=2)
    assert len(pairs) == 4
    for a, b in pairs:
        assert tuple(a) == tuple(-b)
