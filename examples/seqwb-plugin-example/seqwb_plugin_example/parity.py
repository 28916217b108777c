"""The running-parity task: after each bit of a random bit string, is the number of 1s so far odd?

Generated on the fly.  Every step has a target (the parity of the prefix), so the gradient reaches every step and
a small recurrent network learns to flip one unit on each 1 — the unit that the ``running_parity`` feature track
finds in unit search.  ``final_accuracy`` scores the last step alone: the parity of the whole string.

Training batch ``i`` of epoch ``e`` is drawn from a random stream seeded with ``(seed, e, i)``, so ``batches`` is
a pure function of its arguments (training resumes exactly).  Validation and test sets are fixed, drawn once
from ``data_seed``.  Sequences are whole examples: the task's ``length`` sets their length.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from workbench.api import Batch, Task

_SPLITS = {"train": 0, "valid": 1, "test": 2}


class ParityTask(Task):
    stateful = False
    #: both batch tensors are [T, B] (how a distributed run splits a batch between processes)
    time_major = ("tokens", "targets")
    VOCAB = ["0", "1"]
    CLASSES = ["even", "odd"]

    def __init__(self, params, base_dir=None):
        super().__init__(params, base_dir)
        self._fixed: dict[str, Batch] = {}

    # ---- data --------------------------------------------------------------------------------------------
    def prepare(self, vocab: Optional[list[str]] = None, progress=None) -> None:
        self.vocab = list(self.VOCAB)
        self.sizes = {"vocab": len(self.VOCAB), "classes": len(self.CLASSES)}
        self.data_files = {"generated": {"task": "parity", "length": self.params.length,
                                         "data_seed": self.params.data_seed}}
        self._fixed.clear()

    def _size(self, split: str) -> int:
        p = self.params
        return {"train": p.train_size, "valid": p.valid_size, "test": p.test_size}[split]

    def generate(self, rng: np.random.Generator, n: int) -> Batch:
        bits = rng.integers(0, 2, (self.params.length, n))           # time-major [T, B]
        return {"tokens": torch.from_numpy(bits.astype(np.int64)),
                "targets": torch.from_numpy((np.cumsum(bits, 0) % 2).astype(np.int64))}   # parity so far

    def num_batches(self, split: str, batch_size: int, chunk_len: int) -> int:
        return math.ceil(self._size(split) / batch_size)

    def batches(self, split: str, batch_size: int, chunk_len: int, *, epoch: int = 0, start: int = 0,
                seed: int = 0) -> Iterator[Batch]:
        total = self._size(split)
        for i in range(start, self.num_batches(split, batch_size, chunk_len)):
            size = min(batch_size, total - i * batch_size)
            if split == "train":
                yield self.generate(np.random.default_rng([seed, epoch, i]), size)
            else:
                if split not in self._fixed:
                    rng = np.random.default_rng([self.params.data_seed, _SPLITS[split]])
                    self._fixed[split] = self.generate(rng, total)
                data = self._fixed[split]
                lo, hi = i * batch_size, i * batch_size + size
                yield {"tokens": data["tokens"][:, lo:hi], "targets": data["targets"][:, lo:hi]}

    # ---- loss and metrics ----------------------------------------------------------------------------------
    def loss(self, outputs, batch) -> torch.Tensor:
        logits = outputs["logits"]                                    # [T, B, 2]
        return F.cross_entropy(logits.reshape(-1, 2), batch["targets"].reshape(-1))

    def count(self, batch) -> int:
        return int(batch["targets"].numel())

    def eval_update(self, acc, outputs, batch) -> None:
        logits, y = outputs["logits"].float(), batch["targets"]
        hits = logits.argmax(-1) == y
        sums = torch.stack([F.cross_entropy(logits.reshape(-1, 2), y.reshape(-1), reduction="sum"),
                            hits.sum().float(), hits[-1].sum().float()]).tolist()
        for key, value in zip(("ce_sum", "hits", "final_hits"), sums):
            acc[key] = acc.get(key, 0.0) + value
        acc["count"] = acc.get("count", 0) + int(y.numel())
        acc["sequences"] = acc.get("sequences", 0) + int(y.shape[1])

    def eval_finish(self, acc) -> dict:
        n, m = max(acc.get("count", 0), 1), max(acc.get("sequences", 0), 1)
        return {"loss": acc.get("ce_sum", 0.0) / n, "accuracy": acc.get("hits", 0.0) / n,
                "final_accuracy": acc.get("final_hits", 0.0) / m}

    # ---- text, for the hidden-state recorder and unit search ------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return [1 if ch == "1" else 0 for ch in text if ch in "01"]

    def decode(self, ids) -> str:
        return "".join(self.VOCAB[i] if 0 <= i < 2 else "?" for i in ids)

    def sample_text(self, length: int = 2000) -> str:
        rng = np.random.default_rng([self.params.data_seed, 7])
        return "".join(self.VOCAB[b] for b in rng.integers(0, 2, min(length, 400)))
