"""Trainer: exact resume through a saved file, faults, stop/pause, clipping, schedules, probes, devices."""

import math
import threading
import time

import pytest
import torch

from tests.helpers import small_project, with_train, write_corpus
from workbench.schema.errors import TrainingError
from workbench.core.projectfile import load_project, save_project
from workbench.core.training.events import Callback, RunControl
from workbench.core.training.optim import scheduled_lr
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover


@pytest.fixture(scope="module")
def reg():
    return discover()


class Losses(Callback):
    def __init__(self):
        self.losses = []
        self.events = []

    def on_step_end(self, trainer, ev):
        self.losses.append(ev.loss)
        self.events.append(ev)


def test_save_reopen_continue_equals_uninterrupted(reg, tmp_path):
    """200 steps straight == 100 steps, save, reopen from disk, 100 more (within 1e-6)."""
    corpus = write_corpus(tmp_path)
    def fresh():
        p = small_project(reg, dropout=0.2, **{"task.corpus": str(corpus)})
        # dropout (random), probes and validation on: none of them may disturb the resumed run
        return with_train(p, eval_every=50, probe_every=40, threads=1)

    straight = Losses()
    Trainer(fresh(), reg, callbacks=[straight], base_dir=tmp_path).fit(steps=200)

    first = Losses()
    project = fresh()
    trainer = Trainer(project, reg, callbacks=[first], base_dir=tmp_path)
    trainer.fit(steps=100)
    trainer.checkpoint()
    path = tmp_path / "p.seqwb"
    save_project(project, path)
    del trainer, project

    reopened = load_project(path, registry=reg)
    second = Losses()
    Trainer(reopened, reg, callbacks=[second], base_dir=tmp_path).fit(steps=100)
    resumed = first.losses + second.losses
    assert len(resumed) == len(straight.losses) == 200
    worst = max(abs(a - b) for a, b in zip(resumed, straight.losses))
    assert worst < 1e-6, f"resumed run differs by {worst}"
    # the history continues the same run
    run = reopened.history.current
    assert run.series["train/loss"].step == list(range(1, 201))
    assert [g["step"] for g in run.gtt] == [40, 80, 120, 160, 200]


def test_nan_loss_stops_with_message_and_keeps_checkpoint(reg, monkeypatch):
    project = small_project(reg)
    trainer = Trainer(project, reg)
    trainer.fit(steps=3)
    good = trainer.checkpoint()
    real_loss = trainer.task.loss
    calls = {"n": 0}

    def poisoned(outputs, batch):
        calls["n"] += 1
        loss = real_loss(outputs, batch)
        return loss * float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(trainer.task, "loss", poisoned)
    with pytest.raises(TrainingError, match="the loss became nan at step 5"):
        trainer.fit(steps=5)
    assert project.checkpoint is good and good.step == 3
    assert project.history.current.status == "failed"


