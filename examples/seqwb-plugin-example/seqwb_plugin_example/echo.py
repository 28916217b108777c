"""A sequence-labelling task: the label of every step is the symbol ``delay`` steps before it.

Batch keys:

- ``tokens`` ``[T, B]``: the symbols a-d as ids 1-4, padded with 0 after each string's end;
- ``lengths`` ``[B]``: each string's length;
- ``targets`` ``[T, B]``: the label of every step, 0-3 for a-d, and ``IGNORE`` where there is none: the first
  ``delay`` steps (nothing that far back) and the padding.  ``IGNORE`` is cross-entropy's ``ignore_index``.

``logits`` is a sequence port: ``[T, B, 4]`` in training and in the probe alike, so the default
``loss_last_step`` cuts it, and the targets, at each string's last step (``lengths - 1``), which has a label.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from seqwb_plugin_example.generated import GeneratedTask, pad
from workbench.api import IGNORE


class EchoTask(GeneratedTask):
    time_major = ("tokens", "targets")
    SYMBOLS = "abcd"

    def prepare(self, vocab=None, progress=None) -> None:
        super().prepare(vocab, progress)
        self.vocab = ["<pad>", *self.SYMBOLS]
        self.sizes = {"vocab": len(self.vocab), "classes": len(self.SYMBOLS)}

    def generate(self, rng: np.random.Generator, n: int):
        d = self.params.delay
        lengths = self.lengths(rng, n)
        strings = [rng.integers(0, len(self.SYMBOLS), length) for length in lengths]
        tokens = pad([s + 1 for s in strings])
        targets = torch.full(tokens.shape, IGNORE, dtype=torch.long)
        for b, s in enumerate(strings):
            targets[d:len(s), b] = torch.from_numpy(s[:len(s) - d])
        return {"tokens": tokens, "lengths": torch.from_numpy(lengths), "targets": targets}

    # ---- loss and metrics ---------------------------------------------------------------------------------
    def loss(self, outputs, batch) -> torch.Tensor:
        logits = outputs["logits"]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1),
                               ignore_index=IGNORE)

    def count(self, batch) -> int:
        return int((batch["targets"] != IGNORE).sum())    # the loss is a mean over the labelled steps

    def eval_update(self, acc, outputs, batch) -> None:
        logits, y = outputs["logits"].float(), batch["targets"]
        labelled = y != IGNORE
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE,
                             reduction="sum")
        hits = (logits.argmax(-1) == y) & labelled
        counts = torch.bincount(y[labelled], minlength=len(self.SYMBOLS)).float()
        acc["loss_sum"] = acc.get("loss_sum", 0.0) + float(ce)
        acc["hits"] = acc.get("hits", 0.0) + float(hits.sum())
        acc["per_symbol"] = acc.get("per_symbol", torch.zeros(len(self.SYMBOLS))) + counts
        acc["count"] = acc.get("count", 0) + int(labelled.sum())

    def eval_finish(self, acc) -> dict:
        n = max(acc.get("count", 0), 1)
        common = float(acc["per_symbol"].max()) if "per_symbol" in acc else 0.0
        return {"loss": acc.get("loss_sum", 0.0) / n, "accuracy": acc.get("hits", 0.0) / n,
                "baseline_accuracy": common / n}     # always answering the most common symbol

    # ---- text, for the hidden-state recorder ---------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return [self.SYMBOLS.index(ch) + 1 for ch in text if ch in self.SYMBOLS]

    def decode(self, ids) -> str:
        return "".join(self.SYMBOLS[i - 1] for i in ids if 1 <= i <= len(self.SYMBOLS))

    def sample_text(self, length: int = 2000) -> str:
        rng = np.random.default_rng([self.params.data_seed, 7])
        return "".join(rng.choice(list(self.SYMBOLS), min(length, 400)))
