"""The inspector: forms generated from parameter dataclasses; every accepted change is one undo command and
updates the canvas; a refused value shows its reason next to the field and changes nothing."""

from dataclasses import dataclass
from typing import Literal

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QToolButton  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from workbench.gui.forms import ParamsForm  # noqa: E402
from workbench.hookspecs import hookimpl  # noqa: E402
from workbench.plugin_system import BlockSpec, PortSpec, discover, param  # noqa: E402



def select(win, qtbot, node_id):
    win.view.select_node(node_id, center=False)
    win.inspector.flush()
    assert win.inspector.node_id == node_id
    return win.inspector.form("node")


def test_editing_a_spin_box_changes_the_node_and_the_canvas_and_undoes(make_window, reg, qtbot):
    win = make_window(reg)
    form = select(win, qtbot, "rnn")
    spin = form.editor("hidden_size")
    assert isinstance(spin, QSpinBox) and (spin.minimum(), spin.maximum()) == (1, 65536)
    assert "units per layer" in spin.toolTip()
    item = win.view.graph_scene.nodes["rnn"]
    assert "256" in item.summary
    spin.setValue(128)                       # keyboard tracking is off: this is the commit (Enter / focus out)
    assert win.doc.graph.nodes["rnn"].params["hidden_size"] == 128
    assert "128" in item.summary and "256" not in item.summary
    assert win.doc.undo_stack.count() == 1 and win.isWindowModified()
    win.act_undo.trigger()
    assert win.doc.graph.nodes["rnn"].params["hidden_size"] == 256
    assert spin.value() == 256 and "256" in item.summary
    win.act_redo.trigger()
    assert spin.value() == 128


def test_combo_boxes_for_choices_and_for_cells(make_window, reg, qtbot):
    win = make_window(reg)
    form = select(win, qtbot, "rnn")
    cells = form.editor("cell")
    assert isinstance(cells, QComboBox)
    assert {cells.itemData(i) for i in range(cells.count())} == set(reg.items["cell"])   # every registered cell
    direction = form.editor("direction")
    assert [direction.itemText(i) for i in range(direction.count())] == ["forward", "bidirectional"]
    direction.setCurrentIndex(1)
    assert win.doc.graph.nodes["rnn"].params["direction"] == "bidirectional"
    other = next(i for i in range(cells.count()) if cells.itemData(i) != "lstm")
    cells.setCurrentIndex(other)
    assert win.doc.graph.nodes["rnn"].params["cell"] == cells.itemData(other)
    assert win.doc.undo_stack.count() == 2
    residual = form.editor("residual")
    assert isinstance(residual, QCheckBox)
    residual.setChecked(True)
    assert win.doc.graph.nodes["rnn"].params["residual"] is True
    dropout = form.editor("dropout")
    assert isinstance(dropout, QDoubleSpinBox) and dropout.maximum() == pytest.approx(0.99)


def test_an_invalid_value_is_refused_with_a_message_and_changes_nothing(make_window, reg, qtbot):
    win = make_window(reg)
    train = win.inspector.form("train")
    spin = train.editor("bptt_k2")
    before = win.doc.project.train
    spin.setValue(500)                        # above chunk_len (100): TrainConfig.validate refuses it
    assert "must not exceed chunk_len" in train.message("bptt_k2")
    assert train.rows["bptt_k2"].message.isVisibleTo(win.inspector)
    assert win.doc.project.train == before and win.doc.undo_stack.count() == 0
    assert spin.value() == before.bptt_k2     # the editor shows the value that is really set
    spin.setValue(50)
    assert train.message("bptt_k2") == "" and win.doc.project.train.bptt_k2 == 50


def test_project_settings_with_nothing_selected(make_window, reg, qtbot):
    win = make_window(reg)
    insp = win.inspector
    assert set(insp.sections) == {"project", "task", "data", "train", "decode"}
    corpus_row = insp.form("task").rows["corpus"]
    assert isinstance(corpus_row.editor, QLineEdit)
    assert corpus_row.container.findChild(QToolButton) is not None        # ui="path": a browse button
    lr = insp.form("train").editor("lr")
    assert lr.text() == "0.002"                                           # not 0.002000000000
    lr.setValue(0.01)
    assert win.doc.project.train.lr == pytest.approx(0.01)
    optimizer = insp.form("train").editor("optimizer")
    optimizer.setCurrentIndex(optimizer.findData("sgd"))
    assert win.doc.project.train.optimizer == "sgd"
    name = insp.form("project").editor("name")
    name.setText("My model")
    name.editingFinished.emit()
    assert win.doc.project.name == "My model" and win.windowTitle().startswith("My model")
    # another decoder: its own parameters appear
    decoder = insp.form("decode").editor("decoder")
    decoder.setCurrentIndex(decoder.findData("beam"))
    qtbot.waitUntil(lambda: "width" in insp.form("decoder").rows)
    insp.form("decoder").editor("width").setValue(7)
    assert win.doc.project.decode.decoder == "beam" and win.doc.project.decode.params["width"] == 7
    assert win.doc.undo_stack.count() == 5
    for _ in range(5):
        win.act_undo.trigger()
    qtbot.waitUntil(lambda: "temperature" in insp.form("decoder").rows)
    assert win.doc.project.train.lr == pytest.approx(0.002) and win.doc.project.name == "Character LM"
    assert insp.form("train").editor("lr").value() == pytest.approx(0.002)


