"""A regression task: predict the mean of a series of numbers.

Batch keys:

- ``series`` ``[T, B, 1]``: numbers drawn uniformly from [-1, 1], padded with 0 after each series' end;
- ``lengths`` ``[B]``: each series' length;
- ``targets`` ``[B, 1]``: the mean of each series' real steps.

``mean`` is a per-example port: ``[B, 1]`` in training, ``[T, B, 1]`` from the probe's per-step path (each
series' last step is taken, as the classifier does).  Predicting 0 always scores ``baseline_mse``.
"""

from __future__ import annotations

import numpy as np
import torch

from seqwb_plugin_example.generated import GeneratedTask
from workbench.api import last_step


class MeanTask(GeneratedTask):
    time_major = ("series",)

    def prepare(self, vocab=None, progress=None) -> None:
        super().prepare(vocab, progress)
        self.sizes = {"features": 1, "outputs": 1}

    def generate(self, rng: np.random.Generator, n: int):
        lengths = self.lengths(rng, n)
        values = rng.uniform(-1.0, 1.0, (int(lengths.max()), n))
        values[np.arange(values.shape[0])[:, None] >= lengths[None, :]] = 0.0      # padding
        series = torch.from_numpy(values).float().unsqueeze(-1)
        return {"series": series, "lengths": torch.from_numpy(lengths),
                "targets": (series.sum(0) / torch.from_numpy(lengths).float().unsqueeze(1))}

    # ---- loss and metrics ---------------------------------------------------------------------------------
    @staticmethod
    def prediction(outputs, batch) -> torch.Tensor:
        pred = outputs["mean"]                # [B, 1] in training ...
        if pred.dim() == 3:                   # ... [T, B, 1] from the probe's per-step path
            pred = last_step(pred, batch["lengths"])
        return pred

    def loss(self, outputs, batch) -> torch.Tensor:
        return torch.mean((self.prediction(outputs, batch) - batch["targets"]) ** 2)

    def count(self, batch) -> int:
        return int(batch["targets"].shape[0])

    def eval_update(self, acc, outputs, batch) -> None:
        err = self.prediction(outputs, batch).float() - batch["targets"]
        sums = torch.stack([(err * err).sum(), err.abs().sum(), (batch["targets"] ** 2).sum()]).tolist()
        for key, value in zip(("sse", "sae", "zero_sse"), sums):
            acc[key] = acc.get(key, 0.0) + value
        acc["count"] = acc.get("count", 0) + int(err.numel())

    def eval_finish(self, acc) -> dict:
        n = max(acc.get("count", 0), 1)
        mse = acc.get("sse", 0.0) / n
        return {"loss": mse, "mse": mse, "baseline_mse": acc.get("zero_sse", 0.0) / n, "mae": acc.get("sae", 0.0) / n}
