"""Pieces the built-in cells' hand-written kernels share (private to the built-in plugins; not plugin API)."""

from __future__ import annotations

from typing import Optional

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


def lstm_backward_steps(acts: Tensor, cells: Tensor, tanh_c: Tensor, g_out: Tensor, g_c: Optional[Tensor],
                        w_hh: Tensor, peep: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """The backward walk through time of an LSTM's hand-written sequence (gate order i, f, g, o), with the
    peephole terms when ``peep`` (rows w_ci, w_cf, w_co: i and f see c_{t-1}, o sees c_t) is given.

    ``acts`` are the gates after their nonlinearities ``[T, B, 4H]``, ``cells`` the cell states ``c_0 .. c_T``,
    ``tanh_c`` their tanh ``[T, B, H]``.  Returns the gradient w.r.t. the pre-activations ``[T, B, 4H]`` (that is,
    w.r.t. the projected inputs) and w.r.t. ``c_0``.
    """
    T, B, G = acts.shape
    H = G // 4
    w_ci = w_cf = w_co = None
    if peep is not None:
        w_ci, w_cf, w_co = peep.unbind(0)
    d_pre = torch.empty_like(acts)
    dc = g_c.clone() if g_c is not None else cells.new_zeros(B, H)
    dh_buf = cells.new_empty(B, H)
    tmp = cells.new_empty(B, H)
    IF, I, Fg, Gg, O = (acts[..., :2 * H].unbind(0), acts[..., :H].unbind(0), acts[..., H:2 * H].unbind(0),
                        acts[..., 2 * H:3 * H].unbind(0), acts[..., 3 * H:].unbind(0))
    D, DIF, DI, DF, DG, DO = (d_pre.unbind(0), d_pre[..., :2 * H].unbind(0), d_pre[..., :H].unbind(0),
                              d_pre[..., H:2 * H].unbind(0), d_pre[..., 2 * H:3 * H].unbind(0),
                              d_pre[..., 3 * H:].unbind(0))
    C, TC, GO = cells.unbind(0), tanh_c.unbind(0), g_out.unbind(0)
    for t in range(T - 1, -1, -1):
        dh = GO[t] if t == T - 1 else torch.addmm(GO[t], D[t + 1], w_hh, out=dh_buf)
        # h = o * tanh(c_t)  (o = sigma(. + w_co * c_t) with peepholes)
        torch.mul(dh, TC[t], out=DO[t])
        sigmoid_backward(DO[t], O[t], grad_input=DO[t])
        torch.mul(dh, O[t], out=tmp)
        tanh_backward(tmp, TC[t], grad_input=tmp)
        dc.add_(tmp)
        if w_co is not None:
            dc.addcmul_(DO[t], w_co)
        # c_t = f * c_{t-1} + i * g  (i and f see c_{t-1} with peepholes)
        torch.mul(dc, Gg[t], out=DI[t])
        torch.mul(dc, C[t], out=DF[t])
        sigmoid_backward(DIF[t], IF[t], grad_input=DIF[t])
        torch.mul(dc, I[t], out=DG[t])
        tanh_backward(DG[t], Gg[t], grad_input=DG[t])
        dc.mul_(Fg[t])
        if w_ci is not None:
            dc.addcmul_(DI[t], w_ci).addcmul_(DF[t], w_cf)
    return d_pre, dc
