"""What the example's generated tasks share: fresh training data every epoch, fixed validation and test sets, and
batches that are a pure function of their arguments (so training resumes exactly)."""

from __future__ import annotations

import math
from typing import Iterator, Optional

import numpy as np
import torch

from workbench.api import Batch, Task

_SPLITS = {"train": 0, "valid": 1, "test": 2}


def pad(seqs: list, value: int = 0) -> torch.Tensor:
    """Sequences of ids -> ``[T, B]``, time-major, each padded at its end with ``value``."""
    out = torch.full((max((len(s) for s in seqs), default=0), len(seqs)), value, dtype=torch.long)
    for b, s in enumerate(seqs):
        out[:len(s), b] = torch.as_tensor(s, dtype=torch.long)
    return out


class GeneratedTask(Task):
    """Subclasses write :meth:`generate` (``n`` examples from a numpy generator) and declare :attr:`time_major`."""

    stateful = False          # every batch holds whole, independent sequences: no state carried between batches

    def __init__(self, params, base_dir=None):
        super().__init__(params, base_dir)
        self._fixed: dict[str, Batch] = {}

    def prepare(self, vocab: Optional[list[str]] = None, progress=None) -> None:
        # generated data: nothing to read; what would make it differ is recorded with the project
        self.data_files = {"generated": {"task": type(self).__name__, "data_seed": self.params.data_seed}}
        self._fixed.clear()

    def generate(self, rng: np.random.Generator, n: int) -> Batch:
        raise NotImplementedError

    def lengths(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(self.params.min_length, self.params.max_length + 1, n)

    def split_size(self, split: str) -> int:
        p = self.params
        return {"train": p.train_size, "valid": p.valid_size, "test": p.test_size}[split]

    def num_batches(self, split: str, batch_size: int, chunk_len: int) -> int:
        return math.ceil(self.split_size(split) / batch_size)

    def batches(self, split: str, batch_size: int, chunk_len: int, *, epoch: int = 0, start: int = 0,
                seed: int = 0) -> Iterator[Batch]:
        total = self.split_size(split)
        for i in range(start, self.num_batches(split, batch_size, chunk_len)):
            size = min(batch_size, total - i * batch_size)
            if split == "train":      # batch i of an epoch: its own generator, seeded by (seed, epoch, i)
                yield self.generate(np.random.default_rng([seed, epoch, i]), size)
            else:
                if split not in self._fixed:
                    rng = np.random.default_rng([self.params.data_seed, _SPLITS[split]])
                    self._fixed[split] = self.generate(rng, total)
                yield self.take(self._fixed[split], i * batch_size, i * batch_size + size)

    def take(self, batch: Batch, lo: int, hi: int) -> Batch:
        """Examples ``lo:hi`` of a batch: along dim 1 of the time-major tensors, dim 0 of the others."""
        major = self.time_major or ()
        return {k: (v[:, lo:hi] if k in major else v[lo:hi]) if isinstance(v, torch.Tensor) else v
                for k, v in batch.items()}
