"""pyqtgraph views of a recording: the units × time heatmap (with a unit's trace under it) and gate saturation.

The heatmap is one ``ImageItem`` whatever the size (20,000 steps × 512 units is one image, downsampled to the
screen by pyqtgraph), with fixed levels from :func:`workbench.core.recording.display_levels` and a colour bar.
Image layout: the array is ``[T, H]`` — time along x, units along y — and the y axis is inverted so unit 0 is at
the top.  Hovering shows unit, position, character and value above the plot; a click picks the unit (and the
position, which the text view scrolls to); the mouse wheel zooms, dragging pans, right-click ▸ View All resets.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from workbench.gui import inspect_colors
from workbench.gui.forms import ElidedLabel
from workbench.gui.style import is_dark, set_muted

GATE_TITLES = {"i": "input gate i", "f": "forget gate f", "o": "output gate o", "g": "candidate g",
               "r": "reset gate r", "z": "update gate z", "n": "candidate n"}
HOVER_HINT = ("Hover: unit, position, character, value · wheel: zoom · drag: pan · click: show that unit · "
              "right-click ▸ View All: everything")
EMPTY_TEXT = "Nothing recorded yet: press Record"
# what the axes span before anything is recorded (pyqtgraph's own default, -0.5..0.5, reads as junk)
EMPTY_STEPS = 100
EMPTY_UNITS = 10
#: up to this many steps, every column of the heatmap is labelled with its token
LABELLED_STEPS = 40
# layer colours of the saturation scatter: distinct in both themes (Okabe & Ito)
LAYER_COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#999999")


def _theme(widget: QWidget) -> tuple[QColor, QColor, QColor]:
    pal = widget.palette()
    return (QColor(pal.color(QPalette.ColorRole.Base)), QColor(pal.color(QPalette.ColorRole.Text)),
            QColor(pal.color(QPalette.ColorRole.Highlight)))


def colormap(dark: bool) -> pg.ColorMap:
    table = inspect_colors.lut(dark)
    return pg.ColorMap(np.linspace(0.0, 1.0, len(table)), table)


def _style_axes(plot: pg.PlotItem, text: QColor) -> None:
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(text))
        axis.setTextPen(pg.mkPen(text))


def _plain_axes(plot: pg.PlotItem) -> None:
    """No SI-prefix scaling: steps, units and fractions are plain numbers ("(x0.001)" after "step" means nothing)."""
    for name in ("left", "bottom", "right", "top"):
        plot.getAxis(name).enableAutoSIPrefix(False)


def tick_label(label: str) -> str:
    """A step's token under its column: invisible characters named by a sign, long words cut."""
    label = {"\n": "↵", "\t": "→", " ": "␣"}.get(label, label)
    return label if len(label) <= 8 else label[:7] + "…"


def shown_char(label: str) -> str:
    """A token as the hover text shows it: invisible characters named, the rest in quotes."""
    return {"\n": "↵ (newline)", "\t": "→ (tab)", " ": "␣ (space)"}.get(label, f"“{label}”")


