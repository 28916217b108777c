"""The example third-party plugin (examples/seqwb-plugin-example) in the window: its cell in the palette and the
inspector, its feature track in unit search, all of it in the plugin manager.  The plugin module is imported from
its sources and registered like an entry point (tests/test_example_plugin.py installs it for real with pip)."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from workbench.gui.plugin_manager import PluginManagerDialog, plugin_rows  # noqa: E402
from workbench.plugin_system import discover  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seqwb-plugin-example"
NS = "seqwb-plugin-example."      # the example's ids are namespaced by its distribution


@pytest.fixture(scope="module")
def reg():
    sys.path.insert(0, str(EXAMPLE))
    try:
        import seqwb_plugin_example.plugin as example
        registry = discover(extra=[("example", example)])
    finally:
        sys.path.remove(str(EXAMPLE))
    assert not [f for f in registry.failures if f.entry_point == "example"], registry.failures
    return registry


def test_palette_and_inspector_offer_the_indrnn(make_window, reg, qtbot):
    win = make_window(reg)
    palette = win.palette_widget
    palette.search.setText("indrnn")
    found = palette.visible_entries()
    assert [(e.type_id, e.params) for e in found] == [("rnn", {"cell": NS + "indrnn"})]

    win.view.select_node("rnn", center=False)
    win.inspector.flush()
    cells = win.inspector.form("node").editor("cell")
    index = cells.findData(NS + "indrnn")
    assert index >= 0 and cells.itemText(index).startswith("IndRNN")
    cells.setCurrentIndex(index)
    assert win.doc.graph.nodes["rnn"].params["cell"] == NS + "indrnn"


def test_unit_search_lists_the_plugin_feature_track(make_window, reg, qtbot):
    win = make_window(reg)
    win.views["hiddenUnits"].action.trigger()
    combo = win.views["hiddenUnits"].widget.feature_combo
    names = [combo.itemData(i) for i in range(combo.count())]
    assert NS + "running_parity" in names and "quotes" in names
    assert combo.itemText(names.index(NS + "running_parity")) == "Running parity of 1s"


def test_plugin_manager_lists_every_contribution(qtbot, reg):
    rows = {r["entry_point"]: r for r in plugin_rows(reg)}
    contributed = {kind: [s.id for s in specs] for kind, specs in rows["example"]["contributions"].items()}
    assert contributed == {
        "cell": [NS + "indrnn"], "architecture": [NS + "layer-norm"], "decoder": [NS + "min-p"],
        "task": [NS + t for t in ("parity", "majority", "echo", "reverse", "mean")],
        "template": [NS + t for t in ("parity-indrnn", "majority-gru", "echo-gru", "reverse-attention", "mean-gru")],
        "feature_track": [NS + "running_parity"]}
    assert rows["example"]["ok"] and rows["example"]["notes"] == []        # it declares SEQWB_API
    dialog = PluginManagerDialog(reg)
    qtbot.addWidget(dialog)
    item = next(dialog.tree.topLevelItem(i) for i in range(dialog.tree.topLevelItemCount())
                if dialog.tree.topLevelItem(i).text(0) == "example")
    groups = [item.child(i).text(0) for i in range(item.childCount())]
    assert "feature tracks (1)" in groups and "cells (1)" in groups
