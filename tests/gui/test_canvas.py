"""The model canvas (pytest-qt, offscreen): gestures become one undo command each, through the document."""

import json

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Graph  # noqa: E402
from workbench.core.project import Project, TaskConfig  # noqa: E402
from workbench.gui.canvas import GraphView, problems_mentioning  # noqa: E402
from workbench.gui.canvas.catalog import MIME_TYPE  # noqa: E402
from workbench.gui.canvas.layout import flow_order, layered_layout  # noqa: E402
from workbench.gui.document import ProjectDocument  # noqa: E402

CHAIN = [(TASK_INPUT, "tokens", None), ("embedding", "y", "x"), ("rnn", "y", "x"), ("linear", "y", "x"),
         (TASK_OUTPUT, None, "logits")]



def make_view(qtbot, reg, graph=None):
    doc = ProjectDocument(reg, Project(name="t", graph=graph or Graph(), task=TaskConfig("char-lm")))
    view = GraphView(doc)
    qtbot.addWidget(view)
    view.resize(1100, 600)
    view.show()
    qtbot.waitExposed(view)
    view.set_view_state({"zoom": 1.0, "center": [450, 60]})
    return doc, view


def snapshot(doc, link_order=True):
    data = doc.project.graph.to_json()
    if not link_order:  # RemoveNodes.undo appends the restored links at the end of the list
        data["links"] = sorted(data["links"])
    return json.dumps(data, sort_keys=True)


def vp_point(view, scene_pt):
    return view.mapFromScene(scene_pt)


def mouse_drag(view, a: QPointF, b: QPointF, steps=4, modifier=Qt.KeyboardModifier.NoModifier):
    vp = view.viewport()
    pa, pb = vp_point(view, a), vp_point(view, b)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, modifier, pa)
    for i in range(1, steps + 1):
        QTest.mouseMove(vp, pa + (pb - pa) * i / steps)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, modifier, pb)


def port(view, node_id, name, output):
    return view.graph_scene.nodes[node_id].port(name, output)


def build_char_lm(view, doc, states=None):
    """Add the five nodes through the view and link them by dragging between ports with the mouse."""
    ids = []
    for i, (type_id, _, _) in enumerate(CHAIN):
        ids.append(view.add_block_at(type_id, QPointF(i * 220 + 80, 40)))
        if states is not None:
            states.append(snapshot(doc))
    for i in range(len(CHAIN) - 1):
        out = port(view, ids[i], CHAIN[i][1], True)
        inp = port(view, ids[i + 1], CHAIN[i + 1][2], False)
        if i == len(CHAIN) - 2:
            mouse_drag(view, inp.anchor(), out.anchor())  # the reverse direction links too
        else:
            mouse_drag(view, out.anchor(), inp.anchor())
        if states is not None:
            states.append(snapshot(doc))
    return ids


