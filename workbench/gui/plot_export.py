"""Export a dashboard plot as PNG, SVG or CSV: a small button in each panel's title row opens the choice.

PNG and SVG render the whole panel (title, legend row and plot) with Qt's own painters; pyqtgraph's
``SVGExporter`` fails on this pyqtgraph/Qt pairing (``correctCoordinates`` cannot parse Qt 6's SVG paths), and
Qt's :class:`QSvgGenerator` writes true vector output of the same paint calls.  CSV holds the data of the
visible curves (the data they were given, not the downsampled points on screen), or the heatmap's matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPoint, QRect, QSize
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QStyle, QToolButton, QWidget

from workbench.core.history_export import matrix_csv, series_csv, write_bytes, write_text

FORMATS = {"png": "PNG image (*.png)", "svg": "SVG drawing (*.svg)", "csv": "CSV table (*.csv)"}
PNG_SCALE = 2.0   # PNGs at twice the screen size: sharp in documents and slides


def add_export_button(panel: Any) -> QToolButton:
    """The panel's export button (title row, right of the title) with Export PNG / SVG / CSV."""
    button = QToolButton(panel)
    button.setObjectName("plotExport")
    button.setAutoRaise(True)
    button.setIcon(panel.style().standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton))
    button.setToolTip("Export this plot: PNG image, SVG drawing, or the data of the visible curves as CSV")
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    menu = QMenu(button)
    for fmt, label in (("png", "Export PNG…"), ("svg", "Export SVG…"), ("csv", "Export CSV…")):
        action = menu.addAction(label)
        action.setObjectName(f"plotExport:{fmt}")
        action.triggered.connect(lambda _checked=False, f=fmt: export_dialog(panel, f))
    button.setMenu(menu)
    panel.header.addWidget(button)
    panel.export_button = button
    return button


def _panel_title(panel: Any) -> str:
    return panel.title.text() or "plot"


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in keep.split("-") if p) or "plot"


def export_dialog(panel: Any, fmt: str) -> str | None:
    """Ask where to save, then save; a failure is shown, not raised.  Returns the path written (or None)."""
    start = str(Path.home() / f"{_slug(_panel_title(panel))}.{fmt}")
    path, _ = QFileDialog.getSaveFileName(panel, f"Export “{_panel_title(panel)}” as {fmt.upper()}", start,
                                          FORMATS[fmt])
    if not path:
        return None
    if not path.lower().endswith(f".{fmt}"):
        path += f".{fmt}"
    try:
        export_panel(panel, path, fmt)
    except (OSError, ValueError) as exc:
        QMessageBox.warning(panel, "Cannot export plot", f"Could not write {path}:\n{exc}")
        return None
    return path


def export_panel(panel: Any, path: str | Path, fmt: str) -> None:
    """Write the panel to ``path`` as ``fmt`` (png / svg / csv), atomically."""
    if fmt == "png":
        write_bytes(path, panel_png(panel))
    elif fmt == "svg":
        write_bytes(path, panel_svg(panel))
    elif fmt == "csv":
        write_text(path, panel_csv(panel))
    else:
        raise ValueError(f"unknown plot export format {fmt!r}")


class _WithoutButton:
    """Paint the panel without its own export button (a figure does not need it)."""

    def __init__(self, panel: Any):
        self.button: QWidget | None = getattr(panel, "export_button", None)
        self.was_visible = False

    def __enter__(self):
        if self.button is not None:
            self.was_visible = self.button.isVisible()
            self.button.setVisible(False)
        return self

    def __exit__(self, *exc):
        if self.button is not None and self.was_visible:
            self.button.setVisible(True)
        return False


def panel_png(panel: Any, scale: float = PNG_SCALE) -> bytes:
    size = panel.size()
    image = QImage(int(size.width() * scale), int(size.height() * scale), QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(scale)
    image.fill(panel.palette().window().color())
    with _WithoutButton(panel):
        painter = QPainter(image)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            panel.render(painter, QPoint(0, 0))
        finally:
            painter.end()     # a device still being painted must not be destroyed (Qt aborts)
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buf, "PNG"):
        raise ValueError("Qt could not encode the PNG")
    buf.close()
    return bytes(data.data())


def panel_svg(panel: Any) -> bytes:
    from PySide6.QtSvg import QSvgGenerator
    size = panel.size()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    gen = QSvgGenerator()
    gen.setOutputDevice(buf)
    gen.setSize(QSize(size.width(), size.height()))
    gen.setViewBox(QRect(0, 0, size.width(), size.height()))
    gen.setTitle(_panel_title(panel))
    gen.setDescription("Sequence Workbench training dashboard")
    with _WithoutButton(panel):
        painter = QPainter(gen)
        try:
            panel.render(painter, QPoint(0, 0))
        finally:
            painter.end()
    buf.close()
    return bytes(data.data())


def visible_series(panel: Any) -> list[tuple[str, Any, Any]]:
    """``[(name, xs, ys)]`` of the curves shown (ticked in the legend), with the data they were given."""
    out = []
    for key, item in panel.curves.items():
        if not item.isVisible() or item.xData is None or not len(item.xData):
            continue
        out.append((panel.series_name(key), item.xData, item.yData))     # legend group and entry, or the key
    return out


def panel_csv(panel: Any) -> str:
    """The heatmap's matrix (a row per probe step), or the visible curves as ``series,x,value``."""
    image = getattr(panel, "image", None)
    if image is not None and image.image is not None and getattr(panel, "row_steps", None) is not None:
        return matrix_csv(image.image, panel.row_steps, "step", "t")
    x_name = panel.plot.getAxis("bottom").labelText or "x"
    return series_csv(visible_series(panel), x_name.split(" (")[0])
