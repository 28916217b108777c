"""The block contract: a block builds from the sizes a model graph gives it, returns exactly its declared
ports in their layouts, stays finite, and its step path agrees with ``forward`` (:func:`check_block_spec`)."""

from __future__ import annotations

from typing import Any, Optional

import torch

from workbench.core.plugin_checks import PluginCodeError, plugin_label
from workbench.testing.contract_base import fail as _fail
from workbench.testing.contract_base import finite as _finite
from workbench.testing.contract_base import max_diff as _max_diff
from workbench.testing.contract_base import shape_of as _shape
from workbench.testing.contract_base import who_is as _who


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

