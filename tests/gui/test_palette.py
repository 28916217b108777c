"""The palette dock: every registered block, grouped and searchable; double-click or drag adds it to the canvas."""

import json

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Graph  # noqa: E402
from workbench.core.project import Project, TaskConfig  # noqa: E402
from workbench.gui.canvas import GraphView  # noqa: E402
from workbench.gui.canvas.catalog import MIME_TYPE, block_entries  # noqa: E402
from workbench.gui.document import ProjectDocument  # noqa: E402
from workbench.gui.palette import PaletteWidget  # noqa: E402
from workbench.gui.style import category_title, help_html  # noqa: E402



@pytest.fixture
def palette(qtbot, reg):
    doc = ProjectDocument(reg, Project(name="t", graph=Graph(), task=TaskConfig("char-lm")))
    view = GraphView(doc)
    qtbot.addWidget(view)
    view.resize(800, 500)
    widget = PaletteWidget(reg, view)
    qtbot.addWidget(widget)
    widget.resize(280, 600)
    view.show()
    widget.show()
    qtbot.waitExposed(widget)
    return doc, view, widget


def first_visible(widget):
    tree = widget.tree
    for i in range(tree.topLevelItemCount()):
        group = tree.topLevelItem(i)
        for c in range(group.childCount()):
            if not group.isHidden() and not group.child(c).isHidden():
                return group.child(c)
    return None


def groups(widget):
    tree = widget.tree
    return [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())
            if not tree.topLevelItem(i).isHidden()]


def test_every_task_block_and_cell_is_listed_tasks_first(palette, reg):
    doc, view, widget = palette
    entries = widget.visible_entries()
    # every registered task, with its title and help, under Tasks at the top; no second task-input node to add
    tasks = [e for e in entries if e.task]
    assert [e.task for e in tasks] == list(reg.items["task"]) and entries[:len(tasks)] == tasks
    assert groups(widget)[0] == category_title("tasks")
    for entry in tasks:
        spec = reg.task(entry.task)
        assert entry.title == spec.title and help_html(spec.description)[:40] in entry.tooltip
    assert not {TASK_INPUT, TASK_OUTPUT} & {e.type_id for e in entries}
    # the project's task in bold
    tree = widget.tree
    bold = [tree.topLevelItem(0).child(c).text(0) for c in range(tree.topLevelItem(0).childCount())
            if tree.topLevelItem(0).child(c).font(0).bold()]
    assert bold == [reg.task("char-lm").title]
    listed = {e.type_id for e in entries}
    assert set(reg.items["architecture"]) <= listed
    rnn_cells = {e.params.get("cell") for e in entries if e.type_id == "rnn"}
    assert rnn_cells == set(reg.items["cell"])  # one "Recurrent layers · CELL" entry per registered cell
    order = groups(widget)
    assert order.index(category_title("embeddings")) < order.index(category_title("recurrent")) \
        < order.index(category_title("heads"))
    item = widget.tree.topLevelItem(1).child(0)
    assert widget.entry_of(item).description and widget.entry_of(item).description in item.toolTip(0)
    # under "Recurrent layers" a layer is named by its cell, so no name is cut to "Peeph…"
    recurrent = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
                     if tree.topLevelItem(i).text(0) == category_title("recurrent"))
    assert {recurrent.child(c).text(0) for c in range(recurrent.childCount())} == \
        {c.title for c in reg.items["cell"].values()}


def test_search_filters_by_name_and_cell(palette, qtbot):
    doc, view, widget = palette
    QTest.keyClicks(widget.search, "pool")
    assert [e.type_id for e in widget.visible_entries()] == ["pool"]
    assert groups(widget) == [category_title("pooling")]
    widget.search.clear()
    QTest.keyClicks(widget.search, "lstm")
    found = widget.visible_entries()
    assert found and found[0].type_id == "rnn" and found[0].params == {"cell": "lstm"}
    widget.search.setText("no such block")
    assert widget.visible_entries() == [] and not widget.empty.isHidden()
    widget.search.clear()
    assert len(widget.visible_entries()) == len(widget.entries) and widget.empty.isHidden()


def test_double_click_adds_at_the_view_centre(palette, qtbot):
    doc, view, widget = palette
    widget.search.setText("embedding")
    item = first_visible(widget)
    rect = widget.tree.visualItemRect(item)
    # QTest's double-click needs a click before it to register as one (Qt 6)
    QTest.mouseClick(widget.tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     rect.center())
    assert not doc.graph.nodes  # a single click only selects
    QTest.mouseDClick(widget.tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      rect.center())
    (node_id,) = doc.graph.nodes
    assert doc.graph.nodes[node_id].type == "embedding"
    centre = view.mapToScene(view.viewport().rect().center())
    assert view.graph_scene.nodes[node_id].sceneBoundingRect().contains(centre)
    assert view.selected_node_ids() == [node_id]
    # a second add does not land exactly on the first
    widget.add_item(item)
    a, b = list(doc.graph.nodes)
    assert doc.position(a) != doc.position(b)


def test_enter_in_the_search_adds_the_first_match(palette):
    doc, view, widget = palette
    widget.search.setText("gru")
    if not widget.visible_entries():
        pytest.skip("no GRU cell registered")
    QTest.keyClick(widget.search, Qt.Key.Key_Return)
    (node,) = doc.graph.nodes.values()
    assert node.type == "rnn" and node.params == {"cell": "gru"}


def test_drag_payload_names_the_block_and_its_params(palette):
    doc, view, widget = palette
    widget.search.setText("lstm")
    item = first_visible(widget)
    mime = widget.tree.mimeData([item])
    assert json.loads(bytes(mime.data(MIME_TYPE)).decode()) == {"type": "rnn", "params": {"cell": "lstm"}}
    assert not item.parent().flags() & Qt.ItemFlag.ItemIsDragEnabled  # category headings do not drag


def test_catalogue_follows_the_registry(reg):
    # a registry with more cells lists more recurrent entries, without any GUI change
    entries = block_entries(reg)
    n_rnn = sum(e.type_id == "rnn" for e in entries)
    assert n_rnn == max(1, len(reg.items["cell"]))
