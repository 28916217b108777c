"""The attention map of the decoding view and of the hidden-units panel: a ``[target, source]`` matrix (of
:meth:`~workbench.core.search.DecodeSession.attention`, or of a recording's ``attention``) as one image with labelled
axes and a colour bar (QGraphicsScene, no pyqtgraph).  The hidden-units panel marks the output step (a row) or the
source position (a column) it shows, and a click on a cell picks that output step and source position.
"""

from __future__ import annotations

import html
from typing import Any, Optional

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPalette, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QApplication, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

from workbench.gui.decode_views import token_text

VIRIDIS = ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)), (0.75, (94, 201, 98)),
           (1.0, (253, 231, 37)))


def viridis_lut(n: int = 256) -> Any:
    """``uint8 [n, 3]``: a perceptually even map from dark violet (0) to yellow (1), readable on any theme."""
    import numpy as np  # here, not at the top: the window imports this module before its first paint
    pos = np.array([p for p, _ in VIRIDIS])
    cols = np.array([c for _, c in VIRIDIS], dtype=float)
    x = np.linspace(0, 1, n)
    return np.stack([np.interp(x, pos, cols[:, k]) for k in range(3)], 1).round().astype(np.uint8)


class _AttentionImage(QGraphicsPixmapItem):
    """The matrix as one pixmap, one square per (target, source) pair; hover tells the weight."""

    def __init__(self, view: "AttentionView", pixmap: QPixmap, cell: float):
        super().__init__(pixmap)
        self.view = view
        self.cell = cell
        self.setAcceptHoverEvents(True)
        self.setTransformationMode(Qt.TransformationMode.FastTransformation)
        self.setScale(cell)

    def hoverMoveEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        p = event.pos()
        self.setToolTip(self.view.cell_tooltip(int(p.y()), int(p.x())))


