"""Before/after crops of the strongest repairs: single sites enlarged by nearest neighbour, marked."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest

from hotpixels.correct.previews import MARKER_RGB, enlarge_with_markers, render_sites, strongest_crops, write_previews
from hotpixels.dng.cfa import CfaPattern
from hotpixels.dng.create import write_dng
from hotpixels.dng.reader import read_dng


@pytest.fixture
def flat_frame(tmp_path):
    """A 200 x 300 RGGB sky at 600 DN (noise 10 DN) with four hot sites of different strength."""
    cfa = np.random.default_rng(1).normal(600, 10, (200, 300)).astype(np.uint16)
    hot = {(20, 30): 4000, (150, 250): 9000, (21, 33): 2000, (100, 100): 6000}
    for (y, x), v in hot.items():
        cfa[y, x] = v
    path = tmp_path / "flat.dng"
    write_dng(path, cfa, cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, 200, 300), black_level_dn=512,
              white_level_dn=16383, as_shot_neutral=(1.0, 1.0, 1.0))
    raw = read_dng(path)
    new = raw.cfa_dn.copy()
    for (y, x) in hot:
        new[y, x] = 600
    raw.cfa_dn.setflags(write=False)
    return raw, new, np.array(list(hot), dtype=np.int64)


def test_crops_centre_on_the_strongest_repairs_first_and_never_overlap(flat_frame):
    raw, new, yx = flat_frame
    crops = strongest_crops(raw, new, yx, n=3, size=64)
    assert [c["site"] for c in crops] == [(150, 250), (100, 100), (20, 30)]
    assert crops[0]["change_dn"] == 9000 - 600
    assert crops[2]["n_changes"] == 2, "the weaker neighbour shares the third crop"
    t, l, b, r = raw.active_area
    for c in crops:
        top, left, bottom, right = c["box"]
        assert bottom - top == right - left == 64
        assert t <= top and bottom <= b and l <= left and right <= r


def test_enlargement_is_nearest_neighbour_and_marks_each_site_with_a_square():
    grey = np.zeros((4, 4), np.uint8)
    grey[1, 2] = 200
    img = enlarge_with_markers(grey, np.array([[1, 2]]), scale=3)
    assert img.shape == (12, 12, 3)
    assert (img[3:6, 6:9] == 200).all(), "the site is a 3 x 3 block of its own value"
    ring = np.zeros((12, 12), bool)  # two pixels outside the block: rows 1 and 7, columns 4 and 10
    ring[1, 4:11] = ring[7, 4:11] = ring[1:8, 4] = ring[1:8, 10] = True
    assert (img[ring] == MARKER_RGB).all()
    assert (img[~ring & (img.sum(axis=2) > 0) & ~np.all(img == 200, axis=2)] == MARKER_RGB).all()


def test_render_is_one_pixel_per_site_with_one_exposure_for_both(flat_frame):
    raw, new, _ = flat_frame
    box = (140, 240, 160, 260)
    wb = np.ones(3)
    after, white = render_sites(raw, new, box, wb)
    before, _ = render_sites(raw, raw.cfa_dn, box, wb, white)
    assert after.shape == before.shape == (20, 20)
    assert before[10, 10] == 255 and after[10, 10] < 250, "the hot site is white before, gone after"
    same = np.ones((20, 20), bool)
    same[10, 10] = False
    assert (before[same] == after[same]).all(), "one exposure for both: only the repaired site differs"


def test_write_previews_writes_marked_png_pairs(flat_frame, tmp_path):
    raw, new, yx = flat_frame
    previews = write_previews(raw, new, yx, tmp_path / "flat_hotpixels.dng", n=2, size=64, scale=3)
    assert len(previews) == 2
    before = imagecodecs.png_decode(open(previews[0]["before"], "rb").read())
    assert before.shape == (192, 192, 3)  # 64 sites at 3x
    assert (before.reshape(-1, 3) == MARKER_RGB).all(axis=1).any(), "the repair is marked"
    assert previews[0]["site"] == [150, 250] and previews[0]["scale"] == 3
