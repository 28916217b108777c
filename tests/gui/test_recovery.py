"""Autosave and crash recovery (workbench.gui.recovery): the timer writes a copy of an edited project to the
recovery folder, never the user's file; a window that ends without closing (deleted, or its process killed)
leaves the copy, and the next start offers it; Restore / Discard / Later; Save and a clean close remove it
(pytest-qt, offscreen).  The recovery folder is a temporary one (tests/gui/conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QCoreApplication, QEvent  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from tests.conftest import REPO_ROOT, make_subprocess_env  # noqa: E402
from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from tests.helpers import small_project  # noqa: E402
from workbench.core.projectfile import load_project, project_plugins_used, save_project  # noqa: E402
from workbench.gui.mainwindow import MainWindow  # noqa: E402
from workbench.gui.recovery import (RecoveryDialog, find_orphans, offer_recovery, recovery_dir,  # noqa: E402
                                    restore_entry)



@pytest.fixture
def saved(reg, tmp_path):
    """A small project saved to a file of the user's: (path, the file's bytes)."""
    path = tmp_path / "mine.seqwb"
    project = small_project(reg, hidden_size=16)
    save_project(project, path, plugins_used=project_plugins_used(project, reg))
    return path, path.read_bytes()


@pytest.fixture
def dialog_answers(monkeypatch):
    """Drive the recovery dialog without showing it: each exec() takes the next answer and records the rows."""
    answers: list[str] = []
    shown: list[list[list[str]]] = []

    def fake_exec(self):
        shown.append(self.rows())
        self.choose(answers.pop(0))
        return 1

    monkeypatch.setattr(RecoveryDialog, "exec", fake_exec)
    return answers, shown


def edit(win, name="Edited after the last save", hidden=24):
    assert win.doc.set_setting("name", "name", name) is None
    rnn = next(nid for nid, node in win.doc.graph.nodes.items() if "hidden_size" in node.params)
    assert win.doc.set_node_param(rnn, "hidden_size", hidden) is None
    return rnn


def autosave_by_timer(win, qtbot):
    win.recovery.set_interval(0.05)
    with qtbot.waitSignal(win.recovery.saved, timeout=20000):
        pass
    win.recovery.wait()
    win.recovery.timer.stop()


def crash(win):
    """The window ends without closeEvent (as in a crash): no question asked, nothing cleaned up."""
    win.hide()
    win.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    QCoreApplication.processEvents()


def bare_window(reg, project=None, path=None):
    """A window that the test deletes itself (make_window's would be closed, cleanly, at teardown)."""
    win = MainWindow(reg, project, str(path) if path else None, detect_device=False)
    win.show()
    return win


def test_edit_then_timer_writes_a_copy_that_loads_to_the_edited_project(make_window, reg, qtbot, saved):
    path, original_bytes = saved
    win = make_window(reg, load_project(path, registry=reg), str(path))
    assert not win.recovery.has_copy() and not win.recovery.timer.isActive()   # nothing unsaved: no timer
    rnn = edit(win)
    assert win.recovery.timer.isActive()
    autosave_by_timer(win, qtbot)
    copy = win.recovery.data_path
    assert copy.is_file() and copy.parent == recovery_dir() == Path(os.environ["SEQWB_RECOVERY_DIR"])
    restored = load_project(copy, registry=reg)
    assert restored.name == "Edited after the last save"
    assert restored.graph.nodes[rnn].params["hidden_size"] == 24
    meta = json.loads(win.recovery.meta_path.read_text())
    assert meta["original_path"] == str(path.resolve()) and "blocks" in meta["contents"]
    assert path.read_bytes() == original_bytes                          # the user's file is never touched
    assert not Path(str(path) + ".bak").exists()
    # save removes the copy
    assert win.files.save()
    qtbot.waitUntil(lambda: not win.recovery.has_copy(), timeout=5000)
    assert not copy.exists() and not win.recovery.timer.isActive()
    assert load_project(path, registry=reg).name == "Edited after the last save"


def test_crash_then_next_start_offers_the_copy_and_restore_gives_the_edited_project(make_window, reg, qtbot, saved,
                                                                                     dialog_answers):
    path, original_bytes = saved
    answers, shown = dialog_answers
    win = bare_window(reg, load_project(path, registry=reg), path)
    rnn = edit(win)
    autosave_by_timer(win, qtbot)
    copy = win.recovery.data_path
    assert find_orphans() == []                     # the window is alive: its copy is not offered
    crash(win)
    assert copy.is_file()                           # left behind

    fresh = make_window(reg)                        # the next start
    assert not fresh.doc.is_modified()
    answers.append("restore")
    assert offer_recovery(fresh.files) == "restored"
    (row,) = shown[0]
    assert row[0] == "Edited after the last save" and row[1] == str(path.resolve())
    assert "weights" in row[3] and row[2][:2] == "20"           # name, original path, time, contents
    assert fresh.doc.project.name == "Edited after the last save"
    assert fresh.doc.graph.nodes[rnn].params["hidden_size"] == 24
    assert fresh.doc.is_modified() and fresh.isWindowModified() and fresh.doc.path == str(path.resolve())
    assert path.read_bytes() == original_bytes
    assert find_orphans() == []                     # the restored copy belongs to this window now
    # saving writes to the original path and removes the copy
    assert fresh.files.save()
    assert load_project(path, registry=reg).graph.nodes[rnn].params["hidden_size"] == 24
    qtbot.waitUntil(lambda: not copy.exists(), timeout=5000)
    assert not copy.exists() and list(recovery_dir().glob("*.seqwb")) == []
    assert offer_recovery(fresh.files) == "none" and len(shown) == 1


def test_discard_removes_the_copy_and_later_keeps_it(make_window, reg, qtbot, saved, dialog_answers):
    path, _ = saved
    answers, shown = dialog_answers
    win = bare_window(reg, load_project(path, registry=reg), path)
    edit(win)
    autosave_by_timer(win, qtbot)
    copy = win.recovery.data_path
    crash(win)

    fresh = make_window(reg)
    name = fresh.doc.project.name
    answers.append("later")
    assert offer_recovery(fresh.files) == "later"
    assert copy.is_file() and fresh.doc.project.name == name and not fresh.doc.is_modified()
    answers.append("discard")
    assert offer_recovery(fresh.files) == "discarded"
    assert len(shown) == 2 and not copy.exists() and list(recovery_dir().iterdir()) == []
    # a window that ended before its first copy leaves only a lock file: the next look tidies it away
    (recovery_dir() / "0123abcd.lock").write_bytes(b"")
    assert find_orphans() == [] and list(recovery_dir().iterdir()) == []
    assert fresh.doc.project.name == name and not fresh.doc.is_modified()


def test_an_untitled_project_restores_untitled_and_save_asks_for_a_name(make_window, reg, qtbot, tmp_path,
                                                                       monkeypatch, dialog_answers):
    answers, _ = dialog_answers
    win = bare_window(reg, small_project(reg, hidden_size=16))
    edit(win, name="Never saved")
    autosave_by_timer(win, qtbot)
    crash(win)
    fresh = make_window(reg)
    answers.append("restore")
    assert offer_recovery(fresh.files) == "restored"
    assert fresh.doc.path is None and fresh.doc.is_modified() and "not saved" in fresh.windowTitle()
    target = tmp_path / "named.seqwb"
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (asked.append(a) or str(target), "")))
    assert fresh.files.save() and asked
    qtbot.waitUntil(lambda: not fresh.recovery.has_copy(), timeout=5000)
    assert load_project(target, registry=reg).name == "Never saved" and list(recovery_dir().iterdir()) == []


