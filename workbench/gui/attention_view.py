"""The attention map of the decoding view: the ``[target, source]`` matrix of
:meth:`~workbench.core.search.DecodeSession.attention` as one image with labelled axes and a colour bar
(QGraphicsScene, no pyqtgraph).
"""

from __future__ import annotations

import html
from typing import Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPalette, QPixmap, QTransform
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

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self._data: Optional[dict[str, Any]] = None
        self._weights: Any = None
        self.set_message(self.PLACEHOLDER)

    def matrix_shape(self) -> tuple[int, int]:
        return tuple(self._weights.shape) if self._weights is not None else (0, 0)

    def data(self) -> Optional[dict[str, Any]]:
        return self._data

    def set_message(self, text: str) -> None:
        self._data = None
        self._weights = None
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
