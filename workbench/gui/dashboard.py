"""The training dashboard: run settings and progress, the runs of the project, and the live plots.

It shows one *primary* run (the live run, or else the latest run of the project's history) and, on top of it,
the runs the user ticks in the runs list (overlays: an RNN against an LSTM on the adding problem, say).  Every run
shown is a :class:`~workbench.core.traces.RunTraces`: fixed-memory series built from the run's record in the
history and, for the live run, extended by the events the :class:`~workbench.gui.run_bridge.RunBridge` hands over
once a tick.  The plots (:mod:`workbench.gui.dashboard_plots`) draw them; the row at the top
(:mod:`workbench.gui.run_settings`) holds the settings, the progress bar and the speed.  Nothing here computes
model results: every number comes from the trainer's events or the run's record.
"""

from __future__ import annotations

import html
import math
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QHBoxLayout, QHeaderView, QLabel, QPlainTextEdit,
                               QPushButton, QSplitter, QToolButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from workbench.core.traces import RunTraces, last_step
from workbench.gui.dashboard_forecast import ForecastPlot
from workbench.gui.dashboard_plots import DashboardPlots
from workbench.gui.dashboard_runs import OtherRuns
from workbench.gui.run_settings import ProgressLine, RunSettingsBar, SpeedLabel, format_duration
from workbench.gui.style import canvas_theme, set_muted, ui_font

#: how the bar names the state of a run that is not training ("run-1 finished at step 200")
ENDED_WORDS = {"finished": "finished at", "stopped": "stopped at", "running": "interrupted at",
               # a failure happens while computing the step after the last one that finished
               "failed": "failed after"}


# ---- the dashboard ------------------------------------------------------------------------------------------

