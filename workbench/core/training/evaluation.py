"""Evaluating a model's weights on a split: what ``seqwb eval`` prints and Run ▸ Evaluate… shows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch


@torch.no_grad()
def evaluate_model(model, task, split: str, batch_size: int, chunk_len: int, max_batches: int = 0,
                   device=None, progress: Optional[Callable[[int], None]] = None) -> dict[str, float]:
    """Metrics of ``model`` on ``split`` (``max_batches`` 0: the whole split).

    ``progress(done)`` is called after each batch with the number of batches evaluated so far; an exception
    raised from it ends the evaluation there (the window's Cancel) and propagates."""
    device = device or model.device
    was_training = model.training
    model.eval()
    acc: dict[str, float] = {}
    state = None
    try:
        for i, batch in enumerate(task.batches(split, batch_size, chunk_len)):
            if max_batches and i >= max_batches:
                break
            batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
            B = batch[model.input_ports[0]].shape[1]
            if state is None or batch.get("reset") or not task.stateful:
                state = model.init_state(B, device)
            outputs, state = model(batch, state)
            task.eval_update(acc, outputs, batch)
            if progress is not None:
                progress(i + 1)
        metrics = task.eval_finish(acc)
        # tasks that score generated output (BLEU on greedy decodes) get the model once per evaluation
        generate = getattr(task, "eval_generate", None)
        if callable(generate):
            metrics.update(generate(model, split, device))
    finally:
        model.train(was_training)
    return metrics


def format_metric(value: Any) -> str:
    """A metric as ``seqwb eval`` prints it and Run ▸ Evaluate… shows it: a number to four decimals, anything
    else (a confusion matrix) as it is."""
    return f"{value:.4f}" if isinstance(value, (int, float)) else str(value)


def planned_batches(task, split: str, batch_size: int, chunk_len: int, max_batches: int = 0) -> int | None:
    """How many batches an evaluation of ``split`` reads, or None when the task cannot say (``num_batches`` is
    not implemented).  An empty or missing split raises the task's :class:`DataError` here, before any model
    work."""
    try:
        n = int(task.num_batches(split, batch_size, chunk_len))
    except NotImplementedError:
        return None
    return min(n, max_batches) if max_batches else n


@dataclass
class Evaluation:
    """One evaluation of a model's weights on a split: what ``seqwb eval`` prints and Run ▸ Evaluate… shows."""
    split: str
    metrics: dict[str, Any]
    step: int              # the training step the weights come from
    trained: bool          # False: freshly initialised weights (no checkpoint fits the graph)
    best: bool             # the best weights seen in validation, else the current ones
    batches: int           # batches evaluated
    seconds: float

    def summary(self) -> str:
        """The CLI's line: ``valid @ step 200: loss 1.2345  bpc 1.7810  ppl 3.4368``."""
        return f"{self.split} @ step {self.step}: " + "  ".join(
            f"{k} {format_metric(v)}" for k, v in self.metrics.items())


def evaluate_weights(model, task, device, split: str, batch_size: int, chunk_len: int, max_batches: int = 0, *,
                     step: int = 0, trained: bool = True, best: bool = False,
                     progress: Optional[Callable[[int, int], None]] = None) -> Evaluation:
    """:func:`evaluate_model`, timed and counted, for a model loaded at some weights (``step``, ``trained`` and
    ``best`` describe them).  ``progress(done, total)`` after each batch, ``total`` 0 when the task cannot say
    how many there are; an exception from it stops the evaluation (see :func:`evaluate_model`)."""
    t0 = time.perf_counter()
    total = planned_batches(task, split, batch_size, chunk_len, max_batches) or 0
    done = 0

    def counted(n: int) -> None:
        nonlocal done
        done = n
        if progress is not None:
            progress(n, total)

    metrics = evaluate_model(model, task, split, batch_size, chunk_len, max_batches, device, counted)
    return Evaluation(split, metrics, int(step), bool(trained), bool(best), done,
                      round(time.perf_counter() - t0, 3))
