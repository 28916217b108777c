"""Training in the window: the worker thread, the event buffer, the dashboard, pause / resume / stop, a NaN, runs in
the history, the snapshot a run trains, and closing while training (pytest-qt, offscreen, a tiny char-LM)."""

from __future__ import annotations

import gc
import math
import re
import sys
import time

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from tests.helpers import small_project  # noqa: E402
from workbench.core.projectfile import load_project  # noqa: E402
from workbench.core.runs import plan_run, snapshot_project  # noqa: E402
from workbench.gui.run_bridge import EventBuffer  # noqa: E402



def tiny(reg, **settings):
    """hidden 16, batch 4, chunk 16, 20,000 characters; evaluation and probes every 5 steps, samples every 10."""
    base = {"hidden_size": 16, "batch_size": 4, "chunk_len": 16, "task.max_chars": 20000, "eval_every": 5,
            "eval_batches": 2, "probe_every": 5, "sample_every": 10, "sample_len": 40}
    base.update(settings)
    return small_project(reg, **base)


def curve_len(panel, key) -> int:
    """Points the curve was given (getData() would count the points drawn: clipped to the view and downsampled
    to its pixels, a handful while the first steps of a long planned run fill the left edge of the axis)."""
    item = panel.curves.get(key)
    if item is None:
        return 0
    return 0 if item.xData is None else len(item.xData)


def test_event_buffer_is_bounded_and_keeps_lifecycle_events():
    buf = EventBuffer(capacity=8)
    for i in range(20):
        buf.put("step", i)
    buf.put_control("ended", "end")
    data, control = buf.drain()
    assert [e for _, e in data] == list(range(12, 20)) and buf.dropped == 12
    assert control == [("ended", "end")]
    assert buf.drain() == ([], [])


