"""The block contract: a node of the model graph as a torch module.

Tensors are time-major: a sequence port carries ``[T, B, F]`` (tokens ``[T, B]``), a per-example port ``[B, F]``.
``forward`` runs a whole sequence (fused kernels where there are any); ``step`` runs one timestep (inputs without
the time dimension) and is what decoders and probes use.  Stateless blocks ignore ``state``.  ``sequence_traced``
(optional) runs a chunk of timesteps exactly as that many ``step`` calls would, traces included: the hidden-unit
recorder uses it when every stepped block of a model has it.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from workbench.schema.registry import Registry


class BuildContext:
    """What a block factory may need besides its params: the registry (to build cells), sizes, the task."""

    def __init__(self, registry: Registry, task_sizes: dict[str, int], node_id: str,
                 cell_params: dict[str, dict] | None = None):
        self.registry = registry
        self.task_sizes = task_sizes
        self.node_id = node_id
        #: the node's "cell.NAME" settings, by cell field ("cell" -> {"forget_bias": 2.0})
        self.cell_params = cell_params or {}

    def make_cell(self, cell_id: str, input_size: int, hidden_size: int, params: dict | None = None,
                  field: str = "cell"):
        """Build a registered cell with the node's settings for it (``params`` overrides them)."""
        from workbench.schema.params import params_from_dict
        spec = self.registry.cell(cell_id)
        values = self.cell_params.get(field, {}) if params is None else params
        p = params_from_dict(spec.params, values, f"{self.node_id}.{field}")
        from workbench.core.plugin_checks import build_cell  # names the plugin if its cell breaks the contract
        return build_cell(spec, input_size, hidden_size, p)


class Block(nn.Module):
    #: True if the block keeps a recurrent state between calls (carried across truncated-BPTT chunks)
    stateful: bool = False
    #: the training precisions the block computes correctly under torch.autocast (its cells say their own);
    #: float32 only unless the block says more
    precisions: tuple[str, ...] = ("fp32",)

    def precision_blockers(self, name: str) -> list[str]:
        """What in this block cannot train in precision ``name``: the block itself, or cells of its layers."""
        out = [] if name in self.precisions else [f"block {type(self).__name__}"]
        for layer, cell in self.layers():
            if name not in cell.supported_precisions():
                out.append(f"cell {type(cell).__name__} ({layer})")
        return out

    def init_state(self, batch: int, device: torch.device | str) -> Any:
        return None

    def forward(self, inputs: dict[str, Tensor], state: Any = None) -> tuple[dict[str, Tensor], Any]:
        raise NotImplementedError

    def step(self, inputs: dict[str, Tensor], state: Any = None,
             trace: Optional[dict] = None) -> tuple[dict[str, Tensor], Any]:
        """One timestep.  Recurrent blocks write ``trace[layer] = {"h": .., "c": .., gate: ..}`` when given a dict.

        The default treats the inputs as a length-1 sequence; stateless per-timestep blocks can keep it.
        """
        seq = {k: v.unsqueeze(0) for k, v in inputs.items()}
        out, state = self.forward(seq, state)
        return {k: v.squeeze(0) for k, v in out.items()}, state

    def sequence_traced(self, inputs: dict[str, Tensor], state: Any = None,
                        trace: Optional[dict] = None) -> tuple[dict[str, Tensor], Any]:
        """A chunk of timesteps at once: what ``T`` calls of :meth:`step` give, or ``NotImplemented``.

        ``inputs`` are time-major ``[T, B, ...]`` (what :meth:`step` would get at each step, stacked); return the
        outputs of every step stacked the same way and the state after the last step, in :meth:`step`'s state
        convention, so that chunks and single steps can follow each other.  With a ``trace`` dict, write what
        :meth:`step` writes at every step, each value stacked over the chunk (``trace[layer] = {"h": [T, B, H],
        ..}``).  Return ``NotImplemented`` when the block cannot (decide from the block's configuration, not from
        the inputs): the recorder then runs the whole model through :meth:`step`.

        The default runs :meth:`forward` for a stateless block that keeps the default :meth:`step` (which is that
        same ``forward`` on a length-1 sequence and writes no trace), and declines for every other block.
        """
        if self.stateful or type(self).step is not Block.step:
            return NotImplemented
        return self.forward(inputs, state)

    def layers(self) -> list[tuple[str, Any]]:
        """Recurrent layers as ``(name, cell)`` for probes; empty for non-recurrent blocks."""
        return []

    def init_weights(self, scheme: str, scale: float) -> None:
        """Cells initialise their own parameters (so an LSTM keeps its forget-gate bias); the rest here."""
        cells = [cell for _, cell in self.layers()]
        in_cells = {id(p) for cell in cells for p in cell.parameters()}
        if scheme == "uniform":
            for p in self.parameters():
                if id(p) not in in_cells:
                    nn.init.uniform_(p, -scale, scale)
        for cell in cells:
            cell.init_weights(scheme, scale)


def map_state(state: Any, fn) -> Any:
    """Apply ``fn`` to every tensor of a nested state (tuples, lists, dicts)."""
    # (called for every beam-search step: list comprehensions, not generators, and the common case first)
    if isinstance(state, Tensor):
        return fn(state)
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple([map_state(s, fn) for s in state])
    if isinstance(state, list):
        return [map_state(s, fn) for s in state]
    if isinstance(state, dict):
        return {k: map_state(v, fn) for k, v in state.items()}
    return state


def flatten_state(state: Any, prefix: str = "") -> dict[str, Tensor]:
    """Nested state -> ``{"a/0/1": tensor}`` (for saving the carried state in a checkpoint)."""
    out: dict[str, Tensor] = {}
    if isinstance(state, Tensor):
        out[prefix] = state
    elif isinstance(state, (tuple, list)):
        for i, s in enumerate(state):
            out.update(flatten_state(s, f"{prefix}/{i}" if prefix else str(i)))
    elif isinstance(state, dict):
        for k, s in state.items():
            out.update(flatten_state(s, f"{prefix}/{k}" if prefix else str(k)))
    return out


def unflatten_like(template: Any, flat: dict[str, Tensor], prefix: str = "") -> Any:
    """Inverse of :func:`flatten_state`, shaped like ``template``."""
    if isinstance(template, Tensor):
        return flat[prefix]
    if isinstance(template, tuple):
        return tuple(unflatten_like(s, flat, f"{prefix}/{i}" if prefix else str(i)) for i, s in enumerate(template))
    if isinstance(template, list):
        return [unflatten_like(s, flat, f"{prefix}/{i}" if prefix else str(i)) for i, s in enumerate(template)]
    if isinstance(template, dict):
        return {k: unflatten_like(s, flat, f"{prefix}/{k}" if prefix else str(k)) for k, s in template.items()}
    return template
