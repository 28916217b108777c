"""The training dashboard on its own (pytest-qt, offscreen, no training): what it shows after another project is
opened, the progress text while paused, the step axes, empty plots, log-axis labels, legends and titles.

Runs are written into the project's history by hand (``project_with_run``), so every test knows the exact numbers
the plots must show, and none of them trains a model.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtGui import QImage, QPainter  # noqa: E402

from tests.helpers import small_project, with_train  # noqa: E402
from workbench.core.training.events import StepEvent  # noqa: E402
from workbench.gui.dashboard import TrainingDashboard  # noqa: E402
from workbench.gui.document import ProjectDocument  # noqa: E402
from workbench.core.runs import RunState  # noqa: E402
from workbench.gui.run_bridge import RunEnd, RunStart  # noqa: E402

LSTM_MATRICES = ("W_hi", "W_hf", "W_hg", "W_ho")
STEP_PANELS = ("loss_panel", "grad_panel", "group_panel", "sigma_panel", "metric_panel", "lr_panel", "speed_panel")



def add_run(project, *, cell: str = "rnn", steps: int = 20, seed: int = 0, layers: int = 1, status: str = "finished",
            planned: int | None = None, sample: str | None = None):
    """A run of ``steps`` steps in ``project``'s history, with every series the dashboard draws (random numbers
    from ``seed``: two runs with different seeds have different data under the same run id)."""
    rng = np.random.default_rng(seed)
    run = project.history.new_run({"cells": [cell] * layers, "train": {"steps": planned or steps, "epochs": 0,
                                                                       "clip_norm": 1.0}})
    for s in range(1, steps + 1):
        run.log("train/loss", s, 1.0 / s + rng.uniform(0, 0.2))
        run.log("train/epoch", s, 0)
        run.log("train/lr", s, 0.01)
        run.log("train/tokens_per_s", s, 15000 + rng.uniform(0, 2000))
        # gradient norms between 0.15 and 6: less than two decades, where a log axis labels its minor ticks
        run.log("train/grad_norm", s, rng.uniform(0.15, 6.0))
        run.log("train/grad_norm_clipped", s, rng.uniform(0.15, 1.0))
        for group in ("head", "rnn.0"):
            run.log(f"grad/{group}", s, rng.uniform(0.01, 2.0))
            run.log(f"grad_clipped/{group}", s, rng.uniform(0.01, 1.0))
    for s in range(5, steps + 1, 5):
        run.log("valid/loss", s, 0.5 + rng.uniform(0, 0.1))
        run.log("valid/mse", s, 0.2 + rng.uniform(0, 0.1))
        for layer in range(layers):
            for matrix in (LSTM_MATRICES if cell == "lstm" else ("W_hh",)):
                run.log(f"sigma/rnn.{layer}/{matrix}", s, rng.uniform(0.5, 3.0))
        run.gtt.append({"step": s, "layers": {f"rnn.{layer}": {"dLT_dh": list(rng.uniform(1e-6, 1.0, 12)),
                                                               "dL_dh": list(rng.uniform(1e-6, 1.0, 12))}
                                              for layer in range(layers)}})
    if sample is not None:
        run.samples.append({"step": steps, "text": sample})
    run.status = status
    return run


def project_with_run(reg, **kwargs):
    project = small_project(reg)
    add_run(project, **kwargs)
    return project


@pytest.fixture
def dashboard(qtbot, reg):
    """``dashboard(project)``: a shown dashboard about as wide as in the window at 1280 x 800 (two plot columns)."""

    def make(project):
        dash = TrainingDashboard(ProjectDocument(reg, project))
        qtbot.addWidget(dash)
        dash.resize(990, 700)
        dash.show()
        qtbot.waitExposed(dash)
        settle(qtbot, dash)
        return dash

    return make


def settle(qtbot, dash) -> None:
    """Wait until every pending redraw pass has run."""
    qtbot.waitUntil(lambda: not dash.plots._dirty and not dash.plots._redraw_timer.isActive(), timeout=5000)
    qtbot.wait(1)


def y_data(panel, key) -> np.ndarray:
    return np.asarray(panel.curves[key].yData, dtype=np.float64)


def x_range(panel) -> tuple[float, float]:
    lo, hi = panel.plot.vb.viewRange()[0]
    return float(lo), float(hi)


def tick_labels(axis) -> list[tuple[object, str]]:
    """``[(rect, text)]`` of the tick labels the axis draws at its current size and range."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        painter.setFont(axis.style["tickFont"] or painter.font())
        _axis, _ticks, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(rect, text) for rect, _flags, text in texts]


