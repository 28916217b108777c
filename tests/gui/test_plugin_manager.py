"""The plugin manager lists every plugin with its contributions and status, shows failures with their
traceback, and copies a bug report to the clipboard."""

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from workbench.gui.plugin_manager import PluginManagerDialog, bug_report, plugin_rows  # noqa: E402
from workbench import hookspecs  # noqa: E402
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


# ---- disabling, API versions, notes ------------------------------------------------------------------------------

class ToyCells:
    """A third-party plugin object that declares the API range it supports."""

    SEQWB_API = ">=1.0,<2"

    @hookimpl
    def seqwb_cells(self):
        from workbench.plugin_system import CellSpec
        from workbench_plugins.cells import RNNParams
        return [CellSpec(id="toy-rnn", title="Toy RNN", version="1.0", params=RNNParams,
                         factory="workbench_plugins.cell_rnn:RNNCell")]


class FromTheFuture:
    SEQWB_API = ">=2.0"

    @hookimpl
    def seqwb_cells(self):
        raise AssertionError("an incompatible plugin's hooks must never be called")


class Undeclared:
    @hookimpl
    def seqwb_tasks(self):
        return []


def test_a_plugin_is_disabled_from_the_dialog_at_the_next_start(qtbot, monkeypatch, tmp_path):
    from PySide6.QtCore import Qt
    from workbench.plugin_system import user_settings
    monkeypatch.setenv("SEQWB_CONFIG_DIR", str(tmp_path / "config"))
    extras = builtin_extras() + [("toy-plugin", ToyCells())]
    reg = discover(entry_points=False, extra=extras)
    assert reg.has("cell", "toy-rnn")
    dialog = PluginManagerDialog(reg)
    qtbot.addWidget(dialog)
    assert "next time Sequence Workbench starts" in dialog.restart_label.text()
    toy = row_of(dialog, "toy-plugin")
    builtin = row_of(dialog, "builtin-cells")
    assert toy.checkState(0) == Qt.CheckState.Checked
    assert not builtin.flags() & Qt.ItemFlag.ItemIsUserCheckable      # built-ins cannot be turned off

    toy.setCheckState(0, Qt.CheckState.Unchecked)                       # what a click on the box does
    assert user_settings.read_disabled() == (["toy-plugin"], "")
    assert "toy-plugin will be disabled the next time" in dialog.restart_label.text()
    assert reg.has("cell", "toy-rnn")                                   # this session keeps what it loaded

    again = discover(entry_points=False, extra=extras)                  # the next start
    assert not again.has("cell", "toy-rnn")
    assert [(d.entry_point, d.reason.split(" (")[0]) for d in again.disabled] == \
        [("toy-plugin", "disabled in the plugin settings")]
    rows = {r["entry_point"]: r for r in plugin_rows(again)}
    assert rows["toy-plugin"]["status"] == "disabled" and not rows["toy-plugin"]["enabled"]
    dialog2 = PluginManagerDialog(again)
    qtbot.addWidget(dialog2)
    toy2 = row_of(dialog2, "toy-plugin")
    assert toy2.checkState(0) == Qt.CheckState.Unchecked and toy2.text(3) == "disabled"
    toy2.setCheckState(0, Qt.CheckState.Checked)
    assert user_settings.read_disabled() == ([], "")
    assert discover(entry_points=False, extra=extras).has("cell", "toy-rnn")


def test_incompatible_and_undeclared_plugins_are_shown(qtbot):
    reg = discover(entry_points=False, extra=builtin_extras() + [("future", FromTheFuture()),
                                                                 ("undeclared", Undeclared())])
    rows = {r["entry_point"]: r for r in plugin_rows(reg)}
    assert rows["future"]["status"] == "not loaded: incompatible" and not rows["future"]["ok"]
    assert "supports plugin API >=2.0" in rows["future"]["failures"][0].error
    assert rows["undeclared"]["status"] == "loaded" and rows["undeclared"]["ok"]
    assert "declares no SEQWB_API" in rows["undeclared"]["notes"][0]
    dialog = PluginManagerDialog(reg)
    qtbot.addWidget(dialog)
    assert dialog.tree.currentItem() is row_of(dialog, "future")        # the problem is what is shown first
    assert "not loaded" in dialog.details.toPlainText() and hookspecs.API_VERSION in dialog.details.toPlainText()
    dialog.tree.setCurrentItem(row_of(dialog, "undeclared"))
    assert "Note: declares no SEQWB_API" in dialog.details.toPlainText()
    assert "note: declares no SEQWB_API" in bug_report(reg)


