"""The built-in cell catalog: rnn, irnn, lstm, peephole-lstm, gru, mut1-3.

Against torch's reference cells, against a NumPy min-char-rnn, against hand-computed steps, the contract checks
(step path vs sequence path, gradcheck), and a short training run per cell.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.schema.params import field_info
from workbench.testing.contracts import check_cell_spec, check_step_matches_sequence

CATALOG = ("rnn", "irnn", "lstm", "peephole-lstm", "gru", "mut1", "mut2", "mut3")


pytestmark = pytest.mark.usefixtures("one_thread")


def make(reg, cell_id, input_size, hidden_size, dtype=torch.float32, **params):
    spec = reg.cell(cell_id)
    return spec.load()(input_size, hidden_size, spec.params(**params)).to(dtype)


# ---- registration -------------------------------------------------------------------------------------------

def test_catalog_specs_are_complete(reg):
    for cell_id in CATALOG:
        spec = reg.cell(cell_id)
        assert spec.distribution == "sequence-workbench"
        assert spec.description and "\n" not in spec.description, cell_id
        assert spec.paper, cell_id
        for info in field_info(spec.params):
            assert info.help, f"{cell_id}.{info.name} has no help text"
        cell = spec.load()(3, 4, spec.params())
        assert cell.has_fused == spec.has_fused, cell_id
    assert reg.cell("rnn").gates == () and reg.cell("irnn").gates == ()
    assert reg.cell("gru").gates == ("r", "z", "n")
    assert reg.cell("peephole-lstm").gates == ("i", "f", "g", "o") and not reg.cell("peephole-lstm").has_fused
    for m in ("mut1", "mut2", "mut3"):
        assert reg.cell(m).gates == ("z", "r") and reg.cell(m).state_names == ("h",)


@pytest.mark.parametrize("cell_id", CATALOG)
def test_cell_contract(reg, cell_id):
    """Shapes, gates, square recurrent matrices, sequence() == step() (outputs and gradients), gradcheck."""
    check_cell_spec(reg.cell(cell_id))


@pytest.mark.parametrize("cell_id,params", [
    ("rnn", {"fused": True}), ("rnn", {"fused": False}), ("rnn", {"nonlinearity": "relu"}),
    ("irnn", {"fused": True}), ("lstm", {"fused": True}), ("lstm", {"fused": False}),
    ("gru", {"fused": True}), ("gru", {"fused": False}),
    ("mut1", {"input_map": "projection"}), ("mut2", {"input_map": "projection"}),
])
def test_sequence_paths_equal_step_path(reg, cell_id, params):
    spec = reg.cell(cell_id)
    check_step_matches_sequence(spec.load(), spec.params(**params), input_size=5, hidden_size=7, T=7, batch=3)


@pytest.mark.parametrize("cell_id,params", [("lstm", {"fused": False}), ("gru", {"fused": False}),
                                            ("peephole-lstm", {})])
def test_hand_written_backward_through_time_gradcheck(reg, cell_id, params):
    """The Python sequence paths have their own backward: check it numerically, including the state gradients."""
    torch.manual_seed(1)
    cell = make(reg, cell_id, 3, 4, torch.float64, **params)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    state0 = tuple((torch.randn(2, 4, dtype=torch.float64) * 0.5).requires_grad_() for _ in cell.state_names)
    weights = tuple(cell.parameters())

    def run(x, *rest):
        out, state = cell.sequence(x, tuple(rest[:len(state0)]))
        return (out * torch.arange(1.0, 6.0, dtype=torch.float64).view(5, 1, 1),) + tuple(state)

    assert torch.autograd.gradcheck(run, (x, *state0), eps=1e-6, atol=1e-6)
    # parameters: compare with the autograd step loop on a loss that uses the outputs and every final state
    out, st = cell.sequence(x, state0)
    out2, st2 = cell.sequence_steps(x, state0)
    loss = (out ** 3).sum() + sum((s * s.roll(1, 1)).sum() for s in st)
    loss2 = (out2 ** 3).sum() + sum((s * s.roll(1, 1)).sum() for s in st2)
    g = torch.autograd.grad(loss, (x, *state0, *weights))
    g2 = torch.autograd.grad(loss2, (x, *state0, *weights))
    for a, b in zip(g, g2):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("cell_id", CATALOG)
def test_zero_length_sequence_keeps_the_state(reg, cell_id):
    for params in ({"fused": False}, {"fused": True}) if cell_id in ("rnn", "irnn", "lstm", "gru") else ({},):
        cell = make(reg, cell_id, 3, 4, **params)
        state = tuple(torch.randn(2, 4) for _ in cell.state_names)
        out, new = cell.sequence(torch.zeros(0, 2, 3), state)
        assert out.shape == (0, 2, 4) and all(torch.equal(a, b) for a, b in zip(new, state))


# ---- against torch's reference cells ------------------------------------------------------------------------

def _run_against(cell, ref, x, ref_state, compare):
    state = cell.init_state(x.shape[1])
    for x_t in x:
        gates: dict = {}
        h, state = cell.step(x_t, state, gates)
        ref_state = ref(x_t, ref_state)
        compare(h, state, ref_state, gates)


def test_rnn_step_equals_torch_rnncell(reg):
    for nonlinearity in ("tanh", "relu"):
        torch.manual_seed(0)
        cell = make(reg, "rnn", 5, 7, nonlinearity=nonlinearity)
        ref = torch.nn.RNNCell(5, 7, nonlinearity=nonlinearity)
        with torch.no_grad():
            ref.weight_ih.copy_(cell.rnn.weight_ih_l0)
            ref.weight_hh.copy_(cell.rnn.weight_hh_l0)
            ref.bias_ih.copy_(cell.rnn.bias_ih_l0)
            ref.bias_hh.copy_(cell.rnn.bias_hh_l0)

        def compare(h, state, h_ref, gates):
            assert torch.allclose(h, h_ref, atol=1e-6) and gates == {}

        _run_against(cell, ref, torch.randn(6, 3, 5), torch.zeros(3, 7), compare)


def test_lstm_step_equals_torch_lstmcell(reg):
    torch.manual_seed(0)
    cell = make(reg, "lstm", 5, 7, forget_bias=0.5)
    ref = torch.nn.LSTMCell(5, 7)
    with torch.no_grad():
        ref.weight_ih.copy_(cell.rnn.weight_ih_l0)
        ref.weight_hh.copy_(cell.rnn.weight_hh_l0)
        ref.bias_ih.copy_(cell.rnn.bias_ih_l0)
        ref.bias_hh.copy_(cell.rnn.bias_hh_l0)

    def compare(h, state, ref_state, gates):
        assert torch.allclose(h, ref_state[0], atol=1e-6) and torch.allclose(state[1], ref_state[1], atol=1e-6)
        assert set(gates) == {"i", "f", "g", "o"}

    _run_against(cell, ref, torch.randn(6, 3, 5), (torch.zeros(3, 7), torch.zeros(3, 7)), compare)


def test_gru_step_equals_torch_grucell(reg):
    torch.manual_seed(0)
    cell = make(reg, "gru", 5, 7)
    ref = torch.nn.GRUCell(5, 7)
    with torch.no_grad():
        ref.weight_ih.copy_(cell.rnn.weight_ih_l0)
        ref.weight_hh.copy_(cell.rnn.weight_hh_l0)
        ref.bias_ih.copy_(cell.rnn.bias_ih_l0)
        ref.bias_hh.copy_(cell.rnn.bias_hh_l0)

    def compare(h, state, h_ref, gates):
        assert torch.allclose(h, h_ref, atol=1e-6)
        assert set(gates) == {"r", "z", "n"}
        assert float(gates["z"].detach().min()) >= 0 and float(gates["z"].detach().max()) <= 1

    _run_against(cell, ref, torch.randn(6, 3, 5), torch.zeros(3, 7), compare)


# ---- the vanilla RNN against a NumPy min-char-rnn -----------------------------------------------------------

def numpy_char_rnn(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    """Loss and gradients of Karpathy's min-char-rnn equations, written out in NumPy (column vectors)."""
    V = Wxh.shape[1]
    xs, hs, ps = {}, {-1: hprev.copy()}, {}
    loss = 0.0
    for t, (i, j) in enumerate(zip(inputs, targets)):
        xs[t] = np.zeros((V, 1))
        xs[t][i] = 1.0
        hs[t] = np.tanh(Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
        y = Why @ hs[t] + by
        e = np.exp(y - y.max())
        ps[t] = e / e.sum()
        loss -= np.log(ps[t][j, 0])
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dh_next = np.zeros_like(hprev)
    for t in reversed(range(len(inputs))):
        dy = ps[t].copy()
        dy[targets[t]] -= 1.0                          # softmax + cross-entropy
        dWhy += dy @ hs[t].T
        dby += dy
        dh = Why.T @ dy + dh_next
        draw = (1.0 - hs[t] ** 2) * dh                 # through tanh
        dbh += draw
        dWxh += draw @ xs[t].T
        dWhh += draw @ hs[t - 1].T
        dh_next = Whh.T @ draw
    return loss, (dWxh, dWhh, dWhy, dbh, dby)


@pytest.mark.parametrize("path", ["sequence", "step"])
def test_vanilla_rnn_equals_numpy_min_char_rnn(reg, path):
    torch.manual_seed(3)
    V, H, T = 6, 5, 9
    cell = make(reg, "rnn", V, H, torch.float64)                    # fused: torch.nn.RNN
    head = torch.nn.Linear(H, V).double()
    with torch.no_grad():
        cell.rnn.bias_hh_l0.zero_()                                # min-char-rnn has a single bias b_h
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, V, T)
    targets = rng.integers(0, V, T)
    hprev = rng.normal(0, 0.5, (H, 1))

    x = torch.nn.functional.one_hot(torch.as_tensor(inputs), V).double().unsqueeze(1)    # [T, 1, V]
    h0 = (torch.as_tensor(hprev.T),)
    if path == "sequence":
        hs, _ = cell.sequence(x, h0)
    else:
        outs, state = [], h0
        for x_t in x:
            h, state = cell.step(x_t, state)
            outs.append(h)
        hs = torch.stack(outs)
    logits = head(hs[:, 0])
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(targets), reduction="sum")
    loss.backward()

    def np_(t):
        return t.detach().numpy().copy()

    ref_loss, (dWxh, dWhh, dWhy, dbh, dby) = numpy_char_rnn(
        inputs, targets, hprev, np_(cell.rnn.weight_ih_l0), np_(cell.rnn.weight_hh_l0), np_(head.weight),
        np_(cell.rnn.bias_ih_l0)[:, None], np_(head.bias)[:, None])
    assert abs(loss.item() - ref_loss) < 1e-6
    np.testing.assert_allclose(np_(cell.rnn.weight_ih_l0.grad), dWxh, atol=1e-6)
    np.testing.assert_allclose(np_(cell.rnn.weight_hh_l0.grad), dWhh, atol=1e-6)
    np.testing.assert_allclose(np_(head.weight.grad), dWhy, atol=1e-6)
    np.testing.assert_allclose(np_(cell.rnn.bias_ih_l0.grad), dbh[:, 0], atol=1e-6)
    np.testing.assert_allclose(np_(cell.rnn.bias_hh_l0.grad), dbh[:, 0], atol=1e-6)
    np.testing.assert_allclose(np_(head.bias.grad), dby[:, 0], atol=1e-6)


