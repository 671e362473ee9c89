"""The profile charts carry their words: a 5 x 7 font for titles, tick values and units."""

from __future__ import annotations

import numpy as np

from hotpixels.profiles.chartfont import GLYPHS, draw_text, text_mask, text_width
from hotpixels.profiles.pictures import BAR, CHART_SIZE, TEXT, bar_chart


def test_text_is_drawn_glyph_by_glyph_with_one_column_between():
    mask = text_mask("10", scale=1)
    assert mask.shape == (7, 11)
    assert (mask[:, :5] == GLYPHS["1"]).all() and (mask[:, 6:] == GLYPHS["0"]).all()
    assert not mask[:, 5].any()
    assert text_width("ab", 2) == 2 * 11, "lower case draws as upper case, scaled"


def test_draw_text_clips_at_the_edges_and_anchors():
    img = np.zeros((10, 20, 3), np.uint8)
    draw_text(img, "88", 20, 0, rgb=(255, 255, 255), anchor="right")
    assert img[:, 19].any() and not img[:, :9].any()
    draw_text(img, "8", -3, 8)  # mostly outside: no error


def test_a_bar_chart_has_title_ticks_and_values_in_words():
    img = bar_chart([3.0, 12.0, None, 6.0], title="Hot pixels per dark frame", x_label="dark frame",
                    y_label="pixels")
    assert img.shape == (*CHART_SIZE, 3)
    text = (img == TEXT).all(axis=2)
    assert text[:28].any(), "a title at the top"
    assert text[:, :55].any(), "tick values left of the axis"
    assert text[-12:].any(), "the x label at the bottom"
    bars = np.unique(np.nonzero((img == BAR).all(axis=2))[1])
    assert len(bars) > 3 * 50, "three bars (one value is missing)"
