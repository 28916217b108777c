"""Looking inside, in the window: recording in the worker, heatmap, text view, unit search on a planted unit,
hypothesis selection, gate saturation, export (pytest-qt, offscreen, a tiny char-LM)."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from tests.helpers import small_project  # noqa: E402
from workbench.core import features, recording  # noqa: E402
from workbench.gui import inspect_colors  # noqa: E402
from workbench.gui.inspect_menu import show_hidden_units  # noqa: E402

# single quotes only, no comments or escapes: a unit that flips on every quote follows "inside quotes" exactly
QUOTED = "x = 'abc' + f(y, 'de fg')\nprint('hello world', z)\n" * 6
TEXT = "def f(x):\n    return 'a' + \"b\"  # why\n"
H = 16



@pytest.fixture(scope="module")
def trained(reg, tmp_path_factory):
    """A char-LM (2 LSTM layers of 16) trained for 8 steps, saved next to nothing (stdlib corpus)."""
    from workbench.core.projectfile import project_plugins_used, save_project
    from workbench.core.training.trainer import Trainer
    folder = tmp_path_factory.mktemp("inspect-gui")
    project = small_project(reg, hidden_size=H, embed_size=8, eval_batches=1)
    trainer = Trainer(project, reg, base_dir=folder)
    trainer.setup()
    trainer.fit(steps=8)
    trainer.checkpoint()
    path = folder / "tiny.seqwb"
    save_project(project, path, plugins_used=project_plugins_used(project, reg))
    return project, str(path)


def plant_quote_unit(project, unit: int = 3):
    """The same project with weights changed so that unit ``unit`` of rnn.0 is a flip-flop on quote characters:
    its cell state becomes +1 at an opening quote and -1 at a closing one, and stays put in between."""
    w = {k: v.clone() for k, v in project.checkpoint.weights.items()}
    quote = project.vocab.index("'")
    emb = w["blocks.embed.embed.weight"]
    emb[:, 0] = 0.0
    emb[quote, 0] = 1.0                   # embedding dimension 0: "this is a quote"
    prefix = "blocks.rnn.cells.0.rnn."
    w_ih, w_hh = w[prefix + "weight_ih_l0"], w[prefix + "weight_hh_l0"]
    b_ih, b_hh = w[prefix + "bias_ih_l0"], w[prefix + "bias_hh_l0"]
    i, f, g, o = (k * H + unit for k in range(4))          # torch's gate order
    for row in (i, f, g, o):
        w_ih[row].zero_()
        w_hh[row].zero_()
        b_hh[row] = 0.0
    w_ih[i, 0], b_ih[i] = 20.0, -10.0     # write only at a quote
    w_ih[f, 0], b_ih[f] = -20.0, 10.0     # forget only at a quote, keep otherwise
    w_hh[g, unit], b_ih[g] = -10.0, 2.0   # write the opposite of what is there: a toggle
    b_ih[o] = 10.0                        # always show it
    copy = dataclasses.replace(project, checkpoint=dataclasses.replace(project.checkpoint, weights=w))
    return copy


def record(panel, qtbot, source, value):
    with qtbot.waitSignal(panel.recordingFinished, timeout=60000):
        assert panel.record(source, value)
    assert not panel.is_recording()
    return panel.recording


def expected_colors(values, levels):
    table = inspect_colors.lut(palette=None)
    return [tuple(table[i]) for i in inspect_colors.indices(values, levels)]


def painted(view, n):
    return [(c.red(), c.green(), c.blue()) for c in view.char_colors()[:n]]


def test_the_tab_is_built_on_demand_and_records_in_a_worker_thread(make_window, reg, trained, qtbot):
    project, path = trained
    win = make_window(reg, project, path)
    view = win.views["hiddenUnits"]
    assert view.widget is None                       # nothing built (nor pyqtgraph imported) yet
    assert view.action in win.inspect_menu.actions() and view.action.shortcut().toString() == "Ctrl+3"
    assert win.tabs.tabText(win.tabs.indexOf(view.page)) == "Hidden units"
    view.action.trigger()
    panel = view.widget
    assert panel is not None and win.tabs.currentWidget() is view.page
    assert panel.weights_combo.currentData() == "current" and "step 8" in panel.weights_combo.currentText()

    threads = []
    original = panel.recorder.record

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    panel.recorder.record = spy
    rec = record(panel, qtbot, "text", TEXT)
    assert threads and threads[0] is not threading.main_thread()
    T = len(TEXT)

    # the heatmap is one image [T, H]: time along x, units along y, on fixed symmetric levels
    image = panel.heatmap.image_array()
    assert image.shape == (T, H) and panel.layer == "rnn.0" and panel.quantity == "h"
    np.testing.assert_array_equal(image, rec["layers"]["rnn.0"]["h"])
    assert panel.heatmap.levels() == (-1.0, 1.0)
    panel.select("rnn.1", "c")
    assert panel.heatmap.image_array().shape == (T, H)
    lo, hi = panel.heatmap.levels()
    assert lo == -hi and hi >= np.percentile(np.abs(rec["layers"]["rnn.1"]["c"]), 99.5)
    np.testing.assert_array_equal(panel.heatmap.image_array(), recording.recording_arrays(rec)["rnn.1/c"])

    # the text view's colours follow the chosen unit
    view = panel.text_view
    assert view.text() == TEXT
    for unit in (2, 5):
        panel.set_unit(unit)
        values = rec["layers"]["rnn.1"]["c"][:, unit]
        assert painted(view, T) == expected_colors(values, (lo, hi))
    assert painted(view, T) != expected_colors(rec["layers"]["rnn.1"]["c"][:, 2], (lo, hi))
    # keyboard: Down / J next unit, Up / K previous
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Down)
    qtbot.keyClick(view, Qt.Key.Key_J)
    assert panel.unit == 7 and panel.unit_spin.value() == 7
    qtbot.keyClick(view, Qt.Key.Key_K)
    assert panel.unit == 6 and "unit 6 of rnn.1 c" in panel.text_caption.text()

    # hovering the heatmap names unit, position, character and value
    assert panel.heatmap.describe(3, 6).startswith("unit 6   position 3   ␣ (space)   value ")
    assert panel.heatmap.describe(4, 6).startswith("unit 6   position 4   “f”   value ")


def test_unit_search_ranks_the_planted_unit_first_and_clicking_it_selects_it(make_window, reg, trained, qtbot):
    project, path = trained
    win = make_window(reg, plant_quote_unit(project), path)
    panel = show_hidden_units(win)
    rec = record(panel, qtbot, "text", QUOTED)
    h3 = rec["layers"]["rnn.0"]["h"][:, 3]
    quotes = features.compute_track("quotes", QUOTED, reg)
    assert h3[quotes > 0].min() > 0.5 and h3[quotes == 0].max() < 0.1

    panel.all_layers.setChecked(False)
    panel.select("rnn.0", "h", 0)
    panel.set_search_scope("text")          # the planted unit follows the quotes of the recorded text
    rows = panel.run_search("quotes")
    assert rows[0][:2] == ("rnn.0", 3) and rows[0][2] > 0.95
    item = panel.results.topLevelItem(0)
    assert [item.text(c) for c in (1, 2)] == ["rnn.0", "3"]
    rect = panel.results.visualItemRect(item)
    qtbot.mouseClick(panel.results.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.unit == 3 and panel.layer == "rnn.0" and panel.unit_spin.value() == 3
    assert panel.heatmap.unit_band.getRegion() == (3, 4)
    assert painted(panel.text_view, len(QUOTED)) == expected_colors(h3, (-1.0, 1.0))
    # inside quotes red (the positive end), after a string blue (before the first one, 0: the centre colour)
    first = QUOTED.index("'")
    inside, outside = panel.text_view.char_color(first + 1), panel.text_view.char_color(QUOTED.index("+"))
    assert inside.red() > inside.blue() and outside.blue() > outside.red()
    # over every layer the planted unit still leads, and a regex track works too
    panel.all_layers.setChecked(True)
    assert panel.run_search("quotes")[0][:2] == ("rnn.0", 3)
    assert panel.run_search("regex:'[a-z ]*'")[0][:2] == ("rnn.0", 3)
    # a feature that is constant over the text says so
    assert panel.run_search("comment") == [] and "constant" in panel.search_note.text()

    # hypothesis selection: the inside of the first string -> unit 3, and every other string lights up
    start = QUOTED.index("'")
    end = QUOTED.index("'", start + 1)
    panel.select_span(start, end)
    units, matches = panel.span_result()
    assert 3 in units and panel.span_units.count() == len(units)
    assert (start, end) in matches and panel.matches_list.count() == len(matches)
    spans = recording.matching_spans(rec, "rnn.0", "h", [3], panel.threshold_spin.value(), min_length=1)
    bounds = np.flatnonzero(np.diff(np.concatenate([[0], quotes, [0]])))
    assert spans == list(zip(bounds[0::2].tolist(), bounds[1::2].tolist()))


def test_saturation_scatter_export_and_cancel(make_window, reg, trained, qtbot, tmp_path):
    project, path = trained
    win = make_window(reg, project, path)
    panel = show_hidden_units(win)
    rec = record(panel, qtbot, "text", TEXT * 2)
    sat = panel.saturation
    assert set(sat.plots) == {"i", "f", "g", "o"}
    assert "tanh" in sat.plots["g"].titleLabel.text
    for (layer, gate), scatter in sat.scatters.items():
        x, y = scatter.getData()
        want = recording.gate_saturation(rec)[layer][gate]
        np.testing.assert_allclose(x, want["left"])
        np.testing.assert_allclose(y, want["right"])
    sat.unitChosen.emit("rnn.1", "f", 5)
    assert (panel.layer, panel.quantity, panel.unit) == ("rnn.1", "f", 5)
    assert panel.heatmap.levels() == (0.0, 1.0)

    for widget, name in ((panel.heatmap, "heat"), (panel.text_view, "text"), (panel.saturation, "sat")):
        for ext in ("png", "svg"):
            out = tmp_path / f"{name}.{ext}"
            panel.export_view(widget, str(out))
            assert out.stat().st_size > 500
    # NPZ and CSV are written in the worker; the NPZ is the recording
    for kind in ("npz", "csv"):
        with qtbot.waitSignal(panel.exportFinished, timeout=30000):
            getattr(panel, f"export_{kind}")(str(tmp_path / f"r.{kind}"))
    assert (tmp_path / "r.csv").read_text().count("\n") > 2 * len(TEXT)   # rows, and newlines inside tokens
    back = recording.load_npz(tmp_path / "r.npz")
    for key, want in recording.recording_arrays(rec).items():
        if key != "meta":
            np.testing.assert_array_equal(recording.recording_arrays(back)[key], want, err_msg=key)
    panel.set_recording(back)
    np.testing.assert_array_equal(panel.heatmap.image_array(), rec["layers"]["rnn.1"]["f"])

    # a long recording can be cancelled; the panel is ready again afterwards
    assert panel.record("valid", 900)
    panel.cancel()
    qtbot.waitUntil(lambda: not panel.is_recording(), timeout=30000)
    assert panel.record_button.text() == "Record" and "cancelled" in panel.status.text()
    assert panel.recording is back          # what was shown stays


def contrast(a, b) -> float:
    """WCAG contrast ratio of two colours."""
    def luminance(c):
        def channel(v):
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_status_line_keeps_one_readable_colour(make_window, reg, qtbot):
    """Every message used to be muted again from the colour before, fading to #E9E9E9 on #EFEFEF."""
    from PySide6.QtGui import QPalette
    win = make_window(reg)
    panel = show_hidden_units(win)
    status = panel.status

    def color():
        return status.palette().color(QPalette.ColorRole.WindowText)

    panel._say("Loading the model and the data…")
    first = color()
    background = status.palette().color(QPalette.ColorRole.Window)
    assert contrast(first, background) >= 4.5
    for i in range(12):
        panel._say(f"message {i}")
        assert color() == first
    panel._say("Could not record: no", error=True)
    assert color() != first
    panel._say("Recorded 2,000 characters (2,000 steps) at current weights, step 200 in 0.7 s.")
    assert color() == first, "after an error the next message is muted again, not blended from the red"


