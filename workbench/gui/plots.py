"""Plot building blocks for the training dashboard: themed pyqtgraph panels.

Long runs keep fixed memory and smooth plots (DESIGN §9, pyqtgraph's habits): every series the dashboard draws is
a :class:`~workbench.core.traces.Decimator`, so the whole run stays visible at an even resolution whatever its
length, and on top of that the curves use pyqtgraph's ``clipToView`` and peak-preserving ``autoDownsample``, so a
redraw costs about the same at step 100 and at step 1,000,000.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QIcon, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (QApplication, QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout,
                               QWidget)

from workbench.core.traces import LOG_FLOOR
from workbench.gui.forms import ElidedLabel, FlowLayout
from workbench.gui.style import blend, is_dark, ui_font

#: one colour per run (by run number) and per layer / group; mid-luminance hues readable on light and dark
SERIES_COLORS = ("#3f8fe0", "#e8772e", "#36a852", "#d6457c", "#9467d6", "#1aa6a6", "#c49a1c", "#8c6d5a",
                 "#6b7f99", "#e35d3f")
#: a legend group named like a path ("rnn.0/"): its entries' whole names are the group's path plus the entry
GROUP_PATH_SUFFIX = "/"
#: the steps an empty step axis shows when nothing says how long the run will be (a project trained by epochs)
EMPTY_STEPS = 100.0


def series_color(index: int) -> QColor:
    return QColor(SERIES_COLORS[index % len(SERIES_COLORS)])


def run_color(run_id: str) -> QColor:
    """A run keeps its colour on every plot and in the runs list: by its number (``run-3`` -> the third)."""
    tail = run_id.rsplit("-", 1)[-1]
    return series_color(int(tail) - 1 if tail.isdigit() else abs(hash(run_id)))


# ---- values for the axes ------------------------------------------------------------------------------

def positive(y: np.ndarray) -> np.ndarray:
    """Values for a log axis: non-finite and non-positive values go to the floor."""
    out = np.where(np.isfinite(y), y, LOG_FLOOR)
    return np.maximum(out, LOG_FLOOR)


# ---- theme ------------------------------------------------------------------------------------------------

def plot_colors(widget: QWidget | None = None) -> dict[str, QColor]:
    """Background, text, grid and faint colours from the application palette (light or dark theme)."""
    pal = QPalette(widget.palette() if widget is not None else QApplication.palette())
    base = QColor(pal.color(QPalette.ColorRole.Base))
    text = QColor(pal.color(QPalette.ColorRole.Text))
    return {"background": base, "text": text, "axis": blend(text, base, 0.25), "muted": blend(text, base, 0.45),
            "faint": blend(text, base, 0.75), "dark": QColor("#000") if not is_dark(pal) else QColor("#fff"),
            "threshold": QColor("#e5484d") if is_dark(pal) else QColor("#c62828")}


def pen(color: QColor | str, width: float = 1.6, style: Qt.PenStyle = Qt.PenStyle.SolidLine,
        alpha: float = 1.0) -> Any:
    c = QColor(color)
    c.setAlphaF(alpha)
    p = pg.mkPen(c, width=width)
    p.setStyle(style)
    p.setCosmetic(True)
    return p


class TickAxis(pg.AxisItem):
    """pyqtgraph's axis, with log-axis labels that never pile up.

    Over less than about two decades pyqtgraph labels every minor tick of a log axis (0.2, 0.3 ... 0.9), and
    since they crowd towards the top of each decade the labels overlap.  Here the decades keep their labels (the
    decades themselves are among the minor ticks when the range is that short) and the other minor ticks are
    labelled only at 5 and 2 times a decade, and only where a label has a line of room from every other; the
    rest stay unlabelled ticks.
    """

    MINOR_LABELS = (1, 5, 2)     # in the order they get a label when there is room for some

    def __init__(self, orientation: str, **kwargs: Any):
        super().__init__(orientation, **kwargs)
        self._pixels_per_unit = 0.0
        self._labelled: list[float] = []

    def logTickValues(self, minVal: float, maxVal: float, size: float, stdTicks: list) -> list:  # noqa: N802
        # called once per layout of the ticks, before their labels: the scale the labels are spaced on
        self._pixels_per_unit = size / max(maxVal - minVal, 1e-12)
        self._labelled = []
        return super().logTickValues(minVal, maxVal, size, stdTicks)

    def logTickStrings(self, values: list[float], scale: float, spacing: float | None) -> list:  # noqa: N802
        strings = super().logTickStrings(values, scale, spacing)
        if spacing is not None:          # decades: pyqtgraph spaces them itself
            self._labelled.extend(values)
            return strings
        metrics = QFontMetricsF(self.style["tickFont"] or QApplication.font())
        vertical = self.orientation in ("left", "right")
        if vertical:
            room = 1.2 * metrics.height()
        else:
            room = 1.5 * max((metrics.horizontalAdvance(t) for t in strings), default=0.0)
        keep: set[int] = set()
        for mantissa in self.MINOR_LABELS:
            for i, v in enumerate(values):
                if round(10 ** (v - math.floor(v))) != mantissa:
                    continue
                if all(abs(v - u) * self._pixels_per_unit >= room for u in self._labelled):
                    keep.add(i)
                    self._labelled.append(v)
        return [text if i in keep else None for i, text in enumerate(strings)]


class _PlotWidget(pg.PlotWidget):
    """pyqtgraph's widget asks for about 600 x 500 px; in the dashboard's grid the rows decide, so it asks for
    little (otherwise a panel whose legend wraps, a height-for-width layout, is laid out 500 px tall).

    The wheel zooms a plot only with Ctrl held, or once the plot was clicked (it has the focus then); otherwise it
    scrolls the page the plot is on.  Scrolling down the dashboard zoomed every plot that passed under the pointer
    (the σ_max axis out to −30,000)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(300, 120)

    def wheelEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if self.hasFocus() or event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(event)
        else:
            event.ignore()          # not accepted: Qt hands it to the page, which scrolls


