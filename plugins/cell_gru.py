"""GRU cell: per-step path from cell operations, fused path through ``torch.nn.GRU`` on the same weights, and a
Python-stepped whole-sequence path with a hand-written backward through time (``fused=False``)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from workbench.api import Cell, State
from workbench_plugins._kernels import (KERNEL_DTYPES, no_steps, previous_h_grad_weight, previous_states,
                                        sigmoid_backward, tanh_backward)


class GRUSequence(torch.autograd.Function):
    """The GRU recurrence over ``xp = W_ih x + b_ih`` (``[T, B, 3H]``, gate order r, z, n).

    ``apply(xp, h0, w_hh, b_hh) -> h [T, B, H]``.  Buffers are preallocated; the backward walks the steps once and
    forms the gradients of ``w_hh`` and ``b_hh`` over all steps at once.  Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, xp: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor):
        T, B, G = xp.shape
        H = G // 3
        acts = torch.empty_like(xp)                 # r, z, n after their nonlinearities
        hp = torch.empty_like(xp)                   # W_hh h_{t-1} + b_hh
        diff = xp.new_empty(T, B, H)                # h_{t-1} - n_t (the update gate's derivative needs it)
        out = xp.new_empty(T, B, H)
        w_t = w_hh.t().contiguous()
        XRZ, XN = xp[..., :2 * H].unbind(0), xp[..., 2 * H:].unbind(0)
        HP, HRZ, HN = hp.unbind(0), hp[..., :2 * H].unbind(0), hp[..., 2 * H:].unbind(0)
        ARZ, R, Z, N = (acts[..., :2 * H].unbind(0), acts[..., :H].unbind(0), acts[..., H:2 * H].unbind(0),
                        acts[..., 2 * H:].unbind(0))
        DF, Hs = diff.unbind(0), out.unbind(0)
        h = h0
        for t in range(T):
            torch.addmm(b_hh, h, w_t, out=HP[t])
            torch.add(XRZ[t], HRZ[t], out=ARZ[t])
            ARZ[t].sigmoid_()
            torch.addcmul(XN[t], R[t], HN[t], out=N[t])
            N[t].tanh_()
            torch.sub(h, N[t], out=DF[t])
            torch.addcmul(N[t], Z[t], DF[t], out=Hs[t])   # (1 - z) * n + z * h
            h = Hs[t]
        ctx.save_for_backward(acts, hp, diff, out, h0, w_hh)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out: Tensor):
        acts, hp, diff, out, h0, w_hh = ctx.saved_tensors
        T, B, G = acts.shape
        H = G // 3
        d_hp = torch.empty_like(acts)               # gradient w.r.t. W_hh h + b_hh
        d_xp = torch.empty_like(acts)               # gradient w.r.t. xp
        keep = out.new_empty(B, H)
        dh_buf = out.new_empty(B, H)
        R, Z, N, HN = (acts[..., :H].unbind(0), acts[..., H:2 * H].unbind(0), acts[..., 2 * H:].unbind(0),
                       hp[..., 2 * H:].unbind(0))
        DHP, DHR, DHZ, DHN = (d_hp.unbind(0), d_hp[..., :H].unbind(0), d_hp[..., H:2 * H].unbind(0),
                              d_hp[..., 2 * H:].unbind(0))
        DHRZ, DXRZ, DXN = d_hp[..., :2 * H].unbind(0), d_xp[..., :2 * H].unbind(0), d_xp[..., 2 * H:].unbind(0)
        DF, GO = diff.unbind(0), g_out.unbind(0)
        dh = GO[T - 1]
        for t in range(T - 1, -1, -1):
            torch.mul(dh, Z[t], out=keep)           # what flows straight to h_{t-1}
            torch.sub(dh, keep, out=DXN[t])         # dh * (1 - z)
            tanh_backward(DXN[t], N[t], grad_input=DXN[t])
            torch.mul(dh, DF[t], out=DHZ[t])
            sigmoid_backward(DHZ[t], Z[t], grad_input=DHZ[t])
            torch.mul(DXN[t], HN[t], out=DHR[t])
            sigmoid_backward(DHR[t], R[t], grad_input=DHR[t])
            torch.mul(DXN[t], R[t], out=DHN[t])
            DXRZ[t].copy_(DHRZ[t])
            if t > 0:
                torch.add(GO[t - 1], keep, out=dh_buf)
                dh = dh_buf.addmm_(DHP[t], w_hh)
        need = ctx.needs_input_grad
        g_h0 = keep.addmm_(DHP[0], w_hh) if need[1] else None
        g_w = previous_h_grad_weight(d_hp, h0, out) if need[2] else None
        g_b = d_hp.sum((0, 1)) if need[3] else None
        return d_xp, g_h0, g_w, g_b


