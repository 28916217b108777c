"""Plugins ▸ Install Plugin… / Uninstall Plugin… (workbench.gui.plugin_install): pip runs in a worker with its
output shown as it comes, the new plugin is loaded into the window (palette, inspector) or a restart is asked
for, and pip's own message is shown when it fails.  Installs go to a temporary ``--target`` folder, offline, that
is put on ``sys.path`` as an installed distribution would be."""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from workbench.gui.plugin_install import (INSTALL, UNINSTALL, PipDialog, refresh_window,  # noqa: E402
                                          third_party_distributions)
from workbench.plugin_system import discover  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "thirdparty_plugin"
OFFLINE = ["--no-deps", "--no-build-isolation", "--no-index"]
MGU = "seqwb-fixture-cells.mgu"


@pytest.fixture
def site(tmp_path, monkeypatch):
    """An empty folder on sys.path that installs go to; the fixture's modules are forgotten afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [m for m in sys.modules if m.startswith("seqwb_fixture_cells")]:
        del sys.modules[name]


@pytest.fixture
def source(tmp_path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(FIXTURE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    return src


def wait_for(qtbot, dialog: PipDialog, timeout_ms: int = 240_000) -> None:
    qtbot.waitUntil(lambda: not dialog.running(), timeout=timeout_ms)


def test_the_source_is_checked_before_pip_runs(qtbot, tmp_path, source):
    dialog = PipDialog(discover(), INSTALL)
    qtbot.addWidget(dialog)
    assert not dialog.run_button.isEnabled() and dialog.check_label.text() == "Nothing to install yet."
    dialog.set_source(str(tmp_path / "missing-1.0-py3-none-any.whl"))
    assert not dialog.run_button.isEnabled() and dialog.check_label.text().startswith("no such wheel:")
    dialog.set_source("two words")
    assert not dialog.run_button.isEnabled() and "neither a wheel, a folder nor a package name" in \
        dialog.check_label.text()
    assert not dialog.start()          # nothing runs for a source that cannot be installed
    dialog.set_source(str(source))
    assert dialog.run_button.isEnabled()
    assert dialog.check_label.text().startswith("A folder: pip builds it, then installs it.  Runs: pip install "
                                                "--upgrade ")
    dialog.set_source("seqwb-indrnn>=0.2")
    assert dialog.check_label.text() == ("A package name: pip downloads it from the package index.  Runs: pip "
                                         "install --upgrade seqwb-indrnn>=0.2")


def test_installing_a_folder_loads_its_cell_into_the_window(make_window, qtbot, site, source):
    reg = discover()
    win = make_window(reg)
    assert not reg.has("cell", MGU)
    dialog = PipDialog(reg, INSTALL, win, pip_options={"target": str(site), "extra": OFFLINE})
    dialog.pluginsChanged.connect(lambda: refresh_window(win))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.set_source(str(source))
    assert dialog.start()
    assert dialog.progress.isVisible() and not dialog.close_button.isEnabled()
    wait_for(qtbot, dialog)
    log = dialog.log.toPlainText()
    assert log.startswith(f"$ pip install {source}") and "Successfully installed seqwb-fixture-cells-" in log
    assert dialog.result.ok and dialog.result.changed == ["seqwb-fixture-cells"]
    assert dialog.result_label.text() == f"Installed seqwb-fixture-cells; loaded now: cell {MGU}."
    assert not dialog.progress.isVisible() and dialog.close_button.isEnabled()

    # the window's registry took the new plugin, in place: the palette offers the cell, the inspector names
    # its provider
    assert win.registry is reg and reg.has("cell", MGU)
    win.palette_widget.search.setText("mgu")
    assert [(e.type_id, e.params) for e in win.palette_widget.visible_entries()] == [("rnn", {"cell": MGU})]
    win.view.select_node("rnn", center=False)
    win.inspector.flush()
    cells = win.inspector.form("node").editor("cell")
    cells.setCurrentIndex(cells.findData(MGU))
    win.inspector.flush()
    notes = [label.text() for label in win.inspector.findChildren(type(win.inspector.title))]
    version = tomllib.loads((FIXTURE / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert f"Cell {MGU} from seqwb-fixture-cells {version} (entry point fixture-cells)" in notes, notes


def test_reinstalling_a_loaded_plugin_asks_for_a_restart(qtbot, site, source):
    from workbench.plugin_system import installer
    assert installer.install(str(source), target=str(site), extra=OFFLINE).ok
    reg = discover()
    assert reg.has("cell", MGU)          # its module is imported now
    dialog = PipDialog(reg, INSTALL, pip_options={"target": str(site), "extra": [*OFFLINE, "--force-reinstall"]})
    qtbot.addWidget(dialog)
    dialog.set_source(str(source))
    dialog.start()
    wait_for(qtbot, dialog)
    assert dialog.result.restart_needed and dialog.loaded == []
    assert dialog.result_label.text() == ("installed seqwb-fixture-cells; restart Sequence Workbench to use the "
                                          "change (its plugin code is loaded)")


def test_a_pip_failure_shows_pips_message(qtbot, tmp_path):
    dialog = PipDialog(discover(), INSTALL, pip_options={"target": str(tmp_path / "site"), "extra": ["--no-index"]})
    qtbot.addWidget(dialog)
    dialog.set_source("seqwb-no-such-plugin-anywhere")
    dialog.start()
    wait_for(qtbot, dialog)
    assert not dialog.result.ok
    text = dialog.result_label.text()
    assert text.startswith("<b>pip failed:</b> ERROR: Could not find a version that satisfies the requirement "
                           "seqwb-no-such-plugin-anywhere")
    assert "ERROR: Could not find a version" in dialog.log.toPlainText()
    assert dialog.run_button.isEnabled()        # the user can correct the name and try again


def test_stopping_pip(qtbot, site, source):
    dialog = PipDialog(discover(), INSTALL, pip_options={"target": str(site), "extra": OFFLINE})
    qtbot.addWidget(dialog)
    dialog.set_source(str(source))
    dialog.start()
    dialog.cancel()
    wait_for(qtbot, dialog)
    assert dialog.result_label.text() == ("<b>Stopped:</b> pip was stopped before it finished (what it had "
                                          "installed by then stays installed).")
    assert not (site / "seqwb_fixture_cells").exists()


def test_uninstall_lists_third_party_distributions_and_says_what_pip_did(qtbot):
    from workbench.schema.registry import PluginFailure
    reg = discover()
    reg.failures.append(PluginFailure("seqwb-no-such-plugin-anywhere", "x", "ImportError: gone"))
    assert third_party_distributions(reg) == ["seqwb-no-such-plugin-anywhere"]    # never sequence-workbench
    dialog = PipDialog(reg, UNINSTALL, distribution="seqwb-no-such-plugin-anywhere")
    qtbot.addWidget(dialog)
    assert dialog.source() == "seqwb-no-such-plugin-anywhere"
    assert dialog.check_label.text() == "pip uninstall --yes seqwb-no-such-plugin-anywhere"
    dialog.start()
    wait_for(qtbot, dialog)
    assert dialog.result.ok and dialog.result_label.text() == "seqwb-no-such-plugin-anywhere is not installed"


def test_the_plugins_menu_has_install_and_uninstall(make_window, qtbot):
    win = make_window(discover())
    texts = [a.text() for a in win.plugins_menu.actions()]
    assert texts == ["&Plugin Manager…", "&Install Plugin…", "&Uninstall Plugin…"]
    win.views["pluginInstall"].actions["install"].trigger()
    dialogs = [d for d in win.findChildren(PipDialog) if d.isVisible()]
    assert len(dialogs) == 1 and dialogs[0].mode == INSTALL
    dialogs[0].close()


def test_the_window_never_shows_an_install_command_taken_from_the_file(make_window, qtbot, tmp_path, monkeypatch):
    """A shared project whose manifest names its missing plugin's provider as pip options and a URL: the window's
    message says that no install command is suggested, and shows none of it (issue 20)."""
    from PySide6.QtWidgets import QMessageBox

    from workbench.core.projectfile import project_plugins_used, save_project
    from workbench.gui.file_controller import default_project
    reg = discover()
    project = default_project(reg)
    path = tmp_path / "shared.seqwb"
    hostile = {"kind": "cell", "id": "lstm-turbo.lstm", "version": "1.0",
               "distribution": "--index-url https://pypi.evil.example/simple lstm-turbo"}
    save_project(project, path, plugins_used=[*project_plugins_used(project, reg), hostile])
    before = path.read_bytes()
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda _parent, title, text: shown.append((title, text))))
    win = make_window(reg)
    assert not win.files.open_path(str(path))
    assert len(shown) == 1 and shown[0][0] == "A plugin is missing"
    text = shown[0][1]
    assert "cell 'lstm-turbo.lstm', which is not installed (the file names its provider in a form that is not a " \
           "distribution name, so no install command is suggested" in text
    for leak in ("evil", "index-url", "pip install"):
        assert leak not in text
    assert path.read_bytes() == before and win.isVisible()
