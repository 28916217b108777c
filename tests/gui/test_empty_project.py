"""Your own work in the window (issue 16): an empty project, a task dropped on the canvas and its data chosen with
the file picker and previewed, blocks dropped and wired, a run, Save and reopen with everything back; the task
swap that keeps the links that fit; the decoding settings as the project's, saved; a file opened after the first
paint (pytest-qt, offscreen)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox, QToolButton  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from tests.helpers import small_project  # noqa: E402
from workbench.core.graph import Link  # noqa: E402
from workbench.core.projectfile import load_project, save_project  # noqa: E402
from workbench.core.runs import plan_run  # noqa: E402
from workbench.gui.canvas.catalog import MIME_TYPE  # noqa: E402
from workbench.gui.new_project import NewFromTemplateDialog  # noqa: E402

REVIEWS = "text,label\n" + "".join(
    f"{'a fine and moving film' if i % 2 else 'a dull and tedious film'}{' indeed' * (i % 3)},"
    f"{'positive' if i % 2 else 'negative'}\n" for i in range(80))




def palette_entry(win, *, task: str = "", block: str = "", cell: str = ""):
    """The palette's tree item for a task, or for a block (and cell)."""
    tree = win.palette_widget.tree
    for g in range(tree.topLevelItemCount()):
        group = tree.topLevelItem(g)
        for c in range(group.childCount()):
            entry = win.palette_widget.entry_of(group.child(c))
            if (task and entry.task == task) or (block and entry.type_id == block
                                                 and (not cell or entry.params.get("cell") == cell)):
                return group.child(c)
    raise LookupError(task or block)


def drop(win, item, scene_pos: tuple[float, float]) -> None:
    """Drag a palette item onto the canvas: the palette's drag payload, dropped at ``scene_pos``."""
    mime = win.palette_widget.tree.mimeData([item])
    payload = QMimeData()
    payload.setData(MIME_TYPE, mime.data(MIME_TYPE))
    at = QPointF(win.view.mapFromScene(QPointF(*scene_pos)))
    event = QDropEvent(at, Qt.DropAction.CopyAction, payload, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    win.view.dropEvent(event)


def wire(win, src: str, src_port: str, dst: str, dst_port: str) -> None:
    """Drag from an output port to an input port on the canvas."""
    scene = win.view.graph_scene
    out = scene.nodes[src].port(src_port, True)
    inp = scene.nodes[dst].port(dst_port, False)
    scene.begin_link_drag(out, out.anchor())
    scene.update_link_drag(inp.anchor())
    assert scene.end_link_drag(inp.anchor()) is None


def new_empty_project(win, monkeypatch) -> None:
    """File ▸ New, the first entry (Empty project), Create."""
    def run(dialog):
        assert dialog.template_id() is None           # the empty project is what File ▸ New offers first
        dialog.accept()
        return NewFromTemplateDialog.DialogCode.Accepted
    monkeypatch.setattr(NewFromTemplateDialog, "exec", run)
    assert win.files.new_from_template()


def test_from_an_empty_canvas_to_a_trained_classifier_and_back(window, reg, qtbot, tmp_path, monkeypatch):
    (tmp_path / "reviews.csv").write_text(REVIEWS, encoding="utf-8")
    win = window(reg)
    new_empty_project(win, monkeypatch)
    assert not win.doc.graph.nodes and win.doc.project.task.id == ""
    assert "Drag a task" in win.view.placeholder_text() and not win.runs.act_train.isEnabled()
    assert win.doc.report().problems[0].startswith("the project has no task")

    # the task, dropped on the canvas: one undo step, its two nodes, its settings in the inspector
    drop(win, palette_entry(win, task="sentiment"), (0.0, 0.0))
    assert win.doc.project.task.id == "sentiment" and win.doc.undo_stack.count() == 1
    assert sorted(n.type for n in win.doc.graph.nodes.values()) == ["task-input", "task-output"]
    assert win.doc.project.name == "Sentiment classification"        # nobody had named it
    win.inspector.flush()
    form = win.inspector.form("task")
    # its data through the file picker beside "path"
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "reviews.csv"), "")))
    form.rows["path"].container.findChild(QToolButton).click()
    form.editor("min_count").setValue(1)
    assert win.doc.project.task.params["path"] == str(tmp_path / "reviews.csv")
    # the preview reads the data by itself once the task was touched
    previewer = win.inspector.previewer
    qtbot.waitUntil(lambda: previewer.result is not None and previewer.up_to_date() and not previewer.busy,
                    timeout=60000)
    assert previewer.result["splits"]["train"]["count"] == 64 and previewer.result["sizes"]["classes"] == 2
    panel = win.inspector.preview
    assert "train 64 examples" in panel.summary.text() and panel.examples.topLevelItemCount() == 5
    assert panel.examples.headerItem().text(1) == "targets"           # the label is the first column
    assert {panel.batch.topLevelItem(i).text(0) for i in range(3)} == {"tokens", "lengths", "targets"}

    # blocks dropped between the task's nodes and wired
    for x, kind, cell in ((220, "embedding", ""), (440, "rnn", "lstm"), (660, "pool", ""), (880, "classifier", "")):
        drop(win, palette_entry(win, block=kind, cell=cell), (x, 200.0))
    ids = {n.type: n.id for n in win.doc.graph.nodes.values()}
    wire(win, "input", "tokens", ids["embedding"], "x")
    wire(win, ids["embedding"], "y", ids["rnn"], "x")
    wire(win, ids["rnn"], "y", ids["pool"], "x")
    wire(win, ids["pool"], "y", ids["classifier"], "x")
    wire(win, ids["classifier"], "y", "output", "logits")
    assert win.doc.report().problems == [] and win.runs.act_train.isEnabled()
    for node, name, value in ((ids["embedding"], "embed_size", 8), (ids["rnn"], "hidden_size", 12)):
        assert win.doc.set_node_param(node, name, value) is None
    for name, value in (("steps", 30), ("batch_size", 8), ("eval_every", 10), ("probe_every", 10),
                        ("threads", 1)):
        assert win.doc.set_setting("train", name, value) is None

    win.runs.act_train.trigger()
    qtbot.waitUntil(lambda: win.bridge.state == "idle" and win.doc.project.checkpoint is not None, timeout=120000)
    run = win.doc.project.history.runs[-1]
    assert run.status == "finished" and run.series["valid/accuracy"].value
    assert win.doc.project.data["sizes"]["classes"] == 2

    # Save: the file is named by the user, the project after it; the data path becomes relative to it
    path = tmp_path / "my-classifier.seqwb"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(path), "")))
    assert win.files.save()
    assert win.doc.project.name == "my-classifier" and win.doc.project.task.params["path"] == "reviews.csv"
    saved = win.doc.project.to_json()
    saved_step = win.doc.project.checkpoint.step

    other = window(reg)
    assert other.files.open_path(str(path))
    project = other.doc.project
    assert project.to_json()["graph"] == saved["graph"] and project.to_json()["task"] == saved["task"]
    assert project.to_json()["train"] == saved["train"] and project.name == "my-classifier"
    assert project.checkpoint.step == saved_step == 30
    assert [r.id for r in project.history.runs] == [run.id]
    assert project.history.runs[0].series["valid/accuracy"].value == run.series["valid/accuracy"].value
    assert project.vocab == win.doc.project.vocab
    assert "reached its 30 steps" in plan_run(project).text
    other.inspector.flush()
    assert other.inspector.form("task").value("path") == "reviews.csv"
    # the relative path reads from the project's folder
    other.inspector.previewer.refresh()
    qtbot.waitUntil(lambda: other.inspector.previewer.result is not None, timeout=60000)
    assert other.inspector.previewer.result["splits"]["train"]["count"] == 64


