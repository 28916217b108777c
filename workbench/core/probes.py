"""Probes: measurements of a model that training does not need but people want to see.

- :func:`gradient_norms` — per parameter group, cheaply, every step (used by the Trainer).
- :class:`GradientThroughTimeProbe` — ``||dL_T/dh_t||`` (loss at the last step only, so vanishing shows) and
  ``||dL/dh_t||`` (whole loss) for every timestep and recurrent layer, through the per-step path.
- :func:`spectral_norms` — largest singular value of each recurrent matrix (vanishing < 1 < exploding).
- :func:`record_activations` — hidden states, cell states and gates over a given input (in chunks of steps through
  the recurrent layers' fused kernels where the model allows it, else one step at a time).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np
import torch
from torch import Tensor

from workbench.core.blocks import map_state


def group_index(model) -> tuple[list[str], list[torch.nn.Parameter], Tensor]:
    """Names of the parameter groups, the parameters in order, and each parameter's group index."""
    names, params, idx = [], [], []
    for gi, (group, members) in enumerate(model.parameter_groups().items()):
        names.append(group)
        for _, p in members:
            params.append(p)
            idx.append(gi)
    return names, params, torch.tensor(idx, dtype=torch.long)


def gradient_norms(grads: list[Tensor], index: Tensor, n_groups: int) -> tuple[Tensor, Tensor]:
    """(global norm, per-group norms) of ``grads`` as tensors, without syncing the device."""
    if not grads:
        z = torch.zeros(())
        return z, torch.zeros(n_groups)
    norms = torch.stack(torch._foreach_norm(grads)).float()
    sq = torch.zeros(n_groups, device=norms.device).index_add_(0, index.to(norms.device), norms * norms)
    return sq.sum().sqrt(), sq.sqrt()


@torch.no_grad()
def spectral_norms(model) -> dict[str, float]:
    out: dict[str, float] = {}
    for layer, cell in model.recurrent_layers():
        for name, w in cell.recurrent_weights().items():
            out[f"{layer}/{name}"] = float(torch.linalg.matrix_norm(w.detach().float(), ord=2))
    return out


#: what the probe's two quantities are the gradients of (``seqwb probe`` and the dashboard say so)
NORMALISATIONS = {
    "dL_dh": "||dL/dh_t||: L is the task's loss, the mean over every token (or item) of the probe batch",
    "dLT_dh": "||dL_T/dh_t||: L_T is the loss at the last step alone, the mean over the batch at that step",
}


class GradientThroughTimeProbe:
    """Gradient norms with respect to every hidden state ``h_t`` of every recurrent layer (Euclidean norm over the
    batch and the units), of the two losses in :data:`NORMALISATIONS`.  Always of these per-token means, whatever
    the training's ``loss_reduction``: curves of runs with different conventions stay comparable.

    Runs the model's per-step path on a fixed probe batch in eval mode (no dropout, so it consumes no random
    numbers and does not disturb a seeded run), and leaves parameter gradients untouched.
    """

    def __init__(self, model, task, batch: dict[str, Any]):
        self.model = model
        self.task = task
        self.batch = batch

    def run(self) -> dict[str, dict[str, list[float]]]:
        model, task = self.model, self.task
        was_training = model.training
        model.eval()
        try:
            with torch.enable_grad():
                hs: dict[str, list[Tensor]] = {}

                def keep(t: int, trace: dict) -> None:
                    for layer, entry in trace.items():
                        hs.setdefault(layer, []).append(entry["h"])

                B = self.batch[model.input_ports[0]].shape[1]
                try:
                    outputs, _ = model.run_steps(self.batch, model.init_state(B), on_step=keep)
                except NotImplementedError:  # a block without a per-step path (a bidirectional layer)
                    hs.clear()
                    outputs = _run_whole_sequences(model, self.batch, B, hs)
                loss_all = task.loss(outputs, self.batch)
                loss_last = task.loss_last_step(outputs, self.batch)
                layers = list(hs)
                flat = [h for layer in layers for h in hs[layer]]
                if not flat:
                    return {}
                g_last = torch.autograd.grad(loss_last, flat, retain_graph=True, allow_unused=True)
                g_all = torch.autograd.grad(loss_all, flat, allow_unused=True)
        finally:
            model.train(was_training)
        out: dict[str, dict[str, list[float]]] = {}
        i = 0
        for layer in layers:
            n = len(hs[layer])
            last = [0.0 if g is None else g for g in g_last[i:i + n]]
            whole = [0.0 if g is None else g for g in g_all[i:i + n]]
            out[layer] = {
                "dLT_dh": _norms(last),
                "dL_dh": _norms(whole),
            }
            i += n
        return out


def _run_whole_sequences(model, batch: dict[str, Any], batch_size: int, hs: dict[str, list[Tensor]]):
    """``forward`` instead of the step path.  Blocks with a ``capture`` attribute (the built-in ``rnn`` block) then
    write each layer's outputs into it as one tensor per timestep, which the rest of the graph is built from."""
    capture: dict[str, list[Tensor]] = {}
    blocks = [b for b in model.blocks.values() if hasattr(b, "capture")]
    for b in blocks:
        b.capture = capture
    try:
        outputs, _ = model(batch, model.init_state(batch_size))
    finally:
        for b in blocks:
            b.capture = None
    hs.update(capture)
    return outputs


