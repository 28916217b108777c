"""Contract checks any cell plugin can run against itself.

``check_cell(factory, params)`` builds the cell and checks: state shapes; the per-step path over a sequence
equals :meth:`Cell.sequence` (the fused path, if any), outputs, final state and gradients; gate shapes; the
recorder's :meth:`Cell.sequence_traced` reports what stepping reports (every state and gate, same names and order,
same values); the recurrent matrices are square; and ``torch.autograd.gradcheck`` passes in float64.  Each check raises
``AssertionError`` with a message saying what differs.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


def _make(factory: Callable, input_size: int, hidden_size: int, params: Any, dtype=torch.float32):
    cell = factory(input_size, hidden_size, params)
    return cell.to(dtype)


def check_state(cell, batch: int = 3) -> None:
    state = cell.init_state(batch)
    assert isinstance(state, tuple) and len(state) == len(cell.state_names), \
        f"init_state must return a tuple of {len(cell.state_names)} tensors named {cell.state_names}"
    for name, s in zip(cell.state_names, state):
        assert s.shape == (batch, cell.hidden_size), f"state {name!r} has shape {tuple(s.shape)}"


def check_step_matches_sequence(factory: Callable, params: Any, input_size: int = 5, hidden_size: int = 7,
                                T: int = 6, batch: int = 3, tol: float = 1e-5, seed: int = 0) -> None:
    torch.manual_seed(seed)
    cell = _make(factory, input_size, hidden_size, params, torch.float64)
    x = torch.randn(T, batch, input_size, dtype=torch.float64, requires_grad=True)
    state0 = tuple(torch.randn(batch, hidden_size, dtype=torch.float64) * 0.5 for _ in cell.state_names)

    out_seq, st_seq = cell.sequence(x, state0)
    loss_seq = (out_seq ** 2).sum() + sum((s ** 2).sum() for s in st_seq)
    g_seq = torch.autograd.grad(loss_seq, [x, *cell.parameters()], allow_unused=True)

    state = state0
    outs = []
    for t in range(T):
        gates: dict = {}
        h, state = cell.step(x[t], state, gates)
        outs.append(h)
        for name in cell.gate_names:
            assert name in gates, f"step() did not report gate {name!r} (gate_names says it has it)"
            assert gates[name].shape == (batch, hidden_size), f"gate {name!r} has shape {tuple(gates[name].shape)}"
    out_step = torch.stack(outs)
    loss_step = (out_step ** 2).sum() + sum((s ** 2).sum() for s in state)
    g_step = torch.autograd.grad(loss_step, [x, *cell.parameters()], allow_unused=True)

    assert out_seq.shape == (T, batch, hidden_size), f"sequence() output has shape {tuple(out_seq.shape)}"
    diff = (out_seq - out_step).abs().max().item()
    assert diff < tol, f"sequence() and step() outputs differ by {diff:.3g}"
    for name, a, b in zip(cell.state_names, st_seq, state):
        d = (a - b).abs().max().item()
        assert d < tol, f"final state {name!r} differs by {d:.3g} between sequence() and step()"
    names = ["input"] + [n for n, _ in cell.named_parameters()]
    for name, a, b in zip(names, g_seq, g_step):
        if a is None and b is None:
            continue
        a = torch.zeros_like(b) if a is None else a
        b = torch.zeros_like(a) if b is None else b
        d = (a - b).abs().max().item()
        assert d < tol, f"gradient of {name!r} differs by {d:.3g} between sequence() and step()"


def check_traced_matches_steps(factory: Callable, params: Any, input_size: int = 5, hidden_size: int = 7,
                               T: int = 6, batch: int = 3, tol: float = 1e-5, seed: int = 0) -> None:
    """:meth:`Cell.sequence_traced` (what the hidden-unit recorder reads) equals stepping the cell with a ``gates``
    dict: outputs, final state, and per step every state (``state_names``) then every reported gate, in that
    order.  Matters for a cell that declares ``traced_sequence`` (its own fast path); the default steps the cell."""
    torch.manual_seed(seed)
    cell = _make(factory, input_size, hidden_size, params, torch.float64)
    x = torch.randn(T, batch, input_size, dtype=torch.float64)
    state0 = tuple(torch.randn(batch, hidden_size, dtype=torch.float64) * 0.5 for _ in cell.state_names)
    with torch.no_grad():
        out, final, traced = cell.sequence_traced(x, state0)
        state, outs, steps = state0, [], []
        for t in range(T):
            gates: dict = {}
            h, state = cell.step(x[t], state, gates)
            outs.append(h)
            steps.append({**dict(zip(cell.state_names, state)), **gates})
    assert out.shape == (T, batch, hidden_size), f"sequence_traced() output has shape {tuple(out.shape)}"
    diff = (out - torch.stack(outs)).abs().max().item()
    assert diff < tol, f"sequence_traced() and step() outputs differ by {diff:.3g}"
    for name, a, b in zip(cell.state_names, final, state):
        d = (a - b).abs().max().item()
        assert d < tol, f"final state {name!r} differs by {d:.3g} between sequence_traced() and step()"
    assert list(traced) == list(steps[0]), \
        f"sequence_traced() reports {list(traced)}, stepping reports {list(steps[0])} (names and order must match)"
    for name, values in traced.items():
        want = torch.stack([step[name] for step in steps])
        assert values.shape == want.shape, f"{name!r} has shape {tuple(values.shape)}, stepping {tuple(want.shape)}"
        d = (values - want).abs().max().item()
        assert d < tol, f"{name!r} differs by {d:.3g} between sequence_traced() and step()"


def check_gradcheck(factory: Callable, params: Any, input_size: int = 3, hidden_size: int = 4, T: int = 3,
                    batch: int = 2, seed: int = 0) -> None:
    torch.manual_seed(seed)
    cell = _make(factory, input_size, hidden_size, params, torch.float64)
    x = torch.randn(T, batch, input_size, dtype=torch.float64, requires_grad=True)
    state0 = tuple((torch.randn(batch, hidden_size, dtype=torch.float64) * 0.5).requires_grad_()
                   for _ in cell.state_names)

    def run(x, *state):
        st = tuple(state)
        outs = []
        for t in range(T):
            h, st = cell.step(x[t], st)
            outs.append(h)
        return torch.stack(outs)

    assert torch.autograd.gradcheck(run, (x, *state0), eps=1e-6, atol=1e-5), "gradcheck failed for step()"


def check_recurrent_weights(cell) -> None:
    for name, w in cell.recurrent_weights().items():
        assert w.dim() == 2 and w.shape[0] == w.shape[1] == cell.hidden_size, \
            f"recurrent weight {name!r} should be [hidden, hidden], is {tuple(w.shape)}"


def check_cell(factory: Callable, params: Any) -> None:
    """Run every cell contract check."""
    cell = factory(4, 6, params)
    check_state(cell)
    check_recurrent_weights(cell)
    check_step_matches_sequence(factory, params)
    check_traced_matches_steps(factory, params)
    check_gradcheck(factory, params)


def check_cell_spec(spec) -> None:
    """Contract checks for a registered :class:`~workbench.schema.specs.CellSpec` (default params)."""
    factory = spec.load()
    cell = factory(4, 6, spec.params())
    assert tuple(cell.gate_names) == tuple(spec.gates), \
        f"{spec.id}: the spec says gates {spec.gates}, the cell reports {cell.gate_names}"
    assert tuple(cell.state_names) == tuple(spec.state_names), \
        f"{spec.id}: the spec says state {spec.state_names}, the cell has {cell.state_names}"
    check_cell(factory, spec.params())
