"""Run ▸ Evaluate…: the model's metrics on the validation or the test split, at the current or the best weights —
the window's ``seqwb eval``.

The dialog computes nothing itself.  Its worker thread (a :class:`~workbench.gui.jobs.JobRunner`) loads the model
with a
:class:`workbench.core.training.session.ModelSession` and runs
:func:`workbench.core.training.evaluation.evaluate_weights`, the timed evaluation ``seqwb eval`` prints, on a
snapshot of the project taken when Evaluate is pressed, so editing or training meanwhile is safe.  The session
never reseeds torch's global random generator nor changes the process's thread count: a training run may be live
in another thread, and both are process-wide.  The thread count the worker sets for itself belongs to that thread
only (torch's OpenMP setting is per calling thread; see :func:`workbench.core.recording.record_loaded`), and it is
put back afterwards.

Once opened, the dialog stays with the window (Close hides it, cancelling an evaluation that is still running
without waiting for it), so the data and the model read for one evaluation are reused by the next.
"""

from __future__ import annotations

import functools
import html
import json
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QDialog, QDialogButtonBox, QFormLayout,
                               QFrame, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton, QRadioButton,
                               QSizePolicy, QSpinBox, QStackedWidget, QStyle, QTableWidget, QTableWidgetItem,
                               QVBoxLayout)

from workbench.core.project import available_weights
from workbench.gui.forms import ElidedLabel, show_note
from workbench.gui.jobs import Job, JobRunner, one_line
from workbench.gui.style import muted_text_color, set_muted
from workbench.gui.views import DIALOG, MenuEntry, ViewRegistry

#: the splits the dialog offers, in order, with their titles (``seqwb eval --split`` also takes ``train``; the
#: training split is what the loss curve already shows)
SPLITS = (("valid", "Validation"), ("test", "Test"))
SPLIT_WORDS = {"valid": "validation", "test": "test"}
#: what the metrics the built-in tasks report are, for people who have not met the short names yet
METRIC_TITLES = {"loss": "loss", "bpc": "bits per character", "ppl": "perplexity", "accuracy": "accuracy",
                 "macro_f1": "macro F1", "bleu": "BLEU", "exact": "exact match", "mse": "mean squared error",
                 "mae": "mean absolute error", "naive_mse": "MSE of the naive forecast",
                 "naive_mae": "MAE of the naive forecast", "skill": "skill (1 − MSE / naive MSE)",
                 "baseline_mse": "MSE of the baseline", "ce": "cross-entropy", "baseline_ce": "baseline cross-entropy",
                 "confusion": "confusion matrix (rows: true class)"}
#: the worker reports progress at most this often (a small model evaluates hundreds of batches a second)
PROGRESS_INTERVAL_S = 0.05
MAX_BATCHES = 1_000_000
PLACEHOLDER = "Choose a split and the weights, then press Evaluate."
NO_BEST = "No best weights yet: they are kept at the first validation of a run."
UNTRAINED = ("No trained weights fit this model graph: Evaluate measures freshly initialised weights "
             "(as seqwb eval does).")


def count_splits(session: Any, project: Any, base_dir: Path, _job: Job) -> dict[str, tuple[int | None, str]]:
    """The batches of each split the dialog offers (in the worker); a split the task does not have (empty, or no
    file for it) gets the task's reason instead.  The session keeps the data and the model, so the evaluation that
    follows does not read them again."""
    from workbench.core.training.evaluation import planned_batches
    task = session.load(project, base_dir, "current").task
    cfg = project.train
    found: dict[str, tuple[int | None, str]] = {}
    for split, _title in SPLITS:
        try:
            found[split] = (planned_batches(task, split, cfg.batch_size, cfg.chunk_len), "")
        except Exception as exc:  # noqa: BLE001 - a missing split is a choice to disable, with the reason
            found[split] = (0, one_line(exc))
    return found


