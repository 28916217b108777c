"""LSTM cell: per-step path from cell operations, fused path through ``torch.nn.LSTM`` on the same weights."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.core.cells import Cell, State


class LSTMCell(Cell):
    gate_names = ("i", "f", "g", "o")
    state_names = ("h", "c")
    has_fused = True

    def __init__(self, input_size: int, hidden_size: int, params):
        super().__init__(input_size, hidden_size)
        self.params = params
        # One single-layer nn.LSTM owns the weights; its gate order (i, f, g, o) is the one we use below.
        self.rnn = nn.LSTM(input_size, hidden_size)
        self.set_forget_bias(params.forget_bias)

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
        z = torch.addmm(xp_t, h, self.rnn.weight_hh_l0.t())
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
        if not self.params.fused:
            return self.sequence_steps(x, state)
        h0, c0 = state
        out, (h, c) = self.rnn(x, (h0.unsqueeze(0).contiguous(), c0.unsqueeze(0).contiguous()))
        return out, (h[0], c[0])

    def recurrent_weights(self) -> dict[str, Tensor]:
        return dict(zip(("W_hi", "W_hf", "W_hg", "W_ho"), self.rnn.weight_hh_l0.chunk(4, 0)))

    def init_weights(self, scheme: str, scale: float) -> None:
        super().init_weights(scheme, scale)
        if scheme != "default":
            self.set_forget_bias(self.params.forget_bias)
