"""What every contract check shares: the names of the checks, the error a failed check raises, and the small
measurements (shapes, finiteness, differences) the checks of every kind take.

Split from :mod:`workbench.testing.contracts`, which re-exports ``CHECKS`` and ``ContractError``: plugin authors
import them from there.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from workbench.core.plugin_checks import plugin_label

__all__ = ["CHECKS", "ContractError", "fail", "finite", "max_diff", "shape_of", "who_is"]

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


def fail(who: str, check: str, what: str, fix: str) -> ContractError:
    assert check in CHECKS, check
    return ContractError(who, check, what, fix)


def who_is(kind: str, spec: Any) -> str:
    return f"{kind} {spec.id!r} from {plugin_label(spec)}"


def shape_of(t: Any) -> Any:
    return tuple(t.shape) if hasattr(t, "shape") else type(t).__name__


def finite(t: Any) -> bool:
    return not isinstance(t, torch.Tensor) or not t.is_floating_point() or bool(torch.isfinite(t).all())


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    d = (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
    return d if d == d else math.inf

