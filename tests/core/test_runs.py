"""Run policy (what Train does), the trainer's one checkpoint schedule, its step metrics and speed readings, and
the model session that leaves a live run alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import make_subprocess_env
from tests.helpers import small_project, with_train
from workbench.core.export import export_model
from workbench.core.projectfile import load_project, save_project
from workbench.core.recording import Recorder
from workbench.core.runs import plan_run
from workbench.core.search import DecodeSession
from workbench.core.training import events
from workbench.core.training.events import Callback
from workbench.core.training.session import ModelSession
from workbench.core.training.trainer import Trainer, _SpeedWindow

pytestmark = pytest.mark.usefixtures("one_thread")


def trained(reg, steps: int, **train):
    project = with_train(small_project(reg, threads=1), steps=steps, **train)
    trainer = Trainer(project, reg)
    trainer.fit()
    trainer.checkpoint()
    return project


# ---- plan_run: the one policy ---------------------------------------------------------------------------------

def test_plan_new_continue_finished_and_more(reg):
    project = with_train(small_project(reg), steps=4)
    assert plan_run(project).new_run and plan_run(project).text == "start a new run (4 steps)"
    project = trained(reg, 4)
    # a finished run is not extended silently: Train starts a new run, and says how to extend instead
    plan = plan_run(project)
    assert plan.new_run and "run-1 has reached its 4 steps" in plan.text and "--steps N" in plan.text
    # asked for more, the latest run continues, finished or not
    more = plan_run(project, more_steps=3)
    assert not more.new_run and more.text == "continue run-1 from step 4 for 3 steps more"
    assert plan_run(project, more_epochs=1).text == "continue run-1 from step 4 for 1 epoch more"
    # raising steps extends the run
    project.train.steps = 6
    assert plan_run(project).text == "continue run-1 from step 4 (to 6 steps)"
    assert plan_run(project, force_new=True).new_run
    node = next(n for n in project.graph.nodes.values() if "hidden_size" in n.params)
    node.params["hidden_size"] = 8
    assert "the model graph changed" in plan_run(project).text


def seqwb(*args):
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], capture_output=True, text=True,
                          env=make_subprocess_env(), timeout=300)


def test_the_cli_follows_the_same_policy_on_a_finished_run(reg, tmp_path):
    path = tmp_path / "p.seqwb"
    save_project(trained(reg, 3), path)
    # `seqwb train FILE` on a finished run: a new run from fresh weights, as the window's Train does
    done = seqwb("train", path, "--json")
    assert done.returncode == 0, done.stderr
    end = json.loads(done.stdout.splitlines()[-1])
    assert end["status"] == "finished" and end["step"] == 3
    project = load_project(path, registry=reg)
    assert [r.id for r in project.history.runs] == ["run-1", "run-2"]
    # --steps N continues the latest run, finished or not (README: "reopen and keep training where it stopped")
    done = seqwb("train", path, "--steps", "2")
    assert done.returncode == 0, done.stderr
    assert "train: continue run-2 from step 3 for 2 steps more" in done.stdout
    project = load_project(path, registry=reg)
    assert [r.id for r in project.history.runs] == ["run-1", "run-2"] and project.checkpoint.step == 5


# ---- the trainer: one checkpoint schedule, canonical step metrics, speed over training time -------------------

class Taken(Callback):
    def __init__(self):
        self.steps: list[int] = []
        self.metrics: list[dict] = []
        self.order: list[tuple[str, int]] = []

    def on_step_end(self, trainer, event):
        self.metrics.append(dict(event.metrics))

    def on_eval_end(self, trainer, event):
        self.order.append(("eval", event.step))

    def on_checkpoint(self, trainer, checkpoint):
        assert checkpoint is trainer.project.checkpoint and checkpoint.step == trainer.pos.step
        self.steps.append(checkpoint.step)
        self.order.append(("checkpoint", checkpoint.step))


def test_checkpoints_follow_the_trainers_schedule_and_step_events_carry_the_recorded_series(reg):
    project = with_train(small_project(reg, threads=1), steps=7, checkpoint_every=3, eval_every=3)
    taken = Taken()
    trainer = Trainer(project, reg, callbacks=[taken])
    trainer.fit()
    assert taken.steps == [3, 6]
    # a checkpoint is taken after the step's validation, so it is the one the run would leave if it ended there
    assert taken.order == [("eval", 3), ("checkpoint", 3), ("eval", 6), ("checkpoint", 6), ("eval", 7)]
    run = project.history.current
    for step, metrics in enumerate(taken.metrics, 1):
        for key, value in metrics.items():
            series = run.series[key]
            assert series.value[series.step.index(step)] == value, key
    assert {events.LOSS, events.LR, events.EPOCH, events.GRAD_NORM, events.GRAD_NORM_CLIPPED} <= set(taken.metrics[0])
    # the first step pays for warm-up: no speed reading; every later step has its own
    assert events.TOKENS_PER_S not in taken.metrics[0]
    assert all(events.TOKENS_PER_S in m for m in taken.metrics[1:])
    assert run.series[events.TOKENS_PER_S].step == list(range(2, 8))


def test_no_checkpoint_is_copied_when_no_callback_takes_one(reg, monkeypatch):
    project = with_train(small_project(reg, threads=1), steps=3, checkpoint_every=1)
    trainer = Trainer(project, reg, checkpoint_seconds=0.001)
    calls = []
    monkeypatch.setattr(trainer, "checkpoint", lambda: calls.append(1))
    trainer.fit(final_eval=False)
    assert calls == []


def test_speed_is_items_over_training_time_in_a_sliding_window():
    window = _SpeedWindow(seconds=1.0)
    assert window.add(5.0, 100) is None                     # start-up
    assert window.add(0.5, 1000) == pytest.approx(2000)
    assert window.add(0.5, 3000) == pytest.approx(4000)     # (1000 + 3000) / 1.0 s
    # a slow step pushes the old ones out: the reading follows the current speed, not an old average
    assert window.add(2.0, 2000) == pytest.approx(1000)


# ---- the model session leaves a live run alone --------------------------------------------------------------------

class Meddler(Callback):
    """At one step, from the training thread, does what the window may do while a run is live."""

    def __init__(self, reg, at_step: int, folder):
        self.reg, self.at_step, self.folder = reg, at_step, folder
        self.did = []

    def on_step_end(self, trainer, event):
        if event.step != self.at_step:
            return
        threads = torch.get_num_threads()
        project = trainer.project
        trainer.checkpoint()
        export_model(project, self.reg, self.folder / "m.pt", "torchscript", base_dir=self.folder)
        Recorder(self.reg).record(project, "def f(x):\n    return x\n", self.folder)
        DecodeSession(self.reg).decode(project, self.folder, "sample", {"max_len": 20}, "def ", seed=5)
        ModelSession(self.reg).load(project, self.folder)
        assert torch.get_num_threads() == threads
        self.did.append(event.step)


def test_export_record_and_decode_during_a_run_leave_it_bit_identical(reg, tmp_path):
    def run(meddle: bool):
        # dropout draws from the global generator at every step: any reseeding would change the weights
        project = with_train(small_project(reg, threads=1, dropout="0.3"), steps=6)
        callbacks = [Meddler(reg, 3, tmp_path)] if meddle else []
        trainer = Trainer(project, reg, callbacks=callbacks, base_dir=tmp_path)
        trainer.fit(final_eval=False)
        assert not meddle or callbacks[0].did == [3]
        return project.history.current.series[events.LOSS].value, trainer.model.state_dict()

    losses, weights = run(False)
    losses_m, weights_m = run(True)
    assert losses == losses_m
    assert all(torch.equal(weights[k], weights_m[k]) for k in weights)
