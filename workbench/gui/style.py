"""Colours and metrics shared by the canvas, the palette and the other GUI panels.

Port colours are mid-luminance, saturated hues: they stay readable on a light node body (about #fafafa) and on a
dark one (about #3a3d41), so one table serves both themes.  Sequence types (``...[T]``) are drawn as circles and
per-example types as diamonds, so the type does not hang on colour alone.  Node and scene colours are derived from
the application's :class:`QPalette`, which is what a light or dark desktop theme changes.
"""

from __future__ import annotations

import colorsys
import hashlib
import html
import re
from dataclasses import dataclass

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

# ---- metrics (scene units; 1 unit = 1 px at 100 % zoom) ---------------------------------------------------
NODE_MIN_WIDTH = 156.0
NODE_MAX_WIDTH = 196.0       # templates place nodes 220 apart: keep a visible gap for the links
NODE_RADIUS = 6.0
HEADER_HEIGHT = 28.0
SUMMARY_HEIGHT = 22.0
PORT_ROW_HEIGHT = 22.0
PORT_RADIUS = 6.0
PORT_HIT_RADIUS = 11.0       # a drop this close to a port counts as on it
NODE_PADDING = 8.0
LINK_WIDTH = 2.4
GRID_STEP = 20.0
LAYER_GAP = 60.0             # auto-layout: horizontal gap between layers
ROW_GAP = 36.0               # auto-layout: vertical gap between nodes of one layer
ZOOM_MIN = 0.15
ZOOM_MAX = 4.0

# ---- port types ----------------------------------------------------------------------------------------
PORT_COLORS: dict[str, str] = {
    "tokens[T]": "#e0962a",   # amber
    "vectors[T]": "#3f8fe0",  # blue
    "vector": "#1fa99d",      # teal
    "state": "#a66bd6",       # purple
    "features": "#a1887f",    # warm grey
    "logits[T]": "#e35d3f",   # red-orange
    "logits": "#d6457c",      # pink
    "values[T]": "#44a848",   # green
    "values": "#94b82a",      # lime
}


def port_color(port_type: str) -> QColor:
    """The colour of a port type; a type no table knows (a newer plugin's) gets a stable hue from its name."""
    known = PORT_COLORS.get(port_type)
    if known:
        return QColor(known)
    hue = int(hashlib.md5(port_type.encode()).hexdigest()[:6], 16) % 360 / 360.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.52, 0.62)
    return QColor.fromRgbF(r, g, b)


def is_sequence_type(port_type: str) -> bool:
    return port_type.endswith("[T]")


# ---- categories --------------------------------------------------------------------------------------
#: palette order; categories not listed follow, alphabetically, before "other"
CATEGORY_ORDER = ("tasks", "inputs/outputs", "embeddings", "recurrent", "attention", "pooling", "heads")
CATEGORY_TITLES = {
    "tasks": "Tasks",
    "inputs/outputs": "Inputs and outputs",
    "embeddings": "Embeddings",
    "recurrent": "Recurrent layers",
    "attention": "Attention",
    "pooling": "Pooling",
    "heads": "Heads",
    "regularisation": "Regularisation",
    "combine": "Combine",
    "seq2seq": "Encoder–decoder",
    "other": "Other",
}
CATEGORY_COLORS = {
    "tasks": "#7a8a99",           # the colour of the task's nodes ("inputs/outputs")
    "inputs/outputs": "#7a8a99",
    "embeddings": "#e0962a",
    "recurrent": "#3f8fe0",
    "attention": "#a66bd6",
    "pooling": "#1fa99d",
    "heads": "#e35d3f",
    "regularisation": "#8d8d8d",
    "combine": "#5c9e8f",
    "seq2seq": "#7b68c9",
}


def category_title(category: str) -> str:
    return CATEGORY_TITLES.get(category) or category.replace("-", " ").replace("_", " ").capitalize()


def category_sort_key(category: str) -> tuple[int, str]:
    if category in CATEGORY_ORDER:
        return CATEGORY_ORDER.index(category), ""
    return len(CATEGORY_ORDER) + (1 if category == "other" else 0), category


def category_color(category: str) -> QColor:
    known = CATEGORY_COLORS.get(category)
    return QColor(known) if known else port_color("category:" + category)


