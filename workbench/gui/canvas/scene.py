"""The scene: mirrors the document's graph as items and turns gestures into document edits.

The scene never edits the graph directly.  It listens to :class:`ProjectDocument` signals (node added / removed /
moved / changed, link added / removed, problems changed) and updates only the items concerned; gestures end in one
document call each (``connect_ports``, ``move_nodes`` on mouse release, ...), which pushes one undo command.
"""

from __future__ import annotations

import math
import re
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPainter, QPen
from PySide6.QtWidgets import QGraphicsScene

from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Link, check_link, node_ports, node_summary
from workbench.gui import style
from workbench.gui.canvas.catalog import port_tooltip
from workbench.gui.canvas.items import DragLinkItem, LinkItem, MessageBubble, NodeItem, PortItem, node_size

BUBBLE_SECONDS = 6.0


_ID = r"[A-Za-z_][A-Za-z0-9_\-]*"
_ID_FORMS = re.compile(rf"(?<![\w\-.'])({_ID})(?=[.:])|\bnode ({_ID})|'({_ID})'")
_CYCLE = re.compile(r"cycle through ([^;]*)")


def problem_node_ids(problem: str) -> set[str]:
    """Every name a problem may use for a node.

    Problems name nodes as ``node ID``, ``ID.port``, ``ID: ...`` (parameter errors), ``'ID'`` or in a cycle's
    list; taking only those forms keeps a node called ``input`` from collecting every sentence with the word
    "input".  The caller intersects the result with the graph's node ids.
    """
    names = {g for m in _ID_FORMS.finditer(problem) for g in m.groups() if g}
    for m in _CYCLE.finditer(problem):
        names.update(n.strip() for n in m.group(1).split(","))
    return names


def problems_mentioning(node_id: str, problems: list[str]) -> list[str]:
    """The problems that are about ``node_id`` (for the node's mark; the problems panel can use it too)."""
    return [p for p in problems if node_id in problem_node_ids(p)]