def step_event(step: int, *, total: int, eta: float = 17.0) -> StepEvent:
    metrics = {"train/loss": 0.5, "train/grad_norm": 1.0, "train/grad_norm_clipped": 1.0, "train/lr": 0.01,
               "train/tokens_per_s": 16000.0, "grad/rnn.0": 0.5, "grad_clipped/rnn.0": 0.5}
    return StepEvent(step=step, epoch=0, metrics=metrics, elapsed=1.0, progress=step / total, eta=eta)


def start_live_run(dash, project, *, planned: int) -> None:
    """What the window does when Train starts a run: the record goes into the history, then ``begin_run``."""
    run = project.history.new_run({"cells": ["rnn"], "train": {"steps": planned, "epochs": 0, "clip_norm": 1.0}})
    run.status = "running"
    dash.begin_run(RunStart(run_id=run.id, step=0, resumed=False, device="CPU (1 threads)", precision="fp32",
                            parameters=1234,
                            total=f"{planned} steps", notices=[], state=RunState(step=0, run=run)))


# ---- 1. another project ------------------------------------------------------------------------------------

def test_opening_another_project_with_the_same_run_id_redraws_every_plot_and_the_samples(dashboard, reg, qtbot):
    a = project_with_run(reg, cell="rnn", seed=1, sample="from the RNN project")
    b = project_with_run(reg, cell="lstm", seed=2, sample="from the LSTM project")
    run_b = b.history.current
    dash = dashboard(a)
    loss_a = y_data(dash.plots.loss_panel, "run-1:raw")

    # both runs are "run-1", finished at step 20: only the data differ
    dash.doc.replace_project(b, None)
    settle(qtbot, dash)
    assert dash.primary.settings["cells"] == ["lstm"]
    assert np.allclose(y_data(dash.plots.loss_panel, "run-1:raw"), run_b.series["train/loss"].value)
    assert not np.allclose(y_data(dash.plots.loss_panel, "run-1:raw"), loss_a)
    assert np.allclose(y_data(dash.plots.grad_panel, "run-1:before"), run_b.series["train/grad_norm"].value)
    assert np.allclose(y_data(dash.plots.group_panel, "rnn.0"), run_b.series["grad/rnn.0"].value)
    assert set(dash.plots.sigma_panel.curves) == {f"rnn.0/{m}" for m in LSTM_MATRICES}
    probe = run_b.gtt[-1]["layers"]["rnn.0"]["dLT_dh"]
    assert np.allclose(y_data(dash.plots.gtt_panel, "run-1:rnn.0"), probe)
    assert np.allclose(dash.plots.heat_panel.image.image[-1], np.log10(probe))
    text = dash.samples.toPlainText()
    assert "from the LSTM project" in text and "from the RNN project" not in text
    assert dash.run_item("run-1").text(1) == "lstm"

    # and back: the first project's samples, shown as soon as it is open (not only after a run ends)
    dash.doc.replace_project(a, None)
    settle(qtbot, dash)
    assert np.allclose(y_data(dash.plots.loss_panel, "run-1:raw"), loss_a)
    assert "from the RNN project" in dash.samples.toPlainText()


