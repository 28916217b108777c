"""Runs across files in the training dashboard (pytest-qt, offscreen): runs of other project files overlaid
read-only on the loss, gradient-norm and gradient-through-time plots, the runs filter, the wall-clock x axis, all of
it kept in the project; and the forecasting task's predicted-vs-actual plot with the naive forecast as a baseline."""

from __future__ import annotations

import hashlib

import numpy as np
import pyqtgraph as pg
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from tests.gui.test_dashboard import add_run, dashboard, settle, y_data  # noqa: E402,F401
from tests.helpers import small_project  # noqa: E402
from workbench.core.projectfile import load_project, save_project  # noqa: E402
from workbench.core.training.events import WALL_TIME  # noqa: E402
from workbench.gui.dashboard import TrainingDashboard  # noqa: E402
from workbench.gui.document import ProjectDocument  # noqa: E402


def timed_run(project, *, cell, seed, seconds_per_step, started="2026-03-01T10:00:00+00:00", steps=20):
    run = add_run(project, cell=cell, seed=seed, steps=steps)
    run.started = started
    for s in [1, *range(5, steps + 1, 5)]:
        run.log(WALL_TIME, s, s * seconds_per_step)
    return run


def other_file(reg, tmp_path, name="other.seqwb"):
    """A project file with two LSTM runs, the second 2 s a step."""
    project = small_project(reg)
    timed_run(project, cell="lstm", seed=11, seconds_per_step=1.0)
    timed_run(project, cell="lstm", seed=12, seconds_per_step=2.0)
    path = tmp_path / name
    save_project(project, path)
    return project, path


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_files(qtbot, dash):
    qtbot.waitUntil(lambda: not dash.files_jobs.pending(), timeout=30000)
    settle(qtbot, dash)