def test_run_fills_the_plots_pauses_resumes_and_stops(window, reg, qtbot):
    win = window(reg, tiny(reg, steps=100000))
    assert win.runs.act_train.isEnabled() and "start a new run" in win.runs.act_train.toolTip()
    assert not win.runs.act_pause.isEnabled() and not win.runs.act_stop.isEnabled()
    ticks, steps = [], []

    def collect(events):
        ticks.append(len(events))
        steps.extend(ev.step for kind, ev in events if kind == "step")

    win.bridge.eventsReady.connect(collect)
    win.runs.act_train.trigger()
    assert win.tabs.currentWidget() is win.training_tab
    dash = win.dashboard
    qtbot.waitUntil(lambda: win.bridge.last_step >= 22 and dash.primary is not None
                    and dash.primary.gtt_latest_step >= 20 and bool(dash.primary.samples), timeout=30000)

    def plotted():
        """Every plot has data: loss (raw, smoothed, valid), gradient norms before/after clipping, groups,
        gradient through time (a curve per layer, the heatmap), singular values, the metric, learning rate, speed."""
        image = dash.plots.heat_panel.image.image
        return {
            "loss": min(curve_len(dash.plots.loss_panel, k) for k in ("run-1:raw", "run-1:train", "run-1:valid")) >= 4,
            "grad": min(curve_len(dash.plots.grad_panel, k) for k in ("run-1:before", "run-1:after")) >= 20,
            "clip line": dash.plots._clip_line is not None and dash.plots._clip_line.isVisible(),
            "groups": {"embed", "rnn.0", "rnn.1", "head"} <= set(dash.plots.group_panel.curves),
            "gtt": set(dash.plots.gtt_panel.curves) == {"run-1:rnn.0", "run-1:rnn.1"}
            and curve_len(dash.plots.gtt_panel, "run-1:rnn.0") == 16,
            "heatmap": image is not None and image.shape[0] >= 4 and image.shape[1] == 16,
            "sigma": curve_len(dash.plots.sigma_panel, "rnn.0/W_hf") >= 4,
            "metric": dash.plots.metric_name in ("ppl", "bpc") and curve_len(dash.plots.metric_panel, "value") >= 4,
            "lr, speed": curve_len(dash.plots.lr_panel, "value") > 0 and curve_len(dash.plots.speed_panel, "value") > 0}

    def all_plotted():
        missing = [name for name, ok in plotted().items() if not ok]
        assert not missing, f"no data yet in: {', '.join(missing)}"

    qtbot.waitUntil(all_plotted, timeout=5000)
    assert "step" in dash.samples.toPlainText() and "left" in dash.progress.format()
    # no signal per step: events arrive in batches, one signal per timer tick
    assert len(ticks) < len(steps)
    assert win.bridge.snapshot is not win.project and not win.runs.act_train.isEnabled()
    # the cyclic collector runs in the GUI thread only while the run is live (never frees a widget elsewhere)
    assert not gc.isenabled() and win.bridge.collector.active
    # training runs below the window's priority (Linux: a nice value per thread), so the GUI gets a core at once
    if sys.platform.startswith("linux"):
        from workbench.core.threads import BEHIND_WINDOW_NICE, thread_nice
        assert win.bridge.thread.lowered
        assert win.bridge.thread.nice == min(19, thread_nice() + BEHIND_WINDOW_NICE)

    win.runs.act_pause.trigger()
    qtbot.waitUntil(lambda: win.bridge.state == "paused", timeout=5000)
    assert win.runs.act_resume.isEnabled() and win.runs.act_resume.isVisible() and not win.runs.act_pause.isVisible()
    paused_at = win.bridge.last_step
    assert win.project.checkpoint is not None and win.project.checkpoint.step == paused_at
    cpu = time.process_time()
    qtbot.wait(400)
    assert win.bridge.last_step == paused_at and steps[-1] == paused_at      # held...
    assert time.process_time() - cpu < 0.25                                   # ...without spinning a core
    win.runs.act_resume.trigger()
    qtbot.waitUntil(lambda: win.bridge.last_step >= paused_at + 3, timeout=10000)
    after = steps[steps.index(paused_at) + 1:]
    assert after[:3] == [paused_at + 1, paused_at + 2, paused_at + 3]         # continues from the same step

    t0 = time.monotonic()
    win.runs.act_stop.trigger()
    qtbot.waitUntil(lambda: win.bridge.state == "idle", timeout=1000)
    assert time.monotonic() - t0 < 1.0
    run = win.project.history.current
    assert run.id == "run-1" and run.status == "stopped"
    assert win.project.checkpoint.step == win.bridge.last_step == run.series["train/loss"].step[-1]
    assert win.runs.act_train.isEnabled() and "continue run-1" in win.runs.act_train.toolTip()
    assert "stopped" in dash.progress.format() and win.isWindowModified()
    # the run's hold ends at once; the autosave of the final checkpoint (a worker too) holds it until written
    assert not win.bridge.collector.active
    qtbot.waitUntil(gc.isenabled, timeout=10000)


def test_a_nan_ends_the_run_with_a_message_and_keeps_the_last_good_checkpoint(window, reg, qtbot, monkeypatch):
    import torch
    task_cls = reg.task("char-lm").load()
    original = task_cls.loss
    poison = {"on": False}

    def loss(self, outputs, batch):     # the trainer's worker thread calls this
        value = original(self, outputs, batch)
        return value * float("nan") if poison["on"] else value

    monkeypatch.setattr(task_cls, "loss", loss)
    win = window(reg, tiny(reg, steps=100000, checkpoint_every=7))
    win.runs.act_train.trigger()
    qtbot.waitUntil(lambda: win.project.checkpoint is not None and win.project.checkpoint.step >= 7, timeout=30000)
    poison["on"] = True
    qtbot.waitUntil(lambda: win.bridge.state == "idle", timeout=10000)
    poison["on"] = False
    dash = win.dashboard
    message = dash.banner_message()
    assert "The run failed" in message and "loss became nan" in message and dash.banner.isVisible()
    assert "loss became nan" in win.log_view.toPlainText()
    assert "failed" in win.statusBar().currentMessage()
    run = win.project.history.current
    assert run.status == "failed" and "nan" in run.message
    ckpt = win.project.checkpoint
    failed_at = int(re.search(r"at step (\d+)", run.message).group(1))
    assert 7 <= ckpt.step < failed_at
    assert all(bool(torch.isfinite(v).all()) for v in ckpt.weights.values())
    # the app is still usable: edits work and training starts again, from the last good checkpoint
    assert win.runs.act_train.isEnabled() and "continue run-1 from step" in win.runs.act_train.toolTip()
    win.runs.act_train.trigger()
    qtbot.waitUntil(lambda: win.bridge.last_step >= ckpt.step + 2, timeout=20000)
    assert not dash.banner.isVisible()
    win.runs.stop_and_wait()
    assert win.project.history.current.status == "stopped"


