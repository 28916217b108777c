"""Pieces the built-in cells' hand-written kernels share (private to the built-in plugins; not plugin API)."""

from __future__ import annotations

import torch
from torch import Tensor

from workbench.api import State

# The derivative kernels autograd itself uses: grad * y * (1 - y) and grad * (1 - y^2) in one pass, written to out.
sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
tanh_backward = torch.ops.aten.tanh_backward.grad_input


def no_steps(x: Tensor, state: State, hidden_size: int) -> tuple[Tensor, State]:
    """A zero-length sequence: no outputs, the state unchanged (torch's fused kernels refuse T = 0)."""
    return x.new_zeros(0, x.shape[1], hidden_size), tuple(state)


#: dtypes for which a torch kernel computes what the cells' per-step paths compute (to rounding); in others (half
#: precision) the kernels accumulate differently, so the recorder steps the cell instead
KERNEL_DTYPES = (torch.float32, torch.float64)


def previous_states(out: Tensor, h0: Tensor) -> Tensor:
    """``[h_0, h_1, .., h_{T-1}]``: the state each step of ``out = [h_1 .. h_T]`` started from, ``[T, B, H]``."""
    return torch.cat([h0.unsqueeze(0).to(out.dtype), out[:-1]], 0)


def previous_h_grad_weight(d_pre: Tensor, h0: Tensor, out: Tensor) -> Tensor:
    """sum_t d_pre[t]^T h_{t-1}: the gradient of a recurrent matrix, in two products (no concatenation)."""
    G = d_pre.shape[-1]
    grad = d_pre[0].t() @ h0
    if d_pre.shape[0] > 1:
        grad.addmm_(d_pre[1:].reshape(-1, G).t(), out[:-1].reshape(-1, out.shape[-1]))
    return grad