def test_nan_skip_policy_skips_the_step(reg, monkeypatch):
    project = with_train(small_project(reg), nan_policy="skip")
    trainer = Trainer(project, reg)
    trainer.setup()
    real_loss = trainer.task.loss
    calls = {"n": 0}

    def poisoned(outputs, batch):
        calls["n"] += 1
        loss = real_loss(outputs, batch)
        return loss * float("inf") if calls["n"] == 2 else loss

    monkeypatch.setattr(trainer.task, "loss", poisoned)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    cb = Losses()
    trainer.callbacks.append(cb)
    end = trainer.fit(steps=3)
    assert end.status == "finished" and [e.skipped for e in cb.events] == [False, True, False]
    assert any("step 2" in n for n in trainer.notices)
    assert all(torch.isfinite(v).all() for v in trainer.model.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_plugin_exception_becomes_training_error(reg, monkeypatch):
    project = small_project(reg)
    trainer = Trainer(project, reg)
    trainer.setup()

    def boom(outputs, batch):
        raise KeyError("labels")

    monkeypatch.setattr(trainer.task, "loss", boom)
    with pytest.raises(TrainingError, match="training failed at step 1: KeyError"):
        trainer.fit(steps=2)


def test_stop_token_ends_within_one_step(reg):
    control = RunControl()

    class StopAt(Callback):
        def on_step_end(self, trainer, ev):
            if ev.step == 4:
                control.stop()

    project = small_project(reg)
    end = Trainer(project, reg, callbacks=[StopAt()], control=control).fit(steps=50)
    assert end.status == "stopped" and end.step == 4


def test_pause_blocks_without_spinning_then_resumes(reg):
    control = RunControl()
    seen = []

    class PauseAt(Callback):
        def on_step_end(self, trainer, ev):
            seen.append(ev.step)
            if ev.step == 2:
                control.pause()

    project = small_project(reg)
    trainer = Trainer(project, reg, callbacks=[PauseAt()], control=control)
    trainer.setup()
    t = threading.Thread(target=trainer.fit, kwargs={"steps": 5})
    cpu0 = time.process_time()
    t.start()
    time.sleep(1.0)
    assert seen == [1, 2] and control.paused
    # paused: the training thread waits on an Event and uses (almost) no CPU
    cpu_paused = time.process_time()
    time.sleep(0.5)
    assert time.process_time() - cpu_paused < 0.2
    control.resume()
    t.join(30)
    assert seen == [1, 2, 3, 4, 5] and cpu0 >= 0


def test_clipping_by_norm_and_value(reg):
    project = with_train(small_project(reg), clip_norm=0.01, lr=0.5, optimizer="sgd")
    cb = Losses()
    Trainer(project, reg, callbacks=[cb]).fit(steps=3)
    for ev in cb.events:
        assert ev.grad_norm > 0.01 and abs(ev.grad_norm_clipped - 0.01) < 1e-4
        assert abs(sum(v * v for v in ev.group_norms(clipped=True).values()) ** 0.5 - ev.grad_norm_clipped) < 1e-4
    project = with_train(small_project(reg), clip_value=1e-4, clip_norm=0.0)
    trainer = Trainer(project, reg)
    trainer.fit(steps=1)
    for p in trainer.model.parameters():
        if p.grad is not None:
            assert float(p.grad.abs().max()) <= 1e-4 + 1e-9


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "adagrad", "rmsprop"])
def test_every_optimizer_lowers_the_loss(reg, opt):
    lr = {"sgd": 1.0, "adagrad": 0.05}.get(opt, 0.01)
    project = with_train(small_project(reg, hidden_size=24, layers=1), optimizer=opt, lr=lr, momentum=0.0)
    trainer = Trainer(project, reg)
    trainer.setup()
    before = trainer.evaluate("valid", 2)["loss"]
    trainer.fit(steps=25)
    after = trainer.evaluate("valid", 2)["loss"]
    assert after < before - 0.3, (opt, before, after)


def test_schedules():
    from workbench.core.project import TrainConfig
    z = TrainConfig(lr=1.0, schedule="step", decay_start=4, decay_factor=0.5)  # Zaremba et al. 2014
    assert [scheduled_lr(z, 0, e, 100, None) for e in range(7)] == [1, 1, 1, 1, 0.5, 0.25, 0.125]
    c = TrainConfig(lr=1.0, schedule="cosine", min_lr=0.0)
    assert scheduled_lr(c, 0, 0, 100, None) == 1.0
    assert abs(scheduled_lr(c, 50, 0, 100, None) - 0.5) < 1e-12
    assert abs(scheduled_lr(c, 100, 0, 100, None)) < 1e-12


def test_plateau_schedule_decays_when_validation_stalls(reg):
    project = with_train(small_project(reg), schedule="plateau", plateau_patience=0, decay_factor=0.5, lr=1e-3)
    trainer = Trainer(project, reg)
    trainer.setup()
    trainer.evaluate_and_track()
    trainer.evaluate_and_track()  # same weights: no improvement
    assert trainer._plateau["lr"] == pytest.approx(5e-4)


def test_truncated_bptt_k2(reg):
    project = with_train(small_project(reg), bptt_k2=4)
    cb = Losses()
    Trainer(project, reg, callbacks=[cb]).fit(steps=3)
    assert all(math.isfinite(x) for x in cb.losses)


def test_probes_record_gradient_through_time_and_sigma(reg):
    project = with_train(small_project(reg), probe_every=2, probe_len=12)
    trainer = Trainer(project, reg)
    trainer.fit(steps=4)
    run = project.history.current
    assert [g["step"] for g in run.gtt] == [2, 4]
    layers = run.gtt[-1]["layers"]
    assert set(layers) == {"rnn.0", "rnn.1"}
    for v in layers.values():
        assert len(v["dLT_dh"]) == len(v["dL_dh"]) == 12
        # the last-step loss reaches h_T directly and h_0 only through time: vanishing shows
        assert v["dLT_dh"][-1] > v["dLT_dh"][0] >= 0
        # the whole loss has a direct term at every step
        assert min(v["dL_dh"]) > 0
    assert any(k.startswith("sigma/rnn.0/") for k in run.series)
    assert "grad/rnn.0" in run.series and "grad_clipped/head" in run.series


