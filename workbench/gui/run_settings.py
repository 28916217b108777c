"""The row at the top of the training dashboard: the project's device, CPU threads and mixed precision, the run's
progress bar, and the device and throughput text beside it.

The settings are the project's training settings, edited through the document (one undo step each, the same values
the inspector shows); they apply at Train, so the bar is disabled while a run is live.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QProgressBar, QSpinBox, QStyle, QStyleOptionProgressBar,
                               QWidget)

from workbench.core.threads import can_lower_priority, cpu_count
from workbench.gui.forms import ElidedLabel, guard_wheel


def format_duration(seconds: float) -> str:
    """``0:17``, ``12:05``, ``1:02:03``; a dash for a time not known (not finite, or negative)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# ---- the run settings bar -----------------------------------------------------------------------------------

class SpeedLabel(ElidedLabel):
    """The throughput, device and precision beside the progress bar ("16,420 tokens/s · CPU (1 thread) · fp32").

    Its size hint is that of the widest text it shows, not of the current one: the text changes every tick and must
    not move the progress bar (or re-lay out the row); in a narrow window it gives way and ends in "…"."""

    WIDEST = "999,999 sequences/s · CUDA: NVIDIA GeForce · bf16 autocast"

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.fontMetrics().horizontalAdvance(self.WIDEST) + 4, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.fontMetrics().horizontalAdvance("999,999 tok…"), super().minimumSizeHint().height())


class RunSettingsBar(QWidget):
    """Device and CPU threads: the project's training settings, edited through the document (one undo step each,
    the same values the inspector shows, where the precision is too).  Disabled while a run is live: they apply
    at Train."""

    def __init__(self, doc: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc = doc
        self.cores = cpu_count()        # core.threads: without importing torch, which core.device does
        self.devices: list[tuple[str, str]] = [("auto", "Auto"), ("cpu", "CPU")]
        self.has_cuda = False
        self._syncing = False
        self.device = QComboBox()
        self.device.setToolTip("The device to train on. Auto: CUDA, then Apple MPS, then the CPU.")
        self.threads = QSpinBox()
        for field in (self.device, self.threads):
            guard_wheel(field)      # the dashboard scrolls under the wheel; a click first to change these by it
        self.threads.setRange(0, max(1, self.cores))
        if can_lower_priority():    # as workbench.core.device.default_threads(behind_window=True), without torch
            self.threads.setSpecialValueText(f"auto ({self.cores})")
            self.threads.setToolTip(f"CPU threads for training. Auto trains on all {self.cores} cores, below the "
                                    f"window's priority so that it stays responsive, and gives up a core that "
                                    f"other programs keep busy.")
        else:
            self.threads.setSpecialValueText(f"auto ({max(1, self.cores - 1)})")
            self.threads.setToolTip(f"CPU threads for training. Auto leaves one of the {self.cores} cores to the "
                                    f"window so that it stays responsive, and gives up a core that other "
                                    f"programs keep busy.")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.device_label = QLabel("Device")
        self.threads_label = QLabel("Threads")
        self.threads_label.setToolTip(self.threads.toolTip())
        for w in (self.device_label, self.device, self.threads_label, self.threads):
            layout.addWidget(w)
        self.device.currentIndexChanged.connect(self._device_chosen)
        self.threads.editingFinished.connect(lambda: self._commit("threads", self.threads.value()))
        self.threads.valueChanged.connect(lambda v: self._commit("threads", v) if not self.threads.hasFocus() else None)
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
        finally:
            self._syncing = False
        self._enable_parts()

    def _enable_parts(self) -> None:
        device = self.device.currentData() or "auto"
        on_cpu = device == "cpu" or (device == "auto" and not self.has_cuda)
        self.threads.setEnabled(self.isEnabled() and on_cpu)
        self.threads_label.setEnabled(self.threads.isEnabled())


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
    """The run's progress bar, whose text stays on one line and in one colour.

    Qt's styles wrap a text that is wider than the bar onto a second line inside it, cut at the top and the
    bottom ("paused · step 111 / 200 · epoch 1 · 0:17 left" at the default window size).  Here the text the style
    draws (``text()``, virtual) ends in "…" when it does not fit, and the whole text is in the tooltip.

    The style also draws the part of the text over the filled chunk in another colour than the rest, so a text
    half-way along read as two texts ("step 111 / 2" white, "00 · epoch 1" black).  Here the bar is drawn without
    text, and the text over it in the window's text colour on a band of the window's colour.
    """

    TEXT_MARGIN = 8          # the style's padding around the text, both sides together

    def setFormat(self, text: str) -> None:  # noqa: N802 - keeps the tooltip in step with the text
        super().setFormat(text)
        self.setToolTip(text)

    def text(self) -> str:
        room = max(0, self.contentsRect().width() - self.TEXT_MARGIN)
        return self.fontMetrics().elidedText(super().text(), Qt.TextElideMode.ElideRight, room)

    def paintEvent(self, _event: Any) -> None:  # noqa: N802 - Qt override
        option = QStyleOptionProgressBar()
        self.initStyleOption(option)
        text = option.text if option.textVisible else ""
        option.textVisible = False
        option.text = ""
        painter = QPainter(self)
        self.style().drawControl(QStyle.ControlElement.CE_ProgressBar, option, painter, self)
        if text:
            metrics = self.fontMetrics()
            width = metrics.horizontalAdvance(text) + 12
            band = QRectF((self.width() - width) / 2, (self.height() - metrics.height()) / 2 - 1,
                          width, metrics.height() + 2)
            fill = QColor(self.palette().color(QPalette.ColorRole.Window))
            fill.setAlphaF(0.82)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRoundedRect(band, 4, 4)
            painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
            painter.drawText(band, int(Qt.AlignmentFlag.AlignCenter), text)
        painter.end()

