"""The training dashboard: run settings and progress, the runs of the project, and the live plots.

It shows one *primary* run (the live run, or else the latest run of the project's history) and, on top of it,
the runs the user ticks in the runs list (overlays: an RNN against an LSTM on the adding problem, say).  Every run
shown is a :class:`RunTraces`: fixed-memory series built from the run's record in the history and, for the live
run, extended by the events the :class:`~workbench.gui.run_bridge.RunBridge` hands over once a tick.  Plots are
redrawn from a single-shot timer at most ~25 times a second and only when something changed; a curve is only
given new data when its series changed.  Nothing here computes model results: every number comes from the
trainer's events or the run's record.
"""

from __future__ import annotations

import html
import itertools
import math
import os
import time
from typing import Any, Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPixmap, QUndoCommand
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFrame, QGridLayout, QHBoxLayout,
                               QHeaderView, QLabel, QPlainTextEdit, QProgressBar, QPushButton, QScrollArea,
                               QSpinBox, QSplitter, QToolButton, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from workbench.core.training.events import EPOCH
from workbench.gui.forms import ElidedLabel
from workbench.gui.plots import (GROUP_PATH_SUFFIX, LOG_FLOOR, Decimator, HeatmapPanel, PlotPanel, pen,
                                 run_color, series_color, trailing_mean)
from workbench.gui.style import canvas_theme, set_muted, ui_font

SERIES_CAPACITY = 4096      # points kept per series per run shown (whatever the run's length)
HEATMAP_ROWS = 256          # probe rows kept per layer in the gradient-through-time heatmap
SAMPLES_KEPT = 6
PANELS_PER_FRAME = 2        # plots given new data per pass of the event loop (see TrainingDashboard.redraw)
FRAME_MS = 16
PANEL_INTERVAL = 0.25       # a plot gets new data at most four times a second
QUANTITIES = (("dLT_dh", "‖∂L_T/∂h_t‖: loss at the last step only"), ("dL_dh", "‖∂L/∂h_t‖: the whole loss"))
METRIC_PREFERENCE = ("ppl", "bpc", "accuracy", "bleu", "mse", "mae")
DASH = Qt.PenStyle.DashLine
DOT = Qt.PenStyle.DotLine
LAYER_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashDotLine, Qt.PenStyle.DashDotDotLine)
#: how the bar names the state of a run that is not training ("run-1 finished at step 200")
ENDED_WORDS = {"finished": "finished at", "stopped": "stopped at", "running": "interrupted at",
               # a failure happens while computing the step after the last one that finished
               "failed": "failed after"}

# Serial numbers for the runs shown: a run rebuilt from the record (another project, the same run id) is another
# picture, even when its id, status and numbers of points match the one drawn before.
_trace_uids = itertools.count(1)


def _reduce_for(key: str) -> str:
    # gradient norms keep their peaks when long runs are folded: an explosion must stay visible
    return "max" if key.startswith(("train/grad_norm", "grad/", "grad_clipped/")) else "mean"


def _log10_row(values: Iterable[float]) -> np.ndarray:
    a = np.asarray(list(values), dtype=np.float64)
    a = np.where(np.isfinite(a), a, LOG_FLOOR)
    return np.log10(np.maximum(a, LOG_FLOOR))


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def cpu_cores() -> int:
    """The cores this process may use (without importing torch, which ``core.device`` does)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ---- one run's data, in fixed memory ------------------------------------------------------------------------

class RunTraces:
    """The series, probes and samples of one run as the dashboard draws them."""

    def __init__(self, run_id: str, settings: dict | None = None):
        self.run_id = run_id
        self.settings = dict(settings or {})
        self.status = ""
        self.message = ""
        self.series: dict[str, Decimator] = {}
        self.gtt: dict[tuple[str, str], Decimator] = {}      # (layer, quantity) -> rows of log10 norms
        self.gtt_latest: dict[str, dict[str, list[float]]] = {}
        self.gtt_latest_step = 0
        self.layers: list[str] = []
        self.samples: list[tuple[int, str]] = []
        self.epoch_starts: list[tuple[int, int]] = []        # (step, epoch) where an epoch began
        self._epoch = None
        self.last_step = 0
        self.version = 0
        self.uid = next(_trace_uids)

    # ---- building from the record ------------------------------------------------------------------------
    @classmethod
    def from_run(cls, run: Any) -> "RunTraces":
        traces = cls(run.id, run.settings)
        traces.status, traces.message = run.status, run.message
        for key, s in run.series.items():
            if not s.step:
                continue
            if key == "train/epoch":
                traces._epochs(s.step, s.value)
                continue
            steps = np.asarray(s.step, dtype=np.float64)
            values = np.asarray(s.value, dtype=np.float64)
            ok = np.isfinite(values)
            traces._series(key).extend(steps[ok], values[ok])
            traces.last_step = max(traces.last_step, int(s.step[-1]))
        for record in run.gtt:
            traces._probe(int(record.get("step", 0)), record.get("layers") or {})
        for sample in run.samples[-SAMPLES_KEPT:]:
            traces.samples.append((int(sample.get("step", 0)), str(sample.get("text", ""))))
        return traces

    def _series(self, key: str) -> Decimator:
        dec = self.series.get(key)
        if dec is None:
            dec = self.series[key] = Decimator(SERIES_CAPACITY, _reduce_for(key))
        return dec

    def _epochs(self, steps: Any, epochs: Any) -> None:
        """Remember the steps where a new epoch began (vectorised: a long record has a value per step)."""
        e = np.asarray(epochs, dtype=np.int64)
        if not len(e):
            return
        if self._epoch is None:
            self._epoch = int(e[0])
        previous = np.concatenate([[self._epoch], e[:-1]])
        for i in np.nonzero(e != previous)[0]:
            self.epoch_starts.append((int(steps[i]), int(e[i])))
        self._epoch = int(e[-1])

    def _probe(self, step: int, layers: dict[str, dict[str, list[float]]]) -> None:
        for layer, quantities in layers.items():
            if layer not in self.layers:
                self.layers.append(layer)
            for q, _ in QUANTITIES:
                values = quantities.get(q)
                if not values:
                    continue
                row = _log10_row(values)
                dec = self.gtt.get((layer, q))
                if dec is None or dec.width != len(row):   # a new probe length starts the picture again
                    dec = self.gtt[(layer, q)] = Decimator(HEATMAP_ROWS, "mean", width=len(row))
                dec.append(step, row)
            self.gtt_latest[layer] = {q: list(v) for q, v in quantities.items()}
        self.gtt_latest_step = step
        self.version += 1

    # ---- live events ---------------------------------------------------------------------------------------
    def add_events(self, events: list[tuple[str, Any]]) -> dict[str, Any]:
        """Add a tick's worth of events; returns what the status line needs (the last step event)."""
        columns: dict[str, tuple[list[float], list[float]]] = {}

        def put(key: str, step: int, value: float) -> None:
            if value is not None and math.isfinite(value):
                xs, ys = columns.setdefault(key, ([], []))
                xs.append(step)
                ys.append(value)

        last_step_event = None
        for kind, ev in events:
            if kind == "step":
                last_step_event = ev
                s = ev.step
                for key, value in ev.metrics.items():   # the series the step recorded, by their own names
                    if key != EPOCH:
                        put(key, s, value)
                self._epochs([s], [ev.epoch])
                self.last_step = s
            elif kind == "eval":
                for k, v in ev.metrics.items():
                    if isinstance(v, (int, float)):
                        put(f"{ev.split}/{k}", ev.step, float(v))
            elif kind == "probe":
                for k, v in ev.sigma.items():
                    put(f"sigma/{k}", ev.step, v)
                self._probe(ev.step, ev.gtt)
            elif kind == "sample":
                self.samples.append((ev.step, ev.text))
                del self.samples[:-SAMPLES_KEPT]
        for key, (xs, ys) in columns.items():
            self._series(key).extend(xs, ys)
        self.version += 1
        return {"step": last_step_event}

    # ---- reading -------------------------------------------------------------------------------------------
    def keys(self, prefix: str) -> list[str]:
        return sorted(k[len(prefix):] for k in self.series if k.startswith(prefix))

    def metric_names(self) -> list[str]:
        return [k for k in self.keys("valid/") if k != "loss"]

    @property
    def label(self) -> str:
        cells = "+".join(self.settings.get("cells") or []) or "?"
        return f"{self.run_id} ({cells})"

    def planned_steps(self) -> int:
        """The steps the run was set to train (0 when it trains by epochs: the record does not say how many)."""
        train = self.settings.get("train") or {}
        return 0 if train.get("epochs") else int(train.get("steps") or 0)