class GRUCell(Cell):
    """Gated recurrent unit (Cho et al. 2014) in torch's convention, so the fused and stepped paths agree:

        r = sigma(W_ir x + b_ir + W_hr h + b_hr)         reset gate
        z = sigma(W_iz x + b_iz + W_hz h + b_hz)         update gate
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))    candidate
        h' = (1 - z) * n + z * h                         z near 1 keeps the old state

    The interpolation is Cho et al.'s own (z near 1 keeps h); Chung et al. 2014 and many texts write it the other
    way round, which only relabels z as 1 - z.  The reset gate acts after the recurrent product, r * (W_hn h + b_hn),
    as in torch and cuDNN, where Cho et al. apply it before (U (r * h)): the two are different functions, and
    this one lets the whole W_hh h product be computed once per step.
    """

    gate_names = ("r", "z", "n")
    state_names = ("h",)
    split_step = True
    has_fused = True
    traced_sequence = True

    def __init__(self, input_size: int, hidden_size: int, params):
        super().__init__(input_size, hidden_size)
        self.params = params
        self.rnn = nn.GRU(input_size, hidden_size)   # owns the weights; gate order r, z, n

    def supported_precisions(self) -> tuple[str, ...]:
        # torch's fused kernel runs under autocast (oneDNN / cuDNN in bf16 or fp16, its state kept in float32
        # inside); the hand-written Python recurrence (fused off) would carry its state in the reduced dtype
        return ("fp32", "bf16", "fp16") if self.params.fused and self.has_fused else ("fp32",)

    def input_projection(self, x: Tensor) -> Tensor:
        return F.linear(x, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0)

    def step_projected(self, xp_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        # Cho et al. 2014 (torch/cuDNN form): r,z = sigma(.), n = tanh(x_n + r*(W_hn h + b_hn)), h' = n + z*(h - n)
        (h,) = state
        H = self.hidden_size
        hp = torch.addmm(self.rnn.bias_hh_l0, h, self.rnn.weight_hh_l0.t())
        rz = torch.sigmoid(xp_t[:, :2 * H] + hp[:, :2 * H])
        r, z = rz[:, :H], rz[:, H:]
        n = torch.tanh(torch.addcmul(xp_t[:, 2 * H:], r, hp[:, 2 * H:]))
        h = torch.addcmul(n, z, h - n)
        if gates is not None:
            gates.update(r=r, z=z, n=n)
        return h, (h,)

    def sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        # both kernels below compute this class's step; a subclass with another step declares has_fused = False
        if not self.has_fused:
            return self.sequence_steps(x, state)
        if x.shape[0] == 0:
            return no_steps(x, state, self.hidden_size)
        (h0,) = state
        if not self.params.fused:
            xp = self.input_projection(x)
            dt = xp.dtype   # under autocast xp may be half precision: run the whole recurrence in its dtype
            out = GRUSequence.apply(xp, h0.to(dt), self.rnn.weight_hh_l0.to(dt), self.rnn.bias_hh_l0.to(dt))
            return out, (out[-1],)
        out, h = self.rnn(x, h0.unsqueeze(0).contiguous())
        return out, (h[0],)

    def sequence_traced(self, x: Tensor, state: State) -> tuple[Tensor, State, dict[str, Tensor]]:
        # torch.nn.GRU is the step path's function (reset gate after the recurrent product, as in
        # step_projected), so with the fused path on it gives every h_t in one call; the gates follow from x_t
        # and h_{t-1} without stepping.  A subclass whose step differs is refused at build while it keeps
        # traced_sequence (plugin_checks).
        if (not self.traced_sequence or x.shape[0] == 0 or not self.params.fused
                or x.dtype not in KERNEL_DTYPES):
            return self.trace_steps(x, state)
        H = self.hidden_size
        with torch.no_grad():
            out, final = self.sequence(x, state)
            xp = self.input_projection(x)                                       # W_ih x_t + b_ih, [T, B, 3H]
            hp = F.linear(previous_states(out, state[0]), self.rnn.weight_hh_l0, self.rnn.bias_hh_l0)
            # Cho et al. 2014 (torch/cuDNN form): r, z = sigma(W_i x + b_i + W_h h + b_h), n = tanh(x_n + r * (W_hn
            # h + b_hn)); h_t itself is the kernel's
            rz = torch.sigmoid(xp[..., :2 * H] + hp[..., :2 * H])
            r, z = rz[..., :H], rz[..., H:]
            n = torch.tanh(torch.addcmul(xp[..., 2 * H:], r, hp[..., 2 * H:]))
        return out, final, {"h": out, "r": r, "z": z, "n": n}

    def recurrent_weights(self) -> dict[str, Tensor]:
        return dict(zip(("W_hr", "W_hz", "W_hn"), self.rnn.weight_hh_l0.chunk(3, 0)))
