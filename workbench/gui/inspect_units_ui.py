"""The hidden-units panel's widgets: made, laid out and connected to the panel's slots, as Qt Designer's setupUi
would do (:func:`build_panel`); what the panel does with them is :mod:`workbench.gui.inspect_units`.

``self`` below is the :class:`~workbench.gui.inspect_units.HiddenUnitsPanel` being built: the widgets become its
attributes, under the names the panel and its tests use.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontDatabase, QPainter, QPalette
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget, QMenu, QPlainTextEdit,
                               QProgressBar, QPushButton, QRadioButton, QSizePolicy, QSpinBox, QSplitter, QStyle,
                               QStyledItemDelegate, QTabWidget, QToolButton, QTreeWidget, QVBoxLayout, QWidget)

from workbench.gui.forms import ElidedLabel
from workbench.gui.inspect_context import ContextPane
from workbench.gui.inspect_plots import HeatmapView, SaturationView
from workbench.gui.inspect_text import ActivationTextView
from workbench.gui.style import set_muted


def build_panel(self: Any) -> None:
    """Two rows of controls (record, weights, progress; layer, quantity, unit, export), then the views (units ×
    time, gate saturation) beside the side tabs (input, unit search, selection)."""
    root = QVBoxLayout(self)
    root.setContentsMargins(6, 6, 6, 6)
    root.setSpacing(6)

    bar = QHBoxLayout()
    bar.setSpacing(8)
    self.record_button = QPushButton("Record")
    self.record_button.setToolTip("Run the model over the input (Input tab) one step at a time and record "
                                  "every layer's states and gates, in the background")
    self.record_button.clicked.connect(self._on_record_clicked)
    bar.addWidget(self.record_button)
    bar.addWidget(QLabel("at"))
    self.weights_combo = WeightsCombo(self)
    self.weights_combo.setToolTip("Which weights to record: the latest, or the best seen in validation")
    self.weights_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    bar.addWidget(self.weights_combo)
    self.progress = QProgressBar()
    self.progress.setMaximumWidth(160)
    self.progress.setTextVisible(True)
    self.progress.hide()
    bar.addWidget(self.progress)
    self.status = ElidedLabel("")          # a long error ends in "…" (the tooltip has it all)
    self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    set_muted(self.status)
    bar.addWidget(self.status, 1)
    root.addLayout(bar)
    # second row: what to look at (layer, quantity, unit) and export
    bar = QHBoxLayout()
    bar.setSpacing(8)
    bar.addWidget(QLabel("Layer"))
    self.layer_combo = QComboBox()
    self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    self.layer_combo.currentIndexChanged.connect(self._on_layer_changed)
    bar.addWidget(self.layer_combo)
    self.quantity_combo = QComboBox()
    self.quantity_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    self.quantity_combo.setToolTip("What to show: the hidden state h, the cell state c (LSTM) or a gate")
    self.quantity_combo.currentIndexChanged.connect(self._on_quantity_changed)
    bar.addWidget(self.quantity_combo)
    bar.addWidget(QLabel("Unit"))
    self.unit_spin = QSpinBox()
    self.unit_spin.setKeyboardTracking(False)
    self.unit_spin.setToolTip("The unit shown in the text view (↑/↓ or J/K in the text view step through "
                              "units; click a row of the heatmap)")
    self.unit_spin.valueChanged.connect(self.set_unit)
    bar.addWidget(self.unit_spin)
    self.units_label = QLabel("")
    set_muted(self.units_label)
    bar.addWidget(self.units_label)
    bar.addStretch(1)
    self.export_button = QToolButton()
    self.export_button.setText("Export")
    self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    self.export_button.setMenu(_export_menu(self))
    bar.addWidget(self.export_button)
    root.addLayout(bar)

    split = QSplitter(Qt.Orientation.Horizontal)
    self.views = QTabWidget()
    units_time = QSplitter(Qt.Orientation.Vertical)
    self.heatmap = HeatmapView()
    self.heatmap.unitClicked.connect(self.set_unit)
    self.heatmap.positionClicked.connect(self._on_heatmap_position)
    units_time.addWidget(self.heatmap)
    text_box = QWidget()
    tl = QVBoxLayout(text_box)
    tl.setContentsMargins(0, 0, 0, 0)
    tl.setSpacing(2)
    self.text_caption = ElidedLabel(" ")
    self.text_caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    set_muted(self.text_caption)
    tl.addWidget(self.text_caption)
    self.text_view = ActivationTextView()
    self.text_view.unitStepRequested.connect(self._step_unit)
    self.text_view.spanSelected.connect(self._on_span_selected)
    self.text_view.positionClicked.connect(self._on_text_position)
    tl.addWidget(self.text_view, 1)
    # below the heatmap: the text view, and beside it what a model with a context read and wrote (hidden otherwise)
    below = QSplitter(Qt.Orientation.Horizontal)
    below.addWidget(text_box)
    self.context = ContextPane()
    self.context.stepChosen.connect(self._on_context_step)
    below.addWidget(self.context)
    below.setStretchFactor(0, 3)
    below.setStretchFactor(1, 2)
    below.setSizes([520, 380])
    below.setChildrenCollapsible(False)
    units_time.addWidget(below)
    units_time.setStretchFactor(0, 1)
    units_time.setStretchFactor(1, 1)
    units_time.setSizes([430, 370])
    self.views.addTab(units_time, "Units × time")
    self.saturation = SaturationView()
    self.saturation.unitChosen.connect(self._on_saturation_point)
    self.views.addTab(self.saturation, "Gate saturation")
    split.addWidget(self.views)

    self.side = QTabWidget()
    self.side.addTab(_input_tab(self), "Input")
    self.side.addTab(_search_tab(self), "Unit search")
    self.side.addTab(_selection_tab(self), "Selection")
    split.addWidget(self.side)
    split.setStretchFactor(0, 3)
    split.setStretchFactor(1, 1)
    split.setSizes([900, 330])
    root.addWidget(split, 1)
    self.splitter = split


def _input_tab(self: Any) -> QWidget:
    """What to record: part of the validation data, a typed text or a file; for a model that reads a context
    first (an encoder–decoder, a captioner), its input as the decoding view takes it."""
    w = QWidget()
    outer = QVBoxLayout(w)
    outer.setContentsMargins(0, 0, 0, 0)
    self.text_inputs = QWidget()
    lay = QVBoxLayout(self.text_inputs)
    self.source_group = QButtonGroup(w)
    self.src_valid = QRadioButton("Validation data")
    self.src_text = QRadioButton("This text:")
    self.src_file = QRadioButton("A file:")
    # checked while the model reads a context: its input is the one choice, so the button itself is never shown
    self.src_example = QRadioButton("Input", w)
    self.src_example.hide()
    for i, b in enumerate((self.src_valid, self.src_text, self.src_file, self.src_example)):
        self.source_group.addButton(b, i)
    self.src_valid.setChecked(True)
    row = QHBoxLayout()
    row.addWidget(self.src_valid)
    self.length_spin = QSpinBox()
    self.length_spin.setRange(10, 200_000)
    self.length_spin.setSingleStep(1000)
    self.length_spin.setValue(2000)
    self.length_spin.setSuffix(" characters")
    self.length_spin.setToolTip("How much of the validation data to record (task.sample_text)")
    self.length_spin.valueChanged.connect(lambda _v: self.src_valid.setChecked(True))
    row.addWidget(self.length_spin)
    row.addStretch(1)
    lay.addLayout(row)
    lay.addWidget(self.src_text)
    self.text_edit = QPlainTextEdit()
    self.text_edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    self.text_edit.setPlaceholderText("Type or paste a text here, then press Record.")
    self.text_edit.textChanged.connect(lambda: self.src_text.setChecked(True)
                                       if self.text_edit.toPlainText() else None)
    lay.addWidget(self.text_edit, 1)
    row = QHBoxLayout()
    row.addWidget(self.src_file)
    self.file_label = QLineEdit()
    self.file_label.setReadOnly(True)
    self.file_label.setPlaceholderText("no file chosen")
    row.addWidget(self.file_label, 1)
    choose = QPushButton("Choose…")
    choose.clicked.connect(self._choose_file)
    row.addWidget(choose)
    lay.addLayout(row)
    note = QLabel("Recording runs the model one step at a time in the background, at the weights chosen "
                  "beside Record, and keeps every layer's states and gates.")
    note.setWordWrap(True)
    set_muted(note)
    lay.addWidget(note)
    outer.addWidget(self.text_inputs, 1)
    outer.addWidget(_context_inputs(self), 1)
    return w


def _context_inputs(self: Any) -> QWidget:
    """The input of a model that reads a context first: a source sentence or an example's number (typed, or one of
    the validation examples), with its reference."""
    self.context_inputs = QWidget()
    lay = QVBoxLayout(self.context_inputs)
    self.example_label = QLabel("Input:")
    lay.addWidget(self.example_label)
    self.example_combo = QComboBox()
    self.example_combo.setEditable(True)
    self.example_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    self.example_combo.setToolTip("Type an input, or choose one of the validation examples")
    self.example_combo.currentTextChanged.connect(lambda _t: self._show_reference())
    self.example_combo.lineEdit().returnPressed.connect(self.record)
    lay.addWidget(self.example_combo)
    self.reference_label = QLabel("")
    set_muted(self.reference_label)
    lay.addWidget(self.reference_label)
    self.example_hint = QLabel("")
    self.example_hint.setWordWrap(True)
    set_muted(self.example_hint)
    lay.addWidget(self.example_hint)
    lay.addStretch(1)
    self.context_inputs.hide()
    return self.context_inputs


def _search_tab(self: Any) -> QWidget:
    """A feature of the text (or a pattern), Find units, and the units ranked by their correlation."""
    w = QWidget()
    lay = QVBoxLayout(w)
    form = QFormLayout()
    self.feature_combo = QComboBox()
    self.refresh_features()
    self.feature_combo.currentIndexChanged.connect(self._on_feature_changed)
    form.addRow("Feature", self.feature_combo)
    self.regex_edit = QLineEdit()
    self.regex_edit.setPlaceholderText(r"a regular expression, e.g. \bself\b")
    self.regex_edit.returnPressed.connect(self.run_search)
    self.regex_edit.setEnabled(False)
    form.addRow("Pattern", self.regex_edit)
    self.all_layers = QCheckBox("Search every layer")
    self.all_layers.setChecked(True)
    self.all_layers.setToolTip("Rank the units of every recurrent layer together (the chosen quantity); "
                               "otherwise only the layer shown")
    form.addRow("", self.all_layers)
    scope = QVBoxLayout()
    scope.setSpacing(0)
    self.scope_group = QButtonGroup(w)
    self.scope_valid = QRadioButton("the whole validation split")
    self.scope_valid.setToolTip("Correlate over every step of the validation split (LSTMVis matches across the "
                                "corpus); the split is read once, in the background, then every search is "
                                "immediate. The Selection tab's matches are looked for there too.")
    self.scope_text = QRadioButton("the recorded text")
    self.scope_text.setToolTip("Correlate over the recorded text only")
    for i, b in enumerate((self.scope_valid, self.scope_text)):
        self.scope_group.addButton(b, i)
        scope.addWidget(b)
    self.scope_valid.setChecked(True)
    self.scope_group.idToggled.connect(lambda _i, on: self._remember() if on else None)
    form.addRow("Search in", scope)
    lay.addLayout(form)
    row = QHBoxLayout()
    self.search_button = QPushButton("Find units")
    self.search_button.clicked.connect(self._on_search_clicked)
    row.addWidget(self.search_button)
    row.addStretch(1)
    lay.addLayout(row)
    self.search_note = QLabel("Rank the units by how well they follow a feature of the text (Pearson's r "
                              "over time; |r| ranks, the sign is kept).")
    self.search_note.setWordWrap(True)
    set_muted(self.search_note)
    lay.addWidget(self.search_note)
    self.results = QTreeWidget()
    self.results.setColumnCount(4)
    self.results.setHeaderLabels(["#", "layer", "unit", "r"])
    self.results.setRootIsDecorated(False)
    self.results.setUniformRowHeights(True)
    self.results.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    self.results.setItemDelegateForColumn(3, CorrelationDelegate(self.results))
    header = self.results.header()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
    self.results.currentItemChanged.connect(self._on_result_chosen)
    lay.addWidget(self.results, 1)
    return w


def _selection_tab(self: Any) -> QWidget:
    """The thresholds of hypothesis selection, the units on over the selected span and where else they are on."""
    w = QWidget()
    lay = QVBoxLayout(w)
    note = QLabel("Drag across a stretch of the text view (the inside of a string, an indented block): the "
                  "units on over all of it and off just before and after are listed, and the other places "
                  "where they all switch on are found in the validation split (or in the recorded text: Unit "
                  "search ▸ Search in) and underlined in the text view (LSTMVis).")
    note.setWordWrap(True)
    set_muted(note)
    lay.addWidget(note)
    form = QFormLayout()
    self.threshold_spin = QDoubleSpinBox()
    self.threshold_spin.setDecimals(2)
    self.threshold_spin.setRange(-100.0, 100.0)
    self.threshold_spin.setSingleStep(0.05)
    self.threshold_spin.setValue(0.3)
    self.threshold_spin.setToolTip("A unit is on where its value is at least this")
    self.threshold_spin.valueChanged.connect(lambda _v: self._update_selection())
    form.addRow("On above", self.threshold_spin)
    self.margin_spin = QSpinBox()
    self.margin_spin.setRange(0, 50)
    self.margin_spin.setValue(1)
    self.margin_spin.setSuffix(" steps")
    self.margin_spin.setToolTip("How many steps before and after the span a unit must be off")
    self.margin_spin.valueChanged.connect(lambda _v: self._update_selection())
    form.addRow("Off around", self.margin_spin)
    self.min_length_spin = QSpinBox()
    self.min_length_spin.setRange(0, 10_000)
    self.min_length_spin.setSpecialValueText("half the span")
    self.min_length_spin.setValue(0)
    self.min_length_spin.setToolTip("Matches shorter than this are not listed (0: half the selected span)")
    self.min_length_spin.valueChanged.connect(lambda _v: self._update_selection())
    form.addRow("Matches from", self.min_length_spin)
    lay.addLayout(form)
    self.selection_label = QLabel("No span selected.")
    self.selection_label.setWordWrap(True)
    lay.addWidget(self.selection_label)
    self.span_units = QListWidget()
    self.span_units.currentItemChanged.connect(self._on_span_unit_chosen)
    lay.addWidget(self.span_units, 1)
    self.matches_label = QLabel("")
    self.matches_label.setWordWrap(True)
    lay.addWidget(self.matches_label)
    self.matches_list = QListWidget()
    self.matches_list.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    self.matches_list.currentItemChanged.connect(self._on_match_chosen)
    self.matches_list.itemActivated.connect(self._on_match_activated)
    lay.addWidget(self.matches_list, 2)
    lay.addStretch(0)          # takes the room while the lists are hidden (no span, or no unit found)
    return w


def _export_menu(self: Any) -> QMenu:
    menu = QMenu(self)
    menu.addAction("Heatmap as PNG…", lambda: self._export_view_dialog(self.heatmap, "heatmap", "png"))
    menu.addAction("Heatmap as SVG…", lambda: self._export_view_dialog(self.heatmap, "heatmap", "svg"))
    menu.addAction("Text view as PNG…", lambda: self._export_view_dialog(self.text_view, "text", "png"))
    menu.addAction("Text view as SVG…", lambda: self._export_view_dialog(self.text_view, "text", "svg"))
    menu.addAction("Gate saturation as PNG…",
                   lambda: self._export_view_dialog(self.saturation, "saturation", "png"))
    menu.addAction("Gate saturation as SVG…",
                   lambda: self._export_view_dialog(self.saturation, "saturation", "svg"))
    menu.addSeparator()
    menu.addAction("Recording as NPZ (everything shown)…", lambda: self._export_file_dialog("npz"))
    menu.addAction("This layer and quantity as CSV…", lambda: self._export_file_dialog("csv"))
    return menu


class CorrelationDelegate(QStyledItemDelegate):
    """The r column: the number and a bar as long as |r|, red for positive, blue for negative."""

    def paint(self, painter: QPainter, option, index) -> None:
        value = index.data(Qt.ItemDataRole.UserRole)
        super().paint(painter, option, index)
        if not isinstance(value, float):
            return
        rect = option.rect.adjusted(52, 5, -4, -5)
        if rect.width() <= 4:
            return
        color = QColor("#d6604d" if value > 0 else "#4393c3")
        if option.state & QStyle.StateFlag.State_Selected:   # on the selection colour: the selection's text colour
            color = QColor(option.palette.color(QPalette.ColorRole.HighlightedText))
        painter.save()
        painter.fillRect(QRect(rect.left(), rect.top(), int(rect.width() * min(1.0, abs(value))), rect.height()),
                         color)
        painter.restore()

    def sizeHint(self, option, index) -> QSize:
        s = super().sizeHint(option, index)
        return QSize(max(s.width(), 140), s.height())


class WeightsCombo(QComboBox):
    """Refreshes its list when it opens: a training run may have saved new (or best) weights meanwhile."""

    def __init__(self, panel: Any):
        super().__init__(panel)
        self._panel = panel

    def showPopup(self) -> None:  # noqa: N802 - Qt override
        self._panel.refresh_weights()
        super().showPopup()