def test_the_task_swap_keeps_the_links_that_fit_and_is_one_undo_step(window, reg, qtbot):
    from workbench.core.settings import template_project
    project, _ = template_project(reg.template("sentiment"), {}, reg)
    win = window(reg, project)
    links_before = list(win.doc.graph.links)
    task_before = win.doc.project.to_json()["task"]
    steps = win.doc.undo_stack.count()
    drop(win, palette_entry(win, task="tagging"), (-300.0, 0.0))
    # tagging reads tokens[T] too but answers logits[T]: the input's link stays, the classifier's goes
    assert win.doc.project.task.id == "tagging" and win.doc.undo_stack.count() == steps + 1
    assert Link("input", "tokens", "embed", "x") in win.doc.graph.links
    assert Link("head", "y", "output", "logits") not in win.doc.graph.links
    assert len(win.doc.graph.links) == len(links_before) - 1
    assert "1 removed" in win.statusBar().currentMessage()
    # the canvas follows: the output node's port is tagging's, the link item is gone
    scene = win.view.graph_scene
    assert [p.port_type for p in scene.nodes["output"].inputs] == ["logits[T]"]
    assert Link("head", "y", "output", "logits") not in scene.link_items
    # the palette marks the new task; a second drop of it only says so
    assert palette_entry(win, task="tagging").font(0).bold()
    drop(win, palette_entry(win, task="tagging"), (0.0, 0.0))
    assert win.doc.undo_stack.count() == steps + 1 and "already" in win.statusBar().currentMessage()

    win.act_undo.trigger()
    assert win.doc.graph.links == links_before and win.doc.project.to_json()["task"] == task_before
    assert Link("head", "y", "output", "logits") in scene.link_items
    win.act_redo.trigger()
    assert win.doc.project.task.id == "tagging" and len(win.doc.graph.links) == len(links_before) - 1


