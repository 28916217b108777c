"""The main window: default project, docks, menus, title and unsaved mark, Run tooltips, problems panel, status
bar, persisted layout, and that it paints before torch is imported (pytest-qt, offscreen)."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QKeySequence  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from workbench.core.graph import Link  # noqa: E402
from workbench.gui.app import MainWindow  # noqa: E402



def menu_texts(win):
    menus = {}
    for act in win.menuBar().actions():
        menu = act.menu()
        menus[act.text().replace("&", "")] = [a.text().replace("&", "") for a in menu.actions() if a.text()]
    return menus


def test_starts_on_the_default_char_lm_project_with_every_dock(make_window, reg):
    win = make_window(reg)
    assert win.project.task.id == "char-lm"
    assert list(win.doc.graph.nodes) == ["input", "embed", "rnn", "head", "output"]
    assert "Character LM" in win.windowTitle() and "default project" in win.windowTitle()
    assert not win.isWindowModified()
    for dock in (win.palette_dock, win.inspector_dock, win.problems_dock):
        assert dock.isVisible() and dock.widget() is not None
    assert set(win.view.graph_scene.nodes) == set(win.doc.graph.nodes)
    assert win.problems.list.count() == 1 and "No problems" in win.problems.list.item(0).text()
    assert win.inspector.node_id is None and "train" in win.inspector.forms  # nothing selected: the project


def test_menus_have_every_command_with_standard_shortcuts(make_window, reg):
    win = make_window(reg)
    menus = menu_texts(win)
    assert list(menus) == ["File", "Edit", "View", "Run", "Inspect", "Plugins", "Help"]
    for name in ("New…", "Open…", "Open Recent", "Save", "Save As…", "Close", "Quit"):
        assert name in menus["File"]
    assert [t for t in menus["Edit"] if t.split()[0] in ("Undo", "Redo")] == ["Undo", "Redo"]
    for name in ("Cut", "Copy", "Paste", "Delete", "Select All"):
        assert name in menus["Edit"]
    for name in ("Palette", "Inspector", "Problems", "Fit Model in View", "Auto-layout"):
        assert name in menus["View"]
    assert menus["Run"] == ["Train", "Train New Run", "Pause", "Resume", "Stop", "Evaluate…"]
    assert menus["Plugins"] == ["Plugin Manager…", "Install Plugin…", "Uninstall Plugin…"]
    assert "About Sequence Workbench" in menus["Help"] and "Documentation" in menus["Help"]
    SK = QKeySequence.StandardKey
    for act, key in ((win.files.act_open, SK.Open), (win.files.act_save, SK.Save), (win.act_undo, SK.Undo),
                     (win.act_redo, SK.Redo), (win.act_copy, SK.Copy), (win.act_paste, SK.Paste),
                     (win.act_select_all, SK.SelectAll), (win.act_quit, SK.Quit), (win.files.act_new, SK.New)):
        assert act.shortcut() == QKeySequence(key).toString() or act.shortcut() == QKeySequence(key)
    toolbar = {a.text() for a in win.toolbar.actions() if a.text()}
    assert toolbar >= {win.files.act_save.text(), win.runs.act_train.text()}


def test_title_marks_unsaved_changes_with_the_undo_stack(make_window, reg):
    win = make_window(reg)
    assert win.doc.set_node_param("rnn", "hidden_size", 64) is None
    assert win.isWindowModified() and "[*]" in win.windowTitle()
    win.act_undo.trigger()
    assert win.doc.graph.nodes["rnn"].params["hidden_size"] == 256
    assert not win.isWindowModified()
    win.act_redo.trigger()
    assert win.isWindowModified()
    win.doc.set_setting("name", "name", "Renamed")
    assert win.windowTitle().startswith("Renamed — ")


def test_train_is_disabled_by_a_problem_and_its_tooltip_gives_the_reason(make_window, reg):
    win = make_window(reg)
    assert win.runs.act_train.isEnabled() and not win.runs.act_pause.isEnabled() and not win.runs.act_stop.isEnabled()
    assert "start a new run" in win.runs.act_train.toolTip()
    win.doc.disconnect_link(Link("head", "y", "output", "logits"))
    tip = win.runs.act_train.toolTip()
    assert not win.runs.act_train.isEnabled()
    assert tip.startswith("Cannot train:") and "logits" in tip and "output" in tip
    assert "problem" in win.problems_label.text()
    win.doc.undo_stack.undo()
    assert win.runs.act_train.isEnabled() and "start a new run" in win.runs.act_train.toolTip()


def test_clicking_a_problem_selects_and_centres_its_node(make_window, reg, qtbot):
    win = make_window(reg)
    win.doc.move_nodes({"output": ((1100.0, 0.0), (3000.0, 1500.0))})   # far off-screen
    win.doc.disconnect_link(Link("head", "y", "output", "logits"))
    items = [win.problems.list.item(i) for i in range(win.problems.list.count())]
    target = next(it for it in items if it.data(Qt.ItemDataRole.UserRole) == "output")
    rect = win.problems.list.visualItemRect(target)
    qtbot.mouseClick(win.problems.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert win.view.selected_node_ids() == ["output"]
    centre = win.view.mapToScene(win.view.viewport().rect().center())
    node_centre = win.view.graph_scene.nodes["output"].sceneBoundingRect().center()
    assert abs(centre.x() - node_centre.x()) < 5 and abs(centre.y() - node_centre.y()) < 5
    qtbot.wait(1)
    assert win.inspector.node_id == "output"


def test_edit_menu_acts_on_the_canvas_selection(make_window, reg, qtbot):
    win = make_window(reg)
    assert not win.act_delete.isEnabled()      # nothing selected
    win.view.select_node("rnn")
    assert win.act_delete.isEnabled()
    win.view.setFocus()
    win.act_copy.trigger()
    win.act_paste.trigger()
    assert len(win.doc.graph.nodes) == 6 and win.doc.undo_stack.count() == 1
    win.act_delete.trigger()
    assert len(win.doc.graph.nodes) == 5
    win.act_select_all.trigger()
    assert set(win.view.selected_node_ids()) == set(win.doc.graph.nodes)
    win.act_undo.trigger()
    win.act_undo.trigger()
    assert list(win.doc.graph.nodes) == ["input", "embed", "rnn", "head", "output"]


def test_view_menu_hides_docks_and_layout_persists(make_window, reg, qtbot, isolated_settings):
    win = make_window(reg)
    win.inspector_dock.toggleViewAction().trigger()
    assert not win.inspector_dock.isVisible()
    win.resize(760, 540)                       # within the offscreen screen (800 x 600), which clamps geometry
    size = (win.width(), win.height())
    win.close()                                # saves geometry and dock layout
    assert list(isolated_settings.rglob("*.ini")), "settings went somewhere else"
    again = make_window(reg)
    assert not again.inspector_dock.isVisible() and again.palette_dock.isVisible()
    assert (again.width(), again.height()) == size


def test_status_bar_shows_messages_and_the_device_found_after_showing(qtbot, reg, isolated_settings):
    win = MainWindow(reg)             # with the device probe (imports torch in a background thread)
    qtbot.addWidget(win)
    assert win.device_text() == ""
    win.show()
    qtbot.waitUntil(lambda: win.device_text() != "", timeout=60000)
    assert win.device_label.text().startswith("Device: ")
    assert any(word in win.device_text() for word in ("CPU", "CUDA", "MPS"))
    win.view.message.emit("that link does not fit")
    assert win.statusBar().currentMessage() == "that link does not fit"
    about = win.about_text()
    import PySide6
    import torch
    for part in ("0.1.0", PySide6.__version__, torch.__version__, win.device_text(), "Documentation"):
        assert part in about


def run_probe(args, tmp_path, subprocess_env, repo_root):
    """Run the real app in a subprocess that reports its first paint (and title) and quits."""
    env = subprocess_env()
    env.update({"SEQWB_STARTUP_PROBE": "1", "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)})
    out = subprocess.run([sys.executable, *args], env=env, cwd=repo_root, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(next(ln for ln in out.stdout.splitlines() if ln.startswith("{")))


def test_the_window_paints_before_torch_is_imported(tmp_path, subprocess_env, repo_root):
    report = run_probe(["-c", "from workbench.gui.app import run_app; raise SystemExit(run_app())"],
                       tmp_path, subprocess_env, repo_root)
    assert report["torch_imported"] is False
    assert report["marks"]["painted"] >= report["marks"]["window_built"]
    assert "default project" in report["title"]


def test_seqwb_file_opens_the_file(tmp_path, subprocess_env, repo_root, reg):
    from tests.helpers import small_project
    from workbench.core.projectfile import save_project
    project = small_project(reg)
    project.name = "From the command line"
    save_project(project, tmp_path / "cli.seqwb")
    report = run_probe(["-m", "workbench", str(tmp_path / "cli.seqwb")], tmp_path, subprocess_env, repo_root)
    # the window paints first, saying what it opens, before torch (which reads the weights) is imported ...
    assert report["title"].startswith("Opening cli.seqwb…")
    assert report["torch_imported"] is False
    # ... and the file is in the window afterwards
    assert report["opened"] is True and report["marks"]["loaded"] > report["marks"]["painted"]
    assert report["title_loaded"].startswith("From the command line — cli.seqwb")