def test_a_project_without_runs_shows_empty_plots_no_samples_and_a_neutral_progress_bar(dashboard, reg, qtbot):
    a = project_with_run(reg, cell="lstm", seed=1, steps=600, sample="an old sample")
    dash = dashboard(a)
    # what a run that ended in this window leaves on the bar and the status line
    dash.status.setText("CPU (1 thread) · 16,420 tokens/s")
    dash.end_run(RunEnd(status="finished", message="", step=600, state=None))
    settle(qtbot, dash)
    assert "600" in dash.progress.format()

    dash.doc.replace_project(with_train(small_project(reg), steps=300), None)
    settle(qtbot, dash)
    assert dash.primary is None and dash.runs.topLevelItemCount() == 0
    for panel in dash.plots.panels:
        assert not panel.curves, panel.objectName()
    assert dash.plots.heat_panel.image.image is None
    assert dash.samples.toPlainText() == ""
    assert dash.progress.value() == 0 and dash.progress.format() == "not training"
    assert "tokens/s" not in dash.status.text()
    # and none of the old run's range: the step axes span the steps the new project plans, not the old 600
    for name in STEP_PANELS:
        lo, hi = x_range(getattr(dash.plots, name))
        assert lo <= 0 and 300 <= hi <= 310, (name, lo, hi)


def test_opening_a_project_shows_its_latest_run_on_the_progress_bar(dashboard, reg, qtbot):
    dash = dashboard(small_project(reg))
    assert dash.progress.format() == "not training"
    project = small_project(reg)
    add_run(project, steps=20, planned=800, status="stopped")
    dash.doc.replace_project(project, None)
    settle(qtbot, dash)
    assert dash.progress.format() == "run-1 stopped at step 20"
    assert dash.progress.value() == 25           # 20 of its 800 planned steps, in thousandths


# ---- 2. the progress text while paused -----------------------------------------------------------------------

def test_the_paused_progress_text_fits_on_one_line_without_a_time_left(dashboard, reg, qtbot):
    project = small_project(reg)
    dash = dashboard(project)
    start_live_run(dash, project, planned=200)
    dash.consume([("step", step_event(111, total=200))])
    assert "0:17 left" in dash.progress.format()

    dash.set_paused(True)
    shown = dash.progress.text()
    assert shown.startswith("paused") and "111" in shown
    assert "left" not in shown                  # nothing is running: no time-left estimate
    # one line that fits inside the bar (what the style draws is text(): elided when too long)
    assert "\n" not in shown
    assert dash.progress.fontMetrics().horizontalAdvance(shown) <= dash.progress.contentsRect().width()
    # events still arriving after the pause took effect do not bring the estimate back
    dash.consume([("step", step_event(112, total=200))])
    assert dash.progress.text().startswith("paused") and "left" not in dash.progress.text()

    dash.set_paused(False)
    dash.consume([("step", step_event(113, total=200))])
    assert not dash.progress.format().startswith("paused") and "left" in dash.progress.format()


def test_long_progress_text_is_elided_in_a_narrow_bar(dashboard, reg, qtbot):
    project = small_project(reg)
    dash = dashboard(project)
    start_live_run(dash, project, planned=123456)
    dash.progress.setFixedWidth(150)
    qtbot.wait(1)
    dash.consume([("step", step_event(111111, total=123456, eta=3600 * 7))])
    shown = dash.progress.text()
    assert shown.endswith("…") and dash.progress.fontMetrics().horizontalAdvance(shown) <= \
        dash.progress.contentsRect().width()
    assert dash.progress.toolTip().startswith("step 111111")        # the whole text is one hover away


# ---- 3. step axes fit the data, or the planned steps of the live run ----------------------------------------

