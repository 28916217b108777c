"""Errors that name the plugin (issue 17, point 4): where a non-finite loss comes from
(core.training.faults.nonfinite_origin), and exporting a cell that calls a custom torch.autograd.Function."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.api import Cell, CellSpec, NoParams, hookimpl
from workbench.plugin_system import discover

torch.set_num_threads(1)


class LogCell(Cell):
    """h = tanh(log(W x + b) + U h): the log of a negative pre-activation is NaN."""

    def __init__(self, input_size, hidden_size, params=None):
        super().__init__(input_size, hidden_size)
        self.W = nn.Linear(input_size, hidden_size)
        self.U = nn.Parameter(torch.eye(hidden_size) * 0.5)

    def step(self, x_t, state, gates=None):
        (h,) = state
        h = torch.tanh(torch.log(self.W(x_t)) + h @ self.U.T)
        return h, (h,)


class _Seq(torch.autograd.Function):
    """A whole-sequence tanh RNN with its own backward, as a fast hand-written kernel would be."""

    @staticmethod
    def forward(ctx, x, h0, W, b, U):
        out, h = [], h0
        for t in range(x.shape[0]):
            h = torch.tanh(x[t] @ W.T + b + h @ U.T)
            out.append(h)
        out = torch.stack(out)
        ctx.save_for_backward(x, h0, W, U, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, h0, W, U, out = ctx.saved_tensors
        gx, gW, gU, gb = torch.zeros_like(x), torch.zeros_like(W), torch.zeros_like(U), torch.zeros(W.shape[0])
        gh = torch.zeros_like(h0)
        for t in reversed(range(x.shape[0])):
            ga = (gh + grad[t]) * (1 - out[t] ** 2)
            gW += ga.T @ x[t]
            gU += ga.T @ (out[t - 1] if t else h0)
            gb += ga.sum(0)
            gx[t] = ga @ W
            gh = ga @ U
        return gx, gh, gW, gb, gU


class FunctionCell(Cell):
    """A tanh RNN whose fused sequence() is the custom autograd.Function above."""

    has_fused = True
    #: without gradients, run torch's own tanh-RNN kernel on the same weights (what the export message advises)
    kernel_without_grad = False

    def __init__(self, input_size, hidden_size, params=None):
        super().__init__(input_size, hidden_size)
        self.W = nn.Linear(input_size, hidden_size)
        self.U = nn.Parameter(torch.eye(hidden_size) * 0.5)

    def step(self, x_t, state, gates=None):
        (h,) = state
        h = torch.tanh(self.W(x_t) + h @ self.U.T)
        return h, (h,)

    def sequence(self, x, state):
        if self.kernel_without_grad and not torch.is_grad_enabled():
            weights = [self.W.weight, self.U, self.W.bias, torch.zeros_like(self.W.bias)]
            out, _ = torch.rnn_tanh(x, state[0].unsqueeze(0), weights, True, 1, 0.0, False, False, False)
            return out, (out[-1],)
        out = _Seq.apply(x, state[0], self.W.weight, self.W.bias, self.U)
        return out, (out[-1],)


class FixedFunctionCell(FunctionCell):
    kernel_without_grad = True


class Plugin:
    @hookimpl
    def seqwb_cells(self):
        return [CellSpec(id=name, title=name, version="1", params=NoParams, factory=f"{__name__}:{cls}",
                         has_fused=cls != "LogCell")
                for name, cls in (("log-cell", "LogCell"), ("function-cell", "FunctionCell"),
                                  ("fixed-function-cell", "FixedFunctionCell"))]


@pytest.fixture(scope="module")
def reg():
    return discover(extra=[("oddcells", Plugin())])


def _loaded(reg, tmp_path, cell: str):
    from workbench.core.settings import template_project
    from workbench.core.training.session import ModelSession
    project, _ = template_project(reg.template("char-lm"), {"cell": cell, "hidden_size": "6", "layers": "1",
                                                           "embed_size": "4", "task.max_chars": "4000"}, reg)
    return project, ModelSession(reg).load(project, tmp_path, "current", "cpu")


def _batch(loaded):
    batch = next(loaded.task.batches("train", 3, 8))
    return batch, loaded.model.init_state(3)


def test_a_nan_made_inside_a_plugin_cell_names_the_cell_and_its_layer(reg, tmp_path):
    from workbench.core.training.faults import nonfinite_origin
    project, loaded = _loaded(reg, tmp_path, "log-cell")
    batch, state = _batch(loaded)
    where = nonfinite_origin(loaded.model, batch, state, loaded.task, project, reg)
    assert where == (" in cell 'log-cell' (plugin oddcells (distribution (registered in code))) of layer rnn.0, "
                     "whose step() turned finite inputs into non-finite outputs")
    # the cells are left as they were: no watcher stays behind
    cell = loaded.model.recurrent_layers()[0][1]
    assert not {"step", "step_projected", "sequence"} & set(vars(cell))


def test_non_finite_parameters_and_a_non_finite_loss_are_named(reg, tmp_path):
    from workbench.core.training.faults import nonfinite_origin
    project, loaded = _loaded(reg, tmp_path, "lstm")
    batch, state = _batch(loaded)
    model, task = loaded.model, loaded.task
    assert nonfinite_origin(model, batch, state, task, project, reg) == ""      # nothing wrong: nothing to say
    task.loss = lambda outputs, batch: torch.tensor(float("nan"))
    assert nonfinite_origin(model, batch, state, task, project, reg) == (
        " in the loss of task 'char-lm' (plugin builtin-tasks (distribution sequence-workbench)): the model's "
        "outputs are finite")
    with torch.no_grad():
        next(model.block("embed").parameters())[1, 1] = float("inf")
    where = nonfinite_origin(model, batch, state, task, project, reg)
    assert where.startswith(" in block 'embed' ('embedding', plugin builtin-architectures (distribution "
                            "sequence-workbench)): its parameters ") and where.endswith(" are not finite")
    with torch.no_grad():
        next(model.recurrent_layers()[0][1].parameters()).fill_(float("nan"))
    assert nonfinite_origin(model, batch, state, task, project, reg).startswith(
        " in cell 'lstm' (plugin builtin-cells (distribution sequence-workbench)) of layer rnn.0: its parameters ")


def test_exporting_a_cell_with_a_custom_autograd_function_says_why_and_what_to_do(reg, tmp_path):
    from workbench.core.export import ExportError, export_model
    project, _ = _loaded(reg, tmp_path, "function-cell")
    out = tmp_path / "m.pt"
    with pytest.raises(ExportError) as info:
        export_model(project, reg, out, "torchscript", base_dir=tmp_path)
    message = str(info.value)
    assert message.startswith("TorchScript cannot save this model: it calls the custom torch.autograd.Function "
                              "'_Seq' from cell 'function-cell' (plugin oddcells (distribution (registered in "
                              "code))) of layer rnn.0 (test_plugin_errors.py, line ")
    assert "Export with --format onnx" in message and message.endswith("Nothing was written")
    assert "\n" not in message and not out.exists()
    # the advice works: without gradients the fixed cell runs a torch kernel, which TorchScript can hold
    project, _ = _loaded(reg, tmp_path, "fixed-function-cell")
    result = export_model(project, reg, out, "torchscript", base_dir=tmp_path)
    assert out.is_file() and result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    assert result.dynamic["tokens"] == ["time", "batch"]


def test_the_cli_prints_the_export_message_on_one_line(reg, tmp_path, monkeypatch, capsys):
    from workbench.cli import main
    from workbench.core.projectfile import project_plugins_used, save_project
    project, _ = _loaded(reg, tmp_path, "function-cell")
    path = tmp_path / "p.seqwb"
    save_project(project, path, plugins_used=project_plugins_used(project, reg))
    monkeypatch.setattr("workbench.plugin_system.loader._DEFAULT", reg)
    code = main(["export", str(path), "-o", str(tmp_path / "m.pt"), "--format", "torchscript", "--allow-untrained"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("seqwb: error: TorchScript cannot save this model: it calls the custom "
                          "torch.autograd.Function '_Seq' from cell 'function-cell'"), err


def test_training_stops_on_the_plugin_cells_nan_and_says_which_cell(reg, tmp_path):
    from workbench.core.settings import template_project
    from workbench.core.training.trainer import Trainer
    from workbench.schema.errors import TrainingError
    project, _ = template_project(reg.template("char-lm"), {"cell": "log-cell", "hidden_size": "6", "layers": "1",
                                                           "embed_size": "4", "task.max_chars": "4000",
                                                           "threads": "1"}, reg)
    with pytest.raises(TrainingError) as info:
        Trainer(project, reg, base_dir=tmp_path).fit(steps=2)
    assert str(info.value).startswith("the loss became nan at step 1 in cell 'log-cell' (plugin oddcells")
    assert "of layer rnn.0" in str(info.value) and "the last good checkpoint is kept" in str(info.value)
