"""The canvas items: one QGraphicsItem per node, per port and per link (plus the transient drag link and bubble).

Items only draw and forward mouse gestures to the scene; they never change the document themselves.  A node paints
its own texts (title, id, summary, port labels) instead of owning text child items: fewer items, one cached pixmap
per node (``DeviceCoordinateCache``), and nothing to do while the canvas is idle.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPainterPathStroker, QPen,
                           QPolygonF)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyle, QStyleOptionGraphicsItem, QWidget

from workbench.core.graph import Link
from workbench.gui import style
from workbench.gui.style import CanvasTheme


class PortItem(QGraphicsItem):
    """A typed input or output on a node's edge; pressing it starts a link drag."""

    def __init__(self, node: "NodeItem", name: str, port_type: str, is_output: bool, doc: str = "",
                 required: bool = True):
        super().__init__(node)
        self.node = node
        self.name = name
        self.port_type = port_type
        self.is_output = is_output
        self.doc = doc
        self.required = required
        self.connected = False
        self.hovered = False
        self.color = style.port_color(port_type)
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setZValue(1)

    # geometry: generous hit area, small visible mark
    def boundingRect(self) -> QRectF:
        r = style.PORT_HIT_RADIUS
        return QRectF(-r, -r, 2 * r, 2 * r)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(self.boundingRect())
        return path

    def anchor(self) -> QPointF:
        """Where links attach, in scene coordinates."""
        return self.scenePos()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        theme = self.node.theme
        r = style.PORT_RADIUS + (2.0 if self.hovered else 0.0)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        # a filled mark when linked, a ring when free: what is still open shows at a glance
        painter.setPen(QPen(self.color if not self.connected else theme.body.darker(150) if not theme.dark
                            else theme.body.lighter(180), 1.6 if self.connected else 2.4))
        painter.setBrush(QBrush(self.color) if self.connected else QBrush(theme.body))
        if style.is_sequence_type(self.port_type):
            painter.drawEllipse(QPointF(0, 0), r, r)
        else:
            r += 1.0
            painter.drawPolygon(QPolygonF([QPointF(0, -r), QPointF(r, 0), QPointF(0, r), QPointF(-r, 0)]))

    def set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.update()

    # ---- gestures: forwarded to the scene, which owns the drag state ----
    def hoverEnterEvent(self, event) -> None:
        self.hovered = True
        scene = self.scene()
        if scene is not None:
            self.setToolTip(scene.port_tooltip(self))  # sizes change with the graph: computed when needed
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self.hovered = False
        self.update()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.scene().begin_link_drag(self, event.scenePos())
            event.accept()
        else:
            event.ignore()

    def mouseMoveEvent(self, event) -> None:
        self.scene().update_link_drag(event.scenePos())

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.scene().end_link_drag(event.scenePos())


