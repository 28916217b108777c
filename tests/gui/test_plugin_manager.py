"""The plugin manager lists every plugin with its contributions and status, shows failures with their
traceback, and copies a bug report to the clipboard."""

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from workbench.gui.plugin_manager import PluginManagerDialog, bug_report, plugin_rows  # noqa: E402
from workbench.hookspecs import hookimpl  # noqa: E402
from workbench.plugin_system import discover  # noqa: E402


class BrokenCells:
    @hookimpl
    def seqwb_cells(self):
        raise RuntimeError("boom: the cell table is corrupt")


class WrongSignature:
    """Its hook takes an argument the hook specification does not have: pluggy refuses to register it."""

    @hookimpl
    def seqwb_cells(self, nonsense):
        return []


def builtin_extras():
    import workbench_plugins.architectures as arch
    import workbench_plugins.cells as cells
    import workbench_plugins.decoders as decoders
    import workbench_plugins.tasks as tasks
    import workbench_plugins.templates as templates
    return [("builtin-cells", cells), ("builtin-architectures", arch), ("builtin-tasks", tasks),
            ("builtin-decoders", decoders), ("builtin-templates", templates)]


@pytest.fixture(scope="module")
def reg():
    return discover(entry_points=False,
                    extra=builtin_extras() + [("broken", BrokenCells()), ("wrong", WrongSignature())])


def row_of(dialog, name):
    tree = dialog.tree
    return next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).text(0) == name)


def test_rows_give_status_and_contributions(reg):
    rows = {r["entry_point"]: r for r in plugin_rows(reg)}
    assert rows["builtin-cells"]["ok"] and "cell" in rows["builtin-cells"]["contributions"]
    assert rows["broken"]["status"] == "loaded, 1 error"
    assert any("boom" in f.error for f in rows["broken"]["failures"])
    assert rows["wrong"]["status"] == "failed to load" and not rows["wrong"]["contributions"]
    assert "nonsense" in rows["wrong"]["failures"][0].error


def test_dialog_shows_the_failed_plugin_with_its_traceback(qtbot, reg):
    dialog = PluginManagerDialog(reg)
    qtbot.addWidget(dialog)
    broken = row_of(dialog, "broken")
    assert "error" in broken.text(3)
    assert dialog.tree.currentItem() is broken            # the first plugin with a problem is selected
    text = dialog.details.toPlainText()
    assert "boom: the cell table is corrupt" in text and "Traceback" in text
    errors = [broken.child(i) for i in range(broken.childCount()) if broken.child(i).text(0).startswith("error")]
    assert any("boom" in e.text(3) for e in errors)
    cells = row_of(dialog, "builtin-cells")
    assert cells.text(3) == "loaded" and cells.text(1) == "(registered in code)"
    group = cells.child(0)
    assert group.text(0).startswith("cells (")
    lstm = next(group.child(i) for i in range(group.childCount()) if group.child(i).text(0).startswith("lstm —"))
    dialog.tree.setCurrentItem(lstm)
    assert "factory:" in dialog.details.toPlainText() and "Parameters:" in dialog.details.toPlainText()


def test_copy_details_puts_a_bug_report_on_the_clipboard(qtbot, reg):
    dialog = PluginManagerDialog(reg)
    qtbot.addWidget(dialog)
    QGuiApplication.clipboard().clear()
    dialog.copy_button.click()
    text = QGuiApplication.clipboard().text()
    assert text == bug_report(reg)
    for part in ("Sequence Workbench 0.1.0", "Python ", "Qt ", "Plugins:", "broken", "boom", "Traceback",
                 "builtin-cells"):
        assert part in text


def test_the_window_opens_the_plugin_manager(make_window, reg, qtbot):
    win = make_window(reg)
    seen = []

    def look():
        dialog = QApplication.activeModalWidget()
        seen.append(dialog)
        dialog.close()

    QTimer.singleShot(50, look)
    win.act_plugins.trigger()
    assert isinstance(seen[0], PluginManagerDialog) and seen[0].registry is reg
