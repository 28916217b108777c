"""The example plugin's own tests.  The ``seqwb_*`` fixtures come from the pytest plugin that Sequence Workbench
installs (``workbench.testing.pytest_plugin``); every plugin author gets them for free."""

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

NS = "seqwb-plugin-example"
TEMPLATES = ["parity-indrnn", "majority-gru", "echo-gru", "reverse-attention", "mean-gru"]


def test_every_contribution_passes_its_contract(seqwb_check_plugin):
    # cell, block, five tasks, decoder, five templates, feature track: each with its kind's contract checks
    results = seqwb_check_plugin(NS)
    assert len(results) == 14 and {r.status for r in results} == {"passed"}


def test_indrnn_with_other_settings_passes_the_cell_contract(seqwb_check_cell):
    seqwb_check_cell(f"{NS}.indrnn", {"activation": "tanh", "clip": 0.5})


def test_indrnn_step_is_the_paper_equation(seqwb_registry):
    spec = seqwb_registry.cell(f"{NS}.indrnn")
    torch.manual_seed(0)
    cell = spec.load()(3, 4, spec.params()).double()
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    out, (h1,) = cell.step(x, (h,))
    W, b = cell.input_linear.weight, cell.input_linear.bias
    torch.testing.assert_close(out, torch.relu(x @ W.T + cell.u * h + b))   # h_t = relu(W x_t + u*h_{t-1} + b)
    assert h1 is out


def test_after_step_clips_the_recurrent_weights(seqwb_registry):
    spec = seqwb_registry.cell(f"{NS}.indrnn")
    cell = spec.load()(3, 4, spec.params(recurrent_max=3.0, clip=0.5))
    with torch.no_grad():
        cell.after_step()          # what the trainer calls after every optimizer step
    assert float(cell.u.detach().abs().max()) <= 0.5


def test_the_parity_task_batches(seqwb_registry):
    assert seqwb_registry.task(f"{NS}.parity").distribution == "seqwb-plugin-example"
    spec = seqwb_registry.task(f"{NS}.parity")
    task = spec.load()(spec.params(length=5, valid_size=7))
    task.prepare()
    batch = next(task.batches("valid", 4, 5))
    assert batch["tokens"].shape == batch["targets"].shape == (5, 4)
    assert torch.equal(batch["targets"], batch["tokens"].cumsum(0) % 2)     # the parity of every prefix
    again = next(task.batches("train", 4, 5, epoch=1, start=2, seed=3))
    assert torch.equal(again["tokens"], next(task.batches("train", 4, 5, epoch=1, start=2, seed=3))["tokens"])


def test_running_parity_track(seqwb_registry):
    track = seqwb_registry.get("feature_track", f"{NS}.running_parity").load()
    assert track("0110a1").tolist() == [0, 1, 0, 0, 0, 1]
    assert isinstance(track(""), np.ndarray) and track("").shape == (0,)


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_trains_with_the_gradient_through_time_probe(seqwb_registry, tmp_path, template):
    from workbench.core.settings import template_project
    from workbench.core.training.trainer import Trainer
    project, _ = template_project(seqwb_registry.template(f"{NS}.{template}"),
                                  {"eval_every": "0", "probe_every": "1", "hidden_size": "8"}, seqwb_registry)
    end = Trainer(project, seqwb_registry, base_dir=tmp_path).fit(steps=2, final_eval=False)
    assert (end.status, end.step) == ("finished", 2)
    assert len(project.history.runs[-1].gtt) == 2        # the probe measured dL_T/dh_t at both steps


def test_min_p_decodes_the_reverse_task(seqwb_registry, tmp_path):
    from workbench.core.decode import run_decoder
    from workbench.core.settings import template_project
    from workbench.core.training.trainer import Trainer
    project, _ = template_project(seqwb_registry.template(f"{NS}.reverse-attention"),
                                 {"eval_every": "0", "probe_every": "0", "hidden_size": "8"}, seqwb_registry)
    trainer = Trainer(project, seqwb_registry, base_dir=tmp_path)
    trainer.fit(steps=2, final_eval=False)
    decoder = seqwb_registry.decoder(f"{NS}.min-p")
    result = run_decoder(decoder, trainer.model, trainer.task, {"max_len": 6}, prompt="abc", seed=1)
    assert 1 <= len(result.tokens) <= 6 and result.text == trainer.task.decode(result.tokens)
    assert result.tree.nodes[0].parent is None and result.alternatives[0]["node"] == len(result.tree.nodes) - 1
    again = run_decoder(decoder, trainer.model, trainer.task, {"max_len": 6}, prompt="abc", seed=1)
    assert again.tokens == result.tokens