class NodeItem(QGraphicsItem):
    """A block on the canvas: header with title and id, a summary line, and one row per port pair."""

    def __init__(self, node_id: str, theme: CanvasTheme):
        super().__init__()
        self.node_id = node_id
        self.theme = theme
        self.title = ""
        self.summary = ""
        self.category = "other"
        self.problems: list[str] = []
        self.description = ""
        self.inputs: list[PortItem] = []
        self.outputs: list[PortItem] = []
        self.links: set[LinkItem] = set()
        self.width = style.NODE_MIN_WIDTH
        self.height = style.HEADER_HEIGHT + style.SUMMARY_HEIGHT
        self.title_font = style.ui_font(1.0, bold=True)
        self.small_font = style.ui_font(0.95)
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptHoverEvents(True)

    # ---- content ----
    def set_content(self, title: str, summary: str, category: str,
                    inputs: list[tuple[str, str, str, bool]], outputs: list[tuple[str, str, str, bool]]) -> None:
        """Ports are ``(name, type, doc, required)``; existing port items are kept when nothing changed."""
        self.prepareGeometryChange()
        self.title, self.summary, self.category = title, summary, category
        old_in = [(p.name, p.port_type, p.doc, p.required) for p in self.inputs]
        old_out = [(p.name, p.port_type, p.doc, p.required) for p in self.outputs]
        if old_in != inputs or old_out != outputs:
            for p in self.inputs + self.outputs:
                p.setParentItem(None)
                if p.scene() is not None:
                    p.scene().removeItem(p)
            self.inputs = [PortItem(self, *spec[:2], False, spec[2], spec[3]) for spec in inputs]
            self.outputs = [PortItem(self, *spec[:2], True, spec[2], spec[3]) for spec in outputs]
        self._layout()
        self.update()

    def _layout(self) -> None:
        self.width, self.height = node_size(self.title_font, self.small_font, self.node_id, self.title,
                                            self.summary, [p.name for p in self.inputs],
                                            [p.name for p in self.outputs])
        for i, p in enumerate(self.inputs):
            p.setPos(0.0, self.port_y(i))
        for i, p in enumerate(self.outputs):
            p.setPos(self.width, self.port_y(i))

    @staticmethod
    def port_y(i: int) -> float:
        return style.HEADER_HEIGHT + style.SUMMARY_HEIGHT + (i + 0.5) * style.PORT_ROW_HEIGHT

    def set_summary(self, summary: str) -> None:
        if summary != self.summary:
            self.prepareGeometryChange()
            self.summary = summary
            self._layout()
            self.update()
            for link in self.links:
                link.update_path()

    def set_problems(self, problems: list[str]) -> None:
        if problems != self.problems:
            self.problems = problems
            self._update_tooltip()
            self.update()

    def set_description(self, description: str) -> None:
        self.description = description
        self._update_tooltip()

    def _update_tooltip(self) -> None:
        parts = [f"<b>{_escape(self.title)}</b> &nbsp;<i>{_escape(self.node_id)}</i>"]
        if self.description:
            parts.append(style.help_html(self.description))
        if self.problems:
            parts.append("<b>Problems</b><br>" + "<br>".join(_escape(p) for p in self.problems))
        self.setToolTip("<p>" + "</p><p>".join(parts) + "</p>")

    def set_theme(self, theme: CanvasTheme) -> None:
        self.theme = theme
        self.title_font = style.ui_font(1.0, bold=True)
        self.small_font = style.ui_font(0.95)
        self.prepareGeometryChange()
        self._layout()
        self.update()
        for p in self.inputs + self.outputs:
            p.update()

    def port(self, name: str, output: bool) -> PortItem | None:
        for p in self.outputs if output else self.inputs:
            if p.name == name:
                return p
        return None

    # ---- painting ----
    def boundingRect(self) -> QRectF:
        m = 3.0  # selection / problem outline and the problem badge stick out a little
        return QRectF(-m, -m - 6, self.width + 2 * m + 6, self.height + 2 * m + 6)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, self.width, self.height), style.NODE_RADIUS, style.NODE_RADIUS)
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        t = self.theme
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        body = QRectF(0, 0, self.width, self.height)
        rad = style.NODE_RADIUS
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        # body
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(t.body)
        painter.drawRoundedRect(body, rad, rad)
        # header, clipped to the rounded body
        clip = QPainterPath()
        clip.addRoundedRect(body, rad, rad)
        painter.save()
        painter.setClipPath(clip)
        painter.fillRect(QRectF(0, 0, self.width, style.HEADER_HEIGHT), style.header_color(self.category, t))
        painter.fillRect(QRectF(0, 0, 4, self.height), style.category_color(self.category))
        painter.restore()
        # outline: problem red wins over the plain border; selection is drawn around both
        if self.problems:
            painter.setPen(QPen(t.problem, 2.0))
        else:
            painter.setPen(QPen(t.border, 1.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(body, rad, rad)
        if selected:
            painter.setPen(QPen(t.selection, 2.5))
            painter.drawRoundedRect(body.adjusted(-2.5, -2.5, 2.5, 2.5), rad + 2, rad + 2)

        pad = style.NODE_PADDING
        fm = QFontMetricsF(self.small_font)
        id_w = fm.horizontalAdvance(self.node_id)
        painter.setFont(self.small_font)
        # the id sits on the coloured header: the text colour, softened, stays readable on every category hue
        id_color = QColor(t.text)
        id_color.setAlphaF(0.7)
        painter.setPen(id_color)
        id_rect = QRectF(self.width - pad - id_w, 0, id_w, style.HEADER_HEIGHT)
        if self.problems:
            id_rect.translate(-14, 0)
        painter.drawText(id_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, self.node_id)
        painter.setFont(self.title_font)
        painter.setPen(t.text)
        fm_title = QFontMetricsF(self.title_font)
        title_w = id_rect.left() - pad - 6 - 2
        painter.drawText(QRectF(pad + 2, 0, title_w, style.HEADER_HEIGHT),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         fm_title.elidedText(self.title, Qt.TextElideMode.ElideRight, title_w))
        painter.setFont(self.small_font)
        painter.setPen(t.text)
        summary_w = self.width - 2 * pad - 2
        painter.drawText(QRectF(pad + 2, style.HEADER_HEIGHT, summary_w, style.SUMMARY_HEIGHT),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         fm.elidedText(self.summary, Qt.TextElideMode.ElideRight, summary_w))
        # port labels
        painter.setPen(t.muted_text)
        half = self.width / 2 - pad - 4
        for i, p in enumerate(self.inputs):
            y = self.port_y(i) - style.PORT_ROW_HEIGHT / 2
            painter.drawText(QRectF(pad + 6, y, half, style.PORT_ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             fm.elidedText(p.name, Qt.TextElideMode.ElideRight, half))
        for i, p in enumerate(self.outputs):
            y = self.port_y(i) - style.PORT_ROW_HEIGHT / 2
            painter.drawText(QRectF(self.width / 2 + 4, y, half, style.PORT_ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                             fm.elidedText(p.name, Qt.TextElideMode.ElideRight, half))
        if self.problems:
            # a badge in the header's corner: visible even when the red outline is hidden behind a selection
            c = QPointF(self.width - 9, style.HEADER_HEIGHT / 2)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(t.problem)
            painter.drawEllipse(c, 7, 7)
            painter.setPen(QColor("#ffffff"))
            bold = style.ui_font(0.85, bold=True)
            painter.setFont(bold)
            painter.drawText(QRectF(c.x() - 7, c.y() - 7, 14, 14), Qt.AlignmentFlag.AlignCenter, "!")

    def itemChange(self, change, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for link in self.links:
                link.update_path()
        return super().itemChange(change, value)


def node_size(title_font: QFont, small_font: QFont, node_id: str, title: str, summary: str,
              inputs: list[str], outputs: list[str]) -> tuple[float, float]:
    """(width, height) of a node with these texts and port names; a plain function, so placing a new node
    needs no throw-away item."""
    fm_title = QFontMetricsF(title_font)
    fm = QFontMetricsF(small_font)
    pad = style.NODE_PADDING
    # title, id and room for the problem badge (reserved, so a problem does not reflow the node)
    want = fm_title.horizontalAdvance(title) + fm.horizontalAdvance(node_id) + 3 * pad + 8 + 16
    want = max(want, fm.horizontalAdvance(summary) + 2 * pad)
    for i in range(max(len(inputs), len(outputs))):
        left = fm.horizontalAdvance(inputs[i]) if i < len(inputs) else 0.0
        right = fm.horizontalAdvance(outputs[i]) if i < len(outputs) else 0.0
        want = max(want, left + right + 4 * pad + 12)
    width = float(min(style.NODE_MAX_WIDTH, max(style.NODE_MIN_WIDTH, round(want / 2) * 2)))
    rows = max(len(inputs), len(outputs), 1)
    return width, style.HEADER_HEIGHT + style.SUMMARY_HEIGHT + rows * style.PORT_ROW_HEIGHT + pad / 2


class LinkItem(QGraphicsPathItem):
    """A link from an output port to an input port, drawn as a horizontal S-curve in the source type's colour."""

    def __init__(self, link: Link, src: NodeItem, dst: NodeItem, theme: CanvasTheme):
        super().__init__()
        self.link = link
        self.src = src
        self.dst = dst
        self.theme = theme
        self.problem = False
        self.hovered = False
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setZValue(-1)
        src.links.add(self)
        dst.links.add(self)
        self.update_path()

    def detach(self) -> None:
        self.src.links.discard(self)
        self.dst.links.discard(self)

    def _ends(self) -> tuple[QPointF, QPointF, QColor]:
        sp = self.src.port(self.link.src_port, True)
        dp = self.dst.port(self.link.dst_port, False)
        # a port that no longer exists (the task changed): attach to the node's edge; the link is flagged
        a = sp.anchor() if sp else self.src.mapToScene(QPointF(self.src.width, style.HEADER_HEIGHT / 2))
        b = dp.anchor() if dp else self.dst.mapToScene(QPointF(0, style.HEADER_HEIGHT / 2))
        color = sp.color if sp else self.theme.problem
        return a, b, color

    def update_path(self) -> None:
        a, b, color = self._ends()
        self.color = color
        self.setPath(link_path(a, b))

    def set_problem(self, problem: bool) -> None:
        if problem != self.problem:
            self.problem = problem
            self.update()

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(12.0)  # easy to click without covering the canvas
        return stroker.createStroke(self.path())

    def boundingRect(self) -> QRectF:
        return self.path().boundingRect().adjusted(-8, -8, 8, 8)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width = style.LINK_WIDTH + (1.0 if self.hovered else 0.0)
        if self.isSelected():
            painter.setPen(QPen(self.theme.selection, width + 4.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
            painter.drawPath(self.path())
        pen = QPen(self.theme.problem if self.problem else self.color, width,
                   Qt.PenStyle.DashLine if self.problem else Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path())

    def hoverEnterEvent(self, event) -> None:
        self.hovered = True
        self.setToolTip(f"{self.link.src}.{self.link.src_port} → {self.link.dst}.{self.link.dst_port}"
                        "<br><i>click and press Delete to remove, or drag the input end away</i>")
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self.hovered = False
        self.update()


def link_path(a: QPointF, b: QPointF) -> QPainterPath:
    """A cubic from ``a`` (an output, leaving rightwards) to ``b`` (an input, entering from the left)."""
    dx = b.x() - a.x()
    # backwards links get wide handles, so they loop around instead of cutting through the nodes
    handle = max(40.0, abs(dx) * 0.5) if dx >= 0 else max(80.0, min(200.0, -dx * 0.5 + 60.0))
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x() + handle, a.y()), QPointF(b.x() - handle, b.y()), b)
    return path


class DragLinkItem(QGraphicsPathItem):
    """The rubber-band link that follows the cursor while the user drags from a port."""

    def __init__(self, port: PortItem):
        super().__init__()
        self.port = port
        pen = QPen(port.color, style.LINK_WIDTH, Qt.PenStyle.DashLine, Qt.PenCapStyle.RoundCap)
        self.setPen(pen)
        self.setZValue(10)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_end(self, pos: QPointF) -> None:
        start = self.port.anchor()
        if self.port.is_output:
            self.setPath(link_path(start, pos))
        else:
            self.setPath(link_path(pos, start))


class MessageBubble(QGraphicsItem):
    """A short message where the user dropped a link (why it was refused).  Keeps its size at any zoom."""

    MAX_WIDTH = 320.0

    def __init__(self, text: str, theme: CanvasTheme):
        super().__init__()
        self.text = text
        self.theme = theme
        self.font = style.ui_font(1.0)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setZValue(100)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        fm = QFontMetricsF(self.font)
        flags = int(Qt.TextFlag.TextWordWrap)
        self.text_rect = fm.boundingRect(QRectF(0, 0, self.MAX_WIDTH, 10_000), flags, text)
        self.rect = QRectF(0, 0, self.text_rect.width() + 20, self.text_rect.height() + 14)

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-1, -1, 1, 1)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(self.theme.bubble_border, 1.5))
        painter.setBrush(self.theme.bubble_bg)
        painter.drawRoundedRect(self.rect, 6, 6)
        painter.setFont(self.font)
        painter.setPen(self.theme.bubble_text)
        painter.drawText(self.rect.adjusted(10, 7, -10, -7), int(Qt.TextFlag.TextWordWrap), self.text)


def _escape(text: str) -> str:
    from html import escape
    return escape(text)
