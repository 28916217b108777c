"""Recording models that read a context first: an encoder–decoder's source and output, a captioner's caption.

A language model or a classifier reads the recorded text itself, one token per step
(:func:`workbench.core.probes.record_activations`).  A model with context nodes (``SequenceModel.context_order``: an
encoder over a source sentence, an image encoder) runs them once in ``model.start`` and then steps its decoder over
tokens it produces itself.  :func:`record_conditioned` records both sides of such a model for one input, given as
the decoding view takes it (a source sentence, or a captioning example's number):

- the project's decoder, with its settings and seed 0 as ``seqwb decode`` runs it, produces the output;
- the model is run again along that output (``<eos>`` included when it finished) with the step path's trace: the
  decoder's states and gates at every output step, and the weights of every attention block.  The encoder's states
  and gates over the source come from the encoder block itself (its ``record_into``; the built-in ``rnn`` block
  used as an encoder gives its ``h`` through ``capture``), because the context runs outside the step path.

Output step ``t`` is the step that produced output token ``t`` (its input was token ``t - 1``, ``<bos>`` first), so
the decoder's states at step ``t``, row ``t`` of an attention map and the ``t``-th output token line up.

The result is a *multi-part recording* (see :func:`workbench.core.recording.parts`)::

    {"parts": {"source": <recording>, "output": <recording>},   # each as in workbench.core.recording
     "attention": {node: np.ndarray[T_output, S_source] float32},
     "meta": {..., "prompt": str, "output": str, "finished": bool, "decoder": str, "reference": str}}

The source part is left out when the context has no recurrent layer (an image encoder).  Qt-free; torch is
imported by the functions that run a model.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import numpy as np

from workbench.core.recording_format import annotate

SOURCE, OUTPUT = "source", "output"


def reads_context(model: Any) -> bool:
    """Whether ``model`` runs context nodes before it steps (an encoder–decoder, a captioner)."""
    return bool(getattr(model, "context_order", None))


class _StepTracer:
    """The model, with ``step`` keeping every step's trace (what ``task.prime`` and the loop below call)."""

    def __init__(self, model: Any):
        self._model = model
        self.traces: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def step(self, tokens: Any, state: Any, port: str | None = None, out_port: str = "logits") -> tuple[Any, Any]:
        trace: dict[str, Any] = {}
        out, state = self._model.step_graph({port or self._model.step_port: tokens}, state, trace)
        self.traces.append(trace)
        return out[out_port], state


def _finished(result: Any, task: Any, settings: dict[str, Any]) -> bool:
    """Whether the decoder's best output ended with ``<eos>`` (decoders leave the ``<eos>`` out of its tokens)."""
    if task.eos_id is None:
        return False
    if result.alternatives and "finished" in result.alternatives[0]:
        return bool(result.alternatives[0]["finished"])
    # greedy and sampling stop at <eos> or after max_len tokens (as the decoding view reads them)
    max_len = settings.get("max_len")
    return not isinstance(max_len, int) or len(result.tokens) < max_len


def _follow(model: Any, task: Any, prompt: str, scored: list[int], device: Any
            ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[int]]:
    """Run ``model`` on ``prompt`` and along ``scored`` with traces: the context layers' values over the source
    (``{layer: {q: [S, 1, H]}}``), one step trace per scored token, and the source ids."""
    import torch
    tracer = _StepTracer(model)
    blocks = [model.block(nid) for nid in model.context_order]
    recorders = [b for b in blocks if hasattr(b, "record_into")]
    capturers = [b for b in blocks if not hasattr(b, "record_into") and hasattr(b, "capture")]
    context: dict[str, dict[str, Any]] = {}
    captured: dict[str, list[Any]] = {}
    for b in recorders:
        b.record_into = context
    for b in capturers:
        b.capture = captured
    try:
        logits, state, source_ids = task.prime(tracer, prompt, device, 1)
    finally:
        for b in recorders:
            b.record_into = None
        for b in capturers:
            b.capture = None
    for layer, hs in captured.items():
        if hs:
            context.setdefault(layer, {"h": torch.stack(hs, 0)})
    for i in range(1, len(scored)):
        token = torch.tensor([scored[i - 1]], dtype=torch.long, device=logits.device)
        logits, state = tracer.step(token, state, task.input_port(), task.output_port())
    return context, tracer.traces[:len(scored)], [int(t) for t in source_ids or []]