def choose(combo, data) -> None:
    combo.setCurrentIndex(combo.findData(data))


def test_the_decoding_tab_edits_the_projects_decoding_settings_which_are_saved(window, reg, qtbot, tmp_path,
                                                                                 monkeypatch):
    project = small_project(reg, **{"task.max_chars": 20000})
    path = tmp_path / "lm.seqwb"
    save_project(project, path)
    win = window(reg)
    assert win.files.open_path(str(path))
    tab = win.views["decoding"].show()
    assert tab.decoder_id() == project.decode.decoder
    # Beam search with max len 30, chosen in the Decoding tab
    choose(tab.decoder_combo, "beam")
    qtbot.waitUntil(lambda: tab.form is not None and "width" in tab.form.rows)
    tab.form.editor("max_len").setValue(30)
    decode = win.doc.project.decode
    assert decode.decoder == "beam" and decode.params["max_len"] == 30
    assert win.isWindowModified() and win.doc.undo_stack.count() == 2
    # Inspector ▸ Decoding shows the same, and an edit there shows in the tab
    win.tabs.setCurrentIndex(0)
    win.inspector.flush()
    qtbot.waitUntil(lambda: "width" in win.inspector.form("decoder").rows)
    assert win.inspector.form("decode").value("decoder") == "beam"
    assert win.inspector.form("decoder").value("max_len") == 30
    width = tab.form.value("width")
    win.inspector.form("decoder").editor("width").setValue(width + 2)
    assert tab.form.value("width") == width + 2 == win.doc.project.decode.params["width"]
    win.act_undo.trigger()
    assert tab.form.value("width") == width

    # Save, Close, Open Recent: Beam search with max len 30 again, in the tab and the inspector
    assert win.files.save()
    assert win.files.close_project()
    assert win.doc.path is None and tab.decoder_id() == win.doc.project.decode.decoder
    win.files.recent_menu.aboutToShow.emit()
    recent = next(a for a in win.files.recent_menu.actions() if a.toolTip() == str(path))
    recent.trigger()
    assert win.doc.path == str(path)
    assert win.doc.project.decode.decoder == "beam" and win.doc.project.decode.params["max_len"] == 30
    assert tab.decoder_id() == "beam" and tab.form.value("max_len") == 30
    win.inspector.flush()
    assert win.inspector.form("decode").value("decoder") == "beam"
    assert load_project(path, registry=reg).decode.params["max_len"] == 30


def test_a_file_opens_after_the_first_paint_with_its_progress_shown(window, reg, qtbot, tmp_path, monkeypatch):
    from workbench.core.task_choice import empty_project
    project = small_project(reg)
    project.name = "Opened later"
    path = tmp_path / "later.seqwb"
    save_project(project, path)
    win = window(reg, empty_project(path.stem))
    with qtbot.waitSignal(win.files.opened, timeout=60000) as opened:
        win.files.open_in_background(str(path))
        # while it reads: said in the title, the status bar and on the canvas; nothing to edit meanwhile
        assert win.files.is_loading() and win.windowTitle().startswith("Opening later.seqwb…")
        assert win.load_progress.isVisible() and "Opening later.seqwb" in win.view.placeholder_text()
        assert not win.tabs.isEnabled() and not win.inspector_dock.isEnabled()
        assert not win.files.open_path(str(path))              # one file at a time
    assert opened.args == [True]
    assert win.doc.project.name == "Opened later" and win.doc.path == str(path)
    assert win.tabs.isEnabled() and not win.load_progress.isVisible() and win.view.placeholder_text() == ""
    assert not win.isWindowModified()

    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda parent, title, text, *a, **k:
                                                             warnings.append(text)))
    broken = tmp_path / "broken.seqwb"
    broken.write_bytes(b"not a zip")
    with qtbot.waitSignal(win.files.opened, timeout=60000) as opened:
        win.files.open_in_background(str(broken))
    assert opened.args == [False] and "broken.seqwb" in warnings[0] and "default project" in warnings[0]
    assert win.doc.path is None and "default project" in win.windowTitle()


def test_the_empty_project_dialog_entry_and_json_of_the_palette_drag(reg, qtbot):
    dialog = NewFromTemplateDialog(reg)
    qtbot.addWidget(dialog)
    assert dialog.template_id() is None and "Drag a task" in dialog.heading.text()
    assert dialog.form_area.isHidden()
    dialog.accept()
    assert dialog.project.task.id == "" and not dialog.project.graph.nodes
    from workbench.gui.canvas.catalog import task_entries
    entry = next(e for e in task_entries(reg) if e.task == "forecast")
    assert json.loads(json.dumps(entry.payload())) == {"task": "forecast"}