# ---- peephole LSTM ------------------------------------------------------------------------------------------

def test_peephole_terms_matter_and_vanish_into_the_lstm(reg):
    torch.manual_seed(0)
    peep = make(reg, "peephole-lstm", 4, 6, torch.float64, forget_bias=0.3)
    lstm = make(reg, "lstm", 4, 6, torch.float64, forget_bias=0.3)
    with torch.no_grad():
        lstm.rnn.weight_ih_l0.copy_(peep.weight_ih)
        lstm.rnn.weight_hh_l0.copy_(peep.weight_hh)
        lstm.rnn.bias_ih_l0.copy_(peep.bias)
        lstm.rnn.bias_hh_l0.zero_()
    x = torch.randn(7, 3, 4, dtype=torch.float64)
    state0 = (torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64))
    out_l, st_l = lstm.sequence(x, state0)
    out_p, _ = peep.sequence(x, state0)
    assert peep.peephole.abs().min() > 0
    assert (out_p - out_l).abs().max() > 1e-3, "the peephole weights should change the outputs"
    with torch.no_grad():
        peep.peephole.zero_()
    out_p, st_p = peep.sequence(x, state0)
    assert torch.allclose(out_p, out_l, atol=1e-12) and torch.allclose(st_p[1], st_l[1], atol=1e-12)
    # and one peephole at a time: the output gate sees c_t, not c_{t-1}
    with torch.no_grad():
        peep.peephole[2].fill_(0.7)
    h, (_, c) = peep.step(x[0], state0)
    gates_l: dict = {}
    _, (_, c_l) = lstm.step(x[0], state0, gates_l)
    o = torch.sigmoid(x[0] @ peep.weight_ih[18:].T + state0[0] @ peep.weight_hh[18:].T + peep.bias[18:] + 0.7 * c_l)
    assert torch.allclose(c, c_l, atol=1e-12) and torch.allclose(h, o * torch.tanh(c_l), atol=1e-12)


