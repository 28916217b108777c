"""The window among other writers (issue 19), against the real command line (pytest-qt, offscreen): the window
watches its file and offers Reload or Keep Mine (a merge: no run is lost) when ``seqwb train`` saved it; a Save
while ``seqwb train`` holds the file names the holder and keeps the window's work; a read-only file is replaced
only when the user says so; data outside the folder is read only when allowed, remembered per file; autosave
still offers its copy, and Save merges what was saved meanwhile; the hidden-units view exports are atomic."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox, QWidget  # noqa: E402

from tests.conftest import make_subprocess_env  # noqa: E402
from tests.core.reliability_figures import record  # noqa: E402
from tests.gui.test_recovery import autosave_by_timer, bare_window, crash  # noqa: E402
from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from tests.helpers import small_project, with_train, write_corpus  # noqa: E402
from workbench.core import data_access  # noqa: E402
from workbench.core.projectfile import load_project, project_plugins_used, save_project  # noqa: E402
from workbench.gui.recovery import RecoveryDialog, offer_recovery  # noqa: E402
from workbench.gui.shared_file import SharedFile  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and signals")
FAST = ["--set", "threads=1", "--set", "log_every=1"]



@pytest.fixture(autouse=True)
def fresh_blocks():
    data_access.forget_blocks()
    yield
    data_access.forget_blocks()


@pytest.fixture
def questions(monkeypatch):
    """Answer the window's file questions from ``questions.answers`` (keys), recording each question's text."""

    class Questions:
        answers: list[str] = []
        asked: list[str] = []
        warnings: list[str] = []

    q = Questions()
    q.answers, q.asked, q.warnings = [], [], []

    def choose(self, title, text, options, default):
        q.asked.append(text)
        return q.answers.pop(0)

    monkeypatch.setattr(SharedFile, "choose", choose)
    monkeypatch.setattr(SharedFile, "ask_later", lambda self, title, text, options, default, then:
                        then(choose(self, title, text, options, default)))
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda parent, title, text, *a, **k:
                                                             q.warnings.append(text) or QMessageBox.StandardButton.Ok))
    return q


def _project_file(folder: Path, reg, **settings) -> Path:
    write_corpus(folder)
    project = with_train(small_project(reg, **{"task.corpus": "corpus.txt", "hidden_size": "16", **settings}),
                         threads=1, log_every=1)
    path = folder / "c.seqwb"
    save_project(project, path, plugins_used=project_plugins_used(project, reg))
    return path


def _cli_train(path: Path, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), *args, *FAST], capture_output=True,
                         text=True, env=make_subprocess_env(), timeout=600)
    assert out.returncode == 0, out.stderr
    return out


def _runs(path: Path) -> list[str]:
    return [r.id for r in load_project(path, weights=False).history.runs]


def test_the_window_offers_keep_mine_when_the_cli_saved_and_merges_every_run(make_window, reg, qtbot, tmp_path,
                                                                           questions):
    path = _project_file(tmp_path, reg)
    win = make_window(reg, load_project(path, registry=reg), str(path))
    assert win.doc.set_setting("name", "name", "Renamed in the window") is None
    _cli_train(path, "--steps", "3")                          # the command line trains and saves meanwhile
    assert _runs(path) == ["run-1"]
    questions.answers.append("keep")
    qtbot.waitUntil(lambda: bool(questions.asked), timeout=15000)    # the watcher noticed, without a click
    assert "c.seqwb was changed on disk by another program" in questions.asked[0]
    assert "Keep Mine saves the window's version now, as a merge" in questions.asked[0]
    qtbot.waitUntil(lambda: not win.doc.is_modified(), timeout=15000)
    back = load_project(path, registry=reg)
    assert back.name == "Renamed in the window"                # the window's edit
    assert [r.id for r in back.history.runs] == ["run-1"]      # and the command line's run
    assert back.checkpoint is not None and back.checkpoint.step == 3
    assert [r.id for r in win.doc.project.history.runs] == ["run-1"]   # the window shows the merged history
    assert len(questions.asked) == 1 and questions.warnings == []


def test_reload_shows_the_version_on_disk(make_window, reg, qtbot, tmp_path, questions):
    path = _project_file(tmp_path, reg)
    win = make_window(reg, load_project(path, registry=reg), str(path))
    _cli_train(path, "--steps", "2")
    questions.answers.append("reload")
    assert win.files.shared.check_disk()
    assert [r.id for r in win.doc.project.history.runs] == ["run-1"] and not win.doc.is_modified()
    assert win.doc.project.checkpoint.step == 2
    assert not win.files.shared.check_disk()                   # the window has the version on disk now


def test_a_save_while_seqwb_train_writes_the_file_names_it_and_loses_nothing(make_window, reg, qtbot, tmp_path,
                                                                           questions):
    """The window against the command line: Save is refused naming seqwb train; after it finished, Keep Mine
    merges; the file holds the window's edit and the command line's run."""
    path = _project_file(tmp_path, reg, hidden_size="96", batch_size="16", chunk_len="64")
    win = make_window(reg, load_project(path, registry=reg), str(path))
    cli = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(path), "--steps", "100000", "--json",
                            *FAST], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=make_subprocess_env())
    try:
        assert json.loads(cli.stdout.readline())["event"] == "step"
        before = path.read_bytes()
        assert win.doc.set_setting("name", "name", "Window's name") is None
        assert not win.files.save()
        (warning,) = questions.warnings
        assert warning.startswith(f"{path} is in use: seqwb train (pid {cli.pid} on {socket.gethostname()}")
        assert "keeps your changes" in warning
        assert path.read_bytes() == before and win.doc.is_modified()
        cli.send_signal(signal.SIGINT)                       # it stops after its step and saves
        cli.communicate(timeout=300)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    questions.answers.append("keep")
    qtbot.waitUntil(lambda: not win.doc.is_modified(), timeout=20000)
    back = load_project(path, registry=reg)
    assert back.name == "Window's name" and [r.id for r in back.history.runs] == ["run-1"]
    assert back.checkpoint is not None and back.checkpoint.step >= 1
    record("window-and-cli", group="Two writers", times=3,
           tried="the window open on a file: seqwb train saves it; the window saves while seqwb train runs; "
                 "then the window's Keep Mine (and Reload)",
           result="the window notices the change and offers Reload or Keep Mine; a Save while seqwb train runs is "
                  "refused naming it (pid, host) and the window keeps its changes; Keep Mine merges: the file holds "
                  "the window's edit and the command line's run")


def test_a_read_only_file_is_replaced_only_when_the_user_says_so(make_window, reg, qtbot, tmp_path, questions):
    path = _project_file(tmp_path, reg)
    path.chmod(0o444)
    before = path.read_bytes()
    win = make_window(reg, load_project(path, registry=reg), str(path))
    assert win.doc.set_setting("name", "name", "Changed") is None
    questions.answers.append("cancel")
    assert not win.files.save()
    assert "c.seqwb is read-only" in questions.asked[0] and path.read_bytes() == before and win.doc.is_modified()
    questions.answers.append("replace")
    assert win.files.save()
    assert load_project(path, registry=reg).name == "Changed"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444 and not win.doc.is_modified()


def _hostile(tmp_path: Path, reg) -> tuple[Path, Path]:
    home, shared = tmp_path / "home", tmp_path / "shared"
    home.mkdir()
    shared.mkdir()
    secret = home / "id_rsa"
    secret.write_text("PRIVATE KEY zqxjv\n" * 400)
    project = with_train(small_project(reg, **{"task.corpus": "../home/id_rsa", "hidden_size": "16"}), threads=1)
    path = shared / "received.seqwb"
    save_project(project, path, plugins_used=project_plugins_used(project, reg))
    return path, secret


def _train_in_window(win, qtbot) -> str:
    logs: list[str] = []
    real = win.log
    win.log = lambda text, kind="info": (logs.append(text), real(text, kind))
    with qtbot.waitSignal(win.bridge.runEnded, timeout=120000):
        assert win.runs.train()
    return "\n".join(logs)


def test_data_outside_the_folder_is_read_in_the_window_only_when_allowed(make_window, reg, qtbot, tmp_path,
                                                                       questions):
    path, secret = _hostile(tmp_path, reg)
    before = path.read_bytes()
    win = make_window(reg)
    questions.answers.append("deny")
    assert win.files.open_path(str(path))
    assert "received.seqwb reads data outside its folder" in questions.asked[0]
    assert f"task.corpus = ../home/id_rsa ({secret})" in questions.asked[0]
    log = _train_in_window(win, qtbot)
    assert "names data outside its folder (task.corpus = ../home/id_rsa" in log
    assert not set("zqxjv") & set(win.doc.project.vocab or [])
    assert path.read_bytes() == before
    # opened again and allowed: read, and remembered for this file (no question the next time)
    win.files.close_project()
    questions.answers.append("allow")
    assert win.files.open_path(str(path))
    assert len(questions.asked) == 2
    _train_in_window(win, qtbot)
    assert set("zqxjv") <= set(win.doc.project.vocab)
    data_access.forget_blocks()
    other = make_window(reg)
    assert other.files.open_path(str(path)) and len(questions.asked) == 2
    record("outside-data-window", group="Shared files", times=3,
           tried="a received project naming ../home/id_rsa as its corpus, opened in the window: Don't Allow, then "
                 "Train; opened again: Allow, then Train; opened in another window",
           result="asked at open, listing the setting and where it leads; not allowed: the run fails with that "
                  "message and the key is never read; allowed: read, and not asked again for that file")


def test_autosave_still_offers_its_copy_and_save_merges_what_was_saved_meanwhile(make_window, reg, qtbot, tmp_path,
                                                                               questions, monkeypatch):
    path = _project_file(tmp_path, reg)
    win = bare_window(reg, load_project(path, registry=reg), path)
    assert win.doc.set_setting("name", "name", "Unsaved edit") is None
    autosave_by_timer(win, qtbot)
    crash(win)
    _cli_train(path, "--steps", "2")                         # the file moves on after the copy was written
    shown = []

    def fake_exec(self):
        shown.append(self.rows())
        self.choose("restore")
        return 1

    monkeypatch.setattr(RecoveryDialog, "exec", fake_exec)
    fresh = make_window(reg)
    assert offer_recovery(fresh.files) == "restored"
    assert shown[0][0][1].endswith("c.seqwb (changed on disk since: Save merges)")
    assert fresh.doc.project.name == "Unsaved edit" and fresh.doc.is_modified()
    questions.answers.append("keep")
    assert fresh.files.save()
    assert "was changed on disk since the window read it" in questions.asked[0]
    back = load_project(path, registry=reg)
    assert back.name == "Unsaved edit" and [r.id for r in back.history.runs] == ["run-1"]


def test_view_exports_are_written_all_or_nothing(qtbot, tmp_path, monkeypatch):
    from workbench.gui.inspect_units_export import RecordingExport
    widget = QWidget()
    widget.resize(120, 80)
    qtbot.addWidget(widget)
    said: list[str] = []
    panel = type("Panel", (RecordingExport, QWidget), {"_say": lambda self, text, error=False: said.append(text),
                                                       "layer": "rnn.0", "quantity": "h"})()
    qtbot.addWidget(panel)
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda p, t, text, *a: warnings.append(text)))
    for ext in ("png", "svg"):
        target = tmp_path / f"view.{ext}"
        target.write_bytes(b"the old export")
        panel.export_view(widget, str(target))
        assert target.read_bytes() != b"the old export" and target.stat().st_size > 100
    # a write that fails at the end (here: a disk error when the file is put in place): the old file stays whole,
    # no temporary file is left, and the message names the export
    real = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("broken.png"):
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"the old export")
    panel.export_view(widget, str(broken))
    assert warnings == [f"Could not write {broken}: Input/output error. Nothing was written (a file already there "
                        f"is unchanged)."]
    assert broken.read_bytes() == b"the old export"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
