"""MUT1, MUT2, MUT3: the three architectures found by the evolutionary search of Jozefowicz, Zaremba & Sutskever
2015, "An Empirical Exploration of Recurrent Network Architectures" (ICML).  Python per-step path only.

All three update the state as h' = tanh(W_hh (r * h) + u(x) + b_h) * z + h * (1 - z): z near 0 keeps the old state.

Sizes.  MUT1 adds tanh(x) and MUT2 adds x itself to a hidden-sized pre-activation; the paper's equations take x
and h to have the same size.  ``input_map="auto"`` uses x as it is when input_size == hidden_size, exactly as in
the paper, and otherwise a learned projection ``P x`` (``weight_xp [H, I]``, no bias: the sum already has b) in
its place; ``"projection"`` always learns P.  A projection rather than padding or cropping x, because it keeps
every input feature, gives every unit a term of the paper's form, and adds no parameters when the sizes agree.
MUT3 has no such term, so it needs no ``input_map``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.api import Cell, State
from workbench_plugins._kernels import no_steps


class MUTCell(Cell):
    """Common parameters and the state update; subclasses define the gates.

    ``bias [3H]`` holds b_z, b_r, b_h; ``input_projection`` returns ``[.., 3H]`` in that order (the input's share
    of z, r and of the candidate, biases included; MUT1's z, which sees only x, comes out already squashed).
    """

    gate_names = ("z", "r")
    state_names = ("h",)
    split_step = True
    has_fused = False
    #: which rows of (z, r, h) have a learned input matrix W_x*; the others take x itself (or tanh(x))
    learned_rows: tuple[str, ...] = ("z", "r", "h")
    #: the gates' hidden->hidden matrices (besides W_hh) as (parameter name, number of stacked [H, H] blocks)
    gate_matrices: tuple[tuple[str, int], ...] = ()

    def __init__(self, input_size: int, hidden_size: int, params):
        super().__init__(input_size, hidden_size)
        self.params = params
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(len(self.learned_rows) * H, input_size))
        self.bias = nn.Parameter(torch.empty(3 * H))
        for name, blocks in self.gate_matrices:
            setattr(self, name, nn.Parameter(torch.empty(blocks * H, H)))
        self.weight_hh = nn.Parameter(torch.empty(H, H))
        map_mode = getattr(params, "input_map", None)
        self.weight_xp = None
        if len(self.learned_rows) < 3 and (map_mode == "projection" or input_size != hidden_size):
            self.weight_xp = nn.Parameter(torch.empty(H, input_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name == "weight_xp":
                    nn.init.uniform_(p, -1.0 / math.sqrt(self.input_size), 1.0 / math.sqrt(self.input_size))
                else:
                    nn.init.uniform_(p, -bound, bound)
            self.bias[:self.hidden_size].fill_(self.params.update_bias)

    def mapped_input(self, x: Tensor) -> Tensor:
        """x itself when the sizes agree, else the learned projection P x."""
        return x if self.weight_xp is None else F.linear(x, self.weight_xp)

    def candidate(self, xp_h: Tensor, h: Tensor, r: Tensor, z: Tensor) -> Tensor:
        # h' = tanh(W_hh (r * h) + [input term] + b_h) * z + h * (1 - z)  =  h + z * (tanh(.) - h)
        cand = torch.tanh(torch.addmm(xp_h, r * h, self.weight_hh.t()))
        return torch.addcmul(h, z, cand - h)

    def sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if x.shape[0] == 0:
            return no_steps(x, state, self.hidden_size)
        return self.sequence_steps(x, state)

    def recurrent_weights(self) -> dict[str, Tensor]:
        out = {}
        for name, _ in self.gate_matrices:
            W = getattr(self, name)
            if name == "weight_hzr":
                out["W_hz"], out["W_hr"] = W.chunk(2, 0)
            else:
                out["W_" + name.split("_")[1]] = W
        out["W_hh"] = self.weight_hh
        return out

    def init_weights(self, scheme: str, scale: float) -> None:
        if scheme == "default":
            self.reset_parameters()
            return
        super().init_weights(scheme, scale)


class MUT1Cell(MUTCell):
    """MUT1: the update gate sees only the input; tanh(x) enters the candidate unweighted."""

    learned_rows = ("z", "r")
    gate_matrices = (("weight_hr", 1),)

    def input_projection(self, x: Tensor) -> Tensor:
        H = self.hidden_size
        zr = F.linear(x, self.weight_ih, self.bias[:2 * H])
        # z depends on x alone: its sigmoid is taken here for all timesteps at once, not once per step
        u = torch.tanh(self.mapped_input(x)) + self.bias[2 * H:]
        return torch.cat([torch.sigmoid(zr[..., :H]), zr[..., H:], u], -1)

    def step_projected(self, xp_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        # Jozefowicz et al. 2015, MUT1: z = sigm(W_xz x + b_z), r = sigm(W_xr x + W_hr h + b_r),
        # h' = tanh(W_hh (r * h) + tanh(x) + b_h) * z + h * (1 - z)
        (h,) = state
        H = self.hidden_size
        z = xp_t[:, :H]                               # already sigm(W_xz x + b_z), see input_projection
        r = torch.sigmoid(torch.addmm(xp_t[:, H:2 * H], h, self.weight_hr.t()))
        h_new = self.candidate(xp_t[:, 2 * H:], h, r, z)
        if gates is not None:
            gates.update(z=z, r=r)
        return h_new, (h_new,)


class MUT2Cell(MUTCell):
    """MUT2: x enters the reset gate unweighted; both gates see h."""

    learned_rows = ("z", "h")
    gate_matrices = (("weight_hzr", 2),)               # W_hz and W_hr stacked: one product for both gates

    def input_projection(self, x: Tensor) -> Tensor:
        H = self.hidden_size
        zh = F.linear(x, self.weight_ih)
        return torch.cat([zh[..., :H], self.mapped_input(x), zh[..., H:]], -1) + self.bias

    def step_projected(self, xp_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        # Jozefowicz et al. 2015, MUT2: z = sigm(W_xz x + W_hz h + b_z), r = sigm(x + W_hr h + b_r),
        # h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)
        (h,) = state
        H = self.hidden_size
        zr = torch.sigmoid(torch.addmm(xp_t[:, :2 * H], h, self.weight_hzr.t()))
        z, r = zr[:, :H], zr[:, H:]
        h_new = self.candidate(xp_t[:, 2 * H:], h, r, z)
        if gates is not None:
            gates.update(z=z, r=r)
        return h_new, (h_new,)


class MUT3Cell(MUTCell):
    """MUT3: the update gate sees tanh(h) instead of h."""

    learned_rows = ("z", "r", "h")
    gate_matrices = (("weight_hz", 1), ("weight_hr", 1))

    def input_projection(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias)

    def step_projected(self, xp_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        # Jozefowicz et al. 2015, MUT3: z = sigm(W_xz x + W_hz tanh(h) + b_z), r = sigm(W_xr x + W_hr h + b_r),
        # h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)
        (h,) = state
        H = self.hidden_size
        z = torch.sigmoid(torch.addmm(xp_t[:, :H], torch.tanh(h), self.weight_hz.t()))
        r = torch.sigmoid(torch.addmm(xp_t[:, H:2 * H], h, self.weight_hr.t()))
        h_new = self.candidate(xp_t[:, 2 * H:], h, r, z)
        if gates is not None:
            gates.update(z=z, r=r)
        return h_new, (h_new,)
