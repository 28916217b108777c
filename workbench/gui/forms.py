"""Forms generated from parameter dataclasses, so that plugins never write Qt to get an editor.

:class:`ParamsForm` turns :func:`workbench.schema.params.field_info` into one editor per field: a spin box
with the declared range for numbers, a combo box for choices and for cell choosers (``ui="cell"``), a check box
for booleans, a line edit for text (with a browse button for ``ui="path"``).  The form never changes a project
itself: it hands each edited value to a ``commit(name, value)`` callback, which answers with ``None`` when the
value was accepted or with the reason it was refused; the reason is then shown right under the field.

Two small widgets that keep long content from widening the window live here too: :class:`ElidedLabel` and
:class:`ScrollPage`.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QPainter, QPalette, QValidator
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QFrame, QHBoxLayout, QLabel, QLayout, QLayoutItem, QLineEdit, QScrollArea,
                               QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from workbench.gui.style import help_html, set_muted
from workbench.schema.params import FieldInfo, field_info

Commit = Callable[[str, Any], "str | None"]

_INT_LIMIT = 2 ** 31 - 1   # QSpinBox holds a C int
_FLOAT_LIMIT = 1e18        # wide enough for any setting, short enough to keep the spin box narrow


def is_dark(widget: QWidget) -> bool:
    return widget.palette().color(QPalette.ColorRole.Window).lightness() < 128


def error_color(widget: QWidget) -> QColor:
    """A red that stays readable on both light and dark window backgrounds."""
    return QColor("#ff7b72") if is_dark(widget) else QColor("#b3261e")


def show_note(label: QLabel, text: str, error: bool = False) -> None:
    """A status or hint message on ``label``: an error in :func:`error_color`, anything else muted (the same
    colour every time, also right after an error: ``style.set_muted``)."""
    label.setText(text)
    if error:
        pal = label.palette()
        pal.setColor(QPalette.ColorRole.WindowText, error_color(label))
        label.setPalette(pal)
    else:
        set_muted(label)


def pretty_name(name: str) -> str:
    """``hidden_size`` -> ``hidden size``: labels read as words, the tooltip keeps the exact key."""
    return name.replace("_", " ")


def field_tooltip(info: FieldInfo) -> str:
    parts = [f"<b>{info.name}</b>"]
    if info.help:
        parts.append(help_html(info.help))
    if info.min is not None or info.max is not None:
        lo = "−∞" if info.min is None else f"{info.min:g}"
        hi = "∞" if info.max is None else f"{info.max:g}"
        parts.append(f"range {lo} … {hi}")
    parts.append(f"default: {html.escape(repr(info.default))}")
    return "<br>".join(parts)


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-15)
        except (TypeError, ValueError):
            return False
    return a == b and type(a) is type(b)


class FloatSpinBox(QDoubleSpinBox):
    """A double spin box that shows ``0.002`` and ``1e-05`` instead of ``0.00200000`` and accepts what it shows."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setDecimals(12)
        self.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt override
        return f"{value:.10g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt override
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        stripped = text.strip()
        try:
            value = float(stripped)
        except ValueError:
            # A half-typed number ("1e", "-", "0.") may still become valid.
            ok = stripped == "" or all(c in "0123456789.eE+-" for c in stripped)
            return QValidator.State.Intermediate if ok else QValidator.State.Invalid
        if not math.isfinite(value):
            return QValidator.State.Invalid
        if self.minimum() <= value <= self.maximum():
            return QValidator.State.Acceptable
        return QValidator.State.Intermediate

    def fixup(self, text: str) -> str:
        return self.textFromValue(self.value())