# ---- theme ----------------------------------------------------------------------------------------------
def blend(a: QColor, b: QColor, t: float) -> QColor:
    """``a`` moved the fraction ``t`` towards ``b``."""
    return QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * t, a.greenF() + (b.greenF() - a.greenF()) * t,
                           a.blueF() + (b.blueF() - a.blueF()) * t)


@dataclass(frozen=True)
class CanvasTheme:
    dark: bool
    background: QColor
    grid: QColor
    grid_major: QColor
    body: QColor
    border: QColor
    text: QColor
    muted_text: QColor
    selection: QColor
    problem: QColor
    bubble_bg: QColor
    bubble_text: QColor
    bubble_border: QColor


def is_dark(palette: QPalette | None = None) -> bool:
    pal = palette or QApplication.palette()
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


def canvas_theme(palette: QPalette | None = None) -> CanvasTheme:
    pal = QPalette(palette or QApplication.palette())
    dark = is_dark(pal)
    # copies: QPalette.color() returns a reference into the palette, which must not outlive it
    window = QColor(pal.color(QPalette.ColorRole.Window))
    text = QColor(pal.color(QPalette.ColorRole.WindowText))
    highlight = QColor(pal.color(QPalette.ColorRole.Highlight))
    if dark:
        background = blend(window, QColor("#000000"), 0.25)
        body = blend(window, QColor("#ffffff"), 0.10)
        border = blend(window, QColor("#ffffff"), 0.30)
        problem = QColor("#ff6b6b")
        bubble_bg, bubble_text, bubble_border = QColor("#5a2323"), QColor("#ffe3e3"), QColor("#ff8a8a")
    else:
        background = blend(window, QColor("#ffffff"), 0.35)
        body = QColor("#ffffff")
        border = blend(window, QColor("#000000"), 0.35)
        problem = QColor("#d32f2f")
        bubble_bg, bubble_text, bubble_border = QColor("#fdecea"), QColor("#611a15"), QColor("#d32f2f")
    grid = blend(background, text, 0.06)
    grid_major = blend(background, text, 0.12)
    return CanvasTheme(dark=dark, background=background, grid=grid, grid_major=grid_major, body=body,
                       border=border, text=text, muted_text=blend(text, body, 0.3), selection=highlight,
                       problem=problem, bubble_bg=bubble_bg, bubble_text=bubble_text, bubble_border=bubble_border)


def header_color(category: str, theme: CanvasTheme) -> QColor:
    """The node header: the category colour, toned towards the body so the title stays readable."""
    return blend(category_color(category), theme.body, 0.55 if theme.dark else 0.72)


def ui_font(scale: float = 1.0, bold: bool = False) -> QFont:
    """The application font scaled, never below 8 pt (smaller is unreadable at 100 % zoom)."""
    font = QFont(QApplication.font())
    size = font.pointSizeF()
    if size > 0:
        font.setPointSizeF(max(8.0, size * scale))
    font.setBold(bold)
    return font


def muted_text_color(widget) -> QColor:
    """The text colour of hints and status lines: the theme's text colour 40 % of the way to the background, as
    dark (or light) as hints get while staying readable (about 5:1 on the default light and dark palettes)."""
    # From the application's palette for this kind of widget, never from the widget's own: that one may have
    # been muted (or turned red by an error) already, and blending it again would fade the text a bit more at
    # every message until it vanished (#E9E9E9 on #EFEFEF after a dozen).
    base = QApplication.palette(widget)
    return blend(QColor(base.color(QPalette.ColorRole.WindowText)), QColor(base.color(QPalette.ColorRole.Window)),
                 0.4)


def set_muted(widget) -> None:
    """Give a hint label a muted but readable text colour (the disabled colour is too faint in light themes).

    Idempotent: calling it again (a status label muted at every message) gives the same colour, and it also
    brings back a label that showed an error colour in between."""
    pal = widget.palette()
    pal.setColor(QPalette.ColorRole.WindowText, muted_text_color(widget))
    widget.setPalette(pal)


_CODE = re.compile(r"``(.+?)``|`([^`]+)`")


def help_html(text: str) -> str:
    """A plugin's help or description as rich text: HTML-escaped, and Markdown's ```code``` (as plugin authors
    write parameter names) in a code font instead of raw backticks."""
    out, last = [], 0
    for m in _CODE.finditer(text):
        out.append(html.escape(text[last:m.start()]))
        out.append(f"<code>{html.escape(m.group(1) or m.group(2))}</code>")
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)
