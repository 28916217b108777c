"""The diverging colour map of the hidden-unit views (heatmap, text view, colour bar), light and dark.

Negative activations are blue, positive red, and the centre of the levels is the background colour of the
theme: white-ish in a light palette, near-black in a dark one, so "nothing happening" looks like empty page in
either.  Text drawn on a coloured cell picks black or white by the cell's luminance, so every character stays
readable whatever the value.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QPalette

from workbench.gui.style import is_dark

LUT_SIZE = 256

# ColorBrewer RdBu ends (colour-blind safe), a little softened in the dark theme so they do not glare
_LIGHT = ("#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b")
_DARK = ("#4b9fe0", "#27506e", "#232428", "#7a3a30", "#f0664f")


def stops(dark: bool) -> tuple[str, ...]:
    return _DARK if dark else _LIGHT


def lut(dark: bool | None = None, palette: QPalette | None = None) -> np.ndarray:
    """``uint8 [LUT_SIZE, 3]``: index 0 is the lowest level, the middle the centre, the last the highest."""
    dark = is_dark(palette) if dark is None else dark
    cols = np.array([[QColor(c).red(), QColor(c).green(), QColor(c).blue()] for c in stops(dark)], dtype=float)
    pos = np.linspace(0.0, 1.0, len(cols))
    x = np.linspace(0.0, 1.0, LUT_SIZE)
    out = np.stack([np.interp(x, pos, cols[:, k]) for k in range(3)], axis=1)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def text_colors(table: np.ndarray) -> np.ndarray:
    """``bool [LUT_SIZE]``: True where black text reads better than white on that colour (WCAG luminance)."""
    c = table.astype(float) / 255.0
    lin = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    lum = 0.2126 * lin[:, 0] + 0.7152 * lin[:, 1] + 0.0722 * lin[:, 2]
    # contrast with black (lum + .05) / .05 against white 1.05 / (lum + .05): black wins above ~0.179
    return lum > 0.179


def indices(values: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """Each value's row of the table, values outside the levels clipped to the ends."""
    lo, hi = levels
    span = (hi - lo) or 1.0
    idx = np.floor((np.asarray(values, dtype=np.float64) - lo) / span * (LUT_SIZE - 1) + 0.5)
    return np.clip(np.nan_to_num(idx, nan=(LUT_SIZE - 1) / 2), 0, LUT_SIZE - 1).astype(np.int16)


def qcolors(table: np.ndarray) -> list[QColor]:
    return [QColor(int(r), int(g), int(b)) for r, g, b in table]
