"""Files in the window: save, close, reopen (graph, positions, view, inspector, history); the unsaved-changes
question; recent files in (isolated) QSettings; refused files leave the current project as it was."""

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from workbench.core.graph import Link  # noqa: E402
from workbench.core.projectfile import save_project  # noqa: E402
from workbench.gui.app import default_project  # noqa: E402
from workbench.gui.new_project import NewFromTemplateDialog  # noqa: E402

SB = QMessageBox.StandardButton



@pytest.fixture
def answers(monkeypatch):
    """Record every question and warning; questions get the answers queued in ``answers.queue``."""

    class Answers:
        queue: list = []
        questions: list = []
        warnings: list = []

    a = Answers()
    a.queue, a.questions, a.warnings = [], [], []

    def question(parent, title, text, *args, **kwargs):
        a.questions.append(text)
        return a.queue.pop(0)

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda parent, title, text, *r, **k:
                                                             a.warnings.append(text) or SB.Ok))
    return a


def save_dialog_answers(monkeypatch, path):
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: asked.append(a) or (str(path), "")))
    return asked


def edit(win):
    """A few edits of different kinds: a parameter, a move, a link removed, a training setting."""
    assert win.doc.set_node_param("rnn", "hidden_size", 96) is None
    win.doc.move_nodes({"rnn": (win.doc.position("rnn"), (460.0, 80.0))})
    win.doc.disconnect_link(Link("head", "y", "output", "logits"))
    assert win.doc.set_setting("train", "lr", "0.01") is None


def test_save_close_reopen_restores_graph_positions_view_inspector_and_history(make_window, reg, qtbot, tmp_path,
                                                                             monkeypatch, answers):
    win = make_window(reg)
    edit(win)
    win.doc.project.history.new_run({"lr": 0.01}).log("train/loss", 10, 2.5)
    win.view.set_view_state({"zoom": 0.8, "center": [300.0, 40.0]})
    win.inspector.sections["train"].header.click()          # fold "Training"
    path = tmp_path / "mine.seqwb"
    asked = save_dialog_answers(monkeypatch, tmp_path / "mine")   # no suffix typed: .seqwb is added
    win.files.act_save.trigger()                            # a project from the template has no file: Save asks
    assert len(asked) == 1 and path.exists()
    assert not win.isWindowModified() and "mine.seqwb" in win.windowTitle()
    saved = win.doc.project.to_json()
    saved_view = win.view.view_state()
    saved_pos = {n: win.doc.position(n) for n in win.doc.graph.nodes}

    win.files.act_close.trigger()                           # back to the default project, no question (saved)
    assert answers.questions == [] and win.doc.path is None
    assert win.doc.graph.nodes["rnn"].params["hidden_size"] == 256

    assert win.files.open_path(str(path))
    qtbot.wait(5)
    win.inspector.flush()
    project = win.doc.project
    assert project.graph.to_json()["nodes"] == saved["graph"]["nodes"]
    assert project.graph.to_json()["links"] == saved["graph"]["links"]
    assert {n: win.doc.position(n) for n in project.graph.nodes} == saved_pos
    assert {n: (i.pos().x(), i.pos().y()) for n, i in win.view.graph_scene.nodes.items()} == saved_pos
    assert project.train.lr == 0.01
    view = win.view.view_state()
    assert view["zoom"] == pytest.approx(saved_view["zoom"])
    assert view["center"] == pytest.approx(saved_view["center"], abs=1.0)
    assert win.inspector.state()["collapsed"] == ["train"]
    assert not win.inspector.sections["train"].is_expanded()
    run = project.history.runs[0]
    assert run.settings == {"lr": 0.01} and run.series["train/loss"].value == [2.5]
    assert win.doc.undo_stack.count() == 0 and not win.isWindowModified()
    # a second Save goes to the same file without asking
    win.doc.set_node_param("embed", "embed_size", 32)
    win.files.act_save.trigger()
    assert len(asked) == 1 and not win.isWindowModified()


def test_selected_node_is_restored_with_the_inspector(make_window, reg, qtbot, tmp_path, monkeypatch, answers):
    win = make_window(reg)
    win.view.select_node("rnn", center=False)
    path = tmp_path / "sel.seqwb"
    save_dialog_answers(monkeypatch, path)
    assert win.files.save()
    other = make_window(reg)
    assert other.files.open_path(str(path))
    qtbot.waitUntil(lambda: other.view.selected_node_ids() == ["rnn"])
    other.inspector.flush()
    assert other.inspector.node_id == "rnn"


