"""The plugin contracts, as checks any plugin can run against itself: one set per kind of contribution.

Each check has a name (``cell.state-shapes``, ``task.loss-last-step``, ...; :data:`CHECKS` lists them with what
they verify) and fails with a :class:`ContractError` (an ``AssertionError``, so pytest shows it as a failed
assertion) whose message names the contribution and its plugin, the check, what is wrong and the likely fix::

    cell 'my-cells.mgu' from plugin mgu (distribution my-cells): cell.state-shapes: init_state gives 'h' of
    shape (3, 1), expected [batch, hidden] = (3, 6) (a state that only broadcasts hides a wrong shape); likely
    fix: return one torch.zeros(batch, hidden_size) per name in state_names

Entry points: ``check_cell_spec``, ``check_block_spec``, ``check_task_spec``, ``check_decoder_spec``,
``check_template_spec``, ``check_feature_track_spec`` (a registered spec), ``check_spec`` (any kind) and
:func:`check_registry` (every contribution, what ``seqwb plugins --check`` runs).  ``check_cell(factory,
params)`` checks a cell factory with other parameter values.  The pytest plugin
(:mod:`workbench.testing.pytest_plugin`) turns them into fixtures.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from workbench.core.plugin_checks import PluginCodeError, plugin_label
from workbench.schema.errors import DataError

#: every check by name, with what it verifies (docs/plugins.md lists them)
CHECKS: dict[str, str] = {
    "cell.build": "the trial that building a model runs (one step, a short sequence, each declared path)",
    "cell.spec": "the spec's gates and state_names are the cell's",
    "cell.state-shapes": "init_state, every step and sequence() give states of exactly [batch, hidden]",
    "cell.finite": "outputs and states stay finite on ordinary inputs",
    "cell.gates": "step() reports every declared gate, [batch, hidden]",
    "cell.sequence-equals-stepping": "sequence() (a fused path) equals stepping: outputs, final state, gradients",
    "cell.traced-equals-stepping": "sequence_traced() (what the recorder reads) equals stepping, state by state",
    "cell.recurrent-weights": "recurrent_weights() are [hidden, hidden]",
    "cell.gradcheck": "torch.autograd.gradcheck of the step in float64",
    "cell.init": "init_weights(scheme) for every scheme leaves finite parameters",
    "cell.after-step": "after_step() runs without gradients and leaves finite parameters of the same shapes",
    "block.build": "the factory builds a Block from params, input and output sizes and a BuildContext",
    "block.ports": "forward() returns exactly the declared outputs",
    "block.shapes": "each output has its port type's layout ([T, B, size] for sequences, [B, size] per example)",
    "block.finite": "outputs stay finite",
    "block.step-equals-forward": "stepping a block gives its forward() outputs for sequence outputs",
    "block.sequence-traced": "sequence_traced(), where a block has it, equals stepping",
    "task.prepare": "prepare() reads or generates the data and sets vocab and sizes",
    "task.sizes": "every size the spec's ports name is in task.sizes, a positive int",
    "task.batches": "batches hold every input port in its layout, lengths within [1, T], and are a pure function "
                    "of their arguments",
    "task.loss": "loss() of training-shaped outputs is a finite scalar with finite gradients",
    "task.count": "count() is a positive int",
    "task.loss-last-step": "loss_last_step() of the probe's outputs ([T, B, ...]) is a finite scalar that depends "
                           "on one real step per sequence, where loss() depends too",
    "task.metrics": "eval_update/eval_finish give a finite 'loss', every declared metric, rates in [0, 1] and a "
                    "metric for every baseline_<metric>",
    "decoder.result": "a DecodeResult whose tokens are vocabulary ids and whose text is task.decode(tokens)",
    "decoder.eos": "generation stops at the task's eos_id, which is not part of the result, and runs to max_len "
                   "without one",
    "decoder.greedy-width-1": "a decoder with a width parameter equals greedy decoding at width 1",
    "decoder.tree": "the search tree is well formed: ids in order, one root, parents before children, steps and "
                    "statuses consistent, the alternatives' nodes spell their tokens",
    "decoder.deterministic": "the same seed gives the same result",
    "template.params": "parameters with ui= hints the window knows, cells that exist",
    "template.document": "the project document: known keys, valid train/decode settings, the task and blocks exist, "
                         "the graph is valid",
    "feature-track.values": "one finite number per character, for an empty and an ordinary text",
}


class ContractError(AssertionError):
    """A contract check failed: ``str(exc)`` names the contribution, the check, what is wrong and the fix."""

    def __init__(self, who: str, check: str, what: str, fix: str, *, needs_setup: bool = False):
        self.who, self.check, self.what, self.fix = who, check, what, fix
        #: the check could not run with the defaults: a task needs data they do not give, a block input sizes
        #: that only fit its parameters (``seqwb plugins --check`` reports it as not checked, not as failed)
        self.needs_setup = needs_setup
        super().__init__(f"{who}: {check}: {what}; likely fix: {fix}")


def _fail(who: str, check: str, what: str, fix: str) -> ContractError:
    assert check in CHECKS, check
    return ContractError(who, check, what, fix)


def _who(kind: str, spec: Any) -> str:
    return f"{kind} {spec.id!r} from {plugin_label(spec)}"


def _shape(t: Any) -> Any:
    return tuple(t.shape) if hasattr(t, "shape") else type(t).__name__


def _finite(t: Any) -> bool:
    return not isinstance(t, torch.Tensor) or not t.is_floating_point() or bool(torch.isfinite(t).all())


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    d = (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
    return d if d == d else math.inf


# ---- cells --------------------------------------------------------------------------------------------------------

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


# ---- blocks -------------------------------------------------------------------------------------------------------

#: sizes the block check feeds a port of each type with (token ports: a vocabulary of 11, 0 being padding)
TOKEN_SIZE, FEATURE_SIZE, WANTED_SIZE = 11, 5, 7


def _port_input(port_type: str, size: int, T: int, B: int, g: torch.Generator) -> Any:
    if port_type == "tokens[T]":
        return torch.randint(1, size, (T, B), generator=g)
    if port_type.endswith("[T]"):
        return torch.randn(T, B, size, generator=g)
    if port_type == "state":
        return None   # a recurrent state has the producing block's structure: the author passes one
    return torch.randn(B, size, generator=g)


def check_block_spec(spec, registry: Any, params: Any = None, in_sizes: Optional[dict[str, int]] = None,
                     inputs: Optional[dict[str, Any]] = None, T: int = 5, B: int = 3) -> None:
    """The block contract: build from sizes as a model graph would give them, then ports, shapes, finiteness and
    stepping against ``forward`` (in eval mode).  A required ``state`` input cannot be made up: pass ``inputs``
    (port -> value) for such a block, else only the build is checked."""
    from workbench.core.blocks import Block, BuildContext
    from workbench.core.graph import default_infer
    from workbench.core.plugin_checks import call_factory
    from workbench.schema.specs import resolve
    who = _who("block", spec)
    params = spec.params() if params is None else params
    sizes = {p.name: (in_sizes or {}).get(p.name, TOKEN_SIZE if p.type == "tokens[T]" else FEATURE_SIZE)
             for p in spec.inputs}
    wanted = {p.name: WANTED_SIZE for p in spec.outputs}
    fix_build = "build from the sizes the factory is given; a size that must be inferred comes from infer()"
    try:
        infer = resolve(spec.infer) if spec.infer else None
        outs = infer(params, sizes, wanted) if infer else default_infer(params, sizes, wanted, spec.outputs)
    except Exception as exc:  # noqa: BLE001 - infer() refusing sizes is how a block says what it accepts
        error = _fail(who, "block.build", f"infer() refuses the input sizes {sizes}: {exc}",
                      "pass in_sizes= that fit the block's parameters")
        error.needs_setup = in_sizes is None
        raise error from exc
    try:
        ctx = BuildContext(registry, {"vocab": TOKEN_SIZE}, "node")
        block = call_factory("block", spec, params, sizes, outs, ctx)
    except Exception as exc:  # noqa: BLE001 - the plugin's code
        what = str(exc).removeprefix(f"block {spec.id!r} from {plugin_label(spec)} ") \
            if isinstance(exc, PluginCodeError) else f"{type(exc).__name__}: {exc}"
        raise _fail(who, "block.build", what, fix_build) from exc
    if not isinstance(block, Block):
        raise _fail(who, "block.build", f"the factory returned {type(block).__name__}, not a workbench.api.Block",
                    "subclass workbench.api.Block")
    g = torch.Generator().manual_seed(0)
    given = dict(inputs or {})
    for p in spec.inputs:   # optional inputs too (a graph may connect them; a block's settings may need them)
        if p.name not in given:
            given[p.name] = _port_input(p.type, sizes[p.name], T, B, g)
    if any(given[p.name] is None for p in spec.inputs if p.required):
        return   # a state input nobody gave: only the build could be checked
    given = {k: v for k, v in given.items() if v is not None}
    block.eval()
    with torch.no_grad():
        try:
            out, _ = block({**given, "lengths": torch.full((B,), T, dtype=torch.long)}, block.init_state(B, "cpu"))
        except Exception as exc:  # noqa: BLE001
            raise _fail(who, "block.ports", f"forward() raised {type(exc).__name__}: {exc}",
                        "forward(inputs, state) takes a dict of the connected input ports (plus 'lengths')") from exc
    declared = [p.name for p in spec.outputs]
    if not isinstance(out, dict) or sorted(out) != sorted(declared):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise _fail(who, "block.ports", f"forward() returned {got}, the spec declares outputs {declared}",
                    "return ({port name: tensor} for exactly the declared outputs, state)")
    for p in spec.outputs:
        value, size = out[p.name], outs.get(p.name)
        if p.type == "state":
            continue   # its structure is the block's own
        want = (T, B) if p.type == "tokens[T]" else (T, B, size) if p.type.endswith("[T]") else (B, size)
        got = _shape(value)
        if not isinstance(value, torch.Tensor) or len(got) != len(want) or \
                any(w is not None and g_ != w for g_, w in zip(got, want)):
            raise _fail(who, "block.shapes", f"output {p.name!r} ({p.type}) has shape {got}, expected {want} "
                                             f"(time-major [T, B, size] for a sequence port, [B, size] per example)",
                        "give each output its port type's layout and the size infer() promised")
        if not _finite(value):
            raise _fail(who, "block.finite", f"output {p.name!r} is not finite for finite inputs",
                        "keep the block's arithmetic bounded")
    _check_block_steps(block, spec, given, out, who, T)


def _check_block_steps(block: Any, spec: Any, given: dict[str, Any], out: dict[str, Any], who: str, T: int) -> None:
    """``block.step-equals-forward`` and ``block.sequence-traced`` over the sequence outputs of a block fed only
    its required sequence inputs.  An optional or per-example input may be context (an encoder's memory, given
    whole at every step), which slicing it step by step would not mirror."""
    stepped_in = {p.name for p in spec.inputs if p.type.endswith("[T]") and p.required}
    seq_out = [p.name for p in spec.outputs if p.type.endswith("[T]")]
    if not seq_out or set(given) - stepped_in:
        return
    B = next(iter(given.values())).shape[1]
    fix = ("step() must compute one timestep of what forward() computes over the sequence (carry the state it "
           "returns); raise NotImplementedError if the block cannot step (a bidirectional layer)")
    with torch.no_grad():
        state = block.init_state(B, "cpu")
        steps: dict[str, list] = {name: [] for name in seq_out}
        try:
            for t in range(T):
                o, state = block.step({k: v[t] for k, v in given.items()}, state)
                for name in seq_out:
                    steps[name].append(o[name])
        except NotImplementedError:
            return
        except Exception as exc:  # noqa: BLE001
            raise _fail(who, "block.step-equals-forward", f"step() raised {type(exc).__name__}: {exc}", fix) from exc
        for name in seq_out:
            d = _max_diff(torch.stack(steps[name]), out[name])
            if d > 1e-4:
                raise _fail(who, "block.step-equals-forward", f"stepping gives output {name!r} {d:.3g} away from "
                                                              f"forward()", fix)
        traced = block.sequence_traced(given, block.init_state(B, "cpu"))
        if traced is NotImplemented:
            return
        for name in seq_out:
            d = _max_diff(traced[0][name], out[name])
            if d > 1e-4:
                raise _fail(who, "block.sequence-traced", f"sequence_traced() gives output {name!r} {d:.3g} away "
                                                          f"from stepping", "return NotImplemented where it cannot "
                                                                            "do what T calls of step() do")


# ---- tasks --------------------------------------------------------------------------------------------------------

def _step_port(spec: Any) -> str:
    return spec.step_input or next((p.name for p in spec.inputs if p.type == "tokens[T]"),
                                   spec.inputs[0].name if spec.inputs else "")


def _fake_outputs(spec: Any, task: Any, T: int, B: int, *, per_step: bool, g: torch.Generator) -> dict[str, Any]:
    """Random outputs for each of the task's output ports: training shapes, or the probe's ([T, B, ...] all)."""
    out = {}
    for p in spec.outputs:
        size = task.sizes.get(p.size, 1) if p.size else 1
        if p.type.endswith("[T]") or per_step:
            out[p.name] = torch.randn(T, B, size, generator=g, dtype=torch.float64)
        else:
            out[p.name] = torch.randn(B, size, generator=g, dtype=torch.float64)
    return out


def _batch_T_B(spec: Any, batch: dict[str, Any]) -> tuple[int, int]:
    stepped = batch[_step_port(spec)]
    return int(stepped.shape[0]), int(stepped.shape[1])


def _equal_batches(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if set(a) != set(b):
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and x.shape == y.shape and torch.equal(x, y)):
                return False
        elif x != y:
            return False
    return True


def check_task_spec(spec, params: Any = None, base_dir: Any = None, batch_size: int = 4,
                    chunk_len: int = 12) -> Any:
    """The task contract on the task built from ``params`` (the defaults unless given) in ``base_dir``; returns
    the prepared task."""
    from workbench.core.plugin_checks import call_factory
    from workbench.core.tasks import Task
    who = _who("task", spec)
    params = spec.params() if params is None else params
    try:
        task = call_factory("task", spec, params, base_dir)
        task.prepare()
    except DataError as exc:
        error = _fail(who, "task.prepare", f"the data could not be read: {exc}",
                      "give the check parameters (and base_dir) with data, or default to generated data")
        error.needs_setup = True
        raise error from exc
    except Exception as exc:  # noqa: BLE001
        raise _fail(who, "task.prepare", f"{type(exc).__name__}: {exc}",
                    "prepare() reads or generates the data; raise DataError with a clear line for bad data") from exc
    if not isinstance(task, Task):
        raise _fail(who, "task.prepare", f"the factory returned {type(task).__name__}, not a workbench.api.Task",
                    "subclass workbench.api.Task")
    named = sorted({p.size for p in (*spec.inputs, *spec.outputs) if p.size})
    bad = [n for n in named if not (isinstance(task.sizes.get(n), int) and task.sizes[n] > 0)]
    if bad:
        raise _fail(who, "task.sizes", f"task.sizes {task.sizes} lacks a positive int for {bad} (named by the "
                                       f"spec's ports)", "set self.sizes in prepare() for every size a port names")

    fix_batch = "yield dicts with every input port, time-major sequences ([T, B]), 'lengths' [B] in [1, T]"
    first = None
    for split in ("train", "valid"):
        try:
            n = task.num_batches(split, batch_size, chunk_len)
            batch = next(iter(task.batches(split, batch_size, chunk_len, epoch=1, start=0, seed=3)))
            again = next(iter(task.batches(split, batch_size, chunk_len, epoch=1, start=0, seed=3)))
        except StopIteration:
            raise _fail(who, "task.batches", f"the {split} split gives no batch", fix_batch) from None
        except Exception as exc:  # noqa: BLE001
            raise _fail(who, "task.batches", f"{split}: {type(exc).__name__}: {exc}", fix_batch) from exc
        if not (isinstance(n, int) and n >= 1):
            raise _fail(who, "task.batches", f"num_batches({split!r}) is {n!r}", "return how many batches "
                                                                                 "batches() yields, at least 1")
        _check_batch(spec, batch, who, split)
        if not _equal_batches(batch, again):
            raise _fail(who, "task.batches", f"two calls of batches({split!r}, ...) with the same arguments gave "
                                             f"different batches", "draw from a generator seeded by (seed, epoch, "
                                                                   "batch index), never from global state")
        first = first or batch
    assert first is not None
    T, B = _batch_T_B(spec, first)
    g = torch.Generator().manual_seed(0)

    outputs = {k: v.requires_grad_() for k, v in _fake_outputs(spec, task, T, B, per_step=False, g=g).items()}
    fix_loss = "return the mean loss over the batch as a 0-dim tensor computed from the outputs"
    try:
        loss = task.loss(outputs, first)
    except Exception as exc:  # noqa: BLE001
        raise _fail(who, "task.loss", f"{type(exc).__name__}: {exc}", fix_loss) from exc
    if not (isinstance(loss, torch.Tensor) and loss.dim() == 0 and _finite(loss)):
        got = f"a tensor of shape {_shape(loss)}" if isinstance(loss, torch.Tensor) else repr(loss)
        raise _fail(who, "task.loss", f"loss() returned {got}{'' if _finite(loss) else ' (not finite)'}, not a "
                                      f"finite scalar", fix_loss)
    try:
        grads = torch.autograd.grad(loss, list(outputs.values()), allow_unused=True)
    except RuntimeError as exc:
        raise _fail(who, "task.loss", f"the loss cannot be differentiated: {exc}", fix_loss) from exc
    if not all(gr is None or _finite(gr) for gr in grads) or all(gr is None for gr in grads):
        raise _fail(who, "task.loss", "the loss has no finite gradient with respect to the outputs", fix_loss)
    count = task.count(first)
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise _fail(who, "task.count", f"count() returned {count!r}", "return the number of items the loss is a "
                                                                      "mean over (tokens, sequences), an int > 0")
    _check_loss_last_step(spec, task, who, batch_size, chunk_len, g)
    _check_metrics(spec, task, who, batch_size, chunk_len, g)
    return task


def _check_batch(spec: Any, batch: Any, who: str, split: str) -> None:
    fix = "yield dicts with every input port, time-major sequences ([T, B]), 'lengths' [B] in [1, T]"
    if not isinstance(batch, dict):
        raise _fail(who, "task.batches", f"a {split} batch is {type(batch).__name__}, not a dict", fix)
    missing = [p.name for p in spec.inputs if p.name not in batch]
    if missing:
        raise _fail(who, "task.batches", f"a {split} batch lacks the input port(s) {missing}", fix)
    T, B = _batch_T_B(spec, batch)
    lengths = batch.get("lengths")
    if isinstance(lengths, torch.Tensor) and lengths.dim() == 1:
        B = int(lengths.shape[0])   # the batch size that lengths states: a batch-first input shows against it
    for p in spec.inputs:
        value = batch[p.name]
        ok = isinstance(value, torch.Tensor)
        if ok and p.type == "tokens[T]":
            ok = value.dim() == 2 and not value.is_floating_point() and value.shape[1] == B
        elif ok and p.type.endswith("[T]"):
            ok = value.dim() == 3 and value.shape[1] == B
        elif ok:
            ok = value.dim() >= 1 and value.shape[0] == B
        if not ok:
            raise _fail(who, "task.batches", f"{split} input {p.name!r} ({p.type}) has shape {_shape(value)} in a "
                                             f"batch of {B} (sequences are time-major, [T, B, ...]; other inputs "
                                             f"batch-first)", fix)
    longest = max((int(batch[p.name].shape[0]) for p in spec.inputs if p.type.endswith("[T]")), default=T)
    if lengths is not None and not (isinstance(lengths, torch.Tensor) and tuple(lengths.shape) == (B,) and
                                    int(lengths.min()) >= 1 and int(lengths.max()) <= longest):
        raise _fail(who, "task.batches", f"{split} 'lengths' is {lengths!r}, expected [B] = ({B},) ints in [1, T]",
                    fix)


def _check_loss_last_step(spec: Any, task: Any, who: str, batch_size: int, chunk_len: int,
                          g: torch.Generator) -> None:
    """What the gradient-through-time probe does: both losses of the per-step outputs, and where L_T looks."""
    fix = ("L_T is the loss at each sequence's last real step: cut every time-major tensor there (lengths - 1); "
           "the probe passes every output stacked over time, [T, B, ...]")
    try:
        batch = task.probe_batch(batch_size, chunk_len)
    except Exception as exc:  # noqa: BLE001
        raise _fail(who, "task.loss-last-step", f"probe_batch() raised {type(exc).__name__}: {exc}",
                    "probe_batch(batch_size, length) returns one batch (default: the first valid batch)") from exc
    T, B = _batch_T_B(spec, batch)
    outputs = {k: v.requires_grad_() for k, v in _fake_outputs(spec, task, T, B, per_step=True, g=g).items()}

    def where(loss_fn: Callable, name: str) -> set[tuple[int, int]]:
        try:
            value = loss_fn(outputs, batch)
            grads = torch.autograd.grad(value, list(outputs.values()), allow_unused=True)
        except Exception as exc:  # noqa: BLE001
            raise _fail(who, "task.loss-last-step", f"{name}() of the probe's per-step outputs raised "
                                                    f"{type(exc).__name__}: {exc}", fix) from exc
        if not (isinstance(value, torch.Tensor) and value.dim() == 0 and _finite(value)):
            raise _fail(who, "task.loss-last-step", f"{name}() of the probe's outputs is not a finite scalar", fix)
        places: set[tuple[int, int]] = set()
        for gr in grads:
            if gr is not None:
                hit = gr.reshape(T, B, -1).abs().sum(-1) > 0
                places |= {(int(t), int(b)) for t, b in hit.nonzero().tolist()}
        return places

    last = where(task.loss_last_step, "loss_last_step")
    whole = where(task.loss, "loss")
    if not last:
        raise _fail(who, "task.loss-last-step", "loss_last_step() depends on no output", fix)
    outside = sorted(last - whole)
    if outside:
        raise _fail(who, "task.loss-last-step", f"loss_last_step() looks at (step, sequence) {outside[:3]}, where "
                                                f"loss() has no gradient (a padded step?)", fix)
    for b in range(B):
        mine = sorted(t for t, b2 in last if b2 == b)
        ends = max((t for t, b2 in whole if b2 == b), default=None)
        if len(mine) > 1:
            raise _fail(who, "task.loss-last-step", f"loss_last_step() depends on steps {mine} of sequence {b}, not "
                                                    f"on one step (loss() depends on steps up to {ends})", fix)
        if mine and mine[0] != ends:
            raise _fail(who, "task.loss-last-step", f"loss_last_step() takes step {mine[0]} of sequence {b}; its "
                                                    f"loss ends at step {ends}", fix)


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return [float(value)]
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _numbers(v)]
    raise TypeError(type(value).__name__)


def _check_metrics(spec: Any, task: Any, who: str, batch_size: int, chunk_len: int, g: torch.Generator) -> None:
    from workbench.core.tasks import Task
    fix = "eval_finish returns {'loss': mean loss, metric: number, ...} from what eval_update accumulated"
    acc: dict = {}
    try:
        for i, batch in enumerate(task.batches("valid", batch_size, chunk_len, epoch=0, start=0)):
            if i == 2:
                break
            T, B = _batch_T_B(spec, batch)
            with torch.no_grad():
                task.eval_update(acc, _fake_outputs(spec, task, T, B, per_step=False, g=g), batch)
        result = task.eval_finish(acc)
    except Exception as exc:  # noqa: BLE001
        raise _fail(who, "task.metrics", f"{type(exc).__name__}: {exc}", fix) from exc
    if not isinstance(result, dict) or "loss" not in result:
        raise _fail(who, "task.metrics", f"eval_finish returned {result!r:.200}, without 'loss'", fix)
    for name, value in result.items():
        try:
            numbers = _numbers(value)
        except TypeError as exc:
            raise _fail(who, "task.metrics", f"metric {name!r} is a {exc}, not a number", fix) from None
        if not all(math.isfinite(x) for x in numbers):
            raise _fail(who, "task.metrics", f"metric {name!r} is not finite ({value!r:.80})", fix)
        rate = any(word in name for word in ("accuracy", "exact", "f1"))
        if rate and not all(0.0 <= x <= 1.0 for x in numbers):
            raise _fail(who, "task.metrics", f"metric {name!r} = {value!r} is a rate outside [0, 1]",
                        "report rates as fractions")
        if name.startswith("baseline_") and name[len("baseline_"):] not in result:
            raise _fail(who, "task.metrics", f"{name!r} has no metric {name[len('baseline_'):]!r} to be the "
                                             f"baseline of", "baseline_<metric> is drawn next to <metric>: return "
                                                             "both, or rename it")
    generates = type(task).eval_generate is not Task.eval_generate
    absent = [m for m in spec.metrics if m not in result]
    if absent and not generates:
        raise _fail(who, "task.metrics", f"the spec declares metrics {absent} that eval_finish does not return",
                    "return every declared metric, or drop it from TaskSpec.metrics")


# ---- decoders -----------------------------------------------------------------------------------------------------

class _ToyModel(torch.nn.Module):
    """What decoders see of a model (``start``, ``step``, ``forward``): a fixed Markov chain over 12 tokens whose
    end token becomes certain after ``eos_after`` generated tokens.  Its greedy path is known exactly."""

    V = 12

    def __init__(self, eos_id: int | None, eos_after: int):
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        self.register_buffer("table", torch.randn(self.V, self.V, generator=g) * 3.0)
        self.eos_id, self.eos_after = eos_id, eos_after
        self.anchor = torch.nn.Parameter(torch.zeros(()))   # so that the model has a device and parameters

    def start(self, batch_size: int = 1, context: Any = None) -> dict[str, Any]:
        zeros = torch.zeros(batch_size, dtype=torch.long)
        return {"toy": (zeros, zeros)}      # (the previous token, how many generated tokens were fed back)

    def _logits(self, prev: torch.Tensor, made: torch.Tensor) -> torch.Tensor:
        logits = self.table[prev].clone()
        if self.eos_id is not None:
            ready = (made >= self.eos_after).unsqueeze(1)
            logits[:, self.eos_id] = torch.where(ready.squeeze(1), torch.full_like(prev, 50, dtype=logits.dtype),
                                                 torch.full_like(prev, -50, dtype=logits.dtype))
        return logits

    def step(self, tokens: torch.Tensor, state: dict[str, Any], port: str | None = None,
             out_port: str = "logits") -> tuple[torch.Tensor, dict[str, Any]]:
        _, made = state["toy"]
        made = made + 1
        return self._logits(tokens, made), {"toy": (tokens, made)}

    def forward(self, batch: dict[str, Any], state: Optional[dict[str, Any]] = None):
        tokens = batch["tokens"]
        state = state or self.start(tokens.shape[1])
        prev, made = state["toy"]
        outs = []
        for t in range(tokens.shape[0]):
            prev = tokens[t]
            outs.append(self._logits(prev, made))   # priming: the prompt does not count as generated
        return {"logits": torch.stack(outs)}, {"toy": (prev, made)}

    @property
    def device(self) -> torch.device:
        return self.anchor.device


def _toy_task(eos_id: int | None) -> Any:
    from workbench.core.tasks import Task

    class ToyTask(Task):
        generative = True

        def __init__(self) -> None:
            super().__init__(None)
            self.vocab = [chr(ord("a") + i) for i in range(_ToyModel.V)]
            self.sizes = {"vocab": _ToyModel.V}
            self.eos_id = eos_id

        def encode(self, text: str) -> list[int]:
            return [self.vocab.index(c) for c in text if c in self.vocab]

        def decode(self, ids: list[int]) -> str:
            return "".join(self.vocab[i] for i in ids if 0 <= i < len(self.vocab) and i != self.eos_id)

    return ToyTask()


def _greedy_reference(model: _ToyModel, task: Any, max_len: int) -> list[int]:
    with torch.no_grad():
        logits, state, _ = task.prime(model, "", torch.device("cpu"), 1)
        out: list[int] = []
        for _ in range(max_len):
            tok = int(logits[0].argmax())
            if tok == task.eos_id:
                break
            out.append(tok)
            logits, state = model.step(torch.tensor([tok]), state)
    return out


def check_decoder_spec(spec, settings: Optional[dict[str, Any]] = None) -> None:
    """The decoder contract, on a toy model whose greedy path and end are known (``settings`` override the
    decoder's parameter defaults)."""
    from workbench.core.decode import DecodeResult, run_decoder
    from workbench.schema.params import field_info
    who = _who("decoder", spec)
    fields = {f.name for f in field_info(spec.params)}
    base = dict(settings or {})
    if "max_len" in fields:
        base.setdefault("max_len", 8)
    max_len = int(base.get("max_len", 8))
    eos_after = 4

    def decode(eos_id: int | None, extra: dict[str, Any], seed: int = 0) -> Any:
        model, task = _ToyModel(eos_id, eos_after), _toy_task(eos_id)
        try:
            result = run_decoder(spec, model, task, {**base, **extra}, prompt="", device=torch.device("cpu"),
                                 seed=seed)
        except Exception as exc:  # noqa: BLE001
            raise _fail(who, "decoder.result", f"decoding raised {type(exc).__name__}: {exc}",
                        "a decoder is factory(model, task, params, *, prompt, device, generator) and uses only "
                        "task.prime, model.step and task.decode") from exc
        if not isinstance(result, DecodeResult):
            raise _fail(who, "decoder.result", f"the decoder returned {type(result).__name__}",
                        "return a workbench.api.DecodeResult")
        bad = [t for t in result.tokens if not (isinstance(t, int) and 0 <= t < _ToyModel.V)]
        if bad:
            raise _fail(who, "decoder.result", f"tokens {bad[:3]} are not ids of the vocabulary",
                        "tokens are the generated ids, as ints")
        if result.text != task.decode(result.tokens):
            raise _fail(who, "decoder.result", f"text {result.text!r} is not task.decode(tokens) = "
                                               f"{task.decode(result.tokens)!r}", "text = task.decode(tokens)")
        if not math.isfinite(float(result.score)):
            raise _fail(who, "decoder.result", f"score {result.score!r} is not finite",
                        "score is the sum of the log-probabilities of the generated tokens")
        return result, model, task

    with_eos, _, _ = decode(2, {})
    if 2 in with_eos.tokens:
        raise _fail(who, "decoder.eos", f"the result holds the end token: {with_eos.tokens}",
                    "stop at task.eos_id and leave it out of tokens")
    if max_len >= eos_after and len(with_eos.tokens) != eos_after:
        raise _fail(who, "decoder.eos", f"{len(with_eos.tokens)} tokens generated where the end was certain after "
                                        f"{eos_after}", "stop when the end token is generated")
    without, _, _ = decode(None, {})
    if "max_len" in fields and len(without.tokens) != max_len:
        raise _fail(who, "decoder.eos", f"without an end token, {len(without.tokens)} tokens were generated with "
                                        f"max_len {max_len}", "a task with eos_id None generates max_len tokens")
    if "width" in fields:
        for eos_id in (2, None):
            result, model, task = decode(eos_id, {"width": 1, **({"n_best": 1} if "n_best" in fields else {})})
            want = _greedy_reference(model, task, max_len)
            if result.tokens != want:
                raise _fail(who, "decoder.greedy-width-1", f"width 1 gives {result.tokens}, greedy decoding {want} "
                                                           f"(eos {'on' if eos_id is not None else 'off'})",
                            "with one hypothesis, keep the best continuation at every step")
    again, _, _ = decode(2, {})
    first, _, _ = decode(2, {})
    if again.tokens != first.tokens or again.text != first.text:
        raise _fail(who, "decoder.deterministic", "two runs with the same seed differ",
                    "draw random numbers from the generator argument only")
    for result, eos_id in ((with_eos, 2), (without, None)):
        if result.tree is not None:
            _check_tree(result, who, eos_id)


def _check_tree(result: Any, who: str, eos: int | None) -> None:
    fix = "add nodes with SearchTree.add(parent, token, logprob, score, step, status): the root first, parents first"
    nodes = result.tree.nodes
    if not nodes or nodes[0].parent is not None or nodes[0].step != -1:
        raise _fail(who, "decoder.tree", "node 0 is not the root (parent None, step -1)", fix)
    statuses = {"kept", "pruned", "finished", "forced"}
    for i, n in enumerate(nodes):
        if n.id != i:
            raise _fail(who, "decoder.tree", f"node {i} has id {n.id}", fix)
        if i and (n.parent is None or not 0 <= n.parent < i):
            raise _fail(who, "decoder.tree", f"node {i} has parent {n.parent} (a root, or not before it)", fix)
        if i and n.step != nodes[n.parent].step + 1:
            raise _fail(who, "decoder.tree", f"node {i} is at step {n.step}, its parent at {nodes[n.parent].step}",
                        fix)
        if n.status not in statuses:
            raise _fail(who, "decoder.tree", f"node {i} has status {n.status!r}, not one of {sorted(statuses)}", fix)
        if i and nodes[n.parent].status in ("pruned", "finished"):
            raise _fail(who, "decoder.tree", f"node {i} extends node {n.parent}, which was {nodes[n.parent].status}",
                        fix)
    for alt in result.alternatives:
        if "node" not in alt:
            continue
        path = result.tree.path(int(alt["node"]))
        tokens = list(alt.get("tokens", []))
        # a finished hypothesis's node is its end token, which is not part of its tokens
        if tokens != path and not (alt.get("finished") and path[-1:] == [eos] and tokens == path[:-1]):
            raise _fail(who, "decoder.tree", f"alternative {tokens} points at node {alt['node']}, whose path is "
                                             f"{path}", "an alternative's node is its last token (or its end token)")


# ---- templates ----------------------------------------------------------------------------------------------------

def check_template_spec(spec, registry: Any, params: Any = None) -> dict[str, Any]:
    """The template contract: its parameters' ``ui=`` hints and the project document it makes (see
    :func:`workbench.core.plugin_checks.template_problems`); returns the document."""
    from workbench.core.plugin_checks import UI_HINTS, template_problems
    from workbench.schema.params import field_info
    who = _who("template", spec)
    for info in field_info(spec.params):
        if info.ui is not None and info.ui not in UI_HINTS:
            raise _fail(who, "template.params", f"parameter {info.name!r} has ui={info.ui!r}, which the window does "
                                                f"not know", f"use one of {', '.join(map(repr, UI_HINTS))} or none")
        if info.ui == "cell" and not (info.base is str and registry.has("cell", info.default)):
            raise _fail(who, "template.params", f"parameter {info.name!r} (ui='cell') defaults to {info.default!r}, "
                                                f"which is not an installed cell", "default to a cell id such as "
                                                                                   "'lstm'")
    params = spec.params() if params is None else params
    try:
        doc = spec.load()(params)
    except Exception as exc:  # noqa: BLE001
        raise _fail(who, "template.document", f"the factory raised {type(exc).__name__}: {exc}",
                    "factory(params) returns the project document (no torch)") from exc
    problems = template_problems(doc, registry, spec)
    if problems:
        raise _fail(who, "template.document", "; ".join(problems), "follow the template format (docs/plugins.md)")
    return doc


# ---- feature tracks -----------------------------------------------------------------------------------------------

def check_feature_track_spec(spec) -> None:
    import numpy as np
    who = _who("feature track", spec)
    fix = "return one finite number per character of the text (a numpy array of len(text))"
    fn = spec.load()
    for text in ("", "a = 'b'  # c\n(1, [2])\n"):
        try:
            values = np.asarray(fn(text), dtype=np.float64).reshape(-1)
        except Exception as exc:  # noqa: BLE001
            raise _fail(who, "feature-track.values", f"the track raised {type(exc).__name__}: {exc} for "
                                                     f"{text!r}", fix) from exc
        if values.shape != (len(text),) or not np.isfinite(values).all():
            raise _fail(who, "feature-track.values", f"{values.shape[0]} values (finite: "
                                                     f"{bool(np.isfinite(values).all())}) for {len(text)} characters",
                        fix)


# ---- every kind ---------------------------------------------------------------------------------------------------

KINDS = ("cell", "architecture", "task", "decoder", "template", "feature_track")


def check_spec(kind: str, spec: Any, registry: Any) -> None:
    """Run the contract of ``kind`` on ``spec`` with its default parameters."""
    if kind == "cell":
        check_cell_spec(spec)
    elif kind == "architecture":
        check_block_spec(spec, registry)
    elif kind == "task":
        check_task_spec(spec)
    elif kind == "decoder":
        check_decoder_spec(spec)
    elif kind == "template":
        check_template_spec(spec, registry)
    elif kind == "feature_track":
        check_feature_track_spec(spec)
    else:
        raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")


@dataclass(frozen=True)
class ContractResult:
    """One contribution checked: ``status`` is "passed", "failed" or "not checked" (a task whose default
    parameters need data), ``check`` the failed check's name and ``message`` the failure's line."""

    kind: str
    id: str
    distribution: str
    plugin: str
    status: str
    check: str = ""
    message: str = ""
    detail: str = ""


def check_registry(registry: Any, *, distributions: Optional[set[str]] = None,
                   builtins: bool = True) -> list[ContractResult]:
    """Run the contract of every contribution in ``registry`` (of ``distributions`` only, when given; without
    the built-ins when ``builtins`` is False).  Never raises for a plugin's fault: each result says what happened.
    """
    from workbench.plugin_system.user_settings import BUILTIN_DISTRIBUTION, normalize
    wanted = {normalize(d) for d in distributions} if distributions else None
    torch.manual_seed(0)   # the checks draw their own seeded numbers; a plugin's init draws from here
    results = []
    for kind, spec in registry.all():
        dist = normalize(spec.distribution or "")
        if (wanted is not None and dist not in wanted) or (not builtins and dist == BUILTIN_DISTRIBUTION):
            continue
        base = dict(kind=kind, id=spec.id, distribution=spec.distribution, plugin=spec.plugin)
        try:
            with torch.random.fork_rng(devices=[]):
                check_spec(kind, spec, registry)
        except ContractError as exc:
            status = "not checked" if exc.needs_setup else "failed"
            results.append(ContractResult(**base, status=status, check=exc.check, message=str(exc),
                                          detail=traceback.format_exc()))
            continue
        except Exception as exc:  # noqa: BLE001 - a plugin's code failing outside what a check expected
            results.append(ContractResult(**base, status="failed", check=f"{_kind_prefix(kind)}.error",
                                          message=f"{_who(kind, spec)}: {type(exc).__name__}: {exc}",
                                          detail=traceback.format_exc()))
            continue
        results.append(ContractResult(**base, status="passed"))
    return results


def _kind_prefix(kind: str) -> str:
    return {"architecture": "block", "feature_track": "feature-track"}.get(kind, kind)

