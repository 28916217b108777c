"""The search tree of the decoding view (QGraphicsScene, no pyqtgraph); the attention map is
:mod:`workbench.gui.attention_view`.

:class:`SearchTreeView` draws a search document computed in :mod:`workbench.core.search` with the positions of
:func:`~workbench.core.search.layout_tree`.

Drawing stays cheap for big trees: a node is one item that paints its own box and text (the text only when it
is large enough on screen to read), the edges of a kind are one path item, and relayout after folding rebuilds
the scene from the layout (about a thousand items for 10 beams x 50 steps).
"""

from __future__ import annotations

import html
import math
from typing import Any, Optional

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPalette, QPen,
                           QTransform)
from PySide6.QtWidgets import (QApplication, QGraphicsItem, QGraphicsPathItem, QGraphicsScene, QGraphicsSimpleTextItem,
                               QGraphicsView, QMenu, QStyleOptionGraphicsItem, QWidget)

from workbench.core.search import TreeLayout, hypothesis_at, layout_tree

NODE_H = 38.0
ROW_GAP = 10.0
COL_GAP = 30.0
MIN_NODE_W = 58.0
MAX_NODE_W = 150.0
HANDLE_R = 7.0
ZOOM_MIN, ZOOM_MAX = 0.05, 4.0


def token_text(label: str) -> str:
    """A token as it should read in a box: visible stand-ins for blanks and line breaks."""
    if label == "":
        return "∅"
    return label.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍")


def line_text(text: str) -> str:
    """A generated text on one line: line breaks and tabs made visible; blanks too when there is nothing else
    (between words a space is just a space)."""
    if not text.strip():
        return token_text(text)
    return text.replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍")


def is_dark(widget: QWidget | None = None) -> bool:
    pal = widget.palette() if widget is not None else QApplication.palette()
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


class TreeTheme:
    """Colours of the tree for the current palette: one readable set for light and one for dark themes."""

    def __init__(self, palette: QPalette):
        dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
        self.dark = dark
        self.background = palette.color(QPalette.ColorRole.Base)
        self.text = palette.color(QPalette.ColorRole.Text)
        self.muted = QColor(self.text)
        self.muted.setAlphaF(0.62)
        self.faint = QColor(self.text)
        self.faint.setAlphaF(0.38)
        self.box = QColor("#2b2d31") if dark else QColor("#ffffff")
        self.border = QColor("#6b6f76") if dark else QColor("#9aa0a6")
        self.best = QColor("#3d8bfd") if dark else QColor("#1a66d1")
        self.best_text = QColor("#ffffff")
        self.nbest = QColor("#3fb27f") if dark else QColor("#1e8a55")
        self.nbest_fill = QColor("#1f3b2e") if dark else QColor("#e3f4ea")
        self.forced = QColor("#a77be8") if dark else QColor("#7b45c9")
        self.forced_fill = QColor("#3a2d52") if dark else QColor("#efe6fb")
        self.root_fill = QColor("#44474d") if dark else QColor("#e8eaed")
        self.selection = palette.color(QPalette.ColorRole.Highlight)
        self.edge = QColor("#8a8f96") if dark else QColor("#80868b")
        self.edge_dim = QColor(self.edge)
        self.edge_dim.setAlphaF(0.45)


# ---- the search tree ---------------------------------------------------------------------------------------------