class HeatmapView(QWidget):
    """Units × time for one layer and quantity, the chosen unit's trace underneath, and a colour bar."""

    unitClicked = Signal(int)
    positionClicked = Signal(int)
    hovered = Signal(int, int)          # step, unit (-1, -1 outside)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._values: Optional[np.ndarray] = None
        self._labels: list[str] = []
        self._levels = (-1.0, 1.0)
        self._unit = 0
        self._track: Optional[np.ndarray] = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.info = ElidedLabel(HOVER_HINT)      # ends in "…" in a narrow view rather than being cut mid-word
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        set_muted(self.info)
        layout.addWidget(self.info)
        self.glw = pg.GraphicsLayoutWidget()
        layout.addWidget(self.glw, 1)

        self.plot = self.glw.addPlot(row=0, col=0)
        self.plot.setMenuEnabled(True)
        self.plot.hideButtons()
        self.plot.getViewBox().invertY(True)
        self.plot.setLabel("left", "unit")
        self.plot.showAxis("bottom")
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setAutoDownsample(True)
        self.plot.addItem(self.image)
        self.unit_band = pg.LinearRegionItem(values=(0, 1), orientation="horizontal", movable=False)
        self.unit_band.setZValue(10)
        self.plot.addItem(self.unit_band)
        self.span_heat = pg.LinearRegionItem(values=(0, 0), orientation="vertical", movable=False)
        self.span_heat.setZValue(11)
        self.span_heat.hide()
        self.plot.addItem(self.span_heat)

        self.colorbar = pg.ColorBarItem(values=self._levels, colorMap=colormap(is_dark(self.palette())),
                                        interactive=False, width=14, colorMapMenu=False)
        # in a column of the layout beside the plot (not inside it), so the trace below can have the same width
        self.colorbar.setImageItem(self.image)
        self.glw.addItem(self.colorbar, row=0, col=1)

        self.trace = self.glw.addPlot(row=1, col=0)
        self.trace.setMaximumHeight(120)
        self.trace.setMinimumHeight(90)
        self.trace.setXLink(self.plot)
        self.trace.hideButtons()
        self.trace.setMouseEnabled(x=True, y=False)
        self.trace.setLabel("bottom", "position in the text (step)")
        self.trace.setClipToView(True)
        self.trace.setDownsampling(auto=True, mode="peak")
        # the same axis width and a blank column under the colour bar keep the two plots' x axes aligned
        for plot in (self.plot, self.trace):
            plot.getAxis("left").setWidth(46)
        spacer = self.glw.addLabel("", row=1, col=1)
        spacer.setMaximumWidth(1)
        self.track_curve = pg.PlotDataItem(stepMode=None)
        self.unit_curve = pg.PlotDataItem()
        self.trace.addItem(self.track_curve)
        self.trace.addItem(self.unit_curve)
        self.span_trace = pg.LinearRegionItem(values=(0, 0), orientation="vertical", movable=False)
        self.span_trace.hide()
        self.trace.addItem(self.span_trace)
        grid = self.glw.ci.layout
        grid.setRowStretchFactor(0, 4)
        grid.setRowStretchFactor(1, 1)
        grid.setColumnStretchFactor(0, 1)     # the plots take the width; the colour bar only what it needs
        grid.setColumnStretchFactor(1, 0)
        self.colorbar.setMaximumWidth(64)
        for plot in (self.plot, self.trace):
            _plain_axes(plot)
        self.placeholder = pg.TextItem(EMPTY_TEXT, anchor=(0.5, 0.5))
        self.placeholder.setZValue(20)
        self.plot.addItem(self.placeholder, ignoreBounds=True)

        scene = self.glw.scene()
        scene.sigMouseMoved.connect(self._on_mouse_moved)
        scene.sigMouseClicked.connect(self._on_mouse_clicked)
        self._apply_theme()
        self.clear()

    # ---- data -----------------------------------------------------------------------------------------
    def clear(self) -> None:
        """Nothing recorded: empty axes over a plain range (0..100 steps, 0..10 units), no unit band, and a line
        that says to press Record."""
        self._values = None
        self._labels = []
        self._track = None
        for plot in (self.plot, self.trace):
            plot.getAxis("bottom").setTicks(None)
        self.image.clear()
        self.unit_band.hide()
        self.set_span(0, 0)
        self.plot.setTitle("")
        vb = self.plot.getViewBox()
        vb.setLimits(xMin=0, xMax=EMPTY_STEPS, yMin=0, yMax=EMPTY_UNITS, minXRange=2, minYRange=1)
        self.trace.getViewBox().setLimits(xMin=0, xMax=EMPTY_STEPS)
        self.plot.setXRange(0, EMPTY_STEPS, padding=0)
        self.plot.setYRange(0, EMPTY_UNITS, padding=0)
        self.trace.setYRange(*self._levels, padding=0.05)
        self.placeholder.setPos(EMPTY_STEPS / 2, EMPTY_UNITS / 2)
        self.placeholder.show()
        self.info.setText(HOVER_HINT)
        self._update_trace()

    def set_data(self, values: np.ndarray, levels: tuple[float, float], labels: list[str], title: str = "",
                 keep_view: bool = False) -> None:
        """Show ``values [T, H]`` on fixed ``levels``; ``labels`` are the steps' characters/tokens."""
        self.placeholder.hide()
        self.unit_band.show()
        self._values = np.asarray(values)
        self._labels = labels
        self._levels = (float(levels[0]), float(levels[1]))
        T, H = self._values.shape
        # a short sequence (an output of a decoder, a caption) names each step under its column; a long text keeps
        # numbered positions (ticks at cell edges, as many as fit)
        ticks = [[(t + 0.5, tick_label(labels[t] if t < len(labels) else str(t))) for t in range(T)]] \
            if 0 < T <= LABELLED_STEPS else None
        for plot in (self.plot, self.trace):
            plot.getAxis("bottom").setTicks(ticks)
        self.image.setImage(self._values, autoLevels=False, levels=self._levels)
        self.image.setRect(QRectF(0, 0, T, H))
        self.colorbar.setLevels(self._levels)
        self.plot.setTitle(title, size="9pt")
        vb = self.plot.getViewBox()
        vb.setLimits(xMin=0, xMax=max(T, 1), yMin=0, yMax=max(H, 1), minXRange=2, minYRange=1)
        # the trace's limits before the x range: the trace follows the heatmap's x range through the link, and
        # limits left from a shorter text (or the empty view) would clamp it there
        self.trace.getViewBox().setLimits(xMin=0, xMax=max(T, 1))
        if not keep_view:
            self.plot.setXRange(0, max(T, 1), padding=0)
            self.plot.setYRange(0, max(H, 1), padding=0)
        self.trace.setYRange(*self._levels, padding=0.05)
        self.set_unit(min(self._unit, H - 1))

    def set_axis_name(self, text: str) -> None:
        """What the time axis counts: positions in the text, source positions, output steps."""
        self.trace.setLabel("bottom", text)

    def image_array(self) -> Optional[np.ndarray]:
        """The array the ImageItem shows: ``[T, H]`` (time along x, units along y)."""
        return self.image.image

    def levels(self) -> tuple[float, float]:
        return self._levels

    def set_unit(self, unit: int) -> None:
        self._unit = max(0, int(unit))
        self.unit_band.setRegion((self._unit, self._unit + 1))
        self._keep_unit_in_view()
        self._update_trace()

    def set_track(self, track: Optional[np.ndarray], name: str = "", unit: int | None = None) -> None:
        """Overlay a feature track (per step) on the unit's trace, scaled to the levels (and show ``unit``)."""
        self._track = None if track is None else np.asarray(track, dtype=np.float64)
        self._track_name = name
        if unit is not None:
            self._unit = max(0, int(unit))
            self.unit_band.setRegion((self._unit, self._unit + 1))
            self._keep_unit_in_view()
        self._update_trace()

    def _keep_unit_in_view(self) -> None:
        """Pan (not zoom) the units axis when the chosen unit is outside it (zoomed in, then a search result)."""
        lo, hi = self.plot.getViewBox().viewRange()[1]
        if not (lo <= self._unit and self._unit + 1 <= hi):
            height = hi - lo
            self.plot.setYRange(self._unit + 0.5 - height / 2, self._unit + 0.5 + height / 2, padding=0)

    def set_span(self, start: int, end: int) -> None:
        for region in (self.span_heat, self.span_trace):
            region.setRegion((start, end))
            region.setVisible(end > start)

    def show_position(self, step: int) -> None:
        """Pan (not zoom) so that ``step`` is in view."""
        lo, hi = self.plot.getViewBox().viewRange()[0]
        if not (lo <= step <= hi):
            width = hi - lo
            self.plot.setXRange(step - width / 3, step + 2 * width / 3, padding=0)

    def _update_trace(self) -> None:
        if self._values is None or not self._values.size:
            self.unit_curve.setData([], [])
            self.track_curve.setData([], [])
            self.trace.setTitle("")
            return
        T = self._values.shape[0]
        x = np.arange(T) + 0.5
        y = self._values[:, min(self._unit, self._values.shape[1] - 1)]
        self.unit_curve.setData(x, y)
        _, text, _ = _theme(self)
        title = f"<span style='color:{text.name()}'>unit {self._unit}</span>"
        if self._track is not None and self._track.shape[0] == T:
            t = self._track
            lo, hi = self._levels
            span = float(t.max() - t.min()) or 1.0
            scaled = lo + (t - t.min()) / span * (hi - lo)
            self.track_curve.setData(x, scaled, fillLevel=lo)
            title += f"  <span style='color:#e69f00'>▮ {self._track_name} (scaled to the levels)</span>"
        else:
            self.track_curve.setData([], [])
        self.trace.setTitle(title, size="8pt")

    # ---- theme ----------------------------------------------------------------------------------------
    def _apply_theme(self) -> None:
        base, text, highlight = _theme(self)
        dark = is_dark(self.palette())
        self.glw.setBackground(base)
        for plot in (self.plot, self.trace):
            _style_axes(plot, text)
        self.colorbar.setColorMap(colormap(dark))
        self.colorbar.axis.setPen(pg.mkPen(text))
        self.colorbar.axis.setTextPen(pg.mkPen(text))
        band = QColor(highlight)
        band.setAlpha(40)
        self.unit_band.setBrush(pg.mkBrush(band))
        edge = QColor(text if dark else highlight)
        for line in self.unit_band.lines:
            line.setPen(pg.mkPen(edge, width=1.5))
        span = QColor("#e8a400")
        span.setAlpha(50)
        for region in (self.span_heat, self.span_trace):
            region.setBrush(pg.mkBrush(span))
            for line in region.lines:
                line.setPen(pg.mkPen(QColor("#e8a400"), width=1))
        self.unit_curve.setPen(pg.mkPen(text, width=1.2))
        muted = QColor(text)
        muted.setAlphaF(0.6)
        self.placeholder.setColor(muted)
        fill = QColor("#e69f00")
        fill.setAlpha(70)
        self.track_curve.setPen(pg.mkPen(QColor("#e69f00"), width=1))
        self.track_curve.setBrush(pg.mkBrush(fill))
        self._update_trace()

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self._apply_theme()

    # ---- mouse ----------------------------------------------------------------------------------------
    def _cell_at(self, scene_pos) -> tuple[int, int]:
        if self._values is None or not self.plot.sceneBoundingRect().contains(scene_pos):
            return -1, -1
        p = self.plot.getViewBox().mapSceneToView(scene_pos)
        T, H = self._values.shape
        t, u = int(np.floor(p.x())), int(np.floor(p.y()))
        if 0 <= t < T and 0 <= u < H:
            return t, u
        return -1, -1

    def describe(self, step: int, unit: int) -> str:
        label = self._labels[step] if step < len(self._labels) else ""
        value = float(self._values[step, unit])
        return f"unit {unit}   position {step:,}   {shown_char(label)!s}   value {value:+.3f}"

    def _on_mouse_moved(self, scene_pos) -> None:
        t, u = self._cell_at(scene_pos)
        self.hovered.emit(t, u)
        self.info.setText(self.describe(t, u) if t >= 0 else HOVER_HINT)

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        t, u = self._cell_at(event.scenePos())
        if t < 0:
            return
        self.unitClicked.emit(u)
        self.positionClicked.emit(t)