class GraphScene(QGraphicsScene):
    message = Signal(str)  # a refused gesture's reason

    def __init__(self, document: Any, parent=None):
        super().__init__(parent)
        self.document = document
        self.theme = style.canvas_theme()
        self.nodes: dict[str, NodeItem] = {}
        self.link_items: dict[Link, LinkItem] = {}
        self._drag: dict[str, Any] | None = None
        self._press_positions: dict[str, QPointF] = {}
        self._bubble: MessageBubble | None = None
        self._bubble_timer = QTimer(self)
        self._bubble_timer.setSingleShot(True)
        self._bubble_timer.timeout.connect(self.clear_message)
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        doc = document
        doc.nodeAdded.connect(self._on_node_added)
        doc.nodeRemoved.connect(self._on_node_removed)
        doc.nodeMoved.connect(self._on_node_moved)
        doc.nodeChanged.connect(self._on_node_changed)
        doc.linkAdded.connect(self._on_link_added)
        doc.linkRemoved.connect(self._on_link_removed)
        doc.problemsChanged.connect(self._on_problems)
        doc.settingsChanged.connect(self._on_settings)
        doc.projectReplaced.connect(self.rebuild)
        self.rebuild()

    # ---- building items --------------------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Recreate every item from the document (a new project, or a theme change)."""
        self.cancel_link_drag()
        self.clear_message()
        self.clear()
        self.nodes.clear()
        self.link_items.clear()
        self.theme = style.canvas_theme()
        graph = self.document.graph
        for node_id in graph.nodes:
            self._add_node_item(node_id)
        for link in graph.links:
            self._add_link_item(link)
        self._on_problems(self.document.report().problems)
        self.update_scene_rect()

    def _add_node_item(self, node_id: str) -> NodeItem:
        item = NodeItem(node_id, self.theme)
        self.nodes[node_id] = item
        self._refresh_content(node_id)
        x, y = self.document.position(node_id)
        item.setPos(x, y)
        self.addItem(item)
        return item

    def _refresh_content(self, node_id: str) -> None:
        node = self.document.graph.nodes[node_id]
        title, summary, category, ins, outs = self.node_content(node)
        item = self.nodes[node_id]
        item.set_content(title, summary, category, ins, outs)
        item.set_description(self.node_description(node))
        for link_item in list(self.nodes[node_id].links):
            link_item.update_path()
        self._refresh_port_states(node_id)

    def node_content(self, node: Any) -> tuple[str, str, str, list, list]:
        """(title, summary, category, inputs, outputs) for a node; ports as ``(name, type, doc, required)``."""
        registry = self.document.registry
        task = self.document.task_spec()
        try:
            ins, outs = node_ports(node, registry, task)
        except LookupError:
            return node.type, "missing plugin", "other", [], []
        as_rows = lambda ports: [(p.name, p.type, p.doc, p.required) for p in ports]  # noqa: E731
        if node.type in (TASK_INPUT, TASK_OUTPUT):
            title = "Task input" if node.type == TASK_INPUT else "Task output"
            names = ", ".join(p.name for p in (outs if node.type == TASK_INPUT else ins))
            task_id = self.document.project.task.id
            summary = f"{task_id} · {names}" if task else f"unknown task {task_id}"
            return title, summary, "inputs/outputs", as_rows(ins), as_rows(outs)
        spec = registry.block(node.type)
        return spec.title, self.summary_text(node, spec), spec.category, as_rows(ins), as_rows(outs)

    def node_description(self, node: Any) -> str:
        if node.type in (TASK_INPUT, TASK_OUTPUT):
            task = self.document.task_spec()
            role = "feeds the model" if node.type == TASK_INPUT else "reads the model's output"
            return f"The task ({task.title if task else self.document.project.task.id}) {role}; " \
                   f"its ports come from the task."
        registry = self.document.registry
        return registry.block(node.type).description if registry.has("architecture", node.type) else \
            f"no installed plugin provides the block type {node.type!r}"

    def summary_text(self, node: Any, spec: Any) -> str:
        """The spec's ``summary`` format string filled with the node's parameters (defaults where unset)."""
        return node_summary(node, spec, self.document.registry, lambda: self._inferred_size(node))

    def _inferred_size(self, node: Any) -> int | None:
        if node.id not in self.document.graph.nodes:
            return None
        report = self.document.report()
        outs = report.ports.get(node.id, ((), ()))[1]
        return report.sizes.get((node.id, outs[0].name)) if outs else None

    def node_size(self, node: Any) -> tuple[float, float]:
        """The size a node would have on the canvas (to place a new one centred where the user wants it)."""
        title, summary, _, ins, outs = self.node_content(node)
        return node_size(style.ui_font(1.0, bold=True), style.ui_font(0.95), node.id, title, summary,
                         [p[0] for p in ins], [p[0] for p in outs])

    def _add_link_item(self, link: Link) -> LinkItem | None:
        src, dst = self.nodes.get(link.src), self.nodes.get(link.dst)
        if src is None or dst is None:
            return None
        item = LinkItem(link, src, dst, self.theme)
        self.link_items[link] = item
        self.addItem(item)
        return item

    def _refresh_port_states(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is None:
            return
        links = self.document.graph.links
        fed = {ln.dst_port for ln in links if ln.dst == node_id}
        feeding = {ln.src_port for ln in links if ln.src == node_id}
        for p in item.inputs:
            p.set_connected(p.name in fed)
        for p in item.outputs:
            p.set_connected(p.name in feeding)

    # ---- document observers --------------------------------------------------------------------------------
    def _on_node_added(self, node_id: str) -> None:
        if node_id not in self.nodes:
            self._add_node_item(node_id)
            self.update_scene_rect()

    def _on_node_removed(self, node_id: str) -> None:
        item = self.nodes.pop(node_id, None)
        if item is None:
            return
        if self._drag and self._drag["origin"].node is item:
            self.cancel_link_drag()
        for link_item in list(item.links):  # normally gone already: the document removes links first
            self._on_link_removed(link_item.link)
        self.removeItem(item)

    def _on_node_moved(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is not None:
            x, y = self.document.position(node_id)
            if item.pos() != QPointF(x, y):
                item.setPos(x, y)
            self.update_scene_rect()

    def _on_node_changed(self, node_id: str) -> None:
        if node_id in self.nodes:
            self._refresh_content(node_id)

    def _on_link_added(self, link: Link) -> None:
        if link not in self.link_items:
            self._add_link_item(link)
        self._refresh_port_states(link.src)
        self._refresh_port_states(link.dst)

    def _on_link_removed(self, link: Link) -> None:
        item = self.link_items.pop(link, None)
        if item is not None:
            item.detach()
            self.removeItem(item)
        self._refresh_port_states(link.src)
        self._refresh_port_states(link.dst)

    def _on_problems(self, problems: list[str]) -> None:
        # called once per graph change (after validation): also the moment inferred sizes may have changed
        graph = self.document.graph
        by_node: dict[str, list[str]] = {}
        for p in problems:  # parse each problem once: O(problems + nodes), not O(problems x nodes)
            for name in problem_node_ids(p):
                by_node.setdefault(name, []).append(p)
        for node_id, item in self.nodes.items():
            item.set_problems(by_node.get(node_id, []))
            node = graph.nodes[node_id]
            if node.type not in (TASK_INPUT, TASK_OUTPUT) and self.document.registry.has("architecture", node.type):
                item.set_summary(self.summary_text(node, self.document.registry.block(node.type)))
        for link, item in self.link_items.items():
            item.set_problem(any(f"link {link}" in p for p in problems))

    def _on_settings(self, section: str) -> None:
        if section == "task":
            # the task's ports may have changed: task nodes follow; links that no longer fit get flagged
            for node_id, item in self.nodes.items():
                if self.document.graph.nodes[node_id].type in (TASK_INPUT, TASK_OUTPUT):
                    self._refresh_content(node_id)

    # ---- queries -------------------------------------------------------------------------------------------
    def selected_node_ids(self) -> list[str]:
        """Selected nodes in the graph's order (stable for copy and tests)."""
        chosen = {it.node_id for it in self.selectedItems() if isinstance(it, NodeItem)}
        return [n for n in self.document.graph.nodes if n in chosen]

    def selected_links(self) -> list[Link]:
        return [it.link for it in self.selectedItems() if isinstance(it, LinkItem)]

    def port_tooltip(self, port: PortItem) -> str:
        report = self.document.report()
        node_id = port.node.node_id
        if port.is_output:
            size = report.sizes.get((node_id, port.name))
        else:
            ln = self.document.graph.incoming(node_id).get(port.name)
            size = report.sizes.get((ln.src, ln.src_port)) if ln else None
        return port_tooltip(port.name, port.port_type, port.doc, size, port.required)

    def nodes_rect(self) -> QRectF:
        rect = QRectF()
        for item in self.nodes.values():
            rect = rect.united(item.sceneBoundingRect())
        return rect

    def update_scene_rect(self) -> None:
        # room to pan around the graph; the view's scroll bars are hidden, so the margin is only felt as freedom
        rect = self.nodes_rect().united(QRectF(-400, -300, 800, 600))
        self.setSceneRect(rect.adjusted(-3000, -3000, 3000, 3000))

    # ---- link dragging ---------------------------------------------------------------------------------------
    def begin_link_drag(self, port: PortItem, pos: QPointF) -> None:
        self.cancel_link_drag()
        self.clear_message()
        detached = None
        origin = port
        if not port.is_output:
            existing = self.document.graph.incoming(port.node.node_id).get(port.name)
            if existing is not None and existing in self.link_items:
                # grabbing a linked input picks its link up (as in Blender): drop it elsewhere or on nothing
                src_item = self.nodes.get(existing.src)
                src_port = src_item.port(existing.src_port, True) if src_item else None
                if src_port is not None:
                    detached = existing
                    origin = src_port
                    self.link_items[existing].setVisible(False)
        line = DragLinkItem(origin)
        self.addItem(line)
        line.set_end(pos)
        self._drag = {"origin": origin, "line": line, "detached": detached, "pressed": port}
        for item in self.nodes.values():
            for p in item.inputs + item.outputs:
                fits = p.is_output != origin.is_output and p.port_type == origin.port_type and p.node is not origin.node
                p.setOpacity(1.0 if fits or p is origin else 0.3)

    def update_link_drag(self, pos: QPointF) -> None:
        if not self._drag:
            return
        origin = self._drag["origin"]
        target = self.port_at(pos, not origin.is_output)
        # snap onto a port that fits, so the user sees the link would land
        if target is not None and target.port_type == origin.port_type and target.node is not origin.node:
            pos = target.anchor()
        self._drag["line"].set_end(pos)

    def end_link_drag(self, pos: QPointF) -> str | None:
        """Finish a drag at ``pos``: link, move or remove the link; returns the refusal reason if any."""
        if not self._drag:
            return None
        drag = self._drag
        self.cancel_link_drag()
        origin: PortItem = drag["origin"]
        detached: Link | None = drag["detached"]
        target = self.port_at(pos, not origin.is_output)
        reason = None
        if target is None:
            same_side = self.port_at(pos, origin.is_output)
            node = self.node_at(pos)
            if detached is not None and same_side is not None and same_side is not origin:
                # a picked-up input dropped on another output: feed the input from there instead
                pressed: PortItem = drag["pressed"]
                reason = self.document.connect_ports(same_side.node.node_id, same_side.name,
                                                     pressed.node.node_id, pressed.name)
                if reason:
                    self.show_message(reason, pos)
                return reason
            if same_side is not None and same_side is not drag["pressed"]:
                reason = ("an output links to an input: drag from an output port to an input port"
                          if origin.is_output else "an input takes its data from an output port")
            elif node is not None and node is not origin.node:
                target, reason = self._pick_port(node, origin)
            elif node is None and detached is not None:
                self.document.disconnect_link(detached)  # dropped on empty canvas: unlink
                return None
        if target is not None:
            if origin.is_output:
                src, sp, dst, dp = origin.node.node_id, origin.name, target.node.node_id, target.name
            else:
                src, sp, dst, dp = target.node.node_id, target.name, origin.node.node_id, origin.name
            if detached is not None:
                if (dst, dp) == (detached.dst, detached.dst_port):
                    return None  # put back where it was
                reason = check_link(self.document.graph, src, sp, dst, dp, self.document.registry,
                                    self.document.task_spec())
                if reason is None:
                    stack = self.document.undo_stack
                    stack.beginMacro(f"Move link to {dst}.{dp}")
                    self.document.disconnect_link(detached)
                    self.document.connect_ports(src, sp, dst, dp)
                    stack.endMacro()
            else:
                reason = self.document.connect_ports(src, sp, dst, dp)
        if reason:
            self.show_message(reason, pos)
        return reason

    def cancel_link_drag(self) -> None:
        drag, self._drag = self._drag, None
        if not drag:
            return
        self.removeItem(drag["line"])
        detached = drag["detached"]
        if detached is not None and detached in self.link_items:
            self.link_items[detached].setVisible(True)
        for item in self.nodes.values():
            for p in item.inputs + item.outputs:
                p.setOpacity(1.0)

    def is_dragging_link(self) -> bool:
        return self._drag is not None

    def _pick_port(self, node: NodeItem, origin: PortItem) -> tuple[PortItem | None, str | None]:
        """Dropped on a node's body: the first free port that fits, else a port that fits, else why none does."""
        candidates = node.inputs if origin.is_output else node.outputs
        fits = [p for p in candidates if p.port_type == origin.port_type]
        free = [p for p in fits if not p.connected]
        if free or fits:
            return (free or fits)[0], None
        if len(candidates) == 1:
            return candidates[0], None  # connect_ports then says exactly which types clash
        side = "inputs" if origin.is_output else "outputs"
        if not candidates:
            return None, f"{node.node_id} has no {side}"
        listing = ", ".join(f"{p.name} ({p.port_type})" for p in candidates)
        return None, (f"none of {node.node_id}'s {side} takes {origin.port_type}; its {side}: {listing}"
                      if origin.is_output else
                      f"none of {node.node_id}'s {side} gives {origin.port_type}; its {side}: {listing}")

    def port_at(self, pos: QPointF, output: bool) -> PortItem | None:
        """The nearest output (or input) port within reach of ``pos``."""
        r = style.PORT_HIT_RADIUS
        best, best_d = None, r
        for item in self.items(QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r)):
            if isinstance(item, PortItem) and item.is_output == output and item.isVisible():
                a = item.anchor()
                d = math.hypot(a.x() - pos.x(), a.y() - pos.y())
                if d <= best_d:
                    best, best_d = item, d
        return best

    def node_at(self, pos: QPointF) -> NodeItem | None:
        for item in self.items(pos):
            if isinstance(item, NodeItem):
                return item
        return None

    # ---- messages ------------------------------------------------------------------------------------------
    def show_message(self, text: str, pos: QPointF) -> None:
        """Show ``text`` in a bubble at ``pos`` for a few seconds, and emit it for the status bar."""
        self.clear_message()
        bubble = MessageBubble(text, self.theme)
        node = self.node_at(pos)
        # just below the node it was dropped on, so the bubble does not hide that node's ports
        y = node.sceneBoundingRect().bottom() + 4 if node is not None else pos.y() + 10
        x = pos.x() - 12
        views = self.views()
        if views:
            # inside the visible part of the canvas: near its right or bottom edge the message was cut off
            view = views[0]
            visible = view.mapToScene(view.viewport().rect()).boundingRect()
            zoom = view.transform().m11() or 1.0        # the bubble keeps its size in pixels at any zoom
            w, h, margin = bubble.rect.width() / zoom, bubble.rect.height() / zoom, 8 / zoom
            if y + h > visible.bottom() - margin:       # no room below: above the node (or the point) instead
                y = (node.sceneBoundingRect().top() if node is not None else pos.y()) - h - 4 / zoom
            x = max(visible.left() + margin, min(x, visible.right() - w - margin))
            y = max(visible.top() + margin, min(y, visible.bottom() - h - margin))
        bubble.setPos(QPointF(x, y))
        self.addItem(bubble)
        self._bubble = bubble
        self._bubble_timer.start(int(BUBBLE_SECONDS * 1000))
        self.message.emit(text)

    def clear_message(self) -> None:
        self._bubble_timer.stop()
        if self._bubble is not None:
            if self._bubble.scene() is self:
                self.removeItem(self._bubble)
            self._bubble = None

    def bubble_text(self) -> str | None:
        return self._bubble.text if self._bubble is not None else None

    # ---- moving nodes: one command per drag ---------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if self._bubble is not None:
            self.clear_message()
        super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and not self._drag:
            self._press_positions = {it.node_id: it.pos() for it in self.selectedItems() if isinstance(it, NodeItem)}

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self._press_positions:
            self.commit_moves()

    def commit_moves(self) -> None:
        """Turn the item positions changed since the press into one ``MoveNodes`` command."""
        pressed, self._press_positions = self._press_positions, {}
        moves = {}
        for node_id, old in pressed.items():
            item = self.nodes.get(node_id)
            if item is not None and item.pos() != old:
                # whole units: a drag at 85 % zoom would otherwise store positions like 312.94117
                new = (float(round(item.pos().x())), float(round(item.pos().y())))
                moves[node_id] = ((old.x(), old.y()), new)
        if moves:
            self.document.move_nodes(moves)
            for node_id, (_, new) in moves.items():
                if node_id in self.nodes and self.nodes[node_id].pos() != QPointF(*new):
                    self.nodes[node_id].setPos(*new)  # a move of under half a unit pushed no command
            self.update_scene_rect()

    # ---- background ------------------------------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        t = self.theme
        painter.fillRect(rect, t.background)
        scale = painter.worldTransform().m11()
        step = style.GRID_STEP
        if scale * step < 8:  # minor lines closer than 8 px are noise
            step *= 5
            if scale * step < 8:
                return
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        minor, major = QPen(t.grid, 0), QPen(t.grid_major, 0)
        x = left
        while x <= rect.right():
            painter.setPen(major if round(x / step) % 5 == 0 else minor)
            painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
            x += step
        y = top
        while y <= rect.bottom():
            painter.setPen(major if round(y / step) % 5 == 0 else minor)
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
            y += step

    def set_theme_from_palette(self) -> None:
        self.theme = style.canvas_theme()
        for item in self.nodes.values():
            item.set_theme(self.theme)
        for item in self.link_items.values():
            item.theme = self.theme
            item.update()
        self.update()
