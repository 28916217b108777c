"""The example plugin's own tests.  ``seqwb_check_cell`` and ``seqwb_registry`` come from the pytest plugin that
Sequence Workbench installs (``workbench.testing.pytest_plugin``); every plugin author gets them for free."""

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


def test_indrnn_passes_the_cell_contract(seqwb_check_cell):
    seqwb_check_cell("indrnn")


def test_indrnn_tanh_passes_the_cell_contract(seqwb_registry):
    from seqwb_plugin_example.plugin import IndRNNParams
    from workbench.testing.contracts import check_cell
    check_cell(seqwb_registry.cell("indrnn").load(), IndRNNParams(activation="tanh"))


def test_indrnn_step_is_the_paper_equation(seqwb_registry):
    spec = seqwb_registry.cell("indrnn")
    torch.manual_seed(0)
    cell = spec.load()(3, 4, spec.params()).double()
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    out, (h1,) = cell.step(x, (h,))
    W, b = cell.input_linear.weight, cell.input_linear.bias
    torch.testing.assert_close(out, torch.relu(x @ W.T + cell.u * h + b))   # h_t = relu(W x_t + u*h_{t-1} + b)
    assert h1 is out


def test_registration_and_the_parity_task(seqwb_registry):
    assert seqwb_registry.task("parity").distribution == "seqwb-plugin-example"
    task = seqwb_registry.task("parity").load()(seqwb_registry.task("parity").params(length=5, valid_size=7))
    task.prepare()
    batch = next(task.batches("valid", 4, 5))
    assert batch["tokens"].shape == batch["targets"].shape == (5, 4)
    assert torch.equal(batch["targets"], batch["tokens"].cumsum(0) % 2)     # the parity of every prefix
    again = next(task.batches("train", 4, 5, epoch=1, start=2, seed=3))
    assert torch.equal(again["tokens"], next(task.batches("train", 4, 5, epoch=1, start=2, seed=3))["tokens"])


def test_running_parity_track(seqwb_registry):
    track = seqwb_registry.items["feature_track"]["running_parity"].load()
    assert track("0110a1").tolist() == [0, 1, 0, 0, 0, 1]
    assert isinstance(track(""), np.ndarray) and track("").shape == (0,)


def test_the_template_builds_and_trains(seqwb_registry, tmp_path):
    from workbench.core.settings import template_project
    from workbench.core.training.trainer import Trainer
    project, _ = template_project(seqwb_registry.template("parity-indrnn"), {"eval_every": "0",
                                                                             "probe_every": "0"}, seqwb_registry)
    end = Trainer(project, seqwb_registry, base_dir=tmp_path).fit(steps=3, final_eval=False)
    assert (end.status, end.step) == ("finished", 3)
