"""Input that does what people expect (issue 16, point 4) and the walk-through's smaller findings (point 6), each
with its test (pytest-qt, offscreen): the wheel over fields and plots, Ctrl+Z in an inspector field, and twelve
things a first user tripped on."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QImage, QPalette  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from tests.helpers import small_project  # noqa: E402
from workbench.gui.plots import HeatmapPanel, PlotPanel, spaced_marks  # noqa: E402
from workbench.gui.run_settings import ProgressLine  # noqa: E402




def wheel(widget, notches: int = 1, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Turn the wheel over the middle of ``widget`` as a mouse does (a spontaneous event from the window system,
    which Qt hands on to the parents when the widget does not take it)."""
    window = widget.window()
    pos = widget.mapTo(window, widget.rect().center())
    for _ in range(notches):
        QTest.wheelEvent(window.windowHandle(), QPointF(pos), QPoint(0, -120), QPoint(0, 0), modifiers)
    QApplication.processEvents()


# ---- point 4: the wheel, Ctrl+Z --------------------------------------------------------------------------------

def test_the_wheel_over_an_inspector_field_scrolls_and_changes_nothing_until_it_has_focus(window, reg, qtbot):
    win = window(reg)
    scroll = win.inspector.scroll.verticalScrollBar()
    batch = win.inspector.form("train").editor("batch_size")
    win.inspector.scroll.ensureWidgetVisible(batch)
    qtbot.wait(10)
    before, at = win.doc.project.train.batch_size, scroll.value()
    wheel(batch, 3)
    assert batch.value() == before == win.doc.project.train.batch_size      # not 16 -> 13
    assert scroll.value() > at and win.doc.undo_stack.count() == 0          # the inspector scrolled
    optimizer = win.inspector.form("train").editor("optimizer")
    win.inspector.scroll.ensureWidgetVisible(optimizer)
    wheel(optimizer, 2)
    assert win.doc.project.train.optimizer == "adam"
    # a field the user picked takes the wheel
    win.inspector.scroll.ensureWidgetVisible(batch)
    batch.setFocus()
    qtbot.waitUntil(batch.hasFocus)
    wheel(batch, 1)
    assert win.doc.project.train.batch_size == before - 1


def test_the_wheel_over_a_dashboard_plot_scrolls_the_page_and_zooms_with_ctrl_or_after_a_click(window, reg,
                                                                                                qtbot):
    win = window(reg)
    dash = win.ensure_dashboard()
    win.show_dashboard()
    plots = dash.plots
    panel = plots.sigma_panel
    panel.set_curve("a", np.arange(50.0), np.linspace(0.5, 1.5, 50), panel.colors["text"])
    plots.ensureWidgetVisible(panel.widget)
    qtbot.wait(20)
    page = plots.verticalScrollBar()
    assert page.maximum() > 0
    page.setValue(0)
    target = plots.grad_panel if plots.grad_panel.widget.isVisible() else panel
    target.set_curve("b", np.arange(50.0), np.linspace(1, 2, 50), target.colors["text"])
    qtbot.wait(20)
    view = target.plot.vb.viewRange()
    wheel(target.widget.viewport(), 2)
    assert page.value() > 0                                   # the page scrolled
    assert target.plot.vb.viewRange() == view                 # the plot did not zoom
    plots.ensureWidgetVisible(target.widget)
    qtbot.wait(20)
    view = target.plot.vb.viewRange()
    wheel(target.widget.viewport(), 1, Qt.KeyboardModifier.ControlModifier)
    assert target.plot.vb.viewRange() != view                 # Ctrl+wheel zooms
    # a click in the plot first: then the plain wheel zooms it
    win.activateWindow()
    qtbot.waitActive(win)
    QTest.mouseClick(target.widget.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     target.widget.viewport().rect().center())
    qtbot.waitUntil(target.widget.hasFocus)
    view, at = target.plot.vb.viewRange(), page.value()
    wheel(target.widget.viewport(), 1)
    assert target.plot.vb.viewRange() != view and page.value() == at


