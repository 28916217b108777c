"""Looking inside: the hidden-units panel (heatmap, text view, unit search, hypothesis selection, saturation).

The panel shows what :mod:`workbench.core.recording` computes and computes nothing about the model itself: a
recording is made by :class:`workbench.core.recording.Recorder` in a worker thread (a
:class:`~workbench.gui.jobs.JobRunner`, which also writes the exports), on a snapshot of the project taken when
Record is pressed, so editing or training while it runs is safe.  Everything after that (correlations, spans,
saturation) is numpy on arrays already in memory and runs on the GUI thread.  The panel's widgets are made in
:mod:`workbench.gui.inspect_units_ui`.

A model that reads a context first (an encoder–decoder, a captioner) is recorded on an input as the decoding view
takes it; its recording has parts (the source, the output), and choosing a layer shows the part it ran over.  The
context pane (:mod:`workbench.gui.inspect_context`) shows input, output and the attention map, linked to the output
step shown.  Unit search and the selection's matches run over the whole validation split by default
(:mod:`workbench.gui.inspect_units_search`).  What was recorded last and how it was shown is kept in the project
(``project.views["hidden_units"]``, :mod:`workbench.gui.inspect_units_state`) and recorded again on reopen.

``seqwb record FILE --npz OUT`` writes the arrays this panel shows; ``seqwb units`` ranks units as the Unit
search tab does.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFileDialog, QWidget

from workbench.core import features, project, recording
from workbench.gui import inspect_units_state as state_io
from workbench.gui.forms import show_note
from workbench.gui.inspect_units_export import RecordingExport
from workbench.gui.inspect_units_search import REGEX_ITEM, CorpusSearch, UnitSearch
from workbench.gui.inspect_units_selection import HypothesisSelection
from workbench.gui.inspect_units_ui import build_panel
from workbench.gui.jobs import Job, JobRunner

QUANTITY_TITLES = {"h": "h (hidden state)", "c": "c (cell state)", "i": "i (input gate)", "f": "f (forget gate)",
                   "o": "o (output gate)", "g": "g (candidate)", "r": "r (reset gate)", "z": "z (update gate)",
                   "n": "n (candidate)"}
PART_AXES = {"text": "position in the text (step)", "source": "source position",
             "output": "output step (the step that wrote each token)"}
SOURCES = ("valid", "text", "file", "example")


def snapshot(project: Any) -> Any:
    """A copy of the project's design that the worker can read while the window edits the original: the graph
    and configs are copied (small); the checkpoint is shared, as training replaces it rather than changing it."""
    from dataclasses import replace

    from workbench.core.project import Project
    copy = Project.from_json(project.to_json())
    return replace(copy, vocab=list(project.vocab) if project.vocab else None, checkpoint=project.checkpoint)


def record_in_worker(recorder: recording.Recorder, project: Any, base_dir: Path, weights: str, source: str,
                     value: Any, job: Job) -> dict[str, Any]:
    """Read the input (validation text, a file, a text, a context model's input) and record it (in the worker);
    the recording stops at its next progress report when the job is cancelled."""
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
    if not text and source != "example":
        raise ValueError("the text to record is empty")
    t0 = time.perf_counter()
    rec = recorder.record(project, text, base_dir, weights, progress=job.report)
    rec["meta"]["seconds"] = round(time.perf_counter() - t0, 3)
    rec["meta"]["source"] = source
    picture = getattr(recorder.session.task(project, base_dir), "image", None)
    if recording.is_multipart(rec) and callable(picture):
        try:
            rec["image"] = picture(rec["meta"].get("prompt", text))
        except ValueError:
            rec["image"] = None
    return rec


class HiddenUnitsPanel(UnitSearch, HypothesisSelection, RecordingExport, QWidget):
    """Record a text, then look at it: heatmap + text view, unit search, selection, saturation, export."""

    recordingFinished = Signal()
    recordingFailed = Signal(str)
    exportFinished = Signal(str)
    searchFinished = Signal(object)          # the rows [(layer, unit, r)] of a search that ran in the background
    matchesFinished = Signal()               # the selection's matches over the validation split are listed
    inputInfoChanged = Signal()

    def __init__(self, doc: Any, registry: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("hiddenUnitsPanel")
        self.doc = doc
        self.registry = registry
        self.recorder = recording.Recorder(registry)
        self.recording: Optional[dict[str, Any]] = None
        self.part = "text"
        self.layer = ""
        self.quantity = "h"
        self.unit = 0
        self.input_info: dict[str, Any] = {"kind": "text"}
        self._track: Optional[np.ndarray] = None
        self._track_name = ""
        self._matches: list[tuple[int, int]] = []
        self._corpus_matches: Optional[list[tuple[int, int]]] = None
        self._span: tuple[int, int] | None = None
        self._levels: dict[tuple[str, str], tuple[float, float]] = {}
        self.jobs = JobRunner("hidden units", self)     # recordings, the validation split and exports
        self.corpus = CorpusSearch(self)
        self._recording_job: Job | None = None
        self._generation = 0
        self._file = ""
        self._replay: Optional[dict[str, Any]] = None   # a recording to make again once the panel is shown
        self.last_request: dict[str, Any] = {}           # what the last Record asked for (kept in the project)
        self.restoring = False                           # the kept choices are being put back: nothing to keep
        self._input_stale = True
        self.last_redraw_ms = 0.0
        build_panel(self)
        app = QCoreApplication.instance()
        if app is not None:     # quitting stops a recording at its next progress report instead of waiting for it
            app.aboutToQuit.connect(self.cancel)
        doc.projectReplaced.connect(self._on_project_replaced)
        doc.graphChanged.connect(self._on_graph_changed)
        doc.settingsChanged.connect(self._on_settings_changed)
        self.refresh_weights()
        self._show_empty()
        self._restore_views()

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

    def chosen_weights(self) -> str:
        return self.weights_combo.currentData() or "current"

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

    def refresh_input_info(self) -> None:
        """Ask (in the worker) what the model reads: text, or a source / an example (a model with a context)."""
        self._input_stale = False
        gen = self._generation
        self.jobs.submit(lambda _job, p=snapshot(self.doc.project), b=self.base_dir():
                         self.recorder.input_info(p, b),
                         key="input-info", on_result=lambda info, g=gen: self._on_input_info(info, g),
                         on_error=lambda _msg: None)

    def _on_input_info(self, info: dict[str, Any], generation: int) -> None:
        if generation != self._generation:
            return
        self.input_info = info
        context = info.get("kind") in ("source", "example")
        self.text_inputs.setVisible(not context)
        self.context_inputs.setVisible(context)
        if context:
            self.example_label.setText(info.get("label", "Input") + ":")
            self.example_hint.setText(f"What the model reads: {info.get('hint', '')}. The project's decoder "
                                      f"writes the output; the recording covers both.")
            typed = self.example_combo.currentText()
            self.example_combo.blockSignals(True)
            self.example_combo.clear()
            for prompt, reference in info.get("examples") or []:
                self.example_combo.addItem(prompt, reference)
            self.example_combo.setEditText(typed or self.doc.project.decode.prompt or info.get("default", ""))
            self.example_combo.blockSignals(False)
            self._show_reference()
            if self.source() not in ("example",):
                self.src_example.setChecked(True)
        elif self.source() == "example":
            self.src_valid.setChecked(True)
        self.inputInfoChanged.emit()

    def _show_reference(self) -> None:
        index = self.example_combo.findText(self.example_combo.currentText())
        ref = self.example_combo.itemData(index) if index >= 0 else ""
        self.reference_label.setText(f"reference: {ref}" if ref else "")

    def source(self) -> str:
        return SOURCES[max(0, self.source_group.checkedId())]

    def _choose_file(self) -> None:
        start = str(Path(self.doc.path).parent) if self.doc.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Record a text file", start, "Text files (*)")
        if path:
            self.set_file(path)

    def set_file(self, path: str) -> None:
        self._file = path
        self.file_label.setText(path)
        self.src_file.setChecked(True)

    def project_snapshot(self) -> Any:
        return snapshot(self.doc.project)

    def base_dir(self) -> Path:
        return Path(self.doc.path).resolve().parent if self.doc.path else Path.cwd()

    _base_dir = base_dir

    def _on_record_clicked(self) -> None:
        if self.is_recording():
            self.cancel()
        else:
            self.record()

    def is_recording(self) -> bool:
        return self._recording_job is not None

    def record(self, source: str | None = None, value: Any = None, weights: str | None = None) -> bool:
        """Start recording in the worker.  ``source``: ``"valid"`` (``value`` characters), ``"text"``, ``"file"``,
        ``"example"`` (a context model's input); by default what the Input tab says.  Returns False (and says why)
        when it cannot start."""
        if self.is_recording():
            return False
        source = source or self.source()
        if value is None:
            value = {"valid": self.length_spin.value(), "text": self.text_edit.toPlainText(), "file": self._file,
                     "example": self.example_combo.currentText().strip()}[source]
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
        weights = weights or self.chosen_weights()
        if source == "example" and value != self.example_combo.currentText():
            self.example_combo.setEditText(str(value))     # the Input tab says what is recorded
        gen = self._generation
        self.last_request = {"source": source, "value": value, "weights": weights}
        self._recording_job = self.jobs.submit(
            functools.partial(record_in_worker, self.recorder, snapshot(self.doc.project), self.base_dir(), weights,
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
        self.progress.setVisible(self.corpus.busy())

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat(f"{done:,} / {total:,}")

    def _on_finished(self, rec: dict[str, Any], generation: int) -> None:
        self._done()
        if generation != self._generation:
            return          # the project was replaced while this ran
        self.set_recording(rec)
        self._remember(recorded=True)
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
        self.jobs.drop("input-info")
        self.corpus.clear()
        self.recorder = recording.Recorder(self.registry)
        self.recording = None
        self.input_info = {"kind": "text"}
        self.text_inputs.show()
        self.context_inputs.hide()
        self.refresh_weights()
        self._show_empty()
        self._restore_views()

    def _on_graph_changed(self, *_args: Any) -> None:
        self.refresh_weights()
        self.corpus.clear()
        self._input_stale = True
        if self.isVisible():
            self.refresh_input_info()
        if self.recording is not None:
            self._say("The model graph has changed since this recording; record again to see the new model.")

    def _on_settings_changed(self, section: str) -> None:
        if section in ("task", "decode"):       # another task reads other data; another decoder writes otherwise
            self.corpus.clear()
        if section == "task":
            self._input_stale = True
            if self.isVisible():
                self.refresh_input_info()

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
        self.context.clear()
        self._track, self._track_name = None, ""
        self._span = None
        self.results.clear()
        self.span_units.clear()
        self.matches_list.clear()
        self.selection_label.setText("No span selected.")
        self.matches_label.setText("")
        self._say("Nothing recorded yet.")

    # ---- showing a recording -----------------------------------------------------------------------------
    @property
    def shown(self) -> dict[str, Any]:
        """The part of the recording shown now (the recording itself for one text)."""
        assert self.recording is not None
        return recording.parts(self.recording)[self.part]

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
        self._levels = {}
        self._track, self._track_name = None, ""
        self._span = None
        self._matches = []
        self._corpus_matches = None
        layers = recording.layer_names(rec)
        multipart = recording.is_multipart(rec)
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for layer in layers:
            where = f"  ·  {recording.part_of(rec, layer)}" if multipart else ""
            self.layer_combo.addItem(layer + where, layer)
        keep = self.layer if self.layer in layers else (layers[0] if layers else "")
        self.layer_combo.setCurrentIndex(max(0, self.layer_combo.findData(keep)))
        self.layer_combo.blockSignals(False)
        self.layer = keep
        self.part = recording.part_of(rec, keep) if keep else next(iter(recording.parts(rec)))
        self._show_part()
        self.saturation.set_data(recording.gate_saturation(rec), layers)
        self.context.set_recording(rec)
        self._say(self._recorded_text(rec))
        if not layers:
            self._say("This model has no recurrent layer to look inside.", error=True)
            return
        self._fill_quantities(keep_view=False)

    @staticmethod
    def _recorded_text(rec: dict[str, Any]) -> str:
        meta = rec.get("meta", {})
        weights = "untrained weights" if not meta.get("trained", True) else f"{meta.get('weights', 'current')} weights"
        took = ""
        if "seconds" in meta:
            took = f" in {meta['seconds']:.1f} s" if meta["seconds"] >= 0.1 else " in under 0.1 s"
        if recording.is_multipart(rec):
            steps = ", ".join(f"{len(p['tokens']):,} {name} steps" for name, p in recording.parts(rec).items())
            return (f"Recorded “{meta.get('prompt', '')}” → “{meta.get('output', '')}” ({steps}; "
                    f"{meta.get('decoder', '')}) at {weights}, step {meta.get('step', 0):,}{took}.")
        reduced = meta.get("precision", "fp32")
        computed = f", in {reduced} autocast (the project's precision)" if reduced != "fp32" else ""
        return (f"Recorded {len(rec['text']):,} characters ({recording.steps(rec):,} steps) at {weights}, step "
                f"{meta.get('step', 0):,}{computed}{took}.")

    def _show_part(self) -> None:
        """The text view and the heatmap's axis for the part shown (a new recording, or a layer of another part)."""
        part = self.shown
        self.text_view.set_text(part["text"], part.get("offsets"), part.get("labels"))
        self.heatmap.set_axis_name(PART_AXES.get(self.part, PART_AXES["text"]))
        self._span = None
        self.results.clear()
        self._clear_selection_lists()
        self.heatmap.set_span(0, 0)

    def _clear_selection_lists(self) -> None:
        self.span_units.clear()
        self.matches_list.clear()
        self.selection_label.setText("No span selected.")
        self.matches_label.setText("")

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
        part = self.shown
        self.heatmap.set_data(values, levels, part.get("labels") or list(part["text"]),
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
        self._remember()

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
            index = self.layer_combo.findData(layer)
            if index >= 0:
                self.layer_combo.setCurrentIndex(index)
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
        layer = self.layer_combo.currentData()
        if not layer or self.recording is None:
            return
        self.layer = layer
        part = recording.part_of(self.recording, layer)
        if part != self.part:
            self.part = part
            self._show_part()
        self._fill_quantities()

    def _on_quantity_changed(self, _index: int) -> None:
        q = self.quantity_combo.currentData()
        if not q or self.recording is None:
            return
        self.quantity = q
        self._show_quantity()

    def _on_heatmap_position(self, step: int) -> None:
        self.text_view.set_current(step)
        self._mark_context(step)

    def _on_text_position(self, step: int) -> None:
        self.heatmap.show_position(step)
        self._mark_context(step)

    def _mark_context(self, step: int) -> None:
        """The attention map outlines the output step (or the source position) just picked."""
        if self.part == "output":
            self.context.mark(step, -1)
        elif self.part == "source":
            self.context.mark(-1, step)

    def _on_context_step(self, row: int, column: int) -> None:
        """A cell of the attention map: show that output step (a decoder layer), or that source position."""
        if self.recording is None:
            return
        want = "output" if self.part != "source" else "source"
        if want != self.part:
            self.select(next(layer for layer in recording.layer_names(self.recording)
                             if recording.part_of(self.recording, layer) == want))
        step = row if want == "output" else column
        self.text_view.set_current(step)
        self.heatmap.show_position(step)
        self.context.mark(row, column)

    def _on_saturation_point(self, layer: str, gate: str, unit: int) -> None:
        self.select(layer, gate, unit)
        self.views.setCurrentIndex(0)

    # ---- what is kept in the project ----------------------------------------------------------------------
    def _remember(self, recorded: bool = False) -> None:
        """Keep the inputs and choices in the project (``project.views``); a new recording marks it changed."""
        state_io.remember(self, recorded)

    def _restore_views(self) -> None:
        """The inputs and choices kept in the project; its last recording is made again when the tab shows."""
        self._replay = state_io.restore(self, self.doc.project.views.get(state_io.KEY))
        if self.isVisible():
            self._refresh_on_show()

    def _refresh_on_show(self) -> None:
        if self._input_stale:
            self.refresh_input_info()
        if self._replay is not None:
            replay, self._replay = self._replay, None
            # queued after the input-info job, so the Input tab knows what the model reads when it runs
            QTimer.singleShot(0, lambda: self.record(replay["source"], replay["value"], replay["weights"]))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self.is_recording():
            self.refresh_weights()      # training may have saved new (or best) weights since the tab was last seen
        self._refresh_on_show()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.cancel()
        self.corpus.cancel()
        self.jobs.wait(10000)
        super().closeEvent(event)