class AttentionView(QGraphicsView):
    """A ``[target, source]`` attention matrix: the source along the top, the target down the left, a colour bar
    (0 to 1) at the right.  Wheel zooms, dragging pans."""

    PLACEHOLDER = "The attention map of the selected hypothesis appears here."

    #: a click (not a drag) on a cell: its output step (row) and source position (column)
    cellClicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self._data: Optional[dict[str, Any]] = None
        self._weights: Any = None
        self._image: Optional[_AttentionImage] = None
        self._marked: tuple[int, int] = (-1, -1)         # the marked row and column (-1: none)
        self._mark_items: list[Any] = []
        self._press: Optional[QPoint] = None
        self.set_message(self.PLACEHOLDER)

    def matrix_shape(self) -> tuple[int, int]:
        return tuple(self._weights.shape) if self._weights is not None else (0, 0)

    def data(self) -> Optional[dict[str, Any]]:
        return self._data

    def set_message(self, text: str) -> None:
        self._data = None
        self._weights = None
        self._image = None
        self._mark_items = []
        scene = self.scene()
        scene.clear()
        item = scene.addSimpleText(text)
        color = QColor(self.palette().color(QPalette.ColorRole.Text))
        color.setAlphaF(0.62)
        item.setBrush(color)
        scene.setSceneRect(item.boundingRect().adjusted(-12, -12, 12, 12))
        self.resetTransform()

    def set_attention(self, data: dict[str, Any]) -> None:
        import numpy as np
        self._data = data
        self._weights = np.asarray(data["weights"], dtype=np.float32)
        self._render()

    def _render(self) -> None:
        """Lay the map out for the view's size: the cells shrink to fit, the text stays at a readable size (a
        scaled-down scene would shrink the labels with it)."""
        import numpy as np
        weights, data = self._weights, self._data
        scene = self.scene()
        scene.clear()
        self._mark_items = []
        self.resetTransform()
        T, S = weights.shape
        text_color = self.palette().color(QPalette.ColorRole.Text)
        font = QFont(QApplication.font())
        fm = QFontMetricsF(font)
        source = [token_text(str(s)) for s in data.get("source", [])]
        target = [token_text(str(s)) for s in data.get("target", [])]
        longest = max([fm.horizontalAdvance(s) for s in source] or [8.0])
        room = self.viewport().rect()
        label_w = max([fm.horizontalAdvance(s) for s in target] or [10.0]) + fm.height() + 24
        fit_w = (room.width() - label_w - 70) / max(S, 1)
        fit_h = (room.height() - 2.5 * fm.height() - 30) / max(T, 1)
        cell = float(max(10.0, min(34.0, fit_w, fit_h)))
        if cell < fm.height():
            # rows thinner than a line of text: a smaller (never tiny) font keeps the labels apart
            font.setPointSizeF(max(7.0, font.pointSizeF() * max(cell, 1.0) / fm.height()))
            fm = QFontMetricsF(font)
            longest = max([fm.horizontalAdvance(s) for s in source] or [8.0])
        # source labels on top: upright when they are single characters, turned when they are words
        turned = longest > cell * 0.9
        top = (longest + 10) if turned else (fm.height() + 8)
        axis_w = QFontMetricsF(font).height() + 6      # the turned "output" name at the far left
        left_w = axis_w + (max(fm.horizontalAdvance(s) for s in target) + 12 if target else 20)
        lut = viridis_lut()
        idx = np.clip((weights * 255).round(), 0, 255).astype(np.uint8)
        rgb = np.ascontiguousarray(lut[idx])
        image = QImage(rgb.data, S, T, 3 * S, QImage.Format.Format_RGB888).copy()
        pix = _AttentionImage(self, QPixmap.fromImage(image), cell)
        pix.setPos(left_w, top)
        scene.addItem(pix)
        self._image = pix
        for j, s in enumerate(source):
            item = scene.addSimpleText(s, font)
            item.setBrush(text_color)
            r = item.boundingRect()
            if turned:
                item.setRotation(-90)
                item.setPos(left_w + j * cell + (cell - r.height()) / 2, top - 6)
            else:
                item.setPos(left_w + j * cell + (cell - r.width()) / 2, top - r.height() - 4)
            item.setToolTip(f"source position {j + 1}: {s}")
        for i, s in enumerate(target):
            item = scene.addSimpleText(s, font)
            item.setBrush(text_color)
            r = item.boundingRect()
            item.setPos(left_w - r.width() - 6, top + i * cell + (cell - r.height()) / 2)
            item.setToolTip(f"output position {i + 1}: {s}")
        # axis names and the colour bar
        small = QFont(font)
        small.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
        name = scene.addSimpleText("source →", small)
        name.setBrush(text_color)
        name.setPos(left_w, top + T * cell + 6)
        down = scene.addSimpleText("← output", small)
        down.setBrush(text_color)
        down.setRotation(-90)
        down.setPos(0, top + min(T * cell, down.boundingRect().width() + 4))
        bar_x = left_w + S * cell + 16
        bar_h = max(T * cell, 80.0)
        ramp = np.ascontiguousarray(lut[::-1][:, None, :].repeat(8, 1))
        bar = QImage(ramp.data, 8, 256, 24, QImage.Format.Format_RGB888).copy()
        bar_item = scene.addPixmap(QPixmap.fromImage(bar))
        bar_item.setTransform(QTransform.fromScale(12 / 8, bar_h / 256))
        bar_item.setPos(bar_x, top)
        for value, y in ((1.0, top), (0.5, top + bar_h / 2), (0.0, top + bar_h)):
            tick = scene.addSimpleText(f"{value:g}", small)
            tick.setBrush(text_color)
            tick.setPos(bar_x + 16, y - QFontMetricsF(small).height() / 2)
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-8, -8, 8, 8))
        self._draw_marks()

    # ---- the marked output step and source position (the hidden-units panel) ---------------------------------
    def set_marked(self, row: int = -1, column: int = -1) -> None:
        """Outline output step ``row`` (a row of the map) and source position ``column`` (-1: neither)."""
        if (row, column) == self._marked:
            return
        self._marked = (int(row), int(column))
        self._draw_marks()
        if self._image is not None and 0 <= row:
            self.ensureVisible(self._mark_items[0] if self._mark_items else self._image, 8, 8)

    def marked(self) -> tuple[int, int]:
        return self._marked

    def _draw_marks(self) -> None:
        scene = self.scene()
        for item in self._mark_items:
            scene.removeItem(item)
        self._mark_items = []
        if self._image is None or self._weights is None:
            return
        T, S = self._weights.shape
        cell = self._image.cell
        origin = self._image.pos()
        color = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        outline = QPen(color, 2.5)
        outline.setCosmetic(True)
        row, column = self._marked
        if 0 <= row < T:
            self._mark_items.append(scene.addRect(origin.x() - 1, origin.y() + row * cell - 1, S * cell + 2,
                                                  cell + 2, outline))
        if 0 <= column < S:
            dashed = QPen(outline)
            dashed.setStyle(Qt.PenStyle.DashLine)
            self._mark_items.append(scene.addRect(origin.x() + column * cell - 1, origin.y() - 1, cell + 2,
                                                  T * cell + 2, dashed))
        for item in self._mark_items:
            item.setZValue(5)

    def cell_at(self, pos: QPoint) -> tuple[int, int]:
        """The ``(row, column)`` under a point of the viewport, or ``(-1, -1)``."""
        if self._image is None or self._weights is None:
            return -1, -1
        p = self._image.mapFromScene(self.mapToScene(pos))
        row, column = int(p.y()), int(p.x())
        T, S = self._weights.shape
        if p.x() < 0 or p.y() < 0 or not (0 <= row < T and 0 <= column < S):
            return -1, -1
        return row, column

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().mouseReleaseEvent(event)
        press, self._press = self._press, None
        pos = event.position().toPoint()
        if press is None or event.button() != Qt.MouseButton.LeftButton or \
                (pos - press).manhattanLength() > 4:        # a drag pans the map; only a click picks a cell
            return
        row, column = self.cell_at(pos)
        if row >= 0:
            self.cellClicked.emit(row, column)

    def cell_tooltip(self, row: int, col: int) -> str:
        if self._weights is None or not (0 <= row < self._weights.shape[0] and 0 <= col < self._weights.shape[1]):
            return ""
        data = self._data
        src = token_text(str(data["source"][col])) if col < len(data["source"]) else str(col)
        tgt = token_text(str(data["target"][row])) if row < len(data["target"]) else str(row)
        return (f"output {row + 1} <b>{html.escape(tgt)}</b> looks at source {col + 1} "
                f"<b>{html.escape(src)}</b>: {self._weights[row, col]:.3f}")

    def wheelEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        factor = 1.0015 ** event.angleDelta().y()
        z = self.transform().m11()
        factor = min(max(factor, 0.2 / z), 6.0 / z)
        self.scale(factor, factor)
        event.accept()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._weights is not None:
            self._render()
