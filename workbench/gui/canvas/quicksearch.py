"""The Tab quick-search: type a few letters of a block's name, press Enter, and the block appears at the cursor.

The popup reports the choice through a signal rather than a callback: a callback closing over the canvas would
make a reference cycle, and a cycle lets Python's garbage collector delete the canvas at an arbitrary moment
(even in the middle of a paint event, which crashes Qt).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from workbench.gui.canvas.catalog import BlockEntry
from workbench.gui.style import category_title, set_muted


class QuickSearchPopup(QFrame):
    """A popup with a search field over a filtered list; ``chosen(entry)`` is emitted on Enter or click."""

    chosen = Signal(object)  # BlockEntry

    def __init__(self, entries: list[BlockEntry], parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Popup)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.entries = entries
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("Add a block: type its name…")
        self.edit.setClearButtonEnabled(True)
        self.list = QListWidget(self)
        self.list.setUniformItemSizes(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.hint = QLabel("↑↓ choose · Enter add · Esc close", self)
        set_muted(self.hint)
        layout.addWidget(self.edit)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.hint)
        for _ in entries:
            self.list.addItem(QListWidgetItem())
        self.edit.textChanged.connect(self.filter)
        self.list.itemActivated.connect(self._activate)
        self.list.itemClicked.connect(self._activate)
        self.edit.installEventFilter(self)
        fm = self.fontMetrics()
        self.resize(max(360, fm.horizontalAdvance("M") * 30), fm.height() * 18)
        self.filter("")

    def filter(self, text: str) -> None:
        # best matches first (a title word starting with the text), then the catalogue's own order
        order = sorted(range(len(self.entries)), key=lambda i: (self.entries[i].rank(text), i))
        first = None
        for row, index in enumerate(order):
            item = self.list.item(row)
            entry = self.entries[index]
            item.setText(entry_label(entry))
            item.setData(Qt.ItemDataRole.UserRole, index)
            item.setToolTip(entry.tooltip)
            shown = entry.matches(text)
            item.setHidden(not shown)
            if shown and first is None:
                first = item
        self.list.setCurrentItem(first)
        if first is not None:
            self.list.scrollToItem(first)

    def visible_entries(self) -> list[BlockEntry]:
        return [self.entries[self.list.item(i).data(Qt.ItemDataRole.UserRole)] for i in range(self.list.count())
                if not self.list.item(i).isHidden()]

    def choose_current(self) -> bool:
        item = self.list.currentItem()
        if item is None or item.isHidden():
            return False
        self._activate(item)
        return True

    def _activate(self, item: QListWidgetItem) -> None:
        entry = self.entries[item.data(Qt.ItemDataRole.UserRole)]
        self.close()
        self.chosen.emit(entry)

    def _step(self, delta: int) -> None:
        rows = [i for i in range(self.list.count()) if not self.list.item(i).isHidden()]
        if not rows:
            return
        cur = self.list.currentRow()
        pos = rows.index(cur) if cur in rows else -1
        self.list.setCurrentRow(rows[max(0, min(len(rows) - 1, pos + delta))])

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        # the search field keeps the focus; arrows and Enter drive the list from there
        if obj is self.edit and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.choose_current()
                return True
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                step = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_PageDown: 8, Qt.Key.Key_PageUp: -8}[key]
                self._step(step)
                return True
            if key == Qt.Key.Key_Escape:
                self.close()
                return True
        return super().eventFilter(obj, event)

    def popup_at(self, global_pos: QPoint, within: QRect | None = None) -> None:
        """Show near ``global_pos``, inside ``within`` (the canvas, in global coordinates) when it fits there,
        and always on the screen."""
        pos = QPoint(global_pos)
        areas = [within] if within is not None and within.width() >= self.width() and \
            within.height() >= self.height() else []
        screen = self.screen()
        if screen is not None:
            areas.append(screen.availableGeometry())
        for area in areas:
            pos.setX(max(area.left(), min(pos.x(), area.right() - self.width())))
            pos.setY(max(area.top(), min(pos.y(), area.bottom() - self.height())))
        self.move(pos)
        self.show()
        self.edit.setFocus()


def entry_label(entry: BlockEntry) -> str:
    """"Pooling  (Pooling)" says nothing twice: the category is added only when the title does not start with it."""
    category = category_title(entry.category)
    if entry.title.lower().startswith(category.lower()[:6]):
        return entry.title
    return f"{entry.title}   ·  {category}"
