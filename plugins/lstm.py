"""LSTM cell: per-step path from cell operations, fused path through ``torch.nn.LSTM`` on the same weights.

With ``fused=False`` a whole sequence runs as a Python loop over timesteps whose backward through time is written
by hand (:class:`LSTMSequence`): autograd would record about ten nodes per step and allocate every intermediate,
which costs more than the arithmetic at hidden sizes of a few hundred on a CPU.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from workbench.api import Cell, State
from workbench_plugins._kernels import (KERNEL_DTYPES, lstm_backward_steps, no_steps, previous_h_grad_weight,
                                        previous_states)

class LSTMSequence(torch.autograd.Function):
    """The LSTM recurrence over ``xp [T, B, 4H]`` (inputs already projected, biases included).

    ``apply(xp, h0, c0, w_hh) -> (h [T, B, H], c_T [B, H])``.  The forward writes each step's activations into
    preallocated buffers; the backward walks the steps once with small in-cache operations and forms the
    gradient of ``w_hh`` in one product over all steps.  Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, xp: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor):
        T, B, G = xp.shape
        H = G // 4
        acts = torch.empty_like(xp)                 # i, f, g, o after their nonlinearities
        cells = xp.new_empty(T + 1, B, H)           # c_0 .. c_T
        cells[0].copy_(c0)
        tanh_c = xp.new_empty(T, B, H)
        out = xp.new_empty(T, B, H)
        w_t = w_hh.t().contiguous()                 # a row-major right operand: ~25% faster small-batch matmul
        A, IF, Gg, O = (acts.unbind(0), acts[..., :2 * H].unbind(0), acts[..., 2 * H:3 * H].unbind(0),
                        acts[..., 3 * H:].unbind(0))
        I, Fg = acts[..., :H].unbind(0), acts[..., H:2 * H].unbind(0)
        C, TC, Hs, XP = cells.unbind(0), tanh_c.unbind(0), out.unbind(0), xp.unbind(0)
        h = h0
        for t in range(T):
            torch.addmm(XP[t], h, w_t, out=A[t])
            IF[t].sigmoid_()
            Gg[t].tanh_()
            O[t].sigmoid_()
            torch.mul(Fg[t], C[t], out=C[t + 1])
            C[t + 1].addcmul_(I[t], Gg[t])
            torch.tanh(C[t + 1], out=TC[t])
            torch.mul(O[t], TC[t], out=Hs[t])
            h = Hs[t]
        ctx.save_for_backward(acts, cells, tanh_c, out, h0, w_hh)
        return out, cells[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out: Optional[Tensor], g_c: Optional[Tensor]):
        acts, cells, tanh_c, out, h0, w_hh = ctx.saved_tensors
        d_pre, dc = lstm_backward_steps(acts, cells, tanh_c, torch.zeros_like(out) if g_out is None else g_out, g_c,
                                        w_hh)
        need = ctx.needs_input_grad
        g_h0 = d_pre[0] @ w_hh if need[1] else None
        g_w = previous_h_grad_weight(d_pre, h0, out) if need[3] else None
        return d_pre, g_h0, (dc if need[2] else None), g_w