class WheelGuard(QObject):
    """Keeps the mouse wheel from changing a field the user did not pick.

    A spin box or combo box turns under the wheel as soon as the pointer is over it, so scrolling a form changed
    whatever field passed under the pointer ("three notches over batch size turn 16 into 13").  Guarded, a field
    takes the wheel only while it has the keyboard focus (a click or Tab gives it that); otherwise the wheel goes
    to the scrolling page around it."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            event.ignore()          # not accepted: Qt hands it to the parent, the scroll area
            return True
        return False


_WHEEL_GUARD: WheelGuard | None = None


def guard_wheel(widget: QWidget) -> QWidget:
    """See :class:`WheelGuard`; the wheel no longer gives the field the focus either."""
    global _WHEEL_GUARD
    if _WHEEL_GUARD is None:
        _WHEEL_GUARD = WheelGuard(QApplication.instance())
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    widget.installEventFilter(_WHEEL_GUARD)
    return widget


class _UndoToProject(QObject):
    """Ctrl+Z / Ctrl+Shift+Z in a form's field undo the project's edits (the window's Edit ▸ Undo), unless the
    field holds typing not yet committed, which the field itself undoes first.  A text field otherwise takes those
    keys for its own, and its history is empty right after a commit."""

    def __init__(self, form: "ParamsForm"):
        super().__init__(form)
        self.form = form

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() != QEvent.Type.ShortcutOverride or not isinstance(event, QKeyEvent):
            return False
        if not (event.matches(QKeySequence.StandardKey.Undo) or event.matches(QKeySequence.StandardKey.Redo)):
            return False
        row = next((r for r in self.form.rows.values() if r.editor is obj), None)
        if row is None or self.form.typing_pending(row):
            return False
        event.ignore()              # not taken by the field: the window's shortcut (Edit ▸ Undo) fires
        return True


class _Row:
    """One field: its editor, how to read and write it, and the label that shows a refusal."""

    def __init__(self, info: FieldInfo, editor: QWidget, read: Callable[[], Any], write: Callable[[Any], None],
                 keeps_text: bool, container: QWidget, message: QLabel):
        self.info = info
        self.editor = editor
        self.read = read
        self.write = write
        self.keeps_text = keeps_text      # line edits keep a refused text so the user can fix it
        self.container = container
        self.message = message


class ParamsForm(QWidget):
    """An editor for one parameters dataclass.  ``commit(name, value)`` returns ``None`` or the refusal reason.

    ``set_values`` shows the model's values without committing anything (used after undo/redo).
    """

    committed = Signal(str, object)      # name, value: accepted by the callback
    refused = Signal(str, str)           # name, message

    def __init__(self, params_cls: type, values: dict[str, Any], commit: Commit, *, registry: Any = None,
                 base_dir: Callable[[], str | None] | None = None, parent: QWidget | None = None,
                 skip: tuple[str, ...] = ()):
        super().__init__(parent)
        self._commit_fn = commit
        self._registry = registry
        self._base_dir = base_dir or (lambda: None)
        self._values: dict[str, Any] = {}
        self.rows: dict[str, _Row] = {}
        self._undo_filter = _UndoToProject(self)
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._layout = layout
        for info in field_info(params_cls):
            if info.name in skip:
                continue
            row = self._make_row(info)
            self.rows[info.name] = row
            label = QLabel(pretty_name(info.name))
            label.setToolTip(field_tooltip(info))
            label.setBuddy(row.editor)
            layout.addRow(label, row.container)
        if not self.rows:
            layout.addRow(QLabel("<i>no settings</i>"))
        self.set_values(values)

    # ---- public --------------------------------------------------------------------------------------------
    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (missing names keep their defaults); clears any refusal message."""
        for name, row in self.rows.items():
            value = values.get(name, row.info.default)
            self._values[name] = value
            self._show(row, value)
            self._set_message(row, "")

    def editor(self, name: str) -> QWidget:
        return self.rows[name].editor

    def message(self, name: str) -> str:
        row = self.rows[name]
        return row.message.text() if not row.message.isHidden() else ""

    def value(self, name: str) -> Any:
        return self._values[name]

    def values(self) -> dict[str, Any]:
        return dict(self._values)

    def typing_pending(self, row: _Row) -> bool:
        """Whether the field shows typing that is not committed yet (a number or text without Enter)."""
        editor = row.editor
        if isinstance(editor, QAbstractSpinBox):
            shown = editor.textFromValue(editor.value()) if isinstance(editor, (QSpinBox, QDoubleSpinBox)) else ""
            return editor.text() != shown
        if isinstance(editor, QLineEdit):
            committed = self._values.get(row.info.name)
            return editor.text().strip() != ("" if committed is None else str(committed)).strip()
        return False

    def commit_pending(self) -> None:
        """Commit what line edits hold (e.g. before saving, when the user never pressed Enter)."""
        for row in self.rows.values():
            if isinstance(row.editor, QAbstractSpinBox):
                row.editor.interpretText()   # a typed number without Enter; its valueChanged commits it
            elif isinstance(row.editor, QLineEdit):
                self._commit(row)

    # ---- building ------------------------------------------------------------------------------------------
    def _make_row(self, info: FieldInfo) -> _Row:
        container = QWidget()
        box = QVBoxLayout(container)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(1)
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        box.addLayout(line)
        message = QLabel()
        message.setWordWrap(True)
        message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        pal = message.palette()
        pal.setColor(QPalette.ColorRole.WindowText, error_color(self))
        message.setPalette(pal)
        message.hide()
        box.addWidget(message)

        tip = field_tooltip(info)
        keeps_text = False
        editor: QWidget
        if info.ui == "cell" or (info.choices and not info.optional):
            editor = QComboBox()
            options = self._cell_options() if info.ui == "cell" else [(str(c), c) for c in info.choices]
            for text, data in options:
                editor.addItem(text, data)
            editor.currentIndexChanged.connect(lambda _i, n=info.name: self._commit(self.rows[n]))
            read = self._combo_reader(editor)
            write = self._combo_writer(editor, info)
        elif info.base is bool and not info.optional:
            editor = QCheckBox()
            editor.toggled.connect(lambda _c, n=info.name: self._commit(self.rows[n]))
            read = editor.isChecked
            write = lambda v, e=editor: e.setChecked(bool(v))  # noqa: E731
        elif info.base is int and not info.optional:
            editor = QSpinBox()
            editor.setRange(int(max(info.min, -_INT_LIMIT)) if info.min is not None else -_INT_LIMIT,
                            int(min(info.max, _INT_LIMIT)) if info.max is not None else _INT_LIMIT)
            editor.setKeyboardTracking(False)   # commit on Enter / focus out / arrows, not on every digit
            editor.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
            editor.valueChanged.connect(lambda _v, n=info.name: self._commit(self.rows[n]))
            read = editor.value
            write = lambda v, e=editor: e.setValue(int(v))  # noqa: E731
        elif info.base is float and not info.optional:
            editor = FloatSpinBox()
            editor.setRange(float(info.min) if info.min is not None else -_FLOAT_LIMIT,
                            float(info.max) if info.max is not None else _FLOAT_LIMIT)
            editor.setKeyboardTracking(False)
            editor.valueChanged.connect(lambda _v, n=info.name: self._commit(self.rows[n]))
            read = editor.value
            write = lambda v, e=editor: e.setValue(float(v))  # noqa: E731
        else:
            # Text, and any ``X | None`` field: an empty line means "none".
            editor = QLineEdit()
            keeps_text = True
            if info.optional:
                editor.setPlaceholderText("none")
            editor.editingFinished.connect(lambda n=info.name: self._commit(self.rows[n]))
            optional = info.optional
            read = (lambda e=editor: e.text().strip() or None) if optional else editor.text
            write = lambda v, e=editor: e.setText("" if v is None else str(v))  # noqa: E731
        editor.setToolTip(tip)
        if isinstance(editor, (QAbstractSpinBox, QComboBox)):
            guard_wheel(editor)
        editor.installEventFilter(self._undo_filter)
        editor.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        editor.setMinimumWidth(60)
        line.addWidget(editor, 1)
        if info.ui == "path":
            browse = QToolButton()
            browse.setText("…")
            browse.setToolTip(f"Choose a file for {info.name}")
            browse.clicked.connect(lambda _c=False, n=info.name: self._browse(n))
            line.addWidget(browse)
        return _Row(info, editor, read, write, keeps_text, container, message)

    def _cell_options(self) -> list[tuple[str, str]]:
        cells = dict(self._registry.items.get("cell", {})) if self._registry is not None else {}
        return [(f"{spec.title} ({cid})" if spec.title and spec.title != cid else cid, cid)
                for cid, spec in sorted(cells.items(), key=lambda kv: kv[0])]

    @staticmethod
    def _combo_reader(combo: QComboBox) -> Callable[[], Any]:
        return lambda: combo.currentData()

    @staticmethod
    def _combo_writer(combo: QComboBox, info: FieldInfo) -> Callable[[Any], None]:
        def write(value: Any) -> None:
            index = combo.findData(value)
            if index < 0:
                # A value the form does not offer (a cell whose plugin is not installed): show it as such.
                combo.addItem(f"{value} (not installed)", value)
                index = combo.count() - 1
            combo.setCurrentIndex(index)
        return write

    # ---- showing / committing ------------------------------------------------------------------------------
    def _show(self, row: _Row, value: Any) -> None:
        row.editor.blockSignals(True)
        try:
            row.write(value)
        except (TypeError, ValueError):
            self._set_message(row, f"the stored value {value!r} does not fit this field")
        finally:
            row.editor.blockSignals(False)

    def _set_message(self, row: _Row, text: str) -> None:
        row.message.setText(text)
        row.message.setVisible(bool(text))
        # a red frame too, so that a refused field is found without reading every message
        row.editor.setProperty("refused", bool(text))
        row.editor.setStyleSheet(f"border: 1px solid {error_color(self).name()};" if text and row.keeps_text
                                 else "")

    def _commit(self, row: _Row) -> None:
        value = row.read()
        name = row.info.name
        if same_value(value, self._values.get(name)):
            if not row.keeps_text:
                self._set_message(row, "")
            return
        error = self._commit_fn(name, value)
        if error:
            self._set_message(row, _strip_owner(error, name))
            if not row.keeps_text:
                self._show(row, self._values.get(name))
            self.refused.emit(name, error)
            return
        self._values[name] = value
        self._set_message(row, "")
        self.committed.emit(name, value)

    def _browse(self, name: str) -> None:
        row = self.rows[name]
        base = self._base_dir()
        current = row.read() or ""
        start = str(Path(base, current)) if base and current else (current or base or "")
        if _wants_folder(row.info):
            path = QFileDialog.getExistingDirectory(self, f"Choose {pretty_name(name)}", start)
        else:
            path, _ = QFileDialog.getOpenFileName(self, f"Choose {pretty_name(name)}", start, DATA_FILTER)
        if not path:
            return
        if base:
            # Project files store data paths relative to themselves, so a project folder can be moved whole.
            try:
                rel = os.path.relpath(path, base)
                if not rel.startswith(".."):
                    path = rel
            except ValueError:  # another drive on Windows
                pass
        row.write(path)
        self._commit(row)


#: the file picker's choices: the kinds of data files tasks read first, everything else a click away
DATA_FILTER = ("Data files (*.csv *.tsv *.tab *.txt *.conll *.npz *.json);;Text files (*.txt *.csv *.tsv);;"
               "All files (*)")


def _wants_folder(info: FieldInfo) -> bool:
    """A path parameter whose help says it is a folder (PTB's data_dir) gets a folder picker."""
    return (info.help or "").lower().startswith(("folder", "directory"))


def _strip_owner(message: str, name: str) -> str:
    """``rnn.hidden_size: 0 is below the minimum 1`` -> ``0 is below the minimum 1`` (it sits under the field)."""
    head, sep, rest = message.partition(": ")
    if sep and rest and all(c.isalnum() or c in "._-" for c in head):
        return rest
    return message


class _SectionHeader(QToolButton):
    """A section's fold button whose title ends in "…" when the inspector is narrower than it.

    A tool button asks for its whole text as its minimum width: "Task: Sequence to sequence (translation)" alone
    made the inspector's form wider than the dock, so its fields were cut off at the right.
    """

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self._title = title
        self.setText(title)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)

    def title(self) -> str:
        return self._title

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self.fontMetrics().horizontalAdvance("M…") * 4), hint.height())

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        # what the arrow and the margins take: the size hint less the advance of the text shown now
        metrics = self.fontMetrics()
        chrome = super().sizeHint().width() - metrics.horizontalAdvance(self.text())
        shown = metrics.elidedText(self._title, Qt.TextElideMode.ElideRight, max(0, self.width() - chrome))
        if shown != self.text():
            self.setText(shown)
        self.setToolTip(self._title if shown != self._title else "")


