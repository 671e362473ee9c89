"""A 5 x 7 bitmap font for the words, numbers and units on the profile charts (no font library).

Glyphs are the classic 5 x 7 dot-matrix shapes (rows top to bottom, 5 bits each, the high bit on
the left); lower case is drawn as upper case. ``draw_text`` stamps a string into an RGB array at an
integer ``scale`` (each dot ``scale`` x ``scale`` pixels), one column of space between glyphs.
"""

from __future__ import annotations

import numpy as np

GLYPH_W, GLYPH_H = 5, 7

_ROWS = {
    " ": "00 00 00 00 00 00 00", "0": "0E 11 13 15 19 11 0E", "1": "04 0C 04 04 04 04 0E",
    "2": "0E 11 01 02 04 08 1F", "3": "1F 02 04 02 01 11 0E", "4": "02 06 0A 12 1F 02 02",
    "5": "1F 10 1E 01 01 11 0E", "6": "06 08 10 1E 11 11 0E", "7": "1F 01 02 04 08 08 08",
    "8": "0E 11 11 0E 11 11 0E", "9": "0E 11 11 0F 01 02 0C", "A": "0E 11 11 11 1F 11 11",
    "B": "1E 11 11 1E 11 11 1E", "C": "0E 11 10 10 10 11 0E", "D": "1C 12 11 11 11 12 1C",
    "E": "1F 10 10 1E 10 10 1F", "F": "1F 10 10 1E 10 10 10", "G": "0E 11 10 17 11 11 0F",
    "H": "11 11 11 1F 11 11 11", "I": "0E 04 04 04 04 04 0E", "J": "07 02 02 02 02 12 0C",
    "K": "11 12 14 18 14 12 11", "L": "10 10 10 10 10 10 1F", "M": "11 1B 15 15 11 11 11",
    "N": "11 11 19 15 13 11 11", "O": "0E 11 11 11 11 11 0E", "P": "1E 11 11 1E 10 10 10",
    "Q": "0E 11 11 11 15 12 0D", "R": "1E 11 11 1E 14 12 11", "S": "0F 10 10 0E 01 01 1E",
    "T": "1F 04 04 04 04 04 04", "U": "11 11 11 11 11 11 0E", "V": "11 11 11 11 11 0A 04",
    "W": "11 11 11 15 15 15 0A", "X": "11 11 0A 04 0A 11 11", "Y": "11 11 11 0A 04 04 04",
    "Z": "1F 01 02 04 08 10 1F", ".": "00 00 00 00 00 0C 0C", ",": "00 00 00 00 0C 04 08",
    "-": "00 00 00 1F 00 00 00", "–": "00 00 00 1F 00 00 00", ":": "00 0C 0C 00 0C 0C 00",
    "(": "02 04 08 08 08 04 02", ")": "08 04 02 02 02 04 08", "%": "18 19 02 04 08 13 03",
    "/": "00 01 02 04 08 10 00", "°": "0C 12 12 0C 00 00 00", "σ": "00 00 0F 12 12 12 0C",
    "×": "00 11 0A 04 0A 11 00", "+": "00 04 04 1F 04 04 00", "=": "00 00 1F 00 1F 00 00",
    "?": "0E 11 01 02 04 00 04", "'": "04 04 08 00 00 00 00", "#": "0A 0A 1F 0A 1F 0A 0A",
}


def _glyph(rows: str) -> np.ndarray:
    bits = [int(r, 16) for r in rows.split()]
    return np.array([[(b >> (GLYPH_W - 1 - i)) & 1 for i in range(GLYPH_W)] for b in bits], dtype=bool)


GLYPHS = {ch: _glyph(rows) for ch, rows in _ROWS.items()}


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """Boolean (7*scale, width) mask of ``text``; unknown characters draw as '?'."""
    text = text.upper()
    if not text:
        return np.zeros((GLYPH_H * scale, 0), bool)
    gap = np.zeros((GLYPH_H, 1), bool)
    parts = []
    for i, ch in enumerate(text):
        if i:
            parts.append(gap)
        parts.append(GLYPHS.get(ch, GLYPHS["?"]))
    mask = np.concatenate(parts, axis=1)
    return np.kron(mask, np.ones((scale, scale), bool)).astype(bool)


def text_width(text: str, scale: int = 1) -> int:
    return text_mask(text, scale).shape[1]


def draw_text(img: np.ndarray, text: str, x: int, y: int, *, scale: int = 1, rgb=(0, 0, 0),
              anchor: str = "left") -> None:
    """Stamp ``text`` into ``img`` (h, w, 3) with its top at ``y``; ``anchor`` left/center/right at ``x``.
    Parts outside the image are clipped."""
    mask = text_mask(text, scale)
    h, w = mask.shape
    if anchor == "center":
        x -= w // 2
    elif anchor == "right":
        x -= w
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + h, img.shape[0]), min(x + w, img.shape[1])
    if y1 <= y0 or x1 <= x0:
        return
    sub = mask[y0 - y:y1 - y, x0 - x:x1 - x]
    img[y0:y1, x0:x1][sub] = rgb
