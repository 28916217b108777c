"""The cell contract.  A cell is one recurrent step; a recurrent block runs it over time.

A cell must provide the per-step path.  It may override :meth:`Cell.sequence` with a fused whole-sequence
kernel (``torch.nn.LSTM`` etc.) that shares the same parameters; the contract tests check that both agree.

For a fast Python-stepped cell, split the step in two: :meth:`input_projection` maps all timesteps of the
input in one matrix product (``[T, B, I] -> [T, B, G]``) and :meth:`step_projected` does the recurrent part.
The default :meth:`sequence` then loops over ``unbind(0)`` slices (indexing ``x[t]`` in the loop makes every
backward step zero-fill a full-size gradient).

For the hidden-unit recorder, :meth:`Cell.sequence_traced` runs a chunk of timesteps and returns every state and
gate of every step, ``[T, B, H]`` each.  The default is the per-step path in a loop; a cell with a fused kernel may
override it (run the kernel for all h_t, then recompute the gates of all timesteps from x_t and h_{t-1} at once).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]


def _overrides(cell: "Cell", name: str) -> bool:
    return getattr(type(cell), name) is not getattr(Cell, name)


def defines_own(cell: "Cell", cls: type, names: tuple[str, ...]) -> bool:
    """True if ``cell`` uses ``cls``'s own ``names`` (no subclass below ``cls`` redefines any of them).

    A cell class whose :meth:`Cell.sequence_traced` shortcut relies on its step being a known function (a fused
    kernel's equations) checks this, so that a third-party subclass that changes the step gets the generic loop
    rather than the parent's kernel."""
    return isinstance(cell, cls) and all(getattr(type(cell), n) is getattr(cls, n) for n in names)


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
        if _overrides(self, "step") and not _overrides(self, "input_projection"):
            # a cell written against the one-method API (only ``step``): its "projection" is the identity
            return self.step(xp_t, state, gates)
        raise NotImplementedError(f"{type(self).__name__} must implement step_projected (or step)")

    def step(self, x_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        """One step: ``x_t [B, I]`` and ``state`` -> ``(h_t [B, H], new_state)``."""
        return self.step_projected(self.input_projection(x_t), state, gates)

    # ---- whole sequence ------------------------------------------------------------------------------------
    def sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """``x [T, B, I]`` -> ``(outputs [T, B, H], final_state)``.  Default: the per-step path in a loop."""
        return self.sequence_steps(x, state)

    def sequence_steps(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """The plain per-step path over a whole sequence (autograd records every step).

        A cell that implements only :meth:`step` is stepped on the raw inputs; one that splits its step gets its
        input projection for all timesteps in one product.  With :meth:`compile_steps` on, the loop runs in
        compiled blocks while training.  Outputs are gathered with one ``stack`` at the end:
        writing each ``h_t`` into a preallocated buffer would make autograd copy the whole buffer's gradient at
        every step of the backward pass.
        """
        xs = self.input_projection(x) if self._splits_step() else x
        block = self._compile_block
        if block and xs.shape[0] >= block and torch.is_grad_enabled():
            return self._sequence_compiled(xs, state, block)
        return self._run_steps(xs, state)

    def _run_steps(self, xs: Tensor, state: State) -> tuple[Tensor, State]:
        """The loop itself, over ``xs`` (projected inputs for a splitting cell, raw inputs otherwise)."""
        one_step = self.step_projected if self._splits_step() else self.step
        outs = []
        for x_t in xs.unbind(0):
            h, state = one_step(x_t, state)
            outs.append(h)
        if not outs:
            return xs.new_zeros(0, xs.shape[1], self.hidden_size), tuple(state)
        return torch.stack(outs, 0), tuple(state)

    # ---- whole chunk with every state and gate (the hidden-unit recorder) -------------------------------------
    def sequence_traced(self, x: Tensor, state: State) -> tuple[Tensor, State, dict[str, Tensor]]:
        """``x [T, B, I]`` -> ``(outputs [T, B, H], final_state, {name: [T, B, H]})`` without autograd.

        The dict holds what stepping the cell with a ``gates`` dict reports at every step: each state by
        :attr:`state_names` (``h`` first), then each gate the step puts in ``gates``, in that order; entry ``t``
        along the first dimension is step ``t``'s value.  It is what the hidden-unit recorder keeps, so it must
        equal stepping (to rounding).  The default steps the cell (the inputs projected once, as in
        :meth:`sequence_steps`) and writes every step into buffers allocated at the first step.  A cell with a
        fused kernel can override it: run the kernel once for every h_t, then recompute the gates of all
        timesteps at once from x_t and h_{t-1}.
        """
        T, B = x.shape[0], x.shape[1]
        with torch.no_grad():
            splits = self._splits_step()
            xs = self.input_projection(x) if splits else x
            one_step = self.step_projected if splits else self.step
            out: Optional[Tensor] = None
            bufs: dict[str, Tensor] = {}
            for t, x_t in enumerate(xs.unbind(0)):
                gates: dict = {}
                h, state = one_step(x_t, state, gates)
                if out is None:
                    out = h.new_empty((T, *h.shape))
                out[t].copy_(h)
                # the same entry, in the same order, as a recurrent block's per-step trace
                for name, v in (*zip(self.state_names, state), *gates.items()):
                    buf = bufs.get(name)
                    if buf is None:
                        buf = bufs[name] = v.new_empty((T, *v.shape))
                    buf[t].copy_(v)
            if out is None:
                # no steps: nothing to report, the state unchanged
                empty = x.new_zeros(0, B, self.hidden_size)
                return empty, tuple(state), {n: empty for n in (*self.state_names, *self.gate_names)}
        return out, tuple(state), bufs

    def _splits_step(self) -> bool:
        """True if the cell uses the two-part step (its own :meth:`step_projected`)."""
        return _overrides(self, "step_projected")

    # ---- opt-in: torch.compile of the per-step loop --------------------------------------------------------
    #: steps per compiled block (0: off) and the torch.compile backend; set with :meth:`compile_steps`
    _compile_block: int = 0
    _compile_backend: str = "inductor"

    def compile_steps(self, block: int, backend: str = "inductor") -> None:
        """Run the per-step loop of :meth:`sequence_steps` through ``torch.compile`` in blocks of ``block`` steps.

        Opt-in, for cells whose whole-sequence path is the per-step loop (a fused or hand-written
        :meth:`sequence` never reaches it).  Each block is unrolled and compiled once, forward and backward
        (TorchInductor fuses the step's elementwise operations; Python runs once per block instead of once per
        operation); the steps that do not fill a block, and anything run without gradients (validation), stay
        eager.  Compiling takes a while (tens of seconds to minutes on a CPU) and is paid again for each new
        batch size.  If compiling fails (no C++ compiler, an operation torch.compile cannot trace) the loop runs
        eagerly and a warning names the cell.  ``block=0`` turns it off.  ``backend`` is passed to
        ``torch.compile`` (``"aot_eager"`` traces without generating code: quick, for tests).
        """
        self._compile_block = max(0, int(block))
        self._compile_backend = backend
        self.__dict__.pop("_compiled_block_fn", None)

    def _sequence_compiled(self, xs: Tensor, state: State, block: int) -> tuple[Tensor, State]:
        fn = self.__dict__.get("_compiled_block_fn")
        if fn is None:
            fn = torch.compile(self._run_steps, dynamic=False, backend=self._compile_backend)
            self.__dict__["_compiled_block_fn"] = fn
        full = xs.shape[0] - xs.shape[0] % block
        outs = []
        state0 = state
        try:
            for k in range(0, full, block):
                h, state = fn(xs[k:k + block], tuple(state))
                outs.append(h)
        except Exception as exc:   # noqa: BLE001 - any compiler failure falls back to the eager loop
            import warnings
            warnings.warn(f"{type(self).__name__}: torch.compile of the per-step loop failed "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                          f"running it uncompiled", RuntimeWarning, stacklevel=2)
            self.compile_steps(0)
            return self._run_steps(xs, state0)   # from the start: a real error in the cell surfaces here
        if full < xs.shape[0]:
            h, state = self._run_steps(xs[full:], state)
            outs.append(h)
        return torch.cat(outs, 0), tuple(state)

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