def evaluate_in_worker(session: Any, project: Any, base_dir: Path, split: str, weights: str, max_batches: int,
                       job: Job) -> Any:
    """Load the model at ``weights`` and evaluate it (in the worker); progress at most every
    :data:`PROGRESS_INTERVAL_S`, and the job stops between two batches when it is cancelled."""
    import torch

    from workbench.core.device import default_threads
    from workbench.core.training.evaluation import evaluate_weights
    loaded = session.load(project, base_dir, weights)
    job.check()
    last_report = [0.0]

    def progress(done: int, total: int) -> None:
        job.check()
        now = time.monotonic()
        if done == total or now - last_report[0] >= PROGRESS_INTERVAL_S:
            last_report[0] = now
            job.report(done, total)

    cfg = project.train
    # The project's own setting, else the window's default: every core, this job's thread being below the window's
    # priority (workbench.gui.jobs), or one core fewer where it cannot be.
    threads = int(cfg.threads or default_threads(True))
    before = torch.get_num_threads()
    change = loaded.device.type == "cpu" and threads != before
    if change:
        torch.set_num_threads(threads)      # this thread's only: a live training run keeps its own
    try:
        return evaluate_weights(loaded.model, loaded.task, loaded.device, split, cfg.batch_size, cfg.chunk_len,
                                max_batches, step=loaded.step, trained=loaded.trained, best=weights == "best",
                                progress=progress)
    finally:
        if change:
            torch.set_num_threads(before)   # the worker's thread may run the next job


def metric_title(key: str) -> str:
    """``ppl`` -> ``perplexity (ppl)``; a metric the dialog does not know keeps its own name."""
    title = METRIC_TITLES.get(key)
    return key if title is None or title == key else f"{title} ({key})"


def caption(result: Any) -> str:
    """``test · best weights at step 500 · 12 batches · 3.1 s``."""
    if not result.trained:
        weights = "untrained weights"
    else:
        weights = f"{'best' if result.best else 'current'} weights at step {result.step:,}"
    batches = f"{result.batches:,} batch{'' if result.batches == 1 else 'es'}"
    return f"{SPLIT_WORDS.get(result.split, result.split)} · {weights} · {batches} · {result.seconds:.1f} s"


def log_line(result: Any) -> str:
    """The line for the window's Log dock: the CLI's line, then which weights and how much data."""
    weights = "untrained weights" if not result.trained else f"{'best' if result.best else 'current'} weights"
    return (f"Evaluated {result.summary()}  ({weights}, {result.batches:,} batch"
            f"{'' if result.batches == 1 else 'es'}, {result.seconds:.1f} s)")


