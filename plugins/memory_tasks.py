"""The classic long-memory tasks, generated on the fly: adding problem, copy memory, temporal order.

Every training batch is drawn from its own random stream, seeded with ``(task, seed, epoch, batch index)``, so
``batches(...)`` is a pure function of its arguments (training resumes exactly, and ``start=k`` continues where
batch ``k - 1`` stopped); an epoch is ``train_size`` fresh sequences.  The validation and test sets are fixed:
generated once from ``data_seed``.  Each task reports the score of a memoryless baseline next to the model's.

Sequences are whole examples (``stateful = False``): the task's ``length`` sets their length, ``chunk_len`` does
not apply.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from workbench.api import Batch, Task

_SPLIT_CODE = {"train": 0, "valid": 1, "test": 2}


def _rng(*words: int) -> np.random.Generator:
    return np.random.default_rng([int(w) & 0xFFFF_FFFF_FFFF_FFFF for w in words])


def _last_step(out: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    """Per-example outputs ``[B, K]``; a per-step run (probes) gives ``[T, B, K]``: take each last valid step."""
    if out.dim() != 3:
        return out
    if lengths is None:
        return out[-1]
    idx = (lengths.to(out.device).long() - 1).clamp(min=0)
    return out[idx, torch.arange(out.shape[1], device=out.device)]


class GeneratedTask(Task):
    """Base class: fresh training batches from seeded streams, fixed valid/test sets."""

    stateful = False
    #: distinguishes the random streams of the tasks
    stream: int = 0
    #: batch keys whose batch dimension is 1 (time-major sequences); the others have it on dim 0
    time_major: tuple[str, ...] = ()

    def __init__(self, params, base_dir=None):
        super().__init__(params, base_dir)
        self._fixed: dict[str, Batch] = {}

    # ---- to fill in -------------------------------------------------------------------------------------
    def generate(self, rng: np.random.Generator, n: int) -> Batch:
        """``n`` examples drawn from ``rng``."""
        raise NotImplementedError

    def describe_data(self) -> dict:
        return {}

    # ---- data --------------------------------------------------------------------------------------------
    def prepare(self, vocab: Optional[list[str]] = None, progress=None) -> None:
        self._fixed.clear()
        self.data_files = {"generated": {"task": type(self).__name__, "data_seed": self.params.data_seed,
                                         **self.describe_data()}}

    def split_size(self, split: str) -> int:
        p = self.params
        return {"train": p.train_size, "valid": p.valid_size, "test": p.test_size}[split]

    def num_batches(self, split: str, batch_size: int, chunk_len: int) -> int:
        return math.ceil(self.split_size(split) / batch_size)

    def fixed_set(self, split: str) -> Batch:
        """The whole validation or test set (generated once from ``data_seed``)."""
        if split not in self._fixed:
            rng = _rng(self.stream, _SPLIT_CODE[split], self.params.data_seed)
            self._fixed[split] = self.generate(rng, self.split_size(split))
        return self._fixed[split]

    def take(self, data: Batch, lo: int, hi: int) -> Batch:
        return {k: (v[:, lo:hi] if k in self.time_major else v[lo:hi]) for k, v in data.items()}

    def batches(self, split: str, batch_size: int, chunk_len: int, *, epoch: int = 0, start: int = 0,
                seed: int = 0) -> Iterator[Batch]:
        total = self.split_size(split)
        n = self.num_batches(split, batch_size, chunk_len)
        for i in range(start, n):
            size = min(batch_size, total - i * batch_size)
            if split == "train":
                yield self.generate(_rng(self.stream, _SPLIT_CODE["train"], seed, epoch, i), size)
            else:
                yield self.take(self.fixed_set(split), i * batch_size, i * batch_size + size)

    def loss_last_step(self, outputs, batch) -> torch.Tensor:
        return self.loss(outputs, batch)  # the loss is at the end of the sequence already


class AddingTask(GeneratedTask):
    """The adding problem: Hochreiter & Schmidhuber 1997 (experiment 4) in the form of Le, Jaitly & Hinton 2015.

    Input ``[T, B, 2]``: a value drawn uniformly from [0, 1] and a marker (0 or 1) per step; one marker falls in
    the first half of the sequence, the other in the second half.  Target: the sum of the two marked values.
    Always answering 1 (the mean of the target) scores MSE = Var(X1 + X2) = 2/12 = 1/6.
    Accuracy is Hochreiter & Schmidhuber's criterion: the share of sequences with an absolute error below 0.04.
    """

    count_unit = "sequences"

    stream = 0xADD
    time_major = ("sequence",)
    TOLERANCE = 0.04

    def prepare(self, vocab=None, progress=None) -> None:
        super().prepare(vocab, progress)
        self.vocab = None
        self.sizes = {"features": 2, "outputs": 1}

    def describe_data(self) -> dict:
        return {"length": self.params.length}

    def generate(self, rng, n):
        T = self.params.length
        values = rng.random((T, n), dtype=np.float32)
        first = rng.integers(0, T // 2, n)
        second = rng.integers(T // 2, T, n)
        cols = np.arange(n)
        markers = np.zeros((T, n), dtype=np.float32)
        markers[first, cols] = 1.0
        markers[second, cols] = 1.0
        target = values[first, cols] + values[second, cols]
        return {"sequence": torch.from_numpy(np.stack([values, markers], -1)),
                "targets": torch.from_numpy(target).unsqueeze(1)}

    def _prediction(self, outputs, batch) -> torch.Tensor:
        return _last_step(outputs["sum"], batch.get("lengths"))

    def loss(self, outputs, batch) -> torch.Tensor:
        return F.mse_loss(self._prediction(outputs, batch), batch["targets"])

    def count(self, batch) -> int:
        return int(batch["targets"].shape[0])

    def eval_update(self, acc, outputs, batch) -> None:
        y = batch["targets"]
        err = self._prediction(outputs, batch).float() - y
        sums = torch.stack([(err * err).sum(), ((1.0 - y) ** 2).sum(),
                            (err.abs() < self.TOLERANCE).sum().float()]).tolist()
        for key, value in zip(("sse", "baseline_sse", "hits"), sums):
            acc[key] = acc.get(key, 0.0) + value
        acc["count"] = acc.get("count", 0) + int(y.numel())

    def eval_finish(self, acc) -> dict:
        n = max(acc.get("count", 0), 1)
        mse = acc.get("sse", 0.0) / n
        return {"loss": mse, "mse": mse, "baseline_mse": acc.get("baseline_sse", 0.0) / n,
                "accuracy": acc.get("hits", 0.0) / n}

    def input_port(self) -> str:
        return "sequence"

    def output_port(self) -> str:
        return "sum"


class CopyMemoryTask(GeneratedTask):
    """Copy memory in the formulation of Arjovsky, Shah & Bengio 2016 (section 4.1).

    Input of length T + 2k: k symbols drawn from an alphabet of A, T - 1 blanks, a delimiter, k blanks.  Target:
    T + k blanks, then the k symbols.  A memoryless model that knows the timing predicts blanks and then a uniform
    guess: k·log(A) / (T + 2k) nats per step (``baseline_ce``).  ``accuracy`` and ``copy_ce`` are on the k copied
    steps only.
    """

    # the targets cover every step (blanks, then the symbols): L_T is the loss at the last step alone, as the Task
    # contract defines it, not the whole loss the other generated tasks have at their one final step
    loss_last_step = Task.loss_last_step

    stream = 0xC0B7
    time_major = ("tokens", "targets")
    BLANK = 0

    def prepare(self, vocab=None, progress=None) -> None:
        super().prepare(vocab, progress)
        A = self.params.alphabet
        self.vocab = ["_"] + [str(i) for i in range(1, A + 1)] + [":"]
        self.sizes = {"vocab": A + 2}

    def describe_data(self) -> dict:
        p = self.params
        return {"length": p.length, "symbols": p.symbols, "alphabet": p.alphabet}

    @property
    def delimiter(self) -> int:
        return self.params.alphabet + 1

    def generate(self, rng, n):
        p = self.params
        T, k, A = p.length, p.symbols, p.alphabet
        symbols = rng.integers(1, A + 1, (k, n))
        tokens = np.zeros((T + 2 * k, n), dtype=np.int64)
        tokens[:k] = symbols
        tokens[k + T - 1] = self.delimiter
        targets = np.zeros_like(tokens)
        targets[T + k:] = symbols
        return {"tokens": torch.from_numpy(tokens), "targets": torch.from_numpy(targets)}

    def baseline_ce(self) -> float:
        p = self.params
        return p.symbols * math.log(p.alphabet) / (p.length + 2 * p.symbols)

    def loss(self, outputs, batch) -> torch.Tensor:
        logits = outputs["logits"]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1))

    def count(self, batch) -> int:
        return int(batch["targets"].numel())

    def eval_update(self, acc, outputs, batch) -> None:
        k = self.params.symbols
        logits, targets = outputs["logits"].float(), batch["targets"]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        ce = ce.view(targets.shape)
        copied = (logits[-k:].argmax(-1) == targets[-k:]).sum()
        sums = torch.stack([ce.sum(), ce[-k:].sum(), copied.float()]).tolist()
        for key, value in zip(("ce_sum", "copy_ce_sum", "hits"), sums):
            acc[key] = acc.get(key, 0.0) + value
        acc["count"] = acc.get("count", 0) + int(targets.numel())
        acc["copy_count"] = acc.get("copy_count", 0) + int(targets[-k:].numel())

    def eval_finish(self, acc) -> dict:
        n, m = max(acc.get("count", 0), 1), max(acc.get("copy_count", 0), 1)
        ce = acc.get("ce_sum", 0.0) / n
        return {"loss": ce, "ce": ce, "baseline_ce": self.baseline_ce(), "accuracy": acc.get("hits", 0.0) / m,
                "copy_ce": acc.get("copy_ce_sum", 0.0) / m}

    def encode(self, text: str) -> list[int]:
        index = {s: i for i, s in enumerate(self.vocab or [])}
        return [index.get(ch, self.BLANK) for ch in text]

    def decode(self, ids) -> str:
        v = self.vocab or []
        return "".join(v[i] if 0 <= i < len(v) else "?" for i in ids)


class TemporalOrderTask(GeneratedTask):
    """Temporal order: Hochreiter & Schmidhuber 1997, experiment 6a.

    A sequence starts with E and ends with B; between them, random distractors a, b, c, d, except at two
    positions t1 in [0.1·T, 0.2·T] and t2 in [0.5·T, 0.6·T] (the paper: [10, 20] and [50, 60] for T = 100), which
    hold X or Y.  Classes: XX, XY, YX, YY.  With ``vary_length`` the length is drawn from [T, T + T/10] (the
    paper: 100 to 110) and batches are padded (token 0) with their ``lengths``.
    """

    count_unit = "sequences"

    stream = 0x7E0
    time_major = ("tokens",)
    VOCAB = ["_", "E", "B", "a", "b", "c", "d", "X", "Y"]
    CLASSES = ["XX", "XY", "YX", "YY"]

    def prepare(self, vocab=None, progress=None) -> None:
        super().prepare(vocab, progress)
        self.vocab = list(self.VOCAB)
        self.sizes = {"vocab": len(self.VOCAB), "classes": len(self.CLASSES)}

    def describe_data(self) -> dict:
        return {"length": self.params.length, "vary_length": self.params.vary_length}

    def generate(self, rng, n):
        T = self.params.length
        longest = T + T // 10 if self.params.vary_length else T
        lengths = rng.integers(T, longest + 1, n)
        cols = np.arange(n)
        tokens = rng.integers(3, 7, (longest, n))              # distractors a..d
        tokens[0] = 1                                            # E
        tokens[lengths - 1, cols] = 2                            # B
        tokens[np.arange(longest)[:, None] >= lengths[None, :]] = 0  # padding
        first = rng.integers(T // 10, 2 * T // 10 + 1, n)
        second = rng.integers(T // 2, 6 * T // 10 + 1, n)
        a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)     # 0: X, 1: Y
        tokens[first, cols] = 7 + a
        tokens[second, cols] = 7 + b
        return {"tokens": torch.from_numpy(tokens[:lengths.max()]), "targets": torch.from_numpy(2 * a + b),
                "lengths": torch.from_numpy(lengths)}

    def take(self, data, lo, hi):
        out = super().take(data, lo, hi)
        out["tokens"] = out["tokens"][:int(out["lengths"].max())]  # no all-padding tail
        return out

    def _logits(self, outputs, batch) -> torch.Tensor:
        return _last_step(outputs["logits"], batch.get("lengths"))

    def loss(self, outputs, batch) -> torch.Tensor:
        return F.cross_entropy(self._logits(outputs, batch), batch["targets"])

    def count(self, batch) -> int:
        return int(batch["targets"].shape[0])

    def eval_update(self, acc, outputs, batch) -> None:
        logits, y = self._logits(outputs, batch).float(), batch["targets"]
        ce = F.cross_entropy(logits, y, reduction="sum")
        hits = (logits.argmax(-1) == y).sum()
        per_class = torch.bincount(y, minlength=len(self.CLASSES))
        sums = torch.cat([torch.stack([ce, hits.float()]), per_class.float()]).tolist()
        acc["ce_sum"] = acc.get("ce_sum", 0.0) + sums[0]
        acc["hits"] = acc.get("hits", 0.0) + sums[1]
        for c, v in enumerate(sums[2:]):
            acc[f"class{c}"] = acc.get(f"class{c}", 0.0) + v
        acc["count"] = acc.get("count", 0) + int(y.numel())

    def eval_finish(self, acc) -> dict:
        n = max(acc.get("count", 0), 1)
        majority = max(acc.get(f"class{c}", 0.0) for c in range(len(self.CLASSES)))
        return {"loss": acc.get("ce_sum", 0.0) / n, "accuracy": acc.get("hits", 0.0) / n,
                "baseline_accuracy": majority / n}

    def encode(self, text: str) -> list[int]:
        index = {s: i for i, s in enumerate(self.VOCAB)}
        return [index.get(ch, 0) for ch in text]

    def decode(self, ids) -> str:
        return "".join(self.VOCAB[i] if 0 <= i < len(self.VOCAB) else "?" for i in ids)