def _layer_arrays(per_layer: dict[str, dict[str, Any]], keep_only: Optional[set[str]], dtype: Any
                  ) -> dict[str, dict[str, np.ndarray]]:
    """``{layer: {q: tensor [T, 1, ...]}}`` -> ``{layer: {q: ndarray [T, H]}}`` (batch row 0)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for layer, qs in per_layer.items():
        for q, v in qs.items():
            if keep_only is not None and q not in keep_only:
                continue
            a = v[:, 0].detach().float().cpu().numpy()
            out.setdefault(layer, {})[q] = _as(a, dtype)
    return out


def _as(a: np.ndarray, dtype: Any) -> np.ndarray:
    if np.dtype(dtype) == np.float16:
        limit = float(np.finfo(np.float16).max)
        return np.clip(a, -limit, limit).astype(np.float16)
    return a.astype(dtype, copy=False)


def _step_layers(traces: list[dict[str, Any]], keep_only: Optional[set[str]], dtype: Any
                 ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The decoder's layers ``{layer: {q: [T, H]}}`` and the attention maps ``{node: [T, S]}`` of the step traces."""
    layers: dict[str, dict[str, np.ndarray]] = {}
    attention: dict[str, np.ndarray] = {}
    if not traces:
        return layers, attention
    for key, entry in traces[0].items():
        if not isinstance(entry, dict):
            continue
        if key.endswith(".attention"):
            if "weights" in entry:
                rows = [t[key]["weights"][0].detach().float().cpu().numpy() for t in traces]
                attention[key[:-len(".attention")]] = np.stack(rows, 0).astype(np.float32)
            continue
        for q in entry:
            if keep_only is not None and q not in keep_only:
                continue
            rows = [t[key][q][0].detach().float().cpu().numpy() for t in traces]
            layers.setdefault(key, {})[q] = _as(np.stack(rows, 0), dtype)
    return layers, attention


def joined(labels: list[str]) -> tuple[str, np.ndarray]:
    """Output tokens as one text with each token's offset: characters side by side, words with a space between
    (``<eos>`` and other special tokens are words)."""
    chars = all(len(label) == 1 for label in labels if not (label.startswith("<") and label.endswith(">")))
    sep = "" if chars else " "
    parts, offsets, pos = [], [], 0
    for i, label in enumerate(labels):
        if i and sep:
            parts.append(sep)
            pos += len(sep)
        offsets.append(pos)
        parts.append(label)
        pos += len(label)
    return "".join(parts), np.asarray(offsets, dtype=np.int64)


def reference_for(task: Any, prompt: str) -> str:
    """The reference output of an input the data knows (a captioning example, a source sentence of the
    data), or ""."""
    ref = getattr(task, "reference", None)
    if callable(ref):
        try:
            return str(ref(prompt))
        except (ValueError, IndexError):
            return ""
    pairs = getattr(task, "pairs", None)
    if callable(pairs):
        for split in ("valid", "test", "train"):
            for source, target in pairs(split):
                if source == prompt:
                    return str(target)
    return ""


def record_conditioned(loaded: Any, prompt: str, decoder: Any, settings: dict[str, Any], *, seed: int = 0,
                       keep_only: Optional[Iterable[str]] = None, dtype: Any = np.float32,
                       progress: Optional[Callable[[int, int], None]] = None,
                       meta: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Record a context model (``loaded``: a :class:`~workbench.core.training.session.LoadedModel`) on one input:
    see the module docstring.  ``decoder`` is the decoder's spec and ``settings`` its parameters (the project's).
    ``keep_only`` / ``dtype``: as for :func:`workbench.core.probes.record_activations`."""
    import torch

    from workbench.core.decode import run_decoder, token_label
    model, task, device = loaded.model, loaded.task, loaded.device
    prompt = prompt or task.sample_prompt() or ""
    wanted = set(keep_only) if keep_only is not None else None
    if progress is not None:
        progress(0, 2)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            result = run_decoder(decoder, model, task, dict(settings), prompt=prompt, device=device, seed=seed)
            finished = _finished(result, task, settings)
            scored = list(result.tokens) + ([task.eos_id] if finished else [])
            if progress is not None:
                progress(1, 2)
            context, traces, source_ids = _follow(model, task, prompt, scored, device)
    finally:
        model.train(was_training)
    info = {**(meta or {}), "prompt": prompt, "output": task.decode(list(result.tokens)), "finished": finished,
            "decoder": getattr(decoder, "id", str(decoder)), "reference": reference_for(task, prompt)}
    parts: dict[str, dict[str, Any]] = {}
    source_layers = _layer_arrays(context, wanted, dtype)
    if source_layers:
        names = getattr(task, "source_labels", None)
        labels = names(source_ids) if callable(names) else [str(i) for i in source_ids]
        parts[SOURCE] = annotate({"text": prompt, "tokens": source_ids, "labels": list(labels),
                                  "layers": source_layers}, task, model, info)
    output_layers, attention = _step_layers(traces, wanted, dtype)
    labels = [token_label(task, t) for t in scored]
    text, offsets = joined(labels)
    parts[OUTPUT] = annotate({"text": text, "tokens": scored, "labels": labels, "offsets": offsets,
                              "layers": output_layers}, task, model, info)
    if progress is not None:
        progress(2, 2)
    return {"parts": parts, "attention": attention, "meta": info}