def line_icon(style: Any, symbol: bool = False) -> QIcon:
    """A short sample of a curve's line (colour, width, dash) for its legend entry."""
    pixmap = QPixmap(22, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    p = QPen(style)
    p.setWidthF(max(2.0, style.widthF()))
    p.setCosmetic(True)
    painter.setPen(p)
    painter.drawLine(1, 6, 21, 6)
    if symbol:
        painter.setBrush(style.color())
        painter.drawEllipse(QPoint(11, 6), 3, 3)
    painter.end()
    return QIcon(pixmap)


class PlotPanel(QWidget):
    """A title row with optional controls, a legend row, and a themed pyqtgraph plot below.

    ``curve(key)`` creates a curve once and reuses it; ``set_curve(key, x, y)`` updates it (``setData``), and
    ``prune(keys)`` removes the curves that are no longer wanted (a run taken off the overlay).  The legend is a
    row of check boxes above the plot, not a box inside it: it never hides data, and unticking an entry hides its
    curve.  Entries may be grouped (a run, a layer): the group is named once at the start of its row and the
    entries carry the rest of the name, so eight matrices of two layers take two rows, not four.

    A panel without curves shows a short message on a plain default range, never the range of data it no longer
    has (another project was opened) or the degenerate range of no data at all.
    """

    def __init__(self, title: str, y_label: str = "", x_label: str = "step", *, log_y: bool = False,
                 legend: bool = False, y_from_zero: bool = False, y_min_top: float = 0.0, tip: str = "",
                 empty_text: str = "no data yet", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(f"plot:{title}")
        self.log_y = log_y
        self.y_from_zero = y_from_zero
        self.y_min_top = y_min_top          # the y axis reaches at least this high (the line at σ = 1 stays in view)
        self.colors = plot_colors(self)
        self.title = ElidedLabel(title, tip=tip)
        self.title.setFont(ui_font(1.0, bold=True))
        # a title that changes ("latest probe (step 12)") must not re-lay out the grid: every plot would be
        # resized and repainted at once
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setMinimumWidth(40)
        if tip:
            self.setToolTip(tip)
        self.header = QHBoxLayout()
        self.header.setContentsMargins(4, 0, 4, 0)
        self.header.setSpacing(6)
        self.header.addWidget(self.title, 1)
        self.legend_row: QWidget | None = None
        self.legend_entries: dict[str, QCheckBox] = {}
        self._legend_groups: dict[str, str] = {}       # key -> the group its entry is listed under ("": none)
        self._group_labels: dict[str, QLabel] = {}
        if legend:
            self.legend_row = QWidget()
            self.legend_row.setObjectName("legendRow")
            self.legend_layout = FlowLayout(self.legend_row, h_spacing=5, v_spacing=2, compact_hint=True)
            self.legend_layout.setContentsMargins(0, 0, 0, 0)
            self.legend_row.setContentsMargins(6, 0, 4, 0)
            # the row keeps its height while empty: entries arriving must not re-lay out (and repaint) the grid
            self.legend_row.setMinimumHeight(QCheckBox("x").sizeHint().height())
        axes = {name: TickAxis(name) for name in ("left", "bottom")}
        self.widget = _PlotWidget(background=self.colors["background"], axisItems=axes)
        self.widget.setMinimumHeight(120)
        self.widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.plot = self.widget.getPlotItem()
        self.plot.setMenuEnabled(True)
        # horizontal grid lines only: they are what values are read against, and every grid line is redrawn on
        # each repaint (a full grid makes a plot ~35 % slower to paint)
        self.plot.showGrid(x=False, y=True, alpha=0.18)
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.hideButtons()
        tick_font = ui_font(0.9)
        label_style = {"color": self.colors["axis"].name(), "font-size": f"{max(8.0, tick_font.pointSizeF()):.0f}pt"}
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pen(self.colors["axis"], 1))
            axis.setTextPen(pen(self.colors["axis"], 1))
            axis.setTickFont(tick_font)
            axis.enableAutoSIPrefix(False)     # "loss (x0.001)" over ticks 50..250 reads worse than 0.05..0.25
        self.label_style = label_style
        self.plot.setLabel("bottom", x_label, **label_style)
        if y_label:
            self.plot.setLabel("left", y_label, **label_style)
        self.plot.getAxis("left").setWidth(54)
        self.plot.setLogMode(y=log_y)
        self.curves: dict[str, Any] = {}
        self.updates = 0                  # data changes so far: the dashboard spreads repaints over frames
        self.last_update = 0.0            # monotonic time of the last data change (the dashboard throttles)
        # A training-step axis reaches the step the dashboard says (``set_x_extent``: the live run's planned steps,
        # or the last step shown), so it does not move while a run fills it.  When that is not known, or the data
        # pass it, the axis grows in steps of 1-2-5 instead of with every point: re-laying out the axis ticks is a
        # third of what a repaint costs.  Once the user pans or zooms, the range is theirs.
        self.grow_x = x_label.startswith("step")
        self.x_extent = 0.0
        self._x_limit = 0.0
        self._user_range = False
        if self.grow_x:
            self.plot.enableAutoRange(x=False)
        self.plot.vb.sigRangeChangedManually.connect(self._on_user_range)
        self.empty_text = pg.TextItem(empty_text, color=self.colors["muted"], anchor=(0.5, 0.5))
        self.empty_text.setFont(ui_font(1.0))
        self.plot.addItem(self.empty_text, ignoreBounds=True)     # never part of the automatic range
        self.is_empty = False             # showing the empty range and message (``_show_empty``)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 4, 2, 2)
        layout.setSpacing(2)
        layout.addLayout(self.header)
        if self.legend_row is not None:
            layout.addWidget(self.legend_row)
        layout.addWidget(self.widget, 1)
        from workbench.gui.plot_export import add_export_button
        add_export_button(self)             # Export PNG / SVG / CSV
        self._show_empty()

    def add_control(self, widget: QWidget) -> QWidget:
        self.header.addWidget(widget)
        return widget

    def set_log(self, log_y: bool) -> None:
        self.log_y = log_y
        self.plot.setLogMode(y=log_y)
        for key in list(self.curves):          # log mode needs positive values: redone at the next update
            self.curves[key].setData([], [])
        if not self._has_data():
            self._show_empty()                 # the default range in the new scale

    def set_y_label(self, text: str) -> None:
        self.plot.setLabel("left", text, **self.label_style)

    # ---- curves and their legend entries ---------------------------------------------------------------
    def curve(self, key: str, style: Any, name: str | None = None, *, symbol: str | None = None,
              group: str = "") -> Any:
        item = self.curves.get(key)
        if item is None:
            kwargs: dict[str, Any] = {"pen": style}
            if symbol:
                kwargs.update(symbol=symbol, symbolSize=5, symbolPen=style, symbolBrush=style.color())
            item = self.plot.plot(**kwargs)
            item.setClipToView(True)
            item.setDownsampling(auto=True, method="peak")
            self.curves[key] = item
            self._legend_add(key, item, style, name, bool(symbol), group)
        else:
            if item.opts.get("pen") != style:      # another run is shown under the same key: its colour
                item.setPen(style)
                if symbol:
                    item.setSymbolPen(style)
                    item.setSymbolBrush(style.color())
                if key in self.legend_entries:
                    self.legend_entries[key].setIcon(line_icon(style, bool(symbol)))
            if name is not None and key in self.legend_entries:
                box = self.legend_entries[key]
                if box.text() != name:
                    box.setText(name)
                if self._legend_groups.get(key, "") != group:
                    self._legend_groups[key] = group
                    self._arrange_legend()
        return item

    def series_name(self, key: str) -> str:
        """A curve's whole name: its legend group and entry ("run-2 (lstm) train", "rnn.0/W_hf"), or its key."""
        box = self.legend_entries.get(key)
        if box is None:
            return key
        group = self._legend_groups.get(key, "")
        if not group:
            return box.text()
        return f"{group}{box.text()}" if group.endswith(GROUP_PATH_SUFFIX) else f"{group} {box.text()}"

    def _legend_add(self, key: str, item: Any, style: Any, name: str | None, symbol: bool, group: str) -> None:
        if self.legend_row is None or not name:
            return
        box = QCheckBox(name)
        box.setObjectName(f"legend:{key}")
        box.setFont(ui_font(0.85))
        box.setIcon(line_icon(style, symbol))
        # compact: four entries and their group's name fit on one row of a panel at the default window size
        box.setIconSize(QSize(16, 12))
        box.setStyleSheet("QCheckBox { spacing: 3px; }")
        box.setChecked(True)
        box.setToolTip("Untick to hide this curve")
        box.toggled.connect(item.setVisible)
        self.legend_entries[key] = box
        self._legend_groups[key] = group
        self._arrange_legend()

    def _legend_remove(self, key: str) -> None:
        box = self.legend_entries.pop(key, None)
        self._legend_groups.pop(key, None)
        if box is not None:
            self.legend_layout.removeWidget(box)
            box.deleteLater()
            self._arrange_legend()

    def _arrange_legend(self) -> None:
        """Entries in groups, in the order the groups first appeared; each group starts a row with its name."""
        if self.legend_row is None:
            return
        order: dict[str, list[str]] = {}
        for key in self.legend_entries:
            order.setdefault(self._legend_groups.get(key, ""), []).append(key)
        grouped = len(order) > 1 or "" not in order
        for group in [g for g in self._group_labels if g not in order or not grouped]:
            label = self._group_labels.pop(group)
            self.legend_layout.removeWidget(label)
            label.deleteLater()
        while self.legend_layout.count():
            self.legend_layout.takeAt(0)
        for group, keys in order.items():
            if grouped and group:
                label = self._group_labels.get(group)
                if label is None:
                    label = self._group_labels[group] = QLabel(group.removesuffix(GROUP_PATH_SUFFIX))
                    label.setObjectName(f"legendGroup:{group}")
                    label.setFont(ui_font(0.85, bold=True))
                    label.setProperty("flowBreak", True)
                    label.setParent(self.legend_row)
                    label.show()
                self.legend_layout.addWidget(label)
            for key in keys:
                box = self.legend_entries[key]
                # a group without a name (the shown run among overlays) also starts its own row
                box.setProperty("flowBreak", grouped and not group and key == keys[0])
                self.legend_layout.addWidget(box)
        self.legend_layout.invalidate()

    def set_curve(self, key: str, x: np.ndarray, y: np.ndarray, style: Any, name: str | None = None, *,
                  symbol: str | None = None, group: str = "") -> None:
        item = self.curve(key, style, name, symbol=symbol, group=group)
        if self.log_y:
            y = positive(y)
        item.setData(x, y)
        self.updates += 1
        if not len(x):
            return
        if self.is_empty:                    # the first data: the ranges follow the data from now on
            self._hide_empty()
            self._auto_ranges()
        if self._user_range:
            return
        if self.grow_x:
            self._fit_x(float(np.nanmax(x)))
        if self.y_from_zero:
            # the data given, not getData(): that is clipped to the view, and empty while the view is elsewhere
            top = max((float(np.nanmax(c.yData)) for c in self.curves.values()
                       if c.yData is not None and len(c.yData)), default=0.0)
            self.plot.setYRange(0.0, max(top * 1.15 if top > 0 else 1.0, self.y_min_top), padding=0)

    def _on_user_range(self, *_args: Any) -> None:
        self._user_range = True

    def set_x_extent(self, extent: float) -> None:
        """Where a step axis ends: the live run's planned steps, or the last step of the runs shown (0: not
        known).  The dashboard says which; an empty panel shows the same span as the others."""
        if not self.grow_x or extent == self.x_extent:
            return
        self.x_extent = extent
        if not self._has_data():
            self._show_empty()
        elif not self._user_range:
            self._x_limit = 0.0
            self._fit_x(self._data_x_max())

    def _data_x_max(self) -> float:
        ends = [float(np.nanmax(c.xData)) for c in self.curves.values() if c.xData is not None and len(c.xData)]
        return max(ends, default=0.0)

    def _fit_x(self, x_max: float) -> None:
        if 0 < x_max <= self.x_extent:
            limit = self.x_extent
        elif x_max * 1.05 <= self._x_limit:     # grown past the newest point already
            return
        else:                                    # keep the newest point off the edge
            limit = nice_ceiling(max(x_max * 1.15, 10.0))
        if limit != self._x_limit:
            self._x_limit = limit
            self.plot.setXRange(0.0, limit, padding=0.02)

    def _has_data(self) -> bool:
        return bool(self.curves)

    def _empty_range(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``(x range, y range)`` in view coordinates for a panel without data: round numbers, plain ticks."""
        x = (0.0, self.x_extent or EMPTY_STEPS) if self.grow_x else (0.0, 10.0)
        if self.log_y:
            y = (-3.0, 0.0)                      # 0.001 to 1: the log axis is in log10 units
        else:
            y = (0.0, max(1.0, self.y_min_top))
        return x, y

    def _show_empty(self) -> None:
        (x0, x1), (y0, y1) = self._empty_range()
        self._x_limit = 0.0
        self._user_range = False
        self.plot.setXRange(x0, x1, padding=0.02)
        # from the bottom exactly (a value below zero would be nonsense on most of these axes), a little room at
        # the top so that the top tick's label is not cut by the edge of the plot
        self.plot.setYRange(y0, y1 + 0.04 * (y1 - y0), padding=0)
        self.empty_text.setPos((x0 + x1) / 2, (y0 + y1) / 2)
        self.empty_text.setVisible(True)
        self.is_empty = True

    def _hide_empty(self) -> None:
        self.empty_text.setVisible(False)
        self.is_empty = False

    def _auto_ranges(self) -> None:
        """The axes that follow the data by themselves do so again (a fixed range, the empty one, stops that)."""
        if not self.y_from_zero:
            self.plot.enableAutoRange(y=True)
        if not self.grow_x:
            self.plot.enableAutoRange(x=True)

    def reset_range(self) -> None:
        """Back to the automatic range (another run is shown)."""
        self._user_range = False
        self._x_limit = 0.0
        if not self._has_data():
            self._show_empty()
            return
        self._auto_ranges()
        if self.grow_x:
            self._fit_x(self._data_x_max())

    def prune(self, keep: set[str]) -> None:
        for key in [k for k in self.curves if k not in keep]:
            self.updates += 1
            item = self.curves.pop(key)
            self._legend_remove(key)
            self.plot.removeItem(item)
        if not self._has_data() and not self.is_empty:
            self._show_empty()

    def clear_curves(self) -> None:
        self.prune(set())


def spaced_marks(panel: "PlotPanel", xs: list[float], min_px: float = 26.0) -> list[int]:
    """The indices of the marks at ``xs`` (epoch starts) to draw on ``panel`` so that no two are closer than
    ``min_px`` pixels at its current x range: on a small corpus an epoch is a few steps, and a dozen labels drawn
    over the first 2 % of the axis piled up into one black smudge."""
    (x0, x1), width = panel.plot.vb.viewRange()[0], panel.plot.vb.width()
    if not xs:
        return []
    per_unit = (width if width > 0 else 300.0) / max(x1 - x0, 1e-9)
    keep, last = [], None
    for i, x in enumerate(xs):
        if last is None or (x - last) * per_unit >= min_px:
            keep.append(i)
            last = x
    return keep


def nice_ceiling(v: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``v``."""
    if v <= 0:
        return 1.0
    exp = math.floor(math.log10(v))
    for m in (1, 2, 5, 10):
        if m * 10 ** exp >= v:
            return float(m * 10 ** exp)
    return float(10 ** (exp + 1))


class HeatmapPanel(PlotPanel):
    """An image of log10 values (rows: training steps, columns: timesteps) with fixed levels and a colour bar.

    The levels are fixed so that colours mean the same thing as rows arrive and between runs (an RNN and an LSTM
    shown one after the other are on the same scale); they only widen when a value leaves the range.
    """

    def __init__(self, title: str, *, bar_label: str, levels: tuple[float, float] = (-9.0, 0.0), tip: str = "",
                 parent: QWidget | None = None):
        super().__init__(title, "training step", "t (timestep of the probe sequence)", tip=tip,
                         empty_text="no probe yet", parent=parent)
        self.default_levels = self.levels = levels
        self.row_steps: np.ndarray | None = None
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        # The rows' axis spans the run (0 to the dashboard's step extent), as the other step axes do, so the probes
        # fill it from the bottom as the run goes.  Fitted to the rows alone, one probe filled the whole panel: a
        # band of colour with a y axis of a single step.  An invisible line from 0 to the extent holds the span
        # (the automatic range counts drawn items only).
        self.step_extent = 0.0
        self._span = pg.PlotDataItem([], [], pen=pg.mkPen(0, 0, 0, 0))
        self.plot.addItem(self._span)
        self.plot.showGrid(x=False, y=False)
        cmap = pg.colormap.get("viridis")
        self.bar = pg.ColorBarItem(values=levels, colorMap=cmap, label=bar_label, interactive=False, width=14,
                                   colorMapMenu=False, pen=pen(self.colors["axis"], 1))
        self.bar.setImageItem(self.image, insert_in=self.plot)
        axis = self.bar.getAxis("right") if hasattr(self.bar, "getAxis") else None
        if axis is not None:
            axis.setPen(pen(self.colors["axis"], 1))
            axis.setTextPen(pen(self.colors["axis"], 1))
            axis.setTickFont(ui_font(0.9))

    def _has_data(self) -> bool:
        image = getattr(self, "image", None)          # None while PlotPanel.__init__ shows the empty panel
        return image is not None and image.image is not None

    def _empty_range(self) -> tuple[tuple[float, float], tuple[float, float]]:
        return (0.0, 10.0), (0.0, 10.0)

    def set_x_extent(self, extent: float) -> None:
        """The training steps the run spans (the dashboard calls this on every panel): the rows' axis reaches it."""
        if extent != self.step_extent:
            self.step_extent = float(extent)
            self._update_span()

    def _update_span(self) -> None:
        steps = self.row_steps
        if steps is None or len(steps) == 0 or self.step_extent <= 0:
            self._span.setData([], [])
            return
        top = max(self.step_extent, float(steps[-1]))
        self._span.setData([0.5, 0.5], [0.0, top])

    def reset_levels(self) -> None:
        """Back to the default colour scale (another project: its runs are compared among themselves)."""
        self.levels = self.default_levels
        self.bar.setLevels(self.levels)

    def set_rows(self, rows: np.ndarray | None, steps: np.ndarray | None) -> None:
        """``rows`` [n, T] of log10 values for the training steps ``steps`` [n] (evenly spaced)."""
        self.updates += 1
        self.row_steps = steps              # what Export CSV labels the rows with
        self._update_span()
        if rows is None or len(rows) == 0:
            self.image.clear()
            # the message alone would make the automatic range a point, labelled "0.500000000000000"
            self._show_empty()
            return
        self._hide_empty()
        rows = np.where(np.isfinite(rows), rows, self.levels[0])
        hi = float(np.max(rows))
        if hi > self.levels[1]:     # widen, never narrow: colours keep their meaning
            top = math.ceil(hi)
            self.levels = (self.levels[0] + (top - self.levels[1]), float(top))
            self.bar.setLevels(self.levels)
        n, T = rows.shape
        if n > 1:
            spacing = float(np.median(np.diff(steps)))
        else:   # one probe: its row as tall as the step it was taken at (probes come every that many steps)
            spacing = float(steps[0]) if steps[0] > 0 else max(self.step_extent / 20, 1.0)
        spacing = spacing if spacing > 0 else 1.0
        self.image.setImage(rows, levels=self.levels, autoLevels=False)
        self.image.setRect(QRectF(0.5, float(steps[0]) - spacing / 2, float(T), spacing * n))

    def auto_range(self) -> None:
        self.plot.enableAutoRange()


def spin_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setFont(ui_font(0.95))
    return label


def set_font(widget: QWidget, scale: float = 0.95) -> QWidget:
    widget.setFont(ui_font(scale))
    return widget

