"""Run ▸ Evaluate…: the metrics the dialog shows are the core's, computed in a worker thread; test split, best
weights, untrained weights, a missing split, a plugin that raises, the Log dock, closing while it runs
(pytest-qt, offscreen, a tiny char-LM)."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from tests.helpers import small_project  # noqa: E402
from workbench.core.training import evaluation as core_eval  # noqa: E402
from workbench.core.training import session as core_session  # noqa: E402
from workbench.gui import evaluate_dialog  # noqa: E402

BEST_STEP, STEP = 6, 9



@pytest.fixture(scope="module")
def trained(reg, tmp_path_factory):
    """A char-LM (2 LSTM layers of 16) whose best weights (the validation at step 6) differ from its current
    ones (step 9), saved in a folder of its own."""
    from workbench.core.projectfile import project_plugins_used, save_project
    from workbench.core.training.trainer import Trainer
    folder = tmp_path_factory.mktemp("evaluate-gui")
    project = small_project(reg, hidden_size=16, embed_size=8, eval_batches=1)
    trainer = Trainer(project, reg, base_dir=folder)
    trainer.setup()
    trainer.fit(steps=BEST_STEP)                      # ends with a validation: the best weights
    trainer.fit(steps=STEP - BEST_STEP, final_eval=False)
    trainer.checkpoint()
    path = folder / "tiny.seqwb"
    save_project(project, path, plugins_used=project_plugins_used(project, reg))
    return project, str(path)


def expected(project, reg, path, split: str, max_batches: int, best: bool = False) -> dict:
    """The core's own evaluation of the same weights on the same batches."""
    from pathlib import Path
    loaded = core_session.ModelSession(reg).load(project, Path(path).parent, "best" if best else "current")
    return core_eval.evaluate_model(loaded.model, loaded.task, split, project.train.batch_size,
                                     project.train.chunk_len, max_batches, loaded.device)


def open_dialog(win, qtbot):
    win.views["evaluate"].action.trigger()
    dialog = win.views["evaluate"].widget
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: bool(dialog.split_info()), timeout=60000)     # the worker has read the data
    return dialog


def evaluate(dialog, qtbot, **choices):
    with qtbot.waitSignal(dialog.evaluationFinished, timeout=60000):
        assert dialog.evaluate(**choices)
    assert not dialog.is_running()
    return dialog.result


def assert_shown(dialog, metrics: dict) -> None:
    shown = dialog.values()
    assert list(shown) == list(metrics)
    for key, value in metrics.items():
        assert shown[key] == core_eval.format_metric(dialog.result.metrics[key])
        assert float(shown[key]) == pytest.approx(value, rel=1e-4, abs=1e-4)
        assert dialog.result.metrics[key] == pytest.approx(value, rel=1e-6)


def test_the_menu_opens_it_and_the_validation_metrics_are_the_cores(make_window, reg, trained, qtbot, monkeypatch):
    import torch
    project, path = trained
    win = make_window(reg, project, path)
    assert win.views["evaluate"].action in win.run_menu.actions()
    assert win.views["evaluate"].action.shortcut().toString() == "Ctrl+E"
    dialog = open_dialog(win, qtbot)
    info = dialog.split_info()
    assert set(info) == {"valid", "test"} and all(n and not reason for n, reason in info.values())
    assert dialog.split_buttons["valid"].isEnabled() and dialog.split_buttons["test"].isEnabled()
    assert f"of {info['valid'][0]:,}" in dialog.batches_label.text()
    assert dialog.current_button.text() == f"Current (step {STEP})"
    assert dialog.best_button.isEnabled() and f"step {BEST_STEP}" in dialog.best_button.text()
    assert not dialog.untrained_note.isVisibleTo(dialog)

    threads = []
    real = core_eval.evaluate_weights

    def spy(*args, **kwargs):
        threads.append((threading.current_thread(), torch.get_num_threads()))
        return real(*args, **kwargs)

    monkeypatch.setattr(core_eval, "evaluate_weights", spy)
    rng = torch.random.get_rng_state()
    main_threads = torch.get_num_threads()
    result = evaluate(dialog, qtbot, split="valid", weights="current", max_batches=2)
    assert threads and threads[0][0] is not threading.main_thread()       # the model ran in the worker
    assert threads[0][1] >= 1
    # loading the model there did not reseed the global generator nor change this thread's count
    assert torch.equal(torch.random.get_rng_state(), rng) and torch.get_num_threads() == main_threads

    assert (result.split, result.step, result.trained, result.best, result.batches) == ("valid", STEP, True,
                                                                                        False, 2)
    want = expected(project, reg, path, "valid", 2)
    assert {"loss", "bpc", "ppl"} <= set(want)
    assert_shown(dialog, want)
    assert dialog.table.item(0, 0).text() == "loss" and dialog.values()["ppl"] == dialog.table.item(2, 1).text()
    assert dialog.table.item(2, 0).text() == "perplexity (ppl)"
    assert dialog.caption_label.text().startswith(f"validation · current weights at step {STEP} · 2 batches · ")
    assert dialog.caption_label.text().endswith(" s")
    # the Log dock keeps the line (the CLI's line, then the weights and batches) after the dialog closes
    dialog.close()
    log = win.log_view.toPlainText()
    assert f"Evaluated valid @ step {STEP}: loss {core_eval.format_metric(result.metrics['loss'])}" in log
    assert "(current weights, 2 batches, " in log