class _NodeItem(QGraphicsItem):
    """One node: a box with the token and its cumulative log-probability; painted by hand (no child items)."""

    def __init__(self, view: "SearchTreeView", nid: int, node: dict[str, Any], kind: str, width: float):
        super().__init__()
        self.view = view
        self.nid = nid
        self.node = node
        self.kind = kind
        self.width = width
        self.label = "start" if nid == 0 else token_text(str(node.get("label", "")))
        score = node.get("score")
        self.score_text = "" if nid == 0 or not isinstance(score, (int, float)) else f"{score:.2f}"
        self.setAcceptHoverEvents(True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(view.node_tooltip(nid))
        self.setZValue(2)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return QRectF(-3, -3, self.width + 6, NODE_H + 6)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: Any = None) -> None:
        t = self.view.theme
        kind = self.kind
        rect = QRectF(0, 0, self.width, NODE_H)
        fill, pen, text, sub = t.box, QPen(t.border, 1.2), t.text, t.muted
        if kind == "best":
            fill, pen, text, sub = t.best, QPen(t.best.darker(130), 1.5), t.best_text, QColor(255, 255, 255, 215)
        elif kind == "forced":
            fill, pen = t.forced_fill, QPen(t.forced, 1.8, Qt.PenStyle.DashLine)
        elif kind in ("nbest", "finished"):
            fill, pen = t.nbest_fill, QPen(t.nbest, 2.0 if kind == "nbest" else 1.4)
        elif kind == "root":
            fill = t.root_fill
        elif kind == "dead":
            text, sub = t.muted, t.faint
            pen = QPen(t.faint, 1.0)
        elif kind == "pruned":
            fill = Qt.GlobalColor.transparent
            text, sub = t.faint, t.faint
            pen = QPen(t.faint, 1.0, Qt.PenStyle.DotLine)
        if self.isSelected():
            painter.setPen(QPen(t.selection, 3.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(-2.5, -2.5, 2.5, 2.5), 7, 7)
        painter.setPen(pen)
        painter.setBrush(QBrush(fill))
        painter.drawRoundedRect(rect, 5, 5)
        if self.node.get("status") == "finished" and kind != "best":
            # a finished hypothesis ends in a bar, like a full stop
            painter.fillRect(QRectF(self.width - 4, 3, 2.5, NODE_H - 6), t.nbest)
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        if lod < 0.45:
            return  # too small to read: boxes and colours carry the picture
        painter.setFont(self.view.token_font)
        painter.setPen(text)
        fm = self.view.token_metrics
        label = fm.elidedText(self.label, Qt.TextElideMode.ElideRight, self.width - 8)
        painter.drawText(QRectF(2, 2, self.width - 4, NODE_H * 0.58), Qt.AlignmentFlag.AlignCenter, label)
        if self.score_text:
            painter.setFont(self.view.score_font)
            painter.setPen(sub)
            painter.drawText(QRectF(2, NODE_H * 0.52, self.width - 4, NODE_H * 0.46), Qt.AlignmentFlag.AlignCenter,
                             self.score_text)

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self.view.select_node(self.nid)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if self.nid != 0:
            self.view.forceRequested.emit(self.nid)
        event.accept()

    def contextMenuEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.view.select_node(self.nid)
        self.view.node_menu(self.nid, event.screenPos())
        event.accept()


class _FoldHandle(QGraphicsItem):
    """The round button at a node's right edge: "−" folds its subtree away, "+n" shows the n nodes hidden."""

    def __init__(self, view: "SearchTreeView", nid: int, hidden: int):
        super().__init__()
        self.view = view
        self.nid = nid
        self.hidden = hidden
        self.text = f"+{hidden}" if hidden else "−"
        self.w = max(2 * HANDLE_R, QFontMetricsF(view.score_font).horizontalAdvance(self.text) + 8)
        self.setZValue(3)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAcceptHoverEvents(True)
        self.setToolTip(f"Show the {hidden} hidden node{'s' if hidden != 1 else ''} below" if hidden
                        else "Fold away everything after this node")

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return QRectF(-self.w / 2 - 1, -HANDLE_R - 1, self.w + 2, 2 * HANDLE_R + 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: Any = None) -> None:
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        if lod < 0.45:
            return
        t = self.view.theme
        rect = QRectF(-self.w / 2, -HANDLE_R, self.w, 2 * HANDLE_R)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        # "−" is only an offer, drawn quietly; "+n" says that something is hidden, drawn plainly
        painter.setPen(QPen(t.border if self.hidden else t.faint, 1.0))
        painter.setBrush(t.root_fill if self.hidden else t.background)
        painter.drawRoundedRect(rect, HANDLE_R, HANDLE_R)
        painter.setFont(self.view.score_font)
        painter.setPen(t.text if self.hidden else t.muted)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.text)

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self.view.toggle_fold(self.nid)
        event.accept()


