"""Graph -> SequenceModel: forward (fused) equals the per-step path; start/step decode; parameter groups."""

import pytest
import torch

from tests.helpers import small_project
from workbench.core.build import build_model
from workbench.plugin_system import discover


@pytest.fixture(scope="module")
def reg():
    return discover()


def make(reg, **kw):
    project = small_project(reg, **kw)
    return build_model(project.graph, reg, reg.task("char-lm"), {"vocab": 30}), project


def test_forward_equals_step_path_outputs_and_gradients(reg):
    torch.manual_seed(0)
    model, _ = make(reg)
    tokens = torch.randint(0, 30, (9, 3))
    batch = {"tokens": tokens}
    out_f, st_f = model(batch, model.init_state(3))
    out_s, st_s = model.run_steps(batch, model.init_state(3))
    assert out_f["logits"].shape == (9, 3, 30)
    assert torch.allclose(out_f["logits"], out_s["logits"], atol=1e-5)
    g_f = torch.autograd.grad(out_f["logits"].square().sum(), list(model.parameters()))
    g_s = torch.autograd.grad(out_s["logits"].square().sum(), list(model.parameters()))
    for a, b in zip(g_f, g_s):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_step_api_continues_forward_state(reg):
    torch.manual_seed(1)
    model, _ = make(reg)
    model.eval()
    tokens = torch.randint(0, 30, (6, 1))
    out, _ = model({"tokens": tokens}, model.start(1))
    _, state = model({"tokens": tokens[:5]}, model.start(1))
    logits, _ = model.step(tokens[5], state)
    assert torch.allclose(logits, out["logits"][5], atol=1e-5)


def test_trace_reports_every_layer_state_and_gate(reg):
    model, _ = make(reg)
    trace = {}
    model.step_graph({"tokens": torch.tensor([1, 2])}, model.start(2), trace)
    assert set(trace) == {"rnn.0", "rnn.1"}
    assert set(trace["rnn.0"]) == {"h", "c", "i", "f", "g", "o"}
    assert trace["rnn.1"]["h"].shape == (2, 32)


def test_parameter_groups_and_recurrent_layers(reg):
    model, _ = make(reg)
    groups = model.parameter_groups()
    assert list(groups) == ["embed", "rnn.0", "rnn.1", "head"]
    assert [name for name, _ in model.recurrent_layers()] == ["rnn.0", "rnn.1"]
    n = sum(p.numel() for ps in groups.values() for _, p in ps)
    assert n == sum(p.numel() for p in model.parameters())


def test_cell_parameters_live_in_the_node_and_reach_the_cell(reg):
    from workbench.core.graph import analyze
    from workbench.core.settings import apply_project_settings
    project = small_project(reg, layers=1)
    apply_project_settings(project, {"rnn.cell.forget_bias": "2.5", "rnn.cell.fused": "false"}, reg)
    assert project.graph.nodes["rnn"].params["cell.forget_bias"] == 2.5
    model = build_model(project.graph, reg, reg.task("char-lm"), {"vocab": 30})
    cell = model.blocks["rnn"].cells[0]
    assert cell.params.forget_bias == 2.5 and cell.params.fused is False
    H = cell.hidden_size
    assert torch.allclose((cell.rnn.bias_ih_l0 + cell.rnn.bias_hh_l0)[H:2 * H], torch.full((H,), 2.5))
    # uniform init re-initialises the cell but keeps its forget-gate bias
    model.init_weights("uniform", 0.1)
    assert torch.allclose((cell.rnn.bias_ih_l0 + cell.rnn.bias_hh_l0)[H:2 * H], torch.full((H,), 2.5))
    assert float(model.blocks["head"].linear.weight.abs().max()) <= 0.1
    # a bad value for the cell is a graph problem naming it; switching cells drops settings the new cell lacks
    project.graph.nodes["rnn"].params["cell.forget_bias"] = "lots"
    assert any("rnn.cell.forget_bias: expected float" in p for p in
               analyze(project.graph, reg, reg.task("char-lm"), {"vocab": 30}).problems)
    project.graph.nodes["rnn"].params["cell.forget_bias"] = 1.0
    apply_project_settings(project, {"rnn.cell": "gru"}, reg)
    assert project.graph.nodes["rnn"].params.get("cell.forget_bias") is None
    assert project.graph.nodes["rnn"].params["cell.fused"] is False  # the GRU has `fused` too
    assert analyze(project.graph, reg, reg.task("char-lm"), {"vocab": 30}).ok