def test_ctrl_z_in_an_inspector_field_undoes_the_projects_edits(window, reg, qtbot):
    win = window(reg)
    win.activateWindow()
    qtbot.waitActive(win)
    win.inspector.flush()
    lr = win.inspector.form("train").editor("lr")
    win.inspector.scroll.ensureWidgetVisible(lr)
    lr.setFocus()
    qtbot.waitUntil(lr.hasFocus)
    lr.lineEdit().selectAll()
    QTest.keyClicks(lr, "0.05")
    QTest.keyClick(lr, Qt.Key.Key_Return)
    assert win.doc.project.train.lr == pytest.approx(0.05), (lr.text(), lr.hasFocus())
    assert win.doc.set_node_param("rnn", "layers", 3) is None
    # the field's text is committed: Ctrl+Z is the project's undo, the field shows what it undid
    QTest.keyClick(lr, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.doc.graph.nodes["rnn"].params["layers"] == 2
    QTest.keyClick(lr, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.doc.project.train.lr == pytest.approx(0.002) and lr.value() == pytest.approx(0.002)
    QTest.keyClick(lr, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert win.doc.project.train.lr == pytest.approx(0.05)
    # typing not committed yet is undone in the field first, the project untouched
    QTest.keyClicks(lr, "7")
    QTest.keyClick(lr, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.doc.project.train.lr == pytest.approx(0.05) and not lr.text().endswith("7")


# ---- point 6: the walk-through's findings --------------------------------------------------------------------

def test_finding_ports_text_is_rendered_not_shown_as_tags(window, reg, qtbot):
    win = window(reg)
    assert win.doc.add_node("linear", (0.0, 300.0))
    win.view.select_node("linear1", center=False)
    win.inspector.flush()
    label = win.inspector._ports_label
    assert label.textFormat() == Qt.TextFormat.RichText
    assert "<i>not connected</i>" in label.text() and "&lt;i&gt;" not in label.text()


def test_finding_markdown_backticks_in_help_read_as_code(window, reg, qtbot):
    from workbench.gui.forms import field_tooltip
    from workbench.schema.params import field_info
    win = window(reg)
    win.doc.set_task("forecast")
    win.inspector.flush()
    notes = [w.text() for w in win.inspector.findChildren(type(win.inspector.title)) if "horizon" in w.text()]
    assert notes and all("`" not in t for t in notes) and any("<code>horizon</code>" in t for t in notes)
    assert "`" not in field_tooltip(next(iter(field_info(reg.task("forecast").params))))
    beam = reg.decoder("beam")
    tab = win.views["decoding"].build()
    tab.set_decoder("beam")
    assert "<code>width</code>" in tab.decoder_help.text() and "`" not in tab.decoder_help.text() \
        and "`" in beam.description


def test_finding_epoch_labels_keep_apart_on_a_small_corpus(qtbot):
    panel = PlotPanel("Loss", "loss")
    qtbot.addWidget(panel)
    panel.resize(500, 250)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_x_extent(1000)              # the planned run; the corpus is an epoch every 3 steps
    panel.set_curve("a", np.arange(60.0), np.ones(60), panel.colors["text"])
    starts = [3.0 * k for k in range(20)]
    kept = spaced_marks(panel, starts)
    (x0, x1), width = panel.plot.vb.viewRange()[0], panel.plot.vb.width()
    pixels = [starts[k] * width / (x1 - x0) for k in kept]
    assert kept[0] == 0 and len(kept) < len(starts)
    assert all(b - a >= 26 for a, b in zip(pixels, pixels[1:]))


def test_finding_auto_layout_fits_the_graph_in_the_view(window, reg, qtbot):
    win = window(reg)
    win.view.set_zoom(3.0)
    win.view.centerOn(0, 0)
    win.act_layout.trigger()
    visible = win.view.mapToScene(win.view.viewport().rect()).boundingRect()
    for item in win.view.graph_scene.nodes.values():
        assert visible.contains(item.sceneBoundingRect())


def test_finding_the_graph_changed_banner_goes_when_the_run_ends(window, reg, qtbot):
    win = window(reg, small_project(reg, steps=15, hidden_size=16, batch_size=4, chunk_len=16,
                                    **{"task.max_chars": 20000, "eval_every": 0, "probe_every": 0,
                                       "sample_every": 0, "threads": 1}))
    win.runs.act_train.trigger()
    assert win.doc.set_node_param("rnn", "hidden_size", 12) is None
    qtbot.waitUntil(lambda: win.dashboard.banner_kind == "notice", timeout=20000)
    qtbot.waitUntil(lambda: win.bridge.state == "idle", timeout=60000)
    assert win.dashboard.banner_kind == "" and not win.dashboard.banner.isVisible()


def test_finding_the_log_is_about_one_project(window, reg, qtbot):
    win = window(reg)
    win.log("run-1: started at step 0")
    win.files.replace(small_project(reg), None, "new")
    text = win.log_view.toPlainText()
    assert "run-1" not in text and "Character LM" in text


def test_finding_a_name_nobody_chose_follows_the_task_and_the_file(window, reg, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog
    win = window(reg)
    assert win.doc.has_automatic_name()
    win.doc.set_task("sentiment")
    assert win.doc.project.name == "Sentiment classification" and "Sentiment classification" in win.windowTitle()
    win.act_undo.trigger()
    assert win.doc.project.name == "Character LM"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(tmp_path / "mine"), "")))
    assert win.files.save()
    assert win.doc.project.name == "mine" and win.windowTitle().startswith("mine — mine.seqwb")
    # a name the user gave stays, whatever the task
    assert win.doc.set_setting("name", "name", "My model") is None
    win.doc.set_task("word-lm")
    assert win.doc.project.name == "My model"


def test_finding_progress_text_is_one_colour_over_the_bar(qtbot):
    bar = ProgressLine()
    qtbot.addWidget(bar)
    bar.resize(360, 24)
    bar.setRange(0, 100)
    bar.setValue(50)
    bar.setFormat("step 500 / 1000 · epoch 3 · 0:17 left")
    image = bar.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    text_color = bar.palette().color(QPalette.ColorRole.WindowText)
    highlighted = bar.palette().color(QPalette.ColorRole.HighlightedText)
    y = image.height() // 2
    left = [QColor(image.pixel(x, y)) for x in range(90, 175)]       # over the filled chunk
    right = [QColor(image.pixel(x, y)) for x in range(185, 270)]     # over the empty groove

    def near(c, d):
        return abs(c.red() - d.red()) + abs(c.green() - d.green()) + abs(c.blue() - d.blue()) < 60

    # the text's own colour on both halves; over the chunk, never the style's highlighted-text colour (which it
    # had for the part of the text over the chunk)
    assert any(near(c, text_color) for c in left) and any(near(c, text_color) for c in right)
    assert not any(near(c, highlighted) for c in left)


def test_finding_one_gradient_probe_is_one_row_of_the_run_not_a_band(qtbot):
    panel = HeatmapPanel("Gradient through time", bar_label="log10 norm")
    qtbot.addWidget(panel)
    panel.resize(500, 300)
    panel.show()
    panel.set_x_extent(1000)
    panel.set_rows(np.full((1, 40), -3.0), np.array([100]))
    panel.plot.enableAutoRange()
    qtbot.wait(10)
    (y0, y1) = panel.plot.vb.viewRange()[1]
    row = panel.image.mapRectToParent(panel.image.boundingRect())
    assert y0 <= 0 and y1 >= 1000 and row.height() <= 0.15 * (y1 - y0)


def test_finding_palette_names_are_not_cut_at_the_default_width(window, reg, qtbot):
    win = window(reg)
    tree = win.palette_widget.tree
    qtbot.wait(10)
    for g in range(tree.topLevelItemCount()):
        group = tree.topLevelItem(g)
        for c in range(group.childCount()):
            item = group.child(c)
            rect = tree.visualItemRect(item)
            font = item.font(0)
            from PySide6.QtGui import QFontMetrics
            need = QFontMetrics(font).horizontalAdvance(item.text(0))
            assert rect.left() + need <= tree.viewport().width(), item.text(0)


def test_finding_a_refused_link_message_stays_inside_the_canvas(window, reg, qtbot):
    win = window(reg)
    view, scene = win.view, win.view.graph_scene
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    scene.show_message("type mismatch: rnn.y gives vectors[T] (a sequence of feature vectors) but head.x takes "
                       "something else entirely, which is why this link was refused",
                       QPointF(visible.right() - 5, visible.bottom() - 5))
    bubble = scene._bubble
    top_left = view.mapFromScene(bubble.pos())
    shown = bubble.rect.translated(QPointF(top_left))
    assert view.viewport().rect().contains(shown.toRect())


def test_finding_docks_a_tab_has_no_use_for_step_aside(window, reg, qtbot, isolated_settings):
    win = window(reg)
    docks = (win.palette_dock, win.inspector_dock, win.problems_dock, win.log_dock)
    assert all(d.isVisible() for d in docks if d is not win.log_dock)
    win.show_dashboard()
    assert not win.palette_dock.isVisible() and not win.problems_dock.isVisible()
    assert win.inspector_dock.isVisible()                     # the training settings
    win.views["decoding"].show()
    assert not win.inspector_dock.isVisible() and not win.palette_dock.isVisible()
    # the layout saved on this tab is the user's, with the docks open
    win.save_window_state()
    win.tabs.setCurrentIndex(0)
    assert win.palette_dock.isVisible() and win.inspector_dock.isVisible() and win.problems_dock.isVisible()
    assert not win.problems_dock.visibleRegion().isEmpty()          # in front of the Log it is tabbed with
    # a dock the user closed stays closed
    win.palette_dock.close()
    win.show_dashboard()
    win.tabs.setCurrentIndex(0)
    assert not win.palette_dock.isVisible()
    again = window(reg)
    assert again.palette_dock.isVisible() and again.inspector_dock.isVisible()
