"""The cell contract.  A cell is one recurrent step; a recurrent block runs it over time (see :class:`Cell`)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]


class Cell(nn.Module):
    """One recurrent step.  A cell states what it provides in three class attributes; the base class's loops and the
    build-time checks go by these declarations, never by which methods a subclass happens to override:

    ``split_step`` (default False)
        False, the one-method API: the cell writes :meth:`step`, and the per-step loops call it on the raw inputs.
        True: the cell writes :meth:`input_projection` (``[T, B, I] -> [T, B, G]``, every timestep in one product)
        and :meth:`step_projected` (the recurrent part); the per-step loops project the whole input once and call
        :meth:`step_projected` on ``unbind(0)`` slices (indexing ``x[t]`` in the loop makes every backward step
        zero-fill a full-size gradient).  :meth:`step` is derived from the two; a cell may override it only with
        something that computes the same (a faster decode path).
    ``has_fused`` (default False)
        :meth:`sequence` is a fused whole-sequence kernel sharing the cell's parameters (``torch.nn.LSTM`` etc.)
        rather than the per-step loop :meth:`sequence_steps`.
    ``traced_sequence`` (default False)
        :meth:`sequence_traced` (what the hidden-unit recorder reads) is the cell's own fast path, e.g. the fused
        kernel for every h_t and the gates of all timesteps recomputed at once from x_t and h_{t-1}.  False: the
        recorder steps the cell (:meth:`trace_steps`).

    Each declaration promises that the path computes what stepping computes.  When a model is built,
    :func:`workbench.core.plugin_checks.build_cell` runs every cell on a small random input and refuses one whose
    ``sequence``, ``sequence_traced`` or split step disagree with stepping, naming the declaration.  Declarations
    are inherited with the methods they describe, so a subclass that changes the step of a cell with a kernel is
    refused until it overrides the kernel too or declares that capability off (the built-in cells run their
    kernels only while it is declared).
    """

    #: names of the gate activations the step reports when asked (e.g. ``("i", "f", "g", "o")``)
    gate_names: tuple[str, ...] = ()
    #: names of the state tensors, ``h`` first (e.g. ``("h", "c")`` for an LSTM)
    state_names: tuple[str, ...] = ("h",)
    #: the cell writes input_projection + step_projected (step is derived from them) rather than step itself
    split_step: bool = False
    #: sequence() is a fused whole-sequence kernel rather than the per-step loop
    has_fused: bool = False
    #: sequence_traced() is the cell's own fast path rather than stepping (what the hidden-unit recorder reads)
    traced_sequence: bool = False
    #: the training precisions the cell computes correctly under torch.autocast (workbench.core.precision);
    #: float32 only unless the cell says more, so a reduced-precision run falls back rather than guesses
    precisions: tuple[str, ...] = ("fp32",)

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)

    def supported_precisions(self) -> tuple[str, ...]:
        """:attr:`precisions`, or fewer for this instance's settings (a fused kernel on, a hand-written one off)."""
        return tuple(self.precisions)

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
        raise NotImplementedError(
            f"{type(self).__name__} has no step_projected: a cell implements step (the one-method API), or "
            f"input_projection + step_projected and declares split_step = True")

    def step(self, x_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        """One step: ``x_t [B, I]`` and ``state`` -> ``(h_t [B, H], new_state)``.

        Default: ``step_projected(input_projection(x_t))``, the step a split cell derives from its two parts.  (A
        cell that wrote the two parts without declaring ``split_step`` steps correctly through it too, one
        projection per step instead of one per sequence.)"""
        return self.step_projected(self.input_projection(x_t), state, gates)

    # ---- whole sequence ------------------------------------------------------------------------------------
    def sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """``x [T, B, I]`` -> ``(outputs [T, B, H], final_state)``.  Default: the per-step path in a loop
        (:meth:`sequence_steps`); a fused kernel overrides it and declares ``has_fused = True``."""
        return self.sequence_steps(x, state)

    def sequence_steps(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """The plain per-step path over a whole sequence (autograd records every step).

        A cell with ``split_step`` gets its input projection for all timesteps in one product and is stepped with
        :meth:`step_projected`; any other is stepped with :meth:`step` on the raw inputs.  With
        :meth:`compile_steps` on, the loop runs in compiled blocks while training.  Outputs are gathered with one
        ``stack`` at the end: writing each ``h_t`` into a preallocated buffer would make autograd copy the whole
        buffer's gradient at every step of the backward pass.
        """
        xs = self.input_projection(x) if self.split_step else x
        block = self._compile_block
        if block and xs.shape[0] >= block and torch.is_grad_enabled():
            return self._sequence_compiled(xs, state, block)
        return self._run_steps(xs, state)

    def _run_steps(self, xs: Tensor, state: State) -> tuple[Tensor, State]:
        """The loop itself, over ``xs`` (projected inputs for a ``split_step`` cell, raw inputs otherwise)."""
        one_step = self.step_projected if self.split_step else self.step
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
        equal stepping (to rounding).  This default is :meth:`trace_steps`.  A cell with a fused kernel can
        override it (run the kernel once for every h_t, then recompute the gates of all timesteps at once from
        x_t and h_{t-1}) and declares ``traced_sequence = True``; an override that cannot serve some
        configuration (a parameter, a dtype, the declaration switched off by a subclass) returns
        :meth:`trace_steps` there.
        """
        return self.trace_steps(x, state)

    def trace_steps(self, x: Tensor, state: State) -> tuple[Tensor, State, dict[str, Tensor]]:
        """:meth:`sequence_traced` by stepping the cell along the declared per-step path (the inputs projected
        once for a ``split_step`` cell, as in :meth:`sequence_steps`), every step written into buffers allocated
        at the first step."""
        T, B = x.shape[0], x.shape[1]
        with torch.no_grad():
            xs = self.input_projection(x) if self.split_step else x
            one_step = self.step_projected if self.split_step else self.step
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
        """Re-initialise: ``uniform`` (±scale), ``orthogonal`` / ``identity`` recurrent matrices.

        Only the cell's own parameters are written (a recurrent matrix that is a parameter or a view of one).  A
        recurrent matrix the cell derives from its parameters (IndRNN's ``diag(u)``, a masked or factored matrix)
        is left alone, with a warning: writing into it would not change the parameters it comes from, or would
        overwrite a tensor the cell keeps.  Such a cell overrides this method."""
        if scheme == "uniform":
            for p in self.parameters():
                nn.init.uniform_(p, -scale, scale)
        elif scheme in ("orthogonal", "identity"):
            owned = {p.untyped_storage().data_ptr() for p in self.parameters()}
            for name, w in self.recurrent_weights().items():
                if w.untyped_storage().data_ptr() not in owned:
                    import warnings
                    warnings.warn(f"{type(self).__name__}: init {scheme!r} leaves {name!r} as it is: it is derived "
                                  f"from the cell's parameters, not one of them (override init_weights to "
                                  f"initialise what it is derived from)", RuntimeWarning, stacklevel=2)
                    continue
                with torch.no_grad():
                    if scheme == "orthogonal":
                        nn.init.orthogonal_(w)
                    else:
                        w.copy_(torch.eye(w.shape[0], w.shape[1], dtype=w.dtype, device=w.device))

    # ---- after each optimizer step -----------------------------------------------------------------------
    def after_step(self) -> None:
        """Called after every optimizer step that updated the weights (not after a skipped one), without
        gradients.  Keep the parameters inside a constraint here: IndRNN clips its recurrent weights so that
        |u| stays below a bound (Li et al. 2018).  Default: nothing."""


def after_optimizer_step(model: nn.Module) -> None:
    """Run :meth:`Cell.after_step` of every cell in ``model`` (the trainer calls it after each optimizer step)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, Cell):
                module.after_step()