def test_runs_of_another_file_are_overlaid_read_only_and_kept_with_the_project(dashboard, reg, tmp_path, qtbot):
    other, other_path = other_file(reg, tmp_path)
    before = digest(other_path)
    project = small_project(reg)
    timed_run(project, cell="rnn", seed=1, seconds_per_step=0.5)
    path = tmp_path / "mine.seqwb"
    save_project(project, path)
    doc_project = load_project(path, registry=reg)
    dash = TrainingDashboard(ProjectDocument(reg, doc_project, str(path)))
    qtbot.addWidget(dash)
    dash.resize(990, 760)
    dash.show()
    qtbot.waitExposed(dash)
    dash.add_other_files([str(other_path)])
    wait_files(qtbot, dash)

    # the file's row, its runs under it, unticked
    group = dash.runs.topLevelItem(dash.runs.topLevelItemCount() - 1)
    assert group.text(0) == f"other.seqwb · {other.name}" and group.childCount() == 2
    run2 = group.child(0)
    assert run2.text(0) == "run-2" and run2.text(1) == "lstm" and run2.checkState(0) == Qt.CheckState.Unchecked
    run2.setCheckState(0, Qt.CheckState.Checked)
    settle(qtbot, dash)
    key = "other.seqwb/run-2"
    assert key in dash.overlays
    plots = dash.plots
    want = other.history.runs[1]
    np.testing.assert_allclose(y_data(plots.loss_panel, f"{key}:valid"), want.series["valid/loss"].value)
    np.testing.assert_allclose(y_data(plots.grad_panel, f"{key}:before"), want.series["train/grad_norm"].value)
    assert f"{key}:rnn.0" in plots.gtt_panel.curves
    assert [plots.heat_run.itemText(i) for i in range(plots.heat_run.count())] == ["run-1", "other.seqwb: run-2"]
    assert plots.loss_panel.series_name(f"{key}:train") == "other.seqwb: run-2 (lstm) train"
    # another colour than the project's run-1, the same in the list and on the plots
    assert plots.color(dash.overlays[key]) != plots.color(dash.primary)
    assert plots.loss_panel.curves[f"{key}:train"].opts["pen"].color() == plots.color(dash.overlays[key])
    # read-only: another file's run cannot be deleted, and the file is never written
    dash.runs.clearSelection()
    run2.setSelected(True)
    assert not dash.delete_button.isEnabled() and dash.remove_file_button.isEnabled()
    assert dash.selected_run_ids() == []
    assert digest(other_path) == before

    # the filter hides the runs it does not match, from the list and from the plots; the run shown stays
    dash.filter_edit.setText("gru|rnn")
    settle(qtbot, dash)
    assert run2.isHidden() and group.isHidden() and not dash.run_item("run-1").isHidden()
    assert f"{key}:train" not in plots.loss_panel.curves and "run-1:train" in plots.loss_panel.curves
    dash.filter_edit.setText("other")                   # the file's name matches its runs
    settle(qtbot, dash)
    assert not run2.isHidden() and f"{key}:train" in plots.loss_panel.curves
    dash.filter_edit.setText("")

    # kept in the project: the file (relative to the project's folder), what is ticked, the axis
    dash.set_x_axis("relative")
    kept = dash.doc.project.views["dashboard"]
    assert kept == {"files": ["other.seqwb"], "ticked": [key], "filter": "", "x_axis": "relative"}
    save_project(dash.doc.project, path)
    again = TrainingDashboard(ProjectDocument(reg, load_project(path, registry=reg), str(path)))
    qtbot.addWidget(again)
    again.show()
    wait_files(qtbot, again)
    assert key in again.overlays and again.plots.x_axis == "relative"
    assert again.x_axis_combo.currentData() == "relative"

    # the file changes on disk (a run goes on elsewhere): it is read again, the tick stays
    timed_run(other, cell="gru", seed=13, seconds_per_step=1.0)
    save_project(other, other_path)
    again.check_other_files()
    wait_files(qtbot, again)
    assert len(again.others[str(other_path.resolve())]["runs"]) == 3 and key in again.overlays
    again.remove_other_file(str(other_path.resolve()))
    assert key not in again.overlays and "dashboard" in again.doc.project.views
    assert again.doc.project.views["dashboard"]["files"] == []


def test_the_plots_over_training_time_can_show_time_since_each_run_began_or_the_wall_clock(dashboard, reg, qtbot):
    project = small_project(reg)
    timed_run(project, cell="rnn", seed=1, seconds_per_step=30.0)          # 20 steps: 10 minutes
    old = add_run(project, cell="lstm", seed=2)                              # from before wall times
    late = timed_run(project, cell="gru", seed=3, seconds_per_step=12.0, started="2026-03-01T11:00:00+00:00")
    dash = dashboard(project)
    assert dash.primary.run_id == late.id                 # the latest run is the one shown
    dash.set_overlay("run-1", True)
    dash.set_overlay(old.id, True)
    settle(qtbot, dash)
    plots = dash.plots
    steps = np.asarray(plots.loss_panel.curves["run-3:valid"].xData)
    dash.set_x_axis("relative")
    settle(qtbot, dash)
    assert plots.x_axis_label() == "time since the run began (min)"
    assert plots.loss_panel.plot.getAxis("bottom").labelText == "time since the run began (min)"
    x = np.asarray(plots.loss_panel.curves["run-3:valid"].xData)
    np.testing.assert_allclose(x, steps * 12.0 / 60.0)                       # the run's own seconds, in minutes
    assert "run-2:train" not in plots.loss_panel.curves                      # no times: not on this axis
    assert dash.time_note.isVisible() and "run-2 (lstm)" in dash.time_note.text()
    assert "run-1:before" in plots.grad_panel.curves and not plots.loss_panel.grow_x

    dash.set_x_axis("wall")
    settle(qtbot, dash)
    assert isinstance(plots.loss_panel.plot.getAxis("bottom"), pg.DateAxisItem)
    start = dash.primary.start_time()
    np.testing.assert_allclose(plots.loss_panel.curves["run-3:valid"].xData, start + steps * 12.0)
    dash.set_x_axis("step")
    settle(qtbot, dash)
    assert not isinstance(plots.loss_panel.plot.getAxis("bottom"), pg.DateAxisItem)
    assert "run-2:train" in plots.loss_panel.curves and not dash.time_note.isVisible()
    np.testing.assert_allclose(plots.loss_panel.curves["run-3:valid"].xData, steps)
    for panel in (plots.loss_panel, plots.lr_panel):        # back on the steps, not on the clock's seconds
        lo, hi = panel.plot.vb.viewRange()[0]
        assert -5 < lo < 1 and 20 <= hi < 30, (panel.objectName(), lo, hi)


