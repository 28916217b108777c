"""Torch implementations of the built-in blocks."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.api import Block, BuildContext


class PerTimestepBlock(Block):
    """A stateless block whose every output timestep depends only on the same timestep of its inputs: a chunk of
    steps is its ``forward`` on the chunk (no trace to write)."""

    precisions = ("fp32", "bf16", "fp16")

    def sequence_traced(self, inputs, state=None, trace=None):
        return self.forward(inputs, state)


class EmbeddingBlock(PerTimestepBlock):
    def __init__(self, params, in_sizes: dict, out_sizes: dict, ctx: BuildContext):
        super().__init__()
        vocab = in_sizes.get("x")
        if not vocab:
            raise ValueError(f"{ctx.node_id}: the number of token ids is unknown (connect the task's tokens)")
        self.embed = nn.Embedding(int(vocab), params.embed_size)

    def forward(self, inputs, state=None):
        return {"y": self.embed(inputs["x"])}, None

    def step(self, inputs, state=None, trace=None):
        return {"y": self.embed(inputs["x"])}, None


class DropoutBlock(PerTimestepBlock):
    # (a chunk while training draws its dropout masks in another order than single steps would; the recorder and
    # the other users of sequence_traced run in eval mode, where both are the identity)
    def __init__(self, params, in_sizes, out_sizes, ctx):
        super().__init__()
        self.p = params.p

    def forward(self, inputs, state=None):
        return {"y": F.dropout(inputs["x"], self.p, self.training)}, None

    def step(self, inputs, state=None, trace=None):
        return self.forward(inputs, state)


def last_valid(x: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """``x [T, B, F]`` -> the vector at each sequence's last valid step ``[B, F]``."""
    if lengths is None:
        return x[-1]
    idx = (lengths.to(x.device).long() - 1).clamp(min=0)
    return x[idx, torch.arange(x.shape[1], device=x.device)]


def time_mask(x: Tensor, lengths: Optional[Tensor]) -> Optional[Tensor]:
    """``[T, B, 1]`` boolean mask of valid steps, or None when every step is valid."""
    if lengths is None:
        return None
    t = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
    return (t < lengths.to(x.device).unsqueeze(0)).unsqueeze(-1)


class PoolBlock(Block):
    """Many-to-one pooling.  ``forward`` ignores padded steps (``inputs["lengths"]``).

    The per-step path keeps a running pool (the last vector, the running mean or the running maximum), so a model
    ending in a pool can still be stepped: after step ``t`` the output is the pool over steps ``0..t``, which at each
    sequence's last valid step equals what ``forward`` gives.  Probes and the recorder rely on that.
    """

    precisions = ("fp32", "bf16", "fp16")

    stateful = True  # only the per-step path has a state; forward pools a whole sequence at once

    def __init__(self, params, in_sizes, out_sizes, ctx):
        super().__init__()
        self.mode = params.mode

    def init_state(self, batch: int, device) -> Any:
        return None  # created at the first step, when the feature size is known

    def forward(self, inputs, state=None):
        x, lengths = inputs["x"], inputs.get("lengths")
        if self.mode == "last":
            return {"y": last_valid(x, lengths)}, None
        mask = time_mask(x, lengths)
        if self.mode == "mean":
            if mask is None:
                return {"y": x.mean(0)}, None
            return {"y": (x * mask).sum(0) / mask.sum(0).clamp(min=1)}, None
        if mask is not None:
            x = x.masked_fill(~mask, float("-inf"))
        return {"y": x.max(0).values}, None

    def step(self, inputs, state=None, trace=None):
        x = inputs["x"]
        if self.mode == "last":
            return {"y": x}, (x,)
        if self.mode == "mean":
            if state is None:
                total, count = x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
            else:
                total, count = state[0] + x, state[1] + 1
            return {"y": total / count}, (total, count)
        best = x if state is None else torch.maximum(state[0], x)
        return {"y": best}, (best,)

    def sequence_traced(self, inputs, state=None, trace=None):
        # the running pool of step() over a chunk [T, B, F]: the same state before and after, so chunks and
        # single steps follow each other
        x = inputs["x"]
        if self.mode == "last":
            return {"y": x}, (x[-1].clone(),)
        if self.mode == "mean":
            T = x.shape[0]
            steps = torch.arange(1, T + 1, dtype=x.dtype, device=x.device).view(T, 1, 1)
            if state is None:
                total, count = torch.cumsum(x, 0), steps.expand(T, x.shape[1], 1)
            else:
                # the carried total first, so the sums are taken in the order single steps take them
                total = torch.cumsum(torch.cat([state[0].unsqueeze(0), x], 0), 0)[1:]
                count = state[1].unsqueeze(0) + steps
            return {"y": total / count}, (total[-1], count[-1].clone())
        best = torch.cummax(x, 0).values
        if state is not None:
            best = torch.maximum(best, state[0].unsqueeze(0))
        return {"y": best}, (best[-1].clone(),)


