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


def test_lstm_decoding_step_runs_under_bf16_autocast(reg):
    """The several-rows decoding path (no gradients, row-major weight copies) under autocast: its products run in
    bfloat16 and the step matches float32 to bfloat16's precision (it used to refuse: addmm_ into a bf16 result)."""
    spec = reg.cell("lstm")
    torch.manual_seed(0)
    cell = spec.load()(5, 7, spec.params())
    x = torch.randn(6, 10, 5)
    with torch.no_grad():
        s32 = s16 = cell.init_state(10)
        for t in range(6):
            h32, s32 = cell.step(x[t], s32)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                h16, s16 = cell.step(x[t], s16)
            assert torch.allclose(h16.float(), h32, atol=3e-2), float((h16.float() - h32).abs().max())
    assert not torch.equal(h16.float(), h32)      # the products did run in bfloat16


def test_lstm_traced_sequence_runs_under_bf16_autocast(reg):
    """The recorder's whole-chunk path (every h_t from the fused kernel, the gates recomputed at once) under
    autocast: the same quantities as in float32, to bfloat16's precision."""
    spec = reg.cell("lstm")
    torch.manual_seed(0)
    cell = spec.load()(5, 7, spec.params())
    x = torch.randn(9, 2, 5)
    _, _, q32 = cell.sequence_traced(x, cell.init_state(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, _, q16 = cell.sequence_traced(x, cell.init_state(2))
    assert set(q16) == set(q32) == {"h", "c", "i", "f", "g", "o"}
    for name in q32:
        assert torch.allclose(q16[name].float(), q32[name], atol=5e-2), name


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
