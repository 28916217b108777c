"""The window opens on the embedded default project and opens project files (pytest-qt, offscreen)."""

import pytest

pytest.importorskip("pytestqt")

from workbench.core.io import save_project  # noqa: E402
from workbench.gui.app import MainWindow  # noqa: E402
from workbench.plugin_system import discover  # noqa: E402


@pytest.fixture(scope="module")
def reg():
    return discover()


def test_starts_on_the_default_char_lm_project(qtbot, reg):
    win = MainWindow(reg)
    qtbot.addWidget(win)
    win.show()
    assert win.project.task.id == "char-lm"
    assert "default project" in win.windowTitle()
    ids = [win.graph_tree.topLevelItem(i).text(0) for i in range(win.graph_tree.topLevelItemCount())]
    assert ids == ["input", "embed", "rnn", "head", "output"]
    assert win.statusBar().currentMessage().startswith("Device: ")


def test_opens_a_project_file_and_refuses_a_broken_one(qtbot, reg, tmp_path, monkeypatch):
    from tests.helpers import small_project
    project = small_project(reg)
    project.name = "Mine"
    path = tmp_path / "mine.seqwb"
    save_project(project, path)
    win = MainWindow(reg)
    qtbot.addWidget(win)
    assert win.open_path(str(path))
    assert win.project.name == "Mine" and "mine.seqwb" in win.windowTitle()

    shown = []
    from PySide6.QtWidgets import QMessageBox
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    junk = tmp_path / "junk.seqwb"
    junk.write_bytes(b"not a project")
    assert not win.open_path(str(junk))
    assert shown and "junk.seqwb" in shown[0]
    assert win.project.name == "Mine"  # the open project is untouched
