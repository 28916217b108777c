"""The cell contract: state shapes, finite outputs, gates, a fused or traced sequence against stepping, the
recurrent matrices, gradcheck, init schemes, ``after_step`` and the trial that building a model runs.

:func:`check_cell_spec` checks a registered cell; :func:`check_cell` a factory with other parameter values; the
single checks (:func:`check_state`, :func:`check_step_matches_sequence`, ...) are there for a cell's own tests.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from workbench.core.plugin_checks import PluginCodeError, plugin_label
from workbench.testing.contract_base import fail as _fail
from workbench.testing.contract_base import finite as _finite
from workbench.testing.contract_base import max_diff as _max_diff
from workbench.testing.contract_base import shape_of as _shape
from workbench.testing.contract_base import who_is as _who


def _make(factory: Callable, input_size: int, hidden_size: int, params: Any, dtype=torch.float32):
    cell = factory(input_size, hidden_size, params)
    return cell.to(dtype)


def check_state(cell, batch: int = 3, *, who: str = "") -> None:
    """``cell.state-shapes`` for init_state, one step and sequence(): every state exactly ``[batch, hidden]``."""
    who = who or f"cell {type(cell).__name__}"
    names, H = tuple(cell.state_names), cell.hidden_size
    fix = "return one torch.zeros(batch, hidden_size) per name in state_names, and states of that shape from step"
    state = cell.init_state(batch)
    if not isinstance(state, tuple) or len(state) != len(names):
        raise _fail(who, "cell.state-shapes", f"init_state must return a tuple of {len(names)} tensors named "
                                              f"{names}, got {type(state).__name__}", fix)
    for name, s in zip(names, state):
        if _shape(s) != (batch, H):
            raise _fail(who, "cell.state-shapes", f"init_state gives {name!r} of shape {_shape(s)}, expected "
                                                  f"[batch, hidden] = {(batch, H)} (a state that broadcasts hides "
                                                  f"a wrong shape)", fix)
    with torch.no_grad():
        x = torch.randn(4, batch, cell.input_size, generator=torch.Generator().manual_seed(0)).to(state[0].dtype)
        for t in range(x.shape[0]):
            h, state = cell.step(x[t], state)
            if _shape(h) != (batch, H):
                raise _fail(who, "cell.state-shapes", f"step {t} returned an output of shape {_shape(h)}, expected "
                                                      f"{(batch, H)}", "return h_t of [batch, hidden_size]")
            shapes = [_shape(s) for s in state] if isinstance(state, tuple) else type(state).__name__
            if not isinstance(state, tuple) or len(state) != len(names) or any(s != (batch, H) for s in shapes):
                raise _fail(who, "cell.state-shapes", f"step {t} returned a state of shapes {shapes}, expected "
                                                      f"{len(names)} tensor(s) {names} of {(batch, H)}", fix)
        out, final = cell.sequence(x, cell.init_state(batch))
        shapes = [_shape(s) for s in final] if isinstance(final, tuple) else type(final).__name__
        if _shape(out) != (x.shape[0], batch, H) or not isinstance(final, tuple) or \
                any(s != (batch, H) for s in shapes):
            raise _fail(who, "cell.state-shapes", f"sequence() returned outputs {_shape(out)} and a final state of "
                                                  f"shapes {shapes}, expected {(x.shape[0], batch, H)} and "
                                                  f"{(batch, H)} each", "return (outputs [T, B, H], final state)")


def check_finite(cell, batch: int = 3, T: int = 6, *, who: str = "") -> None:
    """``cell.finite``: on inputs and states of ordinary size (standard normal), outputs and states are finite."""
    who = who or f"cell {type(cell).__name__}"
    g = torch.Generator().manual_seed(1)
    dtype = next((p.dtype for p in cell.parameters()), torch.float32)
    x = torch.randn(T, batch, cell.input_size, generator=g).to(dtype)
    state0 = tuple(torch.randn(batch, cell.hidden_size, generator=g).to(dtype) for _ in cell.state_names)
    fix = ("keep the step's arithmetic bounded: no division by a value that can be 0, no log or sqrt of a value "
           "that can be negative, no exp without a bound")
    with torch.no_grad():
        state = state0
        for t in range(T):
            h, state = cell.step(x[t], state)
            if not (_finite(h) and all(_finite(s) for s in state)):
                raise _fail(who, "cell.finite", f"step {t} gives non-finite values from finite inputs", fix)
        out, final = cell.sequence(x, state0)
        if not (_finite(out) and all(_finite(s) for s in final)):
            raise _fail(who, "cell.finite", "sequence() gives non-finite values from finite inputs", fix)


def check_step_matches_sequence(factory: Callable, params: Any, input_size: int = 5, hidden_size: int = 7,
                                T: int = 6, batch: int = 3, tol: float = 1e-5, seed: int = 0, *,
                                who: str = "") -> None:
    """``cell.gates`` and ``cell.sequence-equals-stepping`` in float64: outputs, final state and every gradient."""
    torch.manual_seed(seed)
    cell = _make(factory, input_size, hidden_size, params, torch.float64)
    who = who or f"cell {type(cell).__name__}"
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
            if name not in gates:
                raise _fail(who, "cell.gates", f"step() did not report gate {name!r} (gate_names says it has it)",
                            "put each gate's activations in the gates dict when step() is given one, or drop the "
                            "name from gate_names")
            if _shape(gates[name]) != (batch, hidden_size):
                raise _fail(who, "cell.gates", f"gate {name!r} has shape {_shape(gates[name])}, expected "
                                               f"{(batch, hidden_size)}", "report [batch, hidden] activations")
    out_step = torch.stack(outs)
    loss_step = (out_step ** 2).sum() + sum((s ** 2).sum() for s in state)
    g_step = torch.autograd.grad(loss_step, [x, *cell.parameters()], allow_unused=True)

    fix = ("a fused sequence() must compute the step's function over time with the same parameters; otherwise "
           "declare has_fused = False and leave sequence() to the base class")
    if _shape(out_seq) != (T, batch, hidden_size):
        raise _fail(who, "cell.sequence-equals-stepping", f"sequence() output has shape {_shape(out_seq)}", fix)
    diff = _max_diff(out_seq, out_step)
    if diff >= tol:
        raise _fail(who, "cell.sequence-equals-stepping", f"sequence() and step() outputs differ by {diff:.3g}", fix)
    for name, a, b in zip(cell.state_names, st_seq, state):
        d = _max_diff(a, b)
        if d >= tol:
            raise _fail(who, "cell.sequence-equals-stepping",
                        f"final state {name!r} differs by {d:.3g} between sequence() and step()", fix)
    names = ["input"] + [n for n, _ in cell.named_parameters()]
    for name, a, b in zip(names, g_seq, g_step):
        if a is None and b is None:
            continue
        a = torch.zeros_like(b) if a is None else a
        b = torch.zeros_like(a) if b is None else b
        d = _max_diff(a, b)
        if d >= tol:
            raise _fail(who, "cell.sequence-equals-stepping",
                        f"gradient of {name!r} differs by {d:.3g} between sequence() and step()",
                        fix + " (a hand-written backward must match autograd's)")


def check_traced_matches_steps(factory: Callable, params: Any, input_size: int = 5, hidden_size: int = 7,
                               T: int = 6, batch: int = 3, tol: float = 1e-5, seed: int = 0, *,
                               who: str = "") -> None:
    """``cell.traced-equals-stepping``: :meth:`Cell.sequence_traced` (what the hidden-unit recorder reads) equals
    stepping the cell with a ``gates`` dict: outputs, final state, and per step every state (``state_names``)
    then every reported gate, in that order."""
    torch.manual_seed(seed)
    cell = _make(factory, input_size, hidden_size, params, torch.float64)
    who = who or f"cell {type(cell).__name__}"
    fix = "declare traced_sequence = False (the recorder then steps the cell) or make sequence_traced match step"
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
    if _shape(out) != (T, batch, hidden_size):
        raise _fail(who, "cell.traced-equals-stepping", f"sequence_traced() output has shape {_shape(out)}", fix)
    diff = _max_diff(out, torch.stack(outs))
    if diff >= tol:
        raise _fail(who, "cell.traced-equals-stepping", f"sequence_traced() and step() outputs differ by {diff:.3g}",
                    fix)
    for name, a, b in zip(cell.state_names, final, state):
        d = _max_diff(a, b)
        if d >= tol:
            raise _fail(who, "cell.traced-equals-stepping",
                        f"final state {name!r} differs by {d:.3g} between sequence_traced() and step()", fix)
    if list(traced) != list(steps[0]):
        raise _fail(who, "cell.traced-equals-stepping", f"sequence_traced() reports {list(traced)}, stepping reports "
                                                        f"{list(steps[0])} (names and order must match)", fix)
    for name, values in traced.items():
        want = torch.stack([step[name] for step in steps])
        if _shape(values) != _shape(want):
            raise _fail(who, "cell.traced-equals-stepping",
                        f"{name!r} has shape {_shape(values)}, stepping {_shape(want)}", fix)
        d = _max_diff(values, want)
        if d >= tol:
            raise _fail(who, "cell.traced-equals-stepping",
                        f"{name!r} differs by {d:.3g} between sequence_traced() and step()", fix)


def check_gradcheck(factory: Callable, params: Any, input_size: int = 3, hidden_size: int = 4, T: int = 3,
                    batch: int = 2, seed: int = 0, *, who: str = "") -> None:
    """``cell.gradcheck``: numerical and analytical gradients of the step agree (float64)."""
    torch.manual_seed(seed)
    cell = _make(factory, input_size, hidden_size, params, torch.float64)
    who = who or f"cell {type(cell).__name__}"
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

    try:
        ok = torch.autograd.gradcheck(run, (x, *state0), eps=1e-6, atol=1e-5, raise_exception=False)
    except RuntimeError as exc:
        ok, why = False, str(exc).splitlines()[0]
    else:
        why = "numerical and analytical gradients of step() differ"
    if not ok:
        raise _fail(who, "cell.gradcheck", why, "a custom autograd.Function's backward must be the derivative of "
                                                "its forward; a non-differentiable operation (round, argmax) cuts "
                                                "the gradient")


def check_recurrent_weights(cell, *, who: str = "") -> None:
    """``cell.recurrent-weights``: every recurrent matrix is ``[hidden, hidden]``."""
    who = who or f"cell {type(cell).__name__}"
    for name, w in cell.recurrent_weights().items():
        if not (w.dim() == 2 and w.shape[0] == w.shape[1] == cell.hidden_size):
            raise _fail(who, "cell.recurrent-weights", f"recurrent weight {name!r} should be [hidden, hidden] = "
                                                       f"{(cell.hidden_size,) * 2}, is {_shape(w)}",
                        "name only the hidden-to-hidden matrices (the spectral-norm probe reads them)")


def check_init_and_after_step(factory: Callable, params: Any, *, who: str = "") -> None:
    """``cell.init`` and ``cell.after-step``."""
    import warnings
    for scheme in ("uniform", "orthogonal", "identity"):
        cell = factory(4, 6, params)
        who = who or f"cell {type(cell).__name__}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # a derived matrix left alone is allowed
                cell.init_weights(scheme, 0.1)
        except Exception as exc:  # noqa: BLE001 - the plugin's code
            raise _fail(who, "cell.init", f"init_weights({scheme!r}, 0.1) raised {type(exc).__name__}: {exc}",
                        "handle every scheme (uniform, orthogonal, identity), or call super().init_weights for the "
                        "ones you do not treat yourself") from exc
        bad = [n for n, p in cell.named_parameters() if not _finite(p)]
        if bad:
            raise _fail(who, "cell.init", f"init_weights({scheme!r}) leaves non-finite values in {bad}",
                        "initialise every parameter to finite values")
    cell = factory(4, 6, params)
    shapes = {n: tuple(p.shape) for n, p in cell.named_parameters()}
    try:
        with torch.no_grad():
            cell.after_step()
    except Exception as exc:  # noqa: BLE001
        raise _fail(who, "cell.after-step", f"after_step() raised {type(exc).__name__}: {exc}",
                    "change parameters in place (p.clamp_(...)); the trainer calls it without gradients") from exc
    after = {n: tuple(p.shape) for n, p in cell.named_parameters()}
    if after != shapes or not all(_finite(p) for p in cell.parameters()):
        raise _fail(who, "cell.after-step", "after_step() changed the parameters' shapes or made them non-finite",
                    "only constrain values in place (clip, renormalise)")


def check_cell(factory: Callable, params: Any, *, who: str = "") -> None:
    """Run every cell contract check on ``factory(input_size, hidden_size, params)`` (no build trial: that needs
    a spec; see :func:`check_cell_spec`)."""
    cell = factory(4, 6, params)
    who = who or f"cell {type(cell).__name__}"
    check_state(cell, who=who)
    check_finite(cell, who=who)
    check_recurrent_weights(cell, who=who)
    check_step_matches_sequence(factory, params, who=who)
    check_traced_matches_steps(factory, params, who=who)
    check_gradcheck(factory, params, who=who)
    check_init_and_after_step(factory, params, who=who)


def check_cell_spec(spec, params: Any = None) -> None:
    """The cell contract for a registered :class:`~workbench.schema.specs.CellSpec` (default params unless given):
    what the spec promises, every check of :func:`check_cell`, then the trial that building a model runs."""
    from workbench.core.cells import Cell
    from workbench.core.plugin_checks import build_cell, call_factory
    who = _who("cell", spec)
    params = spec.params() if params is None else params
    try:
        cell = call_factory("cell", spec, 4, 6, params)
    except Exception as exc:  # noqa: BLE001 - the plugin's code
        raise _fail(who, "cell.build", str(exc), "factory(input_size, hidden_size, params) builds the cell") from exc
    if not isinstance(cell, Cell):
        raise _fail(who, "cell.build", f"the factory returned {type(cell).__name__}, not a workbench.api.Cell",
                    "subclass workbench.api.Cell")
    if (cell.input_size, cell.hidden_size) != (4, 6):
        raise _fail(who, "cell.build", f"asked for input_size 4 and hidden_size 6, the cell has "
                                       f"{cell.input_size} and {cell.hidden_size}",
                    "pass the sizes the factory is given to Cell.__init__")
    if tuple(cell.gate_names) != tuple(spec.gates):
        raise _fail(who, "cell.spec", f"the spec says gates {tuple(spec.gates)}, the cell reports "
                                      f"{tuple(cell.gate_names)}", "make CellSpec.gates and Cell.gate_names agree")
    if tuple(cell.state_names) != tuple(spec.state_names):
        raise _fail(who, "cell.spec", f"the spec says state {tuple(spec.state_names)}, the cell has "
                                      f"{tuple(cell.state_names)}",
                    "make CellSpec.state_names and Cell.state_names agree")
    check_cell(spec.load(), params, who=who)
    try:
        build_cell(spec, 4, 6, params)
    except PluginCodeError as exc:
        what = str(exc).removeprefix(f"cell {spec.id!r} from {plugin_label(spec)}: ")
        raise _fail(who, "cell.build", what, "see what the trial names: each declared path must compute what "
                                             "stepping computes") from exc

