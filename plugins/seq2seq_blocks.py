"""Blocks for conditioned generation: encoder, attention decoder, image encoder, feature encoder, conditioned RNN.

How they fit the engine (see ``workbench.core.build``): the task's stepped input (the target side) feeds the
decoder; everything upstream of the source (embedding, encoder, image encoder) is *context*, run once by
``model.start(batch, context=...)``.  A stepped block fed by a context value starts with ``state=None`` and
initialises itself from its inputs (the encoder's final state, the image vector).

Design of the attention decoder.  Teacher forcing with a ratio below 1 (Bengio et al. 2015) makes the decoder
feed its own previous prediction back in, which needs the target embedding and the output projection *inside*
the recurrent loop.  Splitting them into separate graph nodes would need a cycle in the graph (the engine's links
are acyclic by design), so one ``attention-decoder`` block owns target embedding, cell(s), attention and output
projection, and emits ``logits[T]``.  With ratio 1 (and always in eval mode) Luong attention without input feeding
takes a fast path: one fused recurrent pass over the whole target, then all attention scores in one batched
matrix product.  Bahdanau attention, input feeding and ratio < 1 need the step loop.

Padding of the source.  The model hands blocks ``inputs["lengths"]`` only in ``forward`` (never in ``start`` or
``step``), so the source mask is derived from the source token ids: the encoder and the decoder each have an
optional ``source: tokens[T]`` input, and id 0 (``<pad>``) marks padding, which works the same in training,
evaluation, greedy decoding and beam search.  Without it they fall back on ``inputs["lengths"]`` (the seq2seq
task sets it to the source lengths), and without either every position counts.  Padding must come at the end.

Attention weights: ``step`` writes ``trace[f"{node}.attention"] = {"weights": [B, S], "h": h~}`` when given a
trace dict (``h`` is the attentional state, so gradient probes can treat the entry like a layer); after
``forward`` the ``[T, B, S]`` weights of the last call are on ``block.last_attention``
(also :meth:`AttentionDecoderBlock.attention_weights`).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.api import Block, BuildContext

PAD = 0


# ---- helpers ----------------------------------------------------------------------------------------------------

def source_lengths(inputs: dict[str, Any], T: int) -> Optional[Tensor]:
    """Each source sequence's true length ``[B]`` from the ``source`` ids (pad id 0) or ``lengths``; None when
    every sequence fills all ``T`` steps (or nothing says otherwise)."""
    src = inputs.get("source")
    if src is not None:
        lengths = (src != PAD).sum(0)
    else:
        lengths = inputs.get("lengths")
        if lengths is None:
            return None
    lengths = lengths.long().clamp(1, T)
    if bool((lengths == T).all()):
        return None
    return lengths


def _per_row(layer: nn.Module, memory: Tensor) -> Tensor:
    """``layer(memory)``; for a memory broadcast from one row, computed on that row and broadcast alike."""
    if memory.stride(0) == 0:
        return layer(memory[:1]).expand(memory.shape[0], -1, -1)
    return layer(memory)


def source_mask(inputs: dict[str, Any], S: int, B: int, device) -> Optional[Tensor]:
    """``[B, S]`` boolean mask of real source positions, or None when all are real."""
    src = inputs.get("source")
    if src is not None and src.shape[0] == S:
        mask = (src != PAD).t()
    else:
        lengths = inputs.get("lengths")
        if lengths is None or lengths.shape[0] != B:
            return None
        mask = torch.arange(S, device=device).unsqueeze(0) < lengths.to(device).long().unsqueeze(1)
    if bool(mask.all()):
        return None
    # a row without any real position (an empty source) would divide by zero in the softmax: let it see all
    empty = ~mask.any(1, keepdim=True)
    return mask | empty


def reverse_padded(x: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """Reverse each sequence within its own length (padding stays at the end); its own inverse."""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T, device=x.device).unsqueeze(1)
    L = lengths.to(x.device).unsqueeze(0)
    idx = torch.where(t < L, L - 1 - t, t)
    return x.gather(0, idx.unsqueeze(-1).expand_as(x))


def run_cell_padded(cell, x: Tensor, lengths: Optional[Tensor]) -> tuple[Tensor, tuple]:
    """Run ``cell`` over ``x [T, B, F]`` from a zero state; the final state is each sequence's state after its last
    real step.  The sequence is cut at every distinct length and each piece goes through the cell's own (fused)
    ``sequence`` with the state carried over, which is exact for any cell and keeps the fused kernels."""
    B = x.shape[1]
    state = cell.init_state(B, x.device, x.dtype)
    if lengths is None:
        return cell.sequence(x, state)
    pieces: list[Tensor] = []
    final: tuple | None = None
    prev = 0
    for L in sorted(set(lengths.tolist())):
        y, state = cell.sequence(x[prev:L], state)
        pieces.append(y)
        done = (lengths == L).to(x.device).view(B, 1)
        final = tuple(state) if final is None else tuple(torch.where(done, s, f) for s, f in zip(state, final))
        prev = L
    if prev < x.shape[0]:
        pieces.append(pieces[-1].new_zeros(x.shape[0] - prev, B, pieces[-1].shape[-1]))
    return torch.cat(pieces, 0), final  # type: ignore[return-value]


def as_layers(init: Any) -> list[tuple[Tensor, ...]]:
    """A ``state`` port value as a list of per-layer tuples of ``[B, H]`` tensors."""
    if isinstance(init, Tensor):
        return [(init,)]
    if isinstance(init, (tuple, list)) and init and all(isinstance(t, Tensor) for t in init):
        return [tuple(init)]
    return [tuple(s) if isinstance(s, (tuple, list)) else (s,) for s in init]


def trace_layer(trace: dict, name: str, cell, state: tuple, gates: Optional[dict]) -> None:
    entry = {n: t for n, t in zip(cell.state_names, state)}
    entry.update(gates or {})
    trace[name] = entry


# ---- encoder --------------------------------------------------------------------------------------------------

class EncoderBlock(Block):
    """Stacked (optionally bidirectional) recurrent layers that also output their final state."""

    def __init__(self, params, in_sizes: dict, out_sizes: dict, ctx: BuildContext):
        super().__init__()
        self.node_id = ctx.node_id
        size_in = in_sizes.get("x")
        if not size_in:
            raise ValueError(f"{ctx.node_id}: input size unknown (connect embedded source tokens to 'x')")
        self.dropout = params.dropout
        self.bidirectional = params.bidirectional
        dirs = 2 if params.bidirectional else 1
        # named like the built-in layers so that gradient-norm groups read "encoder.0" / "encoder.0.bwd"
        self.cells = nn.ModuleList()
        self.cells_bwd = nn.ModuleList()
        for layer in range(params.layers):
            size = size_in if layer == 0 else params.hidden_size * dirs
            self.cells.append(ctx.make_cell(params.cell, size, params.hidden_size))
            if params.bidirectional:
                self.cells_bwd.append(ctx.make_cell(params.cell, size, params.hidden_size))
        #: when a dict, ``forward`` also writes every layer's states and gates over the source into it, as the
        #: step path's trace would (``{"encoder.0": {"h": [S, B, H], "c": ..., "i": ...}}``, ``.bwd`` layers in
        #: source order).  The encoder runs as the model's context (``model.start``), outside ``step_graph``'s
        #: trace, so this is how the hidden-unit recorder sees it (``workbench.core.record_context``).
        self.record_into: Optional[dict] = None

    def _record(self, name: str, cell, x: Tensor, lengths: Optional[Tensor], backwards: bool) -> None:
        """Every state and gate of ``cell`` over ``x`` into :attr:`record_into` (recording only: a second pass
        through ``Cell.sequence_traced``, whose values at the real positions of a padded batch are exact)."""
        assert self.record_into is not None
        xs = reverse_padded(x, lengths) if backwards else x
        with torch.no_grad():
            _, _, quantities = cell.sequence_traced(xs, cell.init_state(x.shape[1], x.device, x.dtype))
        if backwards:       # position s of the source, like the forward layer's entries
            quantities = {q: reverse_padded(v, lengths) for q, v in quantities.items()}
        self.record_into[name] = quantities

    def forward(self, inputs, state=None):
        x = inputs["x"]
        T = x.shape[0]
        lengths = source_lengths(inputs, T)
        finals = []
        for layer, cell in enumerate(self.cells):
            if layer > 0 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            if self.record_into is not None:
                self._record(f"{self.node_id}.{layer}", cell, x, lengths, backwards=False)
                if self.bidirectional:
                    self._record(f"{self.node_id}.{layer}.bwd", self.cells_bwd[layer], x, lengths, backwards=True)
            y, s = run_cell_padded(cell, x, lengths)
            if self.bidirectional:
                # Bahdanau et al. 2015: a second RNN reads the source backwards; outputs are concatenated
                yb, sb = run_cell_padded(self.cells_bwd[layer], reverse_padded(x, lengths), lengths)
                y = torch.cat([y, reverse_padded(yb, lengths)], -1)
                s = tuple(torch.cat([a, b], -1) for a, b in zip(s, sb))
            finals.append(tuple(s))
            x = y
        if lengths is not None:
            mask = torch.arange(T, device=x.device).unsqueeze(1) < lengths.to(x.device).unsqueeze(0)
            x = x * mask.unsqueeze(-1).to(x.dtype)
        return {"y": x, "state": tuple(finals)}, None

    def step(self, inputs, state=None, trace=None):
        raise NotImplementedError("the encoder reads the whole source at once; it runs as the context (model.start)")

    def layers(self):
        out = [(f"{self.node_id}.{i}", c) for i, c in enumerate(self.cells)]
        out += [(f"{self.node_id}.{i}.bwd", c) for i, c in enumerate(self.cells_bwd)]
        return out


# ---- attention decoder ----------------------------------------------------------------------------------------

class AttentionDecoderBlock(Block):
    """Target embedding -> cell(s) -> attention -> output projection, in one loop (see the module docstring)."""

    stateful = True

    def __init__(self, params, in_sizes: dict, out_sizes: dict, ctx: BuildContext):
        super().__init__()
        self.node_id = ctx.node_id
        self.params = params
        vocab_in = in_sizes.get("x")
        if not vocab_in:
            raise ValueError(f"{ctx.node_id}: the number of target token ids is unknown (connect the task's "
                             f"target tokens to 'x')")
        vocab_out = out_sizes.get("y") or vocab_in
        H, E = params.hidden_size, params.embed_size
        self.attention = params.attention
        self.memory_size = in_sizes.get("memory")
        if self.attention != "none" and not self.memory_size:
            raise ValueError(f"{ctx.node_id}: {self.attention} attention needs the encoder outputs connected to "
                             f"'memory' (or set attention to none)")
        if self.attention == "dot" and self.memory_size != H:
            raise ValueError(f"{ctx.node_id}: dot attention needs memory size ({self.memory_size}) == hidden_size "
                             f"({H}); use 'general'")
        if params.teacher_forcing < 1.0 and vocab_in != vocab_out:
            raise ValueError(f"{ctx.node_id}: teacher_forcing < 1 needs the same input and output vocabulary "
                             f"({vocab_in} != {vocab_out})")
        self.input_feeding = params.input_feeding and self.attention in ("dot", "general")
        self.teacher_forcing = params.teacher_forcing
        self.dropout = params.dropout
        M = self.memory_size or 0
        self.embed = nn.Embedding(int(vocab_in), E)
        first_in = E + (M if self.attention == "additive" else 0) + (H if self.input_feeding else 0)
        self.cells = nn.ModuleList(ctx.make_cell(params.cell, first_in if i == 0 else H, H)
                                   for i in range(params.layers))
        self.n_states = len(self.cells[0].state_names)
        if self.attention == "general":
            self.w_a = nn.Linear(M, H, bias=False)
        elif self.attention == "additive":
            A = params.attention_size or H
            self.w_k = nn.Linear(M, A, bias=False)
            self.w_q = nn.Linear(H, A)
            self.v_a = nn.Linear(A, 1, bias=False)
        if self.attention != "none":
            self.w_c = nn.Linear(M + H, H, bias=False)
        self.out = nn.Linear(H, int(vocab_out))
        # the initial state: copied from the encoder when sizes match, otherwise through a learned bridge
        init_size = in_sizes.get("init")
        self.bridge = (nn.Linear(int(init_size), params.layers * self.n_states * H)
                       if init_size and init_size != H else None)
        self.last_attention: Optional[Tensor] = None

    # ---- state ---------------------------------------------------------------------------------------------
    def init_state(self, batch: int, device) -> Any:
        return None  # built from the inputs (encoder state and memory) on the first call

    def _initial_cells(self, init: Any, B: int, device) -> tuple:
        dtype = self.embed.weight.dtype
        if init is None:
            return tuple(cell.init_state(B, device, dtype) for cell in self.cells)
        layers = as_layers(init)
        H = self.params.hidden_size
        if self.bridge is not None:
            z = torch.tanh(self.bridge(layers[-1][0]))  # the top layer's h
            parts = z.split(H, -1)
            return tuple(tuple(parts[l * self.n_states + k] for k in range(self.n_states))
                         for l in range(len(self.cells)))
        out = []
        for l in range(len(self.cells)):
            src = layers[min(l, len(layers) - 1)]
            tensors = list(src[:self.n_states])
            tensors += [torch.zeros_like(tensors[0]) for _ in range(self.n_states - len(tensors))]
            out.append(tuple(tensors))
        return tuple(out)

    def _start(self, inputs: dict[str, Any], B: int, device) -> dict[str, Any]:
        st: dict[str, Any] = {"cells": self._initial_cells(inputs.get("init"), B, device)}
        if self.attention != "none":
            memory = inputs["memory"].transpose(0, 1)  # [B, S, M], batch first so beams can reorder it
            if B > 1 and not torch.is_grad_enabled() and torch.equal(memory, memory[:1].expand_as(memory)):
                # one source for every row (the beams of one example): keep a single copy, broadcast, so that
                # the keys are computed once and each step attends with one product instead of B (see _scores)
                memory = memory[:1].expand_as(memory)
            st["memory"] = memory
            if self.attention == "general":
                st["keys"] = _per_row(self.w_a, memory)   # Luong et al. 2015: score = h_t^T W_a h_s
            elif self.attention == "additive":
                st["keys"] = _per_row(self.w_k, memory)   # Bahdanau et al. 2015: U_a h_j, computed once
            mask = source_mask(inputs, memory.shape[1], B, memory.device)
            if mask is not None:
                st["mask"] = mask
        if self.input_feeding:
            st["feed"] = torch.zeros(B, self.params.hidden_size, device=device, dtype=self.embed.weight.dtype)
        return st

    # ---- attention -----------------------------------------------------------------------------------------
    def _scores(self, query: Tensor, st: dict[str, Any]) -> Tensor:
        """``query [B, H]`` -> scores ``[B, S]``."""
        if self.attention == "additive":
            # Bahdanau et al. 2015: e_tj = v_a^T tanh(W_a s_{t-1} + U_a h_j)
            return self.v_a(torch.tanh(st["keys"] + self.w_q(query).unsqueeze(1))).squeeze(-1)
        keys = st["memory"] if self.attention == "dot" else st["keys"]
        if keys.stride(0) == 0:   # every row attends over the same source: [B, H] x [H, S] in one product
            return query @ keys[0].t()
        return torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1)  # Luong et al. 2015: dot / general

    @staticmethod
    def _normalise(scores: Tensor, mask: Optional[Tensor]) -> Tensor:
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, -1)

    def _attend(self, query: Tensor, st: dict[str, Any]) -> tuple[Tensor, Tensor]:
        alpha = self._normalise(self._scores(query, st), st.get("mask"))
        memory = st["memory"]
        if memory.stride(0) == 0:   # a source shared by every row (see _start)
            return alpha, alpha @ memory[0]                                # c_t = sum_s alpha_ts h_s
        context = torch.bmm(alpha.unsqueeze(1), memory).squeeze(1)
        return alpha, context

    # ---- one step --------------------------------------------------------------------------------------------
    def _core(self, e: Tensor, st: dict[str, Any], trace: Optional[dict] = None
              ) -> tuple[Tensor, Optional[Tensor], Tensor, dict[str, Any]]:
        """Embedded token ``e [B, E]`` -> (logits, attention weights or None, attentional state, new state)."""
        cells_state = st["cells"]
        alpha = context = None
        inp = e
        if self.attention == "additive":
            # Bahdanau et al. 2015: attend from the previous state s_{t-1}, feed c_t into the cell with y_{t-1}
            alpha, context = self._attend(cells_state[-1][0], st)
            inp = torch.cat([e, context], -1)
        elif self.input_feeding:
            inp = torch.cat([e, st["feed"]], -1)   # Luong et al. 2015, 3.3: input feeding of h~_{t-1}
        h = inp
        new_cells = []
        for layer, cell in enumerate(self.cells):
            if layer > 0 and self.dropout > 0:
                h = F.dropout(h, self.dropout, self.training)
            gates: dict | None = {} if trace is not None else None
            h, s = cell.step(h, cells_state[layer], gates)
            if trace is not None:
                trace_layer(trace, f"{self.node_id}.{layer}", cell, s, gates)
            new_cells.append(s)
        if self.attention in ("dot", "general"):
            alpha, context = self._attend(h, st)   # Luong et al. 2015: score after the RNN step, from h_t
        if self.attention != "none":
            h_att = torch.tanh(self.w_c(torch.cat([context, h], -1)))  # Luong et al. 2015: h~ = tanh(W_c[c_t; h_t])
        else:
            h_att = h
        logits = self.out(F.dropout(h_att, self.dropout, self.training) if self.dropout > 0 else h_att)
        new = dict(st)
        new["cells"] = tuple(new_cells)
        if self.input_feeding:
            new["feed"] = h_att
        return logits, alpha, h_att, new

    def _embed(self, tokens: Tensor) -> Tensor:
        e = self.embed(tokens)
        return F.dropout(e, self.dropout, self.training) if self.dropout > 0 else e

    def step(self, inputs, state=None, trace: Optional[dict] = None):
        x = inputs["x"]
        st = self._start(inputs, x.shape[0], x.device) if state is None else state
        logits, alpha, h_att, st = self._core(self._embed(x), st, trace)
        if trace is not None and alpha is not None:
            trace[f"{self.node_id}.attention"] = {"weights": alpha, "h": h_att}
        return {"y": logits}, st

    # ---- whole sequences -----------------------------------------------------------------------------------
    def forward(self, inputs, state=None):
        x = inputs["x"]
        T, B = x.shape
        st = self._start(inputs, B, x.device) if state is None else state
        feeds_back = self.training and self.teacher_forcing < 1.0
        if self.attention in ("none", "dot", "general") and not self.input_feeding and not feeds_back:
            logits, weights, st = self._forward_fused(x, st)
        else:
            logits, weights, st = self._forward_loop(x, st, feeds_back)
        self.last_attention = weights.detach() if weights is not None else None
        return {"y": logits}, st

    def _forward_fused(self, x: Tensor, st: dict[str, Any]) -> tuple[Tensor, Optional[Tensor], dict[str, Any]]:
        h = self._embed(x)
        new_cells = []
        for layer, cell in enumerate(self.cells):
            if layer > 0 and self.dropout > 0:
                h = F.dropout(h, self.dropout, self.training)
            h, s = cell.sequence(h, st["cells"][layer])
            new_cells.append(s)
        new = dict(st)
        new["cells"] = tuple(new_cells)
        if self.attention == "none":
            return self.out(F.dropout(h, self.dropout, self.training) if self.dropout > 0 else h), None, new
        # Luong et al. 2015, all timesteps at once: scores [B, T, S] = h [B, T, H] . keys [B, S, H]^T
        keys = st["memory"] if self.attention == "dot" else st["keys"]
        hb = h.transpose(0, 1)
        scores = torch.bmm(hb, keys.transpose(1, 2))
        mask = st.get("mask")
        alpha = self._normalise(scores, mask.unsqueeze(1) if mask is not None else None)
        context = torch.bmm(alpha, st["memory"]).transpose(0, 1)      # [T, B, M]
        h_att = torch.tanh(self.w_c(torch.cat([context, h], -1)))
        logits = self.out(F.dropout(h_att, self.dropout, self.training) if self.dropout > 0 else h_att)
        return logits, alpha.transpose(0, 1), new

    def _forward_loop(self, x: Tensor, st: dict[str, Any], feeds_back: bool
                      ) -> tuple[Tensor, Optional[Tensor], dict[str, Any]]:
        T, B = x.shape
        if not feeds_back:
            embedded = self._embed(x).unbind(0)
        outs: list[Tensor] = []
        weights: list[Tensor] = []
        prev_pred: Optional[Tensor] = None
        for t in range(T):
            if not feeds_back:
                e = embedded[t]
            else:
                tok = x[t]
                if prev_pred is not None:
                    # Bengio et al. 2015 (scheduled sampling): per token, the true input with this probability
                    keep = torch.rand(B, device=x.device) < self.teacher_forcing
                    tok = torch.where(keep, tok, prev_pred)
                e = self._embed(tok)
            logits, alpha, _, st = self._core(e, st)
            outs.append(logits)
            if alpha is not None:
                weights.append(alpha)
            if feeds_back:
                prev_pred = logits.detach().argmax(-1)
        return torch.stack(outs, 0), (torch.stack(weights, 0) if weights else None), st

    def attention_weights(self) -> Optional[Tensor]:
        """The ``[T, B, S]`` attention weights of the last ``forward`` (None without attention)."""
        return self.last_attention

    def layers(self):
        return [(f"{self.node_id}.{i}", cell) for i, cell in enumerate(self.cells)]


# ---- image and feature encoders -------------------------------------------------------------------------------

class ImageEncoderBlock(Block):
    """Conv 3x3 + ReLU + max-pool stages over a flattened image, then a linear map to the image vector.

    The task port is ``features`` (a flattened channel-first image, ``[B, C*H*W]``) rather than a new image port
    type: the engine's per-example values are flat vectors, and the block restores the layout it knows from its
    parameters (its size inference refuses inputs of the wrong length).
    """

    def __init__(self, params, in_sizes, out_sizes, ctx: BuildContext):
        super().__init__()
        self.channels, self.size = params.channels, params.image_size
        layers: list[nn.Module] = []
        c_in, c = params.channels, params.width
        for _ in range(params.stages):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in, c = c, c * 2
        self.convs = nn.Sequential(*layers)
        side = params.image_size // (2 ** params.stages)
        self.dropout = params.dropout
        self.linear = nn.Linear(c_in * side * side, params.out_size)
        self.norm = nn.LayerNorm(params.out_size) if params.normalize else None

    def forward(self, inputs, state=None):
        x = inputs["x"] * 2.0 - 1.0  # pixels in [0, 1] -> [-1, 1]: zero-centred inputs for the ReLU stack
        z = self.convs(x.reshape(x.shape[0], self.channels, self.size, self.size)).flatten(1)
        if self.dropout > 0:
            z = F.dropout(z, self.dropout, self.training)
        y = torch.tanh(self.linear(z))
        if self.norm is not None:
            # Ba et al. 2016 (layer normalisation): at initialisation the images differ by ~1% of the vector's
            # size, too little for a generator to notice; normalised, they differ by O(1)
            y = self.norm(y)
        return {"y": y}, None

    def step(self, inputs, state=None, trace=None):
        return self.forward(inputs, state)


class FeatureEncoderBlock(Block):
    def __init__(self, params, in_sizes, out_sizes, ctx: BuildContext):
        super().__init__()
        size = in_sizes.get("x")
        if not size:
            raise ValueError(f"{ctx.node_id}: input size unknown (connect the task's features)")
        self.linear = nn.Linear(int(size), params.out_size)
        self.activation = params.activation
        self.dropout = params.dropout

    def forward(self, inputs, state=None):
        x = inputs["x"]
        if self.dropout > 0:
            x = F.dropout(x, self.dropout, self.training)
        y = self.linear(x)
        if self.activation == "tanh":
            y = torch.tanh(y)
        elif self.activation == "relu":
            y = torch.relu(y)
        return {"y": y}, None

    def step(self, inputs, state=None, trace=None):
        return self.forward(inputs, state)


# ---- conditioned generator -------------------------------------------------------------------------------------

class ConditionedRNNBlock(Block):
    """One-to-many generator conditioned on a vector ``v``.

    ``init``: h_0 = tanh(W_init v + b) for every state tensor of every layer (the image sets the state, as in
    Vinyals et al. 2015 / Karpathy & Fei-Fei 2015).  ``every-step``: the cell's input is ``[x_t; v]``, so its
    input projection is W_xh x_t + W_ih v and a tanh cell computes h_t = tanh(W_xh x_t + W_hh h_{t-1} + W_ih v)
    (Mao et al. 2015, m-RNN).
    """

    stateful = True

    def __init__(self, params, in_sizes, out_sizes, ctx: BuildContext):
        super().__init__()
        self.node_id = ctx.node_id
        size_x, size_v = in_sizes.get("x"), in_sizes.get("v")
        if not size_x or not size_v:
            raise ValueError(f"{ctx.node_id}: connect the embedded tokens to 'x' and the conditioning vector to 'v'")
        self.every_step = params.condition == "every-step"
        self.dropout = params.dropout
        H = params.hidden_size
        self.cells = nn.ModuleList(
            ctx.make_cell(params.cell, (size_x + (size_v if self.every_step else 0)) if i == 0 else H, H)
            for i in range(params.layers))
        self.n_states = len(self.cells[0].state_names)
        self.hidden_size = H
        self.init_proj = None if self.every_step else nn.Linear(int(size_v), params.layers * self.n_states * H)

    def init_state(self, batch: int, device) -> Any:
        return None  # built from v on the first call

    def _start(self, v: Tensor) -> tuple:
        B = v.shape[0]
        if self.init_proj is None:
            return tuple(cell.init_state(B, v.device, v.dtype) for cell in self.cells)
        parts = torch.tanh(self.init_proj(v)).split(self.hidden_size, -1)
        return tuple(tuple(parts[l * self.n_states + k] for k in range(self.n_states))
                     for l in range(len(self.cells)))

    def forward(self, inputs, state=None):
        x, v = inputs["x"], inputs["v"]
        state = self._start(v) if state is None else state
        if self.every_step:
            x = torch.cat([x, v.unsqueeze(0).expand(x.shape[0], -1, -1)], -1)
        new = []
        for layer, cell in enumerate(self.cells):
            if layer > 0 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            x, s = cell.sequence(x, state[layer])
            new.append(s)
        return {"y": x}, tuple(new)

    def step(self, inputs, state=None, trace: Optional[dict] = None):
        x, v = inputs["x"], inputs["v"]
        state = self._start(v) if state is None else state
        if self.every_step:
            x = torch.cat([x, v], -1)
        new = []
        for layer, cell in enumerate(self.cells):
            if layer > 0 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            gates: dict | None = {} if trace is not None else None
            x, s = cell.step(x, state[layer], gates)
            if trace is not None:
                trace_layer(trace, f"{self.node_id}.{layer}", cell, s, gates)
            new.append(s)
        return {"y": x}, tuple(new)

    def layers(self):
        return [(f"{self.node_id}.{i}", cell) for i, cell in enumerate(self.cells)]