def test_step_axes_fit_a_finished_run_and_overlays(dashboard, reg, qtbot):
    project = small_project(reg)
    add_run(project, steps=200, seed=1)
    add_run(project, steps=200, seed=2)
    dash = dashboard(project)
    for name in STEP_PANELS:
        lo, hi = x_range(getattr(dash.plots, name))
        assert lo <= 0 and 200 <= hi <= 210, (name, lo, hi)
    dash.set_overlay("run-1", True)
    settle(qtbot, dash)
    for name in ("loss_panel", "grad_panel"):
        lo, hi = x_range(getattr(dash.plots, name))
        assert 200 <= hi <= 210, (name, hi)

    # a longer overlaid run widens the axes to its last step; taking it off narrows them again
    add_run(project, steps=300, seed=3)
    dash.reload()                     # history changed (a run was added)
    settle(qtbot, dash)
    assert dash.primary.run_id == "run-3"
    assert 300 <= x_range(dash.plots.loss_panel)[1] <= 315
    dash.set_overlay("run-1", False)
    settle(qtbot, dash)
    assert 300 <= x_range(dash.plots.loss_panel)[1] <= 315


def test_step_axes_span_the_planned_steps_while_a_run_is_live(dashboard, reg, qtbot):
    project = small_project(reg)
    dash = dashboard(project)
    start_live_run(dash, project, planned=1000)
    dash.consume([("step", step_event(s, total=1000)) for s in range(1, 31)])
    settle(qtbot, dash)
    assert dash.plots.loss_panel.curves
    for name in ("loss_panel", "grad_panel", "group_panel", "lr_panel", "speed_panel"):
        lo, hi = x_range(getattr(dash.plots, name))
        assert lo <= 0 and 1000 <= hi <= 1050, (name, hi)


# ---- 4. empty plots have clean axes --------------------------------------------------------------------------

def test_empty_plots_have_plain_axes_and_say_there_is_no_data(dashboard, reg, qtbot):
    dash = dashboard(small_project(reg))
    for panel in dash.plots.panels:
        assert panel.empty_text.isVisible(), panel.objectName()
        for name in ("left", "bottom"):
            axis = panel.plot.getAxis(name)
            labels = [text for _rect, text in tick_labels(axis)]
            assert labels, (panel.objectName(), name)
            # no "0.500000000000000": short, plain numbers
            assert all(len(text) <= 6 for text in labels), (panel.objectName(), name, labels)
    # a singular value is never negative, and the line at 1 is in view
    lo, hi = dash.plots.sigma_panel.plot.vb.viewRange()[1]
    assert lo >= 0 and hi > 1


def test_the_singular_value_axis_starts_at_zero_with_data(dashboard, reg, qtbot):
    dash = dashboard(project_with_run(reg, cell="lstm", seed=4))
    assert not dash.plots.sigma_panel.empty_text.isVisible()
    lo, hi = dash.plots.sigma_panel.plot.vb.viewRange()[1]
    top = max(float(np.max(y_data(dash.plots.sigma_panel, k))) for k in dash.plots.sigma_panel.curves)
    assert lo >= 0 and hi >= top


# ---- 5. labels: log ticks, legends, titles, overlay names ----------------------------------------------------

def test_log_axis_labels_do_not_overlap(dashboard, reg, qtbot):
    dash = dashboard(project_with_run(reg, seed=5))
    axis = dash.plots.grad_panel.plot.getAxis("left")
    labels = tick_labels(axis)
    assert 2 <= len(labels) <= 6, [t for _r, t in labels]
    # the decades in view keep their labels, also when pyqtgraph lists them among the minor ticks
    assert "1" in {t for _r, t in labels}, [t for _r, t in labels]
    rects = [r for r, _t in labels]
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not a.intersects(b), [t for _r, t in labels]


def test_many_curves_keep_a_compact_legend(dashboard, reg, qtbot):
    dash = dashboard(project_with_run(reg, cell="lstm", layers=2, seed=6))
    panel = dash.plots.sigma_panel
    assert len(panel.curves) == 8
    boxes = list(panel.legend_entries.values())
    rows = {box.geometry().top() for box in boxes}
    assert len(rows) <= 2, f"the 8-entry legend takes {len(rows)} rows"
    assert panel.legend_row.height() < panel.height() / 4
    # each entry still says which matrix it is (the layer once, at the start of its row)
    assert {panel.series_name(k) for k in panel.curves} == {f"rnn.{i}/{m}" for i in range(2) for m in LSTM_MATRICES}