def test_build_char_lm_by_mouse_then_undo_all_and_redo_all(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    states = [snapshot(doc)]
    ids = build_char_lm(view, doc, states)
    links = [(ln.src, ln.src_port, ln.dst, ln.dst_port) for ln in doc.graph.links]
    assert links == [(ids[0], "tokens", ids[1], "x"), (ids[1], "y", ids[2], "x"), (ids[2], "y", ids[3], "x"),
                     (ids[3], "y", ids[4], "logits")]
    assert doc.report().ok, doc.report().problems
    assert len(view.graph_scene.link_items) == 4
    assert all(p.connected for p in (port(view, ids[1], "x", False), port(view, ids[4], "logits", False)))
    assert doc.undo_stack.count() == len(states) - 1 == 9
    for i in range(len(states) - 1, 0, -1):
        doc.undo_stack.undo()
        assert snapshot(doc) == states[i - 1]
    assert not view.graph_scene.nodes and not view.graph_scene.link_items
    for i in range(1, len(states)):
        doc.undo_stack.redo()
        assert snapshot(doc) == states[i]
    assert len(view.graph_scene.nodes) == 5 and len(view.graph_scene.link_items) == 4


def test_type_mismatched_drag_is_refused_with_the_reason_shown(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    a = view.add_block_at(TASK_INPUT, QPointF(80, 40))
    b = view.add_block_at("rnn", QPointF(400, 40))
    count = doc.undo_stack.count()
    src, dst = port(view, a, "tokens", True), port(view, b, "x", False)
    with qtbot.waitSignal(view.message, timeout=1000) as sig:
        mouse_drag(view, src.anchor(), dst.anchor())
    reason = sig.args[0]
    assert "type mismatch" in reason and "tokens[T]" in reason and "vectors[T]" in reason
    assert view.graph_scene.bubble_text() == reason  # shown in the scene where the link was dropped
    bubble = view.graph_scene._bubble
    node_rect = view.graph_scene.nodes[b].sceneBoundingRect()
    assert abs(bubble.pos().x() - dst.anchor().x()) < 20 and 0 <= bubble.pos().y() - node_rect.bottom() < 10
    assert doc.graph.links == [] and doc.undo_stack.count() == count
    assert not view.graph_scene.is_dragging_link()
    # dropping on a node body with no fitting port explains the choice too
    c = view.add_block_at("pool", QPointF(700, 40))
    with qtbot.waitSignal(view.message, timeout=1000) as sig:
        mouse_drag(view, src.anchor(), view.graph_scene.nodes[c].sceneBoundingRect().center())
    assert "type mismatch" in sig.args[0]


def test_live_link_follows_the_mouse_and_links_reroute_when_nodes_move(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    ids = build_char_lm(view, doc)
    scene = view.graph_scene
    out = port(view, ids[2], "y", True)
    vp = view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, vp_point(view, out.anchor()))
    QTest.mouseMove(vp, vp_point(view, out.anchor() + QPointF(60, 90)))
    assert scene.is_dragging_link()
    line = scene._drag["line"]
    assert (line.path().pointAtPercent(1.0) - (out.anchor() + QPointF(60, 90))).manhattanLength() < 3
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       vp_point(view, out.anchor() + QPointF(60, 90)))
    assert not scene.is_dragging_link() and line.scene() is None
    # moving a node re-routes its links (through the document, as undo does)
    link_item = next(it for ln, it in scene.link_items.items() if ln.dst == ids[3])
    doc.move_nodes({ids[3]: (doc.position(ids[3]), (700.0, 300.0))})
    end = link_item.path().pointAtPercent(1.0)
    assert (end - port(view, ids[3], "x", False).anchor()).manhattanLength() < 1


def test_moving_nodes_by_mouse_is_one_undo_command(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    a = view.add_block_at("embedding", QPointF(100, 40))
    b = view.add_block_at("rnn", QPointF(400, 40))
    view.select_nodes([a, b])
    before = {n: doc.position(n) for n in (a, b)}
    count = doc.undo_stack.count()
    title = view.graph_scene.nodes[a].mapToScene(QPointF(40, 12))
    mouse_drag(view, title, title + QPointF(80, 60), steps=10)
    assert doc.undo_stack.count() == count + 1
    for n in (a, b):  # both selected nodes moved together
        assert doc.position(n) == (before[n][0] + 80, before[n][1] + 60)
    doc.undo_stack.undo()
    assert {n: doc.position(n) for n in (a, b)} == before
    assert view.graph_scene.nodes[a].pos() == QPointF(*before[a])


def test_rubber_band_and_ctrl_click_selection(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    ids = [view.add_block_at(t, QPointF(100 + 220 * i, 40)) for i, t in enumerate(["embedding", "rnn", "linear"])]
    view.graph_scene.clearSelection()
    seen = []
    view.selectionChanged.connect(seen.append)
    r0 = view.graph_scene.nodes[ids[0]].sceneBoundingRect()
    r1 = view.graph_scene.nodes[ids[1]].sceneBoundingRect()
    mouse_drag(view, r0.topLeft() - QPointF(20, 20), r1.center(), steps=6)
    assert view.selected_node_ids() == ids[:2]
    assert seen[-1] == ids[:2]
    third = view.graph_scene.nodes[ids[2]].mapToScene(QPointF(40, 12))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     vp_point(view, third))
    assert view.selected_node_ids() == ids
    first = view.graph_scene.nodes[ids[0]].mapToScene(QPointF(40, 12))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     vp_point(view, first))
    assert view.selected_node_ids() == ids[1:]
    view.select_all()
    assert view.selected_node_ids() == ids


def test_delete_key_then_undo_restores_links_and_task_nodes_stay(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    ids = build_char_lm(view, doc)
    before = snapshot(doc, link_order=False)
    view.select_node(ids[2], center=False)
    view.setFocus()
    count = doc.undo_stack.count()
    QTest.keyClick(view, Qt.Key.Key_Delete)
    assert ids[2] not in doc.graph.nodes and len(doc.graph.links) == 2
    assert doc.undo_stack.count() == count + 1
    doc.undo_stack.undo()
    assert snapshot(doc, False) == before and len(view.graph_scene.link_items) == 4
    # the task's own input/output nodes are refused, the rest of the selection goes, as one command
    messages = []
    view.message.connect(messages.append)
    view.select_all()
    view.delete_selection()
    assert set(doc.graph.nodes) == {ids[0], ids[4]} and "cannot be deleted" in messages[-1]
    assert doc.undo_stack.index() == count + 1  # one command (the undone delete was replaced)
    doc.undo_stack.undo()
    assert snapshot(doc, False) == before
    # a selected link alone is deleted with the key as well
    link_item = next(iter(view.graph_scene.link_items.values()))
    view.graph_scene.clearSelection()
    link_item.setSelected(True)
    view.delete_selection()
    assert len(doc.graph.links) == 3
    doc.undo_stack.undo()
    assert snapshot(doc, False) == before


def test_dragging_a_linked_input_away_unlinks_it(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    ids = build_char_lm(view, doc)
    inp = port(view, ids[3], "x", False)
    count = doc.undo_stack.count()
    mouse_drag(view, inp.anchor(), inp.anchor() + QPointF(0, 200))
    assert not any(ln.dst == ids[3] for ln in doc.graph.links)
    assert doc.undo_stack.count() == count + 1
    doc.undo_stack.undo()
    assert any(ln.dst == ids[3] for ln in doc.graph.links)


def test_copy_paste_duplicates_nodes_and_internal_links(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    ids = build_char_lm(view, doc)
    view.select_nodes(ids[1:3])
    view.copy_selection()
    assert json.loads(QApplication.clipboard().text())["seqwb-nodes"] == 1
    count = doc.undo_stack.count()
    view.paste()
    assert doc.undo_stack.count() == count + 1
    new = view.selected_node_ids()
    assert len(new) == 2 and not set(new) & set(ids)
    assert [doc.graph.nodes[n].type for n in new] == ["embedding", "rnn"]
    internal = [(ln.src, ln.src_port, ln.dst, ln.dst_port) for ln in doc.graph.links if ln.src in new or ln.dst in new]
    assert internal == [(new[0], "y", new[1], "x")]
    assert doc.position(new[0]) != doc.position(ids[1])
    view.cut_selection()
    assert not set(new) & set(doc.graph.nodes)
    # copying everything duplicates the model's body, not the task's own input/output nodes
    view.select_all()
    view.copy_selection()
    view.paste()
    types = [node.type for node in doc.graph.nodes.values()]
    assert types.count(TASK_INPUT) == 1 and types.count(TASK_OUTPUT) == 1 and types.count("rnn") == 2
    assert len(doc.graph.links) == 4 + 2  # the links among the pasted blocks came along


def test_auto_layout_is_one_command_and_orders_left_to_right(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    ids = build_char_lm(view, doc)
    scrambled = {ids[0]: (900.0, 300.0), ids[1]: (0.0, 0.0), ids[2]: (500.0, -200.0), ids[3]: (100.0, 400.0),
                 ids[4]: (300.0, 100.0)}
    doc.move_nodes({n: (doc.position(n), p) for n, p in scrambled.items()})
    count = doc.undo_stack.count()
    view.auto_layout()
    assert doc.undo_stack.count() == count + 1
    xs = [doc.position(n)[0] for n in ids]
    assert xs == sorted(xs) and len(set(xs)) == 5
    ys = {doc.position(n)[1] for n in ids}
    assert len(ys) == 1  # a chain comes out straight
    rects = [view.graph_scene.nodes[n].sceneBoundingRect() for n in ids]
    assert all(not a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])
    doc.undo_stack.undo()
    assert {n: doc.position(n) for n in ids} == scrambled


def test_layout_branches_do_not_overlap():
    nodes = ["in", "a", "b", "c", "out"]
    edges = [("in", "a"), ("in", "b"), ("in", "c"), ("a", "out"), ("b", "out"), ("c", "out")]
    sizes = {n: (160.0, 80.0) for n in nodes}
    pos = layered_layout(nodes, edges, sizes, origin=(10.0, 20.0))
    assert pos["in"][0] == 10.0 and pos["a"][0] == pos["b"][0] == pos["c"][0] > 10.0 > 0
    assert pos["out"][0] > pos["a"][0]
    ys = sorted(pos[n][1] for n in "abc")
    assert ys[1] - ys[0] >= 80 and ys[2] - ys[1] >= 80 and min(p[1] for p in pos.values()) == 20.0
    # a cycle does not hang the layout
    assert set(flow_order(["x", "y"], [("x", "y"), ("y", "x")])) == {"x", "y"}


def test_quick_search_adds_the_typed_block_at_the_cursor(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Tab)
    popup = view.quick_search
    assert popup is not None and popup.isVisible()
    QTest.keyClicks(popup.edit, "embed")
    assert popup.visible_entries()[0].type_id == "embedding"
    QTest.keyClick(popup.edit, Qt.Key.Key_Return)
    assert not popup.isVisible()
    assert [n.type for n in doc.graph.nodes.values()] == ["embedding"]
    assert view.selected_node_ids() == list(doc.graph.nodes)
    # a cell name finds the recurrent layer with that cell
    view.open_quick_search()
    QTest.keyClicks(view.quick_search.edit, "lstm")
    entry = view.quick_search.visible_entries()[0]
    assert entry.type_id == "rnn" and entry.params == {"cell": "lstm"}
    QTest.keyClick(view.quick_search.edit, Qt.Key.Key_Escape)
    assert len(doc.graph.nodes) == 1


def test_drop_from_the_palette_adds_the_block_where_dropped(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    mime = QMimeData()
    mime.setData(MIME_TYPE, json.dumps({"type": "rnn", "params": {"cell": "lstm"}}).encode())
    at = QPoint(300, 200)
    event = QDropEvent(QPointF(at), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    view.dropEvent(event)
    (node_id,) = doc.graph.nodes
    assert doc.graph.nodes[node_id].params == {"cell": "lstm"}
    item = view.graph_scene.nodes[node_id]
    assert item.sceneBoundingRect().contains(view.mapToScene(at))


def test_view_state_round_trips_and_fit_shows_everything(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    build_char_lm(view, doc)
    view.set_view_state({"zoom": 0.6, "center": [123.0, -45.0]})
    state = view.view_state()
    assert state["zoom"] == pytest.approx(0.6)
    assert state["center"][0] == pytest.approx(123.0, abs=2) and state["center"][1] == pytest.approx(-45.0, abs=2)
    view.set_view_state({"zoom": 2.0, "center": [0, 0]})
    view.set_view_state(state)
    assert view.view_state()["center"] == pytest.approx(state["center"], abs=2)
    view.set_view_state({"zoom": "broken"})  # a damaged file keeps the view
    assert view.view_state()["zoom"] == pytest.approx(0.6)
    view.fit_all()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(view.graph_scene.nodes_rect())


def test_wheel_zooms_around_the_cursor(qtbot, reg):
    from PySide6.QtGui import QWheelEvent
    doc, view = make_view(qtbot, reg)
    at = QPointF(200, 150)
    under = view.mapToScene(at.toPoint())
    event = QWheelEvent(at, QPointF(view.viewport().mapToGlobal(at.toPoint())), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    view.wheelEvent(event)
    assert view.zoom() > 1.3
    assert (view.mapToScene(at.toPoint()) - under).manhattanLength() < 3


def test_nodes_show_summaries_and_are_marked_with_their_problems(qtbot, reg):
    graph = Graph()
    graph.add_node(TASK_INPUT, id="input", pos=(0, 0))
    graph.add_node("rnn", {"cell": "lstm", "hidden_size": 256, "layers": 2}, id="rnn", pos=(220, 0))
    doc, view = make_view(qtbot, reg, graph)
    rnn = view.graph_scene.nodes["rnn"]
    assert rnn.summary == "LSTM · 256 · 2 layers"
    assert view.graph_scene.nodes["input"].summary == "char-lm · tokens"
    assert any("required input 'x'" in p for p in rnn.problems)
    assert not view.graph_scene.nodes["input"].problems  # "input" is also an English word in that problem
    assert doc.set_node_param("rnn", "layers", "1") is None
    assert rnn.summary == "LSTM · 256 · 1 layer"
    port_item = rnn.port("x", False)
    assert "vectors[T]" in view.graph_scene.port_tooltip(port_item)


def test_problems_mentioning_matches_node_ids_not_words():
    problems = ["node rnn: required input 'x' (vectors[T]) is not connected",
                "link input.tokens -> rnn.x: type mismatch, tokens[T] into vectors[T]",
                "rnn2.hidden_size: 0 is below the minimum 1",
                "the graph has a cycle through a, b; recurrence belongs inside recurrent blocks, not in links"]
    assert problems_mentioning("rnn", problems) == problems[:2]
    assert problems_mentioning("input", problems) == [problems[1]]
    assert problems_mentioning("rnn2", problems) == [problems[2]]
    assert problems_mentioning("b", problems) == [problems[3]]


def test_middle_drag_pans_and_keys_copy_paste(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    ids = build_char_lm(view, doc)
    vp = view.viewport()
    view.graph_scene.clearSelection()
    before = view.view_state()["center"]
    QTest.mousePress(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(400, 300))
    QTest.mouseMove(vp, QPoint(300, 250))
    QTest.mouseRelease(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(300, 250))
    after = view.view_state()["center"]
    assert after[0] == pytest.approx(before[0] + 100, abs=2) and after[1] == pytest.approx(before[1] + 50, abs=2)
    assert len(doc.graph.nodes) == 5 and not view.selected_node_ids()  # panning neither moves nor selects
    view.select_node(ids[2], center=False)
    view.setFocus()
    QTest.keySequence(view, "Ctrl+C")
    QTest.keySequence(view, "Ctrl+V")
    assert len(doc.graph.nodes) == 6 and view.selected_node_ids() != [ids[2]]
    QTest.keySequence(view, "Ctrl+A")
    assert len(view.selected_node_ids()) == 6


def test_changing_the_task_updates_task_nodes_and_flags_links(qtbot, reg):
    from workbench.core.project import TaskConfig as TC
    doc, view = make_view(qtbot, reg)
    ids = build_char_lm(view, doc)
    doc.project.task = TC("forecast")  # as a task change would do, then the document's signals
    doc.settingsChanged.emit("task")
    doc.graphChanged.emit()
    task_in = view.graph_scene.nodes[ids[0]]
    assert [(p.name, p.port_type) for p in task_in.outputs] == [("series", "values[T]")]
    assert task_in.summary == "forecast · series"
    stale = next(it for ln, it in view.graph_scene.link_items.items() if ln.src == ids[0])
    assert stale.problem  # the link from the old 'tokens' port is flagged, and still drawn
    assert task_in.problems


def test_theme_follows_the_palette(qtbot, reg):
    from PySide6.QtGui import QColor, QPalette
    doc, view = make_view(qtbot, reg)
    build_char_lm(view, doc)
    light = view.graph_scene.theme
    pal = QPalette(view.palette())
    pal.setColor(QPalette.ColorRole.Window, QColor("#2d2d30"))
    pal.setColor(QPalette.ColorRole.WindowText, QColor("#e6e6e6"))
    app = QApplication.instance()
    old = app.palette()
    try:
        app.setPalette(pal)
        qtbot.waitUntil(lambda: view.graph_scene.theme.dark)
        theme = view.graph_scene.theme
        assert theme.body.lightness() < 100 < theme.text.lightness()
        assert all(item.theme is theme for item in view.graph_scene.nodes.values())
    finally:
        app.setPalette(old)
    qtbot.waitUntil(lambda: not view.graph_scene.theme.dark)
    assert view.graph_scene.theme.body == light.body


def test_a_picked_up_input_dropped_on_another_output_is_refed_from_there(qtbot, reg):
    doc, view = make_view(qtbot, reg)
    ids = build_char_lm(view, doc)
    extra = view.add_block_at("dropout", QPointF(300, 260))
    count = doc.undo_stack.count()
    mouse_drag(view, port(view, ids[3], "x", False).anchor(), port(view, extra, "y", True).anchor())
    assert doc.graph.incoming(ids[3])["x"].src == extra
    assert doc.undo_stack.count() == count + 1
    doc.undo_stack.undo()
    assert doc.graph.incoming(ids[3])["x"].src == ids[2]
