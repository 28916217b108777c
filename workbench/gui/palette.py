"""The palette dock's content: every task and every block type from the registry, grouped, searchable.

**Tasks** come first: dropping one on the canvas makes it the project's task (its input and output nodes appear; a
task already there is replaced, keeping the links that still fit).  The project's task is shown in bold.  Drag a
block onto the canvas to add it where it is dropped; double-click (or Enter) adds it in the middle of the view.
Recurrent blocks get one entry per registered cell (listed by the cell's name under "Recurrent layers"), so a new
cell plugin shows up here without any GUI code.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from workbench.gui import style
from workbench.gui.canvas.catalog import MIME_TYPE, BlockEntry, block_entries

ENTRY_ROLE = Qt.ItemDataRole.UserRole


def _swatch(color: QColor, size: int = 12) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(color.darker(130))
    p.setBrush(color)
    p.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
    p.end()
    return QIcon(pix)


class _BlockTree(QTreeWidget):
    """A tree whose block entries drag out as :data:`MIME_TYPE` payloads the canvas understands."""

    def __init__(self, palette: "PaletteWidget"):
        super().__init__(palette)
        self.palette_widget = palette
        self.setHeaderHidden(True)
        self.setRootIsDecorated(True)
        self.setIndentation(14)
        self.setUniformRowHeights(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setExpandsOnDoubleClick(True)

    def mimeTypes(self) -> list[str]:
        return [MIME_TYPE]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        data = QMimeData()
        entries = [self.palette_widget.entry_of(it) for it in items]
        entries = [e for e in entries if e is not None]
        if entries:
            e = entries[0]
            data.setData(MIME_TYPE, json.dumps(e.payload()).encode("utf-8"))
            data.setText(e.task or e.type_id)
        return data

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentItem() is not None:
            self.palette_widget.add_item(self.currentItem())
            return
        super().keyPressEvent(event)


class PaletteWidget(QWidget):
    def __init__(self, registry, view, parent: QWidget | None = None):
        super().__init__(parent)
        self.registry = registry
        self.view = view
        self.entries: list[BlockEntry] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search tasks and blocks…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Filter the tasks and blocks by name, cell or category")
        self.tree = _BlockTree(self)
        self.empty = QLabel(self)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        style.set_muted(self.empty)
        self.empty.hide()
        self.hint = QLabel("Drag a task or a block onto the canvas, or double-click it.  Tab on the canvas "
                           "searches too.", self)
        self.hint.setWordWrap(True)
        style.set_muted(self.hint)
        layout.addWidget(self.search)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty)
        layout.addWidget(self.hint)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._add_first_visible)
        # bound methods, not lambdas: a lambda holding self makes a cycle the garbage collector may break at
        # any moment, deleting the widget under Qt's feet
        self.tree.itemDoubleClicked.connect(self._on_double_click)
        document = getattr(view, "document", None)
        if document is not None:
            document.settingsChanged.connect(self._on_settings)
            document.projectReplaced.connect(self.refresh)
        self.refresh()

    def _on_double_click(self, item: QTreeWidgetItem, column: int) -> None:
        self.add_item(item)

    def _on_settings(self, section: str) -> None:
        document = self.view.document
        if section == "task" and document.project.task.id != self._task_id:
            self.refresh()      # the project's task is shown in bold and named in its tooltip

    def refresh(self) -> None:
        """Rebuild the entries from the registry (after plugins or the task changed); keeps the search text."""
        document = getattr(self.view, "document", None)
        task = document.task_spec() if document is not None else None
        self.entries = block_entries(self.registry, task)
        current = document.project.task.id if document is not None else ""
        self._task_id = current
        self.tree.clear()
        groups: dict[str, QTreeWidgetItem] = {}
        for index, entry in enumerate(self.entries):
            group = groups.get(entry.category)
            if group is None:
                group = QTreeWidgetItem(self.tree, [style.category_title(entry.category)])
                font = group.font(0)
                font.setBold(True)
                group.setFont(0, font)
                group.setFlags(Qt.ItemFlag.ItemIsEnabled)  # a heading: neither draggable nor selectable
                group.setIcon(0, _swatch(style.category_color(entry.category)))
                groups[entry.category] = group
            # under its heading a recurrent layer is named by its cell: "Recurrent layers · Peephole LSTM"
            # was cut to "Recurrent layers · Peeph…" in a dock of the default width
            item = QTreeWidgetItem(group, [entry.short_title or entry.title])
            item.setData(0, ENTRY_ROLE, index)
            item.setToolTip(0, entry.tooltip)
            if entry.task and entry.task == current:
                font = item.font(0)
                font.setBold(True)
                item.setFont(0, font)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
        self.tree.expandAll()
        self.filter(self.search.text())

    def needed_width(self) -> int:
        """The width at which no entry is cut off (the dock's default width follows it)."""
        self.tree.resizeColumnToContents(0)
        return self.tree.sizeHintForColumn(0) + self.tree.indentation() + 2 * self.tree.frameWidth() + \
            self.tree.verticalScrollBar().sizeHint().width() + 12

    def entry_of(self, item: QTreeWidgetItem | None) -> BlockEntry | None:
        if item is None:
            return None
        index = item.data(0, ENTRY_ROLE)
        return self.entries[index] if isinstance(index, int) else None

    def filter(self, text: str) -> None:
        shown = 0
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            any_shown = False
            for c in range(group.childCount()):
                child = group.child(c)
                ok = self.entry_of(child).matches(text)
                child.setHidden(not ok)
                any_shown |= ok
                shown += ok
            group.setHidden(not any_shown)
            if text and any_shown:
                group.setExpanded(True)
        self.empty.setVisible(shown == 0)
        self.empty.setText(f"Nothing matches “{text}”." if shown == 0 else "")

    def visible_entries(self) -> list[BlockEntry]:
        out = []
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            if group.isHidden():
                continue
            out += [self.entry_of(group.child(c)) for c in range(group.childCount()) if not group.child(c).isHidden()]
        return out

    def add_item(self, item: QTreeWidgetItem) -> str | None:
        """Add the entry's block in the middle of the canvas (double-click / Enter)."""
        entry = self.entry_of(item)
        if entry is None:
            return None
        node_id = self.view.add_entry_at(entry, None)
        self.view.setFocus()
        return node_id

    def _add_first_visible(self) -> None:
        # Enter in the search field adds the first match: search-and-add without touching the mouse
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            for c in range(group.childCount()):
                if not group.isHidden() and not group.child(c).isHidden():
                    self.add_item(group.child(c))
                    return
