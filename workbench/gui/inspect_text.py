"""The text view of Karpathy, Johnson & Fei-Fei (2016): each character on a background coloured by one unit.

A monospaced grid painted by hand (``QAbstractScrollArea``), so only the rows on screen cost anything: 20,000 or
200,000 characters scroll as fast as 200.  Lines wrap at the width of the view; line breaks are kept, and the
newline character itself is a coloured cell at the end of its line (the model reads it like any other character).
A tab is one cell (drawn as a faint arrow) so that a cell is always one step of the model.

Keyboard: Up/Down or K/J step to the previous/next unit; PageUp/PageDown/Home/End scroll.  Dragging selects a
span of text (hypothesis selection).  Hover shows the character, its position and the value.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QFontMetrics, QKeyEvent, QMouseEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import QAbstractScrollArea, QToolTip, QWidget

from workbench.gui import inspect_colors
from workbench.gui.style import is_dark

_SHOWN = {"\n": "↵", "\t": "→", "\r": "␍"}


class ActivationTextView(QAbstractScrollArea):
    """``set_text(text, offsets, labels)`` once per recording, then ``set_values(values, levels)`` per unit.

    Positions in signals are *steps* of the recording (the index of a token); for character-level tasks a step is
    a character.
    """

    unitStepRequested = Signal(int)      # -1: previous unit, +1: next unit
    spanSelected = Signal(int, int)      # [start, end) in steps; (0, 0) when the selection is cleared
    positionHovered = Signal(int)        # the step under the mouse, -1 when none
    positionClicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("activationText")
        self.viewport().setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.verticalScrollBar().valueChanged.connect(self.viewport().update)
        self._text = ""
        self._char_step = np.zeros(0, dtype=np.int64)       # the step each character belongs to (-1: none)
        self._step_start = np.zeros(0, dtype=np.int64)      # first character of each step
        self._step_end = np.zeros(0, dtype=np.int64)
        self._values: Optional[np.ndarray] = None           # per step
        self._levels = (-1.0, 1.0)
        self._color_index = np.zeros(0, dtype=np.int16)     # per character, -1: not coloured
        self._rows: list[tuple[int, int]] = []              # (first char, end char) of each visual row
        self._row_starts = np.zeros(1, dtype=np.int64)
        self._cols = 80
        self._selection: tuple[int, int] | None = None      # characters [a, b)
        self._drag_anchor: int | None = None
        self._marks: list[tuple[int, int]] = []             # matches, in characters
        self._current = -1                                  # a marked step (clicked in the heatmap)
        self._caption = ""
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.TypeWriter)
        base = self.font().pointSizeF()
        if base > 0:
            font.setPointSizeF(max(9.0, base))
        self.setFont(font)
        self._refresh_palette()
        self._metrics()
        self._layout()

    # ---- data ------------------------------------------------------------------------------------------
    def set_text(self, text: str, offsets: np.ndarray | None = None, labels: list[str] | None = None) -> None:
        """The recorded text; ``offsets``/``labels`` map steps to characters (None: one character per step)."""
        self._text = text
        n = len(text)
        if offsets is None or labels is None or len(labels) == n:
            self._step_start = np.arange(n, dtype=np.int64)
            self._step_end = self._step_start + 1
            self._char_step = np.arange(n, dtype=np.int64)
        else:
            starts = np.asarray(offsets, dtype=np.int64)
            ends = np.minimum(starts + np.array([max(1, len(s)) for s in labels], dtype=np.int64), n)
            self._step_start, self._step_end = starts, ends
            self._char_step = np.full(n, -1, dtype=np.int64)
            for i, (a, b) in enumerate(zip(starts, ends)):
                self._char_step[a:b] = i
        self._values = None
        self._color_index = np.full(n, -1, dtype=np.int16)
        self._selection = None
        self._marks = []
        self._current = -1
        self._layout()
        self.verticalScrollBar().setValue(0)
        self.viewport().update()

    def set_values(self, values: np.ndarray | None, levels: tuple[float, float]) -> None:
        """Colour the characters by ``values`` (one per step) on the fixed ``levels``."""
        self._levels = (float(levels[0]), float(levels[1]))
        if values is None:
            self._values = None
            self._color_index = np.full(len(self._text), -1, dtype=np.int16)
        else:
            self._values = np.asarray(values, dtype=np.float64)
            idx = inspect_colors.indices(self._values, self._levels)
            self._color_index = np.where(self._char_step >= 0, idx[np.clip(self._char_step, 0, None)], -1) \
                .astype(np.int16) if len(self._text) else np.zeros(0, dtype=np.int16)
        self.viewport().update()

    def set_caption(self, caption: str) -> None:
        self._caption = caption

    def text(self) -> str:
        return self._text

    def char_colors(self) -> list[QColor | None]:
        """The background colour of every character (tests and export read what the view paints)."""
        return [None if i < 0 else self._colors[i] for i in self._color_index.tolist()]

    def char_color(self, char: int) -> QColor | None:
        i = int(self._color_index[char])
        return None if i < 0 else self._colors[i]

    def set_marks(self, spans_in_steps: list[tuple[int, int]]) -> None:
        """Underline these spans (the places where the selected units switch on)."""
        self._marks = [self._step_span_to_chars(a, b) for a, b in spans_in_steps]
        self.viewport().update()

    def set_selection_steps(self, start: int, end: int) -> None:
        self._selection = self._step_span_to_chars(start, end) if end > start else None
        self.viewport().update()

    def selection_steps(self) -> tuple[int, int] | None:
        if not self._selection:
            return None
        return self._chars_to_steps(*self._selection)

    def set_current(self, step: int, scroll: bool = True) -> None:
        self._current = step
        if scroll and 0 <= step < len(self._step_start):
            self.scroll_to_char(int(self._step_start[step]))
        self.viewport().update()

    def scroll_to_step(self, step: int) -> None:
        if 0 <= step < len(self._step_start):
            self.scroll_to_char(int(self._step_start[step]))

    def scroll_to_char(self, char: int) -> None:
        row = self._row_of_char(char)
        bar = self.verticalScrollBar()
        page = max(1, bar.pageStep())
        if not (bar.value() <= row < bar.value() + page):
            bar.setValue(max(0, row - page // 3))

    def visible_chars(self) -> tuple[int, int]:
        """First and end character on screen."""
        if not self._rows:
            return 0, 0
        first = self.verticalScrollBar().value()
        last = min(len(self._rows) - 1, first + self._rows_per_page())
        return self._rows[first][0], self._rows[last][1]

    # ---- geometry ------------------------------------------------------------------------------------------
    def _metrics(self) -> None:
        fm = QFontMetrics(self.font())
        self._cw = max(1, fm.horizontalAdvance("M"))
        self._lh = fm.height() + 3
        self._ascent = fm.ascent() + 1

    def _layout(self) -> None:
        width = self.viewport().width() - 2 * self._margin()
        self._cols = max(16, width // self._cw)
        rows: list[tuple[int, int]] = []
        text, n, start = self._text, len(self._text), 0
        while start < n:
            nl = text.find("\n", start)
            end = n if nl < 0 else nl + 1            # the newline is a cell of its own line
            a = start
            while end - a > self._cols:              # wrap a long line
                rows.append((a, a + self._cols))
                a += self._cols
            rows.append((a, end))
            start = end
        self._rows = rows or [(0, 0)]
        self._row_starts = np.array([r[0] for r in self._rows], dtype=np.int64)
        bar = self.verticalScrollBar()
        per_page = self._rows_per_page()
        bar.setRange(0, max(0, len(self._rows) - per_page))
        bar.setPageStep(per_page)
        bar.setSingleStep(1)

    def _margin(self) -> int:
        return 6

    def _rows_per_page(self) -> int:
        return max(1, (self.viewport().height() - self._margin()) // self._lh)

    def _row_of_char(self, char: int) -> int:
        return max(0, int(np.searchsorted(self._row_starts, char, side="right")) - 1)

    def _char_at(self, pos: QPoint, clamp: bool = False) -> int:
        row = self.verticalScrollBar().value() + (pos.y() - self._margin()) // self._lh
        if not (0 <= row < len(self._rows)):
            if not clamp:
                return -1
            row = min(max(row, 0), len(self._rows) - 1)
        a, b = self._rows[row]
        col = (pos.x() - self._margin()) // self._cw
        if clamp:
            col = min(max(col, 0), max(0, b - a))
            return min(a + col, len(self._text))
        if not (0 <= col < b - a):
            return -1
        return a + col

    def _step_span_to_chars(self, start: int, end: int) -> tuple[int, int]:
        n = len(self._step_start)
        start, end = max(0, start), min(n, end)
        if end <= start:
            return (0, 0)
        return int(self._step_start[start]), int(self._step_end[end - 1])

    def _chars_to_steps(self, a: int, b: int) -> tuple[int, int] | None:
        steps = self._char_step[a:b]
        steps = steps[steps >= 0]
        if not steps.size:
            return None
        return int(steps.min()), int(steps.max()) + 1

    # ---- painting ------------------------------------------------------------------------------------------
    def _refresh_palette(self) -> None:
        table = inspect_colors.lut(palette=self.palette())
        self._colors = inspect_colors.qcolors(table)
        dark_text = inspect_colors.text_colors(table)
        self._text_on = [QColor("#111111") if d else QColor("#ffffff") for d in dark_text]
        pal = self.palette()
        self._plain_text = QColor(pal.color(QPalette.ColorRole.Text))
        self._base = QColor(pal.color(QPalette.ColorRole.Base))
        self._muted = QColor(self._plain_text)
        self._muted.setAlphaF(0.45)
        self._highlight = QColor(pal.color(QPalette.ColorRole.Highlight))
        self._mark = QColor("#e8a400") if is_dark(pal) else QColor("#c77700")

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if not hasattr(self, "_caption"):
            return          # during __init__, before the state exists
        if event.type() in (event.Type.PaletteChange, event.Type.StyleChange):
            self._refresh_palette()
            self.viewport().update()
        elif event.type() == event.Type.FontChange:
            self._metrics()
            self._layout()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        first_char = self._rows[self.verticalScrollBar().value()][0] if self._rows else 0
        self._layout()
        self.verticalScrollBar().setValue(self._row_of_char(first_char))

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self.viewport())
        painter.fillRect(self.viewport().rect(), self._base)
        painter.setFont(self.font())
        if not self._text:
            painter.setPen(self._muted)
            painter.drawText(self.viewport().rect().adjusted(12, 12, -12, -12),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                             self._caption or "Record a text to see it here, coloured by a unit's activation.")
            return
        m, cw, lh = self._margin(), self._cw, self._lh
        first = self.verticalScrollBar().value()
        last = min(len(self._rows), first + self._rows_per_page() + 1)
        text, cidx = self._text, self._color_index
        sel = self._selection
        for r in range(first, last):
            a, b = self._rows[r]
            y = m + (r - first) * lh
            # backgrounds: one rectangle per run of equal colour
            x0 = a
            while x0 < b:
                ci = int(cidx[x0])
                x1 = x0 + 1
                while x1 < b and int(cidx[x1]) == ci:
                    x1 += 1
                if ci >= 0:
                    painter.fillRect(QRect(m + (x0 - a) * cw, y, (x1 - x0) * cw, lh), self._colors[ci])
                x0 = x1
            # characters: black or white by the background, muted glyphs for newline and tab
            for c in range(a, b):
                ch = text[c]
                ci = int(cidx[c])
                shown = _SHOWN.get(ch)
                if shown is None and ch == " ":
                    continue
                color = self._text_on[ci] if ci >= 0 else self._plain_text
                if shown is not None:
                    color = QColor(color)
                    color.setAlphaF(0.45)
                painter.setPen(color)
                painter.drawText(m + (c - a) * cw, y + self._ascent, shown or ch)
            # matches: a bar under the characters; the selection: an outline
            for (ma, mb) in self._marks:
                lo, hi = max(a, ma), min(b, mb)
                if lo < hi:
                    painter.fillRect(QRect(m + (lo - a) * cw, y + lh - 3, (hi - lo) * cw, 3), self._mark)
            if sel:
                lo, hi = max(a, sel[0]), min(b, sel[1])
                if lo < hi:
                    painter.setPen(QPen(self._highlight, 2))
                    painter.setBrush(Qt.BrushStyle.NoBrush)
                    painter.drawRect(QRect(m + (lo - a) * cw, y, (hi - lo) * cw, lh - 1))
            if 0 <= self._current < len(self._step_start):
                ca, cb = int(self._step_start[self._current]), int(self._step_end[self._current])
                lo, hi = max(a, ca), min(b, cb)
                if lo < hi:
                    painter.setPen(QPen(self._plain_text, 1, Qt.PenStyle.DashLine))
                    painter.setBrush(Qt.BrushStyle.NoBrush)
                    painter.drawRect(QRect(m + (lo - a) * cw, y, (hi - lo) * cw - 1, lh - 1))
        painter.end()

    # ---- input ------------------------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if key in (Qt.Key.Key_Down, Qt.Key.Key_J):
            self.unitStepRequested.emit(1)
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_K):
            self.unitStepRequested.emit(-1)
        elif key == Qt.Key.Key_Escape and self._selection:
            self._selection = None
            self.viewport().update()
            self.spanSelected.emit(0, 0)
        else:
            super().keyPressEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton and self._text:
            self.setFocus()
            c = self._char_at(event.position().toPoint(), clamp=True)
            self._drag_anchor = c
            self._selection = None
            self.viewport().update()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        pos = event.position().toPoint()
        if self._drag_anchor is not None and event.buttons() & Qt.MouseButton.LeftButton:
            c = self._char_at(pos, clamp=True)
            a, b = sorted((self._drag_anchor, c))
            self._selection = (a, b + 1) if b + 1 > a else None
            self.viewport().update()
        c = self._char_at(pos)
        step = int(self._char_step[c]) if 0 <= c < len(self._text) else -1
        self.positionHovered.emit(step)
        if step >= 0:
            QToolTip.showText(event.globalPosition().toPoint(), self.describe(step), self.viewport())
        else:
            QToolTip.hideText()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton and self._drag_anchor is not None:
            anchor, self._drag_anchor = self._drag_anchor, None
            c = self._char_at(event.position().toPoint(), clamp=True)
            if c == anchor and self._selection is None:
                step = int(self._char_step[c]) if 0 <= c < len(self._text) else -1
                if step >= 0:
                    self.positionClicked.emit(step)
                self.spanSelected.emit(0, 0)
            else:
                steps = self.selection_steps()
                self.spanSelected.emit(*(steps or (0, 0)))
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.positionHovered.emit(-1)
        super().leaveEvent(event)

    def describe(self, step: int) -> str:
        a = int(self._step_start[step])
        b = int(self._step_end[step])
        token = self._text[a:b]
        shown = "".join(_SHOWN.get(ch, ch) for ch in token)
        value = f"  value {self._values[step]:+.3f}" if self._values is not None and step < len(self._values) else ""
        return f"position {step:,}  {shown!r}{value}"
