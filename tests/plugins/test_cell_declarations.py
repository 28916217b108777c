"""What a cell declares it provides (``split_step``, ``has_fused``, ``traced_sequence``) is what the base class and the
build-time trial go by.

The base class: a one-method cell (only ``step``), a split-step cell (declared, and the same class undeclared: the
same numbers, one projection per step), a declared fused cell.  The trial in ``build_cell``: every path a cell
declares is compared with stepping it on a seeded random input; a disagreement is refused with the cell, the
plugin, the capability, the distance and the fix.  That is what stops a subclass of the built-in LSTM that changes
its gate function but inherits the fused kernel and the recorder's shortcut.  The built-in cells' declarations
match what they do.
"""

from __future__ import annotations

from typing import Optional

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.core.blocks import BuildContext
from workbench.core.cells import Cell
from workbench.core.plugin_checks import PluginCodeError, build_cell
from workbench.hookspecs import hookimpl
from workbench.plugin_system import CellSpec, NoParams, discover
from workbench_plugins.cells import LSTMParams
from workbench_plugins.lstm import LSTMCell

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = 1e-6


# ---- cells written against each part of the API ------------------------------------------------------------------

class TanhRNN(Cell):
    """h' = tanh(W x + U h + b) in one method: the one-method API."""

    def __init__(self, input_size, hidden_size, params=None):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size, hidden_size)
        self.U = nn.Parameter(torch.randn(hidden_size, hidden_size) / hidden_size ** 0.5)

    def step(self, x_t, state, gates: Optional[dict] = None):
        pre = self.lin(x_t) + state[0] @ self.U.t()
        h = torch.tanh(pre)
        if gates is not None:
            gates["a"] = torch.sigmoid(pre)     # a made-up "gate", so that the trace has something besides h
        return h, (h,)


class SplitTanhRNN(TanhRNN):
    """The same function in two parts, declared."""

    split_step = True
    projections = 0     # how many times input_projection ran (per instance, set in the test)

    def input_projection(self, x):
        self.projections += 1
        return self.lin(x)

    def step_projected(self, xp_t, state, gates: Optional[dict] = None):
        pre = xp_t + state[0] @ self.U.t()
        h = torch.tanh(pre)
        if gates is not None:
            gates["a"] = torch.sigmoid(pre)
        return h, (h,)

    # the one-method step of TanhRNN is not this class's step: the declaration says step is derived
    step = Cell.step


class UndeclaredSplitTanhRNN(SplitTanhRNN):
    """Written in two parts but without the declaration: it steps through the derived step."""

    split_step = False


class FusedTanhRNN(Cell):
    """A declared fused kernel: torch.nn.RNN owns the weights, the two-part step uses them."""

    split_step = True
    has_fused = True
    kernel = "tanh"     # the fused kernel's nonlinearity; the step always uses tanh

    def __init__(self, input_size, hidden_size, params=None):
        super().__init__(input_size, hidden_size)
        self.rnn = nn.RNN(input_size, hidden_size, nonlinearity=self.kernel)

    def input_projection(self, x):
        return F.linear(x, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0)

    def step_projected(self, xp_t, state, gates: Optional[dict] = None):
        pre = torch.addmm(xp_t, state[0], self.rnn.weight_hh_l0.t())
        if gates is not None:
            gates["a"] = torch.sigmoid(pre)
        h = torch.tanh(pre)
        return h, (h,)

    def sequence(self, x, state):
        out, h = self.rnn(x, state[0].unsqueeze(0).contiguous())
        return out, (h[0],)


class WrongKernelRNN(FusedTanhRNN):
    """Declares a fused kernel that computes another function (ReLU units) than its step."""

    kernel = "relu"


class NaNKernelRNN(FusedTanhRNN):
    """A declared kernel that returns one NaN (a distance of NaN must not pass as "not above the tolerance")."""

    def sequence(self, x, state):
        out, final = super().sequence(x, state)
        out = out.clone()
        out[-1, 0, 0] = float("nan")
        return out, final


class WrongSequenceRNN(SplitTanhRNN):
    """No fused kernel declared, but its own sequence() halves every output."""

    def sequence(self, x, state):
        out, final = self.sequence_steps(x, state)
        return 0.5 * out, final


class TracedTanhRNN(SplitTanhRNN):
    """A declared traced path: the whole chunk at once from the stepped outputs."""

    traced_sequence = True
    swap = False        # report the quantities in the wrong order

    def sequence_traced(self, x, state):
        with torch.no_grad():
            out, final = self.sequence_steps(x, state)
            prev = torch.cat([state[0].unsqueeze(0), out[:-1]], 0)
            a = torch.sigmoid(self.lin(x) + prev @ self.U.t())
        return out, final, ({"a": a, "h": out} if self.swap else {"h": out, "a": a})


