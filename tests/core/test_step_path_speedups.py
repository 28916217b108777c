"""The fast per-step paths give the numbers of the plain per-step path and of the fused kernels.

Three ways through a whole sequence, on the same weights:

* plain: ``Cell.sequence_steps`` — the cell's step in a Python loop, autograd recording every operation;
* optimised: ``fused=False`` for the built-in LSTM and GRU — inputs projected for all timesteps in one product,
  the recurrence written into preallocated buffers, and a hand-written backward through time;
* fused: ``torch.nn.LSTM`` / ``torch.nn.GRU``.

Outputs, final states and every gradient (inputs, initial state, parameters) must agree to 1e-5 in float32, over
one chunk and over two chunks with the state carried between them (with and without cutting the graph between
chunks, as truncated BPTT does).  A third-party-style cell that provides only its step gets the same checks against
a step-by-step loop, in both API styles (split ``input_projection`` + ``step_projected``, or a single ``step``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import pytest
import torch
import torch.nn.functional as F

from workbench.core.cells import Cell

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")


def _make(reg, cell_id, input_size, hidden_size, **params):
    spec = reg.cell(cell_id)
    torch.manual_seed(0)
    cell = spec.load()(input_size, hidden_size, spec.params(**params))
    # non-trivial weights everywhere (the default init leaves the biases small and the forget bias at 1)
    with torch.no_grad():
        for p in cell.parameters():
            p.uniform_(-0.4, 0.4)
    return cell


def _paths(cell):
    """name -> callable(x, state) running the whole sequence that way."""
    def with_fused(flag):
        def run(x, state):
            cell.params.fused = flag
            return cell.sequence(x, state)
        return run
    return {"plain": cell.sequence_steps, "optimised": with_fused(False), "fused": with_fused(True)}


def _chunked_run(run, cell, xs, state0, detach_between: bool):
    """Run the chunks in order, carrying the state; a loss that uses every output and the final state."""
    state = state0
    loss = 0.0
    outs = []
    for k, x in enumerate(xs):
        if detach_between and k > 0:
            state = tuple(s.detach() for s in state)
        out, state = run(x, state)
        outs.append(out)
        weights = torch.linspace(0.5, 1.5, out.shape[0]).view(-1, 1, 1)
        loss = loss + (out.pow(3) * weights).sum()
    loss = loss + sum((s * s.roll(1, 1)).sum() for s in state)
    return torch.cat(outs), state, loss


def _compare_paths(cell, T_chunks, B=4, detach_between=False):
    torch.manual_seed(1)
    xs = [torch.randn(T, B, cell.input_size, requires_grad=True) for T in T_chunks]
    state0 = tuple((torch.randn(B, cell.hidden_size) * 0.5).requires_grad_() for _ in cell.state_names)
    params = [p for _, p in cell.named_parameters()]
    names = [f"x{k}" for k in range(len(xs))] + [f"state0.{n}" for n in cell.state_names] + \
            [n for n, _ in cell.named_parameters()]
    results = {}
    for name, run in _paths(cell).items():
        out, state, loss = _chunked_run(run, cell, xs, state0, detach_between)
        grads = torch.autograd.grad(loss, [*xs, *state0, *params], allow_unused=True)
        results[name] = (out.detach(), [s.detach() for s in state], grads)
    ref_out, ref_state, ref_grads = results["plain"]
    assert ref_out.abs().max() > 0.05        # the comparison is not between zeros
    for name in ("optimised", "fused"):
        out, state, grads = results[name]
        assert (out - ref_out).abs().max().item() < TOL, f"{name}: outputs differ"
        for sn, a, b in zip(cell.state_names, state, ref_state):
            assert (a - b).abs().max().item() < TOL, f"{name}: final state {sn} differs"
        for gn, a, b in zip(names, grads, ref_grads):
            if a is None or b is None:
                assert a is None and b is None, f"{name}: gradient of {gn} missing on one side"
                continue
            scale = max(1.0, b.abs().max().item())
            assert (a - b).abs().max().item() < TOL * scale, f"{name}: gradient of {gn} differs"
    return results, xs, state0


@pytest.mark.parametrize("cell_id", ["lstm", "gru"])
def test_optimised_step_path_equals_plain_and_fused_one_chunk(reg, cell_id):
    cell = _make(reg, cell_id, 6, 16)
    res, _, _ = _compare_paths(cell, [12])
    # the initial state gets a gradient on every path (it is carried in from the previous chunk in training)
    assert all(g is not None and g.abs().sum() > 0 for g in res["optimised"][2][1:1 + len(cell.state_names)])


@pytest.mark.parametrize("cell_id", ["lstm", "gru"])
@pytest.mark.parametrize("detach_between", [False, True])
def test_optimised_step_path_carries_state_across_chunks(reg, cell_id, detach_between):
    cell = _make(reg, cell_id, 5, 12)
    res, xs, state0 = _compare_paths(cell, [7, 1, 5], detach_between=detach_between)
    x0_grad = res["optimised"][2][0]
    # the first chunk's own loss term alone, on the optimised path
    cell.params.fused = False
    out0, _, _ = _chunked_run(cell.sequence, cell, xs[:1], state0, detach_between)
    own = torch.autograd.grad((out0.pow(3) * torch.linspace(0.5, 1.5, 7).view(-1, 1, 1)).sum(), xs[0])[0]
    if detach_between:
        # truncated BPTT: the later chunks' losses do not reach back into the first chunk
        assert (x0_grad - own).abs().max() < TOL
    else:
        # full backpropagation through the carried state: they do
        assert (x0_grad - own).abs().max() > 1e-3


def test_lstm_optimised_path_matches_torch_at_the_benchmark_width(reg):
    """Hidden 256 as in the benchmark (batch and length kept small): the same numbers, not only on toy sizes."""
    cell = _make(reg, "lstm", 32, 256)
    with torch.no_grad():
        for p in cell.parameters():
            p.mul_(0.25)
    _compare_paths(cell, [6, 4], B=3)


# ---- third-party-style cells that provide only the per-step path ---------------------------------------------

@pytest.fixture()
def mgu_cls(monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES / "thirdparty_plugin"))
    import seqwb_fixture_cells.mgu as mgu
    yield mgu.MGUCell
    for name in [m for m in sys.modules if m == "seqwb_fixture_cells" or m.startswith("seqwb_fixture_cells.")]:
        del sys.modules[name]


class StepOnlyMGU(Cell):
    """The same Minimal Gated Unit written against the one-method API: only ``step``, no projection hook."""

    gate_names = ("f",)

    def __init__(self, split_cell):
        super().__init__(split_cell.input_size, split_cell.hidden_size)
        self.inner = split_cell

    def step(self, x_t, state, gates: Optional[dict] = None):
        (h,) = state
        W = self.inner.input_linear
        xf, xh = F.linear(x_t, W.weight, W.bias).chunk(2, -1)
        f = torch.sigmoid(xf + F.linear(h, self.inner.U_f))
        h = (1 - f) * h + f * torch.tanh(xh + F.linear(f * h, self.inner.U_h))
        if gates is not None:
            gates["f"] = f
        return h, (h,)


def _step_loop(cell, x, state):
    outs = []
    for x_t in x.unbind(0):
        h, state = cell.step(x_t, state)
        outs.append(h)
    return torch.stack(outs), state


@pytest.mark.parametrize("style", ["split", "step-only"])
def test_step_only_cell_sequence_equals_step_loop_across_chunks(mgu_cls, style):
    torch.manual_seed(0)
    split = mgu_cls(6, 16)
    cell = split if style == "split" else StepOnlyMGU(split)
    assert cell.split_step == (style == "split")
    torch.manual_seed(2)
    xs = [torch.randn(T, 3, 6, requires_grad=True) for T in (5, 4)]
    h0 = (torch.randn(3, 16) * 0.5).requires_grad_()
    params = list(split.parameters())
    got = []
    for run in (cell.sequence, lambda x, s: _step_loop(cell, x, s)):
        out, state, loss = _chunked_run(run, cell, xs, (h0,), detach_between=False)
        got.append((out, state[0], torch.autograd.grad(loss, [*xs, h0, *params])))
    (o1, s1, g1), (o2, s2, g2) = got
    assert (o1 - o2).abs().max() < TOL and (s1 - s2).abs().max() < TOL
    for a, b in zip(g1, g2):
        assert (a - b).abs().max() < TOL


def test_both_api_styles_give_the_same_numbers(mgu_cls):
    torch.manual_seed(0)
    split = mgu_cls(6, 16)
    x = torch.randn(8, 3, 6)
    h0 = (torch.randn(3, 16),)
    out_split, (h_split,) = split.sequence(x, h0)
    out_step, (h_step,) = StepOnlyMGU(split).sequence(x, h0)
    assert (out_split - out_step).abs().max() < TOL and (h_split - h_step).abs().max() < TOL
    gates: dict = {}
    h_one, _ = StepOnlyMGU(split).step(x[0], h0, gates)
    h_derived, _ = split.step(x[0], h0)                  # the split cell's step: step_projected(input_projection)
    assert (h_one - h_derived).abs().max() < TOL and gates["f"].shape == (3, 16)


def test_a_cell_with_neither_step_names_itself():
    class Empty(Cell):
        pass

    with pytest.raises(NotImplementedError, match="Empty has no step_projected: a cell implements step"):
        Empty(2, 3).sequence(torch.zeros(2, 1, 2), (torch.zeros(1, 3),))


def test_step_only_cell_zero_length_sequence(mgu_cls):
    cell = StepOnlyMGU(mgu_cls(6, 16))
    h0 = torch.randn(3, 16)
    out, (h,) = cell.sequence(torch.zeros(0, 3, 6), (h0,))
    assert out.shape == (0, 3, 16) and torch.equal(h, h0)


# ---- through the workbench: the model the Trainer builds -------------------------------------------------------

def test_built_model_trains_the_same_on_every_lstm_path(reg):
    """The char-LM graph with one LSTM layer: loss and every parameter gradient agree between fused=True/False."""
    from workbench.core.settings import template_project
    from workbench.core.build import build_model

    grads = {}
    for fused in ("true", "false"):
        project, _ = template_project(reg.template("char-lm"),
                                      {"layers": "1", "hidden_size": "24", "embed_size": "8",
                                       "rnn.cell.fused": fused}, reg)
        torch.manual_seed(0)
        task_spec = reg.task(project.task.id)
        model = build_model(project.graph, reg, task_spec, {"vocab": 20})
        assert model.blocks["rnn"].cells[0].params.fused is (fused == "true")
        torch.manual_seed(3)
        tokens = torch.randint(0, 20, (9, 4))
        state = None
        loss = 0.0
        for chunk in (tokens[:5], tokens[5:]):   # two chunks, state carried
            out, state = model({"tokens": chunk}, state)
            loss = loss + F.cross_entropy(out["logits"].reshape(-1, 20), chunk.roll(-1, 0).reshape(-1))
        model.zero_grad()
        loss.backward()
        grads[fused] = (loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()})
    (l1, g1), (l2, g2) = grads["true"], grads["false"]
    assert abs(l1 - l2) < TOL
    assert g1.keys() == g2.keys()
    for n in g1:
        assert (g1[n] - g2[n]).abs().max() < TOL, n


# ---- opt-in torch.compile of the per-step loop -----------------------------------------------------------------

def test_compiled_blocks_give_the_plain_loop_numbers(mgu_cls):
    """Blocks of 4 over 10 steps (two compiled blocks, two eager steps), state carried into a second chunk.

    ``aot_eager`` runs the same dynamo capture and AOTAutograd split as the default backend without generating
    C++ (seconds instead of minutes); the benchmark times the real thing."""
    torch.manual_seed(0)
    cell = mgu_cls(6, 16)
    torch.manual_seed(2)
    xs = [torch.randn(10, 3, 6, requires_grad=True), torch.randn(3, 3, 6, requires_grad=True)]
    h0 = (torch.randn(3, 16) * 0.5).requires_grad_()
    params = list(cell.parameters())
    got = []
    for block in (0, 4):
        cell.compile_steps(block, backend="aot_eager")
        out, state, loss = _chunked_run(cell.sequence, cell, xs, (h0,), detach_between=False)
        got.append((out, state[0], torch.autograd.grad(loss, [*xs, h0, *params])))
    assert cell.__dict__.get("_compiled_block_fn") is not None    # the compiled path was taken
    (o1, s1, g1), (o2, s2, g2) = got
    assert (o1 - o2).abs().max() < TOL and (s1 - s2).abs().max() < TOL
    for a, b in zip(g1, g2):
        assert (a - b).abs().max() < TOL * max(1.0, b.abs().max().item())
    with torch.no_grad():                                          # validation stays eager and equal
        out_eval, _ = cell.sequence(xs[0], (h0,))
    assert (out_eval - o1[:10]).abs().max() < TOL


def test_compile_failure_falls_back_to_the_plain_loop_with_a_warning(mgu_cls, monkeypatch):
    torch.manual_seed(0)
    cell = mgu_cls(6, 16)
    x = torch.randn(8, 3, 6)
    h0 = (torch.zeros(3, 16),)
    expected, _ = cell.sequence(x, h0)

    def broken_compile(fn, **kwargs):
        calls = []

        def run(*args):   # the first block compiles and runs, the second fails: the fallback starts over
            calls.append(1)
            if len(calls) > 1:
                raise RuntimeError("no C++ compiler found\nmore detail")
            return fn(*args)
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    cell.compile_steps(4)
    with pytest.warns(RuntimeWarning, match="MGUCell: torch.compile of the per-step loop failed "
                                            r"\(RuntimeError: no C\+\+ compiler found\); running it uncompiled"):
        out, _ = cell.sequence(x, h0)
    assert torch.allclose(out, expected, atol=TOL)
    assert cell._compile_block == 0                                # it does not try again on every chunk