def test_two_windows_keep_separate_copies_and_a_clean_close_removes_its_own(make_window, reg, qtbot, saved):
    path, _ = saved
    one = make_window(reg, load_project(path, registry=reg), str(path))
    two = make_window(reg, load_project(path, registry=reg), str(path))     # the same file twice
    edit(one, name="one", hidden=20)
    edit(two, name="two", hidden=28)
    autosave_by_timer(one, qtbot)
    autosave_by_timer(two, qtbot)
    assert one.recovery.data_path != two.recovery.data_path
    assert load_project(one.recovery.data_path, registry=reg).name == "one"
    assert load_project(two.recovery.data_path, registry=reg).name == "two"
    assert find_orphans() == []
    one.files.maybe_save = lambda: True             # "Discard" in the unsaved-changes question
    assert one.close()
    assert not one.recovery.data_path.exists() and two.recovery.data_path.is_file()


def test_a_training_checkpoint_is_autosaved_with_its_weights(make_window, reg, qtbot):
    project = small_project(reg, hidden_size=16, batch_size=4, chunk_len=16, eval_every=0, probe_every=0,
                            sample_every=0, checkpoint_every=3, steps=100000, **{"task.max_chars": 20000})
    win = make_window(reg, project)
    win.runs.ask_stop_training = lambda closing: "discard"
    win.recovery.set_interval(3600)                 # only the checkpoints write
    saves = []
    win.recovery.saved.connect(saves.append)
    win.runs.act_train.trigger()
    qtbot.waitUntil(lambda: bool(saves) and win.project.checkpoint is not None, timeout=60000)
    win.runs.stop_and_wait()
    win.recovery.wait()
    copy = load_project(win.recovery.data_path, registry=reg)
    assert copy.checkpoint is not None and copy.checkpoint.step >= 3 and copy.history.runs