class CollapsibleSection(QWidget):
    """A titled group that folds away: an arrow button over its content."""

    toggled = Signal(bool)

    def __init__(self, title: str, key: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.key = key
        self.header = _SectionHeader(title)
        self.header.setCheckable(True)
        self.header.setChecked(True)
        self.header.setArrowType(Qt.ArrowType.DownArrow)
        self.header.setAutoRaise(True)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        font = self.header.font()
        font.setBold(True)
        self.header.setFont(font)
        self.body = QWidget()
        self.body_layout = QVBoxLayout(self.body)
        self.body_layout.setContentsMargins(14, 2, 2, 8)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.body)
        self.header.toggled.connect(self._on_toggled)

    def add(self, widget: QWidget) -> QWidget:
        self.body_layout.addWidget(widget)
        return widget

    def is_expanded(self) -> bool:
        return self.header.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        self.header.setChecked(expanded)

    def _on_toggled(self, expanded: bool) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)
        self.toggled.emit(expanded)


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" when it is narrower than its text, with the whole text in the tooltip.

    A plain QLabel asks for the width of its whole text as its minimum, so one long message (a decoding header, a
    failed run's reason) can widen the panel, push the docks aside or widen the window.  This one asks for a few
    characters' width; ``text()`` is still the whole text.

    With a ``tip`` (a plot's title and what the plot shows), the tooltip is always the text in bold above the tip;
    otherwise it is the whole text while the label cuts it, unless the caller set a tooltip of its own.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None, *, tip: str = ""):
        super().__init__(text, parent)
        self._tip = tip
        self._own_tip = ""          # the tooltip this label set itself, not one set by a caller
        self.setTextFormat(Qt.TextFormat.PlainText)
        self._update_tip()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        super().setText(text)
        self._update_tip()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self.fontMetrics().horizontalAdvance("M…") * 3), hint.height())

    def elided_text(self) -> str:
        """The text as drawn at the label's current width."""
        width = self.contentsRect().width() - 2 * max(0, self.margin())
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, max(0, width))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._update_tip()

    def paintEvent(self, _event: Any) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        rect = self.contentsRect().adjusted(self.margin(), self.margin(), -self.margin(), -self.margin())
        self.style().drawItemText(painter, rect, int(self.alignment()) | Qt.AlignmentFlag.AlignVCenter,
                                  self.palette(), self.isEnabled(), self.elided_text(), self.foregroundRole())
        painter.end()

    def _update_tip(self) -> None:
        if self.toolTip() not in ("", self._own_tip):
            return
        if self._tip:
            self._own_tip = f"<b>{html.escape(self.text())}</b><br>{html.escape(self._tip)}"
        else:
            self._own_tip = self.text() if self.elided_text() != self.text() else ""
        self.setToolTip(self._own_tip)


