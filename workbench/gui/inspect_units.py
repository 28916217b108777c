"""Looking inside: the hidden-units panel (heatmap, text view, unit search, hypothesis selection, saturation).

The panel shows what :mod:`workbench.core.recording` computes and computes nothing about the model itself: a
recording is made by :class:`workbench.core.recording.Recorder` in a worker thread (a
:class:`~workbench.gui.jobs.JobRunner`, which also writes the exports), on a snapshot of the project taken when
Record is pressed, so editing or training while it runs is safe.  Everything after that (correlations, spans,
saturation) is numpy on arrays already in memory and runs on the GUI thread.  The panel's widgets are made in
:mod:`workbench.gui.inspect_units_ui`.

``seqwb record FILE --npz OUT`` writes the arrays this panel shows; ``seqwb units`` ranks units as the Unit
search tab does.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QCoreApplication, QPoint, Qt, Signal
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QFileDialog, QListWidgetItem, QMessageBox, QTreeWidgetItem, QWidget

from workbench.core import features, project, recording
from workbench.gui.forms import show_note
from workbench.gui.inspect_units_ui import build_panel
from workbench.gui.jobs import Job, JobRunner

QUANTITY_TITLES = {"h": "h (hidden state)", "c": "c (cell state)", "i": "i (input gate)", "f": "f (forget gate)",
                   "o": "o (output gate)", "g": "g (candidate)", "r": "r (reset gate)", "z": "z (update gate)",
                   "n": "n (candidate)"}
REGEX_ITEM = "__regex__"


def snapshot(project: Any) -> Any:
    """A copy of the project's design that the worker can read while the window edits the original: the graph
    and configs are copied (small); the checkpoint is shared, as training replaces it rather than changing it."""
    from dataclasses import replace

    from workbench.core.project import Project
    copy = Project.from_json(project.to_json())
    return replace(copy, vocab=list(project.vocab) if project.vocab else None, checkpoint=project.checkpoint)


def record_in_worker(recorder: recording.Recorder, project: Any, base_dir: Path, weights: str, source: str,
                     value: Any, job: Job) -> dict[str, Any]:
    """Read the input (validation text, a file, a text) and record it (in the worker); the recording stops at its
    next progress report when the job is cancelled."""
    if source == "valid":
        text = recorder.sample_text(project, base_dir, int(value))
    elif source == "file":
        path = Path(value)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path.name} is not UTF-8 text (byte offset {exc.start})") from None
    else:
        text = str(value)
    job.check()
    if not text:
        raise ValueError("the text to record is empty")
    t0 = time.perf_counter()
    rec = recorder.record(project, text, base_dir, weights, progress=job.report)
    rec["meta"]["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


class HiddenUnitsPanel(QWidget):
    """Record a text, then look at it: heatmap + text view, unit search, selection, saturation, export."""

    recordingFinished = Signal()
    recordingFailed = Signal(str)
    exportFinished = Signal(str)

    def __init__(self, doc: Any, registry: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("hiddenUnitsPanel")
        self.doc = doc
        self.registry = registry
        self.recorder = recording.Recorder(registry)
        self.recording: Optional[dict[str, Any]] = None
        self.layer = ""
        self.quantity = "h"
        self.unit = 0
        self._track: Optional[np.ndarray] = None
        self._track_name = ""
        self._matches: list[tuple[int, int]] = []
        self._span: tuple[int, int] | None = None
        self._levels: dict[tuple[str, str], tuple[float, float]] = {}
        self.jobs = JobRunner("hidden units", self)     # recordings and exports, one after another
        self._recording_job: Job | None = None
        self._generation = 0
        self._file = ""
        self.last_redraw_ms = 0.0
        build_panel(self)
        app = QCoreApplication.instance()
        if app is not None:     # quitting stops a recording at its next progress report instead of waiting for it
            app.aboutToQuit.connect(self.cancel)
        doc.projectReplaced.connect(self._on_project_replaced)
        doc.graphChanged.connect(self._on_graph_changed)
        self.refresh_weights()
        self._show_empty()

    # ---- input and recording ---------------------------------------------------------------------------
    def refresh_weights(self) -> None:
        """The weights the project can be recorded at (called again when the list opens: training adds some)."""
        current = self.weights_combo.currentData()
        self.weights_combo.clear()
        available = project.available_weights(self.doc.project)
        cur = available["current"]
        if cur["trained"]:
            self.weights_combo.addItem(f"current weights (step {cur['step']:,})", "current")
        else:
            self.weights_combo.addItem("untrained weights (no checkpoint for this graph)", "current")
        best = available.get("best")
        if best:
            what = ""
            if best.get("metric") and isinstance(best.get("value"), (int, float)):
                what = f", {best['metric']} {best['value']:.4g}"
            step = f"step {best['step']:,}" if isinstance(best.get("step"), int) else "best"
            self.weights_combo.addItem(f"best weights ({step}{what})", "best")
        index = self.weights_combo.findData(current)
        self.weights_combo.setCurrentIndex(max(0, index))

    def refresh_features(self) -> None:
        """The feature tracks registered now (a plugin may have added some since the panel opened)."""
        self.feature_combo.blockSignals(True)
        current = self.feature_combo.currentData()
        self.feature_combo.clear()
        for track in features.feature_tracks(self.registry):
            self.feature_combo.addItem(track.title, track.name)
            self.feature_combo.setItemData(self.feature_combo.count() - 1, track.description,
                                           Qt.ItemDataRole.ToolTipRole)
        self.feature_combo.addItem("Regular expression", REGEX_ITEM)
        self.feature_combo.setCurrentIndex(max(0, self.feature_combo.findData(current)))
        self.feature_combo.blockSignals(False)

    def _choose_file(self) -> None:
        start = str(Path(self.doc.path).parent) if self.doc.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Record a text file", start, "Text files (*)")
        if path:
            self.set_file(path)

    def set_file(self, path: str) -> None:
        self._file = path
        self.file_label.setText(path)
        self.src_file.setChecked(True)

    def _base_dir(self) -> Path:
        return Path(self.doc.path).resolve().parent if self.doc.path else Path.cwd()

    def _on_record_clicked(self) -> None:
        if self.is_recording():
            self.cancel()
        else:
            self.record()

    def is_recording(self) -> bool:
        return self._recording_job is not None

    def record(self, source: str | None = None, value: Any = None, weights: str | None = None) -> bool:
        """Start recording in the worker.  ``source``: ``"valid"`` (``value`` characters), ``"text"``, ``"file"``;
        by default what the Input tab says.  Returns False (and says why) when it cannot start."""
        if self.is_recording():
            return False
        if source is None:
            source = {0: "valid", 1: "text", 2: "file"}[self.source_group.checkedId()]
        if value is None:
            value = {"valid": self.length_spin.value(), "text": self.text_edit.toPlainText(),
                     "file": self._file}[source]
        if source == "text" and not value:
            self._say("Type or paste a text in the Input tab first.", error=True)
            self.side.setCurrentIndex(0)
            return False
        if source == "file" and not value:
            self._say("Choose a file in the Input tab first.", error=True)
            self.side.setCurrentIndex(0)
            return False
        problems = self.doc.report().problems
        if problems:
            self._say(f"The model graph is not complete: {problems[0]}", error=True)
            return False
        self.refresh_weights()
        weights = weights or self.weights_combo.currentData() or "current"
        gen = self._generation
        self._recording_job = self.jobs.submit(
            functools.partial(record_in_worker, self.recorder, snapshot(self.doc.project), self._base_dir(), weights,
                              source, value),
            on_result=lambda rec, g=gen: self._on_finished(rec, g), on_error=self._on_failed,
            on_progress=self._on_progress, on_cancelled=self._on_cancelled)
        self.record_button.setText("Cancel")
        self.progress.setRange(0, 0)
        self.progress.show()
        self._say("Loading the model and the data…" if source == "valid" else "Loading the model…")
        return True

    def cancel(self) -> None:
        if self._recording_job is not None:
            self._recording_job.cancel()
            self._say("Cancelling…")

    def wait(self, ms: int = 60000) -> bool:
        """Block until the worker is idle (tests, closing)."""
        return self.jobs.wait(ms)

    def _done(self) -> None:
        self._recording_job = None
        self.record_button.setText("Record")
        self.progress.hide()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat(f"{done:,} / {total:,}")

    def _on_finished(self, rec: dict[str, Any], generation: int) -> None:
        self._done()
        if generation != self._generation:
            return          # the project was replaced while this ran
        self.set_recording(rec)
        self.recordingFinished.emit()

    def _on_failed(self, message: str) -> None:
        self._done()
        self._say(f"Could not record: {message}", error=True)
        self.recordingFailed.emit(message)

    def _on_cancelled(self) -> None:
        self._done()
        self._say("Recording cancelled.")

    def _on_project_replaced(self, *_args: Any) -> None:
        self._generation += 1
        self.recorder = recording.Recorder(self.registry)
        self.recording = None
        self.refresh_weights()
        self._show_empty()

    def _on_graph_changed(self, *_args: Any) -> None:
        self.refresh_weights()
        if self.recording is not None:
            self._say("The model graph has changed since this recording; record again to see the new model.")

    def _say(self, text: str, error: bool = False) -> None:
        show_note(self.status, text, error)
        self.status.setToolTip(text)

    def _show_empty(self) -> None:
        self.layer_combo.clear()
        self.quantity_combo.clear()
        self.units_label.setText("")
        self.text_view.set_caption("Press Record to run the model over the input (Input tab: validation data, "
                                   "a text you type, or a file) and see its hidden units here.")
        self.text_view.set_text("")
        self.text_caption.setText(" ")
        # the plots too: after File ▸ Open, the previous project's heatmap must not stay under the new one's name
        self.heatmap.clear()
        self.saturation.clear()
        self._track, self._track_name = None, ""
        self._span = None
        self.results.clear()
        self.span_units.clear()
        self.matches_list.clear()
        self.selection_label.setText("No span selected.")
        self.matches_label.setText("")
        self._say("Nothing recorded yet.")

    # ---- showing a recording -----------------------------------------------------------------------------
    def levels(self, layer: str | None = None, quantity: str | None = None) -> tuple[float, float]:
        """The fixed colour levels of a quantity (computed once per recording: a percentile of 10 million
        values is not something to redo at every key press)."""
        key = (layer or self.layer, quantity or self.quantity)
        if key not in self._levels:
            self._levels[key] = recording.display_levels(self.recording, *key)
        return self._levels[key]

    def set_recording(self, rec: dict[str, Any]) -> None:
        """Show ``rec`` (from the worker, or :func:`workbench.core.recording.load_npz`)."""
        self.recording = rec
        self._levels: dict[tuple[str, str], tuple[float, float]] = {}
        self._track, self._track_name = None, ""
        self._span = None
        self._matches = []
        layers = recording.layer_names(rec)
        self.text_view.set_text(rec["text"], rec.get("offsets"), rec.get("labels"))
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(layers)
        keep = self.layer if self.layer in layers else (layers[0] if layers else "")
        self.layer_combo.setCurrentIndex(max(0, self.layer_combo.findText(keep)))
        self.layer_combo.blockSignals(False)
        self.layer = keep
        self.results.clear()
        self.span_units.clear()
        self.matches_list.clear()
        self.selection_label.setText("No span selected.")
        self.matches_label.setText("")
        self.heatmap.set_span(0, 0)
        self.saturation.set_data(recording.gate_saturation(rec), layers)
        meta = rec.get("meta", {})
        weights = "untrained weights" if not meta.get("trained", True) else f"{meta.get('weights', 'current')} weights"
        took = ""
        if "seconds" in meta:
            took = f" in {meta['seconds']:.1f} s" if meta["seconds"] >= 0.1 else " in under 0.1 s"
        self._say(f"Recorded {len(rec['text']):,} characters ({recording.steps(rec):,} steps) at {weights}, step "
                  f"{meta.get('step', 0):,}{took}.")
        if not layers:
            self._say("This model has no recurrent layer to look inside.", error=True)
            return
        self._fill_quantities(keep_view=False)

    def _fill_quantities(self, keep_view: bool = True) -> None:
        rec = self.recording
        if rec is None or not self.layer:
            return
        qs = recording.quantities(rec, self.layer)
        self.quantity_combo.blockSignals(True)
        self.quantity_combo.clear()
        for q in qs:
            self.quantity_combo.addItem(QUANTITY_TITLES.get(q, q), q)
        q = self.quantity if self.quantity in qs else qs[0]
        self.quantity_combo.setCurrentIndex(max(0, self.quantity_combo.findData(q)))
        self.quantity_combo.blockSignals(False)
        self.quantity = q
        self._show_quantity(keep_view)

    def _show_quantity(self, keep_view: bool = True) -> None:
        rec = self.recording
        t0 = time.perf_counter()
        values = recording.activations(rec, self.layer, self.quantity)
        levels = self.levels()
        H = values.shape[1]
        self.heatmap.set_data(values, levels, rec.get("labels") or list(rec["text"]),
                              f"{self.layer} · {QUANTITY_TITLES.get(self.quantity, self.quantity)}", keep_view)
        self.unit_spin.blockSignals(True)
        self.unit_spin.setRange(0, max(0, H - 1))
        self.unit = min(self.unit, H - 1)
        self.unit_spin.setValue(self.unit)
        self.unit_spin.blockSignals(False)
        self.units_label.setText(f"of {H}")
        self.threshold_spin.blockSignals(True)
        self.threshold_spin.setValue(recording.threshold_for_levels(levels))
        self.threshold_spin.blockSignals(False)
        self._show_unit()
        self._update_selection()
        self.last_redraw_ms = (time.perf_counter() - t0) * 1000

    def _show_unit(self) -> None:
        rec = self.recording
        if rec is None or not self.layer:
            return
        values = recording.activations(rec, self.layer, self.quantity)
        levels = self.levels()
        self.heatmap.set_track(self._track, self._track_name, self.unit)
        self.text_view.set_values(values[:, self.unit], levels)
        lo, hi = levels
        self.text_caption.setText(
            f"Text coloured by unit {self.unit} of {self.layer} {self.quantity}: blue {lo:g} · "
            f"{'white' if not self.text_view.palette().color(QPalette.ColorRole.Base).lightness() < 128 else 'dark'}"
            f" {(lo + hi) / 2:g} · red {hi:g}.   ↑/↓ or K/J: other units · drag: select a span")

    def set_unit(self, unit: int) -> None:
        if self.recording is None or not self.layer:
            return
        H = recording.activations(self.recording, self.layer, self.quantity).shape[1]
        unit = max(0, min(int(unit), H - 1))
        self.unit = unit
        if self.unit_spin.value() != unit:
            self.unit_spin.blockSignals(True)
            self.unit_spin.setValue(unit)
            self.unit_spin.blockSignals(False)
        self._show_unit()

    def select(self, layer: str | None = None, quantity: str | None = None, unit: int | None = None) -> None:
        """Show ``unit`` of ``layer``'s ``quantity`` (any of them may be left as they are)."""
        if self.recording is None:
            return
        if layer is not None and layer != self.layer:
            self.layer_combo.setCurrentIndex(self.layer_combo.findText(layer))
        if quantity is not None and quantity != self.quantity:
            index = self.quantity_combo.findData(quantity)
            if index >= 0:
                self.quantity_combo.setCurrentIndex(index)
        if unit is not None:
            self.set_unit(unit)

    def _step_unit(self, delta: int) -> None:
        if self.recording is None or not self.layer:
            return
        H = recording.activations(self.recording, self.layer, self.quantity).shape[1]
        self.set_unit((self.unit + delta) % H)

    def _on_layer_changed(self, _index: int) -> None:
        layer = self.layer_combo.currentText()
        if not layer or self.recording is None:
            return
        self.layer = layer
        self._fill_quantities()

    def _on_quantity_changed(self, _index: int) -> None:
        q = self.quantity_combo.currentData()
        if not q or self.recording is None:
            return
        self.quantity = q
        self._show_quantity()

    def _on_heatmap_position(self, step: int) -> None:
        self.text_view.set_current(step)

    def _on_text_position(self, step: int) -> None:
        self.heatmap.show_position(step)

    def _on_saturation_point(self, layer: str, gate: str, unit: int) -> None:
        self.select(layer, gate, unit)
        self.views.setCurrentIndex(0)

    # ---- unit search ----------------------------------------------------------------------------------
    def _on_feature_changed(self, _index: int) -> None:
        regex = self.feature_combo.currentData() == REGEX_ITEM
        self.regex_edit.setEnabled(regex)
        if regex:
            self.regex_edit.setFocus()
        elif self.recording is not None:
            self.run_search()

    def feature(self) -> str:
        name = self.feature_combo.currentData()
        if name == REGEX_ITEM:
            return features.REGEX_PREFIX + self.regex_edit.text()
        return str(name)

    def run_search(self, feature: str | None = None) -> list[tuple[str, int, float]]:
        """Rank units by ``feature`` (default: the tab's) and list them; returns ``[(layer, unit, r)]``."""
        if feature:
            if not feature.startswith(features.REGEX_PREFIX) and self.feature_combo.findData(feature) < 0:
                self.refresh_features()     # a plugin may have registered it since the panel was built
            if feature.startswith(features.REGEX_PREFIX):
                self.feature_combo.setCurrentIndex(self.feature_combo.findData(REGEX_ITEM))
                self.regex_edit.setText(feature[len(features.REGEX_PREFIX):])
            else:
                self.feature_combo.blockSignals(True)
                self.feature_combo.setCurrentIndex(self.feature_combo.findData(feature))
                self.feature_combo.blockSignals(False)
        feature = self.feature()
        self.results.clear()
        if self.recording is None:
            self.search_note.setText("Record a text first (Record, top left).")
            return []
        if feature == features.REGEX_PREFIX:
            self.search_note.setText("Type a regular expression.")
            return []
        try:
            track = recording.step_track(self.recording, feature, self.registry)
            layers = recording.layer_names(self.recording) if self.all_layers.isChecked() else [self.layer]
            rows = recording.search_layers(self.recording, track, self.quantity, layers, registry=self.registry)
        except ValueError as exc:
            msg = str(exc).replace("the track", f"the feature “{features.feature_title(feature, self.registry)}”")
            self.search_note.setText(msg)
            self._track, self._track_name = None, ""
            self._show_unit()
            return []
        self._track, self._track_name = track, features.feature_title(feature, self.registry)
        share = float((track != 0).mean()) * 100
        self.search_note.setText(f"{features.feature_title(feature, self.registry)}: non-zero on {share:.1f} % of the text. "
                                 f"{self.quantity} of {', '.join(layers)}, ranked by |r|; click a unit to show it.")
        self.results.setUpdatesEnabled(False)
        for i, (layer, unit, r) in enumerate(rows[:500], 1):
            item = QTreeWidgetItem([str(i), layer, str(unit), f"{r:+.3f}"])
            item.setData(0, Qt.ItemDataRole.UserRole, (layer, unit))
            item.setData(3, Qt.ItemDataRole.UserRole, float(r))
            item.setTextAlignment(0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.results.addTopLevelItem(item)
        self.results.setUpdatesEnabled(True)
        self._show_unit()
        return rows

    def _on_result_chosen(self, item: QTreeWidgetItem | None, _previous: Any = None) -> None:
        if item is None:
            return
        layer, unit = item.data(0, Qt.ItemDataRole.UserRole)
        self.select(layer, None, unit)
        self.views.setCurrentIndex(0)

    # ---- hypothesis selection --------------------------------------------------------------------------
    def select_span(self, start: int, end: int) -> None:
        """Select steps ``[start, end)`` as if dragged in the text view."""
        self.text_view.set_selection_steps(start, end)
        self._on_span_selected(start, end)

    def _on_span_selected(self, start: int, end: int) -> None:
        self._span = (start, end) if end > start else None
        self._update_selection()
        if self._span:
            self.side.setCurrentIndex(2)

    def span_result(self) -> tuple[list[int], list[tuple[int, int]]]:
        """The units on over the selected span and the spans where they all switch on."""
        if self.recording is None or not self._span or not self.layer:
            return [], []
        start, end = self._span
        threshold = self.threshold_spin.value()
        units = recording.units_on_span(self.recording, self.layer, self.quantity, start, end, threshold,
                                   self.margin_spin.value())
        min_length = self.min_length_spin.value() or max(1, (end - start) // 2)
        matches = recording.matching_spans(self.recording, self.layer, self.quantity, units, threshold, min_length)
        return units, matches

    def _snippet(self, start: int, end: int, width: int = 36) -> str:
        rec = self.recording
        offsets, labels, text = rec["offsets"], rec["labels"], rec["text"]
        a = int(offsets[start])
        b = int(offsets[end - 1]) + len(labels[end - 1])
        s = text[a:b]
        if len(s) > width:
            s = s[:width - 1] + "…"
        return "".join({"\n": "↵", "\t": "→"}.get(ch, ch) for ch in s)

    def _update_selection(self) -> None:
        self.span_units.clear()
        self.matches_list.clear()
        if self.recording is None or not self._span:
            self.span_units.hide()
            self.matches_list.hide()
            self._matches = []
            self.text_view.set_marks([])
            self.heatmap.set_span(0, 0)
            self.selection_label.setText("No span selected.")
            self.matches_label.setText("")
            return
        start, end = self._span
        self.heatmap.set_span(start, end)
        units, matches = self.span_result()
        values = recording.activations(self.recording, self.layer, self.quantity)
        self.selection_label.setText(
            f"Positions {start:,}–{end - 1:,} «{self._snippet(start, end)}»: "
            + (f"{len(units)} unit{'s' if len(units) != 1 else ''} of {self.layer} {self.quantity} on over it "
               f"(≥ {self.threshold_spin.value():g}) and off around it." if units else
               f"no unit of {self.layer} {self.quantity} is on (≥ {self.threshold_spin.value():g}) over all of it "
               f"and off around it. Try a lower threshold or a shorter span."))
        for u in units:
            item = QListWidgetItem(f"unit {u}   mean {values[start:end, u].mean():+.2f} over the span")
            item.setData(Qt.ItemDataRole.UserRole, u)
            self.span_units.addItem(item)
        self.span_units.setVisible(bool(units))
        self.matches_list.setVisible(bool(units))
        self._matches = matches
        self.text_view.set_marks(matches)
        if units:
            who = "it switches on" if len(units) == 1 else f"all {len(units)} switch on together"
            self.matches_label.setText(f"Where {who}: {len(matches)} place{'s' if len(matches) != 1 else ''} "
                                       f"(underlined in the text; click one to go there):")
        else:
            self.matches_label.setText("")
        for a, b in matches[:1000]:
            item = QListWidgetItem(f"{a:>7,}  «{self._snippet(a, b)}»" + ("   ← selected" if (a, b) == (start, end)
                                                                          else ""))
            item.setData(Qt.ItemDataRole.UserRole, (a, b))
            self.matches_list.addItem(item)

    def _on_span_unit_chosen(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        if item is not None:
            self.set_unit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _on_match_chosen(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        if item is None:
            return
        a, _b = item.data(Qt.ItemDataRole.UserRole)
        self.text_view.scroll_to_step(a)
        self.heatmap.show_position(a)

    # ---- export -----------------------------------------------------------------------------------------
    def _default_name(self, what: str, ext: str) -> str:
        stem = Path(self.doc.path).stem if self.doc.path else "recording"
        return str(self._base_dir() / f"{stem}-{what}.{ext}")

    def _export_view_dialog(self, widget: QWidget, what: str, ext: str) -> None:
        if self.recording is None:
            self._say("Nothing to export: record a text first.", error=True)
            return
        filt = "PNG images (*.png)" if ext == "png" else "SVG drawings (*.svg)"
        path, _ = QFileDialog.getSaveFileName(self, f"Export the {what} view", self._default_name(what, ext), filt)
        if path:
            self.export_view(widget, path)

    def export_view(self, widget: QWidget, path: str) -> None:
        """PNG (what is on screen, at screen resolution) or SVG (vector where the view draws vectors)."""
        try:
            if path.lower().endswith(".svg"):
                from PySide6.QtSvg import QSvgGenerator
                gen = QSvgGenerator()
                gen.setFileName(path)
                gen.setSize(widget.size())
                gen.setViewBox(widget.rect())
                gen.setTitle(f"Sequence Workbench: {self.layer} {self.quantity}")
                painter = QPainter(gen)
                try:
                    widget.render(painter, QPoint(0, 0))
                finally:
                    painter.end()
            else:
                if not widget.grab().save(path):
                    raise OSError(f"could not write {path}")
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
            return
        self._say(f"Exported {path}")

    def _export_npz_dialog(self) -> None:
        if self.recording is None:
            self._say("Nothing to export: record a text first.", error=True)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the recording", self._default_name("recording", "npz"),
                                              "NumPy archives (*.npz)")
        if path:
            self.export_npz(path)

    def _export_csv_dialog(self) -> None:
        if self.recording is None:
            self._say("Nothing to export: record a text first.", error=True)
            return
        name = f"{self.layer}-{self.quantity}".replace("/", "_")
        path, _ = QFileDialog.getSaveFileName(self, "Export activations as CSV", self._default_name(name, "csv"),
                                              "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def export_npz(self, path: str) -> None:
        """Everything the views show, as ``seqwb record --npz`` writes it (in the worker; ``exportFinished``)."""
        rec = self.recording          # this recording, even if another one replaces it meanwhile
        self._write(lambda: recording.save_npz(rec, path), path)

    def export_csv(self, path: str) -> None:
        """The shown layer and quantity, a row per step and a column per unit (in the worker)."""
        rec, layer, quantity = self.recording, self.layer, self.quantity
        self._write(lambda: recording.write_csv(rec, layer, quantity, path), path)

    def _write(self, fn, path: str) -> None:
        """Write a file in the worker (a CSV of 20,000 x 512 values takes seconds to format)."""
        self._say(f"Writing {path}…")
        self.jobs.submit(lambda _job: fn(),
                         on_result=lambda _none: (self._say(f"Exported {path}"), self.exportFinished.emit(path)),
                         on_error=lambda msg: QMessageBox.warning(self, "Export failed",
                                                                  f"Could not write {path}:\n{msg}"))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self.is_recording():
            self.refresh_weights()      # training may have saved new (or best) weights since the tab was last seen

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.cancel()
        self.jobs.wait(10000)
        super().closeEvent(event)
