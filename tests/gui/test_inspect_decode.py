"""The decoding view (pytest-qt, offscreen): the beam tree drawn for width 3, its highlighted path against the
decoder's own output, what-if decoding from a node and from typed text, the attention map, both checkpoints, trees
written by the command line, and the time to draw 10 beams x 50 steps."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("pytestqt")

import torch  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from workbench.core.decode import run_decoder  # noqa: E402
from workbench.core.projectfile import save_project  # noqa: E402
from workbench.core.search import DecodeSession, layout_tree, prefix_of, write_document  # noqa: E402
from workbench.core.settings import template_project  # noqa: E402
from workbench.core.training.trainer import Trainer  # noqa: E402
from workbench.gui.decode_views import SearchTreeView  # noqa: E402
from workbench.gui.document import ProjectDocument  # noqa: E402
from workbench.gui.inspect_decode import DecodeInspector  # noqa: E402
from workbench.testing.search_trees import synthetic_document  # noqa: E402

TINY = {"task.demo_train": "300", "task.demo_valid": "16", "task.demo_test": "16", "task.bleu_sentences": "4",
        "hidden_size": "16", "embed_size": "8", "batch_size": "16", "eval_every": "20", "sample_every": "0",
        "probe_every": "0", "eval_batches": "1", "threads": "1"}
BEAM3 = {"width": 3, "n_best": 3, "alpha": 0.6, "max_len": 16, "topk": 5}
WAIT = 60_000



@pytest.fixture(scope="module")
def trained(reg, tmp_path_factory):
    """A tiny date-normalisation seq2seq with attention: 60 steps, validated every 20 (so it has best weights)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("dates")
    project, _ = template_project(reg.template("seq2seq-attention"), TINY, reg)
    trainer = Trainer(project, reg, base_dir=folder)
    trainer.fit(steps=60)
    trainer.checkpoint()
    path = folder / "dates.seqwb"
    save_project(project, path)
    torch.set_num_threads(before)
    return project, path


@pytest.fixture
def view(qtbot, reg, trained):
    project, path = trained
    doc = ProjectDocument(reg, project, str(path))
    v = DecodeInspector(doc, reg)
    qtbot.addWidget(v)
    v.resize(1300, 800)
    with qtbot.waitSignal(v.infoReady, timeout=WAIT):
        v.show()
    yield v
    v.shutdown()


def decode(qtbot, view):
    with qtbot.waitSignal(view.decoded, timeout=WAIT) as blocker:
        view.decode()
    return blocker.args[0]


def source_of(view):
    return view.input_combo.itemText(1)        # a validation source (the task's examples)


def test_beam_tree_for_width_3_and_its_highlighted_path(qtbot, reg, trained, view):
    assert view._info["kind"] == "source" and view.input_combo.count() >= 4
    view.set_decoder("beam", BEAM3)
    source = source_of(view)
    view.set_input(source)
    docs = decode(qtbot, view)
    assert len(docs) == 1
    pane = view.panes[0]
    doc = pane.tree.document()
    nodes = doc["tree"]
    steps = max(n["step"] for n in nodes) + 1
    # the root, then the top 2K = 6 candidates of every step, each drawn once
    assert len(nodes) == 1 + 6 * steps
    assert len(pane.tree.node_items) == len(nodes)
    # the decoder, asked directly, gives the path the view highlights
    session = DecodeSession(reg)
    loaded = session.models.load(trained[0], trained[1].parent)
    direct = run_decoder(reg.decoder("beam"), loaded.model, loaded.task, BEAM3, prompt=source)
    path = pane.tree.highlighted_path()
    assert [nodes[n]["token"] for n in path if nodes[n]["label"] != "<eos>"] == direct.tokens
    assert path[-1] == doc["alternatives"][0]["node"]
    assert (nodes[path[-1]]["label"] == "<eos>") == doc["alternatives"][0]["finished"]
    assert all(pane.tree.node_items[n].kind == "best" for n in path)
    # the n-best list beside it, best first
    assert pane.nbest.topLevelItemCount() == 3
    assert pane.nbest.topLevelItem(0).text(1).startswith(loaded.task.decode(direct.tokens))
    # hovering a node tells the top-k next tokens at that point
    tip = pane.tree.node_items[path[2]].toolTip()
    assert "next token, top 5" in tip and tip.count("<tr>") >= 5
    top = nodes[path[2]]["topk"][0]
    assert f"<code>{top['label']}</code>" in tip