def test_unsaved_changes_question_cancel_discard_save(make_window, reg, qtbot, tmp_path, monkeypatch, answers):
    other = tmp_path / "other.seqwb"
    project = default_project(reg)
    project.name = "Other"
    save_project(project, other)
    win = make_window(reg)

    edit(win)
    answers.queue = [SB.Cancel]
    assert not win.files.open_path(str(other))
    assert len(answers.questions) == 1 and "unsaved changes" in answers.questions[0]
    assert win.doc.project.name == "Character LM" and win.isWindowModified()     # nothing happened

    answers.queue = [SB.Discard]
    assert win.files.open_path(str(other))
    assert win.doc.project.name == "Other" and not win.isWindowModified()

    edit(win)
    answers.queue = [SB.Save]
    assert win.files.close_project()            # Save writes other.seqwb (it has a path), then closes
    assert win.doc.path is None and win.doc.project.name == "Character LM"
    from workbench.core.projectfile import load_project
    assert load_project(other, registry=reg).graph.nodes["rnn"].params["hidden_size"] == 96

    edit(win)
    answers.queue = [SB.Save]                   # Save on the default project asks for a name: the user cancels
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    assert not win.files.close_project()
    assert win.isWindowModified()

    answers.queue = [SB.Cancel]                 # closing the window: Cancel keeps it open
    win.close()
    assert win.isVisible()
    answers.queue = [SB.Discard]
    win.close()
    assert not win.isVisible()


def test_recent_files_persist_in_isolated_settings(make_window, reg, qtbot, tmp_path, answers, isolated_settings):
    paths = []
    for name in ("a", "b"):
        project = default_project(reg)
        path = tmp_path / f"{name}.seqwb"
        save_project(project, path)
        paths.append(str(path.resolve()))
    win = make_window(reg)
    assert win.files.recent_files() == []
    for p in paths:
        assert win.files.open_path(p)
    assert win.files.recent_files() == paths[::-1]
    win.close()
    again = make_window(reg)
    assert again.files.recent_files() == paths[::-1]
    again.files.recent_menu.aboutToShow.emit()       # what opening the menu does
    labels = [a.text() for a in again.files.recent_menu.actions() if a.text()]
    assert labels[:2] == ["&1 b.seqwb", "&2 a.seqwb"]
    ini = list(isolated_settings.rglob("*.ini"))
    assert ini and "b.seqwb" in ini[0].read_text()
    # a recent file that has gone is dropped from the list when opening it fails
    (tmp_path / "a.seqwb").unlink()
    assert not again.files.open_path(paths[0])
    assert again.files.recent_files() == [paths[1]]


def test_missing_plugin_or_corrupt_file_is_refused_and_the_project_kept(make_window, reg, qtbot, tmp_path, answers):
    project = default_project(reg)
    project.graph.add_node("fancy-block", {}, id="fancy", pos=(0, 200))
    path = tmp_path / "needs-plugin.seqwb"
    save_project(project, path, plugins_used=[{"kind": "architecture", "id": "fancy-block",
                                               "distribution": "seqwb-fancy", "version": "1.2"}])
    corrupt = tmp_path / "corrupt.seqwb"
    corrupt.write_bytes(b"PK\x03\x04 this is not a zip")
    win = make_window(reg)
    edit(win)
    before = win.doc.project.to_json()
    answers.queue = [SB.Discard, SB.Discard]
    assert not win.files.open_path(str(path))
    assert "fancy-block" in answers.warnings[0] and "seqwb-fancy" in answers.warnings[0]
    assert "Nothing was opened" in answers.warnings[0]
    assert not win.files.open_path(str(corrupt))
    assert "corrupt.seqwb" in answers.warnings[1]
    assert win.doc.project.to_json() == before and win.isWindowModified()   # the current project stays
    assert win.doc.path is None and set(win.view.graph_scene.nodes) == set(before_ids(before))


def before_ids(project_json):
    return [n["id"] for n in project_json["graph"]["nodes"]]


def test_new_from_template_lists_templates_with_parameters(make_window, reg, qtbot, monkeypatch, answers):
    dialog = NewFromTemplateDialog(reg, selected="char-lm")
    qtbot.addWidget(dialog)
    # "Empty project" first, then every template
    assert dialog.list.count() == len(reg.items["template"]) + 1
    assert dialog.list.item(0).text() == "Empty project" and dialog.list.item(0).data(Qt.ItemDataRole.UserRole) is None
    assert dialog.template_id() == "char-lm"
    assert "Python standard library" in dialog.heading.text()
    dialog.form.editor("hidden_size").setValue(64)
    dialog.accept()
    assert dialog.project.graph.nodes["rnn"].params["hidden_size"] == 64

    win = make_window(reg)

    def fake_exec(self):
        self.list.setCurrentRow(next(i for i in range(self.list.count()) if self.list.item(i).text().startswith(
            "Character")))
        self.form.editor("layers").setValue(3)
        self.accept()
        return NewFromTemplateDialog.DialogCode.Accepted

    monkeypatch.setattr(NewFromTemplateDialog, "exec", fake_exec)
    assert win.files.new_from_template()
    assert win.doc.graph.nodes["rnn"].params["layers"] == 3
    assert win.doc.path is None and "not saved" in win.windowTitle()
