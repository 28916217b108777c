"""Graph + registry -> :class:`SequenceModel`, a ``torch.nn.Module``.

``forward(batch, state)`` runs whole sequences through every block (fused kernels where a cell has one) and is
what training uses.  ``start``/``step`` run one timestep at a time through the blocks' per-step paths and are all a
decoder needs.  ``step_graph(..., trace=dict)`` is the same with every recurrent layer's hidden state, cell state
and gates written into ``trace`` (probes and the recorder); ``sequence_graph`` runs a chunk of timesteps of the
stepped nodes at once with the same trace and state (the recorder's fast path, where every stepped block has one).
"""

from __future__ import annotations

from typing import Any, Optional, cast

import torch
from torch import Tensor, nn

from workbench.core.blocks import Block, BuildContext, map_state
from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Graph, analyze
from workbench.schema.registry import Registry

#: Optional batch entry (and block input) with each sequence's true length, ``[B]`` long, for padded batches
#: of independent sequences.  Blocks that care (pooling, bidirectional layers) read ``inputs.get(LENGTHS)``.
LENGTHS = "lengths"


class SequenceModel(nn.Module):
    def __init__(self, graph: Graph, registry: Registry, task_spec: Any, task_sizes: dict[str, int]):
        super().__init__()
        report = analyze(graph, registry, task_spec, task_sizes)
        report.raise_if_invalid()
        self.graph_hash = graph.content_hash()
        self.in_node = next(n.id for n in graph.nodes.values() if n.type == TASK_INPUT)
        self.out_node = next(n.id for n in graph.nodes.values() if n.type == TASK_OUTPUT)
        self.input_ports = [p.name for p in task_spec.inputs]
        self.order = [nid for nid in report.order if nid not in (self.in_node, self.out_node)]
        self.wiring: dict[str, dict[str, tuple[str, str]]] = {
            nid: {port: (ln.src, ln.src_port) for port, ln in graph.incoming(nid).items()} for nid in self.order}
        # The stepped input is what a decoder feeds one token at a time (an LM's tokens, a translator's target).
        # Nodes downstream of it run step by step; the others (an encoder, an image encoder) are the *context*,
        # computed once by ``start(context=...)``.
        self.step_port = getattr(task_spec, "step_input", "") or next(
            (p.name for p in task_spec.inputs if p.type == "tokens[T]"), self.input_ports[0] if self.input_ports else "")
        self.context_ports = [p for p in self.input_ports if p != self.step_port]
        stepped: set[str] = set()
        for nid in self.order:
            if any(src == (self.in_node, self.step_port) or src[0] in stepped for src in self.wiring[nid].values()):
                stepped.add(nid)
        self.stepped_order = [nid for nid in self.order if nid in stepped]
        self.context_order = [nid for nid in self.order if nid not in stepped]
        self.outputs_map = {port: (ln.src, ln.src_port) for port, ln in graph.incoming(self.out_node).items()}
        self.blocks = nn.ModuleDict()
        for nid in self.order:
            node = graph.nodes[nid]
            spec = registry.block(node.type)
            ins = report.in_sizes(graph, nid)
            outs = {p.name: report.sizes.get((nid, p.name)) for p in spec.outputs}
            missing = [k for k, v in outs.items() if v is None and any(ln.src == nid and ln.src_port == k
                                                                       for ln in graph.links)]
            if missing:
                from workbench.schema.errors import GraphError
                raise GraphError([f"node {nid}: cannot infer the size of output(s) {', '.join(missing)}; "
                                  f"set it in the node's parameters"])
            from workbench.core.graph import split_nested_params
            ctx = BuildContext(registry, task_sizes, nid, split_nested_params(spec.params, node.params)[1])
            from workbench.core.plugin_checks import PluginCodeError, call_factory, plugin_label
            block = call_factory("block", spec, report.params[nid], ins, outs, ctx)  # failures name the plugin
            if not isinstance(block, Block):
                raise PluginCodeError(f"block {node.type!r} from {plugin_label(spec)}: the factory returned "
                                      f"{type(block).__name__}, not a Block")
            self.blocks[nid] = block
        self.stateful_nodes = [nid for nid in self.order if self.block(nid).stateful]
        # the batch dimension of each task input and context-node output: sequences ("...[T]") are time-major
        self.batch_dims: dict[tuple[str, str], int] = {(self.in_node, p.name): _batch_dim(p.type)
                                                       for p in task_spec.inputs}
        for nid in self.context_order:
            for p in registry.block(graph.nodes[nid].type).outputs:
                self.batch_dims[(nid, p.name)] = _batch_dim(p.type)

    # ---- state -------------------------------------------------------------------------------------------
    def block(self, node_id: str) -> Block:
        """The block of node ``node_id`` (``self.blocks`` is a ModuleDict, typed as plain modules)."""
        return cast(Block, self.blocks[node_id])

    def init_state(self, batch: int, device: torch.device | str | None = None) -> dict[str, Any]:
        device = device if device is not None else self.device
        return {nid: self.block(nid).init_state(batch, device) for nid in self.stateful_nodes}

    @staticmethod
    def detach_state(state: Any) -> Any:
        return map_state(state, lambda t: t.detach())

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    # ---- whole sequences ---------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any], state: Optional[dict[str, Any]] = None
                ) -> tuple[dict[str, Tensor], dict[str, Any]]:
        values: dict[tuple[str, str], Tensor] = {(self.in_node, p): batch[p] for p in self.input_ports}
        new_state: dict[str, Any] = {}
        lengths = batch.get(LENGTHS)
        for nid in self.order:
            block = self.block(nid)
            ins = {port: values[src] for port, src in self.wiring[nid].items()}
            if lengths is not None:
                ins[LENGTHS] = lengths
            out, s = block(ins, state.get(nid) if state else None)
            if block.stateful:
                new_state[nid] = s
            for port, v in out.items():
                values[(nid, port)] = v
        return {port: values[src] for port, src in self.outputs_map.items()}, new_state

    # ---- one timestep --------------------------------------------------------------------------------------
    CONTEXT = "__context__"

    def step_graph(self, inputs_t: dict[str, Tensor], state: Optional[dict[str, Any]],
                   trace: Optional[dict] = None) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """One timestep of the stepped nodes; context values come from ``state`` (see :meth:`start`)."""
        ctx = (state or {}).get(self.CONTEXT) or {}
        if self.context_order and not ctx:
            raise ValueError(f"this model needs its context ({', '.join(self.context_ports)}): "
                             f"call start(batch, context=...) first")
        values: dict[tuple[str, str], Tensor] = dict(ctx)
        values[(self.in_node, self.step_port)] = inputs_t[self.step_port]
        new_state: dict[str, Any] = {self.CONTEXT: ctx} if ctx else {}
        for nid in self.stepped_order:
            block = self.block(nid)
            ins = {port: values[src] for port, src in self.wiring[nid].items()}
            out, s = block.step(ins, state.get(nid) if state else None, trace)
            if block.stateful:
                new_state[nid] = s
            for port, v in out.items():
                values[(nid, port)] = v
        return {port: values[src] for port, src in self.outputs_map.items()}, new_state

    def sequence_graph(self, inputs: dict[str, Tensor], state: Optional[dict[str, Any]],
                       trace: Optional[dict] = None) -> Any:
        """A chunk of timesteps of the stepped nodes: what ``T`` calls of :meth:`step_graph` give, or
        ``NotImplemented``.

        ``inputs[step_port]`` is ``[T, B]`` (the stepped inputs of ``T`` steps); returns ``(outputs, new_state)``
        with every output stacked over the chunk (``[T, B, ...]``) and the state of :meth:`step_graph` after the
        last step, so chunks and single steps can follow each other from :meth:`start`.  ``trace`` gets what every
        step's trace would hold, each value stacked over the chunk (``trace[layer][q]`` is ``[T, B, H]``).
        ``NotImplemented`` when some stepped block declines (``Block.sequence_traced``), or when a stepped block
        or an output reads a context value (an encoder's output: per example, not per step); ``state`` is then
        untouched and ``trace`` empty, and the caller steps.
        """
        stepped = set(self.stepped_order)
        step_src = (self.in_node, self.step_port)
        sources = [src for nid in self.stepped_order for src in self.wiring[nid].values()]
        if any(src != step_src and src[0] not in stepped for src in [*sources, *self.outputs_map.values()]):
            return NotImplemented
        ctx = (state or {}).get(self.CONTEXT) or {}
        values: dict[tuple[str, str], Tensor] = {step_src: inputs[self.step_port]}
        new_state: dict[str, Any] = {self.CONTEXT: ctx} if ctx else {}
        # blocks write into a scratch trace, handed over only when the whole chunk ran
        scratch: Optional[dict] = {} if trace is not None else None
        for nid in self.stepped_order:
            block = self.block(nid)
            ins = {port: values[src] for port, src in self.wiring[nid].items()}
            result = block.sequence_traced(ins, state.get(nid) if state else None, scratch)
            if result is NotImplemented:
                # nothing has changed (blocks return new states, they never update the given one in place): the
                # caller steps this chunk from the same state
                return NotImplemented
            out, s = result
            if block.stateful:
                new_state[nid] = s
            for port, v in out.items():
                values[(nid, port)] = v
        if trace is not None and scratch is not None:
            trace.update(scratch)
        return {port: values[src] for port, src in self.outputs_map.items()}, new_state

    def start(self, batch_size: int = 1, context: Optional[dict[str, Tensor]] = None) -> dict[str, Any]:
        """Initial decoding state.  A model with context nodes (an encoder) runs them here on ``context``
        (``{"source": [S, B]}``...) once; decoding then steps only the nodes downstream of the stepped input.

        State convention: every block state tensor has the batch on dim 0, so decoders can reorder beams with
        ``index_select(0, ...)``; the context (time-major values shared by all beams of an example) is kept
        under ``state["__context__"]`` and must be expanded, not reordered.  A context that is one example
        broadcast to every row (``expand``, as ``task.prime`` gives the beams of one input) is run on one row and
        its results broadcast back, when decoding (no gradients).
        """
        state: dict[str, Any] = {nid: self.block(nid).init_state(batch_size, self.device)
                                 for nid in self.stateful_nodes if nid in self.stepped_order}
        if not self.context_order:
            return state
        if not context:
            raise ValueError(f"this model needs its context ({', '.join(self.context_ports)}) to start decoding")
        values: dict[tuple[str, str], Tensor] = {(self.in_node, p): context[p] for p in self.context_ports}
        one = self._one_example(values, batch_size)
        shared = self._broadcast_context(self._run_context(one), context, batch_size) if one is not None else None
        values = shared if shared is not None else self._run_context(values)
        # stepped blocks fed by the context (e.g. a decoder initialised from the encoder's state) start from it
        for nid in self.stepped_order:
            if any(src[0] in self.context_order for src in self.wiring[nid].values()):
                state[nid] = None
        state[self.CONTEXT] = values
        return state

    def _one_example(self, values: dict[tuple[str, str], Tensor], batch: int
                     ) -> Optional[dict[tuple[str, str], Tensor]]:
        """When decoding (no gradients) a context whose every tensor is one example broadcast to ``batch`` rows
        (``expand``: stride 0 along its batch dimension, as ``task.prime`` hands the beams of one input), that
        context cut to its first row; otherwise None.  The encoder then runs once instead of ``batch`` times.
        This relies on the batch conventions decoders already rely on (time-major ``[T]`` values, everything else
        batch-first, block states with the batch on dim 0) and on context blocks treating rows independently."""
        if batch < 2 or torch.is_grad_enabled() or not values:
            return None
        one = {}
        for key, t in values.items():
            d = self.batch_dims.get(key)
            if d is None or not isinstance(t, Tensor) or t.dim() <= d or t.shape[d] != batch or t.stride(d) != 0:
                return None
            one[key] = t.narrow(d, 0, 1)
        return one

    def _run_context(self, values: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
        """``values`` (the task's context inputs) with every context node's outputs added."""
        values = dict(values)
        for nid in self.context_order:
            ins = {port: values[src] for port, src in self.wiring[nid].items()}
            out, _ = self.blocks[nid](ins, None)
            for port, v in out.items():
                values[(nid, port)] = v
        return values

    def _broadcast_context(self, values: dict[tuple[str, str], Any], context: dict[str, Tensor], batch: int
                           ) -> Optional[dict[tuple[str, str], Any]]:
        """The context computed on one row, broadcast back to ``batch`` rows along each value's batch dimension
        (a block state on dim 0, by the state convention), the task inputs as they were given; None if some value
        has no batch dimension of size 1 where its port type says (the caller then runs the full batch)."""
        out: dict[tuple[str, str], Any] = {(self.in_node, p): context[p] for p in self.context_ports}
        odd: list[bool] = []
        for key, v in values.items():
            if key[0] == self.in_node:
                continue
            d = self.batch_dims.get(key, 0)

            def widen(t: Tensor, d: int = d) -> Tensor:
                if t.dim() <= d or t.shape[d] != 1:
                    odd.append(True)
                    return t
                return t.expand(*t.shape[:d], batch, *t.shape[d + 1:])

            out[key] = map_state(v, widen)
        return None if odd else out

    def step(self, tokens: Tensor, state: dict[str, Any], port: str | None = None,
             out_port: str = "logits") -> tuple[Tensor, dict[str, Any]]:
        """``tokens [B]`` -> ``(logits [B, V], new_state)``."""
        out, state = self.step_graph({port or self.step_port: tokens}, state)
        return out[out_port], state

    def run_steps(self, batch: dict[str, Any], state: Optional[dict[str, Any]] = None,
                  on_step=None) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Whole sequences through the per-step path; ``on_step(t, trace)`` sees every layer's tensors."""
        stepped = batch[self.step_port]
        if state is None or (self.context_order and not state.get(self.CONTEXT)):
            state = self.start(stepped.shape[1], {p: batch[p] for p in self.context_ports})
        outs: dict[str, list[Tensor]] = {}
        for t in range(stepped.shape[0]):
            trace: dict | None = {} if on_step is not None else None
            out, state = self.step_graph({self.step_port: stepped[t]}, state, trace)
            if on_step is not None:
                on_step(t, trace)
            for k, v in out.items():
                outs.setdefault(k, []).append(v)
        return {k: torch.stack(v, 0) for k, v in outs.items()}, state

    # ---- inspection --------------------------------------------------------------------------------------
    def precision_blockers(self, name: str) -> list[str]:
        """The blocks and cells that cannot train in precision ``name`` (none: the whole model can)."""
        if name == "fp32":
            return []
        return [f"{what} of node {nid}" for nid in self.order for what in self.block(nid).precision_blockers(name)]

    def recurrent_layers(self) -> list[tuple[str, Any]]:
        out = []
        for nid in self.order:
            out.extend(self.block(nid).layers())
        return out

    def parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Parameters grouped by node (and by layer inside recurrent blocks) for gradient-norm plots."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {}
        for name, p in self.named_parameters():
            parts = name.split(".")
            key = parts[1]
            if len(parts) > 3 and parts[2] == "cells":
                key = f"{parts[1]}.{parts[3]}"
            elif len(parts) > 3 and parts[2] == "cells_bwd":  # the backward direction of a bidirectional layer
                key = f"{parts[1]}.{parts[3]}.bwd"
            groups.setdefault(key, []).append((name, p))
        return groups

    def init_weights(self, scheme: str, scale: float) -> None:
        if scheme == "default":
            return
        for nid in self.order:
            self.block(nid).init_weights(scheme, scale)


def _batch_dim(port_type: str) -> int:
    """Where the batch is in a value of this port type: dim 1 for time-major sequences (``[T, B, ...]``), else 0."""
    return 1 if port_type.endswith("[T]") else 0


def build_model(graph: Graph, registry: Registry, task_spec: Any, task_sizes: dict[str, int]) -> SequenceModel:
    return SequenceModel(graph, registry, task_spec, task_sizes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