class SwappedTracedRNN(TracedTanhRNN):
    swap = True


class DecodeStepRNN(SplitTanhRNN):
    """A split cell whose own step (a "faster decode path") forgets the bias."""

    def step(self, x_t, state, gates=None):
        return self.step_projected(F.linear(x_t, self.lin.weight), state, gates)


class NoisyStepRNN(TanhRNN):
    """Samples in its step even in eval mode: the trial must neither refuse it nor move the global stream."""

    def step(self, x_t, state, gates=None):
        h, new = super().step(x_t, state, gates)
        return h + 0.1 * torch.randn_like(h), new


class HardSigmoidLSTM(LSTMCell):
    """The built-in LSTM with hard-sigmoid gates: a third-party subclass that changes the gate function and
    inherits split_step, has_fused and traced_sequence."""

    def _gates(self, z, c, gates):
        i, f, g, o = z.chunk(4, 1)
        i, f, o = F.hardsigmoid(i), F.hardsigmoid(f), F.hardsigmoid(o)
        g = torch.tanh(g)
        c = f * c + i * g
        h = o * torch.tanh(c)
        if gates is not None:
            gates.update(i=i, f=f, g=g, o=o)
        return h, (h, c)


class HardSigmoidLSTMOwnPath(HardSigmoidLSTM):
    """The same, declaring the parent's kernels off."""

    has_fused = False
    traced_sequence = False


ONE_STATE = {"TanhRNN", "SplitTanhRNN", "UndeclaredSplitTanhRNN", "FusedTanhRNN", "WrongKernelRNN", "NaNKernelRNN",
             "WrongSequenceRNN", "TracedTanhRNN", "SwappedTracedRNN", "DecodeStepRNN", "NoisyStepRNN"}
LSTMS = {"HardSigmoidLSTM", "HardSigmoidLSTMOwnPath"}


class DeclarationCells:
    SEQWB_API = ">=1.0,<2"

    @hookimpl
    def seqwb_cells(self):
        specs = [CellSpec(id=name, title=name, version="1", params=NoParams, factory=f"{__name__}:{name}",
                          gates=("a",), has_fused=name in ("FusedTanhRNN", "WrongKernelRNN", "NaNKernelRNN"))
                 for name in sorted(ONE_STATE)]
        specs += [CellSpec(id=name, title=name, version="1", params=LSTMParams, factory=f"{__name__}:{name}",
                           gates=("i", "f", "g", "o"), state_names=("h", "c"), has_fused=name == "HardSigmoidLSTM")
                  for name in sorted(LSTMS)]
        return specs


@pytest.fixture(scope="module")
def dreg():
    return discover(entry_points=False, extra=[("declaration-cells", DeclarationCells())])


def build(dreg, cell_id, input_size=3, hidden_size=5):
    return BuildContext(dreg, {}, "rnn").make_cell(cell_id, input_size, hidden_size)


def step_loop(cell, x, state, traced=False):
    outs, entries = [], []
    for x_t in x.unbind(0):
        gates: dict = {}
        h, state = cell.step(x_t, state, gates)
        outs.append(h)
        entries.append({**dict(zip(cell.state_names, state)), **gates})
    if traced:
        return torch.stack(outs), state, {k: torch.stack([e[k] for e in entries]) for k in entries[0]}
    return torch.stack(outs), state


def close(a, b, tol=TOL):
    return a.shape == b.shape and float((a - b).abs().max().detach()) < tol


# ---- the base class goes by the declarations -------------------------------------------------------------------

def test_a_one_method_cell_works_everywhere_with_no_declaration():
    torch.manual_seed(0)
    cell = TanhRNN(3, 5)
    assert (cell.split_step, cell.has_fused, cell.traced_sequence) == (False, False, False)
    x, h0 = torch.randn(6, 2, 3), (torch.randn(2, 5),)
    want, (want_h,) = step_loop(cell, x, h0)
    out, (h,) = cell.sequence(x, h0)
    assert close(out, want) and close(h, want_h)
    out, (h,), traced = cell.sequence_traced(x, h0)
    _, _, want_traced = step_loop(cell, x, h0, traced=True)
    assert close(out, want) and list(traced) == ["h", "a"] and all(close(traced[k], want_traced[k]) for k in traced)
    with pytest.raises(NotImplementedError, match="TanhRNN has no step_projected: a cell implements step"):
        cell.step_projected(x[0], h0)