def test_titles_fit_or_are_elided_with_the_whole_title_in_the_tooltip(dashboard, reg, qtbot):
    project = small_project(reg)
    add_run(project, cell="lstm", layers=2, seed=1)
    add_run(project, cell="lstm", layers=2, seed=2)
    dash = dashboard(project)
    dash.set_overlay("run-1", True)
    settle(qtbot, dash)
    assert dash.plots.heat_run.isVisible() and dash.plots.heat_layer.isVisible()
    for panel in dash.plots.panels:
        title = panel.title
        full = title.text()
        shown = title.elided_text()
        assert shown == full or (shown.endswith("…") and full in title.toolTip()), (full, shown)
        assert title.fontMetrics().horizontalAdvance(shown) <= title.contentsRect().width()
    # at this (the default) size the two titles that were cut fit whole
    for panel in (dash.plots.group_panel, dash.plots.heat_panel):
        assert panel.title.elided_text() == panel.title.text(), panel.title.text()


def test_overlaid_runs_are_named_in_one_pattern(dashboard, reg, qtbot):
    project = small_project(reg)
    add_run(project, cell="lstm", seed=1)
    add_run(project, cell="lstm", seed=2)
    dash = dashboard(project)
    dash.set_overlay("run-1", True)
    settle(qtbot, dash)
    names = {panel: sorted(panel.series_name(k) for k in panel.legend_entries)
             for panel in (dash.plots.loss_panel, dash.plots.grad_panel, dash.plots.gtt_panel)}
    assert names[dash.plots.loss_panel] == ["run-1 (lstm) train", "run-1 (lstm) valid", "run-2 (lstm) train",
                                      "run-2 (lstm) valid"]
    assert names[dash.plots.grad_panel] == ["run-1 (lstm) before clipping", "run-2 (lstm) after clipping",
                                      "run-2 (lstm) before clipping"]
    assert names[dash.plots.gtt_panel] == ["run-1 (lstm) rnn.0", "run-2 (lstm) rnn.0"]
    pattern = re.compile(r"^run-\d \(lstm\) \S.*$")
    assert all(pattern.match(n) for ns in names.values() for n in ns)
    # one run alone: plain names, no run prefix
    dash.set_overlay("run-1", False)
    settle(qtbot, dash)
    assert sorted(dash.plots.grad_panel.series_name(k) for k in dash.plots.grad_panel.legend_entries) == \
        ["after clipping", "before clipping"]


def test_the_gradient_plot_reads_in_the_units_of_the_loss_that_is_clipped(dashboard, reg, qtbot):
    dash = dashboard(small_project(reg))
    for reduction, label in (("sum_over_time", "‖∇ Σₜ L‖"), ("sum", "‖∇ Σ L‖"), ("mean", "‖∇L‖")):
        project = small_project(reg)
        add_run(project, steps=5)
        project.history.current.settings["train"]["loss_reduction"] = reduction
        dash.doc.replace_project(project, None)
        settle(qtbot, dash)
        assert dash.plots.grad_panel.plot.getAxis("left").labelText == label
        assert "clip_norm" in dash.plots.grad_panel.title.toolTip()


def test_the_speed_text_follows_the_automatic_thread_count(dashboard, reg, qtbot):
    """Automatic threads give up a core another process keeps busy: the speed text says how many train now."""
    project = small_project(reg)
    dash = dashboard(project)
    start_live_run(dash, project, planned=200)
    first = step_event(1, total=200)
    first.threads = 2
    dash.consume([("step", first)])
    assert dash.status.text() == "16,000 tokens/s · CPU (2 threads) · fp32"
    later = step_event(2, total=200)
    later.threads = 1
    dash.consume([("step", later)])
    assert dash.status.text() == "16,000 tokens/s · CPU (1 thread) · fp32"