class SaturationView(QWidget):
    """Gate saturation as in Karpathy, Johnson & Fei-Fei (2016), fig. 4: one scatter per gate, one point per
    unit at (fraction of steps left-saturated, fraction right-saturated), coloured by layer."""

    unitChosen = Signal(str, str, int)     # layer, gate, unit

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.note = QLabel(" ")
        self.note.setWordWrap(True)
        set_muted(self.note)
        layout.addWidget(self.note)
        self.glw = pg.GraphicsLayoutWidget()
        layout.addWidget(self.glw, 1)
        self.plots: dict[str, pg.PlotItem] = {}
        self.scatters: dict[tuple[str, str], pg.ScatterPlotItem] = {}
        self._data: dict[str, dict[str, Any]] = {}
        self._apply_theme()

    def clear(self) -> None:
        """Nothing recorded: no plots, and a line that says where they come from."""
        self._data = {}
        self.glw.clear()
        self.plots.clear()
        self.scatters.clear()
        self.note.setText("Record a text (Record, top left) to see how often each gate is almost shut or almost "
                          "open.")

    def set_data(self, saturation: dict[str, dict[str, Any]], layers: list[str]) -> None:
        self._data = saturation
        self.glw.clear()
        self.plots.clear()
        self.scatters.clear()
        gates: list[str] = []
        for layer in layers:
            for g in saturation.get(layer, {}):
                if g not in gates:
                    gates.append(g)
        if not gates:
            self.note.setText("This model's cells report no gates (a vanilla RNN has none): nothing to saturate.")
            return
        base, text, _ = _theme(self)
        tanh = [g for g in gates if any(saturation.get(la, {}).get(g, {}).get("range") == "tanh" for la in layers)]
        self.note.setText(
            "Each point is a unit: how often its gate is almost shut (left-saturated, x) and almost open "
            "(right-saturated, y) over the recorded text. Sigmoid gates: < 0.1 and > 0.9."
            + (f" Tanh gates ({', '.join(tanh)}): < −0.9 and > 0.9." if tanh else "")
            + " Click a point to show that unit.")
        # near-square panels, as in the paper: 2 x 2 for an LSTM's four gates, a row of three for a GRU's
        cols = 2 if len(gates) in (2, 4) else min(3, len(gates))
        for k, g in enumerate(gates):
            plot = self.glw.addPlot(row=k // cols, col=k % cols)
            rng = next((saturation[la][g]["range"] for la in layers if g in saturation.get(la, {})), "sigmoid")
            plot.setTitle(GATE_TITLES.get(g, f"gate {g}") + (" (tanh)" if rng == "tanh" else ""), size="9pt",
                          color=text)
            plot.setLabel("bottom", "fraction left-saturated")
            plot.setLabel("left", "fraction right-saturated")
            plot.setXRange(0, 1, padding=0.04)
            plot.setYRange(0, 1, padding=0.04)
            plot.getViewBox().setLimits(xMin=-0.05, xMax=1.05, yMin=-0.05, yMax=1.05)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.showGrid(x=True, y=True, alpha=0.15)
            _style_axes(plot, text)
            _plain_axes(plot)
            diag = pg.PlotDataItem([0, 1], [1, 0], pen=pg.mkPen(QColor(text), width=1, style=Qt.PenStyle.DotLine))
            plot.addItem(diag)
            if k == 0 and len(layers) > 1:
                legend = plot.addLegend(offset=(-4, 4), labelTextSize="8pt")
                legend.setLabelTextColor(text)
            for li, layer in enumerate(layers):
                entry = saturation.get(layer, {}).get(g)
                if not entry:
                    continue
                color = QColor(LAYER_COLORS[li % len(LAYER_COLORS)])
                fill = QColor(color)
                fill.setAlpha(170)
                spots = [{"pos": (x, y), "data": (layer, g, u)} for u, (x, y) in
                         enumerate(zip(entry["left"], entry["right"]))]
                scatter = pg.ScatterPlotItem(size=6, pen=pg.mkPen(color), brush=pg.mkBrush(fill), hoverable=True,
                                             hoverSize=10, name=layer,
                                             tip=lambda x, y, data: f"{data[0]} unit {data[2]}\nleft {x:.2f}  "
                                                                    f"right {y:.2f}")
                scatter.addPoints(spots)
                scatter.sigClicked.connect(self._on_clicked)
                plot.addItem(scatter)
                self.scatters[(layer, g)] = scatter
            self.plots[g] = plot

    def _on_clicked(self, _item, points, _event=None) -> None:
        if len(points):
            layer, gate, unit = points[0].data()
            self.unitChosen.emit(layer, gate, int(unit))

    def _apply_theme(self) -> None:
        base, _, _ = _theme(self)
        self.glw.setBackground(base)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self._apply_theme()
            if self._data:
                self.set_data(self._data, list(self._data))
