"""Torch implementations of the built-in blocks."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.core.blocks import Block, BuildContext


class EmbeddingBlock(Block):
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


class DropoutBlock(Block):
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
    def __init__(self, params, in_sizes, out_sizes, ctx):
        super().__init__()
        self.mode = params.mode

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
        raise RuntimeError("pooling summarises a whole sequence; it has no per-step path")


class ClassifierBlock(Block):
    def __init__(self, params, in_sizes, out_sizes, ctx):
        super().__init__()
        self.linear = nn.Linear(int(in_sizes["x"]), int(out_sizes["y"]), bias=params.bias)

    def forward(self, inputs, state=None):
        return {"y": self.linear(inputs["x"])}, None

    def step(self, inputs, state=None, trace=None):
        return self.forward(inputs, state)


class LinearBlock(Block):
    def __init__(self, params, in_sizes, out_sizes, ctx):
        super().__init__()
        self.linear = nn.Linear(int(in_sizes["x"]), int(out_sizes["y"]), bias=params.bias)

    def forward(self, inputs, state=None):
        return {"y": self.linear(inputs["x"])}, None

    def step(self, inputs, state=None, trace=None):
        return {"y": self.linear(inputs["x"])}, None


class RNNBlock(Block):
    """Stacked recurrent layers.  Dropout only between layers (Zaremba, Sutskever & Vinyals 2014)."""

    stateful = True

    def __init__(self, params, in_sizes, out_sizes, ctx: BuildContext):
        super().__init__()
        self.node_id = ctx.node_id
        self.params = params
        size_in = in_sizes.get("x")
        if not size_in:
            raise ValueError(f"{ctx.node_id}: input size unknown")
        self.cells = nn.ModuleList()
        for layer in range(params.layers):
            self.cells.append(ctx.make_cell(params.cell, size_in if layer == 0 else params.hidden_size,
                                            params.hidden_size))
        self.dropout = params.dropout
        self.residual = params.residual

    def init_state(self, batch: int, device) -> Any:
        return tuple(cell.init_state(batch, device) for cell in self.cells)

    def _between(self, layer: int, x: Tensor) -> Tensor:
        return F.dropout(x, self.dropout, self.training) if layer > 0 and self.dropout > 0 else x

    def forward(self, inputs, state=None):
        x = inputs["x"]
        if state is None:
            state = self.init_state(x.shape[1], x.device)
        new = []
        for layer, cell in enumerate(self.cells):
            inp = self._between(layer, x)
            y, s = cell.sequence(inp, state[layer])
            x = y + x if (self.residual and layer > 0 and y.shape == x.shape) else y
            new.append(s)
        return {"y": x}, tuple(new)

    def step(self, inputs, state=None, trace: Optional[dict] = None):
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

    def layers(self):
        return [(f"{self.node_id}.{i}", cell) for i, cell in enumerate(self.cells)]
