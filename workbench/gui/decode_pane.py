"""The panes of the decoding view: one decode's search tree, its n-best list and its attention map, and the legend
of the tree's colours.  They draw what :class:`~workbench.gui.inspect_decode.DecodeInspector` hands them and compute
nothing.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QSplitter, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from workbench.gui.attention_view import AttentionView
from workbench.gui.decode_views import SearchTreeView, TreeTheme, line_text
from workbench.gui.forms import ElidedLabel, FlowLayout


# ---- one pane: a tree, its n-best list and the attention map ---------------------------------------------------

class DecodePane(QWidget):
    """The result of one decode: the search tree, the n-best list beside it, and the attention map under that."""

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = title
        # one line that ends in "…" when narrow: a header with a long prefix and output must not widen the view
        self.header = ElidedLabel(title)
        font = self.header.font()
        font.setBold(True)
        self.header.setFont(font)
        self.tree = SearchTreeView()
        self.nbest = QTreeWidget()
        self.nbest.setHeaderLabels(["#", "output", "log p", "normalised"])
        self.nbest.setRootIsDecorated(False)
        self.nbest.setUniformRowHeights(True)
        self.nbest.setAlternatingRowColors(True)
        head = self.nbest.header()
        head.setStretchLastSection(False)
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        head.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.nbest.setToolTip("The n-best list: finished hypotheses ranked by length-normalised score")
        self.attention = AttentionView()
        self.attention_title = QLabel("Attention")
        self.attention_title.setWordWrap(True)
        self.attention_title.setFont(font)
        nbest_box = QWidget()
        nbest_layout = QVBoxLayout(nbest_box)
        nbest_layout.setContentsMargins(0, 4, 0, 0)
        nbest_layout.setSpacing(2)
        nbest_label = QLabel("n-best list")
        nbest_label.setFont(font)
        nbest_layout.addWidget(nbest_label)
        nbest_layout.addWidget(self.nbest, 1)
        att_box = QWidget()
        att_layout = QVBoxLayout(att_box)
        att_layout.setContentsMargins(0, 4, 0, 0)
        att_layout.setSpacing(2)
        att_layout.addWidget(self.attention_title)
        att_layout.addWidget(self.attention, 1)
        # trees are wide and short, attention maps about square: the tree gets the width, the rest sits below
        self.bottom = QSplitter(Qt.Orientation.Horizontal)
        self.bottom.addWidget(nbest_box)
        self.bottom.addWidget(att_box)
        self.bottom.setStretchFactor(0, 1)
        self.bottom.setStretchFactor(1, 1)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.tree)
        self.split.addWidget(self.bottom)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        self.split.setSizes([460, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addWidget(self.split, 1)
        self.weights = "current"
        self.has_attention: Optional[bool] = None
        self.nbest.currentItemChanged.connect(self._on_nbest)

    def arrange(self, beside: bool) -> None:
        """The n-best list and the attention map beside the tree (stacked panes) or below it."""
        if beside == (self.split.orientation() == Qt.Orientation.Horizontal):
            return
        if beside:
            self.split.setOrientation(Qt.Orientation.Horizontal)
            self.bottom.setOrientation(Qt.Orientation.Vertical)
            self.split.setSizes([680, 340])
            self.bottom.setSizes([110, 260])
        else:
            self.split.setOrientation(Qt.Orientation.Vertical)
            self.bottom.setOrientation(Qt.Orientation.Horizontal)
            self.split.setSizes([460, 300])
            self.bottom.setSizes([400, 400])

    def set_document(self, doc: dict[str, Any], header: str) -> None:
        self.header.setText(header)
        self.tree.set_document(doc)
        self.nbest.blockSignals(True)
        self.nbest.clear()
        bold = QFont(self.nbest.font())
        bold.setBold(True)
        for rank, alt in enumerate(doc.get("alternatives") or []):
            shown = ("… " if doc.get("continues_prompt") else "") + line_text(str(alt.get("text", "")))
            item = QTreeWidgetItem([str(rank + 1), shown + ("" if alt.get("finished") else "  (unfinished)"),
                                    _fmt(alt.get("score")), _fmt(alt.get("normalized_score"))])
            item.setData(0, Qt.ItemDataRole.UserRole, alt.get("node"))
            item.setToolTip(1, str(alt.get("text", "")))
            for col in (0, 2, 3):
                item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if rank == 0:
                for col in range(4):
                    item.setFont(col, bold)
            self.nbest.addTopLevelItem(item)
        self.nbest.blockSignals(False)

    def set_message(self, text: str, header: str | None = None) -> None:
        if header is not None:
            self.header.setText(header)
        self.tree.set_message(text)
        self.nbest.clear()
        self.attention.set_message("")

    def clear(self, text: str) -> None:
        """Back to how a new pane looks (another project): its title, ``text`` instead of a tree, no n-best list
        and no attention map — nothing of the previous project's decode stays in the header or the titles."""
        self.set_message(text, self.title)
        self.attention_title.setText("Attention")
        self.attention.set_message(AttentionView.PLACEHOLDER)
        self.weights = "current"
        self.has_attention = None

    def select_rank(self, rank: int, *, center: bool = True) -> None:
        item = self.nbest.topLevelItem(rank)
        if item is not None:
            self._center = center
            try:
                self.nbest.setCurrentItem(item)
            finally:
                self._center = True

    _center = True

    def _on_nbest(self, current: QTreeWidgetItem | None, _previous: Any = None) -> None:
        if current is None:
            return
        nid = current.data(0, Qt.ItemDataRole.UserRole)
        if isinstance(nid, int):
            self.tree.select_node(nid, center=self._center)


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) else "—"


