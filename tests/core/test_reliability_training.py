"""Training faults (issue 8): NaN/inf loss (stop or skip), out of memory, weights that do not fit, and exceptions
raised by a plugin's code.  Each ends in one clear message, and the file on disk keeps its last good checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from tests.helpers import small_project, with_train, write_corpus
from workbench import cli
from workbench.schema.errors import TrainingError
from workbench.core.projectfile import load_project, save_project
from workbench.core.training.events import Callback
from workbench.core.training.session import ModelSession
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover
from workbench.schema.specs import with_source
from workbench_plugins.char_lm import CharLMTask

torch.set_num_threads(1)


@pytest.fixture()
def reg():
    return discover()  # a fresh registry per test: some tests add contributions to it


def _cli_project(tmp_path: Path, reg, steps: int = 4) -> Path:
    """A small char-LM project on a local corpus, trained ``steps`` steps and saved (checkpoint at that step)."""
    corpus = write_corpus(tmp_path)
    project = with_train(small_project(reg, **{"task.corpus": corpus.name}), threads=1, log_every=1,
                         checkpoint_every=0)
    trainer = Trainer(project, reg, base_dir=tmp_path)
    trainer.fit(steps=steps)
    trainer.checkpoint()
    path = tmp_path / "p.seqwb"
    save_project(project, path)
    return path


def _poison_loss(monkeypatch, at_calls: set[int], value: float) -> None:
    """Make the char-LM loss ``value`` (NaN or inf) on the given training calls (1-based)."""
    real = CharLMTask.loss
    calls = {"n": 0}

    def loss(self, outputs, batch):
        out = real(self, outputs, batch)
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] in at_calls:
                return out * value
        return out

    monkeypatch.setattr(CharLMTask, "loss", loss)


# ---- NaN / inf loss ------------------------------------------------------------------------------------------------

def test_cli_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, reg, monkeypatch, capsys):
    path = _cli_project(tmp_path, reg, steps=4)
    before = load_project(path, registry=reg).checkpoint
    _poison_loss(monkeypatch, {3}, float("nan"))
    code = cli.main(["train", str(path), "--steps", "10", "--set", "threads=1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[-1] == ("seqwb: error: the loss became nan at step 7; the run stopped and the last good "
                                    "checkpoint is kept (try a lower lr or clipping)")
    after = load_project(path, registry=reg)
    assert after.checkpoint.step == 4
    assert all(torch.equal(before.weights[k], after.checkpoint.weights[k]) for k in before.weights)
    assert after.history.current.status == "failed" and "step 7" in after.history.current.message


def test_cli_inf_loss_with_skip_policy_skips_counts_and_logs(tmp_path, reg, monkeypatch, capsys):
    path = _cli_project(tmp_path, reg, steps=2)
    _poison_loss(monkeypatch, {2, 4}, float("inf"))
    code = cli.main(["train", str(path), "--steps", "5", "--set", "threads=1", "--set", "nan_policy=skip"])
    out, err = capsys.readouterr()
    assert code == 0
    assert ("seqwb: step 4: the loss or gradient is not finite (loss inf); step skipped as nan_policy=skip asks "
            "(1 skipped so far)") in err.splitlines()
    assert ("seqwb: step 6: the loss or gradient is not finite (loss inf); step skipped as nan_policy=skip asks "
            "(2 skipped so far)") in err.splitlines()
    assert out.splitlines()[-1] == (f"finished at step 7; saved {path} (2 step(s) skipped: non-finite loss or "
                                    f"gradient)")
    project = load_project(path, registry=reg)
    assert project.checkpoint.step == 7
    assert all(torch.isfinite(v).all() for v in project.checkpoint.weights.values())
    skipped = project.history.current.series["train/skipped_steps"]
    assert skipped.step == [4, 6] and skipped.value == [1.0, 2.0]


def test_nan_gradient_with_finite_loss_stops_naming_the_step(reg, monkeypatch):
    project = small_project(reg, threads=1)
    trainer = Trainer(project, reg)
    trainer.fit(steps=2)
    good = trainer.checkpoint()
    param = next(trainer.model.parameters())
    param.register_hook(lambda g: g * float("nan"))
    with pytest.raises(TrainingError, match=r"^the gradient norm became nan at step 3; the run stopped and the "
                                            r"last good checkpoint is kept"):
        trainer.fit(steps=3)
    assert project.checkpoint is good


# ---- out of memory -------------------------------------------------------------------------------------------------

def test_cli_out_of_memory_suggests_a_smaller_batch_and_corrupts_nothing(tmp_path, reg, monkeypatch, capsys):
    path = _cli_project(tmp_path, reg, steps=3)
    original = path.read_bytes()
    real = CharLMTask.loss
    calls = {"n": 0}

    def loss(self, outputs, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, outputs, batch)

    monkeypatch.setattr(CharLMTask, "loss", loss)
    code = cli.main(["train", str(path), "--steps", "10", "--set", "threads=1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[-1] == ("seqwb: error: out of memory at step 5 (batch_size 4, chunk_len 16): try a "
                                    "smaller batch_size or chunk_len; the last checkpoint is kept")
    after = load_project(path, registry=reg)  # the file is whole and keeps the checkpoint of step 3
    assert after.checkpoint.step == 3
    before = load_project(Path(_write(tmp_path / "orig.seqwb", original)), registry=reg).checkpoint
    assert all(torch.equal(before.weights[k], after.checkpoint.weights[k]) for k in before.weights)
    assert after.history.current.status == "failed"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_host_out_of_memory_runtime_error_gets_the_same_advice(reg, monkeypatch):
    project = small_project(reg, threads=1)
    trainer = Trainer(project, reg)
    trainer.setup()

    def loss(outputs, batch):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory: you tried "
                           "to allocate 1073741824 bytes. Out of memory")

    monkeypatch.setattr(trainer.task, "loss", loss)
    with pytest.raises(TrainingError, match=r"^out of memory at step 1 \(batch_size 4, chunk_len 16\): try a "
                                            r"smaller batch_size or chunk_len"):
        trainer.fit(steps=2)


# ---- weights that do not fit the graph ------------------------------------------------------------------------------

def _forged(reg, change) -> "object":
    """A trained project whose checkpoint claims to fit the graph but whose weights were changed by ``change``."""
    project = small_project(reg, threads=1)
    trainer = Trainer(project, reg)
    trainer.fit(steps=1)
    ckpt = trainer.checkpoint()
    change(ckpt.weights)
    return project


@pytest.mark.parametrize("change, message", [
    (lambda w: w.__setitem__("blocks.rnn.cells.0.rnn.weight_hh_l0", torch.zeros(7, 3)),
     "the saved weights do not fit this model: blocks.rnn.cells.0.rnn.weight_hh_l0 has shape [7, 3] in the file, the model "
     "needs [128, 32]"),
    (lambda w: w.__setitem__("blocks.rnn.cells.0.rnn.weight_hh_l0", torch.zeros(128, 32, dtype=torch.int64)),
     "the saved weights do not fit this model: blocks.rnn.cells.0.rnn.weight_hh_l0 is torch.int64 in the file, the model "
     "needs torch.float32"),
    (lambda w: w.pop("blocks.rnn.cells.0.rnn.weight_hh_l0"),
     "the saved weights do not fit this model: missing blocks.rnn.cells.0.rnn.weight_hh_l0 (the file's weights were made for "
     "a different graph)"),
    (lambda w: w.__setitem__("extra.weight", torch.zeros(2)),
     "the saved weights do not fit this model: unexpected extra.weight (the file's weights were made for a "
     "different graph)"),
])
def test_weights_of_wrong_shape_dtype_or_graph_give_one_clear_error(reg, change, message):
    project = _forged(reg, change)
    assert project.checkpoint.graph_hash == project.graph.content_hash()
    with pytest.raises(TrainingError) as info:
        Trainer(project, reg).setup()
    assert str(info.value) == message
    with pytest.raises(TrainingError) as info:
        ModelSession(reg).load(project)
    assert str(info.value) == message


def test_weights_for_a_different_graph_start_a_fresh_run_with_a_notice(reg):
    project = small_project(reg, threads=1)
    trainer = Trainer(project, reg)
    trainer.fit(steps=1)
    trainer.checkpoint()
    node = next(n for n in project.graph.nodes.values() if "hidden_size" in n.params)
    node.params["hidden_size"] = 24
    fresh = Trainer(project, reg)
    fresh.setup()
    assert fresh.pos.step == 0
    assert fresh.notices == ["the model graph changed since the last checkpoint: starting a new run from fresh "
                             "weights"]
    assert ModelSession(reg).load(project).trained is False


# ---- exceptions raised by plugin code -------------------------------------------------------------------------------

class BoomTask(CharLMTask):
    """A third-party task whose loss breaks at its third training step."""

    calls = 0

    def loss(self, outputs, batch):
        if torch.is_grad_enabled():
            BoomTask.calls += 1
            if BoomTask.calls == 3:
                raise ZeroDivisionError("labels went missing")
        return super().loss(outputs, batch)


class BadPrepareTask(CharLMTask):
    def prepare(self, vocab=None, progress=None):
        raise KeyError("vocab_file")


def _third_party_task(reg, factory: str):
    spec = dataclasses.replace(reg.task("char-lm"), id="boom-lm", factory=factory)
    reg.add("task", with_source(spec, "seqwb-evil-tasks", "evil"))


def test_exception_in_plugin_code_names_the_plugin_and_distribution(reg):
    _third_party_task(reg, f"{__name__}:BoomTask")
    BoomTask.calls = 0
    project = small_project(reg, threads=1)
    project.task = dataclasses.replace(project.task, id="boom-lm")
    with pytest.raises(TrainingError) as info:
        Trainer(project, reg).fit(steps=5)
    assert str(info.value) == ("training failed at step 3 in task 'boom-lm' (plugin distribution 'seqwb-evil-tasks', "
                               "entry point 'evil'): ZeroDivisionError: labels went missing")
    assert project.history.current.status == "failed"


def test_exception_in_a_builtin_plugin_names_the_builtin_distribution(reg, monkeypatch):
    project = small_project(reg, threads=1)
    trainer = Trainer(project, reg)
    trainer.setup()

    # a fault raised by code of the built-in task's module (compiled into that module's namespace)
    code = compile("def count(self, batch):\n    raise ValueError('count is broken')\n", "char_lm.py", "exec")
    scope = {"__name__": "workbench_plugins.char_lm"}
    exec(code, scope)
    monkeypatch.setattr(CharLMTask, "count", scope["count"])
    dist = reg.task("char-lm").distribution
    with pytest.raises(TrainingError) as info:
        trainer.fit(steps=2)
    assert str(info.value).startswith(f"training failed at step 1 in task 'char-lm' (plugin distribution {dist!r}")
    assert str(info.value).endswith("ValueError: count is broken")


def test_cli_plugin_exception_at_setup_names_the_plugin(tmp_path, reg, monkeypatch, capsys):
    _third_party_task(reg, f"{__name__}:BadPrepareTask")
    project = small_project(reg, threads=1)
    project.task = dataclasses.replace(project.task, id="boom-lm")
    path = tmp_path / "p.seqwb"
    save_project(project, path)
    original = path.read_bytes()
    monkeypatch.setattr("workbench.plugin_system.default_registry", lambda: reg)
    code = cli.main(["train", str(path), "--steps", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[-1] == ("seqwb: error: training could not start in task 'boom-lm' (plugin distribution "
                                    "'seqwb-evil-tasks', entry point 'evil'): KeyError: 'vocab_file'")
    assert path.read_bytes() == original  # nothing was written


class _Steps(Callback):
    def __init__(self):
        self.skipped = []

    def on_step_end(self, trainer, ev):
        self.skipped.append(ev.skipped)


def test_skip_policy_counts_skips_in_the_trainer(reg, monkeypatch):
    project = with_train(small_project(reg, threads=1), nan_policy="skip")
    _poison_loss(monkeypatch, {1, 2, 5}, float("nan"))
    cb = _Steps()
    trainer = Trainer(project, reg, callbacks=[cb])
    end = trainer.fit(steps=6)
    assert end.status == "finished" and trainer.skipped_steps == 3
    assert cb.skipped == [True, True, False, False, True, False]
