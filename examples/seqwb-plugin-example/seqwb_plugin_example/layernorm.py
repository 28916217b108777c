"""The layer-norm block (imported only when a model uses it)."""

from __future__ import annotations

from torch import nn

from workbench.api import Block


class LayerNormBlock(Block):
    """``x [T, B, F]`` -> ``y [T, B, F]``, each timestep's vector normalised over its F features.

    The factory gets ``(params, in_sizes, out_sizes, ctx)``: the sizes are inferred along the graph's links
    (``in_sizes["x"]`` is F) and ``ctx`` is a :class:`~workbench.api.BuildContext` (a block with a cell builds
    it with ``ctx.make_cell``).  The block works on each timestep alone and keeps no state, so the base class's
    ``step`` (``forward`` on a sequence of one step) serves decoders and probes, and its ``sequence_traced``
    serves the hidden-unit recorder.
    """

    def __init__(self, params, in_sizes: dict, out_sizes: dict, ctx):
        super().__init__()
        size = in_sizes.get("x")
        if not size:
            raise ValueError(f"{ctx.node_id}: the size of x is unknown; connect a block that gives vectors")
        self.norm = nn.LayerNorm(size, eps=params.eps, elementwise_affine=params.affine)

    def forward(self, inputs, state=None):
        # inputs: the connected ports (plus "lengths" when the batch has it); returns (outputs, state)
        return {"y": self.norm(inputs["x"])}, None
