"""The plots of the training dashboard: loss, gradient norms (global and per group), the gradient through time as
a heatmap and as the latest probe's curve, the largest singular values, a validation metric, the learning rate and
the throughput.

:class:`DashboardPlots` draws the runs its owner shows (a primary run and the runs overlaid on it, each a
:class:`~workbench.core.traces.RunTraces`) and asks its owner where the step axes end.  Plots are redrawn from a
single-shot timer at most ~25 times a second and only when something changed; a curve is only given new data when
its series changed.  Nothing here computes model results.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QComboBox, QFrame, QGridLayout, QLabel, QScrollArea, QSpinBox, QWidget

from workbench.core.training.events import WALL_TIME
from workbench.core.traces import X_AXES, Decimator, RunTraces, time_of, trailing_mean
from workbench.gui.draw_budget import DrawBudget
from workbench.gui.plots import (GROUP_PATH_SUFFIX, HeatmapPanel, PlotPanel, TickAxis, pen, run_color, series_color,
                                 spaced_marks)

#: what the x axis of the plots over training time shows (TensorBoard's Step, Relative and Wall)
X_AXIS_TITLES = {"step": "step", "relative": "time since each run began", "wall": "wall clock"}
#: forecasts the predicted-vs-actual plot shows at first (of hundreds)
FORECAST_ROWS = 120
PANELS_PER_FRAME = 2        # plots given new data per pass of the event loop (see DashboardPlots.redraw)
FRAME_MS = 16
QUANTITIES = (("dLT_dh", "‖∂L_T/∂h_t‖: loss at the last step only"), ("dL_dh", "‖∂L/∂h_t‖: the whole loss"))
METRIC_PREFERENCE = ("ppl", "bpc", "accuracy", "bleu", "mse", "mae")
DASH = Qt.PenStyle.DashLine
DOT = Qt.PenStyle.DotLine
LAYER_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashDotLine, Qt.PenStyle.DashDotDotLine)

#: what the plots are given to draw: the primary run (None: no run) and the runs overlaid on it
ShownRuns = Callable[[], "tuple[RunTraces | None, list[RunTraces]]"]


#: loss_reduction -> (the gradient plot's axis, what the gradient is of)
GRADIENT_OF = {
    "mean": ("‖∇L‖", "the mean loss over tokens"),
    "sum_over_time": ("‖∇ Σₜ L‖", "the sum over time steps of the batch-mean loss (Zaremba et al. 2014)"),
    "sum": ("‖∇ Σ L‖", "the loss summed over every token"),
}
#: the speed plot's tooltip (the trainer's sliding window: workbench.core.training.trainer)
SPEED_TIP = ("Training throughput: the items the task counts (tokens, or sequences for a classifier) per second of "
             "training time, over the last two seconds of it; validation, probes and samples are not counted")


class _ContentsCombo(QComboBox):
    """A combo box as wide as its items, never wider.

    Qt keeps the minimum width a combo worked out while it was empty (seven "x"), wider than "rnn.0"; the width
    comes out of the plot's title beside it, which is then cut."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return self.sizeHint()


