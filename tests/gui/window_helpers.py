"""Fixtures for tests that open the main window: isolated QSettings and windows that close without asking.

Import the fixtures into a test module (``from tests.gui.window_helpers import isolated_settings, make_window``);
pytest picks imported fixtures up like local ones.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from workbench.gui.app import MainWindow


@pytest.fixture
def isolated_settings(tmp_path):
    """Point the user-scope INI settings at a temporary folder: tests never read or write the user's settings.

    The path stays pointed at a temporary folder afterwards too (never back at the user's), so a later test that
    forgets this fixture still writes nothing real.
    """
    folder = tmp_path / "settings"
    folder.mkdir()
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    return folder


@pytest.fixture
def make_window(qtbot, isolated_settings):
    """``make_window(registry, project=None, path=None)``: a shown window without the device probe."""

    def make(registry, project=None, path=None, *, show=True):
        win = MainWindow(registry, project, path, detect_device=False)
        # Teardown closes every window; a modified one would otherwise ask Save / Discard / Cancel and block.
        qtbot.addWidget(win, before_close_func=lambda w: setattr(w.files, "maybe_save", lambda: True))
        if show:
            win.show()
            qtbot.waitExposed(win)
            qtbot.wait(1)  # let the deferred view restore and inspector build run
            win.inspector.flush()
        return win

    return make
