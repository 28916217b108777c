"""Starting the desktop application: ``run_app(path)`` (used by ``seqwb gui [FILE]``).

Startup order matters for how fast the window appears: Qt, then the plugin registry (plain data, no torch), then
the window, shown before anything imports torch.  With ``SEQWB_STARTUP_PROBE=1`` in the environment the app
prints one JSON line with timestamps when the window has painted for the first time, then quits; that is what
``benchmarks/startup.py`` measures.
"""

from __future__ import annotations

import json
import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from workbench import __version__
from workbench.gui.app_settings import APPLICATION, ORGANIZATION, app_settings
from workbench.gui.file_controller import default_project
from workbench.gui.mainwindow import MainWindow

__all__ = ["MainWindow", "run_app", "default_project", "app_settings"]

PROBE_ENV = "SEQWB_STARTUP_PROBE"


class _FirstPaintProbe(QObject):
    """Prints the time of the window's first paint (after the frame is flushed) and quits the app."""

    def __init__(self, marks: dict[str, float], window: MainWindow):
        super().__init__(window)
        self.window = window
        self.marks = marks
        self.done = False

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if not self.done and event.type() == QEvent.Type.Paint:
            self.done = True
            # singleShot(0): the paint pass finishes and the backing store is flushed before we report
            QTimer.singleShot(0, self._report)
        return False

    def _report(self) -> None:
        self.marks["painted"] = time.time()
        print(json.dumps({"marks": self.marks, "torch_imported": "torch" in sys.modules,
                          "title": self.window.windowTitle(),
                          "window_icon": not self.window.windowIcon().isNull()}), flush=True)
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

    project, error = None, None
    if path:
        # Read the file before the window exists, so a good file opens straight away and a bad one leaves the
        # window on the default project with the reason shown.
        from workbench.schema.errors import WorkbenchError
        from workbench.core.projectfile import load_project
        try:
            project = load_project(path, registry=registry)
        except (WorkbenchError, OSError, ValueError) as exc:
            error = str(exc)
    probing = bool(os.environ.get(PROBE_ENV))
    # (the probe quits at the first paint: a device probe importing torch would only slow the exit down)
    win = MainWindow(registry, project, path if project is not None else None, detect_device=not probing)
    if project is not None:
        win.files.add_recent(path)
    marks["window_built"] = time.time()

    probe = None
    if probing:
        probe = _FirstPaintProbe(marks, win)
        win.installEventFilter(probe)
    win.show()
    if not probing:     # copies of unsaved work that a crashed window left behind: Restore / Discard / Later
        from workbench.gui.recovery import offer_recovery
        QTimer.singleShot(0, lambda: offer_recovery(win.files))
    if error:
        QTimer.singleShot(0, lambda: QMessageBox.warning(win, "Cannot open project", error))
    exit_code = app.exec()
    del probe  # kept alive until the loop ends
    return exit_code

