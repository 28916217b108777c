"""Vanilla (Elman) RNN and the IRNN: per-step path from cell operations, fused path through ``torch.nn.RNN`` on the
same weights."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.api import Cell, State
from workbench_plugins._kernels import KERNEL_DTYPES, no_steps


class RNNCell(Cell):
    """h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), f = tanh or relu; no gates.

    Two biases because ``torch.nn.RNN`` owns the weights (their sum is the b_h of the textbook equations).
    """

    gate_names = ()
    state_names = ("h",)
    split_step = True
    has_fused = True
    traced_sequence = True

    def __init__(self, input_size: int, hidden_size: int, params, nonlinearity: str | None = None):
        super().__init__(input_size, hidden_size)
        self.params = params
        self.nonlinearity = nonlinearity or params.nonlinearity
        self.act = torch.tanh if self.nonlinearity == "tanh" else torch.relu
        self.rnn = nn.RNN(input_size, hidden_size, nonlinearity=self.nonlinearity)

    def supported_precisions(self) -> tuple[str, ...]:
        # torch's fused kernel runs under autocast (oneDNN / cuDNN in bf16 or fp16, its state kept in float32
        # inside); the hand-written Python recurrence (fused off) would carry its state in the reduced dtype
        return ("fp32", "bf16", "fp16") if self.params.fused and self.has_fused else ("fp32",)

    def input_projection(self, x: Tensor) -> Tensor:
        return F.linear(x, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0)

    def step_projected(self, xp_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        # Elman 1990: h_t = f(W_xh x_t + W_hh h_{t-1} + b)
        h = self.act(torch.addmm(xp_t, state[0], self.rnn.weight_hh_l0.t()))
        return h, (h,)

    def sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        # torch.nn.RNN computes this class's step; a subclass with another step declares has_fused = False
        if not self.has_fused or not self.params.fused:
            return self.sequence_steps(x, state)
        if x.shape[0] == 0:
            return no_steps(x, state, self.hidden_size)
            return self.sequence_steps(x, state)
        out, h = self.rnn(x, state[0].unsqueeze(0).contiguous())
        return out, (h[0],)

    def sequence_traced(self, x: Tensor, state: State) -> tuple[Tensor, State, dict[str, Tensor]]:
        # no gates: the only thing to keep is h_t, which torch.nn.RNN (same nonlinearity, same two biases as
        # step_projected) gives for every step in one call
        if (not self.traced_sequence or x.shape[0] == 0 or not self.params.fused
                or x.dtype not in KERNEL_DTYPES):
            return self.trace_steps(x, state)
        with torch.no_grad():
            out, final = self.sequence(x, state)
        return out, final, {"h": out}

    def recurrent_weights(self) -> dict[str, Tensor]:
        return {"W_hh": self.rnn.weight_hh_l0}


class IRNNCell(RNNCell):
    """Le, Jaitly & Hinton 2015: a ReLU RNN whose W_hh starts as ``identity_scale`` * I, biases at 0 and input
    weights ~ N(0, ``input_std``^2).  With ReLU units and W_hh = I the state is carried unchanged until the
    inputs move it, so gradients neither vanish nor explode at first.  ``init_weights("default")`` and
    ``init_weights("identity")`` restore this init; ``uniform`` / ``orthogonal`` overwrite it as asked.
    """

    def __init__(self, input_size: int, hidden_size: int, params):
        super().__init__(input_size, hidden_size, params, nonlinearity="relu")
        self.reset_irnn()

    def reset_irnn(self) -> None:
        with torch.no_grad():
            W = self.rnn.weight_hh_l0
            W.copy_(torch.eye(self.hidden_size, dtype=W.dtype, device=W.device)).mul_(self.params.identity_scale)
            self.rnn.bias_ih_l0.zero_()
            self.rnn.bias_hh_l0.zero_()
            nn.init.normal_(self.rnn.weight_ih_l0, 0.0, self.params.input_std)

    def init_weights(self, scheme: str, scale: float) -> None:
        if scheme in ("default", "identity"):
            self.reset_irnn()
        else:
            super().init_weights(scheme, scale)