class EvaluateDialog(QDialog):
    """Split, weights and batches; Evaluate runs in the worker and the metrics appear in a table.

    ``evaluate(split, weights, max_batches)`` does what pressing Evaluate does (tests and scripts); the last
    result is ``result`` (a :class:`workbench.core.training.evaluation.Evaluation`) and the last error ``error``."""

    evaluationFinished = Signal(object)
    evaluationFailed = Signal(str)
    evaluationCancelled = Signal()
    splitsChecked = Signal()

    def __init__(self, window: Any):
        super().__init__(window)
        # one worker thread: the session is used from one thread at a time; a newer count of the splits, or a
        # cancelled evaluation, leaves the older job's answer undelivered
        self.jobs = JobRunner("evaluation", self)
        # the snapshot of the hidden-units view: the same rules for every worker
        from workbench.core.training.session import ModelSession
        from workbench.gui.inspect_units import snapshot
        self._snapshot = snapshot
        self.main_window = window
        self.doc = window.doc
        self.registry = window.registry
        self.session = ModelSession(self.registry)
        self.result: Any = None
        self.error = ""
        self._splits: dict[str, tuple[int | None, str]] = {}
        self._splits_key: Any = None
        self.setObjectName("evaluateDialog")
        self.setWindowTitle("Evaluate")
        self._build()
        self.doc.projectReplaced.connect(self._on_project_replaced)
        self.doc.graphChanged.connect(self._on_design_changed)
        self.doc.settingsChanged.connect(self._on_design_changed)
        bridge = getattr(window, "bridge", None)
        if bridge is not None:               # a run brings new (and best) weights back into the project
            bridge.stateSaved.connect(lambda *_: self.refresh_weights())
            bridge.runEnded.connect(lambda *_: self.refresh_weights())
        # A dialog is a window of its own: closing the main window leaves it open.  It closes with the main window
        # instead, cancelling its evaluation, so nothing runs behind a closed window and quitting (which waits
        # for the worker) does not wait for a whole evaluation to end.
        window.installEventFilter(self)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.cancel)
        # A window deleted without closing: only the jobs' flags are touched (the widgets are going away), so the
        # runner's wait when it is destroyed ends at the next batch rather than at the end of the evaluation.
        jobs = self.jobs
        window.destroyed.connect(lambda *_: jobs.cancel_all())
        self.refresh_weights()

    # ---- building ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(16, 14, 16, 12)
        root.setSpacing(10)
        self.heading = QLabel()
        self.heading.setTextFormat(Qt.TextFormat.RichText)
        self.heading.setWordWrap(True)
        root.addWidget(self.heading)

        form = QFormLayout()
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(8)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

        self.split_group = QButtonGroup(self)
        self.split_buttons: dict[str, QRadioButton] = {}
        row = QHBoxLayout()
        row.setSpacing(16)
        for split, title in SPLITS:
            button = QRadioButton(title)
            button.setObjectName(f"split_{split}")
            self.split_group.addButton(button)
            self.split_buttons[split] = button
            row.addWidget(button)
        row.addStretch(1)
        self.split_buttons["valid"].setChecked(True)
        self.split_group.buttonToggled.connect(lambda *_: self._update_batches_label())
        self.split_note = QLabel()
        self.split_note.setWordWrap(True)
        set_muted(self.split_note)
        self.split_note.hide()
        col = QVBoxLayout()
        col.setSpacing(2)
        col.addLayout(row)
        col.addWidget(self.split_note)
        form.addRow("Split:", col)

        self.weights_group = QButtonGroup(self)
        self.current_button = QRadioButton("Current")
        self.current_button.setToolTip("The weights of the latest checkpoint")
        self.best_button = QRadioButton("Best")
        self.weights_group.addButton(self.current_button)
        self.weights_group.addButton(self.best_button)
        self.current_button.setChecked(True)
        self.best_note = QLabel(NO_BEST)
        self.best_note.setWordWrap(True)
        set_muted(self.best_note)
        # under the radio button's text, not under its circle
        indent = self.style().pixelMetric(QStyle.PixelMetric.PM_ExclusiveIndicatorWidth) + \
            self.style().pixelMetric(QStyle.PixelMetric.PM_RadioButtonLabelSpacing)
        self.best_note.setContentsMargins(indent, 0, 0, 0)
        col = QVBoxLayout()
        col.setSpacing(2)
        col.addWidget(self.current_button)
        col.addWidget(self.best_button)
        col.addWidget(self.best_note)
        form.addRow("Weights:", col)

        self.batches_spin = QSpinBox()
        self.batches_spin.setRange(0, MAX_BATCHES)
        self.batches_spin.setSpecialValueText("All")      # 0, as seqwb eval --max-batches 0
        self.batches_spin.setAccelerated(True)
        self.batches_spin.setMinimumWidth(90)
        self.batches_spin.setToolTip("Evaluate the first N batches of the split (seqwb eval --max-batches N), "
                                     "or all of them")
        self.batches_label = QLabel()
        set_muted(self.batches_label)
        row = QHBoxLayout()
        row.setSpacing(8)
        row.addWidget(self.batches_spin)
        row.addWidget(self.batches_label, 1)
        form.addRow("Batches:", row)
        root.addLayout(form)

        # the untrained note: an information icon and the text, on a tinted band
        self.untrained_box = QFrame()
        self.untrained_box.setObjectName("untrainedBox")
        self.untrained_box.setAutoFillBackground(True)
        band = QHBoxLayout(self.untrained_box)
        band.setContentsMargins(8, 6, 8, 6)
        band.setSpacing(8)
        icon = QLabel()
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxInformation).pixmap(size, size))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        band.addWidget(icon)
        self.untrained_note = QLabel(UNTRAINED)
        self.untrained_note.setObjectName("untrainedNote")
        self.untrained_note.setWordWrap(True)
        band.addWidget(self.untrained_note, 1)
        root.addWidget(self.untrained_box)

        box = QGroupBox("Result")
        inner = QVBoxLayout(box)
        inner.setSpacing(6)
        self.result_stack = QStackedWidget()
        # what there is instead of a table: the hint, "Evaluating…", or why it could not evaluate (in full, since a
        # data error or a plugin's message is what the user needs to read)
        self.placeholder = QLabel(PLACEHOLDER)
        self.placeholder.setObjectName("evaluationMessage")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setMargin(12)
        self.placeholder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_stack.addWidget(self.placeholder)
        self.table = QTableWidget(0, 2)
        self.table.setObjectName("evaluationTable")
        self.table.setHorizontalHeaderLabels(["Metric", "Value"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.result_stack.addWidget(self.table)
        self.result_stack.setMinimumHeight(150)
        inner.addWidget(self.result_stack, 1)
        self.caption_label = QLabel(" ")        # keeps its line while empty: the table does not jump
        self.caption_label.setObjectName("evaluationCaption")
        self.caption_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        set_muted(self.caption_label)
        inner.addWidget(self.caption_label)
        root.addWidget(box, 1)

        # the busy indicator and a one-line status at the left of the buttons
        row = QHBoxLayout()
        row.setSpacing(8)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFixedWidth(self.progress.fontMetrics().horizontalAdvance("0,000 / 0,000 batches") + 28)
        self.progress.hide()
        row.addWidget(self.progress)
        self.status = ElidedLabel()
        self.status.setObjectName("evaluationStatus")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        row.addWidget(self.status, 1)
        self.buttons = QDialogButtonBox()
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setDefault(True)
        self.evaluate_button.setMinimumWidth(self.evaluate_button.fontMetrics().horizontalAdvance("Evaluate") + 40)
        self.buttons.addButton(self.evaluate_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.close_button.setToolTip("Close (an evaluation still running is cancelled)")
        self.evaluate_button.clicked.connect(self._on_evaluate_clicked)
        self.buttons.rejected.connect(self.reject)
        row.addWidget(self.buttons)
        root.addLayout(row)
        self._say("")
        self._show_message(PLACEHOLDER)
        self._paint_note()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(520, 580)

    def _paint_note(self) -> None:
        """The untrained note's band: the window colour a step towards the text, readable in light and dark
        palettes alike."""
        pal = self.untrained_box.palette()
        window = pal.color(QPalette.ColorRole.Window)
        pal.setColor(QPalette.ColorRole.Window, window.lighter(135) if window.lightness() < 128 else window.darker(108))
        self.untrained_box.setPalette(pal)

    # ---- state ---------------------------------------------------------------------------------------------
    def _base_dir(self) -> Path:
        return Path(self.doc.path).resolve().parent if self.doc.path else Path.cwd()

    def is_running(self) -> bool:
        return self.jobs.pending("evaluate")

    def split(self) -> str:
        return next(s for s, b in self.split_buttons.items() if b.isChecked())

    def weights(self) -> str:
        return "best" if self.best_button.isChecked() else "current"

    def split_info(self) -> dict[str, tuple[int | None, str]]:
        """The last count: split -> (its batches, or None when the task cannot say; why it cannot be evaluated,
        or "").  Empty until the worker has read the data."""
        return dict(self._splits)

    def refresh_weights(self) -> None:
        """The weights the project has now (training adds a checkpoint and best weights as it goes)."""
        project = self.doc.project
        muted = muted_text_color(self).name()
        self.heading.setText(f"<b>{html.escape(project.name)}</b><br><span style='color:{muted}'>The loss and the "
                             f"task's metrics on data the model was not trained on, as <code>seqwb&nbsp;eval</code> "
                             f"reports them.</span>")
        available = available_weights(project)
        current = available["current"]
        if current["trained"]:
            self.current_button.setText(f"Current (step {current['step']:,})")
        else:
            self.current_button.setText("Current: untrained")
        self.untrained_box.setVisible(not current["trained"])
        best = available.get("best")
        if best:
            step = f"step {best['step']:,}" if isinstance(best.get("step"), int) else "kept in validation"
            what = ""
            if best.get("metric") and isinstance(best.get("value"), (int, float)):
                what = f", {str(best['metric']).replace('/', ' ')} {best['value']:.4g}"   # "valid loss 1.23"
            self.best_button.setText(f"Best ({step}{what})")
            self.best_button.setToolTip("The weights of the best validation so far")
        else:
            self.best_button.setText("Best")
            self.best_button.setToolTip(NO_BEST)
            if self.best_button.isChecked():
                self.current_button.setChecked(True)
        self.best_note.setVisible(not best)
        self._update_buttons()

    def _splits_key_now(self) -> Any:
        project = self.doc.project
        return (project.task.id, json.dumps(project.task.params, sort_keys=True, default=str),
                project.train.batch_size, project.train.chunk_len, str(self._base_dir()))

    def check_splits(self) -> bool:
        """Count each split's batches in the worker (reading the data), unless the task settings, batch size and
        chunk length are those of the last count.  Returns whether a count was started."""
        key = self._splits_key_now()
        if key == self._splits_key or self.doc.report().problems:
            return False
        self._splits_key = key
        self._splits = {}
        self.batches_label.setText("reading the data…")
        # a count asked for later (the settings changed meanwhile) supersedes this one
        self.jobs.submit(functools.partial(count_splits, self.session, self._snapshot(self.doc.project),
                                           self._base_dir()),
                         key="splits", on_result=self._on_splits, on_error=self._on_splits_failed)
        return True

    def _on_splits(self, found: dict[str, tuple[int | None, str]]) -> None:
        self._splits = dict(found)
        reasons = []
        for split, button in self.split_buttons.items():
            batches, reason = found.get(split, (None, ""))
            button.setEnabled(not reason and not self.is_running())
            if reason:
                button.setToolTip(reason)
                reasons.append(reason[:1].upper() + reason[1:])     # the task's message names the split
            else:
                button.setToolTip(f"{batches:,} batches" if isinstance(batches, int) else "")
        if self.split_buttons[self.split()].isEnabled() is False:
            other = next((b for b in self.split_buttons.values() if b.isEnabled()), None)
            if other is not None:
                other.setChecked(True)
        self.split_note.setText("\n".join(reasons))
        self.split_note.setVisible(bool(reasons))
        self._update_batches_label()
        self._update_buttons()
        self.splitsChecked.emit()

    def _on_splits_failed(self, message: str) -> None:
        self._splits_key = None         # try again at the next Evaluate or show
        self.batches_label.setText("")
        self.split_note.hide()          # what an earlier count found no longer holds
        for button in self.split_buttons.values():
            button.setToolTip("")
        self._update_buttons()
        if not self.is_running():
            self._show_message(f"Cannot read the data: {message}", error=True)
        self.splitsChecked.emit()

    def _update_batches_label(self) -> None:
        batches, reason = self._splits.get(self.split(), (None, ""))
        if isinstance(batches, int) and not reason:
            self.batches_label.setText(f"of {batches:,} in the {SPLIT_WORDS[self.split()]} split")
            self.batches_spin.setMaximum(max(1, batches))
        elif not self.jobs.pending("splits"):
            self.batches_label.setText("")
            self.batches_spin.setMaximum(MAX_BATCHES)

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.evaluate_button.setText("Cancel" if running else "Evaluate")
        for split, button in self.split_buttons.items():
            button.setEnabled(not running and not self._splits.get(split, (None, ""))[1])
        self.current_button.setEnabled(not running)
        self.best_button.setEnabled(not running and "best" in available_weights(self.doc.project))
        self.batches_spin.setEnabled(not running)
        self.table.setEnabled(not running)      # the last result, greyed while the next one is computed
        if running:
            self.evaluate_button.setEnabled(True)
            self.evaluate_button.setToolTip("Stop the evaluation after the current batch")
            return
        problems = self.doc.report().problems
        missing = self._splits.get(self.split(), (None, ""))[1]
        reason = (f"The model graph is not complete: {problems[0]}" if problems
                  else f"The {SPLIT_WORDS[self.split()]} split cannot be evaluated: {missing}" if missing else "")
        self.evaluate_button.setEnabled(not reason)
        self.evaluate_button.setToolTip(reason or "Evaluate the model on the chosen split, in the background")

    def _say(self, text: str) -> None:
        """The one-line status next to the buttons: what the worker is doing, or that it was cancelled."""
        self.status.setText(text)
        set_muted(self.status)

    def _show_message(self, text: str, error: bool = False) -> None:
        """A message where the table goes (the previous result, if any, no longer applies)."""
        show_note(self.placeholder, text, error)
        self.result_stack.setCurrentWidget(self.placeholder)
        self.caption_label.setText(" ")

    # ---- evaluating ----------------------------------------------------------------------------------------
    def _on_evaluate_clicked(self) -> None:
        if self.is_running():
            self.cancel()
        else:
            self.evaluate()

    def evaluate(self, split: str | None = None, weights: str | None = None, max_batches: int | None = None) -> bool:
        """Start evaluating in the worker (by default what the dialog's choices say).  Returns False, with the
        reason in the dialog, when it cannot start."""
        if self.is_running():
            return False
        inspector = getattr(self.main_window, "inspector", None)
        if inspector is not None:
            inspector.commit_pending()      # a value typed in the inspector and not yet applied counts
        self.refresh_weights()
        split = split or self.split()
        weights = weights or self.weights()
        max_batches = self.batches_spin.value() if max_batches is None else max_batches
        # refused before the choices change: a split or weights the dialog shows as disabled stay unchosen
        problems = self.doc.report().problems
        if problems:
            return self._refuse(f"The model graph is not complete: {problems[0]}")
        if weights == "best" and "best" not in available_weights(self.doc.project):
            return self._refuse(NO_BEST)
        missing = self._splits.get(split, (None, ""))[1]
        if missing:
            return self._refuse(f"The {SPLIT_WORDS[split]} split cannot be evaluated: {missing}")
        self.split_buttons[split].setChecked(True)
        (self.best_button if weights == "best" else self.current_button).setChecked(True)
        self.batches_spin.setValue(max_batches)
        self.check_splits()             # the task settings may have changed since the last count
        self.jobs.submit(functools.partial(evaluate_in_worker, self.session, self._snapshot(self.doc.project),
                                           self._base_dir(), split, weights, max_batches),
                         key="evaluate", on_result=self._on_finished, on_error=self._on_failed,
                         on_progress=self._on_progress)
        self.error = ""
        self.progress.setRange(0, 0)
        self.progress.setFormat("")
        self.progress.show()
        if self.result_stack.currentWidget() is self.placeholder:
            self._show_message(f"Evaluating the {SPLIT_WORDS[split]} split…")
        self._say("Loading the model and the data…")
        self._update_buttons()
        return True

    def _refuse(self, reason: str) -> bool:
        self.error = reason
        self._show_message(reason, error=True)
        return False

    def cancel(self) -> None:
        """Stop the running evaluation at the next batch; returns at once (the worker ends on its own, and what it
        still reports is dropped)."""
        if not self.is_running():
            return
        self.jobs.drop("evaluate")
        self.progress.hide()
        if self.result_stack.currentWidget() is self.placeholder:
            self._show_message(PLACEHOLDER)
        self._say("Evaluation cancelled.")
        self._update_buttons()
        self.evaluationCancelled.emit()

    def wait(self, ms: int = 60000) -> bool:
        """Block until the worker is idle (tests)."""
        return self.jobs.wait(ms)

    def _on_progress(self, done: int, total: int) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
            self.progress.setFormat(f"{done:,} / {total:,} batches")
        else:
            self.progress.setFormat(f"{done:,} batches")
        self._say("Evaluating…")

    def _finish(self) -> None:
        """The evaluation ended (the runner no longer counts it as running)."""
        self.progress.hide()
        self._say("")
        self._update_buttons()

    def _on_finished(self, result: Any) -> None:
        self._finish()
        self.show_result(result)
        log = getattr(self.main_window, "log", None)
        if callable(log):
            log(log_line(result))
        self.evaluationFinished.emit(result)

    def _on_failed(self, message: str) -> None:
        self._finish()
        self.error = message
        self._show_message(f"Could not evaluate: {message}", error=True)
        self.evaluationFailed.emit(message)

    def show_result(self, result: Any) -> None:
        """The metrics in the table (formatted as ``seqwb eval`` prints them) and what they were measured on."""
        from workbench.core.training.evaluation import format_metric
        self.result = result
        self.table.setRowCount(0)
        for key, value in result.metrics.items():
            row = self.table.rowCount()
            self.table.insertRow(row)
            name = QTableWidgetItem(metric_title(key))
            name.setData(Qt.ItemDataRole.UserRole, key)
            name.setToolTip(key)
            text = format_metric(value)
            shown = QTableWidgetItem(text)
            shown.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            shown.setToolTip(text)
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, shown)
        self.result_stack.setCurrentWidget(self.table)
        self.caption_label.setText(caption(result))

    def values(self) -> dict[str, str]:
        """The table as shown: metric key -> the value's text."""
        return {self.table.item(r, 0).data(Qt.ItemDataRole.UserRole): self.table.item(r, 1).text()
                for r in range(self.table.rowCount())}

    # ---- the window's changes ------------------------------------------------------------------------------
    def _on_project_replaced(self) -> None:
        self.cancel()
        from workbench.core.training.session import ModelSession
        self.session = ModelSession(self.registry)     # the old one is the cancelled job's until it ends
        self._splits, self._splits_key = {}, None
        self.jobs.drop("splits")
        self.split_note.hide()
        self.result = None
        self.table.setRowCount(0)
        self._show_message(PLACEHOLDER)
        self._say("")
        self.refresh_weights()
        if self.isVisible():
            self.check_splits()

    def _on_design_changed(self, *_args: Any) -> None:
        self.refresh_weights()
        if self.isVisible() and not self.is_running():
            self.check_splits()

    # ---- showing and closing -------------------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self.refresh_weights()
        self.check_splits()

    def reject(self) -> None:
        """Close (and Escape, and the title bar's ×): cancel a running evaluation without waiting for it."""
        self.cancel()
        super().reject()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        # The main window hidden by the program (closed, not minimised by the window system): close too.
        if watched is self.main_window and event.type() == QEvent.Type.Hide and not event.spontaneous():
            self.cancel()
            if self.isVisible():
                self.reject()
        return False


def register(views: ViewRegistry) -> None:
    """Run ▸ Evaluate… (Ctrl+E): the window's dialog, built the first time (it imports the model session and the
    hidden-units helpers), then shown again with the choices made last time."""
    window = views.window
    views.register_view("evaluate", place=DIALOG, build=lambda _parent: EvaluateDialog(window), entries=[
        MenuEntry("&Evaluate…", menu="run", shortcut="Ctrl+E",
                  tip="The model's metrics on the validation or test split, at the current or the best weights "
                      "(Ctrl+E)")])
