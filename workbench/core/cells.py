"""The cell contract.  A cell is one recurrent step; a recurrent block runs it over time.

A cell must provide the per-step path.  It may override :meth:`Cell.sequence` with a fused whole-sequence
kernel (``torch.nn.LSTM`` etc.) that shares the same parameters; the contract tests check that both agree.

For a fast Python-stepped cell, split the step in two: :meth:`input_projection` maps all timesteps of the
input in one matrix product (``[T, B, I] -> [T, B, G]``) and :meth:`step_projected` does the recurrent part.
The default :meth:`sequence` then loops over ``unbind(0)`` slices (indexing ``x[t]`` in the loop makes every
backward step zero-fill a full-size gradient).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]


class Cell(nn.Module):
    #: names of the gate activations :meth:`step_projected` reports when asked (e.g. ``("i", "f", "g", "o")``)
    gate_names: tuple[str, ...] = ()
    #: names of the state tensors, ``h`` first (e.g. ``("h", "c")`` for an LSTM)
    state_names: tuple[str, ...] = ("h",)
    #: True if :meth:`sequence` is a fused kernel rather than the Python loop
    has_fused: bool = False

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)

    # ---- state ---------------------------------------------------------------------------------------------
    def init_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> State:
        p = next(self.parameters(), None)
        device = device if device is not None else (p.device if p is not None else "cpu")
        dtype = dtype if dtype is not None else (p.dtype if p is not None else torch.float32)
        return tuple(torch.zeros(batch, self.hidden_size, device=device, dtype=dtype) for _ in self.state_names)

    # ---- per-step path -----------------------------------------------------------------------------------
    def input_projection(self, x: Tensor) -> Tensor:
        """Map inputs ``[T, B, I]`` (or ``[B, I]``) to what :meth:`step_projected` consumes.  Default: identity."""
        return x

    def step_projected(self, xp_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        """One step from a projected input ``[B, G]``.  Fill ``gates`` (name -> ``[B, H]``) when it is a dict."""
        raise NotImplementedError(f"{type(self).__name__} must implement step_projected (or step)")

    def step(self, x_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        """One step: ``x_t [B, I]`` and ``state`` -> ``(h_t [B, H], new_state)``."""
        return self.step_projected(self.input_projection(x_t), state, gates)

    # ---- whole sequence ------------------------------------------------------------------------------------
    def sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """``x [T, B, I]`` -> ``(outputs [T, B, H], final_state)``.  Default: the per-step path in a loop."""
        return self.sequence_steps(x, state)

    def sequence_steps(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        xp = self.input_projection(x)
        outs = []
        for xp_t in xp.unbind(0):
            h, state = self.step_projected(xp_t, state)
            outs.append(h)
        return torch.stack(outs, 0), state

    # ---- inspection and init -------------------------------------------------------------------------------
    def recurrent_weights(self) -> dict[str, Tensor]:
        """The recurrent matrices (hidden -> hidden), by name, for the spectral-norm probe."""
        return {}

    def init_weights(self, scheme: str, scale: float) -> None:
        """Re-initialise: ``uniform`` (±scale), ``orthogonal`` / ``identity`` recurrent matrices."""
        if scheme == "uniform":
            for p in self.parameters():
                nn.init.uniform_(p, -scale, scale)
        elif scheme in ("orthogonal", "identity"):
            for w in self.recurrent_weights().values():
                with torch.no_grad():
                    if scheme == "orthogonal":
                        nn.init.orthogonal_(w)
                    else:
                        w.copy_(torch.eye(w.shape[0], w.shape[1], dtype=w.dtype, device=w.device))