WRONG_SHAPE_CELL = '''
import torch
from torch import nn
from workbench.core.cells import Cell


class TooWide(Cell):
    def __init__(self, input_size, hidden_size, params):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size, 2 * hidden_size)       # the author forgot to split the gates

    def step_projected(self, xp_t, state, gates=None):
        h = torch.tanh(self.lin(xp_t))
        return h, (h,)
'''


def test_check_cells_names_a_cell_with_wrong_shapes(qtbot, tmp_path, monkeypatch):
    import sys

    import torch

    from workbench.plugin_system import CellSpec, NoParams
    torch.set_num_threads(1)
    (tmp_path / "seqwb_gui_wide_cell.py").write_text(WRONG_SHAPE_CELL)
    monkeypatch.syspath_prepend(str(tmp_path))

    class Wide:
        SEQWB_API = ">=1.0,<2"

        @hookimpl
        def seqwb_cells(self):
            return [CellSpec(id="too-wide", title="Too wide", version="1", params=NoParams,
                             factory="seqwb_gui_wide_cell:TooWide")]

    reg = discover(entry_points=False, extra=builtin_extras() + [("wide-plugin", Wide())])
    dialog = PluginManagerDialog(reg)
    qtbot.addWidget(dialog)
    try:
        problems = dialog.check_cells()
    finally:
        sys.modules.pop("seqwb_gui_wide_cell", None)
    assert [p.entry_point for p in problems] == ["wide-plugin"]              # every built-in cell passes
    wide = row_of(dialog, "wide-plugin")
    assert wide.text(3) == "loaded, cell check failed"
    assert wide.child(0).text(0) == "error in cell check"
    assert "cell 'too-wide' from plugin wide-plugin" in wide.child(0).text(3)
    assert "step returned an output of shape (2, 12), expected [batch, hidden] = (2, 6)" in wide.child(0).text(3)
    assert "1 with problems" in dialog.details.toPlainText()
    assert row_of(dialog, "builtin-cells").text(3) == "loaded"


# ---- conflicts, contract checks, install and uninstall (issue 17) --------------------------------------------------

def test_an_id_two_plugins_register_is_listed_as_a_conflict(qtbot):
    def dup(description):
        from workbench.plugin_system import CellSpec
        from workbench_plugins.cells import RNNParams
        return [CellSpec(id="dup-rnn", title="Dup", version="1", params=RNNParams, description=description,
                         factory="workbench_plugins.cell_rnn:RNNCell")]

    class First:
        @hookimpl
        def seqwb_cells(self):
            return dup("first")

    class Second:
        @hookimpl
        def seqwb_cells(self):
            return dup("second")

    reg = discover(entry_points=False, extra=builtin_extras() + [("first", First()), ("second", Second())])
    rows = {r["entry_point"]: r for r in plugin_rows(reg)}
    assert rows["first"]["status"] == rows["second"]["status"] == "loaded, 1 conflict"
    dialog = PluginManagerDialog(reg)
    qtbot.addWidget(dialog)
    assert "1 id is registered by more than one distribution" in dialog.summary.text()
    conflicts = row_of(dialog, "Id conflicts")
    assert conflicts.text(3) == "1 not used" and conflicts.childCount() == 1
    leaf = conflicts.child(0)
    assert (leaf.text(0), leaf.text(3)) == ("cell dup-rnn", "neither is used")
    assert leaf.text(1) == "(registered in code) (first) and (registered in code) (second)"
    first = row_of(dialog, "first")
    assert first.child(0).text(0) == "conflict in seqwb_cells" and "so neither is used" in first.child(0).text(3)
    assert "Id conflicts (neither claimant is used):\n  cell 'dup-rnn': " in bug_report(reg)


