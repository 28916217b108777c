"""Exports of the hidden-units panel: a view as PNG or SVG, the recording as ``.npz`` (what ``seqwb record --npz``
writes) and one layer's quantity as CSV; files are written in the panel's worker."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice, QPoint
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from workbench.core import recording


class RecordingExport:
    """The Export menu of :class:`~workbench.gui.inspect_units.HiddenUnitsPanel` (a part of the panel's class:
    ``self`` is the panel)."""

    def _default_name(self, what: str, ext: str) -> str:
        stem = Path(self.doc.path).stem if self.doc.path else "recording"
        return str(self.base_dir() / f"{stem}-{what}.{ext}")

    def _export_view_dialog(self, widget: QWidget, what: str, ext: str) -> None:
        if self.recording is None:
            self._say("Nothing to export: record a text first.", error=True)
            return
        filt = "PNG images (*.png)" if ext == "png" else "SVG drawings (*.svg)"
        path, _ = QFileDialog.getSaveFileName(self, f"Export the {what} view", self._default_name(what, ext), filt)
        if path:
            self.export_view(widget, path)

    def export_view(self, widget: QWidget, path: str) -> None:
        """PNG (what is on screen, at screen resolution) or SVG (vector where the view draws vectors), written all
        or nothing: drawn into memory first, then written atomically (a failed export never leaves half a file,
        nor replaces a good one)."""
        from workbench.core.history_export import write_bytes
        try:
            if path.lower().endswith(".svg"):
                from PySide6.QtSvg import QSvgGenerator
                buffer = QBuffer()
                buffer.open(QIODevice.OpenModeFlag.WriteOnly)
                gen = QSvgGenerator()
                gen.setOutputDevice(buffer)
                gen.setSize(widget.size())
                gen.setViewBox(widget.rect())
                gen.setTitle(f"Sequence Workbench: {self.layer} {self.quantity}")
                painter = QPainter(gen)
                try:
                    widget.render(painter, QPoint(0, 0))
                finally:
                    painter.end()
                data = bytes(buffer.data().data())
            else:
                buffer = QBuffer()
                buffer.open(QIODevice.OpenModeFlag.WriteOnly)
                if not widget.grab().save(buffer, "PNG"):
                    raise OSError(f"could not draw the view as PNG for {path}")
                data = bytes(buffer.data().data())
            write_bytes(path, data)
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}: {exc.strerror or exc}. Nothing was "
                                                       f"written (a file already there is unchanged).")
            return
        self._say(f"Exported {path}")

    def _export_file_dialog(self, kind: str) -> None:
        if self.recording is None:
            self._say("Nothing to export: record a text first.", error=True)
            return
        if kind == "npz":
            path, _ = QFileDialog.getSaveFileName(self, "Export the recording",
                                                  self._default_name("recording", "npz"), "NumPy archives (*.npz)")
            if path:
                self.export_npz(path)
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