class TrainingDashboard(OtherRuns, ForecastPlot, QWidget):
    """``TrainingDashboard(doc)``; the window calls ``begin_run`` / ``consume`` / ``save_state`` / ``end_run``.
    Runs of other project files, the runs filter and the time axis: :mod:`workbench.gui.dashboard_runs`; the
    forecasting task's predicted-vs-actual plot: :mod:`workbench.gui.dashboard_forecast`."""

    def __init__(self, doc: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("trainingDashboard")
        self.doc = doc
        self.primary: RunTraces | None = None
        self.overlays: dict[str, RunTraces] = {}
        self.checked: set[str] = set()
        self.live_run_id: str | None = None
        self._run_device = ""            # "CPU (1 thread) · fp32" of the live run, for the speed text
        self._run_unit = "tokens"        # what its speed counts
        self._run_precision, self._run_threads = "", 0     # its precision, and the CPU threads shown
        # the live run's progress: "step 111 / 200 · epoch 1", the time left, paused or not
        self._progress_text = ""
        self._eta = math.nan
        self._paused = False
        self._planned_steps = 0             # the live run's total steps (from its plan, or estimated by epochs)
        self._samples_shown: tuple = ()

        self._build()
        self._forecast_setup()
        doc.projectReplaced.connect(self._on_project_replaced)
        doc.settingsChanged.connect(self._on_settings_changed)
        doc.runsDeleted.connect(self.reload)
        self.reload()
        self._restore_dashboard()

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
        # the plots are built first: the runs' tools read their colours and axis
        self.plots = DashboardPlots(self._shown, self._x_extent)
        self._build_run_tools(side_layout)
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
        hint = QLabel("Tick runs to overlay them on the loss, gradient-norm and gradient-through-time plots; "
                      "runs of other project files too (read-only).")
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
        self._build_file_buttons(side_layout)
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


        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(side)
        self.splitter.addWidget(self.plots)
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

    # ---- project and runs --------------------------------------------------------------------------------
    def _on_project_replaced(self) -> None:
        """Another project is open (File ▸ Open, New from a template): nothing of the previous one stays.

        ``reload`` alone cannot tell: the new project's latest run can have the same id, status and last step as
        the one shown ("run-1", finished at step 20), and its plots, samples and progress would stay."""
        self.primary = None
        self.overlays.clear()
        self.checked.clear()
        self._forget_dashboard()               # each project keeps its own comparisons (project.views)
        self._forecast_project_replaced()
        self.plots.clear()
        self._paused = False
        self._progress_text = ""
        self.status.setText("")
        self.reload()
        self._restore_dashboard()

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
                    self.plots.reset_ranges()
            elif self.primary is None or self.primary.run_id != current.id or self.primary.status != current.status \
                    or self.primary.last_step != last_step(current):
                if self.primary is None or self.primary.run_id != current.id:
                    self.plots.reset_ranges()
                self.primary = RunTraces.from_run(current)
                self._show_gradient_units()
            self._show_idle_progress()
        self.checked &= set(ids) | {t.key for t in self.other_runs()}
        self.overlays = {rid: t for rid, t in self.overlays.items() if rid in self.checked}
        spec = self.doc.task_spec()
        text_task = spec is None or bool(getattr(spec, "generative", True)) or bool(self.primary and
                                                                                  self.primary.samples)
        self.samples_title.setVisible(text_task)
        self.samples.setVisible(text_task)
        self._show_samples()
        self._fill_runs_list()
        self.plots.invalidate()
        self.refresh_forecast()

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
                steps = last_step(run)
                valid = run.series.get("valid/loss")
                item.setText(0, ("▶ " if run.id == self.live_run_id else "") + run.id)
                item.setText(1, cells)
                item.setText(2, str(steps))
                item.setText(3, f"{valid.value[-1]:.4g}" if valid and valid.value else "—")
                item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setIcon(0, _swatch(self.plots.color(RunTraces(run.id))))
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
            self._fill_other_runs()
        finally:
            self.runs.blockSignals(False)
        self._update_delete_button()

    def _swatch_of(self, t: RunTraces) -> QIcon:
        return _swatch(self.plots.color(t))

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
        self.plots.invalidate()

    def _on_run_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column != 0 or not item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
            return
        on = item.checkState(0) == Qt.CheckState.Checked
        if item.parent() is not None:            # a run of another file
            self.set_other_overlay(item.data(0, Qt.ItemDataRole.UserRole), on)
        else:
            self.set_overlay(item.data(0, Qt.ItemDataRole.UserRole), on)

    def _update_delete_button(self) -> None:
        ids = self.selected_run_ids()
        self.delete_button.setEnabled(bool(ids) and self.live_run_id not in ids)
        self.remove_file_button.setEnabled(bool(self._selected_files()))

    def selected_run_ids(self) -> list[str]:
        """The project's own runs selected in the list (never another file's: those are read-only)."""
        return [it.data(0, Qt.ItemDataRole.UserRole) for it in self.runs.selectedItems()
                if it.parent() is None and isinstance(it.data(0, Qt.ItemDataRole.UserRole), str)]

    def delete_runs(self, run_ids: list[str]) -> bool:
        """Delete runs from the history (one undo step), never the live one."""
        return self.doc.delete_runs([r for r in run_ids if r != self.live_run_id])

    def delete_selected_runs(self) -> None:
        self.delete_runs(self.selected_run_ids())

    def _on_settings_changed(self, section: str) -> None:
        if section == "train":
            self.settings_bar.sync()

    def set_devices(self, devices: list[tuple[str, str]]) -> None:
        self.settings_bar.set_devices(devices)

    # ---- the live run --------------------------------------------------------------------------------------
    def _show_gradient_units(self) -> None:
        train = self.primary.settings.get("train", {}) if self.primary is not None else {}
        self.plots.set_gradient_units(train.get("loss_reduction", "mean"))

    def begin_run(self, start: Any) -> None:
        """A run started (the window merged its record into the history already)."""
        self.live_run_id = start.run_id
        self.primary = RunTraces.from_run(start.state.run)
        self._show_gradient_units()
        self.plots.reset_ranges()
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
        self._run_device = f"{start.device} · {start.precision}"
        self._run_precision, self._run_threads = start.precision, 0
        self._run_unit = start.unit
        self.plots.set_speed_unit(start.unit)
        self.status.setText(f"{start.parameters:,} parameters · {self._run_device}")
        self._show_samples()
        self._fill_runs_list()
        self.plots.invalidate()

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
            if ev.threads and ev.threads != self._run_threads and self._run_device.startswith("CPU"):
                # automatic threads follow the cores other processes leave free: say how many train now
                self._run_threads = ev.threads
                self._run_device = f"CPU ({ev.threads} thread{'s' if ev.threads != 1 else ''}) · {self._run_precision}"
            # the speed first: in a narrow window the device is what "…" cuts (the tooltip keeps it)
            self.status.setText(f"{ev.tokens_per_s:,.0f} {self._run_unit}/s · {self._run_device}")
        for kind, e in events:
            if kind == "eval" and isinstance(e.metrics.get("loss"), (int, float)):
                item = self.run_item(self.live_run_id)
                if item is not None:
                    item.setText(3, f"{e.metrics['loss']:.4g}")
        if any(kind == "sample" for kind, _ in events):
            self._show_samples()
        self.plots.invalidate()

    def save_state(self, state: Any) -> None:
        """A checkpoint came back (periodically, or the pause took effect): the list shows the new numbers, the
        forecasts those of the new weights."""
        item = self.run_item(state.run.id)
        if item is not None:
            item.setText(2, str(state.step))
        self.refresh_forecast()

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
            self._show_gradient_units()
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

    # ---- what the plots show --------------------------------------------------------------------------------
    def _shown(self) -> tuple[RunTraces | None, list[RunTraces]]:
        """The run shown and the ticked runs the filter lets through (the project's first, then other files')."""
        overlays = [self.overlays[k] for k in sorted(self.overlays, key=lambda k: ("/" in k, k))]
        return self.primary, [t for t in overlays if self.run_visible(t)]

    def shown_runs(self) -> list[RunTraces]:
        return ([self.primary] if self.primary else []) + self._shown()[1]

    @property
    def redraws(self) -> int:
        """The plots' redraw passes so far (the GUI benchmarks report them)."""
        return self.plots.redraws

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