class SearchTreeView(QGraphicsView):
    """A search document drawn left to right (see the module docstring).

    Click a node to select it (its path is outlined and its hypothesis goes to ``nodeSelected``); double-click, or
    **Force this prefix** in its context menu, asks to decode again from it (``forceRequested``).  The round
    handle on a node folds or unfolds what lies after it.  Wheel zooms around the cursor, dragging pans, Home fits.
    """

    nodeSelected = Signal(int)
    forceRequested = Signal(int)
    attentionRequested = Signal(int)
    zoomed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.theme = TreeTheme(self.palette())
        base = QApplication.font()
        self.token_font = QFont(base)
        self.token_font.setPointSizeF(max(base.pointSizeF(), 9.0) * 1.12)
        self.token_font.setBold(True)
        self.score_font = QFont(base)
        self.score_font.setPointSizeF(max(base.pointSizeF(), 9.0) * 0.92)
        self.token_metrics = QFontMetricsF(self.token_font)
        self._doc: Optional[dict[str, Any]] = None
        self._layout: Optional[TreeLayout] = None
        self.show_pruned = True
        self.fold_dead = False
        self._folded: set[int] = set()
        self._expanded: set[int] = set()
        self._selected: Optional[int] = None
        self.node_items: dict[int, _NodeItem] = {}
        self._selection_path: Optional[QGraphicsPathItem] = None
        self._node_w = MIN_NODE_W
        self._message: Optional[QGraphicsSimpleTextItem] = None
        self.set_message("Choose an input and press Decode.")

    # ---- content ---------------------------------------------------------------------------------------------
    def document(self) -> Optional[dict[str, Any]]:
        return self._doc

    def layout_model(self) -> Optional[TreeLayout]:
        return self._layout

    def set_message(self, text: str) -> None:
        """Show a line of text instead of a tree (before the first decode, or after an error)."""
        self._doc = None
        self._layout = None
        self.node_items = {}
        scene = self.scene()
        scene.clear()
        self._selection_path = None
        self._message = scene.addSimpleText(text)
        self._message.setBrush(self.theme.muted)
        self._message.setFont(QApplication.font())
        scene.setSceneRect(self._message.boundingRect().adjusted(-20, -20, 20, 20))
        self.resetTransform()

    def set_document(self, doc: dict[str, Any], *, keep_view: bool = False) -> None:
        self._doc = doc
        self._folded.clear()
        self._expanded.clear()
        self._selected = None
        labels = [token_text(str(n.get("label", ""))) for n in doc["tree"][1:]]
        widest = max((self.token_metrics.horizontalAdvance(s) for s in labels), default=0.0)
        self._node_w = float(min(MAX_NODE_W, max(MIN_NODE_W, widest + 16)))
        self.relayout()
        if not keep_view:
            self.fit_best()

    def set_options(self, *, show_pruned: bool | None = None, fold_dead: bool | None = None) -> None:
        if show_pruned is not None:
            self.show_pruned = show_pruned
        if fold_dead is not None:
            self.fold_dead = fold_dead
        self._expanded.clear()
        if self._doc is not None:
            self.relayout()

    def toggle_fold(self, nid: int) -> None:
        """Fold the subtree after ``nid`` away, or show what is hidden below it."""
        if self._layout is None:
            return
        if self._layout.hidden.get(nid):
            self._folded.discard(nid)
            self._expanded.add(nid)
        else:
            self._folded.add(nid)
            self._expanded.discard(nid)
        self.relayout()

    def relayout(self) -> None:
        doc = self._doc
        if doc is None:
            return
        self._layout = layout_tree(doc, show_pruned=self.show_pruned, fold_dead=self.fold_dead,
                                   folded=self._folded, expanded=self._expanded)
        self._draw()

    # ---- geometry --------------------------------------------------------------------------------------------
    def _xy(self, nid: int) -> QPointF:
        col, row = self._layout.pos[nid]
        return QPointF(col * (self._node_w + COL_GAP), row * (NODE_H + ROW_GAP))

    def node_rect(self, nid: int) -> QRectF:
        p = self._xy(nid)
        return QRectF(p.x(), p.y(), self._node_w, NODE_H)

    def _draw(self) -> None:
        scene = self.scene()
        lay, doc = self._layout, self._doc
        scene.clear()
        self._selection_path = None
        self._message = None
        self.node_items = {}
        t = self.theme
        nodes = doc["tree"]
        has_children = {n["parent"] for n in nodes if n["parent"] is not None}
        # edges, one path per look; best last so that it lies on top
        groups = {"dim": QPainterPath(), "kept": QPainterPath(), "nbest": QPainterPath(), "best": QPainterPath()}
        for parent, child in lay.edges:
            kind = lay.kind[child]
            group = ("best" if kind in ("best", "forced") else "nbest" if kind in ("nbest", "finished")
                     else "dim" if kind in ("dead", "pruned") else "kept")
            a, b = self.node_rect(parent), self.node_rect(child)
            start = QPointF(a.right() + (HANDLE_R if parent in has_children else 0), a.center().y())
            end = QPointF(b.left(), b.center().y())
            path = groups[group]
            path.moveTo(start)
            mid = (start.x() + end.x()) / 2
            path.cubicTo(QPointF(mid, start.y()), QPointF(mid, end.y()), end)
        pens = {"dim": QPen(t.edge_dim, 1.0, Qt.PenStyle.DashLine), "kept": QPen(t.edge, 1.4),
                "nbest": QPen(t.nbest, 2.0), "best": QPen(t.best, 3.2)}
        for z, name in enumerate(("dim", "kept", "nbest", "best")):
            item = scene.addPath(groups[name], pens[name])
            item.setZValue(z * 0.1)
        # column headings: the step numbers
        head_font = QFont(self.score_font)
        for col in range(1, lay.columns):
            text = scene.addSimpleText(f"step {col}", head_font)
            text.setBrush(t.muted)
            r = text.boundingRect()
            text.setPos(col * (self._node_w + COL_GAP) + (self._node_w - r.width()) / 2, -r.height() - 8)
        for nid in lay.pos:
            item = _NodeItem(self, nid, nodes[nid], lay.kind[nid], self._node_w)
            item.setPos(self._xy(nid))
            scene.addItem(item)
            self.node_items[nid] = item
            hidden = lay.hidden.get(nid, 0)
            if hidden or nid in has_children and nid != 0:
                handle = _FoldHandle(self, nid, hidden)
                rect = self.node_rect(nid)
                handle.setPos(rect.right() + (handle.w / 2 if hidden else 0), rect.center().y())
                scene.addItem(handle)
        bounds = scene.itemsBoundingRect().adjusted(-30, -30, 40, 30)
        scene.setSceneRect(bounds)
        if self._selected in self.node_items:
            self._outline_selection()
        else:
            self._selected = None

    # ---- selection -------------------------------------------------------------------------------------------
    def selected_node(self) -> Optional[int]:
        return self._selected

    def select_node(self, nid: int, *, center: bool = False, emit: bool = True) -> None:
        if self._doc is None or nid not in self.node_items:
            return
        for item in self.scene().selectedItems():
            item.setSelected(False)
        self._selected = nid
        self.node_items[nid].setSelected(True)
        self._outline_selection()
        if center:
            self.centerOn(self.node_items[nid])
        if emit:
            self.nodeSelected.emit(nid)

    def _outline_selection(self) -> None:
        """A wide translucent band under the path from the root to the selected node."""
        if self._selection_path is not None:
            self.scene().removeItem(self._selection_path)
            self._selection_path = None
        nid = self._selected
        if nid is None or self._layout is None:
            return
        path = QPainterPath()
        chain = []
        cur: Optional[int] = nid
        while cur is not None:
            chain.append(cur)
            cur = self._doc["tree"][cur]["parent"]
        chain.reverse()
        points = [self.node_rect(i).center() for i in chain if i in self._layout.pos]
        if len(points) < 2:
            return
        path.moveTo(points[0])
        for p in points[1:]:
            path.lineTo(p)
        color = QColor(self.theme.selection)
        color.setAlphaF(0.28)
        pen = QPen(color, NODE_H * 0.55, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        self._selection_path = self.scene().addPath(path, pen)
        self._selection_path.setZValue(1)

    def highlighted_path(self) -> list[int]:
        """The node ids drawn as the best hypothesis, root excluded, in order."""
        if self._layout is None:
            return []
        return [n for n in self._layout.best_path if self._layout.kind.get(n) == "best"]

    def node_menu(self, nid: int, screen_pos: Any) -> None:
        menu = QMenu(self)
        if nid != 0:
            menu.addAction("Force this prefix and decode the rest", lambda: self.forceRequested.emit(nid))
            menu.addAction("Show the attention of this hypothesis", lambda: self.attentionRequested.emit(nid))
        if self._layout is not None and (self._layout.hidden.get(nid) or any(
                p == nid for p, _ in self._layout.edges)):
            menu.addAction("Show hidden nodes below" if self._layout.hidden.get(nid) else "Fold after this node",
                           lambda: self.toggle_fold(nid))
        menu.exec(screen_pos)

    # ---- tooltips --------------------------------------------------------------------------------------------
    def node_tooltip(self, nid: int) -> str:
        """What hovering a node shows: the token, its log-probability and score, its fate, and the top-k next
        tokens the model gave at that point (when the decoder kept them)."""
        doc = self._doc
        node = doc["tree"][nid]
        kind = self._layout.kind.get(nid, "") if self._layout else ""
        rows = []
        if nid == 0:
            head = f"<b>start</b> — the input: {html.escape(str(doc.get('input', '')))}"
        else:
            label = html.escape(token_text(str(node.get("label", ""))))
            head = (f"<b>{label}</b> &nbsp; step {node['step'] + 1}<br>"
                    f"log p = {_num(node.get('logprob'))} &nbsp; (p = {_prob(node.get('logprob'))})<br>"
                    f"cumulative log p = {_num(node.get('score'))}")
            if node.get("normalized") is not None:
                head += f"<br>length-normalised = {_num(node.get('normalized'))}"
            head += f"<br><i>{KIND_TEXT.get(kind, node.get('status', ''))}</i>"
        top = node.get("topk")
        if top:
            width = 120
            for entry in top:
                p = float(entry.get("prob") or 0.0)
                bar = max(1, int(round(p * width)))
                rows.append(f"<tr><td><code>{html.escape(token_text(str(entry.get('label', ''))))}</code></td>"
                            f"<td align='right'>{_percent(p)}</td>"
                            f"<td><table cellspacing=0 cellpadding=0><tr><td bgcolor='{self.theme.best.name()}' "
                            f"width={bar} height=8></td></tr></table></td></tr>")
            table = (f"<br><br>next token, top {len(top)}:<table cellspacing=2>{''.join(rows)}</table>")
        elif nid != 0 and node.get("status") in ("pruned", "finished"):
            table = "<br><br>not expanded: the search did not go on from here"
        else:
            table = "<br><br>no top-k kept (decoder setting topk)" if nid == 0 or kind in ("kept", "best") else ""
        return f"<qt>{head}{table}</qt>"

    # ---- view ------------------------------------------------------------------------------------------------
    def fit_all(self) -> None:
        rect = self.scene().sceneRect()
        if rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self._clamp_zoom()
        self.zoomed.emit()

    def fit_best(self) -> None:
        """Fit the whole tree when it can be read that way, otherwise show its start at a readable zoom."""
        self.resetTransform()
        rect = self.scene().sceneRect()
        view = self.viewport().rect()
        if rect.isEmpty() or view.width() < 10:
            return
        scale = min(view.width() / rect.width(), view.height() / rect.height())
        if scale >= 0.75:
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            self._clamp_zoom(max_zoom=1.4)
        else:
            # readable first: the start of the tree at 80 %, the rest is a scroll or a zoom away
            zoom = max(0.8, min(1.0, view.height() / rect.height()))
            self.setTransform(QTransform.fromScale(zoom, zoom))
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().minimum())
            self.verticalScrollBar().setValue(self.verticalScrollBar().minimum())
        self.zoomed.emit()

    def zoom(self) -> float:
        return self.transform().m11()

    def _clamp_zoom(self, max_zoom: float = ZOOM_MAX) -> None:
        z = self.zoom()
        if z > max_zoom or z < ZOOM_MIN:
            target = min(max(z, ZOOM_MIN), max_zoom)
            self.scale(target / z, target / z)

    def wheelEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        factor = 1.0015 ** event.angleDelta().y()
        z = self.zoom()
        factor = min(max(factor, ZOOM_MIN / z), ZOOM_MAX / z)
        self.scale(factor, factor)
        self.zoomed.emit()
        event.accept()

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Home:
            self.fit_all()
        elif event.key() in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.scale(1.25, 1.25)
        elif event.key() == Qt.Key.Key_Minus:
            self.scale(0.8, 0.8)
        else:
            super().keyPressEvent(event)
            return
        self.zoomed.emit()
        event.accept()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt override
        painter.fillRect(rect, self.theme.background)

    def changeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self.theme = TreeTheme(self.palette())
            if self._doc is not None:
                self._draw()