def test_a_data_error_and_a_plugin_exception_end_the_run_readably(window, reg, qtbot, monkeypatch, tmp_path):
    win = window(reg, tiny(reg, steps=100000, **{"task.corpus": str(tmp_path / "missing.txt")}))
    win.runs.act_train.trigger()
    qtbot.waitUntil(lambda: win.bridge.state == "idle", timeout=30000)
    message = win.dashboard.banner_message()
    assert "could not start" in message and "missing.txt" in message and "not found" in message
    assert win.project.history.runs == [] and win.project.checkpoint is None       # nothing was half-made
    # the same project on real data, with a task whose loss raises after a few steps
    assert win.doc.set_setting("task", "corpus", "") is None
    task_cls = reg.task("char-lm").load()
    original, calls = task_cls.loss, {"n": 0}

    def loss(self, outputs, batch):
        calls["n"] += 1
        if calls["n"] > 6:
            raise RuntimeError("the plugin broke")
        return original(self, outputs, batch)

    monkeypatch.setattr(task_cls, "loss", loss)
    win.runs.act_train.trigger()
    qtbot.waitUntil(lambda: win.bridge.state == "idle", timeout=30000)
    message = win.dashboard.banner_message()
    assert "RuntimeError: the plugin broke" in message and "training failed at step" in message
    assert "Traceback" in win.log_view.toPlainText() and win.project.history.current.status == "failed"
    assert win.runs.act_train.isEnabled()


def test_runs_train_their_snapshot_and_overlay_after_save_and_reopen(window, reg, qtbot, tmp_path):
    win = window(reg, tiny(reg, steps=24))
    original = win.doc.graph.content_hash()
    win.runs.act_train.trigger()
    snapshot = win.bridge.snapshot
    # edited after Train: the document changes, the run's snapshot does not, and the window says so
    assert win.doc.set_node_param("rnn", "hidden_size", 12) is None
    assert snapshot.graph.nodes["rnn"].params["hidden_size"] == 16
    assert snapshot.graph.content_hash() == original != win.doc.graph.content_hash()
    qtbot.waitUntil(lambda: win.dashboard.banner_kind == "notice", timeout=10000)
    assert "goes on with the model graph as" in win.dashboard.banner_message()
    qtbot.waitUntil(lambda: win.bridge.state == "idle", timeout=30000)
    run1 = win.project.history.runs[0]
    assert run1.status == "finished" and run1.settings["graph_hash"] == original
    assert win.project.checkpoint.graph_hash == original
    # the next Train starts a new run on the edited graph
    assert plan_run(win.project).new_run and "graph changed" in win.runs.act_train.toolTip()
    win.runs.act_train.trigger()
    qtbot.waitUntil(lambda: win.bridge.state == "idle", timeout=30000)
    runs = win.project.history.runs
    assert [r.id for r in runs] == ["run-1", "run-2"] and runs[1].settings["graph_hash"] == win.doc.graph.content_hash()
    assert runs[0].settings["parameters"] > runs[1].settings["parameters"]     # hidden 16, then 12

    dash = win.dashboard
    assert dash.primary.run_id == "run-2" and dash.runs.topLevelItemCount() == 2
    item = dash.run_item("run-1")
    assert item.flags() & Qt.ItemFlag.ItemIsUserCheckable
    item.setCheckState(0, Qt.CheckState.Checked)          # as a click on the check box does
    plots = dash.plots
    qtbot.waitUntil(lambda: curve_len(plots.loss_panel, "run-1:train") > 0
                    and curve_len(plots.grad_panel, "run-1:before") > 0 and "run-1:rnn.0" in plots.gtt_panel.curves
                    and plots.heat_run.count() == 2, timeout=3000)

    path = tmp_path / "two-runs.seqwb"
    assert win.files.save_to(str(path))
    reopened = load_project(path, registry=reg)
    assert [r.id for r in reopened.history.runs] == ["run-1", "run-2"]
    again = window(reg, reopened, str(path))
    again.show_dashboard()
    d2 = again.dashboard
    assert d2.primary.run_id == "run-2" and d2.runs.topLevelItemCount() == 2
    d2.set_overlay("run-1", True)
    qtbot.waitUntil(lambda: curve_len(d2.plots.loss_panel, "run-1:train") == curve_len(plots.loss_panel, "run-1:train")
                    and "run-1:rnn.1" in d2.plots.gtt_panel.curves, timeout=3000)
    assert len(d2.overlays["run-1"].layers) == 2
    # deleting a run is one undo step
    d2.runs.setCurrentItem(d2.run_item("run-1"))
    assert d2.delete_button.isEnabled()
    d2.delete_button.click()
    assert [r.id for r in again.project.history.runs] == ["run-2"] and "run-1" not in d2.overlays
    assert d2.runs.topLevelItemCount() == 1
    again.act_undo.trigger()
    assert [r.id for r in again.project.history.runs] == ["run-1", "run-2"] and d2.runs.topLevelItemCount() == 2