def test_contract_checks_run_for_the_selected_distribution_off_the_gui_thread(qtbot, tmp_path, monkeypatch):
    import sys
    import threading

    import torch

    from workbench.plugin_system import CellSpec, NoParams
    torch.set_num_threads(1)
    (tmp_path / "seqwb_gui_wide_cell.py").write_text(WRONG_SHAPE_CELL)
    monkeypatch.syspath_prepend(str(tmp_path))
    threads = []

    class Cells:
        SEQWB_API = ">=1.0,<2"

        @hookimpl
        def seqwb_cells(self):
            from workbench_plugins.cells import RNNParams
            return [CellSpec(id="too-wide", title="Too wide", version="1", params=NoParams,
                             factory="seqwb_gui_wide_cell:TooWide"),
                    CellSpec(id="plain-rnn", title="Plain RNN", version="1", params=RNNParams,
                             factory="workbench_plugins.cell_rnn:RNNCell")]

    reg = discover(entry_points=False, extra=[("cells-plugin", Cells())])
    dialog = PluginManagerDialog(reg)
    qtbot.addWidget(dialog)
    item = row_of(dialog, "cells-plugin")
    dialog.tree.setCurrentItem(item)
    assert dialog.selected_distribution() == "(registered in code)" and dialog.contracts_button.isEnabled()
    from workbench.testing import contracts
    original = contracts.check_registry

    def spy(*args, **kwargs):
        threads.append(threading.current_thread() is threading.main_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(contracts, "check_registry", spy)
    try:
        dialog.contracts_button.click()
        assert dialog.contracts_button.text() == "Stop checks" and dialog.check_progress.isVisibleTo(dialog)
        qtbot.waitUntil(lambda: dialog._checking is None, timeout=120_000)
    finally:
        sys.modules.pop("seqwb_gui_wide_cell", None)
    assert threads == [False]                       # the suite ran in the worker thread
    assert [(r.id, r.status) for r in dialog.contract_results] == [("too-wide", "failed"), ("plain-rnn", "passed")]
    assert item.text(3) == "1 contract check(s) failed"
    child = item.child(0)
    assert child.text(0) == "failed cell.state-shapes"
    assert child.text(3).startswith("cell 'too-wide' from plugin cells-plugin")
    assert dialog.details.toPlainText().startswith("Contract checks of (registered in code): 1 passed, 1 failed.")
    assert dialog.contracts_button.text() == "Run contract checks" and not dialog.check_progress.isVisibleTo(dialog)


def test_install_and_uninstall_buttons_open_the_pip_dialog(qtbot, reg):
    from workbench.gui.plugin_install import INSTALL, UNINSTALL, PipDialog
    from workbench.schema.registry import PluginFailure
    reg.failures.append(PluginFailure("seqwb-gone", "gone", "ImportError: no module named gone"))
    try:
        dialog = PluginManagerDialog(reg)
        qtbot.addWidget(dialog)
        dialog.tree.setCurrentItem(row_of(dialog, "builtin-cells"))
        assert not dialog.uninstall_button.isEnabled()          # the built-ins cannot be uninstalled
        dialog.tree.setCurrentItem(row_of(dialog, "gone"))
        assert dialog.uninstall_button.isEnabled()
        pip = dialog.uninstall()
        assert isinstance(pip, PipDialog) and pip.mode == UNINSTALL and pip.source() == "seqwb-gone"
        pip.close()
        pip = dialog.install()
        assert pip.mode == INSTALL and pip.isVisible()
        pip.close()
    finally:
        reg.failures.pop()


def test_the_list_is_filled_again_when_plugins_change(qtbot):
    reg = discover(entry_points=False, extra=builtin_extras())
    dialog = PluginManagerDialog(reg)
    qtbot.addWidget(dialog)
    count = dialog.tree.topLevelItemCount()
    reg.update_from(discover(entry_points=False, extra=builtin_extras() + [("toy-plugin", ToyCells())]))
    dialog._plugins_changed()          # what the install dialog calls once the registry took the new plugins
    assert dialog.tree.topLevelItemCount() == count + 1 and row_of(dialog, "toy-plugin").text(3) == "loaded"
