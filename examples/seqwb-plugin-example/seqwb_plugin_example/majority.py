"""A many-to-one classification task: does a bit string hold more 1s than 0s?

Batch keys:

- ``tokens`` ``[T, B]``: the bits as ids 1 (a 0) and 2 (a 1), padded with 0 after each string's end;
- ``lengths`` ``[B]``: each string's length (blocks that pool over time read it);
- ``targets`` ``[B]``: the class of each string, 1 for more 1s than 0s, else 0.

The model's ``logits`` port is per example: ``[B, 2]`` in training.  The gradient-through-time probe runs the
per-step path, which gives every output after every step, ``[T, B, 2]``: :meth:`MajorityTask.loss` takes each
string's last step of those, so the default ``loss_last_step`` (the loss at each sequence's last step) applies.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from seqwb_plugin_example.generated import GeneratedTask, pad
from workbench.api import last_step


class MajorityTask(GeneratedTask):
    time_major = ("tokens",)           # the [T, B] entries; lengths and targets have the batch first
    VOCAB = ["<pad>", "0", "1"]        # id 0 is padding
    CLASSES = ["not more 1s", "more 1s"]

    def prepare(self, vocab=None, progress=None) -> None:
        super().prepare(vocab, progress)
        self.vocab = list(self.VOCAB)
        self.sizes = {"vocab": len(self.VOCAB), "classes": len(self.CLASSES)}

    def generate(self, rng: np.random.Generator, n: int):
        lengths = self.lengths(rng, n)
        bits = [rng.integers(0, 2, length) for length in lengths]
        return {"tokens": pad([b + 1 for b in bits]), "lengths": torch.from_numpy(lengths),
                "targets": torch.tensor([int(2 * b.sum() > len(b)) for b in bits])}

    # ---- loss and metrics ---------------------------------------------------------------------------------
    @staticmethod
    def logits(outputs, batch) -> torch.Tensor:
        logits = outputs["logits"]            # [B, 2] in training and evaluation ...
        if logits.dim() == 3:                 # ... [T, B, 2] from the probe's per-step path
            logits = last_step(logits, batch["lengths"])
        return logits

    def loss(self, outputs, batch) -> torch.Tensor:
        return F.cross_entropy(self.logits(outputs, batch), batch["targets"])

    def count(self, batch) -> int:
        return int(batch["targets"].numel())  # the loss is a mean over strings

    def eval_update(self, acc, outputs, batch) -> None:
        logits, y = self.logits(outputs, batch).float(), batch["targets"]
        sums = torch.stack([F.cross_entropy(logits, y, reduction="sum"), (logits.argmax(-1) == y).sum().float(),
                            y.sum().float()]).tolist()
        for key, value in zip(("loss_sum", "hits", "ones"), sums):
            acc[key] = acc.get(key, 0.0) + value
        acc["count"] = acc.get("count", 0) + int(y.numel())

    def eval_finish(self, acc) -> dict:
        n = max(acc.get("count", 0), 1)
        share = acc.get("ones", 0.0) / n
        # baseline_accuracy: always answering the more common class (the dashboard draws it next to accuracy)
        return {"loss": acc.get("loss_sum", 0.0) / n, "accuracy": acc.get("hits", 0.0) / n,
                "baseline_accuracy": max(share, 1 - share)}

    # ---- text, for the hidden-state recorder ---------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return [self.VOCAB.index(ch) for ch in text if ch in "01"]

    def decode(self, ids) -> str:
        return "".join(self.VOCAB[i] for i in ids if i in (1, 2))

    def sample_text(self, length: int = 2000) -> str:
        rng = np.random.default_rng([self.params.data_seed, 7])
        return "".join(rng.choice(["0", "1"], min(length, 400)))