class LSTMCell(Cell):
    """LSTM with a forget gate; torch's gate order (i, f, g, o) and its two biases (summed when used).

    ``forget_bias`` sets the forget gate's bias at construction and after ``orthogonal`` / ``identity`` init, so
    the cell starts by remembering (Gers et al. 2000; Jozefowicz et al. 2015 found +1 important).
    """

    gate_names = ("i", "f", "g", "o")
    state_names = ("h", "c")
    split_step = True
    has_fused = True
    traced_sequence = True

    def __init__(self, input_size: int, hidden_size: int, params):
        super().__init__(input_size, hidden_size)
        self.params = params
        # One single-layer nn.LSTM owns the weights; its gate order (i, f, g, o) is the one we use below.
        self.rnn = nn.LSTM(input_size, hidden_size)
        self.set_forget_bias(params.forget_bias)

    def supported_precisions(self) -> tuple[str, ...]:
        # torch's fused kernel runs under autocast (oneDNN / cuDNN in bf16 or fp16, its state kept in float32
        # inside); the hand-written Python recurrence (fused off) would carry its state in the reduced dtype
        return ("fp32", "bf16", "fp16") if self.params.fused and self.has_fused else ("fp32",)

    def set_forget_bias(self, value: float) -> None:
        H = self.hidden_size
        with torch.no_grad():
            self.rnn.bias_ih_l0[H:2 * H].fill_(value)
            self.rnn.bias_hh_l0[H:2 * H].zero_()

    def input_projection(self, x: Tensor) -> Tensor:
        # W_ih x + b for every timestep at once; both biases folded in here
        return F.linear(x, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0)

    def step_projected(self, xp_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        # Hochreiter & Schmidhuber 1997 with forget gate (Gers et al. 2000):
        # i,f,o = sigma(.), g = tanh(.), c_t = f*c_{t-1} + i*g, h_t = o*tanh(c_t)
        h, c = state
        return self._gates(torch.addmm(xp_t, h, self.rnn.weight_hh_l0.t()), c, gates)

    def step(self, x_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        if x_t.shape[0] == 1 or (torch.is_grad_enabled() and self.rnn.weight_hh_l0.requires_grad):
            return super().step(x_t, state, gates)   # autograd must see the parameters themselves
        # Decoding several rows (beams) without gradients: both products against row-major copies of W_ih^T and
        # W_hh^T.  x @ W^T with W stored [4H, in] (what F.linear and .t() give) took ~1.2-1.4x as long as against a
        # contiguous [in, 4H] at batch 10 in isolation; a width-10 beam search over the char-LM template took
        # -2%, 9% and 6% less time with it in three alternating runs, and at batch 1 (greedy) it was no faster in a
        # real decode, so a single row keeps the plain step (torch 2.13 CPU, H = 256, see docs/benchmarks.md).
        w_ih_t, w_hh_t, bias = self._decode_weights()
        h, c = state
        if torch.is_autocast_enabled(x_t.device.type):
            # autocast casts the operands of an out-of-place product, not those of an in-place one
            return self._gates(torch.addmm(torch.addmm(bias, x_t, w_ih_t), h, w_hh_t), c, gates)
        # the recurrent product accumulates into the input product's fresh result (addmm_ rather than a second
        # addmm, which would first copy that result into a new tensor)
        return self._gates(torch.addmm(bias, x_t, w_ih_t).addmm_(h, w_hh_t), c, gates)

    def _decode_weights(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(W_ih^T, W_hh^T, b_ih + b_hh)`` as contiguous copies, remade whenever a weight changed (training
        steps and ``load_state_dict`` write in place, which bumps a tensor's version; ``.to()`` moves it)."""
        rnn = self.rnn
        params = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
        key = tuple((p._version, p.data_ptr(), p.dtype) for p in params)
        cached = self.__dict__.get("_decode_cache")
        if cached is None or cached[0] != key:
            with torch.no_grad():
                w_ih, w_hh, b_ih, b_hh = params
                cached = (key, w_ih.t().contiguous(), w_hh.t().contiguous(), b_ih + b_hh)
            self.__dict__["_decode_cache"] = cached
        return cached[1], cached[2], cached[3]

    def _gates(self, z: Tensor, c: Tensor, gates: Optional[dict]) -> tuple[Tensor, State]:
        i, f, g, o = z.chunk(4, 1)
        i = torch.sigmoid(i)
        f = torch.sigmoid(f)
        g = torch.tanh(g)
        o = torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        if gates is not None:
            gates.update(i=i, f=f, g=g, o=o)
        return h, (h, c)

    def sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        # both kernels below compute this class's _gates; a subclass with other gates declares has_fused = False
        if not self.has_fused:
            return self.sequence_steps(x, state)
        if x.shape[0] == 0:
            return no_steps(x, state, self.hidden_size)
        h0, c0 = state
        if not self.params.fused:
            xp = self.input_projection(x)
            dt = xp.dtype   # under autocast xp may be half precision: run the whole recurrence in its dtype
            out, c = LSTMSequence.apply(xp, h0.to(dt), c0.to(dt), self.rnn.weight_hh_l0.to(dt))
            return out, (out[-1], c)
        out, (h, c) = self.rnn(x, (h0.unsqueeze(0).contiguous(), c0.unsqueeze(0).contiguous()))
        return out, (h[0], c[0])

    def sequence_traced(self, x: Tensor, state: State) -> tuple[Tensor, State, dict[str, Tensor]]:
        # torch.nn.LSTM computes the step path's function (same gate order, both biases), so with the fused path
        # on, it gives every h_t in one call and the gates follow from x_t and h_{t-1} without stepping.  A
        # subclass whose step differs is refused at build while it keeps traced_sequence (plugin_checks).
        if (not self.traced_sequence or x.shape[0] == 0 or not self.params.fused
                or x.dtype not in KERNEL_DTYPES):
            return self.trace_steps(x, state)
        H = self.hidden_size
        with torch.no_grad():
            out, (h_T, c_T) = self.sequence(x, state)
            h0, c0 = state
            # all pre-activations at once: W_ih x_t + b (input_projection) + W_hh h_{t-1}, [T, B, 4H]
            z = self.input_projection(x)
            # in z's dtype: under autocast z is bfloat16, and an in-place product gets no casts of its own
            z.view(-1, 4 * H).addmm_(previous_states(out, h0.to(out.dtype)).reshape(-1, H).to(z.dtype),
                                     self.rnn.weight_hh_l0.t().to(z.dtype))
            # Hochreiter & Schmidhuber 1997 with forget gate (Gers et al. 2000): i,f,o = sigma(.), g = tanh(.)
            i, f, g, o = z.chunk(4, -1)
            i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
            g = torch.tanh(g)
            # c_t = f_t * c_{t-1} + i_t * g_t: a linear recurrence, a few microseconds a step in this loop (a
            # parallel scan is no faster here); the same two roundings as the step's f * c + i * g
            ig = i * g
            cells = torch.empty_like(out)
            C, Fg, IG = cells.unbind(0), f.unbind(0), ig.unbind(0)
            c = c0.to(out.dtype)
            for t in range(x.shape[0]):
                torch.mul(Fg[t], c, out=C[t])
                c = C[t].add_(IG[t])
        # the final state is the kernel's own, so that chunks follow each other as one long fused call would
        return out, (h_T, c_T), {"h": out, "c": cells, "i": i, "f": f, "g": g, "o": o}

    def recurrent_weights(self) -> dict[str, Tensor]:
        return dict(zip(("W_hi", "W_hf", "W_hg", "W_ho"), self.rnn.weight_hh_l0.chunk(4, 0)))

    def init_weights(self, scheme: str, scale: float) -> None:
        super().init_weights(scheme, scale)
        if scheme != "default":
            self.set_forget_bias(self.params.forget_bias)