def test_a_split_cell_projects_once_per_sequence_and_derives_its_step():
    torch.manual_seed(0)
    split = SplitTanhRNN(3, 5)
    one = TanhRNN(3, 5)
    one.load_state_dict(split.state_dict())
    x, h0 = torch.randn(6, 2, 3), (torch.randn(2, 5),)
    want, (want_h,) = step_loop(one, x, h0)
    split.projections = 0
    out, (h,) = split.sequence(x, h0)
    assert split.projections == 1 and close(out, want) and close(h, want_h)
    split.projections = 0
    out, _, traced = split.sequence_traced(x, h0)
    assert split.projections == 1 and close(out, want) and list(traced) == ["h", "a"]
    h1, _ = split.step(x[0], h0)     # the derived step: step_projected(input_projection(x_t))
    assert close(h1, want[0])


def test_the_same_two_parts_undeclared_give_the_same_numbers_one_projection_per_step():
    """The base class does not look at which methods a class overrides: without split_step the loops call step,
    which is derived from the two parts (correct, but the projection is no longer hoisted)."""
    torch.manual_seed(0)
    declared = SplitTanhRNN(3, 5)
    undeclared = UndeclaredSplitTanhRNN(3, 5)
    undeclared.load_state_dict(declared.state_dict())
    x, h0 = torch.randn(6, 2, 3), (torch.randn(2, 5),)
    out_d, _ = declared.sequence(x, h0)
    undeclared.projections = 0
    out_u, _ = undeclared.sequence(x, h0)
    assert close(out_d, out_u) and undeclared.projections == 6


def test_a_declared_fused_cell_runs_its_kernel_and_agrees_with_its_step(monkeypatch):
    torch.manual_seed(0)
    cell = FusedTanhRNN(3, 5)
    x, h0 = torch.randn(6, 2, 3), (torch.randn(2, 5),)
    want, (want_h,) = step_loop(cell, x, h0)

    def refuse(*args, **kwargs):
        raise AssertionError("stepped")
    monkeypatch.setattr(cell, "step_projected", refuse)
    out, (h,) = cell.sequence(x, h0)
    assert close(out, want, 1e-5) and close(h, want_h, 1e-5)


# ---- the build-time trial --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell_id", ["TanhRNN", "SplitTanhRNN", "UndeclaredSplitTanhRNN", "FusedTanhRNN",
                                     "TracedTanhRNN", "NoisyStepRNN", "HardSigmoidLSTMOwnPath"])
def test_cells_whose_declarations_hold_are_built(dreg, cell_id):
    cell = build(dreg, cell_id)
    assert cell.training, "the trial runs in eval mode and puts the cell back"


@pytest.mark.parametrize("cell_id, message", [
    ("HardSigmoidLSTM", "cell 'HardSigmoidLSTM' from plugin declaration-cells (distribution (registered in code)): "
                        "sequence (has_fused = True) disagrees with stepping the cell: "),
    ("WrongKernelRNN", "cell 'WrongKernelRNN' from plugin declaration-cells (distribution (registered in code)): "
                       "sequence (has_fused = True) disagrees with stepping the cell: the outputs differ by "),
    ("NaNKernelRNN", "cell 'NaNKernelRNN' from plugin declaration-cells (distribution (registered in code)): "
                     "sequence (has_fused = True) disagrees with stepping the cell: the outputs differ by inf; "
                     "declare has_fused = False or override sequence"),
    ("WrongSequenceRNN", "cell 'WrongSequenceRNN' from plugin declaration-cells (distribution (registered in "
                         "code)): sequence disagrees with stepping the cell: the outputs differ by "),
    ("SwappedTracedRNN", "cell 'SwappedTracedRNN' from plugin declaration-cells (distribution (registered in "
                         "code)): sequence_traced (traced_sequence = True) reports ['a', 'h'], stepping the cell "
                         "reports ['h', 'a'] (names and order must match); declare traced_sequence = False or "
                         "override sequence_traced"),
    ("DecodeStepRNN", "cell 'DecodeStepRNN' from plugin declaration-cells (distribution (registered in code)): "
                      "step disagrees with step_projected(input_projection(x)) (split_step = True): the outputs "
                      "differ by "),
])
def test_a_declaration_that_does_not_hold_is_refused_at_build(dreg, cell_id, message):
    with pytest.raises(PluginCodeError) as info:
        build(dreg, cell_id)
    assert str(info.value).startswith(message), str(info.value)


def test_an_lstm_subclass_with_other_gates_is_refused_naming_both_kernels_and_the_fix(dreg):
    """What defines_own(self, LSTMCell, ...) used to guess at: the subclass inherits traced_sequence = True and the
    fused kernel, which compute the parent's gates.  Each capability is named with its distance and its fix."""
    with pytest.raises(PluginCodeError) as info:
        build(dreg, "HardSigmoidLSTM", 4, 6)
    text = str(info.value)
    assert "declare has_fused = False or override sequence;" in text
    assert "sequence_traced (traced_sequence = True) disagrees with stepping the cell: " in text
    assert text.endswith("declare traced_sequence = False or override sequence_traced")
    distance = float(text.split("sequence_traced (traced_sequence = True) disagrees with stepping the cell: ")[1]
                     .split(" by ")[1].split(";")[0])
    assert 1e-3 < distance < 10


