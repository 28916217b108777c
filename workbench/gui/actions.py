"""The main window's actions: how they are made (text, shortcut, tip, icon), and the icons drawn for them.

The run and file controllers and the window make their actions here, so that every action says what it does in
its tooltip and in the status bar alike.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QPointF, Qt
from PySide6.QtGui import QAction, QColor, QIcon, QKeySequence, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QApplication, QStyle


def make_action(parent: QObject, text: str, slot: Optional[Callable[[], Any]] = None, *, shortcut: Any = None,
                tip: str = "", icon: QIcon | None = None) -> QAction:
    """An action with its shortcut, its tip as tooltip and status-bar text, and its icon; triggering it calls
    ``slot()`` (without the checked flag Qt passes)."""
    action = QAction(text, parent)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    if icon is not None:
        action.setIcon(icon)
    if slot is not None:
        action.triggered.connect(lambda _checked=False: slot())
    return action


def theme_icon(theme: str, fallback: QStyle.StandardPixmap) -> QIcon:
    """The icon theme's icon, else the style's."""
    return QIcon.fromTheme(theme, QApplication.style().standardIcon(fallback))


def run_icon(kind: str, text_color: QColor) -> QIcon:
    """Train / Pause / Resume / Stop.  The icon theme's when there is one; otherwise drawn here, because the
    style's stock media icons are black and vanish on a dark toolbar.  Green play and red stop are mid-luminance,
    readable on light and dark; pause is in the palette's text colour."""
    theme = {"train": "media-playback-start", "pause": "media-playback-pause", "resume": "media-playback-start",
             "stop": "media-playback-stop"}[kind]
    if QIcon.hasThemeIcon(theme):
        return QIcon.fromTheme(theme)
    pixmap = QPixmap(32, 32)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    green, red = QColor("#2e9d4f"), QColor("#d64541")
    if kind in ("train", "resume"):
        x0 = 9 if kind == "train" else 13
        if kind == "resume":              # a bar before the triangle: carry on from where it paused
            painter.setBrush(text_color)
            painter.drawRoundedRect(6, 7, 4, 18, 1, 1)
        painter.setBrush(green)
        painter.drawPolygon([QPointF(x0, 6), QPointF(x0 + 17, 16), QPointF(x0, 26)])
    elif kind == "pause":
        painter.setBrush(text_color)
        painter.drawRoundedRect(8, 7, 6, 18, 1.5, 1.5)
        painter.drawRoundedRect(18, 7, 6, 18, 1.5, 1.5)
    else:
        painter.setBrush(red)
        painter.drawRoundedRect(8, 8, 16, 16, 2, 2)
    painter.end()
    return QIcon(pixmap)


def fit_icon(color: QColor) -> QIcon:
    """Four corner brackets around a box, in the palette's text colour (the style's stock "maximise" icon is
    dark grey, invisible on a dark toolbar)."""
    if QIcon.hasThemeIcon("zoom-fit-best"):
        return QIcon.fromTheme("zoom-fit-best")
    pixmap = QPixmap(32, 32)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(color, 2.6))
    for x, y, dx, dy in ((4, 4, 1, 1), (28, 4, -1, 1), (4, 28, 1, -1), (28, 28, -1, -1)):
        painter.drawLine(x, y, x + 7 * dx, y)
        painter.drawLine(x, y, x, y + 7 * dy)
    painter.drawRoundedRect(11, 12, 10, 8, 1.5, 1.5)
    painter.end()
    return QIcon(pixmap)

