"""Built-in cells against their torch references and the contract checks."""

import pytest
import torch

from workbench.plugin_system import discover
from workbench.testing.contracts import check_cell_spec


@pytest.fixture(scope="module")
def reg():
    return discover()


def test_every_builtin_cell_passes_the_contract(reg):
    for cell_id, spec in reg.items["cell"].items():
        if spec.distribution == "sequence-workbench":
            check_cell_spec(spec)


def test_lstm_step_equals_torch_lstmcell(reg):
    spec = reg.cell("lstm")
    torch.manual_seed(0)
    cell = spec.load()(5, 7, spec.params())
    ref = torch.nn.LSTMCell(5, 7)
    with torch.no_grad():
        ref.weight_ih.copy_(cell.rnn.weight_ih_l0)
        ref.weight_hh.copy_(cell.rnn.weight_hh_l0)
        ref.bias_ih.copy_(cell.rnn.bias_ih_l0)
        ref.bias_hh.copy_(cell.rnn.bias_hh_l0)
    x = torch.randn(4, 3, 5)
    state = cell.init_state(3)
    h_ref, c_ref = torch.zeros(3, 7), torch.zeros(3, 7)
    for t in range(4):
        gates = {}
        h, state = cell.step(x[t], state, gates)
        h_ref, c_ref = ref(x[t], (h_ref, c_ref))
        assert torch.allclose(h, h_ref, atol=1e-6) and torch.allclose(state[1], c_ref, atol=1e-6)
        assert set(gates) == {"i", "f", "g", "o"}
        f = gates["f"].detach()
        assert float(f.min()) >= 0.0 and float(f.max()) <= 1.0


def test_lstm_forget_bias_and_fused_switch(reg):
    spec = reg.cell("lstm")
    p = spec.params(forget_bias=2.0, fused=False)
    cell = spec.load()(3, 4, p)
    b = cell.rnn.bias_ih_l0 + cell.rnn.bias_hh_l0
    assert torch.allclose(b[4:8], torch.full((4,), 2.0))
    x = torch.randn(5, 2, 3)
    out_py, _ = cell.sequence(x, cell.init_state(2))
    cell.params = spec.params(forget_bias=2.0, fused=True)
    out_fused, _ = cell.sequence(x, cell.init_state(2))
    assert torch.allclose(out_py, out_fused, atol=1e-6)


def test_recurrent_weights_are_views_for_init(reg):
    spec = reg.cell("lstm")
    cell = spec.load()(3, 4, spec.params())
    cell.init_weights("identity", 0.1)
    W = cell.rnn.weight_hh_l0
    for k in range(4):
        assert torch.equal(W[4 * k:4 * k + 4], torch.eye(4))
    cell.init_weights("orthogonal", 0.1)
    for w in cell.recurrent_weights().values():
        assert torch.allclose(w @ w.T, torch.eye(4), atol=1e-5)