def test_before_recording_the_plots_are_empty_and_plain(make_window, reg, trained, qtbot):
    """No -0.4..0.4 and "(x0.001)" on empty axes: a plain range, and a line that says to press Record; after
    File ▸ Open the previous project's recording is gone from the plots too."""
    project, path = trained
    win = make_window(reg, project, path)
    panel = show_hidden_units(win)
    heat = panel.heatmap

    def assert_empty():
        assert heat.plot.getViewBox().viewRange() == [[0, 100], [0, 10]]
        for plot in (heat.plot, heat.trace):
            for name in ("left", "bottom"):
                assert "(x" not in plot.getAxis(name).labelString(), (name, plot.getAxis(name).labelString())
        assert heat.image_array() is None and not heat.unit_band.isVisible()
        assert heat.placeholder.isVisible() and "press Record" in heat.placeholder.toPlainText()
        assert not panel.saturation.plots and "Record" in panel.saturation.note.text()

    assert_empty()
    record(panel, qtbot, "text", TEXT)
    assert heat.image_array() is not None and not heat.placeholder.isVisible() and heat.unit_band.isVisible()
    assert heat.plot.getViewBox().viewRange()[0] == [0, len(TEXT)]
    assert heat.trace.getViewBox().viewRange()[0] == [0, len(TEXT)], "the unit's trace spans the text too"
    assert "(x" not in heat.trace.getAxis("bottom").labelString()
    win.doc.replace_project(small_project(reg), None)
    assert_empty()


def test_the_status_line_says_when_a_recording_ran_in_reduced_precision():
    """A project that trains in bfloat16 is recorded in it (workbench.core.recording.recording_precision): the
    status line says so, and says nothing for float32."""
    from workbench.gui.inspect_units import HiddenUnitsPanel
    rec = {"text": "abc", "tokens": [1, 2, 3], "layers": {},
           "meta": {"trained": True, "weights": "current", "step": 5, "seconds": 0.05, "precision": "bf16"}}
    assert HiddenUnitsPanel._recorded_text(rec) == ("Recorded 3 characters (3 steps) at current weights, step 5, in "
                                                    "bf16 autocast (the project's precision) in under 0.1 s.")
    rec["meta"]["precision"] = "fp32"
    assert HiddenUnitsPanel._recorded_text(rec) == ("Recorded 3 characters (3 steps) at current weights, step 5 in "
                                                    "under 0.1 s.")