def test_peephole_zero_init_option(reg):
    cell = make(reg, "peephole-lstm", 3, 4, peephole_init="zero", forget_bias=2.0)
    assert torch.count_nonzero(cell.peephole) == 0
    assert torch.all(cell.bias[4:8] == 2.0)


# ---- IRNN -----------------------------------------------------------------------------------------------------

def test_irnn_identity_init(reg):
    torch.manual_seed(0)
    cell = make(reg, "irnn", 5, 8)
    eye = torch.eye(8)
    assert cell.nonlinearity == "relu" and cell.rnn.nonlinearity == "relu"
    assert torch.equal(cell.rnn.weight_hh_l0, eye)
    assert torch.count_nonzero(cell.rnn.bias_ih_l0) == 0 and torch.count_nonzero(cell.rnn.bias_hh_l0) == 0
    assert 0 < float(cell.rnn.weight_ih_l0.detach().abs().max()) < 0.01             # small random input weights
    with torch.no_grad():
        for p in cell.parameters():
            p.uniform_(-1, 1)
    cell.init_weights("default", 0.1)
    assert torch.equal(cell.rnn.weight_hh_l0, eye)
    assert torch.count_nonzero(cell.rnn.bias_ih_l0) == 0 and torch.count_nonzero(cell.rnn.bias_hh_l0) == 0
    assert torch.equal(cell.recurrent_weights()["W_hh"], eye)
    scaled = make(reg, "irnn", 5, 8, identity_scale=0.01)
    assert torch.allclose(scaled.rnn.weight_hh_l0, 0.01 * eye)
    scaled.init_weights("identity", 0.1)
    assert torch.allclose(scaled.rnn.weight_hh_l0, 0.01 * eye)
    # with zero input the state is carried unchanged (ReLU of a non-negative state under W_hh = I)
    h0 = torch.rand(2, 8)
    h, _ = cell.step(torch.zeros(2, 5), (h0,))
    assert torch.equal(h, h0)