# ---- deleting runs (one undo step) ---------------------------------------------------------------------------

class DeleteRuns(QUndoCommand):
    """Remove runs from the project's history; undo puts them back where they were."""

    def __init__(self, doc: Any, run_ids: list[str], changed: Any):
        super().__init__(f"Delete {', '.join(run_ids)}")
        self.doc, self.changed = doc, changed
        runs = doc.project.history.runs
        self.removed = [(i, r) for i, r in enumerate(runs) if r.id in run_ids]

    def redo(self) -> None:
        ids = {r.id for _, r in self.removed}
        self.doc.project.history.runs[:] = [r for r in self.doc.project.history.runs if r.id not in ids]
        self.changed()

    def undo(self) -> None:
        runs = self.doc.project.history.runs
        for i, run in self.removed:
            runs.insert(min(i, len(runs)), run)
        self.changed()


# ---- the run settings bar -----------------------------------------------------------------------------------

class SpeedLabel(ElidedLabel):
    """The device and throughput text beside the progress bar ("CPU (1 thread) · 16,420 tokens/s").

    Its size hint is that of the widest text it shows, not of the current one: the text changes every tick and must
    not move the progress bar (or re-lay out the row); in a narrow window it gives way and ends in "…"."""

    WIDEST = "CUDA: NVIDIA GeForce · 999,999 tokens/s"

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.fontMetrics().horizontalAdvance(self.WIDEST) + 4, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.fontMetrics().horizontalAdvance("999,999 tok…"), super().minimumSizeHint().height())