def test_gradient_through_time_matches_autograd_on_the_fused_path(reg):
    """dL/dh_T from the per-step probe equals autograd through the fused model's last-layer outputs."""
    project = small_project(reg, layers=1)
    trainer = Trainer(project, reg)
    trainer.setup()
    from workbench.core.probes import GradientThroughTimeProbe
    batch = trainer.task.probe_batch(3, 10)
    gtt = GradientThroughTimeProbe(trainer.model, trainer.task, batch).run()
    model = trainer.model
    model.eval()
    emb = model.blocks["embed"]({"x": batch["tokens"]})[0]["y"]
    ys, _ = model.blocks["rnn"]({"x": emb}, model.blocks["rnn"].init_state(3, "cpu"))
    y = ys["y"].detach().requires_grad_()
    logits = model.blocks["head"]({"x": y})[0]["y"]
    loss = trainer.task.loss({"logits": logits}, batch)
    (g,) = torch.autograd.grad(loss, [y])
    # only at the last step is dL/dh_T equal to the direct term (nothing flows back into it from later)
    assert abs(float(g[-1].norm()) - gtt["rnn.0"]["dL_dh"][-1]) < 1e-6


def test_device_auto_and_cpu(reg):
    from workbench.core.device import resolve_device
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


def test_threads_behind_the_window(reg, monkeypatch):
    """Every core where training can run below the window's priority (Linux), else one core left for the GUI."""
    from workbench.core import device, threads
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads, "can_lower_priority", lambda: True)
    assert device.default_threads(behind_window=True) == 8
    monkeypatch.setattr(threads, "can_lower_priority", lambda: False)
    assert device.default_threads(behind_window=True) == 7
    assert device.default_threads(behind_window=False) == 8
    monkeypatch.setattr(device, "cpu_count", lambda: 1)
    assert device.default_threads(behind_window=True) == 1


def test_omp_num_threads_caps_the_default_threads(reg, monkeypatch, tmp_path):
    """OMP_NUM_THREADS, when a user or a scheduler sets it, caps the default (the trainer used to override it with
    every core); the project's own threads setting still wins."""
    from workbench.core import device, threads
    monkeypatch.setattr(device, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads, "can_lower_priority", lambda: False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert device.default_threads(behind_window=False) == 2 and device.default_threads(behind_window=True) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "16")
    assert device.default_threads(behind_window=False) == 8 and device.default_threads(behind_window=True) == 7
    for junk in ("", "0", "-3", "two", "4,2"):
        monkeypatch.setenv("OMP_NUM_THREADS", junk)
        assert device.default_threads(behind_window=False) == 8, junk
    # through a real (headless) run: the trainer sets what the variable asks for
    import torch
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        project = small_project(reg)
        project.train.threads = 0
        Trainer(project, reg).fit(steps=2)
        assert torch.get_num_threads() == 1
        assert device.describe_device(torch.device("cpu")) == "CPU (1 thread)"
    finally:
        torch.set_num_threads(before)


def test_best_checkpoint_tracking(reg):
    project = with_train(small_project(reg), eval_every=5)
    trainer = Trainer(project, reg)
    trainer.fit(steps=15)
    ckpt = trainer.checkpoint()
    assert trainer.best["metric"] == "valid/loss" and trainer.best["step"] in (5, 10, 15)
    assert any(k.startswith("best/") for k in ckpt.tensors)
    assert ckpt.trainer_state["best"] == trainer.best


def test_changed_graph_starts_a_new_run(reg):
    project = small_project(reg)
    t = Trainer(project, reg)
    t.fit(steps=2)
    t.checkpoint()
    project.graph.nodes["rnn"].params["hidden_size"] = 20
    t2 = Trainer(project, reg)
    t2.setup()
    assert t2.pos.step == 0 and len(project.history.runs) == 2
    assert any("graph changed" in n for n in t2.notices)


def test_epochs_and_step_decay_follow_the_data(reg, tmp_path):
    corpus = write_corpus(tmp_path, "abcdefgh\n" * 300)
    project = with_train(small_project(reg, **{"task.corpus": str(corpus)}), schedule="step", decay_start=1,
                         decay_factor=0.5, lr=1e-3, optimizer="sgd")
    cb = Losses()
    trainer = Trainer(project, reg, callbacks=[cb], base_dir=tmp_path)
    trainer.setup()
    per_epoch = trainer.task.num_batches("train", 4, 16)
    trainer.fit(epochs=2)
    assert trainer.pos.step == 2 * per_epoch and trainer.pos.epoch == 2
    lrs = [e.lr for e in cb.events]
    assert lrs[:per_epoch] == [1e-3] * per_epoch and lrs[per_epoch:] == [5e-4] * per_epoch
    assert cb.events[per_epoch - 1].epoch == 0 and cb.events[per_epoch].epoch == 1


def test_bptt_k2_is_refused_for_whole_sequence_tasks(reg):
    from workbench.core.settings import template_project
    project, _ = template_project(reg.template("adding-problem-lstm"), {"bptt_k2": "5"}, reg)
    with pytest.raises(TrainingError, match="bptt_k2"):
        Trainer(project, reg).setup()