def test_the_test_split_and_the_best_weights(make_window, reg, trained, qtbot):
    project, path = trained
    win = make_window(reg, project, path)
    dialog = open_dialog(win, qtbot)
    result = evaluate(dialog, qtbot, split="test", weights="current", max_batches=2)
    assert result.split == "test" and result.step == STEP
    assert_shown(dialog, expected(project, reg, path, "test", 2))
    assert dialog.caption_label.text().startswith(f"test · current weights at step {STEP} · 2 batches")

    result = evaluate(dialog, qtbot, split="valid", weights="best", max_batches=2)
    assert result.best and result.step == BEST_STEP
    best = expected(project, reg, path, "valid", 2, best=True)
    assert_shown(dialog, best)
    assert best["loss"] != pytest.approx(expected(project, reg, path, "valid", 2)["loss"], rel=1e-6)
    assert dialog.caption_label.text().startswith(f"validation · best weights at step {BEST_STEP} · 2 batches")
    assert f"Evaluated valid @ step {BEST_STEP}:" in win.log_view.toPlainText()

    # "All" (0) evaluates the whole split, as seqwb eval --max-batches 0 does
    result = evaluate(dialog, qtbot, split="test", weights="current", max_batches=0)
    assert dialog.batches_spin.text() == "All"
    assert result.batches == dialog.split_info()["test"][0] > 2


def test_untrained_weights_are_evaluated_with_a_note_and_best_is_disabled(make_window, reg, qtbot):
    win = make_window(reg, small_project(reg, hidden_size=8, embed_size=4))
    dialog = open_dialog(win, qtbot)
    assert not dialog.best_button.isEnabled() and not dialog.best_button.isChecked()
    assert dialog.best_note.isVisibleTo(dialog) and dialog.best_note.text() == evaluate_dialog.NO_BEST
    assert dialog.best_button.toolTip() == evaluate_dialog.NO_BEST
    assert dialog.untrained_note.isVisibleTo(dialog) and "freshly initialised" in dialog.untrained_note.text()
    assert not dialog.evaluate(weights="best")                 # refused, with the reason
    assert dialog.error == evaluate_dialog.NO_BEST and not dialog.is_running()
    assert dialog.placeholder.text() == evaluate_dialog.NO_BEST and dialog.placeholder.isVisibleTo(dialog)

    result = evaluate(dialog, qtbot, split="valid", weights="current", max_batches=1)
    assert not result.trained and result.batches == 1
    assert dialog.caption_label.text().startswith("validation · untrained weights · 1 batch · ")
    assert dialog.table.isVisibleTo(dialog) and dialog.untrained_note.isVisibleTo(dialog)
    assert "(untrained weights, 1 batch, " in win.log_view.toPlainText()


def test_a_split_the_task_does_not_have_is_disabled_with_the_reason(make_window, reg, qtbot):
    win = make_window(reg, small_project(reg, hidden_size=8, embed_size=4, **{"task.test_fraction": 0}))
    dialog = open_dialog(win, qtbot)
    batches, reason = dialog.split_info()["test"]
    assert "test split is empty" in reason
    assert not dialog.split_buttons["test"].isEnabled() and dialog.split_buttons["test"].toolTip() == reason
    assert dialog.split_note.isVisibleTo(dialog) and dialog.split_note.text() == "T" + reason[1:]
    assert dialog.split_buttons["valid"].isEnabled() and dialog.split_buttons["valid"].isChecked()
    assert not dialog.evaluate(split="test")
    assert "test split cannot be evaluated" in dialog.error and reason in dialog.placeholder.text()
    assert dialog.split() == "valid" and dialog.evaluate_button.isEnabled()