CHILD = textwrap.dedent("""
    import sys, time
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv[:1])
    from workbench.core.projectfile import load_project
    from workbench.gui.mainwindow import MainWindow
    from workbench.plugin_system import discover
    reg = discover()
    path = sys.argv[1]
    win = MainWindow(reg, load_project(path, registry=reg), path, detect_device=False)
    win.show()
    win.doc.set_setting("name", "name", "Edited in a process that was killed")
    win.recovery.saved.connect(lambda p: print("SAVED", p, flush=True))
    win.recovery.set_interval(0.05)
    app.exec()
""")


def test_a_killed_process_leaves_a_copy_that_the_next_start_restores(make_window, reg, qtbot, saved, tmp_path,
                                                                     dialog_answers):
    path, original_bytes = saved
    answers, _ = dialog_answers
    env = make_subprocess_env()
    env["XDG_CONFIG_HOME"] = str(tmp_path / "child-config")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], env=env, cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("SAVED"), proc.stderr.read()[-2000:] if not line else line
        assert find_orphans() == []                 # the process is alive and holds the copy's lock
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    fresh = make_window(reg)
    answers.append("restore")
    assert offer_recovery(fresh.files) == "restored"
    assert fresh.doc.project.name == "Edited in a process that was killed" and fresh.doc.is_modified()
    assert fresh.doc.path == str(path.resolve()) and path.read_bytes() == original_bytes


def test_an_unreadable_copy_is_kept_and_reported(make_window, reg, qtbot, saved):
    path, _ = saved
    win = bare_window(reg, load_project(path, registry=reg), path)
    edit(win)
    autosave_by_timer(win, qtbot)
    copy = win.recovery.data_path
    crash(win)
    copy.write_bytes(b"not a zip at all")
    fresh = make_window(reg)
    ((entry, lock),) = find_orphans()
    try:
        assert not restore_entry(fresh.files, entry, lock)
    finally:
        lock.release()
    assert copy.is_file() and entry.meta_path.is_file()         # nothing lost
    assert "Cannot restore" in fresh.log_view.toPlainText() and not fresh.doc.is_modified()


def test_an_unwritable_recovery_folder_is_reported_once_and_the_project_is_kept(make_window, reg, qtbot, saved,
                                                                                tmp_path, monkeypatch):
    path, original_bytes = saved
    blocker = tmp_path / "a-file-not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("SEQWB_RECOVERY_DIR", str(blocker / "recovery"))
    win = make_window(reg, load_project(path, registry=reg), str(path))
    failures = []
    win.recovery.failed.connect(failures.append)
    edit(win)
    assert not win.recovery.autosave() and not win.recovery.autosave()
    assert len(failures) == 2 and str(blocker) in failures[0]
    assert win.log_view.toPlainText().count("Autosave failed") == 1       # said once, not every few minutes
    assert win.doc.is_modified() and win.doc.project.name == "Edited after the last save"
    assert path.read_bytes() == original_bytes
