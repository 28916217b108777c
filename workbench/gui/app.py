"""Starting the desktop application: ``run_app(path)`` (used by ``seqwb gui [FILE]``).

Startup order matters for how fast the window appears: Qt, then the plugin registry (plain data, no torch), then
the window, shown before anything imports torch.  With ``SEQWB_STARTUP_PROBE=1`` in the environment the app
prints one JSON line with timestamps when the window has painted for the first time, then quits; that is what
``benchmarks/startup.py`` measures; with a file, it waits until the file is in the window and prints that time
too (``benchmarks/open_file.py``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

from workbench import __version__
from workbench.gui.app_settings import APPLICATION, ORGANIZATION, app_settings
from workbench.gui.file_controller import default_project
from workbench.gui.mainwindow import MainWindow

__all__ = ["MainWindow", "run_app", "default_project", "app_settings"]

PROBE_ENV = "SEQWB_STARTUP_PROBE"


class _AfterFirstPaint(QObject):
    """Runs ``then`` once, after the window's first paint has been flushed, so that work which imports torch (a
    file's weights) never delays what the user first sees.  A window that is never painted (minimised at start) runs
    it after ``fallback_ms`` anyway."""

    def __init__(self, window: QObject, then: Callable[[], None], fallback_ms: int = 5000):
        super().__init__(window)
        self.then: Callable[[], None] | None = then
        window.installEventFilter(self)
        QTimer.singleShot(fallback_ms, self._run)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if self.then is not None and event.type() == QEvent.Type.Paint:
            QTimer.singleShot(0, self._run)
        return False

    def _run(self) -> None:
        then, self.then = self.then, None
        if then is not None:
            self.parent().removeEventFilter(self)
            then()


class _FirstPaintProbe:
    """Prints the time of the window's first paint (after the frame is flushed) and quits the app.  Opening a file
    (``wait_for_file``), it also notes what the first paint showed and waits until the file is in the window
    (``loaded``).  :func:`run_app` calls :meth:`painted` and then :meth:`settle` after the first paint."""

    def __init__(self, marks: dict[str, float], window: MainWindow, wait_for_file: bool = False):
        self.window = window
        self.marks = marks
        self.wait_for_file = wait_for_file
        self.first: dict[str, object] = {}

    def painted(self) -> None:
        """What the first paint showed (before anything reads the file)."""
        self.marks["painted"] = time.time()
        self.first = {"torch_imported": "torch" in sys.modules, "title": self.window.windowTitle(),
                      "window_icon": not self.window.windowIcon().isNull()}

    def settle(self) -> None:
        """Report now, or once the file being read is in the window."""
        if self.wait_for_file and self.window.files.is_loading():
            self.window.files.opened.connect(self._loaded)
        else:
            self._report()

    def _loaded(self, ok: bool) -> None:
        self.marks["loaded"] = time.time()
        self.first["opened"] = ok
        self.first["title_loaded"] = self.window.windowTitle()
        self._report()

    def _report(self) -> None:
        print(json.dumps({"marks": self.marks, **self.first}), flush=True)
        QApplication.instance().quit()


def run_app(path: str | None = None) -> int:
    marks: dict[str, float] = {"app_module": time.time()}
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APPLICATION)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationVersion(__version__)
    from workbench.gui.app_icon import application_icon
    app.setWindowIcon(application_icon())
    app.setDesktopFileName("seqwb")  # matches resources/seqwb.desktop (Wayland uses it to find the icon)
    marks["qapplication"] = time.time()

    from workbench.plugin_system import default_registry
    registry = default_registry()
    marks["registry"] = time.time()

    probing = bool(os.environ.get(PROBE_ENV))
    project = None
    if path:
        # The window paints first, on an empty project named after the file, and reads the file afterwards in a
        # worker thread with its progress shown (reading the weights needs PyTorch: seconds before the first paint
        # otherwise).  A file that cannot be read leaves the window on the default project with the reason shown.
        from workbench.core.task_choice import empty_project
        project = empty_project(Path(path).stem)
    # (the probe quits at the first paint: a device probe importing torch would only slow the exit down)
    win = MainWindow(registry, project, None, detect_device=not probing)
    marks["window_built"] = time.time()

    probe = _FirstPaintProbe(marks, win, wait_for_file=bool(path)) if probing else None
    if path:
        win.files.announce_open(str(path))     # the first paint says what is being opened
    win.show()

    def recover() -> None:
        if not probing:     # copies of unsaved work that a crashed window left behind: Restore / Discard / Later
            from workbench.gui.recovery import offer_recovery
            offer_recovery(win.files)

    def after_first_paint() -> None:
        if probe is not None:
            probe.painted()
        if path:    # the file's reading (which imports torch) starts once the window is on the screen
            win.files.open_in_background(str(path), then=recover)
        if probe is not None:
            probe.settle()

    _AfterFirstPaint(win, after_first_paint)
    if not path:
        QTimer.singleShot(0, recover)
    return app.exec()

