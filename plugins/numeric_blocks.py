"""Torch implementations of the numeric blocks: input projection and regression heads."""

from __future__ import annotations

from torch import nn

from workbench.api import Block, BuildContext


def _size(sizes: dict, port: str, node_id: str, what: str) -> int:
    value = sizes.get(port)
    if not value:
        raise ValueError(f"{node_id}: {what} is unknown (connect the input, or set it in the node's parameters)")
    return int(value)


class ProjectBlock(Block):
    """``values[T] [T, B, F]`` -> ``vectors[T] [T, B, size]``: one linear map applied at every timestep."""

    precisions = ("fp32", "bf16", "fp16")

    def __init__(self, params, in_sizes: dict, out_sizes: dict, ctx: BuildContext):
        super().__init__()
        self.linear = nn.Linear(_size(in_sizes, "x", ctx.node_id, "the number of input features"), params.size,
                                bias=params.bias)

    def forward(self, inputs, state=None):
        return {"y": self.linear(inputs["x"])}, None

    def step(self, inputs, state=None, trace=None):
        return {"y": self.linear(inputs["x"])}, None


class RegressionBlock(Block):
    """``vector [B, H]`` -> ``values [B, out]``: real-valued outputs per example (no squashing)."""

    precisions = ("fp32", "bf16", "fp16")

    def __init__(self, params, in_sizes: dict, out_sizes: dict, ctx: BuildContext):
        super().__init__()
        self.linear = nn.Linear(_size(in_sizes, "x", ctx.node_id, "the input size"),
                                _size(out_sizes, "y", ctx.node_id, "the number of outputs"), bias=params.bias)

    def forward(self, inputs, state=None):
        return {"y": self.linear(inputs["x"])}, None

    def step(self, inputs, state=None, trace=None):
        return {"y": self.linear(inputs["x"])}, None


class SequenceRegressionBlock(RegressionBlock):
    """``vectors[T] [T, B, H]`` -> ``values[T] [T, B, out]``: real-valued outputs at every timestep."""
