"""Hidden units of every architecture, in the window (pytest-qt, offscreen): a trained encoder–decoder recorded over
its source and its output, with the attention map linked to the output step shown; a trained captioner over its
caption, beside its picture; unit search and the selection's matches over the whole validation split; and the last
recording's input and choices back after Save, Close and Open."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from tests.helpers import small_project  # noqa: E402
from workbench.core import recording  # noqa: E402
from workbench.core.settings import template_project  # noqa: E402
from workbench.gui.inspect_menu import show_hidden_units  # noqa: E402

S2S = {"hidden_size": "16", "embed_size": "8", "task.demo_train": "240", "task.demo_valid": "12",
       "task.demo_test": "4", "task.bleu_sentences": "0", "batch_size": "16", "eval_every": "0",
       "sample_every": "0", "probe_every": "0"}
CAPTIONS = {"hidden_size": "16", "embed_size": "8", "feature_size": "16", "task.shapes_train": "48",
            "task.shapes_valid": "6", "task.shapes_test": "2", "task.bleu_sentences": "0", "batch_size": "16",
            "eval_every": "0", "sample_every": "0", "probe_every": "0"}


def trained_project(reg, folder, template, settings, steps, name, decode=None):
    """A project of ``template`` trained for ``steps`` steps and saved; each test opens the file afresh."""
    from workbench.core.projectfile import project_plugins_used, save_project
    from workbench.core.training.trainer import Trainer
    project, _ = template_project(reg.template(template), settings, reg)
    if decode:
        project.decode.decoder, project.decode.params = decode
    trainer = Trainer(project, reg, base_dir=folder)
    trainer.setup()
    trainer.fit(steps=steps)
    trainer.checkpoint()
    path = folder / name
    save_project(project, path, plugins_used=project_plugins_used(project, reg))
    return path


@pytest.fixture(scope="module")
def seq2seq(reg, tmp_path_factory):
    return trained_project(reg, tmp_path_factory.mktemp("s2s"), "seq2seq-attention", S2S, 40, "dates.seqwb",
                           ("greedy", {"max_len": 16}))


@pytest.fixture(scope="module")
def captioner(reg, tmp_path_factory):
    return trained_project(reg, tmp_path_factory.mktemp("cap"), "captioning", CAPTIONS, 20, "shapes.seqwb")


def open_panel(make_window, reg, path, qtbot):
    from workbench.core.projectfile import load_project
    win = make_window(reg, load_project(path, registry=reg), str(path))
    panel = show_hidden_units(win)
    qtbot.waitUntil(lambda: not panel.jobs.pending("input-info"), timeout=60000)
    return win, panel


def record(panel, qtbot, *args):
    with qtbot.waitSignal(panel.recordingFinished, timeout=120000):
        assert panel.record(*args)
    return panel.recording


def click_cell(qtbot, view, row, column):
    """A left click on the centre of a cell of the attention map, as a person would."""
    image = view._image
    origin = image.scenePos()
    point = view.mapFromScene(origin.x() + (column + 0.5) * image.cell, origin.y() + (row + 0.5) * image.cell)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)


def test_a_trained_encoder_decoder_is_recorded_over_source_and_output_with_its_attention(make_window, reg, seq2seq,
                                                                                         qtbot):
    win, panel = open_panel(make_window, reg, seq2seq, qtbot)
    project = win.doc.project
    # the Input tab asks for a source sentence, with the validation examples and their references to choose from
    assert panel.input_info["kind"] == "source" and panel.context_inputs.isVisible()
    assert not panel.text_inputs.isVisible() and panel.source() == "example"
    assert panel.example_combo.count() == 12 + 4          # the validation examples, then the test ones
    source = panel.example_combo.itemText(3)
    panel.example_combo.setEditText(source)
    assert panel.reference_label.text() == f"reference: {panel.example_combo.itemData(3)}"

    rec = record(panel, qtbot)
    assert list(recording.parts(rec)) == ["source", "output"]
    assert rec["meta"]["prompt"] == source and rec["meta"]["decoder"] == "greedy"
    assert [panel.layer_combo.itemText(i) for i in range(panel.layer_combo.count())] == \
        ["encoder.0  ·  source", "decoder.0  ·  output"]
    assert panel.status.text().startswith(f"Recorded “{source}” → “{rec['meta']['output']}”")
    # the encoder over the source: the text view shows the source, the heatmap its positions
    S = len(panel.recorder.session.task(project, panel.base_dir()).encode(source))
    assert panel.part == "source" and panel.text_view.text() == source
    assert panel.heatmap.image_array().shape == (S, 16)
    assert panel.heatmap.trace.getAxis("bottom").labelText == "source position"
    # the decoder over its output, one step per output token
    panel.select("decoder.0", "f", 5)
    output = recording.parts(rec)["output"]
    T = len(output["tokens"])
    assert panel.part == "output" and panel.text_view.text() == output["text"]
    np.testing.assert_array_equal(panel.heatmap.image_array(), output["layers"]["decoder.0"]["f"])
    assert panel.heatmap.levels() == (0.0, 1.0) and panel.unit == 5

    # the attention map beside it: rows are output steps, the one shown is outlined
    pane = panel.context
    assert pane.isVisible() and pane.attention.isVisible() and not pane.picture.isVisible()
    assert pane.attention.matrix_shape() == (T, S)
    np.testing.assert_array_equal(pane.attention._weights, rec["attention"]["decoder"])
    assert source in pane.summary.text() and rec["meta"]["output"] in pane.summary.text()
    panel.text_view.positionClicked.emit(2)
    assert pane.attention.marked() == (2, -1)
    panel.heatmap.positionClicked.emit(T - 1)
    assert pane.attention.marked() == (T - 1, -1)
    # a click on a cell of the map shows that output step in the heatmap and the text view
    qtbot.waitUntil(lambda: pane.attention._image is not None)
    click_cell(qtbot, pane.attention, 1, S - 1)
    assert pane.attention.marked() == (1, S - 1) and panel.text_view._current == 1
    # the source side marks a column: the source position picked
    panel.select("encoder.0")
    panel.text_view.positionClicked.emit(4)
    assert panel.part == "source" and pane.attention.marked() == (-1, 4)

    # gate saturation covers both layers; unit search over the recorded text ranks the layers of both parts
    assert set(panel.saturation.plots) == {"i", "f", "g", "o"}
    assert {layer for layer, _ in panel.saturation.scatters} == {"encoder.0", "decoder.0"}
    rows = panel.run_search("regex:[0-9]", scope="text")
    assert rows and rows == recording.search_parts(rec, "regex:[0-9]", "f", registry=reg)


def test_a_trained_captioner_is_recorded_over_its_caption_beside_its_picture(make_window, reg, captioner, qtbot):
    win, panel = open_panel(make_window, reg, captioner, qtbot)
    assert panel.input_info["kind"] == "example" and panel.example_label.text() == "Example:"
    rec = record(panel, qtbot, "example", "4")
    assert list(recording.parts(rec)) == ["output"]
    words = recording.parts(rec)["output"]["labels"]
    assert panel.text_view.text() == " ".join(words) and panel.layer == "generator.0"
    assert panel.heatmap.image_array().shape == (len(words), 16)
    pane = panel.context
    assert pane.isVisible() and pane.picture.isVisible() and not pane.attention.isVisible()
    assert not pane.picture.pixmap().isNull()
    assert rec["image"].shape == (32, 32, 3)
    assert "Example <b>4</b>" in pane.summary.text() and "reference" in pane.summary.text()
    # the text view colours each word by the unit
    panel.set_unit(3)
    colours = panel.text_view.char_colors()
    assert colours[0] is not None and colours[len(words[0])] is None        # the space between two words


def test_unit_search_and_matches_run_over_the_whole_validation_split(make_window, reg, seq2seq, qtbot):
    win, panel = open_panel(make_window, reg, seq2seq, qtbot)
    project = win.doc.project
    record(panel, qtbot, "example", panel.example_combo.itemText(0))
    assert panel.search_scope() == "valid"
    panel.all_layers.setChecked(True)
    with qtbot.waitSignal(panel.searchFinished, timeout=120000) as answer:
        assert panel.run_search("regex:[A-Za-z]") == []          # the split is read in the background first
    rows = answer.args[0]
    corpus = panel.recorder.record_corpus(project, panel.base_dir(), quantity="h")
    assert rows == recording.search_parts(corpus, "regex:[A-Za-z]", "h", registry=reg)
    assert "12 validation examples" in panel.search_note.text()
    assert panel.status.text().startswith("Recorded "), "the reading's progress does not stay in the status line"
    assert panel.search_button.text() == "Find units" and not panel.progress.isVisible()
    assert panel.results.topLevelItemCount() == len(rows)
    # the next search is answered at once from what was read
    assert panel.run_search("regex:[0-9]") == recording.search_parts(corpus, "regex:[0-9]", "h", registry=reg)

    # the selection's matches: in the recorded text (underlined) and over the split (listed)
    panel.select("encoder.0", "h")
    unit = rows[0][1] if rows[0][0] == "encoder.0" else 0
    panel.threshold_spin.setValue(-5.0)          # every unit is on everywhere: each example is one match
    panel.margin_spin.setValue(0)
    panel.select_span(0, 2)
    assert panel.corpus_matches() is not None
    part = recording.parts(corpus)["source"]
    units, _ = panel.span_result()
    assert unit in units
    assert panel.corpus_matches() == recording.matching_spans(part, "encoder.0", "h", units, -5.0,
                                                              panel._min_length())
    assert len(panel.corpus_matches()) == 12 and panel.matches_list.count() == 12
    assert panel.matches_list.item(5).text().startswith("example    5  «")
    # a double-click on another example records it
    with qtbot.waitSignal(panel.recordingFinished, timeout=120000):
        panel._on_match_activated(panel.matches_list.item(5))
    assert panel.recording["meta"]["prompt"] == part["text"].split("\n")[5]


def test_the_last_recording_and_its_choices_come_back_on_reopen(make_window, reg, tmp_path, qtbot):
    from workbench.core.projectfile import load_project, save_project
    project = small_project(reg, hidden_size=12, embed_size=8)
    path = tmp_path / "lm.seqwb"
    save_project(project, path)
    win = make_window(reg, load_project(path, registry=reg), str(path))
    panel = show_hidden_units(win)
    text = "def f(x):\n    return 'a' + \"b\"  # why\n"
    panel.text_edit.setPlainText(text)
    record(panel, qtbot)
    assert win.doc.is_modified(), "what was recorded is part of the project now"
    panel.select("rnn.1", "c", 7)
    panel.set_search_scope("text")
    panel.run_search("quotes")
    kept = win.doc.project.views["hidden_units"]
    assert kept["recorded"] == {"source": "text", "value": text, "weights": "current"}
    assert kept["view"]["layer"] == "rnn.1" and kept["view"]["unit"] == 7 and kept["view"]["feature"] == "quotes"
    assert win.files.save_to(str(path)) and not win.doc.is_modified()
    # choosing another unit is kept too, but is no reason to ask to save
    panel.set_unit(9)
    assert not win.doc.is_modified() and win.doc.project.views["hidden_units"]["view"]["unit"] == 9
    panel.set_unit(7)

    win.files.close_project()
    assert panel.recording is None and panel.text_edit.toPlainText() == ""
    with qtbot.waitSignal(panel.recordingFinished, timeout=60000):
        assert win.files.open_path(str(path))
    assert panel.recording["text"] == text and panel.text_edit.toPlainText() == text and panel.source() == "text"
    assert (panel.layer, panel.quantity, panel.unit) == ("rnn.1", "c", 7)
    assert panel.feature_combo.currentData() == "quotes" and panel.search_scope() == "text"
    assert not win.doc.is_modified(), "recording the same again after opening changes nothing"

    # a file written before the project kept any of this opens with the defaults
    plain = small_project(reg, hidden_size=12, embed_size=8)
    old = tmp_path / "old.seqwb"
    save_project(plain, old)
    assert "views" not in plain.to_json()
    assert win.files.open_path(str(old))
    assert panel.recording is None and panel.source() == "valid" and panel.length_spin.value() == 2000