class ScrollPage(QScrollArea):
    """A tab page whose content scrolls when the tab is smaller than the content's minimum size.

    Without it, a QTabWidget asks for the largest minimum size of all its pages, so one wide page (the training
    dashboard, the decoding view) makes the main window squeeze its docks or grow.  In a page at least as large as
    the content's minimum, the content simply fills it and no scroll bar shows.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.content = QWidget()
        self.content.setObjectName("scrollPageContent")
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(0, 0, 0, 0)
        self.setWidget(self.content)

    def add(self, widget: QWidget) -> QWidget:
        """Put ``widget`` in the page (it fills it)."""
        self.content.layout().addWidget(widget)
        return widget


class FlowLayout(QLayout):
    """Items side by side like words in a paragraph, on as many rows as the width needs.

    The decoding tree's legend is about 850 px in one row; in a QHBoxLayout that is also its minimum width, which
    widened the whole window.  Here the minimum is the widest single item and the height follows the width.  A
    widget with the property ``flowBreak`` set starts a new row (a plot legend's next run or layer).  The size hint
    is everything on one row, or with ``compact_hint`` the widest item (a legend that should not ask for room).
    """

    def __init__(self, parent: QWidget | None = None, h_spacing: int = 15, v_spacing: int = 3,
                 compact_hint: bool = False):
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._h_spacing = h_spacing
        self._v_spacing = v_spacing
        self._compact_hint = compact_hint

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 - Qt override
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 - Qt override
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802 - Qt override
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802 - Qt override
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802 - Qt override
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        """Everything on one row (the widest item with ``compact_hint``)."""
        if self._compact_hint:
            return self.minimumSize()
        shown = [item.sizeHint() for item in self._items if not item.isEmpty()]
        m = self.contentsMargins()
        width = sum(h.width() for h in shown) + self._h_spacing * max(0, len(shown) - 1)
        height = max((h.height() for h in shown), default=0)
        return QSize(width + m.left() + m.right(), height + m.top() + m.bottom())

    def minimumSize(self) -> QSize:  # noqa: N802 - Qt override
        """The widest item: every other width wraps."""
        size = QSize(0, 0)
        for item in self._items:
            if not item.isEmpty():
                size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _arrange(self, rect: QRect, *, move: bool) -> int:
        """Place the items (when ``move``) in ``rect``; returns the height they take."""
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, row_height = area.x(), area.y(), 0
        for item in self._items:
            if item.isEmpty():
                continue
            hint = item.sizeHint()
            widget = item.widget()
            breaks = widget is not None and bool(widget.property("flowBreak"))
            if x > area.x() and (breaks or x + hint.width() > area.x() + area.width()):
                x, y, row_height = area.x(), y + row_height + self._v_spacing, 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._h_spacing
            row_height = max(row_height, hint.height())
        return y + row_height - rect.y() + m.bottom()
