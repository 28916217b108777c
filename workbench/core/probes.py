"""Probes: measurements of a model that training does not need but people want to see.

- :func:`gradient_norms` — per parameter group, cheaply, every step (used by the Trainer).
- :class:`GradientThroughTimeProbe` — ``||dL_T/dh_t||`` (loss at the last step only, so vanishing shows) and
  ``||dL/dh_t||`` (whole loss) for every timestep and recurrent layer, through the per-step path.
- :func:`spectral_norms` — largest singular value of each recurrent matrix (vanishing < 1 < exploding).
- :func:`record_activations` — hidden states, cell states and gates over a given input.
"""

from __future__ import annotations

from typing import Any

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


class GradientThroughTimeProbe:
    """Gradient norms with respect to every hidden state ``h_t`` of every recurrent layer.

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


@torch.no_grad()
def record_activations(model, task, text: str, device=None, progress=None) -> dict[str, Any]:
    """Run ``text`` through the per-step path and return ``{"text", "tokens", "layers": {layer: {q: [T, H]}}}``.

    ``q`` is each state (``h``, ``c``...) and each gate the cell reports.  ``progress(done, total)``, when given,
    is called every few hundred steps and at the end; an exception it raises stops the recording (the window's
    Cancel).  :mod:`workbench.core.inspect` adds token labels, offsets and kinds to the result.
    """
    device = device or model.device
    ids = task.encode(text)
    if not ids:
        raise ValueError("nothing to record: the text is empty")
    was_training = model.training
    model.eval()
    T = len(ids)
    # One preallocated [T, H] buffer per quantity, filled step by step: a list of T small tensors stacked at the
    # end would hold every value twice (20,000 steps x 512 units x 6 quantities is 250 MB once).
    layers: dict[str, dict[str, Tensor]] = {}
    try:
        state = model.start(1)
        port = task.input_port()
        tokens = torch.tensor(ids, dtype=torch.long, device=device)
        for t in range(T):
            trace: dict = {}
            _, state = model.step_graph({port: tokens[t:t + 1]}, state, trace)
            for layer, entry in trace.items():
                slot = layers.setdefault(layer, {})
                for q, v in entry.items():
                    buf = slot.get(q)
                    if buf is None:
                        buf = slot[q] = torch.zeros((T, *v.shape[1:]), dtype=torch.float32)
                    buf[t].copy_(v[0])
            if progress is not None and (t % 256 == 255):
                progress(t + 1, T)
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
