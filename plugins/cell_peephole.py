"""Peephole LSTM (Gers & Schmidhuber 2000): the gates also look at the cell state.  There is no fused torch kernel
for it; whole sequences run as a Python loop with a hand-written backward through time."""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from workbench.api import Cell, State
from workbench_plugins._kernels import lstm_backward_steps, no_steps, previous_h_grad_weight


class PeepholeSequence(torch.autograd.Function):
    """``apply(xp [T, B, 4H], h0, c0, w_hh [4H, H], peep [3, H]) -> (h [T, B, H], c_T)``; gate order i, f, g, o;
    ``peep`` rows are the diagonal peephole weights w_ci, w_cf, w_co.  Not twice differentiable."""

    @staticmethod
    def forward(ctx, xp: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, peep: Tensor):
        T, B, G = xp.shape
        H = G // 4
        acts = torch.empty_like(xp)
        cells = xp.new_empty(T + 1, B, H)
        cells[0].copy_(c0)
        tanh_c = xp.new_empty(T, B, H)
        out = xp.new_empty(T, B, H)
        w_t = w_hh.t().contiguous()
        w_if, w_co = peep[:2], peep[2]
        A, IF, IF2 = acts.unbind(0), acts[..., :2 * H].unbind(0), acts.view(T, B, 4, H)[:, :, :2].unbind(0)
        I, Fg, Gg, O = (acts[..., :H].unbind(0), acts[..., H:2 * H].unbind(0), acts[..., 2 * H:3 * H].unbind(0),
                        acts[..., 3 * H:].unbind(0))
        C, TC, Hs, XP = cells.unbind(0), tanh_c.unbind(0), out.unbind(0), xp.unbind(0)
        h = h0
        for t in range(T):
            torch.addmm(XP[t], h, w_t, out=A[t])
            IF2[t].addcmul_(C[t].unsqueeze(1), w_if)        # i, f see c_{t-1}
            IF[t].sigmoid_()
            Gg[t].tanh_()
            torch.mul(Fg[t], C[t], out=C[t + 1])
            C[t + 1].addcmul_(I[t], Gg[t])
            O[t].addcmul_(C[t + 1], w_co)                   # o sees c_t
            O[t].sigmoid_()
            torch.tanh(C[t + 1], out=TC[t])
            torch.mul(O[t], TC[t], out=Hs[t])
            h = Hs[t]
        ctx.save_for_backward(acts, cells, tanh_c, out, h0, w_hh, peep)
        return out, cells[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out: Optional[Tensor], g_c: Optional[Tensor]):
        acts, cells, tanh_c, out, h0, w_hh, peep = ctx.saved_tensors
        H = acts.shape[-1] // 4
        d_pre, dc = lstm_backward_steps(acts, cells, tanh_c, torch.zeros_like(out) if g_out is None else g_out, g_c,
                                        w_hh, peep)
        need = ctx.needs_input_grad
        g_h0 = d_pre[0] @ w_hh if need[1] else None
        g_w = previous_h_grad_weight(d_pre, h0, out) if need[3] else None
        g_peep = None
        if need[4]:
            g_peep = torch.stack([(d_pre[..., :H] * cells[:-1]).sum((0, 1)),
                                  (d_pre[..., H:2 * H] * cells[:-1]).sum((0, 1)),
                                  (d_pre[..., 3 * H:] * cells[1:]).sum((0, 1))])
        return d_pre, g_h0, (dc if need[2] else None), g_w, g_peep


class PeepholeLSTMCell(Cell):
    """LSTM whose gates see the cell state through diagonal ("peephole") weights: i and f see c_{t-1}, o sees c_t.

    Parameters: ``weight_ih [4H, I]``, ``weight_hh [4H, H]``, ``bias [4H]`` (gate order i, f, g, o) and
    ``peephole [3, H]`` (rows w_ci, w_cf, w_co).  With ``peephole`` at zero it is exactly the ``lstm`` cell.
    """

    gate_names = ("i", "f", "g", "o")
    state_names = ("h", "c")
    split_step = True
    # sequence() is PeepholeSequence, a Python loop with a hand-written backward, not a fused kernel; build_cell
    # compares it with stepping all the same
    has_fused = False

    def __init__(self, input_size: int, hidden_size: int, params):
        super().__init__(input_size, hidden_size)
        self.params = params
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H))
        self.bias = nn.Parameter(torch.empty(4 * H))
        self.peephole = nn.Parameter(torch.empty(3, H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)      # torch's RNN default
        with torch.no_grad():
            for p in (self.weight_ih, self.weight_hh, self.bias, self.peephole):
                nn.init.uniform_(p, -bound, bound)
            if self.params.peephole_init == "zero":
                self.peephole.zero_()
        self.set_forget_bias(self.params.forget_bias)

    def set_forget_bias(self, value: float) -> None:
        H = self.hidden_size
        with torch.no_grad():
            self.bias[H:2 * H].fill_(value)

    def input_projection(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias)

    def step_projected(self, xp_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        # Gers & Schmidhuber 2000: i,f = sigma(W x + U h + w_c{i,f} * c_{t-1} + b), g = tanh(.),
        # c_t = f*c_{t-1} + i*g, o = sigma(W x + U h + w_co * c_t + b), h_t = o*tanh(c_t)
        h, c = state
        H = self.hidden_size
        a = torch.addmm(xp_t, h, self.weight_hh.t())
        i = torch.sigmoid(torch.addcmul(a[:, :H], c, self.peephole[0]))
        f = torch.sigmoid(torch.addcmul(a[:, H:2 * H], c, self.peephole[1]))
        g = torch.tanh(a[:, 2 * H:3 * H])
        c = f * c + i * g
        o = torch.sigmoid(torch.addcmul(a[:, 3 * H:], c, self.peephole[2]))
        h = o * torch.tanh(c)
        if gates is not None:
            gates.update(i=i, f=f, g=g, o=o)
        return h, (h, c)

    def sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if x.shape[0] == 0:
            return no_steps(x, state, self.hidden_size)
        h0, c0 = state
        xp = self.input_projection(x)
        dt = xp.dtype       # under autocast xp may be half precision: run the whole recurrence in its dtype
        out, c = PeepholeSequence.apply(xp, h0.to(dt), c0.to(dt), self.weight_hh.to(dt), self.peephole.to(dt))
        return out, (out[-1], c)

    def recurrent_weights(self) -> dict[str, Tensor]:
        return dict(zip(("W_hi", "W_hf", "W_hg", "W_ho"), self.weight_hh.chunk(4, 0)))

    def init_weights(self, scheme: str, scale: float) -> None:
        if scheme == "default":
            self.reset_parameters()
            return
        super().init_weights(scheme, scale)
        self.set_forget_bias(self.params.forget_bias)