def test_forcing_a_prefix_redecodes_from_it(qtbot, view):
    view.set_decoder("beam", BEAM3)
    view.set_input(source_of(view))
    decode(qtbot, view)
    pane = view.panes[0]
    before = pane.tree.document()
    # a pruned candidate early in the tree: what if the model had said that?
    lay = pane.tree.layout_model()
    nid = next(n for n, k in sorted(lay.kind.items()) if k == "pruned" and before["tree"][n]["label"] != "<eos>")
    item = pane.tree.node_items[nid]
    pane.tree.centerOn(item)
    point = pane.tree.mapFromScene(item.sceneBoundingRect().center())
    with qtbot.waitSignal(view.decoded, timeout=WAIT):
        qtbot.mouseDClick(pane.tree.viewport(), Qt.MouseButton.LeftButton, pos=point)
    after = pane.tree.document()
    prefix = prefix_of(before, nid)
    assert after["prefix"] == prefix and after["tokens"][:len(prefix)] == prefix
    forced = [n for n in after["tree"] if n["status"] == "forced"]
    assert [n["token"] for n in forced] == prefix
    assert all(pane.tree.node_items[n["id"]].kind == "forced" for n in forced)
    assert view.prefix_edit.text() == after["prefix_text"] and "prefix" in pane.header.text()
    # the forced tokens score what the first search gave them
    assert forced[-1]["score"] == pytest.approx(before["tree"][nid]["score"], abs=1e-4)
    # a typed prefix goes the same way
    view.set_prefix_text("19")
    decode(qtbot, view)
    typed = pane.tree.document()
    assert typed["prefix_text"] == "19" and typed["text"].startswith("19")
    view.set_prefix_text("")
    decode(qtbot, view)
    assert not pane.tree.document()["prefix"]


def test_attention_view_follows_the_selected_hypothesis(qtbot, view):
    view.set_decoder("beam", BEAM3)
    source = source_of(view)
    view.set_input(source)
    with qtbot.waitSignal(view.attentionShown, timeout=WAIT):
        decode(qtbot, view)
    pane = view.panes[0]
    doc = pane.tree.document()
    best = doc["alternatives"][0]
    assert pane.attention.matrix_shape() == (len(best["tokens"]) + int(best["finished"]), len(source))
    data = pane.attention.data()
    assert (data["target"][-1] == "<eos>") == best["finished"] and data["source"] == list(source)
    assert abs(float(data["weights"].sum(1).mean()) - 1.0) < 1e-5
    # another hypothesis from the n-best list: its map follows
    other = doc["alternatives"][1]
    with qtbot.waitSignal(view.attentionShown, timeout=WAIT):
        pane.nbest.setCurrentItem(pane.nbest.topLevelItem(1))
    assert pane.attention.matrix_shape() == (len(other["tokens"]) + int(other["finished"]), len(source))
    assert "look" in pane.attention.cell_tooltip(0, 0)


def test_opening_another_project_clears_the_previous_decode(qtbot, reg, view):
    """File ▸ Open after a decode: the header, the tree, the n-best list, the attention map and its title, the prefix
    and the status all start over (they used to keep "Current weights (step 600) · beam, width 5 · prefix …")."""
    view.set_decoder("beam", BEAM3)
    view.set_input(source_of(view))
    view.set_prefix_text("19")
    with qtbot.waitSignal(view.attentionShown, timeout=WAIT):
        decode(qtbot, view)
    pane = view.panes[0]
    assert "prefix" in pane.header.text() and pane.attention.data() is not None
    assert pane.attention_title.text().startswith("Attention for") and view.status.text()

    char_lm, _ = template_project(reg.template("char-lm"), {"task.max_chars": "20000"}, reg)
    with qtbot.waitSignal(view.infoReady, timeout=WAIT) as info:
        view.doc.replace_project(char_lm, None)
    for p, title in zip(view.panes, ("Current weights", "Best weights")):
        assert p.header.text() == title
        assert p.tree.document() is None and p.nbest.topLevelItemCount() == 0
        assert p.attention.data() is None and p.attention_title.text() == "Attention"
    assert view.prefix_edit.text() == "" and view.status.text() == ""
    assert view.decode_button.isEnabled()
    assert view.decoder_id() == char_lm.decode.decoder
    # the input examples are the new task's (the dates' answer, had it still been on its way, is dropped)
    assert info.args[0]["kind"] == "prime" and view.input_label.text() == info.args[0]["label"]