# ---- the legend -----------------------------------------------------------------------------------------------

def _css(color: QColor) -> str:
    return f"rgba({color.red()}, {color.green()}, {color.blue()}, {color.alphaF():.2f})"


class Legend(QWidget):
    """What the colours of the tree mean: one row when there is room, more rows when the view is narrow."""

    ENTRIES = (("best", "best hypothesis"), ("nbest", "other n-best / finished"), ("forced", "forced prefix"),
               ("kept", "in the beam"), ("dead", "beam that died out"), ("pruned", "pruned candidate"))

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        flow = FlowLayout(self)
        flow.setContentsMargins(2, 0, 2, 0)
        self.swatches: list[tuple[QLabel, str]] = []
        for kind, text in self.ENTRIES:
            entry = QWidget()           # a swatch and its words wrap together
            row = QHBoxLayout(entry)
            row.setContentsMargins(0, 0, 0, 0)
            row.setSpacing(5)
            swatch = QLabel("a")
            swatch.setAlignment(Qt.AlignmentFlag.AlignCenter)
            swatch.setFixedSize(22, 16)
            self.swatches.append((swatch, kind))
            row.addWidget(swatch)
            row.addWidget(QLabel(text))
            flow.addWidget(entry)
        self.restyle()

    def restyle(self) -> None:
        t = TreeTheme(self.palette())
        # (fill, border, border style, text): as the tree draws them, the token's colour included
        looks = {"best": (t.best, t.best, "solid", t.best_text), "nbest": (t.nbest_fill, t.nbest, "solid", t.text),
                 "forced": (t.forced_fill, t.forced, "dashed", t.text), "kept": (t.box, t.border, "solid", t.text),
                 "dead": (t.box, t.faint, "solid", t.muted), "pruned": (t.background, t.faint, "dotted", t.faint)}
        for swatch, kind in self.swatches:
            fill, border, style, text = looks[kind]
            swatch.setStyleSheet(f"background: {_css(fill)}; border: 1px {style} {_css(border)}; "
                                 f"border-radius: 3px; color: {_css(text)}; font-weight: bold;")

    def changeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self.restyle()