class ConcatBlock(PerTimestepBlock):
    def __init__(self, params, in_sizes, out_sizes, ctx):
        super().__init__()

    def forward(self, inputs, state=None):
        return {"y": torch.cat([inputs["a"], inputs["b"]], -1)}, None

    def step(self, inputs, state=None, trace=None):
        return self.forward(inputs, state)


class LinearBlock(PerTimestepBlock):
    """A linear map of each timestep's (or each example's) vector: the ``linear`` head and the ``classifier``.

    Under reduced precision it still computes in float32: it makes the scores a softmax reads, and bfloat16's 8-bit
    mantissa rounds scores a few hundredths apart into ties (word-LM validation loss measurably worse over a
    5,000-word vocabulary: benchmarks/precision_safety.py).
    """

    def __init__(self, params, in_sizes, out_sizes, ctx):
        super().__init__()
        self.linear = nn.Linear(int(in_sizes["x"]), int(out_sizes["y"]), bias=params.bias)

    def forward(self, inputs, state=None):
        x = inputs["x"]
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return {"y": self.linear(x.float())}, None
        return {"y": self.linear(x)}, None

    def step(self, inputs, state=None, trace=None):
        return self.forward(inputs, state)


class NoStepPath(NotImplementedError):
    """A block that needs whole sequences was asked to run one timestep (probes fall back to ``forward``)."""


