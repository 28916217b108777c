"""The defaults plugins inherit: Task.loss_last_step (what the gradient-through-time probe measures L_T with),
workbench.api.last_step, Cell.init_weights (never into a derived tensor) and Cell.after_step."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.api import IGNORE, Cell, Task, last_step
from workbench.core.cells import after_optimizer_step

torch.set_num_threads(1)


class ClassifyAsTheDocsSay(Task):
    """Many-to-one: ``targets [B]``; the loss takes each sequence's last step of what the probe passes."""

    time_major = ("tokens",)

    def loss(self, outputs, batch):
        logits = outputs["logits"]
        if logits.dim() == 3:       # the per-step path (the probe): [T, B, C]
            logits = last_step(logits, batch.get("lengths"))
        return F.cross_entropy(logits, batch["targets"])


class LabelAsTheDocsSay(Task):
    """Sequence labelling: ``targets [T, B]`` with IGNORE where padded."""

    time_major = ("tokens", "targets")

    def loss(self, outputs, batch):
        logits = outputs["logits"]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1),
                               ignore_index=IGNORE)


def _grad_positions(task, outputs, batch) -> set[tuple[int, int]]:
    logits = outputs["logits"].detach().requires_grad_()
    task.loss_last_step({**outputs, "logits": logits}, batch).backward()
    nonzero = logits.grad.abs().sum(-1) > 0
    return {(int(t), int(b)) for t, b in nonzero.nonzero().tolist()}


def test_the_default_loss_last_step_of_a_classifier_is_its_loss_at_each_last_step():
    T, B, C = 5, 3, 4
    torch.manual_seed(0)
    lengths = torch.tensor([5, 2, 3])
    batch = {"tokens": torch.randint(1, 9, (T, B)), "lengths": lengths, "targets": torch.tensor([0, 3, 1])}
    outputs = {"logits": torch.randn(T, B, C)}
    task = ClassifyAsTheDocsSay(None)
    # the old default cut the targets [B] to [1] and crashed here
    got = task.loss_last_step(outputs, batch)
    want = F.cross_entropy(outputs["logits"][lengths - 1, torch.arange(B)], batch["targets"])
    torch.testing.assert_close(got, want)
    assert _grad_positions(task, outputs, batch) == {(4, 0), (1, 1), (2, 2)}


def test_the_default_loss_last_step_of_a_labeller_uses_each_sequences_last_real_token():
    T, B, C = 4, 2, 3
    torch.manual_seed(1)
    targets = torch.tensor([[1, 2], [0, 1], [2, IGNORE], [1, IGNORE]])
    batch = {"tokens": torch.randint(1, 5, (T, B)), "lengths": torch.tensor([4, 2]), "targets": targets}
    outputs = {"logits": torch.randn(T, B, C)}
    task = LabelAsTheDocsSay(None)
    got = task.loss_last_step(outputs, batch)
    want = F.cross_entropy(torch.stack([outputs["logits"][3, 0], outputs["logits"][1, 1]]), torch.tensor([1, 1]))
    torch.testing.assert_close(got, want)
    assert _grad_positions(task, outputs, batch) == {(3, 0), (1, 1)}


def test_without_lengths_or_a_declared_layout_the_last_step_is_cut():
    class Stream(LabelAsTheDocsSay):
        time_major = None

    torch.manual_seed(2)
    batch = {"tokens": torch.randint(0, 5, (6, 3)), "targets": torch.randint(0, 3, (6, 3)), "reset": True}
    outputs = {"logits": torch.randn(6, 3, 3)}
    got = Stream(None).loss_last_step(outputs, batch)
    torch.testing.assert_close(got, F.cross_entropy(outputs["logits"][-1], batch["targets"][-1]))


def test_last_step():
    x = torch.arange(24.0).view(4, 3, 2)
    assert torch.equal(last_step(x), x[-1])
    assert torch.equal(last_step(x, torch.tensor([1, 4, 9])), torch.stack([x[0, 0], x[3, 1], x[3, 2]]))


class DerivedRecurrence(Cell):
    """A cell with one real recurrent matrix and one derived from a vector (as IndRNN's diag(u))."""

    def __init__(self, input_size=2, hidden_size=3):
        super().__init__(input_size, hidden_size)
        self.U = nn.Parameter(torch.zeros(hidden_size, hidden_size))
        self.u = nn.Parameter(torch.full((hidden_size,), 0.5))
        self.after_steps = 0

    def step(self, x_t, state, gates=None):
        (h,) = state
        h = torch.tanh(x_t.sum(-1, keepdim=True) + h @ self.U.T + self.u * h)
        return h, (h,)

    def recurrent_weights(self):
        return {"U": self.U, "diag(u)": torch.diag(self.u)}

    def after_step(self):
        self.after_steps += 1
        self.u.clamp_(max=0.25)


def test_default_init_writes_the_parameters_and_not_a_derived_tensor():
    cell = DerivedRecurrence()
    with pytest.warns(RuntimeWarning, match=r"init 'identity' leaves 'diag\(u\)' as it is: it is derived"):
        cell.init_weights("identity", 0.1)
    assert torch.equal(cell.U, torch.eye(3))
    assert torch.equal(cell.u, torch.full((3,), 0.5))
    with warnings.catch_warnings():   # the built-in cells' recurrent matrices are views of parameters
        warnings.simplefilter("error")
        from workbench.plugin_system import discover
        spec = discover().cell("lstm")
        spec.load()(3, 4, spec.params()).init_weights("orthogonal", 0.1)


def test_after_optimizer_step_runs_every_cells_hook_without_gradients():
    model = nn.ModuleList([DerivedRecurrence(), nn.Linear(2, 2), nn.Sequential(DerivedRecurrence())])
    model[0].u.requires_grad_(True)
    after_optimizer_step(model)      # clamp_ on a leaf that requires grad: fails unless gradients are off
    assert [m.after_steps for m in (model[0], model[2][0])] == [1, 1]
    assert float(model[0].u.detach().max()) == 0.25


def test_the_trainer_runs_the_cells_after_step_hook_once_per_optimizer_step(reg):
    from tests.helpers import small_project, with_train
    from workbench.core.training.trainer import Trainer
    project = with_train(small_project(reg, threads=1), steps=3, eval_every=0)
    trainer = Trainer(project, reg)
    trainer.setup()
    cells = [cell for _, cell in trainer.model.recurrent_layers()]
    calls = []
    for cell in cells:
        cell.after_step = lambda cell=cell: calls.append(cell)
    trainer.fit(final_eval=False)
    assert len(calls) == 3 * len(cells)