class DashboardPlots(QScrollArea):
    """The dashboard's plots, reflowed into as many columns as fit.

    ``DashboardPlots(shown, x_extent)``: ``shown()`` gives the primary run and the overlaid runs, ``x_extent()``
    where the step axes end; :meth:`invalidate` says something changed (the plots redraw soon, a few per frame)."""

    def __init__(self, shown: ShownRuns, x_extent: Callable[[], float], parent: QWidget | None = None):
        super().__init__(parent)
        self._shown = shown
        self._extent = x_extent
        self.smoothing = 20
        self.quantity = "dLT_dh"
        self.metric_name = ""
        self.x_axis = "step"
        self._time_scale = (1.0, "s")       # relative times: seconds, minutes or hours, by the longest run shown
        self._drawn: dict[tuple[str, str], tuple] = {}
        self._epoch_lines: list[Any] = []
        self._epoch_drawn: tuple = ()
        self._clip_line: Any = None
        self._dirty = False
        self._redraw_cost = 0.0
        self._next_panel = 0
        self.redraws = 0
        self.budget = DrawBudget()          # how often a plot gets new data (at most four times a second)
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.timeout.connect(self.redraw)

        self._build_panels()
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(4, 2, 4, 4)
        self.grid.setSpacing(6)
        self._columns = 0
        self._row_height = 0
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(self.grid_host)
        self.viewport().installEventFilter(self)
        self._reflow()

    # ---- building ------------------------------------------------------------------------------------------
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
        self.group_clipped.toggled.connect(self.invalidate)
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
        self.speed_panel = PlotPanel("Tokens per second", "tokens/s", y_from_zero=True, tip=SPEED_TIP)
        self.panels = [self.loss_panel, self.grad_panel, self.heat_panel, self.gtt_panel, self.group_panel,
                       self.sigma_panel, self.metric_panel, self.lr_panel, self.speed_panel]
        #: the plots whose x axis is the training step, or time (see :meth:`set_x_axis`)
        self.step_panels = [self.loss_panel, self.grad_panel, self.group_panel, self.sigma_panel, self.metric_panel,
                            self.lr_panel, self.speed_panel]
        # a forecasting task's predictions against what happened (shown for such a task only: show_forecast_panel)
        self.forecast_panel = PlotPanel("Forecast vs actual (validation)", "value", "row of the series",
                                        legend=True, empty_text="no forecasts yet",
                                        tip="The model's forecasts over the validation split against the series "
                                            "itself, and the naive forecast that repeats the last observed value "
                                            "(the baseline the task's skill is measured against). Computed from "
                                            "the project's current weights whenever they change.")
        self.forecast_step = QSpinBox()
        self.forecast_step.setRange(1, 1)
        self.forecast_step.setPrefix("ahead ")
        self.forecast_step.setToolTip("Which step of the horizon: 1 is the next value after each window")
        self.forecast_panel.add_control(self.forecast_step)
        self.forecast_panel.hide()

    def set_gradient_units(self, reduction: str) -> None:
        """The gradient plot reads in the units that are clipped: those of the loss the run back-propagates."""
        what = GRADIENT_OF.get(reduction, GRADIENT_OF["mean"])
        self.grad_panel.set_y_label(what[0])
        self.grad_panel.title.setToolTip(f"The global norm of the gradient of {what[1]} at every step, before "
                                         f"and after clipping; the dashed line is the clipping threshold "
                                         f"(clip_norm), in the same units.")

    def set_speed_unit(self, unit: str) -> None:
        """What the speed plot counts: the task's items (tokens, sequences...)."""
        self.speed_panel.title.setText(f"{unit.capitalize()} per second")
        self.speed_panel.set_y_label(f"{unit}/s")

    def _log_box(self, panel: PlotPanel) -> QCheckBox:
        box = QCheckBox("log")
        box.setChecked(panel.log_y)
        box.setToolTip("Logarithmic y axis")
        box.toggled.connect(lambda on, p=panel: (p.set_log(on), self.invalidate()))
        panel.add_control(box)
        return box

    # ---- layout --------------------------------------------------------------------------------------------
    def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt override
        if obj is self.viewport() and event.type() == QEvent.Type.Resize:
            self._reflow()
            return False
        return super().eventFilter(obj, event)      # the scroll area's own (its scroll bars')

    def _reflow(self) -> None:
        """As many columns as fit (one to three), and rows tall enough that three of them fill the view."""
        viewport = self.viewport()
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

    # ---- what is shown -------------------------------------------------------------------------------------
    @property
    def primary(self) -> RunTraces | None:
        return self._shown()[0]

    def shown_runs(self) -> list[RunTraces]:
        primary, overlays = self._shown()
        return ([primary] if primary else []) + list(overlays)

    def _overlaid(self) -> bool:
        return bool(self._shown()[1])

    def reset_ranges(self) -> None:
        """Every plot back to its automatic range (another run is shown)."""
        for panel in self.panels:
            panel.reset_range()

    def clear(self) -> None:
        """Nothing of what was drawn stays (another project): curves are made again, legend entries in the new
        project's order, and the heatmap's colour scale starts from its default."""
        self._drawn.clear()
        for panel in self.panels:
            panel.clear_curves()
        self.heat_panel.set_rows(None, None)
        self.heat_panel.reset_levels()

    # ---- drawing -------------------------------------------------------------------------------------------
    def _set_smoothing(self, value: int) -> None:
        self.smoothing = value
        self.invalidate()

    def _set_quantity(self, _index: int) -> None:
        self.quantity = self.quantity_combo.currentData() or "dLT_dh"
        self.invalidate()

    def _set_metric(self, _index: int) -> None:
        self.metric_name = self.metric_combo.currentData() or ""
        self.invalidate()

    def _heat_choice_changed(self, _index: int) -> None:
        self._drawn.pop(("heat", "image"), None)
        self.invalidate()

    def invalidate(self, *_args: Any) -> None:
        """Something to draw: the redraw timer fires within a frame (later when drawing has been expensive)."""
        self._dirty = True
        if not self._redraw_timer.isActive():
            self._redraw_timer.start(int(max(40.0, 3000.0 * self._redraw_cost)))

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._dirty:
            self.invalidate()

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
        extent = self._extent()
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
        interval = self.budget.tick()
        wait = math.inf
        for k in range(n):
            index = (self._next_panel + k) % n
            panel, draw = draws[index]
            since = now - panel.last_update
            if since < interval:                # updated a moment ago: its turn comes again shortly
                wait = min(wait, interval - since)
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

    def _changed(self, panel: str, key: str, signature: tuple) -> bool:
        """True when a curve needs new data (its source or how it is drawn changed since the last time)."""
        if self._drawn.get((panel, key)) == signature:
            return False
        self._drawn[(panel, key)] = signature
        return True

    def _line(self, panel: PlotPanel, pname: str, key: str, dec: Decimator | None, style: Any, name: str | None,
              keep: set[str], *, smooth: int = 1, symbol: str | None = None, extra: tuple = (),
              group: str = "", traces: RunTraces | None = None) -> None:
        """A curve of ``traces``'s series ``dec`` against the step, or against time (:meth:`set_x_axis`): a run
        that did not record its times is left out of a time axis."""
        if dec is None or len(dec) == 0:
            return
        clock = None
        if self.x_axis != "step" and traces is not None:
            clock = traces.series.get(WALL_TIME)
            if clock is None or not traces.has_times():
                return
        keep.add(key)
        sig = (dec.uid, dec.version, smooth, panel.log_y, name, group, self.x_axis, self._time_scale,
               (clock.uid, clock.version) if clock is not None else None, *extra)
        if not self._changed(pname, key, sig) and key in panel.curves:
            return
        x, y = dec.data()
        if smooth > 1:
            y = trailing_mean(y, max(1, round(smooth / dec.stride)))
        if self.x_axis != "step" and traces is not None:
            times = time_of(traces, x, self.x_axis)
            if times is None:
                return
            x = times if self.x_axis == "wall" else times / self._time_scale[0]
        panel.set_curve(key, x, y, style, name, symbol=symbol, group=group)

    # ---- the x axis over training time: steps, or the time each run took (TensorBoard's Relative, Wall) ---------
    def set_x_axis(self, mode: str) -> None:
        """Draw the plots over training time against the step, the time since each run began (``relative``) or
        the wall clock (``wall``); runs from before wall times were recorded are left out of the time axes."""
        if mode not in X_AXES:
            raise ValueError(f"x axis must be one of {', '.join(X_AXES)}, not {mode!r}")
        if mode == self.x_axis:
            return
        self.x_axis = mode
        self._time_scale = self._pick_time_scale()
        for panel in self.step_panels:
            self._bottom_axis(panel)
            panel.grow_x = mode == "step"           # the step axis ends at the planned steps; time axes fit the data
            panel.reset_range()
            panel.plot.enableAutoRange(x=mode != "step")
        self.invalidate()

    def x_axis_label(self) -> str:
        if self.x_axis == "relative":
            return f"time since the run began ({self._time_scale[1]})"
        if self.x_axis == "wall":
            return "wall-clock time"
        return "step"

    def _pick_time_scale(self) -> tuple[float, str]:
        """Seconds, minutes or hours, by the longest run shown (every plot and run in the same unit)."""
        longest = 0.0
        for t in self.shown_runs():
            clock = t.series.get(WALL_TIME)
            if clock is not None and len(clock):
                longest = max(longest, float(clock.data()[1].max()))
        if longest > 2 * 3600:
            return 3600.0, "h"
        if longest > 120:
            return 60.0, "min"
        return 1.0, "s"

    def _bottom_axis(self, panel: PlotPanel) -> None:
        """The panel's x axis for the mode: dates and times for the wall clock, plain numbers otherwise."""
        wall = self.x_axis == "wall"
        current = panel.plot.getAxis("bottom")
        if wall != isinstance(current, pg.DateAxisItem):
            axis = pg.DateAxisItem(orientation="bottom") if wall else TickAxis("bottom")
            axis.setPen(pen(panel.colors["axis"], 1))
            axis.setTextPen(pen(panel.colors["axis"], 1))
            axis.setTickFont(current.style["tickFont"])
            axis.enableAutoSIPrefix(False)
            panel.plot.setAxisItems({"bottom": axis})
        label = "step (dotted: epoch starts)" if panel is self.loss_panel and self.x_axis == "step" \
            else self.x_axis_label()
        panel.plot.setLabel("bottom", label, **panel.label_style)

    def color(self, t: RunTraces) -> QColor:
        """A run's colour on every plot and in the runs list: by its number, or the one given to a run of
        another file (its ``color_index``)."""
        return series_color(t.color_index) if t.color_index is not None else run_color(t.run_id)

    # ---- the forecasting task's predictions (the dashboard computes them; see TrainingDashboard) ---------------
    def show_forecast_panel(self, on: bool) -> None:
        """Put the predicted-vs-actual plot among the others (after the metric), or take it out."""
        there = self.forecast_panel in self.panels
        if on == there:
            return
        if on:
            self.panels.insert(self.panels.index(self.metric_panel) + 1, self.forecast_panel)
        else:
            self.grid.removeWidget(self.forecast_panel)
            self.panels.remove(self.forecast_panel)
        self.forecast_panel.setVisible(on)
        self._columns = 0               # lay every panel out again
        self._reflow()

    def set_forecast(self, lines: dict[str, Any] | None, message: str = "") -> None:
        """Draw :func:`workbench.core.forecasts.forecast_lines` (None: nothing to draw; ``message`` says why)."""
        panel = self.forecast_panel
        if not lines:
            panel.clear_curves()
            panel.title.setText("Forecast vs actual (validation)" + (f": {message}" if message else ""))
            return
        self.forecast_step.blockSignals(True)
        self.forecast_step.setRange(1, max(1, int(lines["horizon"])))
        self.forecast_step.setValue(int(lines["step"]))
        self.forecast_step.blockSignals(False)
        self.forecast_step.setVisible(int(lines["horizon"]) > 1)
        x = np.asarray(lines["x"], dtype=np.float64)
        colors = panel.colors
        first = not panel.curves
        # the errors in the legend, beside what they are of: the title is too narrow for them at 1280 px
        panel.set_curve("actual", x, np.asarray(lines["actual"]), pen(colors["text"], 1.3), "actual")
        panel.set_curve("predicted", x, np.asarray(lines["predicted"]), pen(series_color(0), 1.8),
                        f"model (MSE {lines['mse']:.3g})")
        panel.set_curve("naive", x, np.asarray(lines["naive"]), pen(colors["muted"], 1.3, DASH),
                        f"naive, last value (MSE {lines['naive_mse']:.3g})")
        ahead = f", {lines['step']} ahead" if int(lines["horizon"]) > 1 else ""
        panel.title.setText(f"Forecast vs actual ({lines['split']}{ahead})")
        panel.set_y_label(lines.get("target") or "value")
        if first and len(x) > FORECAST_ROWS:
            # hundreds of rows in 300 px are a band: the first rows, where the lines can be told apart (drag or
            # Ctrl+wheel for the rest; right-click ▸ View All shows everything)
            panel.plot.setXRange(x[0], x[FORECAST_ROWS - 1], padding=0.01)

    def _run_group(self, t: RunTraces) -> str:
        """The legend group of a run's curves: none for a run alone, its label ("run-2 (lstm)") among overlays,
        so that every run's entries read "<run> <series>" alike."""
        return t.label if self._overlaid() else ""

    def _draw_loss(self) -> None:
        panel, keep = self.loss_panel, set()
        for i, t in enumerate(self.shown_runs()):
            color = self.color(t)
            primary = i == 0
            group = self._run_group(t)
            train = t.series.get("train/loss")
            if primary:
                self._line(panel, "loss", f"{t.key}:raw", train, pen(color, 1.0, alpha=0.28), None, keep, traces=t)
            self._line(panel, "loss", f"{t.key}:train", train, pen(color, 2.0 if primary else 1.6,
                                                                      Qt.PenStyle.SolidLine if primary else DASH),
                       "train", keep, smooth=self.smoothing, group=group, traces=t)
            self._line(panel, "loss", f"{t.key}:valid", t.series.get("valid/loss"),
                       pen(_shade(color), 1.4, DOT if not primary else Qt.PenStyle.SolidLine), "valid", keep,
                       symbol="o", group=group, traces=t)
        panel.prune(keep)
        if self.x_axis == "step":
            self._draw_epochs()
        else:                           # epochs are marked on the step axis only
            for line in self._epoch_lines:
                self.loss_panel.plot.removeItem(line)
            self._epoch_lines, self._epoch_drawn = [], ()

    def _draw_epochs(self) -> None:
        t = self.primary
        starts = tuple(t.epoch_starts) if t else ()
        shown = spaced_marks(self.loss_panel, [step for step, _ in starts])
        if (starts, tuple(shown)) == self._epoch_drawn:
            return
        self._epoch_drawn = (starts, tuple(shown))
        for line in self._epoch_lines:
            self.loss_panel.plot.removeItem(line)
        self._epoch_lines = []
        if not starts:
            return
        muted = self.loss_panel.colors["muted"]
        # the epoch's number only ("epoch 3" runs into the next mark); the axis label says what the marks are
        for k in shown:
            step, epoch = starts[k]
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
            color = self.color(t)
            group = self._run_group(t)
            if i == 0:
                self._line(panel, "grad", f"{t.key}:before", t.series.get("train/grad_norm"),
                           pen(color, 1.2, alpha=0.45), "before clipping", keep, group=group, traces=t)
                self._line(panel, "grad", f"{t.key}:after", t.series.get("train/grad_norm_clipped"),
                           pen(color, 1.6), "after clipping", keep, group=group, traces=t)
            else:                     # an overlaid run: the norm before clipping only, dashed
                self._line(panel, "grad", f"{t.key}:before", t.series.get("train/grad_norm"),
                           pen(color, 1.3, DASH), "before clipping", keep, group=group, traces=t)
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
                           group, keep, extra=(prefix,), traces=t)
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
                           group=layer + GROUP_PATH_SUFFIX if layer else "", traces=t)
        panel.prune(keep)

    def _draw_metric(self) -> None:
        t = self.primary
        names = t.metric_names() if t else []
        # a task's reference points are drawn with the metric they refer to, not chosen on their own: the memory
        # tasks' baseline_mse, the forecasting task's naive_mse (the forecast that repeats the last value)
        names = [n for n in names if not n.startswith(("baseline_", "naive_"))] or names
        current = [self.metric_combo.itemData(i) for i in range(self.metric_combo.count())]
        if names != current:
            self.metric_combo.blockSignals(True)
            self.metric_combo.clear()
            for n in names:
                self.metric_combo.addItem(n, n)
            # a metric that has a reference line first, in the order of preference (MSE before MAE)
            with_baseline = sorted((m for m in names if _baseline_key(t, m)),
                                   key=lambda m: METRIC_PREFERENCE.index(m) if m in METRIC_PREFERENCE else 99)
            choice = self.metric_name if self.metric_name in names else next(
                iter(with_baseline + [m for m in METRIC_PREFERENCE if m in names] + names), "")
            self.metric_combo.setCurrentIndex(max(0, self.metric_combo.findData(choice)))
            self.metric_combo.blockSignals(False)
            self.metric_name = choice
        panel, keep = self.metric_panel, set()
        if t is not None and self.metric_name:
            color = self.color(t)
            self._line(panel, "metric", "value", t.series.get(f"valid/{self.metric_name}"), pen(color, 1.8),
                       self.metric_name, keep, symbol="o", extra=(self.metric_name,), traces=t)
            key = _baseline_key(t, self.metric_name)
            what = "naive forecast" if key.startswith("valid/naive_") else "baseline"
            self._line(panel, "metric", "baseline", t.series.get(key) if key else None,
                       pen(panel.colors["muted"], 1.4, DASH), f"{what} ({self.metric_name})", keep,
                       extra=(self.metric_name,), traces=t)
            panel.set_y_label(self.metric_name)
        panel.prune(keep)

    def _draw_simple(self, panel: PlotPanel, key: str) -> None:
        keep: set[str] = set()
        t = self.primary
        if t is not None:
            self._line(panel, panel.objectName(), "value", t.series.get(key), pen(self.color(t), 1.6), None,
                       keep, traces=t)
        panel.prune(keep)

    def _draw_gtt(self) -> None:
        panel, keep = self.gtt_panel, set()
        runs = self.shown_runs()
        for i, t in enumerate(runs):
            for j, layer in enumerate(t.layers):
                values = (t.gtt_latest.get(layer) or {}).get(self.quantity)
                if not values:
                    continue
                key = f"{t.key}:{layer}"
                keep.add(key)
                sig = (t.uid, t.version, self.quantity, t.gtt_latest_step, self._overlaid(), panel.log_y)
                if not self._changed("gtt", key, sig) and key in panel.curves:
                    continue
                x = np.arange(1, len(values) + 1, dtype=np.float64)
                y = np.asarray(values, dtype=np.float64)
                if not self._overlaid():       # one run: a colour per layer (the run's own when it has one)
                    style = pen(series_color(j) if len(t.layers) > 1 else self.color(t), 1.8)
                elif i == 0:                  # runs overlaid: a colour per run, layers by line style
                    style = pen(self.color(t), 2.0, LAYER_STYLES[j % len(LAYER_STYLES)])
                else:
                    style = pen(self.color(t), 1.4, DASH if j % 2 == 0 else DOT)
                panel.set_curve(key, x, y, style, layer, group=self._run_group(t))
        panel.prune(keep)
        if runs and runs[0].gtt_latest_step:
            panel.title.setText(f"Latest probe (step {runs[0].gtt_latest_step})")
        else:
            panel.title.setText("Latest probe")

    def _draw_heatmap(self) -> None:
        runs = self.shown_runs()
        ids = [t.key for t in runs]
        current_ids = [self.heat_run.itemData(i) for i in range(self.heat_run.count())]
        if ids != current_ids:
            chosen = self.heat_run.currentData()
            self.heat_run.blockSignals(True)
            self.heat_run.clear()
            for t in runs:
                # the run's id alone keeps the combo, and so the title beside it, short; its tooltip has the cells
                self.heat_run.addItem(f"{t.file}: {t.run_id}" if t.source else t.run_id, t.key)
                self.heat_run.setItemData(self.heat_run.count() - 1, t.label, Qt.ItemDataRole.ToolTipRole)
            self.heat_run.setCurrentIndex(max(0, self.heat_run.findData(chosen)) if chosen in ids else 0)
            # a run of another file has a long name ("adding-rnn.seqwb: run-1"): the combo then stays narrow, so
            # that the plot's title keeps its room, and its list shows the names whole
            foreign = any(t.source for t in runs)
            self.heat_run.setMinimumContentsLength(6)
            self.heat_run.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon if foreign
                else QComboBox.SizeAdjustPolicy.AdjustToContents)
            self.heat_run.blockSignals(False)
        self.heat_run.setVisible(len(runs) > 1)
        t = next((r for r in runs if r.key == self.heat_run.currentData()), runs[0] if runs else None)
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
        sig = (t.key if t else None, layer, self.quantity, dec.uid if dec else None, dec.version if dec else None)
        if not self._changed("heat", "image", sig):
            return
        if dec is None or len(dec) == 0:
            self.heat_panel.set_rows(None, None)
            return
        steps, rows = dec.data()
        self.heat_panel.set_rows(rows, steps)
        self.heat_panel.plot.enableAutoRange()


def _baseline_key(t: RunTraces, metric: str) -> str:
    """The series a metric is compared with: the task's baseline, or the naive forecast's value ("" if none)."""
    for key in (f"valid/baseline_{metric}", f"valid/naive_{metric}"):
        if key in t.series:
            return key
    return ""


def _label_fill(colors: dict[str, QColor]) -> Any:
    """Behind a line's label: the plot's background, nearly opaque, so the text reads over the curves."""
    c = QColor(colors["background"])
    c.setAlphaF(0.85)
    return pg.mkBrush(c)


def _shade(color: QColor) -> QColor:
    """The validation curve: the run's colour, a little darker or lighter, so it reads as the same run."""
    return color.darker(135) if color.lightness() > 110 else color.lighter(140)

