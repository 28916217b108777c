"""The document: every edit is one undo command; undo everything then redo everything restores each state."""

import pytest

pytest.importorskip("pytestqt")

from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Graph  # noqa: E402
from workbench.core.project import Project, TaskConfig  # noqa: E402
from workbench.gui.document import ProjectDocument  # noqa: E402



def empty_doc(reg, qtbot=None):
    return ProjectDocument(reg, Project(name="t", graph=Graph(), task=TaskConfig("char-lm")))


def snapshot(doc):
    return doc.project.to_json()


def test_build_char_lm_then_undo_all_redo_all(qtbot, reg):
    doc = empty_doc(reg)
    states = [snapshot(doc)]
    ids = {}
    for key, type_id, pos in [("in", TASK_INPUT, (0, 0)), ("emb", "embedding", (200, 0)), ("rnn", "rnn", (400, 0)),
                              ("head", "linear", (600, 0)), ("out", TASK_OUTPUT, (800, 0))]:
        ids[key] = doc.add_node(type_id, pos)
        states.append(snapshot(doc))
    for a, ap, b, bp in [("in", "tokens", "emb", "x"), ("emb", "y", "rnn", "x"), ("rnn", "y", "head", "x"),
                         ("head", "y", "out", "logits")]:
        assert doc.connect_ports(ids[a], ap, ids[b], bp) is None
        states.append(snapshot(doc))
    assert doc.set_node_param(ids["rnn"], "hidden_size", "128") is None
    states.append(snapshot(doc))
    doc.move_nodes({ids["rnn"]: ((400, 0), (420, 30))})
    states.append(snapshot(doc))
    assert doc.report().ok, doc.report().problems
    assert doc.undo_stack.count() == len(states) - 1
    for i in range(len(states) - 1, 0, -1):
        doc.undo_stack.undo()
        assert snapshot(doc) == states[i - 1]
    for i in range(1, len(states)):
        doc.undo_stack.redo()
        assert snapshot(doc) == states[i]


def test_refused_link_and_param_change_nothing(qtbot, reg):
    doc = empty_doc(reg)
    a = doc.add_node(TASK_INPUT, (0, 0))
    b = doc.add_node("rnn", (100, 0))
    n = doc.undo_stack.count()
    reason = doc.connect_ports(a, "tokens", b, "x")
    assert "type mismatch" in reason and doc.undo_stack.count() == n
    assert "below the minimum" in doc.set_node_param(b, "hidden_size", "0")
    assert "unknown cell" in doc.set_node_param(b, "cell", "lstn")
    assert doc.undo_stack.count() == n


def test_delete_restores_links_and_paste_copies_internal_links(qtbot, reg):
    doc = empty_doc(reg)
    a = doc.add_node(TASK_INPUT, (0, 0))
    b = doc.add_node("embedding", (100, 0))
    c = doc.add_node("rnn", (200, 0))
    doc.connect_ports(a, "tokens", b, "x")
    doc.connect_ports(b, "y", c, "x")
    before = snapshot(doc)
    doc.remove_nodes([b])
    assert len(doc.graph.links) == 0
    doc.undo_stack.undo()
    assert snapshot(doc) == before
    new = doc.paste_nodes(doc.copy_nodes([b, c]))
    assert len(new) == 2 and set(new).isdisjoint({a, b, c})
    assert [(ln.src, ln.dst) for ln in doc.graph.links if ln.src in new] == [(new[0], new[1])]
    assert doc.position(new[0]) == (140.0, 40.0)


def test_settings_are_validated_and_undoable(qtbot, reg):
    doc = empty_doc(reg)
    assert "expected float" in doc.set_setting("train", "lr", "fast")
    assert doc.set_setting("train", "lr", "0.5") is None and doc.project.train.lr == 0.5
    assert doc.set_setting("task", "max_chars", "5000") is None and doc.project.task.params["max_chars"] == 5000
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert doc.project.train.lr == 2e-3 and "max_chars" not in doc.project.task.params