def test_pruned_candidates_hide_and_subtrees_fold(qtbot, view):
    view.set_decoder("beam", BEAM3)
    view.set_input(source_of(view))
    decode(qtbot, view)
    tree = view.panes[0].tree
    nodes = tree.document()["tree"]
    n_pruned = sum(1 for n in nodes if n["status"] == "pruned")
    view.show_pruned.setChecked(False)
    assert len(tree.node_items) == len(nodes) - n_pruned
    assert tree.highlighted_path() and all(n in tree.node_items for n in tree.highlighted_path())
    view.show_pruned.setChecked(True)
    full = tree.highlighted_path()
    mid = full[1]
    tree.toggle_fold(mid)
    assert tree.layout_model().hidden[mid] > 0 and full[-1] not in tree.node_items
    assert tree.highlighted_path() == full[:2]
    tree.toggle_fold(mid)
    assert len(tree.node_items) == len(nodes)


def test_current_and_best_weights_side_by_side(qtbot, view, trained):
    project, _ = trained
    assert view.compare_box.isEnabled(), "the tiny run validated, so it has best weights"
    view.set_decoder("beam", BEAM3)
    view.set_input(source_of(view))
    view.set_compare(True)
    docs = decode(qtbot, view)
    assert [d["weights"] for d in docs] == ["current", "best"]
    assert view.panes[1].isVisible() and docs[1]["step"] == project.checkpoint.trainer_state["best"]["step"]
    assert "Best weights" in view.panes[1].header.text()
    view.set_compare(False)
    assert not view.panes[1].isVisible()


def test_a_tree_written_by_the_command_line_opens_unchanged(qtbot, reg, trained, view, tmp_path):
    project, path = trained
    doc = DecodeSession(reg).decode(project, path.parent, "beam", {"width": 5}, source_of(view))
    file = tmp_path / "tree.json"
    write_document(doc, file)
    view.open_tree(str(file))
    shown = view.panes[0].tree.document()
    assert {k: v for k, v in shown.items() if k != "opened_from"} == json.loads(file.read_text())
    assert len(view.panes[0].tree.node_items) == len(doc["tree"])
    assert view.panes[0].tree.layout_model().to_json() == layout_tree(doc).to_json()


def test_ten_beams_by_fifty_steps_draws_fast_and_stays_compact(qtbot):
    tree = SearchTreeView()
    qtbot.addWidget(tree)
    tree.resize(1000, 600)
    tree.show()
    doc = synthetic_document(10, 50)
    assert len(doc["tree"]) == 1 + 20 * 50
    t0 = time.perf_counter()
    tree.set_document(doc)
    qtbot.wait(1)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    tree.set_options(show_pruned=False)
    fold = time.perf_counter() - t0
    tree.set_options(show_pruned=True)
    lay = tree.layout_model()
    assert lay.rows <= 20 and lay.columns == 51, "one column per step, at most 2K rows"
    t0 = time.perf_counter()
    tree.viewport().repaint()
    paint = time.perf_counter() - t0
    print(f"\n10 beams x 50 steps ({len(doc['tree'])} nodes): draw {first * 1000:.0f} ms, "
          f"relayout without pruned {fold * 1000:.0f} ms, repaint {paint * 1000:.0f} ms")
    assert first < 3.0 and fold < 3.0 and paint < 2.0


def test_the_window_has_a_decoding_tab_and_menu_entry(make_window, reg):
    win = make_window(reg)
    decoding = win.views["decoding"]
    assert win.tabs.tabText(win.tabs.indexOf(decoding.page)) == "Decoding"
    assert decoding.widget is None, "nothing is built before the tab is first shown"
    inspect = next(a.menu() for a in win.menuBar().actions() if a.text().replace("&", "") == "Inspect")
    assert decoding.action in inspect.actions() and not decoding.action.shortcut().isEmpty()
    decoding.action.trigger()
    assert win.tabs.currentWidget() is decoding.page and isinstance(decoding.widget, DecodeInspector)
    decoding.widget.shutdown()