def _norms(gs: list) -> list[float]:
    vals = [g.detach().float().norm() if isinstance(g, Tensor) else torch.tensor(0.0) for g in gs]
    return torch.stack(vals).cpu().tolist() if vals else []


#: timesteps per chunk of the recorder's whole-chunk path: the progress callback (and so the window's Cancel) is
#: called between chunks as often as the per-step path calls it, and a chunk's gate pre-activations stay small
#: (256 x 4 x 512 float32 is 2 MB for an LSTM of 512 units); longer chunks were no faster
RECORD_CHUNK = 256
#: the per-step path calls ``progress`` every this many steps
PROGRESS_EVERY = 256
RECORD_PATHS = ("auto", "steps")


@torch.no_grad()
def record_activations(model, task, text: str, device=None, progress=None, path: str = "auto",
                       chunk: int = RECORD_CHUNK, keep_only: Optional[Iterable[str]] = None,
                       dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Run ``text`` through the model and return ``{"text", "tokens", "layers": {layer: {q: [T, H]}}}``.

    ``q`` is each state (``h``, ``c``...) and each gate the cell reports, exactly what the per-step path
    (``model.step_graph`` with a trace) gives at every step.  ``path="auto"`` runs ``chunk`` steps at a time
    through ``model.sequence_graph`` (every recurrent layer's fused kernel where its cell has one) when every
    stepped block supports it, and steps otherwise; ``path="steps"`` always steps (the reference the whole-chunk
    path is tested against).  ``progress(done, total)``, when given, is called every few hundred steps and at
    the end; an exception it raises stops the recording (the window's Cancel).  :mod:`workbench.core.recording`
    adds token labels, offsets and kinds to the result.

    ``keep_only`` (quantity names) and ``dtype`` serve long texts: unit search over a whole validation split keeps
    one quantity in float16 (a fifth of the memory of every quantity in float32).  Values beyond float16's range
    are clipped to it rather than turned into infinities.
    """
    if path not in RECORD_PATHS:
        raise ValueError(f"path must be one of {', '.join(RECORD_PATHS)}, not {path!r}")
    device = device or model.device
    ids = task.encode(text)
    if not ids:
        raise ValueError("nothing to record: the text is empty")
    was_training = model.training
    model.eval()
    T = len(ids)
    # One preallocated [T, H] buffer per quantity, filled step by step or chunk by chunk: a list of T small tensors
    # stacked at the end would hold every value twice (20,000 steps x 512 units x 6 quantities is 250 MB once).
    layers: dict[str, dict[str, Tensor]] = {}
    wanted = set(keep_only) if keep_only is not None else None
    limit = torch.finfo(dtype).max if dtype != torch.float32 else None

    def keep(start: int, trace: dict, time_dim: bool) -> None:
        """Copy batch row 0 of ``trace`` into the buffers from step ``start`` on (one step, or a chunk)."""
        for layer, entry in trace.items():
            for q, v in entry.items():
                if wanted is not None and q not in wanted:
                    continue
                slot = layers.setdefault(layer, {})
                rows = v[:, 0] if time_dim else v[0:1]          # [steps, ...] either way
                if limit is not None:
                    rows = rows.clamp(-limit, limit)
                buf = slot.get(q)
                if buf is None:
                    buf = slot[q] = torch.zeros((T, *rows.shape[1:]), dtype=dtype)
                buf[start:start + rows.shape[0]].copy_(rows)

    try:
        state = model.start(1)
        port = task.input_port()
        tokens = torch.tensor(ids, dtype=torch.long, device=device)
        chunked = path == "auto" and hasattr(model, "sequence_graph")
        size = max(1, int(chunk))
        t = 0
        while t < T:
            if chunked:
                n = min(size, T - t)
                trace: dict = {}
                result = model.sequence_graph({port: tokens[t:t + n].view(n, 1)}, state, trace)
                if result is NotImplemented:
                    chunked = False     # some block can only step: the rest of the text is stepped
                    continue
                _, state = result
                keep(t, trace, True)
                t += n
                if progress is not None and t < T:
                    progress(t, T)
                continue
            trace = {}
            _, state = model.step_graph({port: tokens[t:t + 1]}, state, trace)
            keep(t, trace, False)
            if progress is not None and (t % PROGRESS_EVERY == PROGRESS_EVERY - 1):
                progress(t + 1, T)
            t += 1
    finally:
        model.train(was_training)
    if progress is not None:
        progress(T, T)
    out = {layer: {q: buf.numpy() for q, buf in qs.items()} for layer, qs in layers.items()}
    return {"text": text, "tokens": ids, "layers": out}


def gate_saturation(recording: dict[str, Any], low: float = 0.1, high: float = 0.9) -> dict[str, dict[str, Any]]:
    """Per layer and sigmoid gate: fraction of time each unit is left- (< low) or right-saturated (> high)."""
    out: dict[str, dict[str, Any]] = {}
    for layer, qs in recording["layers"].items():
        for q, arr in qs.items():
            if q in ("h", "c", "g"):
                continue
            a = np.asarray(arr)
            out.setdefault(layer, {})[q] = {"left": (a < low).mean(0).tolist(), "right": (a > high).mean(0).tolist()}
    return out


def detach_all(state: Any) -> Any:
    return map_state(state, lambda t: t.detach())