class RunSettingsBar(QWidget):
    """Device, CPU threads and mixed precision: the project's training settings, edited through the document (one
    undo step each, the same values the inspector shows).  Disabled while a run is live: they apply at Train."""

    def __init__(self, doc: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc = doc
        self.cores = cpu_cores()
        self.devices: list[tuple[str, str]] = [("auto", "Auto"), ("cpu", "CPU")]
        self.has_cuda = False
        self._syncing = False
        self.device = QComboBox()
        self.device.setToolTip("The device to train on. Auto: CUDA, then Apple MPS, then the CPU.")
        self.threads = QSpinBox()
        self.threads.setRange(0, max(1, self.cores))
        self.threads.setSpecialValueText(f"auto ({max(1, self.cores - 1)})")
        self.threads.setToolTip(f"CPU threads for training. Auto leaves one of the {self.cores} cores to the window "
                                f"so that it stays responsive.")
        self.amp = QCheckBox("Mixed precision")
        self.amp.setToolTip("Train in float16/bfloat16 where it is safe (torch.autocast). CUDA only.")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.device_label = QLabel("Device")
        self.threads_label = QLabel("Threads")
        self.threads_label.setToolTip(self.threads.toolTip())
        for w in (self.device_label, self.device, self.threads_label, self.threads, self.amp):
            layout.addWidget(w)
        self.device.currentIndexChanged.connect(self._device_chosen)
        self.threads.editingFinished.connect(lambda: self._commit("threads", self.threads.value()))
        self.threads.valueChanged.connect(lambda v: self._commit("threads", v) if not self.threads.hasFocus() else None)
        self.amp.toggled.connect(lambda on: self._commit("amp", bool(on)))
        self.sync()

    def set_devices(self, devices: list[tuple[str, str]]) -> None:
        """``[(value, label)]`` found by the window's device probe (CUDA devices, MPS)."""
        self.devices = [("auto", "Auto"), ("cpu", "CPU")] + [d for d in devices if d[0] not in ("auto", "cpu")]
        self.has_cuda = any(v.startswith("cuda") for v, _ in self.devices)
        self.sync()

    def sync(self) -> None:
        """Show the project's current values."""
        cfg = self.doc.project.train
        self._syncing = True
        try:
            self.device.clear()
            options = list(self.devices)
            if cfg.device not in {v for v, _ in options}:
                options.append((cfg.device, f"{cfg.device} (not found here)"))
            for value, label in options:
                self.device.addItem(label, value)
            self.device.setCurrentIndex(max(0, self.device.findData(cfg.device)))
            self.threads.setValue(min(cfg.threads, self.threads.maximum()))
            self.amp.setChecked(bool(cfg.amp))
        finally:
            self._syncing = False
        self._enable_parts()

    def _enable_parts(self) -> None:
        device = self.device.currentData() or "auto"
        on_cpu = device == "cpu" or (device == "auto" and not self.has_cuda)
        self.threads.setEnabled(self.isEnabled() and on_cpu)
        self.threads_label.setEnabled(self.threads.isEnabled())
        cuda = device.startswith("cuda") or (device == "auto" and self.has_cuda)
        self.amp.setEnabled(self.isEnabled() and cuda)
        # an option this machine can never use takes no room in the row (a file from a CUDA machine that has it on
        # still shows it, ticked and greyed out)
        self.amp.setVisible(self.has_cuda or self.amp.isChecked())
        if not cuda:
            self.amp.setToolTip("Mixed precision needs a CUDA device; none is chosen (or found).")
        else:
            self.amp.setToolTip("Train in float16/bfloat16 where it is safe (torch.autocast). CUDA only.")

    def changeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == event.Type.EnabledChange:
            self._enable_parts()

    def _device_chosen(self, _index: int) -> None:
        if not self._syncing:
            self._commit("device", self.device.currentData() or "auto")
        self._enable_parts()

    def _commit(self, name: str, value: Any) -> None:
        if self._syncing:
            return
        error = self.doc.set_setting("train", name, value)
        if error:
            self.setToolTip(error)


# ---- the progress bar ---------------------------------------------------------------------------------------

class ProgressLine(QProgressBar):
    """The run's progress bar, whose text stays on one line.

    Qt's styles wrap a text that is wider than the bar onto a second line inside it, cut at the top and the
    bottom ("paused · step 111 / 200 · epoch 1 · 0:17 left" at the default window size).  Here the text the style
    draws (``text()``, virtual) ends in "…" when it does not fit, and the whole text is in the tooltip.
    """

    TEXT_MARGIN = 8          # the style's padding around the text, both sides together

    def setFormat(self, text: str) -> None:  # noqa: N802 - keeps the tooltip in step with the text
        super().setFormat(text)
        self.setToolTip(text)

    def text(self) -> str:
        room = max(0, self.contentsRect().width() - self.TEXT_MARGIN)
        return self.fontMetrics().elidedText(super().text(), Qt.TextElideMode.ElideRight, room)


class _ContentsCombo(QComboBox):
    """A combo box as wide as its items, never wider.

    Qt keeps the minimum width a combo worked out while it was empty (seven "x"), wider than "rnn.0"; the width
    comes out of the plot's title beside it, which is then cut."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return self.sizeHint()


# ---- the dashboard ------------------------------------------------------------------------------------------

class TrainingDashboard(QWidget):
    """``TrainingDashboard(doc)``; the window calls ``begin_run`` / ``consume`` / ``save_state`` / ``end_run``."""

    def __init__(self, doc: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("trainingDashboard")
        self.doc = doc
        self.primary: RunTraces | None = None
        self.overlays: dict[str, RunTraces] = {}
        self.checked: set[str] = set()
        self.live_run_id: str | None = None
        self._run_device = ""            # "CPU (1 thread)" of the live run, for the speed text
        self.smoothing = 20
        self.quantity = "dLT_dh"
        self.metric_name = ""
        self._drawn: dict[tuple[str, str], tuple] = {}
        self._epoch_lines: list[Any] = []
        self._epoch_drawn: tuple = ()
        self._clip_line: Any = None
        self._dirty = False
        self._redraw_cost = 0.0
        self._next_panel = 0
        self.redraws = 0
        # the live run's progress: "step 111 / 200 · epoch 1", the time left, paused or not
        self._progress_text = ""
        self._eta = math.nan
        self._paused = False
        self._planned_steps = 0             # the live run's total steps (from its plan, or estimated by epochs)
        self._samples_shown: tuple = ()

        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.timeout.connect(self.redraw)

        self._build()
        doc.projectReplaced.connect(self._on_project_replaced)
        doc.settingsChanged.connect(self._on_settings_changed)
        self.reload()

    # ---- building ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        top = QHBoxLayout()
        top.setContentsMargins(6, 4, 6, 2)
        top.setSpacing(6)
        self.action_row = QHBoxLayout()
        self.action_row.setSpacing(2)
        top.addLayout(self.action_row)
        self.settings_bar = RunSettingsBar(self.doc)
        top.addWidget(self.settings_bar)
        self.progress = ProgressLine()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("not training")
        # the row must fit the central area the docks leave at 1280 px (about 720 px): the speed text elides
        # before the tab has to scroll
        self.progress.setMinimumWidth(250)
        top.addWidget(self.progress, 1)
        self.status = SpeedLabel()
        top.addWidget(self.status)

        self.banner = QFrame()
        self.banner.setObjectName("runBanner")
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.banner_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.banner.hide)
        row = QHBoxLayout(self.banner)
        row.setContentsMargins(8, 4, 4, 4)
        row.addWidget(self.banner_text, 1)
        row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.banner.hide()
        self.banner_kind = ""

        # left: the runs and the latest samples
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(6, 2, 2, 6)
        runs_title = QLabel("Runs")
        runs_title.setFont(ui_font(1.0, bold=True))
        side_layout.addWidget(runs_title)
        self.runs = QTreeWidget()
        self.runs.setObjectName("runsList")
        self.runs.setColumnCount(4)
        self.runs.setHeaderLabels(["Run", "Cell", "Steps", "Valid loss"])
        self.runs.setRootIsDecorated(False)
        self.runs.setUniformRowHeights(True)
        self.runs.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.runs.header().setStretchLastSection(False)
        self.runs.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in (1, 2, 3):
            self.runs.header().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.runs.itemChanged.connect(self._on_run_item_changed)
        self.runs.itemSelectionChanged.connect(self._update_delete_button)
        side_layout.addWidget(self.runs, 2)
        hint = QLabel("Tick runs to overlay them on the loss, gradient-norm and gradient-through-time plots.")
        hint.setWordWrap(True)
        hint.setFont(ui_font(0.9))
        set_muted(hint)
        side_layout.addWidget(hint)
        self.delete_button = QPushButton("Delete Run")
        self.delete_button.setToolTip("Delete the selected runs from the project's history (Edit ▸ Undo brings "
                                      "them back). The live run cannot be deleted.")
        self.delete_button.clicked.connect(self.delete_selected_runs)
        from workbench.gui.export_menu import add_dashboard_export_button
        run_buttons = QHBoxLayout()
        run_buttons.addWidget(self.delete_button)
        self.export_button = add_dashboard_export_button(self)
        run_buttons.addWidget(self.export_button)
        run_buttons.addStretch(1)
        side_layout.addLayout(run_buttons)
        self.samples_title = samples_title = QLabel("Latest samples")
        samples_title.setFont(ui_font(1.0, bold=True))
        side_layout.addWidget(samples_title)
        self.samples = QPlainTextEdit()
        self.samples.setObjectName("samplesView")
        self.samples.setReadOnly(True)
        self.samples.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.TypeWriter)
        mono.setPointSizeF(max(8.0, ui_font(0.9).pointSizeF()))
        self.samples.setFont(mono)
        self.samples.setPlaceholderText("Generated text appears here as the model learns (text tasks).")
        side_layout.addWidget(self.samples, 3)

        # right: the plots, reflowed into as many columns as fit
        self._build_panels()
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(4, 2, 4, 4)
        self.grid.setSpacing(6)
        self._columns = 0
        self._row_height = 0
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.grid_host)
        self.scroll.viewport().installEventFilter(self)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(side)
        self.splitter.addWidget(self.scroll)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([270, 1000])
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)
        self._reflow()

    def _build_panels(self) -> None:
        # loss
        self.loss_panel = PlotPanel("Loss", "loss", "step (dotted: epoch starts)", legend=True,
                                    tip="Training loss (faint: every step; solid: smoothed) and validation loss "
                                        "(circles), against the optimizer step. Dotted lines mark new epochs.")
        self.smooth_spin = QSpinBox()
        self.smooth_spin.setRange(0, 5000)
        self.smooth_spin.setValue(self.smoothing)
        self.smooth_spin.setSpecialValueText("off")
        self.smooth_spin.setSuffix(" steps")
        self.smooth_spin.setToolTip("Smoothing: the mean of the last N training losses at each step (0: off)")
        self.smooth_spin.valueChanged.connect(self._set_smoothing)
        self.loss_panel.add_control(QLabel("smooth"))
        self.loss_panel.add_control(self.smooth_spin)
        self.loss_log = self._log_box(self.loss_panel)
        # gradient norm
        self.grad_panel = PlotPanel("Gradient norm", "‖g‖", log_y=True, legend=True,
                                    tip="The global gradient norm of every step, before and after clipping; the "
                                        "dashed line is the clipping threshold (clip_norm).")
        self.grad_log = self._log_box(self.grad_panel)
        # gradient through time: heatmap
        self.heat_panel = HeatmapPanel("Gradient through time", bar_label="log10 norm",
                                       tip="Every probe adds a row: the norm of the gradient with respect to h_t, "
                                           "for each timestep t of a fixed probe sequence (log10, fixed colour "
                                           "scale). Dark on the left means the gradient from the end of the "
                                           "sequence does not reach its start.")
        self.heat_run = _ContentsCombo()
        self.heat_run.setToolTip("The run whose probes the heatmap shows (the run shown, or an overlaid run)")
        self.heat_layer = _ContentsCombo()
        self.heat_layer.setToolTip("The recurrent layer whose probes the heatmap shows")
        for combo in (self.heat_run, self.heat_layer):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.heat_run.currentIndexChanged.connect(self._heat_choice_changed)
        self.heat_layer.currentIndexChanged.connect(self._heat_choice_changed)
        self.heat_panel.add_control(self.heat_run)
        self.heat_panel.add_control(self.heat_layer)
        # gradient through time: latest probe
        self.gtt_panel = PlotPanel("Latest probe", "norm", "t (timestep)", log_y=True,
                                   legend=True,
                                   tip="For the latest probe: the norm of the gradient with respect to h_t, for "
                                       "every timestep t and recurrent layer (log scale). Overlaid runs: dashed.")
        self.quantity_combo = QComboBox()
        for q, text in QUANTITIES:
            self.quantity_combo.addItem(text.split(":")[0], q)
            self.quantity_combo.setItemData(self.quantity_combo.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        self.quantity_combo.setToolTip("‖∂L_T/∂h_t‖: the loss at the last step only, so vanishing shows; "
                                       "‖∂L/∂h_t‖: the whole loss. Also used by the heatmap.")
        self.quantity_combo.currentIndexChanged.connect(self._set_quantity)
        self.gtt_panel.add_control(self.quantity_combo)
        # per-group norms
        self.group_panel = PlotPanel("Gradient norm per group", "‖g‖", log_y=True, legend=True,
                                     tip="The gradient norm of each parameter group. Click a name in the legend "
                                         "to hide or show its curve.")
        # short: the title beside it ("Gradient norm per group") must fit at the default window size
        self.group_clipped = QCheckBox("clipped")
        self.group_clipped.setToolTip("Show the norms after clipping instead of before")
        self.group_clipped.toggled.connect(self._invalidate)
        self.group_panel.add_control(self.group_clipped)
        self.group_log = self._log_box(self.group_panel)
        # spectral norms
        # from zero (a singular value is never negative) and up to 1.5 at least: the line at 1 is always in view
        self.sigma_panel = PlotPanel("Largest singular value of W_hh", "σ_max", legend=True, y_from_zero=True,
                                     y_min_top=1.5,
                                     tip="The largest singular value of each recurrent weight matrix. Below the "
                                         "line at 1 gradients through it shrink step after step; above it they "
                                         "can grow.")
        colors = self.sigma_panel.colors
        one = pg.InfiniteLine(pos=1.0, angle=0, pen=pen(colors["threshold"], 1.4, DASH),
                              label="σ = 1", labelOpts={"position": 0.98, "color": colors["threshold"],
                                                        "fill": _label_fill(colors), "anchors": [(1, 1), (1, 1)]})
        one.setZValue(20)
        self.sigma_panel.plot.addItem(one)
        # metric, learning rate, speed
        self.metric_panel = PlotPanel("Validation metric", "", legend=True,
                                      tip="A metric of the task on the validation split")
        self.metric_combo = QComboBox()
        self.metric_combo.setToolTip("Which metric of the task to show")
        self.metric_combo.currentIndexChanged.connect(self._set_metric)
        self.metric_panel.add_control(self.metric_combo)
        self.lr_panel = PlotPanel("Learning rate", "lr", y_from_zero=True,
                                  tip="The learning rate used at each step (the schedule)")
        self.speed_panel = PlotPanel("Tokens per second", "tokens/s", y_from_zero=True,
                                     tip="Training throughput (input tokens per second, over half-second windows)")
        self.panels = [self.loss_panel, self.grad_panel, self.heat_panel, self.gtt_panel, self.group_panel,
                       self.sigma_panel, self.metric_panel, self.lr_panel, self.speed_panel]

    def _log_box(self, panel: PlotPanel) -> QCheckBox:
        box = QCheckBox("log")
        box.setChecked(panel.log_y)
        box.setToolTip("Logarithmic y axis")
        box.toggled.connect(lambda on, p=panel: (p.set_log(on), self._invalidate()))
        panel.add_control(box)
        return box

    def add_run_actions(self, actions: list[Any]) -> None:
        """Tool buttons for the window's Run actions (Train, Pause, Resume, Stop) at the left of the bar."""
        for act in actions:
            button = QToolButton()
            button.setDefaultAction(act)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
            button.setAutoRaise(True)
            button.setIconSize(QSize(20, 20))
            button.setVisible(act.isVisible())
            # a tool button does not follow its action's visibility (Pause and Resume take turns)
            act.changed.connect(lambda b=button, a=act: b.setVisible(a.isVisible()))
            self.action_row.addWidget(button)

    def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt override
        if obj is self.scroll.viewport() and event.type() == QEvent.Type.Resize:
            self._reflow()
        return False

    def _reflow(self) -> None:
        """As many columns as fit (one to three), and rows tall enough that three of them fill the view."""
        viewport = self.scroll.viewport()
        columns = max(1, min(3, viewport.width() // 330))
        rows = math.ceil(len(self.panels) / columns)
        height = max(190, (viewport.height() - 12) // min(rows, 3) - 6)
        if columns == self._columns and height == self._row_height:
            return
        self._row_height = height
        for panel in self.panels:
            panel.setMinimumHeight(height)
        if columns == self._columns:
            return
        self._columns = columns
        for panel in self.panels:
            self.grid.removeWidget(panel)
        for i, panel in enumerate(self.panels):
            self.grid.addWidget(panel, i // columns, i % columns)
        for c in range(3):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)
        for r in range(rows):
            self.grid.setRowStretch(r, 1)

    # ---- project and runs --------------------------------------------------------------------------------
    def _on_project_replaced(self) -> None:
        """Another project is open (File ▸ Open, New from a template): nothing of the previous one stays.

        ``reload`` alone cannot tell: the new project's latest run can have the same id, status and last step as
        the one shown ("run-1", finished at step 20), and its plots, samples and progress would stay."""
        self.primary = None
        self.overlays.clear()
        self.checked.clear()
        self._drawn.clear()
        for panel in self.panels:         # curves are made again, legend entries in the new project's order
            panel.clear_curves()
        self.heat_panel.set_rows(None, None)
        self._paused = False
        self._progress_text = ""
        self.status.setText("")
        self.heat_panel.reset_levels()
        self.reload()

    def reload(self) -> None:
        """Another project, or its history changed: rebuild the runs list and what is shown."""
        self.settings_bar.sync()
        history = self.doc.project.history
        ids = [r.id for r in history.runs]
        if self.live_run_id is None:
            current = history.current
            if current is None:
                if self.primary is not None:
                    self.primary = None
                    self._reset_ranges()
            elif self.primary is None or self.primary.run_id != current.id or self.primary.status != current.status \
                    or self.primary.last_step != _last_step(current):
                if self.primary is None or self.primary.run_id != current.id:
                    self._reset_ranges()
                self.primary = RunTraces.from_run(current)
            self._show_idle_progress()
        self.checked &= set(ids)
        self.overlays = {rid: t for rid, t in self.overlays.items() if rid in self.checked}
        spec = self.doc.task_spec()
        text_task = spec is None or bool(getattr(spec, "generative", True)) or bool(self.primary and
                                                                                  self.primary.samples)
        self.samples_title.setVisible(text_task)
        self.samples.setVisible(text_task)
        self._show_samples()
        self._fill_runs_list()
        self._invalidate()

    def _show_idle_progress(self) -> None:
        """No run is training: the bar says how far the run shown got, or that there is none."""
        t = self.primary
        if t is None:
            self.progress.setValue(0)
            self.progress.setFormat("not training")
            return
        planned = t.planned_steps()
        if t.status == "finished":
            self.progress.setValue(1000)
        else:
            self.progress.setValue(round(1000 * min(1.0, t.last_step / planned)) if planned else 0)
        if t.status == "new":             # in the history, but it could not start (its data, its model)
            self.progress.setFormat(f"{t.run_id} did not start")
            return
        word = ENDED_WORDS.get(t.status, f"{t.status} at")
        self.progress.setFormat(f"{t.run_id} {word} step {t.last_step}")

    def _fill_runs_list(self) -> None:
        self.runs.blockSignals(True)
        try:
            self.runs.clear()
            primary = self.primary.run_id if self.primary else None
            for run in reversed(self.doc.project.history.runs):
                item = QTreeWidgetItem(self.runs)
                item.setData(0, Qt.ItemDataRole.UserRole, run.id)
                cells = "+".join(run.settings.get("cells") or []) or "?"
                steps = _last_step(run)
                valid = run.series.get("valid/loss")
                item.setText(0, ("▶ " if run.id == self.live_run_id else "") + run.id)
                item.setText(1, cells)
                item.setText(2, str(steps))
                item.setText(3, f"{valid.value[-1]:.4g}" if valid and valid.value else "—")
                item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setIcon(0, _swatch(run_color(run.id)))
                item.setToolTip(0, _run_tooltip(run))
                for c in (1, 2, 3):
                    item.setToolTip(c, _run_tooltip(run))
                flags = item.flags() | Qt.ItemFlag.ItemIsUserCheckable
                if run.id == primary:
                    font = item.font(0)
                    font.setBold(True)
                    item.setFont(0, font)
                    item.setCheckState(0, Qt.CheckState.Checked)
                    item.setFlags(flags & ~Qt.ItemFlag.ItemIsUserCheckable)
                    item.setToolTip(0, "Shown (the live run, or the latest run)\n" + _run_tooltip(run))
                else:
                    item.setFlags(flags)
                    item.setCheckState(0, Qt.CheckState.Checked if run.id in self.checked else Qt.CheckState.Unchecked)
                if run.status == "failed":
                    item.setForeground(0, QBrush(QColor("#d32f2f")))
        finally:
            self.runs.blockSignals(False)
        self._update_delete_button()

    def run_item(self, run_id: str) -> QTreeWidgetItem | None:
        for i in range(self.runs.topLevelItemCount()):
            item = self.runs.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == run_id:
                return item
        return None

    def set_overlay(self, run_id: str, on: bool) -> None:
        """Overlay (or stop overlaying) a run of the history on the primary run."""
        run = next((r for r in self.doc.project.history.runs if r.id == run_id), None)
        if run is None or (self.primary is not None and run_id == self.primary.run_id):
            return
        if on:
            self.checked.add(run_id)
            self.overlays[run_id] = RunTraces.from_run(run)
        else:
            self.checked.discard(run_id)
            self.overlays.pop(run_id, None)
        item = self.run_item(run_id)
        if item is not None:
            self.runs.blockSignals(True)
            item.setCheckState(0, Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.runs.blockSignals(False)
        self._invalidate()

    def _on_run_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            run_id = item.data(0, Qt.ItemDataRole.UserRole)
            self.set_overlay(run_id, item.checkState(0) == Qt.CheckState.Checked)

    def _update_delete_button(self) -> None:
        ids = self.selected_run_ids()
        self.delete_button.setEnabled(bool(ids) and self.live_run_id not in ids)

    def selected_run_ids(self) -> list[str]:
        return [it.data(0, Qt.ItemDataRole.UserRole) for it in self.runs.selectedItems()]

    def delete_runs(self, run_ids: list[str]) -> bool:
        ids = [r for r in run_ids if r != self.live_run_id]
        if not ids:
            return False
        self.doc.undo_stack.push(DeleteRuns(self.doc, ids, self.reload))
        return True

    def delete_selected_runs(self) -> None:
        self.delete_runs(self.selected_run_ids())

    def _on_settings_changed(self, section: str) -> None:
        if section == "train":
            self.settings_bar.sync()

    def set_devices(self, devices: list[tuple[str, str]]) -> None:
        self.settings_bar.set_devices(devices)

    # ---- the live run --------------------------------------------------------------------------------------
    def _reset_ranges(self) -> None:
        for panel in self.panels:
            panel.reset_range()

    def begin_run(self, start: Any) -> None:
        """A run started (the window merged its record into the history already)."""
        self.live_run_id = start.run_id
        self.primary = RunTraces.from_run(start.state.run)
        self._reset_ranges()
        self.primary.status = "running"
        self.checked.discard(start.run_id)
        self.overlays.pop(start.run_id, None)
        self.settings_bar.setEnabled(False)
        self.hide_banner()
        self._paused = False
        self._progress_text = ""
        # "1000 steps" is the plan the run trains to (a continued run's record may hold an older one); a run of
        # epochs gets its estimate from the first step's progress
        total = str(start.total).split()
        self._planned_steps = int(total[0]) if len(total) == 2 and total[1] == "steps" and total[0].isdigit() else 0
        self.progress.setValue(0)
        self.progress.setFormat(f"{start.run_id}: starting at step {start.step} of {start.total}")
        self._run_device = start.device
        self.status.setText(f"{start.parameters:,} parameters · {start.device}")
        self._show_samples()
        self._fill_runs_list()
        self._invalidate()

    def consume(self, events: list[tuple[str, Any]]) -> None:
        """A tick's worth of training events (from ``RunBridge.eventsReady``)."""
        if self.primary is None or self.live_run_id is None:
            return
        info = self.primary.add_events(events)
        ev = info["step"]
        if ev is not None:
            item = self.run_item(self.live_run_id)
            if item is not None:
                item.setText(2, str(ev.step))
            self.progress.setValue(int(round(ev.progress * 1000)))
            train = self.primary.settings.get("train", {})
            if train.get("epochs"):
                target = f"{train['epochs']} epochs"
            else:
                target = str(self._planned_steps or train.get("steps", "?"))
            self._progress_text = f"step {ev.step} / {target} · epoch {ev.epoch + 1}"
            self._eta = ev.eta
            self._show_live_progress()
            if ev.progress > 0 and ev.step > self._planned_steps:     # by epochs: the steps it will take
                self._planned_steps = round(ev.step / ev.progress)
            # the speed first: in a narrow window the device is what "…" cuts (the tooltip keeps it)
            self.status.setText(f"{ev.tokens_per_s:,.0f} tokens/s · {self._run_device}")
        for kind, e in events:
            if kind == "eval" and isinstance(e.metrics.get("loss"), (int, float)):
                item = self.run_item(self.live_run_id)
                if item is not None:
                    item.setText(3, f"{e.metrics['loss']:.4g}")
        if any(kind == "sample" for kind, _ in events):
            self._show_samples()
        self._invalidate()

    def save_state(self, state: Any) -> None:
        """A checkpoint came back (periodically, or the pause took effect): the list shows the new numbers."""
        item = self.run_item(state.run.id)
        if item is not None:
            item.setText(2, str(state.step))

    def _show_live_progress(self) -> None:
        """The live run's step, and the time left while it runs; paused, nothing is running: no estimate."""
        if self._paused:
            self.progress.setFormat(f"paused · {self._progress_text}")
        else:
            self.progress.setFormat(f"{self._progress_text} · {format_duration(self._eta)} left")

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        if self.live_run_id is not None and self._progress_text:
            self._show_live_progress()
            return
        fmt = self.progress.format()          # paused before the first step: "paused · starting…"
        if paused and not fmt.startswith("paused"):
            self.progress.setFormat("paused · " + fmt)
        elif not paused and fmt.startswith("paused · "):
            self.progress.setFormat(fmt[len("paused · "):])

    def end_run(self, end: Any) -> None:
        """The run ended; its full record (when there is one) replaces what the events built."""
        self.live_run_id = None
        self._paused = False
        self._progress_text = ""
        self.settings_bar.setEnabled(True)
        if end.state is not None:
            self.primary = RunTraces.from_run(end.state.run)
            self.primary.status = end.status
        if end.status == "failed":
            self.show_banner(f"<b>The run failed.</b> {html.escape(end.message)}", "error")
        self.reload()                         # the bar says how the run ended (``_show_idle_progress``)
        if end.state is None:                 # it never started: there is no record to tell it
            word = ENDED_WORDS.get(end.status, f"{end.status} at")
            self.progress.setValue(0)
            self.progress.setFormat(f"{word} step {end.step}")

    # ---- banner ----------------------------------------------------------------------------------------------
    def show_banner(self, html_text: str, kind: str = "notice") -> None:
        theme = canvas_theme(self.palette())
        if kind == "error":
            bg, fg, border = theme.bubble_bg, theme.bubble_text, theme.bubble_border
        else:
            bg = QColor(theme.selection)
            bg.setAlphaF(0.18)
            fg, border = theme.text, theme.selection
        self.banner.setStyleSheet(f"QFrame#runBanner {{ background: {bg.name(QColor.NameFormat.HexArgb)}; "
                                  f"border: 1px solid {border.name()}; border-radius: 4px; }} "
                                  f"QFrame#runBanner QLabel {{ color: {fg.name()}; }}")
        self.banner_text.setText(html_text)
        self.banner_kind = kind
        self.banner.show()

    def hide_banner(self) -> None:
        self.banner.hide()
        self.banner_kind = ""

    def banner_message(self) -> str:
        return self.banner_text.text() if self.banner.isVisible() else ""

    # ---- drawing -------------------------------------------------------------------------------------------
    def _set_smoothing(self, value: int) -> None:
        self.smoothing = value
        self._invalidate()

    def _set_quantity(self, _index: int) -> None:
        self.quantity = self.quantity_combo.currentData() or "dLT_dh"
        self._invalidate()

    def _set_metric(self, _index: int) -> None:
        self.metric_name = self.metric_combo.currentData() or ""
        self._invalidate()

    def _heat_choice_changed(self, _index: int) -> None:
        self._drawn.pop(("heat", "image"), None)
        self._invalidate()

    def _invalidate(self, *_args: Any) -> None:
        """Something to draw: the redraw timer fires within a frame (later when drawing has been expensive)."""
        self._dirty = True
        if not self._redraw_timer.isActive():
            self._redraw_timer.start(int(max(40.0, 3000.0 * self._redraw_cost)))

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._dirty:
            self._invalidate()

    def shown_runs(self) -> list[RunTraces]:
        return ([self.primary] if self.primary else []) + [self.overlays[r] for r in sorted(self.overlays)]

    def redraw(self) -> None:
        """Give the plots their new data, a few plots per frame.

        Qt paints every widget that changed in one pass of the event loop, and a pyqtgraph plot takes a few
        milliseconds to paint: nine plots at once would hold the event loop for 30-50 ms on a slow machine.  So
        each pass updates at most ``PANELS_PER_FRAME`` plots that actually changed (starting where the last pass
        stopped, so none starves) and schedules the next pass for the next frame."""
        if not self._dirty:
            return
        if not self.isVisible():
            return              # drawn when the tab is shown (showEvent)
        t0 = time.perf_counter()
        self._dirty = False
        self.redraws += 1
        extent = self._x_extent()
        for panel in self.panels:
            panel.set_x_extent(extent)          # a no-op unless it changed
        draws = [(self.loss_panel, self._draw_loss), (self.grad_panel, self._draw_grad),
                 (self.heat_panel, self._draw_heatmap), (self.gtt_panel, self._draw_gtt),
                 (self.group_panel, self._draw_groups), (self.sigma_panel, self._draw_sigma),
                 (self.metric_panel, self._draw_metric),
                 (self.lr_panel, lambda: self._draw_simple(self.lr_panel, "train/lr")),
                 (self.speed_panel, lambda: self._draw_simple(self.speed_panel, "train/tokens_per_s"))]
        changed = 0
        n = len(draws)
        now = time.monotonic()
        wait = math.inf
        for k in range(n):
            index = (self._next_panel + k) % n
            panel, draw = draws[index]
            since = now - panel.last_update
            if since < PANEL_INTERVAL:          # updated a moment ago: its turn comes again shortly
                wait = min(wait, PANEL_INTERVAL - since)
                continue
            before = panel.updates
            draw()
            if panel.updates != before:
                panel.last_update = now
                changed += 1
                if changed >= PANELS_PER_FRAME:
                    self._next_panel = (index + 1) % n
                    wait = min(wait, FRAME_MS / 1000)     # the rest in the next frame
                    break
        if wait < math.inf:
            self._dirty = True
            self._redraw_timer.start(int(wait * 1000) + 1)
        cost = time.perf_counter() - t0
        self._redraw_cost = 0.7 * self._redraw_cost + 0.3 * cost

    def _x_extent(self) -> float:
        """Where the step axes end: the live run's planned steps (so they do not move while it trains), else the
        last step of the runs shown; with no run, the project's planned steps."""
        last = max((t.last_step for t in self.shown_runs()), default=0)
        if self.live_run_id is not None:
            return float(max(self._planned_steps, last))
        if last:
            return float(last)
        train = self.doc.project.train
        return 0.0 if train.epochs else float(train.steps or 0)

    def _changed(self, panel: str, key: str, signature: tuple) -> bool:
        """True when a curve needs new data (its source or how it is drawn changed since the last time)."""
        if self._drawn.get((panel, key)) == signature:
            return False
        self._drawn[(panel, key)] = signature
        return True

    def _line(self, panel: PlotPanel, pname: str, key: str, dec: Decimator | None, style: Any, name: str | None,
              keep: set[str], *, smooth: int = 1, symbol: str | None = None, extra: tuple = (),
              group: str = "") -> None:
        if dec is None or len(dec) == 0:
            return
        keep.add(key)
        sig = (dec.uid, dec.version, smooth, panel.log_y, name, group, *extra)
        if not self._changed(pname, key, sig) and key in panel.curves:
            return
        x, y = dec.data()
        if smooth > 1:
            y = trailing_mean(y, max(1, round(smooth / dec.stride)))
        panel.set_curve(key, x, y, style, name, symbol=symbol, group=group)

    def _run_group(self, t: RunTraces) -> str:
        """The legend group of a run's curves: none for a run alone, its label ("run-2 (lstm)") among overlays,
        so that every run's entries read "<run> <series>" alike."""
        return t.label if self.overlays else ""

    def _draw_loss(self) -> None:
        panel, keep = self.loss_panel, set()
        for i, t in enumerate(self.shown_runs()):
            color = run_color(t.run_id)
            primary = i == 0
            group = self._run_group(t)
            train = t.series.get("train/loss")
            if primary:
                self._line(panel, "loss", f"{t.run_id}:raw", train, pen(color, 1.0, alpha=0.28), None, keep)
            self._line(panel, "loss", f"{t.run_id}:train", train, pen(color, 2.0 if primary else 1.6,
                                                                      Qt.PenStyle.SolidLine if primary else DASH),
                       "train", keep, smooth=self.smoothing, group=group)
            self._line(panel, "loss", f"{t.run_id}:valid", t.series.get("valid/loss"),
                       pen(_shade(color), 1.4, DOT if not primary else Qt.PenStyle.SolidLine), "valid", keep,
                       symbol="o", group=group)
        panel.prune(keep)
        self._draw_epochs()

    def _draw_epochs(self) -> None:
        t = self.primary
        starts = tuple(t.epoch_starts) if t else ()
        if starts == self._epoch_drawn:
            return
        self._epoch_drawn = starts
        for line in self._epoch_lines:
            self.loss_panel.plot.removeItem(line)
        self._epoch_lines = []
        if not starts:
            return
        every = max(1, math.ceil(len(starts) / 12))     # at most a dozen marks
        muted = self.loss_panel.colors["muted"]
        # the epoch's number only ("epoch 3" runs into the next mark); the axis label says what the marks are
        for k, (step, epoch) in enumerate(starts):
            if k % every:
                continue
            text = str(epoch + 1)
            line = pg.InfiniteLine(pos=step, angle=90, pen=pen(muted, 1, DOT), label=text,
                                   labelOpts={"position": 0.97, "color": muted,
                                              "fill": _label_fill(self.loss_panel.colors),
                                              "anchors": [(0, 0), (0, 0)]})
            line.setZValue(5)
            self.loss_panel.plot.addItem(line)
            self._epoch_lines.append(line)

    def _draw_grad(self) -> None:
        panel, keep = self.grad_panel, set()
        for i, t in enumerate(self.shown_runs()):
            color = run_color(t.run_id)
            group = self._run_group(t)
            if i == 0:
                self._line(panel, "grad", f"{t.run_id}:before", t.series.get("train/grad_norm"),
                           pen(color, 1.2, alpha=0.45), "before clipping", keep, group=group)
                self._line(panel, "grad", f"{t.run_id}:after", t.series.get("train/grad_norm_clipped"),
                           pen(color, 1.6), "after clipping", keep, group=group)
            else:                     # an overlaid run: the norm before clipping only, dashed
                self._line(panel, "grad", f"{t.run_id}:before", t.series.get("train/grad_norm"),
                           pen(color, 1.3, DASH), "before clipping", keep, group=group)
        panel.prune(keep)
        clip = float(((self.primary.settings.get("train") or {}).get("clip_norm") or 0.0)) if self.primary else 0.0
        if clip > 0:
            if self._clip_line is None:
                c = panel.colors["threshold"]
                # the label hangs below the line: the line is often at the top of the view
                self._clip_line = pg.InfiniteLine(angle=0, pen=pen(c, 1.4, DASH), label="clip_norm",
                                                  labelOpts={"position": 0.02, "color": c,
                                                             "fill": _label_fill(panel.colors),
                                                             "anchors": [(0, 0), (0, 0)]})
                self._clip_line.setZValue(20)         # above the curves: the label stays readable
                panel.plot.addItem(self._clip_line)
            self._clip_line.setPos(math.log10(clip) if panel.log_y else clip)
            self._clip_line.label.setFormat(f"clip_norm {clip:g}")
            self._clip_line.setVisible(True)
        elif self._clip_line is not None:
            self._clip_line.setVisible(False)

    def _draw_groups(self) -> None:
        panel, keep = self.group_panel, set()
        t = self.primary
        if t is not None:
            prefix = "grad_clipped/" if self.group_clipped.isChecked() else "grad/"
            for i, group in enumerate(t.keys(prefix)):
                self._line(panel, "groups", f"{group}", t.series.get(prefix + group), pen(series_color(i), 1.5),
                           group, keep, extra=(prefix,))
        panel.prune(keep)

    def _draw_sigma(self) -> None:
        panel, keep = self.sigma_panel, set()
        t = self.primary
        if t is not None:
            names = t.keys("sigma/")
            for i, name in enumerate(names):
                # "rnn.0/W_hf": the layer names its legend row once, the entries are the matrices
                layer, _, matrix = name.rpartition("/")
                self._line(panel, "sigma", name, t.series.get("sigma/" + name), pen(series_color(i), 1.5),
                           matrix, keep, symbol="o" if len(t.series["sigma/" + name]) < 40 else None,
                           group=layer + GROUP_PATH_SUFFIX if layer else "")
        panel.prune(keep)

    def _draw_metric(self) -> None:
        t = self.primary
        names = t.metric_names() if t else []
        names = [n for n in names if not n.startswith("baseline_")] or names
        current = [self.metric_combo.itemData(i) for i in range(self.metric_combo.count())]
        if names != current:
            self.metric_combo.blockSignals(True)
            self.metric_combo.clear()
            for n in names:
                self.metric_combo.addItem(n, n)
            with_baseline = [m for m in names if f"valid/baseline_{m}" in t.series]
            choice = self.metric_name if self.metric_name in names else next(
                iter(with_baseline + [m for m in METRIC_PREFERENCE if m in names] + names), "")
            self.metric_combo.setCurrentIndex(max(0, self.metric_combo.findData(choice)))
            self.metric_combo.blockSignals(False)
            self.metric_name = choice
        panel, keep = self.metric_panel, set()
        if t is not None and self.metric_name:
            color = run_color(t.run_id)
            self._line(panel, "metric", "value", t.series.get(f"valid/{self.metric_name}"), pen(color, 1.8),
                       self.metric_name, keep, symbol="o", extra=(self.metric_name,))
            base = t.series.get(f"valid/baseline_{self.metric_name}")
            self._line(panel, "metric", "baseline", base, pen(panel.colors["muted"], 1.4, DASH),
                       f"baseline ({self.metric_name})", keep, extra=(self.metric_name,))
            panel.set_y_label(self.metric_name)
        panel.prune(keep)

    def _draw_simple(self, panel: PlotPanel, key: str) -> None:
        keep: set[str] = set()
        t = self.primary
        if t is not None:
            self._line(panel, panel.objectName(), "value", t.series.get(key), pen(run_color(t.run_id), 1.6), None,
                       keep)
        panel.prune(keep)

    def _draw_gtt(self) -> None:
        panel, keep = self.gtt_panel, set()
        runs = self.shown_runs()
        for i, t in enumerate(runs):
            for j, layer in enumerate(t.layers):
                values = (t.gtt_latest.get(layer) or {}).get(self.quantity)
                if not values:
                    continue
                key = f"{t.run_id}:{layer}"
                keep.add(key)
                sig = (t.uid, t.version, self.quantity, t.gtt_latest_step, bool(self.overlays), panel.log_y)
                if not self._changed("gtt", key, sig) and key in panel.curves:
                    continue
                x = np.arange(1, len(values) + 1, dtype=np.float64)
                y = np.asarray(values, dtype=np.float64)
                if not self.overlays:         # one run: a colour per layer (the run's own when it has one)
                    style = pen(series_color(j) if len(t.layers) > 1 else run_color(t.run_id), 1.8)
                elif i == 0:                  # runs overlaid: a colour per run, layers by line style
                    style = pen(run_color(t.run_id), 2.0, LAYER_STYLES[j % len(LAYER_STYLES)])
                else:
                    style = pen(run_color(t.run_id), 1.4, DASH if j % 2 == 0 else DOT)
                panel.set_curve(key, x, y, style, layer, group=self._run_group(t))
        panel.prune(keep)
        if runs and runs[0].gtt_latest_step:
            panel.title.setText(f"Latest probe (step {runs[0].gtt_latest_step})")
        else:
            panel.title.setText("Latest probe")

    def _draw_heatmap(self) -> None:
        runs = self.shown_runs()
        ids = [t.run_id for t in runs]
        current_ids = [self.heat_run.itemData(i) for i in range(self.heat_run.count())]
        if ids != current_ids:
            chosen = self.heat_run.currentData()
            self.heat_run.blockSignals(True)
            self.heat_run.clear()
            for t in runs:
                # the run's id alone keeps the combo, and so the title beside it, short; its tooltip has the cells
                self.heat_run.addItem(t.run_id, t.run_id)
                self.heat_run.setItemData(self.heat_run.count() - 1, t.label, Qt.ItemDataRole.ToolTipRole)
            self.heat_run.setCurrentIndex(max(0, self.heat_run.findData(chosen)) if chosen in ids else 0)
            self.heat_run.blockSignals(False)
        self.heat_run.setVisible(len(runs) > 1)
        t = next((r for r in runs if r.run_id == self.heat_run.currentData()), runs[0] if runs else None)
        layers = t.layers if t else []
        current_layers = [self.heat_layer.itemData(i) for i in range(self.heat_layer.count())]
        if layers != current_layers:
            chosen = self.heat_layer.currentData()
            self.heat_layer.blockSignals(True)
            self.heat_layer.clear()
            for layer in layers:
                self.heat_layer.addItem(layer, layer)
            # the first layer by default: the one furthest from the loss, where vanishing shows first
            self.heat_layer.setCurrentIndex(max(0, self.heat_layer.findData(chosen)) if chosen in layers else 0)
            self.heat_layer.blockSignals(False)
        self.heat_layer.setVisible(len(layers) > 1)
        layer = self.heat_layer.currentData()
        dec = t.gtt.get((layer, self.quantity)) if t and layer else None
        sig = (t.run_id if t else None, layer, self.quantity, dec.uid if dec else None, dec.version if dec else None)
        if not self._changed("heat", "image", sig):
            return
        if dec is None or len(dec) == 0:
            self.heat_panel.set_rows(None, None)
            return
        steps, rows = dec.data()
        self.heat_panel.set_rows(rows, steps)
        self.heat_panel.plot.enableAutoRange()

    def _show_samples(self) -> None:
        """The run shown's latest samples (none: empty, never another run's or project's)."""
        t = self.primary
        shown = (t.uid, tuple(t.samples)) if t is not None and t.samples else ()
        if shown == self._samples_shown:
            return                  # unchanged: setting the text again would scroll the view back to the top
        self._samples_shown = shown
        if not shown:
            self.samples.setPlainText("")
            return
        parts = [f"── step {step} ──\n{text}" for step, text in reversed(t.samples)]
        self.samples.setPlainText("\n\n".join(parts))


def _last_step(run: Any) -> int:
    s = run.series.get("train/loss")
    return int(s.step[-1]) if s and s.step else 0


def _label_fill(colors: dict[str, QColor]) -> Any:
    """Behind a line's label: the plot's background, nearly opaque, so the text reads over the curves."""
    c = QColor(colors["background"])
    c.setAlphaF(0.85)
    return pg.mkBrush(c)


def _shade(color: QColor) -> QColor:
    """The validation curve: the run's colour, a little darker or lighter, so it reads as the same run."""
    return color.darker(135) if color.lightness() > 110 else color.lighter(140)


def _swatch(color: QColor) -> QIcon:
    pixmap = QPixmap(QSize(12, 12))
    pixmap.fill(color)
    return QIcon(pixmap)


def _run_tooltip(run: Any) -> str:
    s = run.settings or {}
    train = s.get("train") or {}
    parts = [f"{run.id}: {run.status}" + (f", {run.message}" if run.message else ""),
             f"started {run.started}" if run.started else "",
             f"cells: {', '.join(s.get('cells') or []) or '?'}; parameters: {s.get('parameters') or '?'}",
             f"optimizer {train.get('optimizer', '?')}, lr {train.get('lr', '?')}, "
             f"batch {train.get('batch_size', '?')}, chunk {train.get('chunk_len', '?')}, "
             f"clip_norm {train.get('clip_norm', '?')}",
             f"graph {s.get('graph_hash', '?')}"]
    return "\n".join(p for p in parts if p)