def reverse_within_lengths(x: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """Reverse each sequence of ``x [T, B, ...]`` within its own length; padded steps stay where they are.

    The map is its own inverse, so the same call turns a backward layer's outputs back into time order.
    """
    T = x.shape[0]
    if lengths is None:
        return x.flip(0)
    t = torch.arange(T, device=x.device).unsqueeze(1)                      # [T, 1]
    n = lengths.to(x.device).long().clamp(max=T).unsqueeze(0)              # [1, B]
    idx = torch.where(t < n, n - 1 - t, t)                                 # [T, B]
    idx = idx.view(T, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, idx)


class RNNBlock(Block):
    """Stacked recurrent layers, forward or bidirectional.

    Dropout only between layers, never on the recurrent connections (Zaremba, Sutskever & Vinyals 2014).
    Bidirectional layers (Schuster & Paliwal 1997) run a second cell right to left over each sequence *within its
    length*, so padding never reaches a valid position; the outputs of the two directions are concatenated or
    summed.  Only the forward direction's state is carried between calls: the backward one starts from zeros at
    the end of every sequence, which is why a bidirectional layer has no per-step path.

    Layers are named ``"{node}.{i}"`` (forward) and ``"{node}.{i}.bwd"`` (backward) in ``layers()``, traces and probes.
    """

    stateful = True
    precisions = ("fp32", "bf16", "fp16")   # the cells of its layers say their own

    def __init__(self, params, in_sizes, out_sizes, ctx: BuildContext):
        super().__init__()
        self.node_id = ctx.node_id
        self.params = params
        size_in = in_sizes.get("x")
        if not size_in:
            raise ValueError(f"{ctx.node_id}: input size unknown")
        self.bidirectional = getattr(params, "direction", "forward") == "bidirectional"
        self.merge = getattr(params, "merge", "concat")
        H = params.hidden_size
        layer_out = 2 * H if self.bidirectional and self.merge == "concat" else H
        self.cells = nn.ModuleList()
        for layer in range(params.layers):
            self.cells.append(ctx.make_cell(params.cell, size_in if layer == 0 else layer_out, H))
        if self.bidirectional:
            self.cells_bwd = nn.ModuleList()
            for layer in range(params.layers):
                self.cells_bwd.append(ctx.make_cell(params.cell, size_in if layer == 0 else layer_out, H))
        self.dropout = params.dropout
        self.residual = params.residual
        #: when a dict, ``forward`` writes every layer's outputs into it as one tensor per timestep (the rest of
        #: the graph is built from those tensors), so a probe can take gradients with respect to each h_t
        self.capture: Optional[dict] = None

    def init_state(self, batch: int, device) -> Any:
        return tuple(cell.init_state(batch, device) for cell in self.cells)

    def _between(self, layer: int, x: Tensor) -> Tensor:
        return F.dropout(x, self.dropout, self.training) if layer > 0 and self.dropout > 0 else x

    def _captured(self, name: str, y: Tensor) -> Tensor:
        if self.capture is None:
            return y
        parts = list(y.unbind(0))
        self.capture[name] = parts
        return torch.stack(parts, 0)

    def forward(self, inputs, state=None):
        x = inputs["x"]
        lengths = inputs.get("lengths")
        if state is None:
            state = self.init_state(x.shape[1], x.device)
        new = []
        for layer, cell in enumerate(self.cells):
            inp = self._between(layer, x)
            y, s = cell.sequence(inp, state[layer])
            y = self._captured(f"{self.node_id}.{layer}", y)
            if self.bidirectional:
                back = self.cells_bwd[layer]
                yb, _ = back.sequence(reverse_within_lengths(inp, lengths), back.init_state(x.shape[1], x.device))
                yb = self._captured(f"{self.node_id}.{layer}.bwd", reverse_within_lengths(yb, lengths))
                y = torch.cat([y, yb], -1) if self.merge == "concat" else y + yb
            x = y + x if (self.residual and layer > 0 and y.shape == x.shape) else y
            new.append(s)
        return {"y": x}, tuple(new)

    def step(self, inputs, state=None, trace: Optional[dict] = None):
        if self.bidirectional:
            raise NoStepPath(f"{self.node_id}: a bidirectional layer needs the whole sequence; it cannot generate "
                             f"step by step (set direction=forward for language models and decoders)")
        x = inputs["x"]
        if state is None:
            state = self.init_state(x.shape[0], x.device)
        new = []
        for layer, cell in enumerate(self.cells):
            inp = self._between(layer, x)
            gates: dict | None = {} if trace is not None else None
            h, s = cell.step(inp, state[layer], gates)
            if trace is not None:
                entry = {name: t for name, t in zip(cell.state_names, s)}
                entry.update(gates or {})
                trace[f"{self.node_id}.{layer}"] = entry
            x = h + x if (self.residual and layer > 0 and h.shape == x.shape) else h
            new.append(s)
        return {"y": x}, tuple(new)

    def sequence_traced(self, inputs, state=None, trace: Optional[dict] = None):
        """A chunk ``[T, B, I]`` as ``T`` calls of :meth:`step`: every layer's cell runs the whole chunk (its fused
        kernel where it has one) and reports its states and gates for every step (``Cell.sequence_traced``)."""
        if self.bidirectional:
            return NotImplemented      # no per-step path either: step() says why
        x = inputs["x"]
        if state is None:
            state = self.init_state(x.shape[1], x.device)
        new = []
        for layer, cell in enumerate(self.cells):
            inp = self._between(layer, x)
            if trace is None:
                y, s = cell.sequence(inp, state[layer])
            else:
                y, s, quantities = cell.sequence_traced(inp, state[layer])
                trace[f"{self.node_id}.{layer}"] = quantities
            x = y + x if (self.residual and layer > 0 and y.shape == x.shape) else y
            new.append(tuple(s))
        return {"y": x}, tuple(new)

    def layers(self):
        out = []
        for i, cell in enumerate(self.cells):
            out.append((f"{self.node_id}.{i}", cell))
            if self.bidirectional:
                out.append((f"{self.node_id}.{i}.bwd", self.cells_bwd[i]))
        return out