def test_closing_while_training_asks_then_stops_and_saves(window, reg, qtbot, tmp_path):
    path = tmp_path / "closing.seqwb"
    win = window(reg, tiny(reg, steps=100000))
    assert win.files.save_to(str(path))
    win.runs.act_train.trigger()
    qtbot.waitUntil(lambda: win.bridge.last_step >= 3, timeout=30000)
    answers = iter(["cancel", "save"])
    asked = []
    win.runs.ask_stop_training = lambda closing: asked.append(closing) or next(answers)
    assert not win.close() and win.bridge.is_live()       # Cancel: still open, still training
    assert win.close() and not win.bridge.is_live()       # Stop and Save
    assert asked == [True, True]
    saved = load_project(path, registry=reg)
    run = saved.history.current
    assert run.status == "stopped" and saved.checkpoint.step == run.series["train/loss"].step[-1] > 0


def test_device_threads_and_precision_are_training_settings(window, reg, qtbot):
    win = window(reg, tiny(reg))
    win.show_dashboard()
    bar = win.dashboard.settings_bar
    assert [bar.device.itemData(i) for i in range(bar.device.count())] == ["auto", "cpu"]
    assert bar.threads.value() == 0 and bar.threads.specialValueText().startswith("auto (")
    bar.set_devices([("cuda:0", "CUDA 0: Test GPU")])
    assert bar.device.findData("cuda:0") >= 0
    bar.device.setCurrentIndex(bar.device.findData("cpu"))
    assert win.project.train.device == "cpu" and bar.threads.isEnabled()
    # the precision is a training setting of the inspector (and --set), round-tripped like the others
    combo = win.inspector.form("train").editor("precision")
    before = win.project.train.precision
    assert [combo.itemData(i) for i in range(combo.count())] == ["auto", "fp32", "bf16", "fp16"]
    combo.setCurrentIndex(combo.findData("bf16"))
    assert win.project.train.precision == "bf16"
    win.act_undo.trigger()
    assert win.project.train.precision == before and combo.currentData() == before
    bar.threads.setValue(1)
    assert win.project.train.threads == 1
    win.act_undo.trigger()
    win.act_undo.trigger()
    assert win.project.train.device == "auto" and bar.device.currentData() == "auto" and bar.threads.value() == 0
    assert win.inspector.form("train").value("device") == "auto"     # the inspector shows the same setting
    assert math.isclose(win.project.train.lr, 2e-3)


def test_the_snapshot_is_a_copy_of_the_design_and_shares_the_checkpoint(reg):
    project = tiny(reg)
    project.history.new_run({"cells": ["lstm"]}).log("train/loss", 1, 2.0)
    snap = snapshot_project(project)
    snap.graph.nodes["rnn"].params["hidden_size"] = 99
    snap.train.lr = 1.0
    snap.history.current.log("train/loss", 2, 1.5)
    assert project.graph.nodes["rnn"].params["hidden_size"] == 16 and project.train.lr == 2e-3
    assert project.history.current.series["train/loss"].step == [1]
    assert snap.checkpoint is project.checkpoint