def test_a_forecasting_project_shows_predicted_against_actual_and_the_naive_baseline(reg, tmp_path, qtbot):
    from workbench.core.forecasts import Forecaster
    from workbench.core.settings import template_project
    from workbench.core.training.trainer import Trainer
    project, _ = template_project(reg.template("forecast"), {"eval_every": "10", "sample_every": "0",
                                                             "probe_every": "0", "task.horizon": "3"}, reg)
    trainer = Trainer(project, reg, base_dir=tmp_path)
    trainer.setup()
    trainer.fit(steps=20)
    trainer.checkpoint()
    dash = TrainingDashboard(ProjectDocument(reg, project))
    qtbot.addWidget(dash)
    dash.resize(990, 760)
    dash.show()
    qtbot.waitUntil(lambda: not dash.forecast_jobs.pending() and "predicted" in dash.plots.forecast_panel.curves,
                    timeout=60000)
    settle(qtbot, dash)
    plots = dash.plots
    panel = plots.forecast_panel
    assert panel in plots.panels and panel.isVisible()
    lines = Forecaster(reg).lines(project, None, step=1)
    np.testing.assert_allclose(panel.curves["actual"].yData, lines["actual"])
    np.testing.assert_allclose(panel.curves["predicted"].yData, lines["predicted"], rtol=1e-6)
    np.testing.assert_allclose(panel.curves["naive"].yData, lines["naive"])
    np.testing.assert_array_equal(panel.curves["actual"].xData, lines["x"])
    assert [panel.legend_entries[k].text() for k in ("actual", "predicted", "naive")] == \
        ["actual", f"model (MSE {lines['mse']:.3g})", f"naive, last value (MSE {lines['naive_mse']:.3g})"]
    # hundreds of forecasts: the first 120 in view at first
    assert panel.plot.vb.viewRange()[0][1] < lines["x"][130]
    assert plots.forecast_step.isVisible() and plots.forecast_step.maximum() == 3
    # another step of the horizon: the value 3 rows after each window
    plots.forecast_step.setValue(3)
    qtbot.waitUntil(lambda: "3 ahead" in panel.title.text(), timeout=60000)
    np.testing.assert_array_equal(panel.curves["actual"].xData, lines["x"] + 2)
    # the metric plot: MSE with the naive forecast's MSE as its baseline
    assert plots.metric_combo.currentData() == "mse"
    assert "naive_mse" not in [plots.metric_combo.itemData(i) for i in range(plots.metric_combo.count())]
    run = project.history.current
    np.testing.assert_allclose(y_data(plots.metric_panel, "baseline"), run.series["valid/naive_mse"].value)
    assert plots.metric_panel.legend_entries["baseline"].text() == "naive forecast (mse)"


def test_a_project_that_does_not_forecast_has_no_forecast_plot(dashboard, reg, qtbot):
    project = small_project(reg)
    add_run(project)
    dash = dashboard(project)
    qtbot.waitUntil(lambda: not dash.forecast_jobs.pending(), timeout=30000)
    assert dash.plots.forecast_panel not in dash.plots.panels and not dash.plots.forecast_panel.isVisible()
