"""The IndRNN cell (imported only when a model uses it)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from workbench.api import Cell, State


class IndRNNCell(Cell):
    """Li, Li, Cook, Zhu & Gao 2018, "Independently Recurrent Neural Network (IndRNN)", eq. 2:

        h_t = sigma(W x_t + u ⊙ h_{t-1} + b)

    Each unit sees only its own past (``u`` is a vector, not a matrix), so the units are independent in time and
    a ReLU unit with ``u`` near 1 keeps its value over long spans.
    """

    gate_names = ()
    state_names = ("h",)
    split_step = True      # input_projection + step_projected: the inputs are projected once per sequence

    def __init__(self, input_size: int, hidden_size: int, params=None):
        super().__init__(input_size, hidden_size)
        if params is None:
            from seqwb_plugin_example.plugin import IndRNNParams
            params = IndRNNParams()
        self.params = params
        self.act = torch.relu if params.activation == "relu" else torch.tanh
        self.input_linear = nn.Linear(self.input_size, self.hidden_size)   # W and b
        self.u = nn.Parameter(torch.empty(self.hidden_size))                # the recurrent weights, one per unit
        self.reset_recurrent()

    def reset_recurrent(self) -> None:
        with torch.no_grad():
            self.u.uniform_(0.0, self.params.recurrent_max)

    def input_projection(self, x: Tensor) -> Tensor:
        # W x_t + b for every timestep in one matrix product
        return self.input_linear(x)

    def step_projected(self, xp_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        (h,) = state
        h = self.act(xp_t + self.u * h)        # h_t = sigma(W x_t + b + u ⊙ h_{t-1})
        return h, (h,)

    def recurrent_weights(self) -> dict[str, Tensor]:
        # The hidden-to-hidden matrix is diag(u); its largest singular value is max |u_i|.
        return {"diag(u)": torch.diag(self.u)}

    def after_step(self) -> None:
        # called after every optimizer step, without gradients: Li et al. keep |u| <= gamma by clipping
        if self.params.clip > 0:
            self.u.clamp_(-self.params.clip, self.params.clip)

    def init_weights(self, scheme: str, scale: float) -> None:
        if scheme == "uniform":
            super().init_weights(scheme, scale)
        elif scheme in ("default", "identity", "orthogonal"):
            # diag(u) is orthogonal exactly when |u_i| = 1: both schemes mean u = 1 for an IndRNN
            with torch.no_grad():
                if scheme == "default":
                    self.reset_recurrent()
                else:
                    self.u.fill_(1.0)