def test_the_lstm_subclass_with_its_kernels_declared_off_trains_and_records_its_own_step(dreg):
    cell = build(dreg, "HardSigmoidLSTMOwnPath", 4, 6)
    x, state = torch.randn(5, 3, 4), cell.init_state(3)
    with torch.no_grad():
        want, want_state, want_traced = step_loop(cell, x, state, traced=True)
        out, final = cell.sequence(x, state)
        t_out, t_final, traced = cell.sequence_traced(x, state)
    assert close(out, want) and all(close(a, b) for a, b in zip(final, want_state))
    assert close(t_out, want) and list(traced) == list(want_traced)
    assert all(close(traced[k], want_traced[k]) for k in traced)
    plain = LSTMCell(4, 6, cell.params)
    plain.load_state_dict(cell.state_dict())
    with torch.no_grad():
        assert float((plain.sequence(x, state)[0] - out).abs().max()) > 1e-3   # it really is another function


def test_the_trial_leaves_the_random_stream_and_the_grad_mode_alone(dreg):
    """Building draws the initial weights from the global stream; the trial after it draws nothing from it."""
    def next_numbers(make):
        torch.manual_seed(123)
        for cell_id in ("NoisyStepRNN", "HardSigmoidLSTMOwnPath"):
            make(cell_id)
        return torch.rand(4)

    def without_trial(cell_id):
        spec = dreg.cell(cell_id)
        return spec.load()(3, 5, spec.params())

    assert torch.equal(next_numbers(lambda cell_id: build(dreg, cell_id)), next_numbers(without_trial))
    assert torch.is_grad_enabled()


# ---- the built-in cells: declarations and behaviour ------------------------------------------------------------

BUILTIN = ["rnn", "irnn", "lstm", "peephole-lstm", "gru", "mut1", "mut2", "mut3"]
WITH_FUSED_SWITCH = {"rnn", "irnn", "lstm", "gru"}


def builtin_variants(reg):
    for cell_id in BUILTIN:
        yield cell_id, reg.cell(cell_id).params()
        if cell_id in WITH_FUSED_SWITCH:
            yield cell_id, reg.cell(cell_id).params(fused=False)


def test_builtin_cells_declare_what_they_provide(reg):
    for cell_id in BUILTIN:
        spec = reg.cell(cell_id)
        cls = spec.load()
        assert cls.split_step, cell_id                     # every built-in hoists its input projection
        assert cls.has_fused == spec.has_fused, cell_id
        assert cls.traced_sequence == (cell_id in WITH_FUSED_SWITCH), cell_id


def test_builtin_cells_pass_the_trial_with_every_fused_setting(reg):
    for cell_id, params in builtin_variants(reg):
        build_cell(reg.cell(cell_id), 7, 9, params)


def test_builtin_declarations_match_what_the_cells_run(reg, monkeypatch):
    """split_step: the loops project once and step through step_projected.  has_fused (with the fused setting on):
    sequence runs without stepping.  traced_sequence: the recorder's path runs without stepping; without it, it
    steps once per timestep."""
    x = torch.randn(5, 2, 3)
    for cell_id, params in builtin_variants(reg):
        torch.manual_seed(0)
        cell = reg.cell(cell_id).load()(3, 4, params)
        calls = {"input_projection": 0, "step_projected": 0, "step": 0}
        for name in calls:
            def counted(*args, _name=name, _orig=getattr(cell, name), **kwargs):
                calls[_name] += 1
                return _orig(*args, **kwargs)
            monkeypatch.setattr(cell, name, counted)
        fused_on = getattr(params, "fused", False)

        cell.sequence_steps(x, cell.init_state(2))
        assert calls == {"input_projection": 1, "step_projected": 5, "step": 0}, (cell_id, params, calls)

        calls.update(dict.fromkeys(calls, 0))
        cell.sequence(x, cell.init_state(2))
        if cell.has_fused and fused_on:
            assert calls["step_projected"] == calls["step"] == 0, (cell_id, params, calls)

        calls.update(dict.fromkeys(calls, 0))
        cell.sequence_traced(x, cell.init_state(2))
        stepped = calls["step_projected"] + calls["step"]
        if cell.traced_sequence and fused_on:
            assert stepped == 0, (cell_id, params, calls)
        else:
            assert calls["step_projected"] == 5 and calls["step"] == 0, (cell_id, params, calls)