KIND_TEXT = {
    "root": "the start",
    "forced": "forced: part of the prefix you chose",
    "best": "on the best hypothesis",
    "nbest": "on another hypothesis of the n-best list",
    "finished": "a finished hypothesis outside the n-best list",
    "kept": "kept in the beam",
    "dead": "kept in the beam, but its line was outscored later",
    "pruned": "pruned: scored below the beam",
}


def _num(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and math.isfinite(x) else "—"


def _prob(logp: Any) -> str:
    if not isinstance(logp, (int, float)) or not math.isfinite(logp):
        return "—"
    return _percent(math.exp(logp))


def _percent(p: float) -> str:
    """A probability as people read it: 53.2%, 0.4%, and tiny ones as 3.1e-06 rather than a false 0.0%."""
    return f"{p * 100:.1f}%" if p >= 0.001 else f"{p:.1e}"


def hypothesis_text(doc: dict[str, Any], nid: int) -> str:
    """The tokens from the root to ``nid`` as one line (characters joined, longer tokens spaced)."""
    tokens, _ = hypothesis_at(doc, nid)
    labels = []
    cur: Optional[int] = nid
    nodes = doc["tree"]
    while cur is not None and cur != 0:
        if nodes[cur].get("label") != "<eos>":
            labels.append(str(nodes[cur].get("label", "")))
        cur = nodes[cur]["parent"]
    labels.reverse()
    joiner = "" if all(len(s) <= 1 for s in labels) else " "
    return joiner.join(labels)