def test_a_plugin_that_raises_shows_its_message(make_window, reg, trained, qtbot, monkeypatch):
    project, path = trained
    win = make_window(reg, project, path)
    dialog = open_dialog(win, qtbot)
    task_class = reg.task(project.task.id).load()     # the task's class (its factory)

    def broken(self, acc, outputs, batch):
        raise RuntimeError("the plugin's metric broke")

    monkeypatch.setattr(task_class, "eval_update", broken)
    with qtbot.waitSignal(dialog.evaluationFailed, timeout=60000) as failed:
        assert dialog.evaluate(split="valid", max_batches=2)
    assert failed.args == ["RuntimeError: the plugin's metric broke"]
    # in the dialog, in full, where the table goes; no traceback window
    assert dialog.placeholder.text() == "Could not evaluate: RuntimeError: the plugin's metric broke"
    assert dialog.placeholder.isVisibleTo(dialog) and not dialog.table.isVisibleTo(dialog)
    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    assert not dialog.is_running() and dialog.evaluate_button.text() == "Evaluate"
    assert dialog.result is None and "Evaluated" not in win.log_view.toPlainText()
    monkeypatch.undo()
    evaluate(dialog, qtbot, split="valid", max_batches=1)      # and it carries on once the plugin is fixed


def slow_evaluation(monkeypatch, seconds_per_batch: float = 0.2) -> None:
    real = core_eval.evaluate_weights

    def slow(*args, progress=None, **kwargs):
        def each(done, total):
            time.sleep(seconds_per_batch)
            progress(done, total)
        return real(*args, progress=each, **kwargs)

    monkeypatch.setattr(core_eval, "evaluate_weights", slow)


def test_the_window_stays_responsive_and_closing_while_it_runs_does_not_wait(make_window, reg, trained, qtbot,
                                                                               monkeypatch):
    project, path = trained
    win = make_window(reg, project, path)
    dialog = open_dialog(win, qtbot)
    slow_evaluation(monkeypatch)
    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    finished = []
    dialog.evaluationFinished.connect(finished.append)
    assert dialog.evaluate(split="valid", weights="current", max_batches=0)     # 16 batches, 0.2 s each
    assert dialog.is_running() and dialog.evaluate_button.text() == "Cancel"
    assert not dialog.split_buttons["test"].isEnabled() and not dialog.batches_spin.isEnabled()
    qtbot.waitUntil(lambda: dialog.progress.maximum() > 0, timeout=30000)     # counting batches
    start = len(ticks)
    qtbot.wait(1000)
    timer.stop()
    assert dialog.is_running()
    assert len(ticks) - start >= 25          # the event loop served a 20 ms timer all along (about 50 times)
    assert "batches" in dialog.progress.format()

    t0 = time.monotonic()
    dialog.close()
    assert time.monotonic() - t0 < 0.5       # the dialog did not wait for the worker
    assert not dialog.isVisible() and not dialog.is_running()
    assert dialog.status.text() == "Evaluation cancelled."
    assert dialog.wait(10000)                # the worker stopped at the next batch
    qtbot.wait(50)
    assert not finished and "Evaluated" not in win.log_view.toPlainText()

    # opened again, it evaluates as before
    monkeypatch.undo()
    dialog = open_dialog(win, qtbot)
    evaluate(dialog, qtbot, split="valid", max_batches=2)
    assert dialog.result.batches == 2


def test_closing_the_window_cancels_a_running_evaluation(make_window, reg, trained, qtbot, monkeypatch):
    project, path = trained
    win = make_window(reg, project, path)
    win.files.maybe_save = lambda: True
    dialog = open_dialog(win, qtbot)
    slow_evaluation(monkeypatch)
    assert dialog.evaluate(split="valid", max_batches=0)
    qtbot.wait(300)
    win.close()
    assert not dialog.is_running()
    assert dialog.wait(10000)


def test_it_evaluates_while_a_run_trains_and_sees_the_checkpoints_the_run_brings_back(make_window, reg, qtbot):
    win = make_window(reg, small_project(reg, hidden_size=8, embed_size=4, eval_every=3, steps=100000))
    win.runs.ask_stop_training = lambda closing: "discard"
    win.runs.act_train.trigger()
    qtbot.waitUntil(lambda: win.bridge.last_step >= 2, timeout=60000)
    dialog = open_dialog(win, qtbot)
    assert dialog.current_button.text() == "Current: untrained"     # no checkpoint has come back yet
    before = win.bridge.last_step
    result = evaluate(dialog, qtbot, split="valid", max_batches=2)
    assert not result.trained and win.bridge.state == "running"
    qtbot.waitUntil(lambda: win.bridge.last_step > before + 2, timeout=30000)   # the run went on meanwhile

    win.runs.act_pause.trigger()        # a pause brings the checkpoint (and the best weights) into the project
    qtbot.waitUntil(lambda: win.bridge.state == "paused", timeout=30000)
    step = win.project.checkpoint.step
    qtbot.waitUntil(lambda: dialog.current_button.text() == f"Current (step {step:,})", timeout=5000)
    assert dialog.best_button.isEnabled()
    result = evaluate(dialog, qtbot, split="test", weights="best", max_batches=1)
    assert result.trained and result.best and 3 <= result.step <= step
    win.runs.act_stop.trigger()
    qtbot.waitUntil(lambda: win.bridge.state == "idle", timeout=30000)
