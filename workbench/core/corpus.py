"""The whole validation split as one recording of one quantity: unit search and span matches across the corpus.

A recording shows a stretch of text; LSTMVis (Strobelt et al. 2018) matches what is selected in it against the whole
corpus, and a unit that follows a feature over 2,000 characters may not over 150,000.  So the window's unit search
and its "where else do these units switch on" run over the validation split, and ``seqwb units`` does the same by
default.  Every state and gate of every layer over a split is too much to keep (150,000 characters through the
char-LM template's two LSTM layers of 256 units: 150,000 x 512 x 6 values, 1.8 GB in float32); one quantity in
float16 is 150 MB, and unit search, span matching and feature tracks need no more.  A split beyond
:data:`CORPUS_BYTES` is cut, and the recording says so (``meta["truncated"]``).

- A model that reads its text (a language model, a classifier, a tagger): the split's text as the task gives it
  (``task.sample_text``) in one recording, the hidden state carried from the first character to the last.
- A model that reads a context first (an encoder–decoder, a captioner): every validation example recorded on its
  own (:func:`workbench.core.record_context.record_conditioned`, the project's decoder producing each output), the
  examples' sources and outputs each joined into one part, one example per line; ``segments`` lists where each
  example starts, and spans never cross from one example into the next.

The result is a recording as :mod:`workbench.core.recording` describes it, with float16 values of ``quantity``
only, and ``meta["corpus"] = "valid"``.  Qt-free; torch is imported when a model runs.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from workbench.core.recording_format import annotate, is_multipart, parts

#: the most the values of a corpus recording may hold; a longer split is cut (and says so)
CORPUS_BYTES = 512 * 2 ** 20
#: at most this many validation examples of a model that reads a context (each is decoded, then recorded)
MAX_EXAMPLES = 2000
#: where a recording of many examples joins them (the text view shows one example per line)
EXAMPLE_SEPARATOR = "\n"


def step_bytes(model: Any, quantity: str) -> int:
    """Bytes one step of ``quantity`` (float16) takes over every recurrent layer of ``model``."""
    total = 0
    for _, cell in model.recurrent_layers():
        names = (*getattr(cell, "state_names", ("h",)), *getattr(cell, "gate_names", ()))
        if quantity in names:
            total += 2 * int(getattr(cell, "hidden_size", 0))
    return total


def validation_prompts(task: Any, limit: int = MAX_EXAMPLES) -> list[str]:
    """The inputs of the validation examples as the decoding view takes them: the source sentences of a
    sequence-to-sequence task, the example numbers of a captioning task (at most ``limit``)."""
    pairs = getattr(task, "pairs", None)
    if callable(pairs):
        return [source for source, _ in pairs("valid")[:limit]]
    example = getattr(task, "example", None)
    if callable(example):
        out: list[str] = []
        while len(out) < limit:
            try:
                example(str(len(out)))
            except (ValueError, IndexError):
                break
            out.append(str(len(out)))
        return out
    return []


def concatenate(recordings: list[dict[str, Any]], sep: str = EXAMPLE_SEPARATOR) -> dict[str, Any]:
    """Recordings of one sequence each (or multi-part ones, part by part) as one, one after another: texts joined
    by ``sep``, steps and values concatenated, ``segments`` = the first step of each."""
    if not recordings:
        raise ValueError("nothing to join")
    if is_multipart(recordings[0]):
        names = list(parts(recordings[0]))
        joined = {name: _join([parts(r)[name] for r in recordings if name in parts(r)], sep) for name in names}
        return {"parts": joined, "attention": {}, "meta": dict(recordings[0].get("meta", {}))}
    return _join(recordings, sep)


def _join(recs: list[dict[str, Any]], sep: str) -> dict[str, Any]:
    texts, tokens, labels, offsets, segments = [], [], [], [], []
    chars = steps = 0
    for r in recs:
        segments.append(steps)
        texts.append(r["text"])
        tokens.extend(r["tokens"])
        labels.extend(r["labels"])
        offsets.append(np.asarray(r["offsets"], dtype=np.int64) + chars)
        chars += len(r["text"]) + len(sep)
        steps += len(r["tokens"])
    first = recs[0]
    layers: dict[str, dict[str, np.ndarray]] = {}
    for layer, qs in first["layers"].items():
        for q, a in qs.items():
            width = a.shape[1:]
            chunks = [r["layers"].get(layer, {}).get(q, np.zeros((len(r["tokens"]), *width), a.dtype))
                      for r in recs]
            layers.setdefault(layer, {})[q] = np.concatenate(chunks, 0)
    return {"text": sep.join(texts), "tokens": tokens, "labels": labels,
            "offsets": np.concatenate(offsets) if offsets else np.zeros(0, np.int64), "layers": layers,
            "kinds": dict(first.get("kinds", {})), "segments": np.asarray(segments, dtype=np.int64),
            "meta": dict(first.get("meta", {}))}


def record_corpus(loaded: Any, quantity: str = "h", *, decoding: Optional[tuple[Any, dict[str, Any]]] = None,
                  progress: Optional[Callable[[int, int], None]] = None, budget: int = CORPUS_BYTES,
                  limit: int = MAX_EXAMPLES) -> dict[str, Any]:
    """``quantity`` of every layer of ``loaded``'s model over the validation split (see the module docstring).
    ``decoding``: the decoder spec and settings that produce a context model's outputs."""
    import torch

    from workbench.core.probes import record_activations
    from workbench.core.record_context import reads_context, record_conditioned
    from workbench.schema.errors import DataError
    model, task = loaded.model, loaded.task
    per_step = step_bytes(model, quantity)
    if not per_step:
        have = sorted({q for _, cell in model.recurrent_layers()
                       for q in (*getattr(cell, "state_names", ("h",)), *getattr(cell, "gate_names", ()))})
        raise DataError(f"no recurrent layer of this model has {quantity!r}; choose one of: {', '.join(have)}")
    info: dict[str, Any] = {"corpus": "valid", "quantity": quantity}
    if not reads_context(model):
        most = max(1, budget // per_step)       # characters: at least as many as steps
        text = task.sample_text(most + 1)
        if not text:
            raise DataError("this task has no validation text to search")
        info["truncated"] = len(text) > most
        text = text[:most]
        rec = record_activations(model, task, text, loaded.device, progress=progress, keep_only={quantity},
                                 dtype=torch.float16)
        info.update(chars=len(text), examples=0)
        return annotate(rec, task, model, info)
    if decoding is None:
        raise DataError("this model reads a context first: say which decoder produces its outputs")
    prompts = validation_prompts(task, limit)
    if not prompts:
        raise DataError("this task has no validation examples to search")
    recs: list[dict[str, Any]] = []
    used = 0
    for i, prompt in enumerate(prompts):
        rec = record_conditioned(loaded, prompt, decoding[0], decoding[1], keep_only={quantity},
                                 dtype=np.float16)
        used += sum(a.nbytes for part in parts(rec).values() for qs in part["layers"].values() for a in qs.values())
        recs.append(rec)
        if progress is not None:
            progress(i + 1, len(prompts))
        if used >= budget:
            break
    out = concatenate(recs)
    info.update(truncated=len(recs) < len(prompts), examples=len(recs), decoder=getattr(decoding[0], "id", ""),
                chars=sum(len(p["text"]) for p in parts(out).values()), prompts=prompts[:len(recs)])
    # the corpus's own description: the first example's prompt and output are not the corpus's
    out["meta"] = dict(info)
    for part in parts(out).values():
        part["meta"] = dict(info)
    return out
