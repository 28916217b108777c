"""The canvas widget: zoom, pan, keyboard, clipboard, drops from the palette and the Tab quick-search.

Interaction follows common node editors: wheel zooms around the cursor; middle-drag or Space+drag pans; a drag on
empty canvas draws a selection rectangle (Ctrl adds to the selection); Tab opens a quick-search to add a block at
the cursor; Home fits the graph in the view.  Every edit goes through the :class:`ProjectDocument`.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QCursor, QKeySequence, QPainter, QTransform
from PySide6.QtWidgets import QApplication, QGraphicsView, QMenu

from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Node
from workbench.core.task_choice import TASK_SPAN
from workbench.gui import style
from workbench.gui.canvas.catalog import MIME_TYPE, BlockEntry, block_entries
from workbench.gui.canvas.items import LinkItem, NodeItem
from workbench.gui.canvas.layout import layered_layout
from workbench.gui.canvas.quicksearch import QuickSearchPopup
from workbench.gui.canvas.scene import GraphScene

TASK_NODE_MESSAGE = "the task's input and output nodes come from the task and cannot be deleted"


class GraphView(QGraphicsView):
    selectionChanged = Signal(list)   # selected node ids
    message = Signal(str)             # a refused gesture's reason, for the status bar too

    def __init__(self, document: Any, parent=None):
        super().__init__(parent)
        self.document = document
        self.graph_scene = GraphScene(document, self)
        self.setScene(self.graph_scene)
        self.graph_scene.message.connect(self.message)  # signal to signal: no Python reference cycle
        self.graph_scene.selectionChanged.connect(self._on_scene_selection)
        self._last_selection: list[str] = []
        self._pan_from: QPointF | None = None
        self._space_down = False
        self.quick_search: QuickSearchPopup | None = None
        self._quick_pos: QPointF | None = None
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        # zoom anchoring is done by hand in wheelEvent (the built-in anchor needs mouse tracking to be exact)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.centerOn(self.graph_scene.nodes_rect().center())
        self._placeholder = ""
        # the hint on an empty canvas comes and goes with the nodes
        document.graphChanged.connect(self.viewport().update)
        document.projectReplaced.connect(self.viewport().update)

    # ---- selection -----------------------------------------------------------------------------------------
    def _on_scene_selection(self) -> None:
        ids = self.selected_node_ids()
        if ids != self._last_selection:  # a rubber band fires this per mouse move: emit real changes only
            self._last_selection = ids
            self.selectionChanged.emit(ids)

    def selected_node_ids(self) -> list[str]:
        return self.graph_scene.selected_node_ids()

    def select_node(self, node_id: str, center: bool = True) -> None:
        item = self.graph_scene.nodes.get(node_id)
        if item is None:
            return
        self.graph_scene.clearSelection()
        item.setSelected(True)
        if center:
            self.centerOn(item.sceneBoundingRect().center())

    def select_nodes(self, node_ids: list[str]) -> None:
        self.graph_scene.clearSelection()
        for node_id in node_ids:
            item = self.graph_scene.nodes.get(node_id)
            if item is not None:
                item.setSelected(True)

    def select_all(self) -> None:
        self.select_nodes(list(self.graph_scene.nodes))

    # ---- edits ---------------------------------------------------------------------------------------------
    def _deletable(self, node_ids: list[str]) -> tuple[list[str], bool]:
        """Drop the task's own input/output node from ``node_ids`` unless a duplicate of it remains."""
        graph = self.document.graph
        keep: set[str] = set()
        for kind in (TASK_INPUT, TASK_OUTPUT):
            of_kind = [n for n, node in graph.nodes.items() if node.type == kind]
            chosen = [n for n in node_ids if n in of_kind]
            if of_kind and len(chosen) == len(of_kind):
                keep.add(chosen[0])
        return [n for n in node_ids if n not in keep], bool(keep)

    def delete_selection(self) -> None:
        """Delete the selected nodes (with their links) and selected links: one undo command."""
        ids, refused = self._deletable(self.selected_node_ids())
        links = [ln for ln in self.graph_scene.selected_links() if ln.src not in ids and ln.dst not in ids]
        if refused:
            self._tell(TASK_NODE_MESSAGE)
        if not ids and not links:
            return
        stack = self.document.undo_stack
        single = (bool(ids) and not links) or (not ids and len(links) == 1)
        if not single:
            stack.beginMacro("Delete")
        if ids:
            self.document.remove_nodes(ids)
        for ln in links:
            self.document.disconnect_link(ln)
        if not single:
            stack.endMacro()

    def copy_selection(self) -> None:
        ids = self.selected_node_ids()
        if ids:
            QApplication.clipboard().setText(self.document.copy_nodes(ids))

    def cut_selection(self) -> None:
        self.copy_selection()
        self.delete_selection()

    def paste(self) -> None:
        """Paste clipboard nodes with their top-left at the mouse (or the view centre); selects them."""
        text = QApplication.clipboard().text()
        try:
            data = json.loads(text)
            present = {node.type for node in self.document.graph.nodes.values()}
            # the task's input/output node exists once per graph: a second copy would only be a problem
            skipped = [item["id"] for item in data["nodes"] if item["type"] in (TASK_INPUT, TASK_OUTPUT)
                       and item["type"] in present]
            if skipped:
                data["nodes"] = [item for item in data["nodes"] if item["id"] not in skipped]
                data["links"] = [ln for ln in data.get("links") or [] if ln[0] not in skipped and ln[2] not in skipped]
                text = json.dumps(data)
            positions = [tuple(map(float, item.get("pos", (0, 0)))) for item in data["nodes"]]
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            self._tell("the clipboard holds no blocks")
            return
        if skipped:
            self._tell("the task's input and output nodes were not duplicated: a graph has one of each")
        if not positions:
            return
        left = min(p[0] for p in positions)
        top = min(p[1] for p in positions)
        target = self._cursor_scene_pos()
        if target is None:
            target = self._center_scene_pos()
        offset = (round(target.x() - left), round(target.y() - top))
        if abs(offset[0]) < 8 and abs(offset[1]) < 8:
            offset = (offset[0] + 30, offset[1] + 30)  # never exactly on top of the originals
        new_ids = self.document.paste_nodes(text, offset)
        if new_ids:
            self.select_nodes(new_ids)
        else:
            self._tell("the clipboard holds no blocks")

    def add_block_at(self, type_id: str, scene_pos: QPointF, params: dict | None = None,
                     anchor: str = "header") -> str:
        """Add a block; ``anchor`` "header" puts its title bar under ``scene_pos``, "center" its middle."""
        w, h = self._new_node_size(type_id, params)
        dy = style.HEADER_HEIGHT / 2 if anchor == "header" else h / 2
        x, y = round(scene_pos.x() - w / 2), round(scene_pos.y() - dy)
        node_id = self.document.add_node(type_id, (float(x), float(y)), params)
        self.select_node(node_id, center=False)
        self.setFocus()
        return node_id

    def add_block_at_center(self, type_id: str, params: dict | None = None) -> str:
        """Add a block in the middle of the view; repeated adds cascade instead of stacking exactly."""
        w, h = self._new_node_size(type_id, params)
        c = self._center_scene_pos()
        x, y = round(c.x() - w / 2), round(c.y() - h / 2)
        taken = {self.document.position(n) for n in self.document.graph.nodes}
        while (float(x), float(y)) in taken:
            x, y = x + 24, y + 24
        node_id = self.document.add_node(type_id, (float(x), float(y)), params)
        self.select_node(node_id, center=False)
        return node_id

    def _new_node_size(self, type_id: str, params: dict | None) -> tuple[float, float]:
        # measured with the id the document will give it: the id is drawn in the header and counts for the width
        probe = Node(self.document.graph.new_id(type_id), type_id, dict(params or {}))
        return self.graph_scene.node_size(probe)

    def add_entry_at(self, entry: BlockEntry, scene_pos: QPointF | None) -> str:
        """Add a palette entry at ``scene_pos`` (None: the middle of the view): a block, or the project's task."""
        if entry.task:
            self.set_task_at(entry.task, scene_pos)
            return ""
        if scene_pos is None:
            return self.add_block_at_center(entry.type_id, dict(entry.params))
        return self.add_block_at(entry.type_id, scene_pos, dict(entry.params))

    def set_task_at(self, task_id: str, scene_pos: QPointF | None = None) -> str | None:
        """Make ``task_id`` the project's task (one undo step); a new task-input node goes where it was dropped (the
        middle of the view without ``scene_pos``).  Says what happened in the status bar; nothing is selected, so
        the inspector shows the task's settings and its data."""
        graph = self.document.graph
        had_nodes = bool(graph.nodes)
        pos = None
        if scene_pos is not None or not had_nodes:
            at = scene_pos if scene_pos is not None else self._center_scene_pos()
            probe = Node("input", TASK_INPUT)
            w, _h = self.graph_scene.node_size(probe)
            # an empty canvas: the pair centred where it lands, room for two blocks between them
            dx = w / 2 if scene_pos is not None else TASK_SPAN / 2 + w / 2
            pos = (float(round(at.x() - dx)), float(round(at.y() - style.HEADER_HEIGHT / 2)))
        text = self.document.set_task(task_id, pos)
        self.graph_scene.clearSelection()
        if not had_nodes:
            self.fit_all()
        if text:
            self._tell(text[0].upper() + text[1:])
        return text

    def auto_layout(self) -> None:
        """Layers left to right by data flow, as ONE undo command; the graph keeps its top-left corner, and the
        view then fits the whole graph (a layout wider than the old one left nodes outside the view)."""
        items = self.graph_scene.nodes
        if not items:
            return
        graph = self.document.graph
        order = [n for n in graph.nodes if n in items]
        edges = []
        for ln in graph.links:
            if ln.src in items and ln.dst in items:
                sp = items[ln.src].port(ln.src_port, True)
                dp = items[ln.dst].port(ln.dst_port, False)
                edges.append((ln.src, ln.dst, sp.pos().y() if sp else items[ln.src].height / 2,
                              dp.pos().y() if dp else items[ln.dst].height / 2))
        sizes = {n: (items[n].width, items[n].height) for n in order}
        origin = (min(items[n].pos().x() for n in order), min(items[n].pos().y() for n in order))
        new = layered_layout(order, edges, sizes, origin, style.LAYER_GAP, style.ROW_GAP)
        moves = {n: ((items[n].pos().x(), items[n].pos().y()), (float(round(x)), float(round(y))))
                 for n, (x, y) in new.items()}
        self.document.move_nodes(moves, "Auto-layout")
        self.fit_all()

    # ---- view ----------------------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``zoom`` keeping the scene point under the viewport position ``anchor`` (default: centre)."""
        zoom = max(style.ZOOM_MIN, min(style.ZOOM_MAX, zoom))
        view_pt = anchor if anchor is not None else QRectF(self.viewport().rect()).center()
        scene_pt = self.mapToScene(view_pt.toPoint())
        self.setTransform(QTransform.fromScale(zoom, zoom))
        moved = self.mapFromScene(scene_pt) - view_pt.toPoint()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())

    def fit_all(self) -> None:
        rect = self.graph_scene.nodes_rect()
        if rect.isNull():
            self.setTransform(QTransform())
            self.centerOn(0, 0)
            return
        self.fitInView(rect.adjusted(-40, -40, 40, 40), Qt.AspectRatioMode.KeepAspectRatio)
        # a small graph is not blown up past comfortable reading size
        if self.zoom() > 1.25 or self.zoom() < style.ZOOM_MIN:
            self.setTransform(QTransform.fromScale(*(2 * [max(style.ZOOM_MIN, min(1.25, self.zoom()))])))
        self.centerOn(rect.center())

    def view_state(self) -> dict:
        c = self._center_scene_pos()
        return {"zoom": round(self.zoom(), 4), "center": [round(c.x(), 1), round(c.y(), 1)]}

    def set_view_state(self, state: dict) -> None:
        try:
            zoom = float(state.get("zoom", 1.0))
            cx, cy = (float(v) for v in state.get("center", (0.0, 0.0)))
        except (TypeError, ValueError, AttributeError):
            return  # a hand-edited file with a broken view block: keep the current view
        zoom = max(style.ZOOM_MIN, min(style.ZOOM_MAX, zoom))
        self.setTransform(QTransform.fromScale(zoom, zoom))
        self.centerOn(QPointF(cx, cy))

    def rebuild(self) -> None:
        self.graph_scene.rebuild()
        self._on_scene_selection()

    def open_quick_search(self, scene_pos: QPointF | None = None) -> None:
        """The Tab popup: type to filter the blocks; Enter adds the chosen one at the cursor (or ``scene_pos``)."""
        if self.quick_search is not None:
            self.quick_search.close()
            self.quick_search.deleteLater()
        at = scene_pos if scene_pos is not None else self._cursor_scene_pos()
        self._quick_pos = at
        entries = block_entries(self.document.registry, self.document.task_spec())
        self.quick_search = QuickSearchPopup(entries, self)
        self.quick_search.chosen.connect(self._on_quick_chosen)
        global_pos = self.viewport().mapToGlobal(self.mapFromScene(at) if at is not None
                                                 else self.viewport().rect().center())
        area = self.viewport().rect()
        area.moveTopLeft(self.viewport().mapToGlobal(area.topLeft()))
        self.quick_search.popup_at(global_pos, area)

    def _on_quick_chosen(self, entry: BlockEntry) -> None:
        self.add_entry_at(entry, self._quick_pos)

    # ---- the text over an empty canvas ---------------------------------------------------------------------
    def set_placeholder(self, text: str) -> None:
        """Text in the middle of the canvas instead of the empty-canvas hint ("Opening …"); "" to remove it."""
        self._placeholder = text
        self.viewport().update()

    def placeholder_text(self) -> str:
        """What the canvas says over the graph: the placeholder, or how to start when the graph is empty."""
        if self._placeholder:
            return self._placeholder
        if self.document.graph.nodes:
            return ""
        if not self.document.project.task.id:
            return ("An empty project. Drag a task from the palette's Tasks onto the canvas (or double-click it), "
                    "choose its data in the inspector, then wire blocks between its input and output.")
        return "Drag blocks from the palette onto the canvas."

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt override
        super().drawForeground(painter, rect)
        text = self.placeholder_text()
        if not text:
            return
        painter.save()
        painter.resetTransform()           # viewport coordinates: the text stays put while the canvas pans
        area = QRectF(self.viewport().rect()).adjusted(60, 40, -60, -40)
        width = min(area.width(), 520.0)
        area = QRectF(area.center().x() - width / 2, area.top(), width, area.height())
        painter.setPen(self.graph_scene.theme.muted_text)
        painter.setFont(style.ui_font(1.15))
        painter.drawText(area, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), text)
        painter.restore()

    # ---- helpers -------------------------------------------------------------------------------------------
    def _tell(self, text: str) -> None:
        self.message.emit(text)

    def _center_scene_pos(self) -> QPointF:
        return self.mapToScene(self.viewport().rect()).boundingRect().center()

    def _cursor_scene_pos(self) -> QPointF | None:
        p = self.viewport().mapFromGlobal(QCursor.pos())
        return self.mapToScene(p) if self.viewport().rect().contains(p) else None

    # ---- events --------------------------------------------------------------------------------------------
    def event(self, event: QEvent) -> bool:
        # Tab would move the keyboard focus to the next widget before keyPressEvent sees it
        if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Tab and \
                event.modifiers() == Qt.KeyboardModifier.NoModifier:
            if not self.graph_scene.is_dragging_link():
                self.open_quick_search()
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.StandardKey.Delete) or event.key() == Qt.Key.Key_Backspace:
            self.delete_selection()
        elif event.matches(QKeySequence.StandardKey.SelectAll):
            self.select_all()
        elif event.matches(QKeySequence.StandardKey.Copy):
            self.copy_selection()
        elif event.matches(QKeySequence.StandardKey.Cut):
            self.cut_selection()
        elif event.matches(QKeySequence.StandardKey.Paste):
            self.paste()
        elif event.matches(QKeySequence.StandardKey.Undo):
            # normally the window's Edit menu owns these shortcuts; this covers a canvas used on its own
            self.document.undo_stack.undo()
        elif event.matches(QKeySequence.StandardKey.Redo):
            self.document.undo_stack.redo()
        elif event.matches(QKeySequence.StandardKey.ZoomIn):
            self.set_zoom(self.zoom() * 1.25)
        elif event.matches(QKeySequence.StandardKey.ZoomOut):
            self.set_zoom(self.zoom() / 1.25)
        elif event.key() == Qt.Key.Key_Home:
            self.fit_all()
        elif event.key() == Qt.Key.Key_Escape:
            if self.graph_scene.is_dragging_link():
                self.graph_scene.cancel_link_drag()
            else:
                self.graph_scene.clearSelection()
        elif event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            if self._pan_from is None:
                self.viewport().unsetCursor()
        else:
            super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self._space_down = False  # a Space released in another window must not leave us in pan mode
        super().focusOutEvent(event)

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            self.set_zoom(self.zoom() * 1.0015 ** delta, event.position())
        event.accept()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or \
                (event.button() == Qt.MouseButton.LeftButton and self._space_down):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(d.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton,
                                                             Qt.MouseButton.LeftButton):
            self._pan_from = None
            if self._space_down:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event) -> None:
        scene_pos = self.mapToScene(event.pos())
        item = self.itemAt(event.pos())
        menu = QMenu(self)
        if isinstance(item, NodeItem):
            if not item.isSelected():
                self.select_node(item.node_id, center=False)
            menu.addAction(_action(menu, "Cut", QKeySequence.StandardKey.Cut, self.cut_selection))
            menu.addAction(_action(menu, "Copy", QKeySequence.StandardKey.Copy, self.copy_selection))
            menu.addAction(_action(menu, "Delete", QKeySequence.StandardKey.Delete, self.delete_selection))
        elif isinstance(item, LinkItem):
            self.graph_scene.clearSelection()
            item.setSelected(True)
            menu.addAction(_action(menu, "Remove link", QKeySequence.StandardKey.Delete, self.delete_selection))
        else:
            add = menu.addAction("Add block…")
            add.setShortcut(QKeySequence(Qt.Key.Key_Tab))
            paste = _action(menu, "Paste", QKeySequence.StandardKey.Paste, self.paste)
            paste.setEnabled(QApplication.clipboard().text().startswith('{"seqwb-nodes"'))
            menu.addAction(paste)
            menu.addSeparator()
            menu.addAction(_action(menu, "Select all", QKeySequence.StandardKey.SelectAll, self.select_all))
            menu.addAction(_action(menu, "Auto-layout", None, self.auto_layout))
            fit = _action(menu, "Fit in view", None, self.fit_all)
            fit.setShortcut(QKeySequence(Qt.Key.Key_Home))
            menu.addAction(fit)
            if menu.exec(event.globalPos()) is add:
                self.open_quick_search(scene_pos)
            menu.deleteLater()
            return
        menu.exec(event.globalPos())
        menu.deleteLater()

    # drops from the palette
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(MIME_TYPE):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasFormat(MIME_TYPE):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        if not event.mimeData().hasFormat(MIME_TYPE):
            super().dropEvent(event)
            return
        try:
            data = json.loads(bytes(event.mimeData().data(MIME_TYPE)).decode("utf-8"))
            task = str(data.get("task") or "")
            type_id, params = ("", {}) if task else (str(data["type"]), dict(data.get("params") or {}))
        except (ValueError, KeyError, TypeError, AttributeError):
            event.ignore()
            return
        at = self.mapToScene(event.position().toPoint())
        if task:
            self.set_task_at(task, at)
        else:
            self.add_block_at(type_id, at, params)
        event.acceptProposedAction()
        self.activateWindow()

    def changeEvent(self, event) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.FontChange):
            self.graph_scene.set_theme_from_palette()
        super().changeEvent(event)


def _action(parent, text: str, shortcut, slot) -> QAction:
    act = QAction(text, parent)
    if shortcut is not None:
        act.setShortcut(QKeySequence(shortcut))
    act.triggered.connect(slot)
    return act

