"""The problems dock: what keeps the model from training, in plain words; a click selects the node concerned.

The problems themselves come from :func:`workbench.core.graph.analyze` (through ``document.report()``); this
panel only lists them and works out which node each one is about.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QPalette
from PySide6.QtWidgets import QApplication, QListWidget, QListWidgetItem, QStyle, QVBoxLayout, QWidget

# Fallback: a node id written as ``ID.port``, ``ID:`` or ``'ID'`` (a bare word could be plain English: "input").
_NAMED = re.compile(r"(?<![\w\-.'])([A-Za-z_][\w\-]*)(?=[.:])|'([A-Za-z_][\w\-]*)'")
# Most specific first: the node a problem is about, by the phrasings analyze() uses.
_PATTERNS = (
    re.compile(r"^node ([A-Za-z_][\w\-]*)\b"),                       # node rnn: required input ...
    re.compile(r"^input ([A-Za-z_][\w\-]*)\."),                      # input rnn.x has more than one link
    re.compile(r"^link [\w\-]+\.[\w\-]+ -> ([A-Za-z_][\w\-]*)\."),   # link a.y -> b.x: ... (the receiving node)
    re.compile(r"^([A-Za-z_][\w\-]*)\.[\w\-]+ gives size"),          # head.y gives size 10 but ...
    re.compile(r"cycle through ([A-Za-z_][\w\-]*)"),                 # the graph has a cycle through a, b
)


def problem_node(problem: str, node_ids: Any) -> str | None:
    """The id of the node a problem is about, if it names one of ``node_ids``."""
    ids = set(node_ids)
    for pattern in _PATTERNS:
        m = pattern.search(problem)
        if m and m.group(1) in ids:
            return m.group(1)
    for m in _NAMED.finditer(problem):
        word = m.group(1) or m.group(2)
        if word in ids:
            return word
    return None


def plain_words(problem: str) -> str:
    """Small rewordings of analyze()'s messages for the panel: sentence case, no internal arrows."""
    text = problem.replace(" -> ", " → ")
    return text[:1].upper() + text[1:]


class ProblemsPanel(QWidget):
    """A list of the graph's problems; ``nodeActivated(node_id)`` when the user clicks one that names a node."""

    nodeActivated = Signal(str)

    def __init__(self, document: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc = document
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)
        self.list.setUniformItemSizes(False)
        self.list.itemClicked.connect(self._on_item)
        self.list.itemActivated.connect(self._on_item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        document.problemsChanged.connect(self.refresh)
        self.refresh()

    def problems(self) -> list[str]:
        return list(self.doc.report().problems)

    def refresh(self, *_args: Any) -> None:
        self.list.clear()
        problems = self.problems()
        style = QApplication.style()
        if not problems:
            item = QListWidgetItem(style.standardIcon(QStyle.StandardPixmap.SP_DialogApplyButton),
                                   "No problems: the model graph is complete.")
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.list.addItem(item)
            return
        icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        nodes = self.doc.graph.nodes
        for problem in problems:
            node = problem_node(problem, nodes)
            item = QListWidgetItem(icon, plain_words(problem))
            item.setData(Qt.ItemDataRole.UserRole, node)
            item.setToolTip(problem + ("\n\nClick to select the node on the canvas." if node else ""))
            if node is None:
                item.setForeground(QBrush(self.palette().color(QPalette.ColorRole.Text)))
            self.list.addItem(item)

    def count(self) -> int:
        return len(self.problems())

    def _on_item(self, item: QListWidgetItem) -> None:
        node = item.data(Qt.ItemDataRole.UserRole)
        if node and node in self.doc.graph.nodes:
            self.nodeActivated.emit(node)