def test_sections_fold_and_the_state_round_trips(make_window, reg, qtbot):
    win = make_window(reg)
    insp = win.inspector
    insp.sections["train"].header.click()
    assert not insp.sections["train"].body.isVisibleTo(insp)
    state = insp.state()
    assert state == {"collapsed": ["train"], "node": None}
    insp.sections["train"].header.click()
    insp.set_state({"collapsed": ["task", "decode"]})
    assert not insp.sections["task"].is_expanded() and insp.sections["train"].is_expanded()


def test_task_nodes_explain_where_they_come_from(make_window, reg, qtbot):
    win = make_window(reg)
    win.view.select_node("input", center=False)
    win.inspector.flush()
    assert "ports come from the task" in win.inspector.title.text()
    assert "tokens" in win.inspector._ports_label.text()
    # the task's settings and its data are edited on its nodes too
    assert {"task", "data", "node.ports"} <= set(win.inspector.sections)
    assert "corpus" in win.inspector.form("task").rows


# ---- a plugin gets a form without writing any Qt -------------------------------------------------------------

@dataclass
class FancyParams:
    width: int = param(8, min=2, max=64, help="how wide")
    rate: float = param(0.5, min=0.0, max=1.0, help="a rate")
    mode: Literal["a", "b", "c"] = param("a", help="which mode")
    enabled: bool = param(True, help="on or off")
    label: str = param("x", help="a label")
    source: str = param("", ui="path", help="a file")
    cell: str = param("lstm", ui="cell", help="a cell")
    limit: int | None = param(None, help="optional limit")

    def validate(self):
        if self.label.startswith("!"):
            raise ValueError("a label must not start with '!'")


class FancyPlugin:
    @hookimpl
    def seqwb_architectures(self):
        return [BlockSpec(id="fancy", title="Fancy block", version="1.0", params=FancyParams,
                          factory="nowhere:Fancy", category="other",
                          inputs=(PortSpec("x", "vectors[T]"),), outputs=(PortSpec("y", "vectors[T]"),))]


def test_a_plugin_params_dataclass_gets_a_complete_form(make_window, qtbot):
    import workbench_plugins.architectures as arch
    import workbench_plugins.cells as cells
    import workbench_plugins.decoders as decoders
    import workbench_plugins.tasks as tasks
    import workbench_plugins.templates as templates
    reg = discover(entry_points=False, extra=[("cells", cells), ("architectures", arch), ("tasks", tasks),
                                              ("decoders", decoders), ("templates", templates),
                                              ("fancy", FancyPlugin())])
    assert not reg.failures, reg.failures
    win = make_window(reg)
    node = win.doc.add_node("fancy", (0.0, 300.0))
    form = select(win, qtbot, node)
    kinds = {name: type(row.editor) for name, row in form.rows.items()}
    assert kinds == {"width": QSpinBox, "rate": type(form.editor("rate")), "mode": QComboBox, "enabled": QCheckBox,
                     "label": QLineEdit, "source": QLineEdit, "cell": QComboBox, "limit": QLineEdit}
    assert isinstance(form.editor("rate"), QDoubleSpinBox)
    assert (form.editor("width").minimum(), form.editor("width").maximum()) == (2, 64)
    for name, help_text in (("width", "how wide"), ("mode", "which mode"), ("source", "a file")):
        assert help_text in form.editor(name).toolTip()
    # a refused text stays in the field, with the reason under it, so it can be fixed
    label = form.editor("label")
    label.setText("!bad")
    label.editingFinished.emit()
    assert "must not start with" in form.message("label")
    assert label.text() == "!bad" and win.doc.graph.nodes[node].params.get("label", "x") == "x"
    label.setText("good")
    label.editingFinished.emit()
    assert form.message("label") == "" and win.doc.graph.nodes[node].params["label"] == "good"
    # X | None: an empty line is "none", a number is parsed
    limit = form.editor("limit")
    limit.setText("12")
    limit.editingFinished.emit()
    assert win.doc.graph.nodes[node].params["limit"] == 12
    limit.setText("twelve")
    limit.editingFinished.emit()
    assert "expected int" in form.message("limit") and win.doc.graph.nodes[node].params["limit"] == 12


def test_params_form_alone_reports_each_commit(qtbot, reg):
    seen = []
    form = ParamsForm(FancyParams, {"width": 4}, lambda n, v: seen.append((n, v)) or None, registry=reg)
    qtbot.addWidget(form)
    assert form.editor("width").value() == 4 and form.editor("mode").currentData() == "a"
    form.editor("mode").setCurrentIndex(2)
    form.editor("enabled").setChecked(False)
    form.set_values({"width": 10})          # showing model values never commits
    assert seen == [("mode", "c"), ("enabled", False)]


def test_the_chosen_cells_parameters_have_their_own_form(make_window, reg, qtbot):
    win = make_window(reg)
    select(win, qtbot, "rnn")
    cell_form = win.inspector.form("node.cell")
    assert cell_form is not None
    bias = cell_form.editor("forget_bias")
    assert isinstance(bias, QDoubleSpinBox) and bias.value() == pytest.approx(1.0)
    bias.setValue(2.0)
    assert win.doc.graph.nodes["rnn"].params["cell.forget_bias"] == pytest.approx(2.0)
    win.act_undo.trigger()
    assert "cell.forget_bias" not in win.doc.graph.nodes["rnn"].params
    assert bias.value() == pytest.approx(1.0)
    # another cell: the form is rebuilt for that cell's parameters
    win.doc.set_node_param("rnn", "cell", "irnn")
    win.inspector.flush()
    irnn_form = win.inspector.form("node.cell")
    assert irnn_form.editor("identity_scale") is not None