# ---- MUT1-3: one step by hand -------------------------------------------------------------------------------

def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def _np(t):
    return t.detach().double().numpy()


def test_mut_single_steps_by_hand(reg):
    torch.manual_seed(0)
    H = 3
    x = torch.tensor([[0.5, -1.0, 0.25], [-0.3, 0.8, 0.1]], dtype=torch.float64)
    h = torch.tensor([[0.2, -0.4, 0.6], [0.0, 0.3, -0.1]], dtype=torch.float64)
    X, Hh = _np(x), _np(h)

    # MUT1: z = sigm(W_xz x + b_z), r = sigm(W_xr x + W_hr h + b_r), h' = tanh(W_hh(r*h) + tanh(x) + b_h)*z + h*(1-z)
    c = make(reg, "mut1", 3, H, torch.float64)
    W, b = _np(c.weight_ih), _np(c.bias)
    z = _sig(X @ W[:H].T + b[:H])
    r = _sig(X @ W[H:].T + Hh @ _np(c.weight_hr).T + b[H:2 * H])
    want = np.tanh((r * Hh) @ _np(c.weight_hh).T + np.tanh(X) + b[2 * H:]) * z + Hh * (1 - z)
    gates: dict = {}
    got, _ = c.step(x, (h,), gates)
    np.testing.assert_allclose(_np(got), want, atol=1e-12)
    np.testing.assert_allclose(_np(gates["z"]), z, atol=1e-12)
    np.testing.assert_allclose(_np(gates["r"]), r, atol=1e-12)

    # MUT2: z = sigm(W_xz x + W_hz h + b_z), r = sigm(x + W_hr h + b_r), h' = tanh(W_hh(r*h) + W_xh x + b_h)*z + h*(1-z)
    c = make(reg, "mut2", 3, H, torch.float64)
    W, b, Wh = _np(c.weight_ih), _np(c.bias), _np(c.weight_hzr)
    z = _sig(X @ W[:H].T + Hh @ Wh[:H].T + b[:H])
    r = _sig(X + Hh @ Wh[H:].T + b[H:2 * H])
    want = np.tanh((r * Hh) @ _np(c.weight_hh).T + X @ W[H:].T + b[2 * H:]) * z + Hh * (1 - z)
    gates = {}
    got, _ = c.step(x, (h,), gates)
    np.testing.assert_allclose(_np(got), want, atol=1e-12)
    np.testing.assert_allclose(_np(gates["r"]), r, atol=1e-12)

    # MUT3: z = sigm(W_xz x + W_hz tanh(h) + b_z), r = sigm(W_xr x + W_hr h + b_r),
    #       h' = tanh(W_hh(r*h) + W_xh x + b_h)*z + h*(1-z)
    c = make(reg, "mut3", 3, H, torch.float64)
    W, b = _np(c.weight_ih), _np(c.bias)
    z = _sig(X @ W[:H].T + np.tanh(Hh) @ _np(c.weight_hz).T + b[:H])
    r = _sig(X @ W[H:2 * H].T + Hh @ _np(c.weight_hr).T + b[H:2 * H])
    want = np.tanh((r * Hh) @ _np(c.weight_hh).T + X @ W[2 * H:].T + b[2 * H:]) * z + Hh * (1 - z)
    gates = {}
    got, _ = c.step(x, (h,), gates)
    np.testing.assert_allclose(_np(got), want, atol=1e-12)
    np.testing.assert_allclose(_np(gates["z"]), z, atol=1e-12)


def test_mut_input_projection_when_sizes_differ(reg):
    """MUT1's tanh(x) and MUT2's unweighted x need x hidden-sized: a learned P x stands in when sizes differ."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, dtype=torch.float64)
    h = torch.randn(2, 3, dtype=torch.float64) * 0.5
    same = make(reg, "mut1", 3, 3)
    assert same.weight_xp is None
    assert make(reg, "mut1", 3, 3, input_map="projection").weight_xp.shape == (3, 3)
    assert make(reg, "mut3", 5, 3).weight_xp is None
    c = make(reg, "mut1", 5, 3, torch.float64)
    assert c.weight_xp.shape == (3, 5)
    H, W, b, P = 3, _np(c.weight_ih), _np(c.bias), _np(c.weight_xp)
    X, Hh = _np(x), _np(h)
    z = _sig(X @ W[:H].T + b[:H])
    r = _sig(X @ W[H:].T + Hh @ _np(c.weight_hr).T + b[H:2 * H])
    want = np.tanh((r * Hh) @ _np(c.weight_hh).T + np.tanh(X @ P.T) + b[2 * H:]) * z + Hh * (1 - z)
    got, _ = c.step(x, (h,))
    np.testing.assert_allclose(_np(got), want, atol=1e-12)
    c = make(reg, "mut2", 5, 3, torch.float64)
    W, b, Wh, P = _np(c.weight_ih), _np(c.bias), _np(c.weight_hzr), _np(c.weight_xp)
    r = _sig(X @ P.T + Hh @ Wh[H:].T + b[H:2 * H])
    gates: dict = {}
    c.step(x, (h,), gates)
    np.testing.assert_allclose(_np(gates["r"]), r, atol=1e-12)


def test_mut_update_bias(reg):
    c = make(reg, "mut3", 4, 5, update_bias=-2.0)
    assert torch.all(c.bias[:5] == -2.0)
    c.init_weights("default", 0.1)
    assert torch.all(c.bias[:5] == -2.0)


# ---- init -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell_id", CATALOG)
def test_recurrent_weights_are_writable_views(reg, cell_id):
    torch.manual_seed(0)
    cell = make(reg, cell_id, 3, 4)
    x = torch.randn(2, 3)
    mats = cell.recurrent_weights()
    assert mats, cell_id
    cell.init_weights("orthogonal", 0.1)
    for name, w in cell.recurrent_weights().items():
        assert torch.allclose(w @ w.T, torch.eye(4), atol=1e-5), (cell_id, name)
    params_before = {n: p.detach().clone() for n, p in cell.named_parameters()}
    cell.init_weights("identity", 0.1)
    for name, w in cell.recurrent_weights().items():
        assert torch.equal(w, torch.eye(4)), (cell_id, name)
    changed = [n for n, p in cell.named_parameters() if not torch.equal(p, params_before[n])]
    assert changed, cell_id
    cell.init_weights("uniform", 0.05)
    assert all(float(p.detach().abs().max()) <= 0.05 + 1e-7 or "bias" in n for n, p in cell.named_parameters())
    h, _ = cell.step(x, cell.init_state(2))
    assert torch.isfinite(h).all()


# ---- every cell learns ----------------------------------------------------------------------------------------

LEARNERS = [(c, {}) for c in CATALOG] + [("lstm", {"fused": False}), ("gru", {"fused": False})]


@pytest.mark.parametrize("cell_id,params", LEARNERS)
def test_every_cell_learns_a_tiny_memory_task(reg, cell_id, params):
    """Recall the previous symbol: 60 Adam steps take the loss far below chance (ln 3).

    The IRNN is allowed a smaller drop: W_hh = I with ReLU units sums every input seen so far, which is what makes
    it carry information over long spans, and it has to unlearn that on a one-step memory task.
    """
    torch.manual_seed(0)
    V, H, T, B = 3, 16, 10, 32
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, V, (T, B), generator=g)
    x = torch.nn.functional.one_hot(tokens, V).float()
    cell = make(reg, cell_id, V, H, **params)
    head = torch.nn.Linear(H, V)
    opt = torch.optim.Adam([*cell.parameters(), *head.parameters()], lr=0.02)
    losses = []
    for _ in range(60):
        out, _ = cell.sequence(x, cell.init_state(B))
        loss = torch.nn.functional.cross_entropy(head(out[1:]).reshape(-1, V), tokens[:-1].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    factor = 0.75 if cell_id == "irnn" else 0.25
    assert losses[-1] < factor * losses[0], f"{cell_id}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"


@pytest.mark.parametrize("cell_id,params", [("lstm", {"fused": True}), ("gru", {"fused": True}),
                                            ("rnn", {"fused": True}), ("peephole-lstm", {})])
def test_the_contract_checks_the_recorders_traced_path(reg, cell_id, params):
    """check_traced_matches_steps passes for the cells' own sequence_traced and catches a wrong one (a gate off by
    a little, the quantities in another order, one missing)."""
    from workbench.testing.contracts import check_traced_matches_steps
    spec = reg.cell(cell_id)
    factory, p = spec.load(), spec.params(**params)
    check_traced_matches_steps(factory, p)

    def broken(change):
        def make_cell(i, h, q):
            cell = factory(i, h, q)
            original = cell.sequence_traced

            def traced(x, state):
                out, final, quantities = original(x, state)
                return out, final, change(dict(quantities))
            cell.sequence_traced = traced
            return cell
        return make_cell

    last = list(spec.state_names + spec.gates)[-1]
    with pytest.raises(AssertionError, match="differs by"):
        check_traced_matches_steps(broken(lambda q: {**q, last: q[last] + 1e-3}), p)
    with pytest.raises(AssertionError, match="names and order"):
        check_traced_matches_steps(broken(lambda q: dict(reversed(list(q.items())))) if len(spec.state_names
                                   + spec.gates) > 1 else broken(lambda q: {**q, "extra": q[last]}), p)
    with pytest.raises(AssertionError, match="names and order"):
        check_traced_matches_steps(broken(lambda q: {k: v for k, v in q.items() if k != last}), p)
